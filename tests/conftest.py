"""Fixtures: a real PostgreSQL (``DATABASE_URL``, else the embedded server) and a schema of
its own for every test."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from resources import PostgresBulkWriter
from resources.embedded_postgres import EmbeddedPostgres

REPO = Path(__file__).resolve().parents[1]

# Writers built without a DSN (the bundled definitions) may use the embedded server in tests,
# as under `python3 tasks.py test`; test_embedded_opt_in.py checks the refusal without it.
os.environ.setdefault("BULK_ASSETS_EMBEDDED_POSTGRES", "1")


@pytest.fixture(scope="session")
def dsn() -> str:
    """``DATABASE_URL`` when set; otherwise the embedded server under ``.pytest_pgdata``
    (or ``BULK_ASSETS_PGDATA``), started on first use and left running for the next run."""
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    data_dir = os.environ.get("BULK_ASSETS_PGDATA") or str(REPO / ".pytest_pgdata")
    return EmbeddedPostgres(Path(data_dir)).ensure_running()


@pytest.fixture(scope="session")
def tcp_dsn(dsn: str) -> str:
    """The same server over TCP, for clients that cannot use its Unix socket (a PgBouncer
    running as another OS user): the embedded server's TCP form carries its password."""
    if os.environ.get("DATABASE_URL"):
        return dsn
    data_dir = os.environ.get("BULK_ASSETS_PGDATA") or str(REPO / ".pytest_pgdata")
    return EmbeddedPostgres(Path(data_dir)).dsn(tcp=True)


class Db:
    """Synchronous SQL helpers for assertions, one short connection per call."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    async def _run(self, method: str, sql: str, *args: Any) -> Any:
        conn = await asyncpg.connect(self.dsn)
        try:
            return await getattr(conn, method)(sql, *args)
        finally:
            await conn.close()

    def execute(self, sql: str, *args: Any) -> str:
        status: str = asyncio.run(self._run("execute", sql, *args))
        return status

    def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        return asyncio.run(self._run("fetch", sql, *args))

    def fetchval(self, sql: str, *args: Any) -> Any:
        return asyncio.run(self._run("fetchval", sql, *args))


@pytest.fixture(scope="session")
def db(dsn: str) -> Db:
    return Db(dsn)


@pytest.fixture
def schema(db: Db) -> Iterator[str]:
    """A fresh schema owned by one test, dropped with everything in it afterwards."""
    name = f"t_{uuid.uuid4().hex[:10]}"
    db.execute(f'CREATE SCHEMA "{name}"')
    yield name
    db.execute(f'DROP SCHEMA "{name}" CASCADE')


@pytest.fixture
def search_path_dsn(dsn: str, schema: str) -> str:
    """The DSN with the test's schema first on the search_path, for unqualified table names."""
    sep = "&" if "?" in dsn else "?"
    # asyncpg passes unknown DSN query parameters on as server settings.
    return f"{dsn}{sep}search_path={schema}"


@pytest.fixture
def writer(dsn: str) -> Iterator[PostgresBulkWriter]:
    """A writer holding one pool for the whole test."""
    with PostgresBulkWriter(dsn=dsn) as w:
        yield w
