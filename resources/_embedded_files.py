"""The embedded server's own files beside PostgreSQL's: socket dir, port memory, server log."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import stat
import sys
from pathlib import Path

from ._embedded_probe import free_port, is_postmaster_of, port_is_free
from ._embedded_system import EmbeddedPostgresError, SystemUser, server_major_version

_log = logging.getLogger(__name__)

LOG_FILE = "server.log"
LOG_TAIL_LINES = 40
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


def socket_dir_for(data_dir: Path) -> Path:
    """The data dir itself when its socket path fits, else a per-data-dir dir under /tmp."""
    longest = data_dir / _LONGEST_SOCKET_NAME
    if len(os.fsencode(longest)) <= _MAX_SOCKET_PATH and _PLAIN_PATH.fullmatch(str(data_dir)):
        return data_dir
    digest = hashlib.sha256(os.fsencode(data_dir)).hexdigest()[:16]
    return Path("/tmp") / f"bulk-assets-pg-{digest}"


def prepare_socket_dir(data_dir: Path, system_user: SystemUser | None) -> Path:
    """Create the socket dir (0700, owned by the server's account) and return it."""
    socket_dir = socket_dir_for(data_dir)
    if socket_dir == data_dir:
        return socket_dir
    socket_dir.mkdir(mode=0o700, exist_ok=True)
    info = socket_dir.lstat()
    owners = {os.geteuid()} | ({system_user.uid} if system_user is not None else set())
    if not stat.S_ISDIR(info.st_mode) or info.st_uid not in owners:
        # Peer auth trusts whoever reaches the socket as the server's account: whoever
        # controls the socket dir could impersonate the server.
        raise EmbeddedPostgresError(f"{socket_dir} exists but is not ours; remove it")
    if system_user is not None:
        os.chown(socket_dir, system_user.uid, system_user.gid)
    socket_dir.chmod(0o700)
    return socket_dir


def remove_stale_socket_locks(data_dir: Path, socket_dir: Path) -> None:
    # Like postmaster.pid, a killed server leaves .s.PGSQL.PORT.lock naming its pid, and
    # postgres refuses the socket while that pid exists, zombies included.
    for lock in socket_dir.glob(".s.PGSQL.*.lock"):
        try:
            pid = int(lock.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            pid = 0
        if pid <= 0 or not is_postmaster_of(pid, data_dir):
            _log.info("removing stale %s", lock)
            lock.unlink(missing_ok=True)
            lock.with_suffix("").unlink(missing_ok=True)


def remembered_port(data_dir: Path) -> int | None:
    try:
        return int((data_dir / _PORT_FILE).read_text().strip())
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return None


def remember_port(data_dir: Path, port: int) -> None:
    (data_dir / _PORT_FILE).write_text(f"{port}\n")


def choose_port(data_dir: Path, avoid: set[int]) -> int:
    """The remembered port when free (DSNs handed out earlier stay valid), else a free one."""
    remembered = remembered_port(data_dir)
    if remembered is not None and remembered not in avoid and port_is_free(remembered):
        return remembered
    while True:
        port = free_port()
        if port not in avoid:
            return port


def rotate_log(log_file: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        if log_file.stat().st_size > _LOG_ROTATE_BYTES:
            log_file.replace(log_file.with_name(log_file.name + ".1"))


def read_log(log_file: Path, *, offset: int = 0) -> str:
    try:
        with log_file.open("rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


def tail(text: str, lines: int = LOG_TAIL_LINES) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def version_hint(data_dir: Path) -> str:
    """Why a start may have failed: a data dir made by another major version, or ""."""
    try:
        data_version = (data_dir / "PG_VERSION").read_text().strip()
    except FileNotFoundError:
        return ""
    server_version = server_major_version()
    if server_version and data_version != server_version:
        return (
            f"\nThe data dir was created by PostgreSQL {data_version} but the binaries are "
            f"{server_version}: dump it with the old version or `reset` it."
        )
    return ""
