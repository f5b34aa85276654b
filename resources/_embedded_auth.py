"""Who may connect to the embedded server, and the password the package generates for it.

The server is a superuser's: whoever logs in can run ``COPY ... TO PROGRAM`` as the server's
OS account. So the Unix socket admits only the server's own OS account (and root, which
can become that account anyway) by peer authentication, and TCP on 127.0.0.1 admits only
a random password, kept in a 0600 file in the data dir, by scram-sha-256. No ``trust``.

The package owns ``pg_hba.conf`` and ``pg_ident.conf``: a data dir whose files differ (one
initialised with ``trust`` by an earlier version, or edited by hand) gets them rewritten,
the password set and the configuration reloaded on the next start.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import hashlib
import hmac
import os
import pwd
import secrets
from pathlib import Path

from ._embedded_system import SYSTEM_USER, EmbeddedPostgresError, SystemUser

PASSWORD_FILE = "bulk_assets.password"
_MAP = "bulk_assets"
# PostgreSQL's own default for verifiers it computes (scram_iterations).
_SCRAM_ITERATIONS = 4096
# 32 random bytes: far beyond guessing, and URL-safe, so the DSN needs no escaping.
_PASSWORD_BYTES = 32

HBA_CONF = f"""\
# Written by bulk-assets: rewritten whenever it differs (see docs/security.md).
# The server's own OS account, and root, over the Unix socket; a password over TCP.
# TYPE  DATABASE     USER  ADDRESS       METHOD
local   all          all                 peer map={_MAP}
local   replication  all                 peer map={_MAP}
host    all          all   127.0.0.1/32  scram-sha-256
host    replication  all   127.0.0.1/32  scram-sha-256
"""


def peer_users() -> list[str]:
    """The OS accounts the socket admits: the server's own, and root when root runs it."""
    if os.geteuid() == 0:
        return [SYSTEM_USER, "root"]
    return [pwd.getpwuid(os.geteuid()).pw_name]


def ident_conf() -> str:
    lines = [f"{_MAP}  {user}  all" for user in peer_users()]
    return "# Written by bulk-assets: OS account -> roles it may log in as.\n" + "\n".join(
        [*lines, ""]
    )


def read_password(data_dir: Path) -> str | None:
    try:
        return (data_dir / PASSWORD_FILE).read_text().strip() or None
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return None


def is_current(data_dir: Path) -> bool:
    """The data dir has this package's auth files and a password: nothing to migrate."""
    return (
        read_password(data_dir) is not None
        and _read(data_dir / "pg_hba.conf") == HBA_CONF
        and _read(data_dir / "pg_ident.conf") == ident_conf()
    )


def write_conf(data_dir: Path, system_user: SystemUser | None) -> bool:
    """Write pg_hba.conf and pg_ident.conf where they differ; True if either changed."""
    changed = False
    for name, text in (("pg_hba.conf", HBA_CONF), ("pg_ident.conf", ident_conf())):
        if _read(data_dir / name) != text:
            _write_private(data_dir / name, text, system_user)
            changed = True
    return changed


def secure(data_dir: Path, socket_dsn: str, system_user: SystemUser | None) -> None:
    """Bring a running server to the auth above: files, password, reload. Idempotent.

    The password file is written only after the server has the password, so an interrupted
    run leaves no file naming a password the server does not know; the next start repeats.
    """
    changed = write_conf(data_dir, system_user)
    password = read_password(data_dir)
    if password is not None and not changed:
        return
    password = password or secrets.token_urlsafe(_PASSWORD_BYTES)
    _set_password_and_reload(socket_dsn, scram_verifier(password))
    _write_private(data_dir / PASSWORD_FILE, password + "\n", system_user)


def scram_verifier(password: str, *, salt: bytes | None = None) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for ``password`` (RFC 5802, 7677).

    Sent instead of the password, so that the plain password appears in no server log
    (``log_statement``) and no ``pg_stat_activity`` row.
    """
    salt = salt if salt is not None else secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, _SCRAM_ITERATIONS)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return f"SCRAM-SHA-256${_SCRAM_ITERATIONS}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def _set_password_and_reload(socket_dsn: str, verifier: str) -> None:
    import asyncpg

    async def apply() -> None:
        # Over the socket: admitted by peer auth (or by the trust being migrated away).
        conn = await asyncpg.connect(socket_dsn, timeout=30)
        try:
            # Utility statements take no parameters; the verifier is base64, '$' and ':'.
            await conn.execute(f"ALTER ROLE postgres PASSWORD '{verifier}'")
            await conn.execute("SELECT pg_reload_conf()")
        finally:
            await conn.close()

    # A thread of its own: the caller may be inside a running event loop (a notebook, an
    # async asset), where asyncio.run() is refused.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        try:
            pool.submit(asyncio.run, apply()).result()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise EmbeddedPostgresError(
                f"could not set the embedded server's password over {socket_dsn}: {exc}"
            ) from exc


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return None


def _write_private(path: Path, text: str, system_user: SystemUser | None) -> None:
    """Replace ``path`` atomically with a 0600 file owned by the server's account."""
    scratch = path.with_name(f".{path.name}.tmp")
    scratch.unlink(missing_ok=True)
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        if system_user is not None:
            # postgres reads pg_hba.conf as its own account.
            os.fchown(fd, system_user.uid, system_user.gid)
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.replace(scratch, path)
