"""Writes through a real PgBouncer in transaction pooling mode (``pooler="transaction"``): every
mode, replaces, per-chunk commits, quarantine, statements, more writers than server
connections; the limits apply to each transaction and never stay behind on a server connection
that another client gets next.

The module starts its own PgBouncer in front of the test database; the binary comes from
``apt-get install -y pgbouncer``."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import asyncpg
import pandas as pd
import pytest
from _support import KEYED, MODES, q

from resources import KeyRange, Mode, PostgresBulkWriter, TerminalWriteError, WriteTimeoutError
from resources._request import Commit

# Fewer server connections than the concurrent test has writers, so that they must share.
POOL_SIZE = 2
ROWS = 1_000
LIMITS = (
    "statement_timeout",
    "lock_timeout",
    "idle_in_transaction_session_timeout",
    "client_connection_check_interval",
)


@dataclass(frozen=True)
class Bouncer:
    dsn: str
    log: Path


def pgbouncer_binary() -> str:
    """The pgbouncer executable (Debian puts it in /usr/sbin, not on every user's PATH)."""
    found = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/sbin")
    if found is None:
        message = (
            "pgbouncer is not installed: these tests need it "
            "(Debian/Ubuntu: apt-get install -y pgbouncer)"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def version(binary: str) -> tuple[int, ...]:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"PgBouncer (\d+)\.(\d+)", out)
    assert match, f"unexpected pgbouncer --version output: {out!r}"
    return tuple(int(part) for part in match.groups())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def ini(server_dsn: str, run_dir: Path, port: int, binary: str) -> tuple[str, str]:
    """pgbouncer.ini for the server of ``server_dsn`` and the DSN to reach it through
    PgBouncer."""
    url = urlsplit(server_dsn)
    query = {key: values[-1] for key, values in parse_qs(url.query).items()}
    user = url.username or "postgres"
    password = url.password or ""
    host = url.hostname or query.get("host", "127.0.0.1")
    server_port = url.port or int(query.get("port", 5432))
    database = url.path.lstrip("/") or user
    auth_file = run_dir / "userlist.txt"
    auth_file.write_text(f'"{user}" "{password}"\n')
    lines = [
        "[databases]",
        f"{database} = host={host} port={server_port} dbname={database}",
        "[pgbouncer]",
        "pool_mode = transaction",
        "listen_addr = 127.0.0.1",
        f"listen_port = {port}",
        # TCP only: when started as root, PgBouncer runs as nobody, who cannot write into
        # pytest's private tmp directories; it logs to stderr, which the test keeps.
        "unix_socket_dir =",
        # Clients are trusted; the auth file names the user and the password PgBouncer
        # logs in to the server with.
        "auth_type = trust",
        f"auth_file = {auth_file}",
        f"default_pool_size = {POOL_SIZE}",
        "reserve_pool_size = 0",
        "max_client_conn = 100",
        # Not ignore_startup_parameters: a writer must send nothing PgBouncer refuses.
    ]
    if version(binary) >= (1, 21):
        # The writer must not need PgBouncer's prepared statement support (1.21+): the test
        # turns it off to match the 1.18 of Debian 12.
        lines.append("max_prepared_statements = 0")
    credentials = quote(user) + (f":{quote(password)}" if password else "")
    return "\n".join(lines) + "\n", f"postgresql://{credentials}@127.0.0.1:{port}/{database}"


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pgbouncer exited with {process.returncode}: {log.read_text()}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"pgbouncer did not listen on {port} within 15 s: {log.read_text()}")


