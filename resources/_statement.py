"""One SQL statement outside a write (DDL, checks, metadata), through the same guards as a
write's round trips: the pool's connection, the client-side time limit and the watchdog, and
the driver's errors translated into ours."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from ._guards import connection, round_trip

if TYPE_CHECKING:
    import asyncpg
    from asyncpg.pool import Pool

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Statement:
    #: How errors name what failed: the statement's first words, never its arguments.
    display: str
    round_trip_timeout: float | None

    @classmethod
    def of(cls, sql: str, round_trip_timeout: float | None) -> Statement:
        words = " ".join(sql.split()[:4])
        return cls(f"the statement {words!r}", round_trip_timeout)


async def run_statement(
    pool: Pool, statement: Statement, work: Callable[[asyncpg.Connection], Awaitable[T]]
) -> T:
    async with connection(pool, statement) as conn, round_trip(conn, statement, "statement"):
        return await work(conn)
