"""What the embedded server's files and sockets say about it: pid file, ports, liveness."""

from __future__ import annotations

import contextlib
import os
import socket
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PostmasterPid:
    """The lines of ``postmaster.pid`` this package needs."""

    pid: int
    port: int | None
    socket_dir: str
    status: str


def read_pid_file(data_dir: Path) -> PostmasterPid | None:
    """``data_dir/postmaster.pid``, or None when there is none (or not yet a pid in it)."""
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return None
    # postgres writes the file in steps while starting: tolerate missing lines.
    lines += [""] * (8 - len(lines))
    try:
        pid = int(lines[0])
    except ValueError:
        return None
    port = int(lines[3]) if lines[3].strip().isdigit() else None
    return PostmasterPid(pid=pid, port=port, socket_dir=lines[4].strip(), status=lines[7].strip())


def is_postmaster_of(pid: int, data_dir: Path) -> bool:
    """pid is a live (not zombie) postgres process running in ``data_dir``."""
    if not pid_exists(pid):
        return False
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE or "postgres" not in process.name():
            return False
        # The postmaster chdirs into its data dir: a reused pid fails this check.
        with contextlib.suppress(psutil.AccessDenied):
            return Path(process.cwd()).resolve() == data_dir
        return True
    except psutil.NoSuchProcess:
        return False


def pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        # Another account's process: when not root, our postmaster runs as us, so this pid
        # was reused. When root, kill() never fails with EPERM.
        return False
    return True


def accepts_connections(info: PostmasterPid) -> bool:
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


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # postgres sets SO_REUSEADDR too: a port in TIME_WAIT is free for it.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
