"""Tests of the shared embedded PostgreSQL server against real servers, one data dir each."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest

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