@pytest.fixture(scope="module")
def bouncer(tcp_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bouncer]:
    """A PgBouncer in transaction pooling mode in front of the test database, for this
    module."""
    binary = pgbouncer_binary()
    run_dir = tmp_path_factory.mktemp("pgbouncer")
    log = run_dir / "pgbouncer.log"
    # PgBouncer refuses to run as root unless told which user to become; it reads its
    # config and auth file before it switches.
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    for _attempt in range(3):  # another process may take the free port before PgBouncer
        port = free_port()
        config, through = ini(tcp_dsn, run_dir, port, binary)
        (run_dir / "pgbouncer.ini").write_text(config)
        with log.open("ab") as sink:
            process = subprocess.Popen(
                [binary, *user, str(run_dir / "pgbouncer.ini")],
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for_port(port, process, log)
        except RuntimeError:
            process.kill()
            process.wait()
            if "Address already in use" in log.read_text():
                continue
            raise
        break
    else:
        raise RuntimeError(f"pgbouncer found no free port: {log.read_text()}")
    try:
        yield Bouncer(through, log)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def pooled(bouncer: Bouncer) -> Iterator[PostgresBulkWriter]:
    with PostgresBulkWriter(dsn=bouncer.dsn, pooler="transaction") as writer:
        yield writer


def items(db: Any, schema: str, ids: range = range(0)) -> None:
    db.execute(f"CREATE TABLE {q(schema)}.items (id int PRIMARY KEY, name text, qty int)")
    if ids:
        db.execute(
            f"INSERT INTO {q(schema)}.items SELECT g, 'old', 0 FROM generate_series($1::int, $2) g",
            ids.start,
            ids.stop - 1,
        )


def frame(ids: range) -> pd.DataFrame:
    return pd.DataFrame({"id": list(ids), "name": [f"n{i}" for i in ids], "qty": list(ids)})


def written(db: Any, schema: str) -> tuple[int, int]:
    """(rows, rows holding exactly what ``frame`` gave them)."""
    row = db.fetch(
        f"SELECT count(*) AS n, count(*) FILTER (WHERE name = 'n' || id AND qty = id) AS ok "
        f"FROM {q(schema)}.items"
    )[0]
    return int(row["n"]), int(row["ok"])


# -- every mode ------------------------------------------------------------------------------


@pytest.mark.parametrize("commit", ["write", "chunk"])
@pytest.mark.parametrize("mode", MODES)
def test_every_mode_writes_through_pgbouncer(
    pooled: PostgresBulkWriter, db: Any, schema: str, mode: Mode, commit: Commit
) -> None:
    """Update finds all ROWS in place, upsert updates half and inserts half, the appending
    modes insert them all; in several chunks, one transaction or one per chunk."""
    existing = {"update": range(1, ROWS + 1), "upsert": range(1, ROWS // 2 + 1)}
    items(db, schema, existing.get(mode, range(0)))

    result = pooled.write(
        "items",
        frame(range(1, ROWS + 1)),
        schema=schema,
        mode=mode,
        key_columns=["id"] if mode in KEYED else None,
        chunk_size=300,
        commit=commit,
    )

    assert result.rows == ROWS
    assert result.chunks == 4
    assert result.rows_affected == ROWS
    assert written(db, schema) == (ROWS, ROWS)


@pytest.mark.parametrize("mode", [name for name in MODES if name not in KEYED])
def test_replace_true_and_key_range_through_pgbouncer(
    pooled: PostgresBulkWriter, db: Any, schema: str, mode: Mode
) -> None:
    items(db, schema, range(1, 51))

    full = pooled.write(
        "items", frame(range(1, ROWS + 1)), schema=schema, mode=mode, replace=True, chunk_size=300
    )
    assert full.rows == ROWS
    assert written(db, schema) == (ROWS, ROWS)

    db.execute(f"UPDATE {q(schema)}.items SET qty = -1 WHERE id BETWEEN 101 AND 300")
    part = pooled.write(
        "items",
        frame(range(101, 201)),
        schema=schema,
        mode=mode,
        replace=KeyRange("id", 101, 301),
    )
    assert (part.rows, part.rows_deleted) == (100, 200)
    assert written(db, schema) == (ROWS - 100, ROWS - 100)


@pytest.mark.parametrize("mode", ["copy", "upsert"])
def test_quarantine_through_pgbouncer(
    pooled: PostgresBulkWriter, db: Any, schema: str, mode: Mode
) -> None:
    """Bad rows are found under savepoints and set aside; the good ones load."""
    db.execute(
        f"CREATE TABLE {q(schema)}.items (id int PRIMARY KEY, name text, qty int CHECK (qty >= 0))"
    )
    data = frame(range(1, ROWS + 1))
    data.loc[[9, 499, 900], "qty"] = -5

    result = pooled.write(
        "items",
        data,
        schema=schema,
        mode=mode,
        key_columns=["id"] if mode in KEYED else None,
        chunk_size=300,
        on_bad_rows="quarantine",
    )

    assert (result.rows, result.rows_rejected) == (ROWS - 3, 3)
    assert written(db, schema) == (ROWS - 3, ROWS - 3)
    assert result.rejects_table == f"{schema}.items__rejects"
    assert db.fetchval(f"SELECT count(*) FROM {q(schema)}.items__rejects") == 3


def test_execute_and_fetch_through_pgbouncer(
    pooled: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """Statements with and without bound arguments; a command that refuses a transaction
    block (VACUUM) runs on its own."""
    table = f"{q(schema)}.items"
    pooled.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, name text, qty int)")
    assert pooled.execute(f"INSERT INTO {table} VALUES ($1, $2, $3)", 1, "n1", 1) == "INSERT 0 1"
    for _ in range(3):  # the same statement again, on whichever server connection is free
        assert pooled.fetch(f"SELECT name FROM {table} WHERE id = $1", 1) == [{"name": "n1"}]
    assert pooled.execute(f"VACUUM {table}") == "VACUUM"
    assert written(db, schema) == (1, 1)


# -- more writers than server connections ---------------------------------------------------


def test_concurrent_writers_share_the_server_connections(
    bouncer: Bouncer, db: Any, schema: str
) -> None:
    """Four writers, each with its own pool, through PgBouncer's two server connections: all
    rows of every write arrive, and no writer ever saw a third backend."""
    writers = 4
    items(db, schema)
    errors: list[BaseException] = []
    backends: set[int] = set()
    start = threading.Barrier(writers, timeout=30)

    def work(n: int) -> None:
        try:
            with PostgresBulkWriter(dsn=bouncer.dsn, pooler="transaction", pool_size=2) as w:
                start.wait()
                for part in range(5):
                    low = n * 10_000 + part * 200 + 1
                    modes: tuple[Mode, ...] = ("copy", "executemany", "insert", "upsert")
                    mode = modes[part % 4]
                    w.write(
                        "items",
                        frame(range(low, low + 200)),
                        schema=schema,
                        mode=mode,
                        key_columns=["id"] if mode == "upsert" else None,
                        chunk_size=50,
                    )
                    backends.add(w.fetch("SELECT pg_backend_pid() AS pid")[0]["pid"])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    assert errors == []
    assert written(db, schema) == (writers * 5 * 200, writers * 5 * 200)
    assert 1 <= len(backends) <= POOL_SIZE


# -- the limits -----------------------------------------------------------------------------


def test_statement_timeout_applies_through_pgbouncer(
    bouncer: Bouncer, db: Any, schema: str
) -> None:
    """Set per transaction, the limit still cancels a write and a statement that outrun it."""
    items(db, schema)
    db.execute(
        f"CREATE FUNCTION {q(schema)}.slow() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN PERFORM pg_sleep(2); RETURN NEW; END $$"
    )
    db.execute(
        f"CREATE TRIGGER slow BEFORE INSERT ON {q(schema)}.items "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {q(schema)}.slow()"
    )
    with PostgresBulkWriter(
        dsn=bouncer.dsn, pooler="transaction", statement_timeout=0.3, retries=0
    ) as writer:
        started = time.monotonic()
        with pytest.raises(WriteTimeoutError) as caught:
            writer.write("items", frame(range(1, 11)), schema=schema)
        assert caught.value.limit == "statement_timeout"
        with pytest.raises(WriteTimeoutError) as caught:
            writer.fetch("SELECT pg_sleep(2)")
        assert caught.value.limit == "statement_timeout"
        assert time.monotonic() - started < 3
    assert written(db, schema) == (0, 0)


SETTINGS = "SELECT pg_backend_pid() AS pid, " + ", ".join(
    f"current_setting('{name}') AS {name}" for name in LIMITS
)


async def watch_settings(dsn: str, until: threading.Event) -> list[dict[str, Any]]:
    """The limits as another client of PgBouncer sees them, polled until ``until`` is set."""
    conn = await asyncpg.connect(dsn, statement_cache_size=0)
    try:
        seen = []
        while not until.is_set():
            seen.append(dict(await conn.fetchrow(SETTINGS)))
        seen.append(dict(await conn.fetchrow(SETTINGS)))
        return seen
    finally:
        await conn.close()


def test_limits_do_not_stay_on_the_server_connection(
    bouncer: Bouncer, db: Any, schema: str
) -> None:
    """While a writer commits a hundred transactions on PgBouncer's two server connections,
    another client that shares them sees the server's defaults, never the writer's limits;
    inside the writer's transactions, the limits are the writer's."""
    defaults = {name: db.fetchval(f"SHOW {name}") for name in LIMITS}
    items(db, schema)
    done = threading.Event()
    inside: list[dict[str, Any]] = []

    def write() -> None:
        try:
            with PostgresBulkWriter(
                dsn=bouncer.dsn,
                pooler="transaction",
                statement_timeout=123.0,
                lock_timeout=45.0,
                idle_in_transaction_timeout=67.0,
                client_connection_check_interval=8.0,
            ) as writer:
                inside.extend(writer.fetch(SETTINGS))
                writer.write(
                    "items", frame(range(1, ROWS + 1)), schema=schema, chunk_size=10, commit="chunk"
                )
                inside.extend(writer.fetch(SETTINGS))
        finally:
            done.set()

    writing = threading.Thread(target=write)
    writing.start()
    seen = asyncio.run(watch_settings(bouncer.dsn, done))
    writing.join(60)

    assert written(db, schema) == (ROWS, ROWS)
    limits = {
        "statement_timeout": "123s",
        "lock_timeout": "45s",
        "idle_in_transaction_session_timeout": "67s",
        "client_connection_check_interval": "8s",
    }
    assert [{name: row[name] for name in LIMITS} for row in inside] == [limits, limits]
    leaked = [row for row in seen if {name: row[name] for name in LIMITS} != defaults]
    assert leaked == [], f"{len(leaked)} of {len(seen)} queries saw the writer's limits"
    # Both server connections served the other client, the writer's among them.
    assert {row["pid"] for row in seen} >= {row["pid"] for row in inside}


def test_session_settings_are_refused_without_pooler(bouncer: Bouncer) -> None:
    """Why the setting exists: the default sends the limits as startup parameters, which
    PgBouncer refuses."""
    with (
        PostgresBulkWriter(dsn=bouncer.dsn, retries=0) as writer,
        pytest.raises(TerminalWriteError, match="unsupported startup parameter"),
    ):
        writer.fetch("SELECT 1")
