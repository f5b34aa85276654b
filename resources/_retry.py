"""Which failures are worth another try, and how long to wait before it."""

from __future__ import annotations

import asyncio
import random

import asyncpg

# SQLSTATEs after which the rolled-back unit can simply run again.
_TRANSIENT_SQLSTATES = frozenset(
    {
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
        "55P03",  # lock_not_available (lock_timeout)
        "53300",  # too_many_connections
        "57P01",  # admin_shutdown (pg_terminate_backend, fast shutdown)
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now (starting up, recovering)
    }
)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, asyncpg.PostgresError):
        state = exc.sqlstate or ""
        return state in _TRANSIENT_SQLSTATES or state.startswith("08")
    if isinstance(exc, asyncpg.InternalClientError):
        # "cannot switch to state N; another operation is in progress": the protocol lost
        # track after the server went away mid-COPY. The connection is closed, not reused.
        return True
    if isinstance(exc, asyncpg.InterfaceError):
        # asyncpg detaches a lost connection from its pool proxy; the next call on it says
        # "released back to the pool" or "connection is closed" rather than raising a
        # connection error of its own.
        text = str(exc)
        return "released back to the pool" in text or "connection is closed" in text
    # OSError covers refused and reset connections and TimeoutError (a round trip that the
    # client-side guard gave up on).
    return isinstance(exc, OSError)


# A trigger refusing a row: PL/pgSQL's RAISE EXCEPTION without a SQLSTATE of its own, and a
# failed ASSERT.
_ROW_REFUSED_BY_TRIGGER = frozenset({"P0001", "P0004"})


def is_data_error(exc: asyncpg.PostgresError) -> bool:
    """A value the column's type refuses (SQLSTATE class 22), a constraint it breaks (class
    23: NOT NULL, unique, check, foreign key) or a trigger's RAISE: the row is at fault, not
    the server."""
    state = exc.sqlstate or ""
    return state.startswith(("22", "23")) or state in _ROW_REFUSED_BY_TRIGGER


def backoff(attempt: int, *, base: float = 0.2, cap: float = 5.0) -> float:
    """Full-jitter exponential backoff: concurrent writers that failed together do not
    retry together."""
    return random.uniform(0, min(cap, base * 2**attempt))


async def sleep_before_retry(attempt: int) -> None:
    await asyncio.sleep(backoff(attempt))
