"""One SQL statement outside a write (DDL, checks, metadata), through the same guards as a
write's round trips: the pool's connection, the client-side time limit and the watchdog, and
the driver's errors translated into ours."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import asyncpg

from ._guards import connection, lost, round_trip, transaction
from .errors import TerminalWriteError

if TYPE_CHECKING:
    from asyncpg.pool import Pool

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Statement:
    #: How errors name what failed: the statement's first words, never its arguments.
    display: str
    round_trip_timeout: float | None
    set_local: str = ""

    @classmethod
    def of(cls, sql: str, round_trip_timeout: float | None, set_local: str = "") -> Statement:
        words = " ".join(sql.split()[:4])
        return cls(f"the statement {words!r}", round_trip_timeout, set_local)


async def run_statement(
    pool: Pool, statement: Statement, work: Callable[[asyncpg.Connection], Awaitable[T]]
) -> T:
    """Run ``work``; behind a transaction pooler, in a transaction of its own that carries the
    writer's limits. A command that refuses a transaction block (VACUUM, CREATE INDEX
    CONCURRENTLY) then runs on its own, under the server's limits."""
    async with connection(pool, statement) as conn:
        try:
            return await _run(conn, statement, work)
        finally:
            await _reset(conn, statement)


async def _run(
    conn: asyncpg.Connection,
    statement: Statement,
    work: Callable[[asyncpg.Connection], Awaitable[T]],
) -> T:
    if statement.set_local:
        try:
            async with transaction(conn, statement), round_trip(conn, statement, "statement"):
                return await work(conn)
        except TerminalWriteError as exc:
            # SQLSTATE 25001: refused before it did anything, so running it again is safe.
            if not isinstance(exc.__cause__, asyncpg.ActiveSQLTransactionError):
                raise
    async with round_trip(conn, statement, "statement"):
        return await work(conn)


async def _reset(conn: asyncpg.Connection, statement: Statement) -> None:
    """What the caller's SQL may have left in the session (SET, LISTEN, advisory locks, open
    cursors) goes before the connection returns to the pool, whose own reset is a no-op for
    the writes' sake (``keep_session``). A connection that cannot be reset is closed."""
    if lost(conn):
        return
    try:
        async with round_trip(conn, statement, "reset"):
            if conn.is_in_transaction():
                await conn.execute("ROLLBACK")
            await conn.execute(conn.get_reset_query())
    except Exception:
        # The statement's own outcome is what the caller needs; this connection just goes.
        conn.terminate()
