"""``python -m resources.embedded_postgres {start,stop,status,dsn,reset}``."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m resources.embedded_postgres {start,stop,status,dsn,reset}``."""
    parser = argparse.ArgumentParser(
        prog="python -m resources.embedded_postgres",
        description="Manage the shared local PostgreSQL server used by bulk-assets.",
    )
    parser.add_argument(
        "command",
        choices=["start", "stop", "status", "dsn", "reset"],
        help="start: ensure running; stop; status (exit 3 when stopped); dsn: print it; "
        "reset: stop and delete the data dir (asks nothing)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="data directory (default: $BULK_ASSETS_PGDATA, else $DAGSTER_HOME/embedded-postgres,"
        " else the user data dir)",
    )
    parser.add_argument(
        "--tcp", action="store_true", help="print the 127.0.0.1:PORT DSN (for psql, GUIs)"
    )
    args = parser.parse_args(argv)
    # Imported here: the facade module imports this one for its `main`.
    from .embedded_postgres import EmbeddedPostgres, EmbeddedPostgresError, default_data_dir

    pg = EmbeddedPostgres(args.data_dir if args.data_dir is not None else default_data_dir())

    try:
        if args.command == "start":
            was_running = pg.is_running()
            started = time.monotonic()
            dsn = pg.ensure_running()
            how = (
                "already running"
                if was_running
                else f"started in {time.monotonic() - started:.1f}s"
            )
            # The password stays out of terminals and CI logs: `dsn --tcp` prints it on demand.
            tcp = _masked(pg.dsn(tcp=True))
            print(f"PostgreSQL {how}: {dsn} (tcp: {tcp}, data dir: {pg.data_dir})")
        elif args.command == "stop":
            was_running = pg.is_running()
            pg.stop()
            print(f"PostgreSQL {'stopped' if was_running else 'was not running'}: {pg.data_dir}")
        elif args.command == "status":
            if pg.is_running():
                print(f"running (pid {pg.postmaster_pid()}): {pg.dsn(tcp=args.tcp)}")
                return 0
            state = "stopped" if (pg.data_dir / "PG_VERSION").exists() else "not initialised"
            print(f"{state}: {pg.data_dir}")
            return 3
        elif args.command == "dsn":
            try:
                dsn = pg.dsn(tcp=args.tcp)
            except EmbeddedPostgresError:
                # The only failure of dsn(): no server was ever started in this data dir.
                explicit = args.data_dir is not None
                print(_never_started(pg.data_dir, explicit=explicit), file=sys.stderr)
                return 1
            # Only the DSN on stdout, for `psql "$(... dsn --tcp)"`.
            print(dsn)
        elif args.command == "reset":
            pg.reset()
            print(f"PostgreSQL stopped and data dir deleted: {pg.data_dir}")
    except EmbeddedPostgresError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def _masked(dsn: str) -> str:
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(parts.password, "***", 1)))


def _never_started(data_dir: Path, *, explicit: bool) -> str:
    """What to run when there is no server to name, for a person at a shell."""
    where = f" --data-dir {shlex.quote(str(data_dir))}" if explicit else ""
    hint = ""
    if not explicit and not os.environ.get("BULK_ASSETS_PGDATA"):
        # The commonest case: the server `tasks.py ui` started lives under its DAGSTER_HOME.
        hint = (
            "\nThe server of `python3 tasks.py ui` is in $DAGSTER_HOME/embedded-postgres "
            "(.dagster_home by default): ask `python3 tasks.py pg dsn`, or set DAGSTER_HOME "
            "or pass --data-dir."
        )
    return (
        f"error: no PostgreSQL has been started in {data_dir}. Start it with:\n"
        f"    python -m resources.embedded_postgres start{where}{hint}"
    )
