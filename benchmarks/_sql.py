"""One SQL statement (or several, ``;``-separated) on a connection of its own: setup and
cleanup around the benchmarks, outside what they time."""

from __future__ import annotations

import asyncpg

__all__ = ["execute"]


async def execute(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()
