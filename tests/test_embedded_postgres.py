"""Tests of the shared embedded PostgreSQL server against real servers, one data dir each."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import asyncpg
import pytest

from resources._embedded_auth import PASSWORD_FILE
from resources.embedded_postgres import EmbeddedPostgres, EmbeddedPostgresError, default_data_dir

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(tmp_path / "pgdata")
    yield server
    # The server outlives its starter by design: every test stops its own explicitly.
    server.stop()


def fetchval(dsn: str, sql: str) -> Any:
    async def run() -> Any:
        conn = await asyncpg.connect(dsn)
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()

    return asyncio.run(run())


def execute(dsn: str, sql: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def test_starts_and_answers_over_socket_and_tcp(pg: EmbeddedPostgres) -> None:
    dsn = pg.ensure_running()

    assert pg.is_running()
    assert dsn.startswith("postgresql://postgres@/postgres?host=/")
    assert "PostgreSQL 18" in fetchval(dsn, "select version()")
    assert fetchval(pg.dsn(tcp=True), "select inet_server_addr()::text") == "127.0.0.1/32"
    settings = {
        name: fetchval(dsn, f"show {name}")
        for name in ("max_wal_size", "shared_buffers", "max_connections", "fsync")
    }
    assert settings == {
        "max_wal_size": "4GB",
        "shared_buffers": "256MB",
        "max_connections": "200",
        "fsync": "on",
    }


def test_second_ensure_running_reuses_the_server(pg: EmbeddedPostgres) -> None:
    dsn = pg.ensure_running()
    pid = pg.postmaster_pid()

    # Another handle on the same directory, spelled differently, finds the same server.
    same_dir = EmbeddedPostgres(pg.data_dir.parent / "." / pg.data_dir.name)

    assert pid is not None
    assert same_dir.ensure_running() == dsn
    assert pg.ensure_running() == dsn
    assert pg.postmaster_pid() == pid


def test_data_persists_across_stop_and_start(pg: EmbeddedPostgres) -> None:
    dsn = pg.ensure_running()
    execute(
        dsn, "create table kept (id int primary key, name text); insert into kept values (1, 'a')"
    )

    pg.stop()
    assert not pg.is_running()
    assert pg.postmaster_pid() is None

    # The remembered port is reused, so DSNs handed out earlier stay valid.
    assert pg.ensure_running() == dsn
    assert fetchval(dsn, "select name from kept where id = 1") == "a"


def test_concurrent_processes_share_one_server(pg: EmbeddedPostgres) -> None:
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from resources.embedded_postgres import EmbeddedPostgres\n"
        "pg = EmbeddedPostgres(Path(sys.argv[1]))\n"
        "dsn = pg.ensure_running()\n"
        "print(json.dumps([dsn, pg.postmaster_pid()]))\n"
    )
    children = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(pg.data_dir)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        results.append(tuple(json.loads(out)))

    assert len(set(results)) == 1
    dsn, pid = results[0]
    assert pg.postmaster_pid() == pid
    assert fetchval(dsn, "select 1") == 1


def test_killed_postmaster_is_restarted(pg: EmbeddedPostgres) -> None:
    dsn = pg.ensure_running()
    execute(dsn, "create table survivor (id int); insert into survivor values (7)")
    pid = pg.postmaster_pid()
    assert pid is not None

    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while pg.is_running() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pg.is_running()

    # The killed postmaster leaves postmaster.pid behind (and may stay an unreaped zombie).
    assert pg.ensure_running() == dsn
    assert pg.postmaster_pid() not in (None, pid)
    assert fetchval(dsn, "select id from survivor") == 7


def test_reset_removes_data_dir_and_long_path_socket_dir(tmp_path: Path) -> None:
    # Too long for a 107-byte socket path: the socket goes to a per-data-dir dir under /tmp.
    pg = EmbeddedPostgres(tmp_path / ("long" * 20) / "pgdata")
    try:
        dsn = pg.ensure_running()
        socket_dir = Path(parse_qs(urlsplit(dsn).query)["host"][0])
        assert socket_dir.parent == Path("/tmp")
        assert fetchval(dsn, "select 1") == 1

        pg.reset()

        assert not pg.data_dir.exists()
        assert not socket_dir.exists()
        assert not pg.is_running()
        with pytest.raises(EmbeddedPostgresError, match="ensure_running"):
            pg.dsn()
    finally:
        pg.stop()


def test_start_failure_raises_with_server_log(pg: EmbeddedPostgres) -> None:
    pg.ensure_running()
    pg.stop()
    with (pg.data_dir / "postgresql.conf").open("a") as conf:
        conf.write("no_such_setting = 1\n")

    with pytest.raises(
        EmbeddedPostgresError, match='unrecognized configuration parameter "no_such'
    ):
        pg.ensure_running()


def test_refuses_a_non_empty_directory_that_is_not_a_data_dir(pg: EmbeddedPostgres) -> None:
    pg.data_dir.mkdir()
    (pg.data_dir / "notes.txt").write_text("mine")

    with pytest.raises(EmbeddedPostgresError, match="not empty"):
        pg.ensure_running()
    assert (pg.data_dir / "notes.txt").read_text() == "mine"


def test_default_data_dir_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("BULK_ASSETS_PGDATA", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    assert default_data_dir().parts[-2:] == ("bulk-assets", "embedded-postgres")

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    assert default_data_dir() == tmp_path / "home" / "embedded-postgres"

    monkeypatch.setenv("BULK_ASSETS_PGDATA", str(tmp_path / "explicit"))
    assert default_data_dir() == tmp_path / "explicit"
    assert EmbeddedPostgres.default().data_dir == (tmp_path / "explicit").resolve()


# ------------------------------------------------------------------ authentication

TRUST_HBA = """\
local   all             all                                     trust
host    all             all             127.0.0.1/32            trust
"""


def without_password(dsn: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(netloc=f"{parts.username}@{parts.hostname}:{parts.port}"))


def assert_password_only_over_tcp(pg: EmbeddedPostgres) -> None:
    tcp = pg.dsn(tcp=True)
    assert urlsplit(tcp).password
    with pytest.raises(asyncpg.InvalidPasswordError):
        fetchval(without_password(tcp), "select 1")
    with pytest.raises(asyncpg.InvalidPasswordError):
        fetchval(tcp.replace(f":{urlsplit(tcp).password}@", ":wrong@"), "select 1")
    assert fetchval(tcp, "select current_user") == "postgres"
    hba = (pg.data_dir / "pg_hba.conf").read_text()
    rules = [line.split() for line in hba.splitlines() if line.split()[:1] != ["#"] and line]
    assert rules and not any("trust" in rule for rule in rules)
    assert stat.S_IMODE((pg.data_dir / PASSWORD_FILE).stat().st_mode) == 0o600


@pytest.fixture(autouse=True)
def no_password_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # asyncpg, like libpq, falls back to PGPASSWORD and ~/.pgpass when the DSN has none.
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "no-pgpass"))


def test_tcp_needs_the_generated_password(pg: EmbeddedPostgres) -> None:
    socket_dsn = pg.ensure_running()

    assert_password_only_over_tcp(pg)
    # The server's own account (root, here or in CI) needs nothing over the socket.
    assert urlsplit(socket_dsn).password is None
    assert fetchval(socket_dsn, "select 1") == 1
    # The password reached the server as a SCRAM verifier, never in plain text.
    verifier = fetchval(socket_dsn, "select rolpassword from pg_authid where rolname = 'postgres'")
    assert verifier.startswith("SCRAM-SHA-256$4096:")


def test_a_trust_data_dir_is_migrated_on_next_start(pg: EmbeddedPostgres) -> None:
    pg.ensure_running()
    pg.stop()
    # What an earlier version left: trust everywhere, no password.
    (pg.data_dir / "pg_hba.conf").write_text(TRUST_HBA)
    (pg.data_dir / PASSWORD_FILE).unlink()

    pg.ensure_running()

    assert_password_only_over_tcp(pg)


def test_a_running_trust_server_is_migrated(pg: EmbeddedPostgres) -> None:
    dsn = pg.ensure_running()
    (pg.data_dir / "pg_hba.conf").write_text(TRUST_HBA)
    (pg.data_dir / PASSWORD_FILE).unlink()
    fetchval(dsn, "select pg_reload_conf()")
    # Before: anyone reaching 127.0.0.1 is the superuser.
    assert fetchval(without_password(pg.dsn(tcp=True)), "select current_user") == "postgres"

    assert pg.ensure_running() == dsn

    assert_password_only_over_tcp(pg)


def test_cli_dsn_prints_only_the_dsn(pg: EmbeddedPostgres) -> None:
    pg.ensure_running()
    cli = [sys.executable, "-m", "resources.embedded_postgres", "--data-dir", str(pg.data_dir)]

    printed = subprocess.run(
        [*cli, "dsn", "--tcp"], cwd=REPO, capture_output=True, text=True, check=True
    )

    assert printed.stdout == pg.dsn(tcp=True) + "\n"
    assert fetchval(printed.stdout.strip(), "select 1") == 1
    # `start` names the TCP DSN without its password: it ends up in terminals and CI logs.
    started = subprocess.run([*cli, "start"], cwd=REPO, capture_output=True, text=True)
    password = urlsplit(pg.dsn(tcp=True)).password
    assert password is not None
    assert password not in started.stdout + started.stderr


def test_cli_dsn_without_a_server_says_what_to_run(tmp_path: Path) -> None:
    data_dir = tmp_path / "never-started"
    printed = subprocess.run(
        [sys.executable, "-m", "resources.embedded_postgres", "dsn", "--data-dir", str(data_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )

    assert printed.returncode == 1
    assert printed.stdout == ""
    assert f"python -m resources.embedded_postgres start --data-dir {data_dir}" in printed.stderr
    assert "ensure_running" not in printed.stderr


def test_tasks_banners_go_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    import tasks

    tasks.step("installing")

    out, err = capsys.readouterr()
    assert (out, err) == ("", "==> installing\n")
