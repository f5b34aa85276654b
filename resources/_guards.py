"""Every round trip of a write goes through here: a connection from the pool, a transaction
that commits or is abandoned safely, a client-side time limit with a watchdog for connections
that die silently, and the driver's errors translated into ours."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

import asyncpg

from ._mode_writer import ModeWriter
from ._request import Target, WriteRequest
from ._retry import is_transient
from ._translate import translate
from ._txn import Transaction
from .errors import (
    BulkWriteError,
    OutcomeUnknownError,
    TransientWriteError,
    WriteTimeoutError,
)

if TYPE_CHECKING:
    from asyncpg.pool import Pool

    from ._chunks import Chunk

# How often a round trip in flight checks that its connection is still there.
_WATCH_INTERVAL = 0.25


@contextlib.asynccontextmanager
async def transaction(
    conn: asyncpg.Connection, request: Target, prelude: Sequence[str] = ()
) -> AsyncIterator[Transaction]:
    """BEGIN; COMMIT when the block succeeds, roll back (or close the connection) when not.
    Behind a transaction pooler, the writer's limits are set for this transaction alone.

    BEGIN, the limits and ``prelude`` (statements that need no answer: locks, checks) go in
    one round trip; statements the block adds to ``before_commit`` go with COMMIT."""
    transaction = Transaction(conn, (request.set_local, *prelude))
    try:
        # Inside the try: a setting or a lock the server refuses rolls the transaction back
        # like any other error.
        async with round_trip(conn, request, "BEGIN"):
            await transaction.start()
        yield transaction
    except BaseException as exc:
        await abandon(conn, transaction, exc)
        raise
    await commit_transaction(conn, transaction, request)
    for done in transaction.after_commit:
        done()


@contextlib.asynccontextmanager
async def connection(pool: Pool, request: Target) -> AsyncIterator[asyncpg.Connection]:
    try:
        conn = await pool.acquire(timeout=request.round_trip_timeout)
    except TimeoutError as exc:
        raise WriteTimeoutError(
            f"no free connection in the pool for {request.display} within "
            f"{request.round_trip_timeout} s (pool_size too small for the concurrent writes?)",
            limit="round_trip_timeout",
            table=request.display,
        ) from exc
    except Exception as exc:
        raise translate(exc, request, None, None) from exc
    try:
        yield conn
    except BaseException as exc:
        if not state_known(exc) and not lost(conn):
            conn.terminate()  # e.g. BEGIN itself failed mid-protocol
        raise
    finally:
        # A failed release (its reset query met a broken connection) has already terminated
        # the connection; the write's own outcome, success or error, is what the caller needs.
        with contextlib.suppress(Exception):
            await pool.release(conn)


@contextlib.asynccontextmanager
async def round_trip(
    conn: asyncpg.Connection,
    request: Target,
    what: str,
    *,
    chunk: Chunk | None = None,
    writer: ModeWriter | None = None,
) -> AsyncIterator[None]:
    """Apply the client-side limit and translate driver errors. A round trip whose server went
    silent (a backend killed mid-COPY can leave the client waiting for ever) fails instead of
    hanging; any error on a connection that turns out lost is transient, whatever asyncpg
    calls it."""
    async with translated(conn, request, what, chunk, writer), watched(conn, request, what):
        yield


@contextlib.asynccontextmanager
async def watched(conn: asyncpg.Connection, request: Target, what: str) -> AsyncIterator[None]:
    """The client-side limit, and a watchdog on the connection: asyncpg waits for its
    transport to accept more COPY data without noticing that the connection was lost (its
    flow-control event is never set again), which would otherwise hang until
    round_trip_timeout (15 minutes)."""
    task = asyncio.current_task()
    assert task is not None, "round trips run inside a task"
    watchdog = asyncio.create_task(cancel_when_lost(conn, task))

    def fired() -> bool:
        return watchdog.done() and not watchdog.cancelled()

    try:
        async with asyncio.timeout(request.round_trip_timeout):
            yield
    except asyncio.CancelledError:
        if fired() and task.uncancel() == 0:
            raise TransientWriteError(
                f"connection lost during {what} for {request.display}", table=request.display
            ) from None
        raise
    except BaseException:
        if fired():
            task.uncancel()  # the driver turned the watchdog's cancellation into its own error
        raise
    finally:
        watchdog.cancel()


@contextlib.asynccontextmanager
async def translated(
    conn: asyncpg.Connection,
    request: Target,
    what: str,
    chunk: Chunk | None,
    writer: ModeWriter | None,
) -> AsyncIterator[None]:
    try:
        yield
    except BulkWriteError:
        raise
    except TimeoutError as exc:
        raise WriteTimeoutError(
            f"{what} for {request.display} got no answer within {request.round_trip_timeout} s",
            limit="round_trip_timeout",
            table=request.display,
        ) from exc
    except Exception as exc:
        if lost(conn) and not isinstance(exc, asyncpg.PostgresError):
            raise TransientWriteError(
                f"connection lost during {what} for {request.display}: {type(exc).__name__}: {exc}",
                table=request.display,
            ) from exc
        raise translate(exc, request, chunk, writer) from exc


async def cancel_when_lost(conn: asyncpg.Connection, task: asyncio.Task[Any]) -> None:
    while not lost(conn):
        await asyncio.sleep(_WATCH_INTERVAL)
    task.cancel()


def lost(conn: asyncpg.Connection) -> bool:
    try:
        return bool(conn.is_closed())
    except asyncpg.InterfaceError:
        return True  # the pool already detached the lost connection


async def abandon(conn: asyncpg.Connection, transaction: Any, error: BaseException) -> None:
    """Roll back after a clean error (a bad value caught here, an error the server reported);
    close a connection whose state is unknown (lost, timed out or confused mid-protocol), so
    that the pool never hands it out again: the server then rolls back on its own."""
    if lost(conn):
        return
    if not state_known(error):
        conn.terminate()
        return
    try:
        async with asyncio.timeout(5):
            await transaction.rollback()
    except BaseException:
        conn.terminate()


def state_known(error: BaseException) -> bool:
    """Whether the connection is in a known state after ``error``: the server reported it, or
    it happened here between round trips. Otherwise (lost, timed out or confused mid-protocol,
    cancelled) the connection must be closed, not reused."""
    if isinstance(error, BulkWriteError):
        # Errors from a round trip are translated, with the driver's exception as cause.
        cause = error.__cause__
        return cause is None or (
            isinstance(cause, asyncpg.PostgresError) and not is_transient(cause)
        )
    # The source or the conversion failed between round trips; a cancellation may not have.
    return isinstance(error, Exception)


async def commit_transaction(
    conn: asyncpg.Connection, transaction: Transaction, request: Target
) -> None:
    try:
        async with round_trip(conn, request, "COMMIT"):
            await transaction.commit()
    except BulkWriteError as exc:
        # The server answered with an error and the connection is still in the transaction:
        # a statement sent ahead of COMMIT (an ATTACH, the sequences' DO block) failed, so
        # COMMIT never ran and nothing is stored. (After a timeout the status is stale.)
        aborted = (
            isinstance(exc.__cause__, asyncpg.PostgresError)
            and not lost(conn)
            and conn.is_in_transaction()
        )
        if aborted:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await transaction.rollback()
        if not isinstance(exc, TransientWriteError) or not isinstance(request, WriteRequest):
            raise  # one statement: not retried, and reported like a lost autocommit
        if request.write_mode.rerun_safe or request.replace is not False:
            raise  # running it again converges on the same rows
        if aborted or rolled_back(exc.__cause__):
            # The server answered with a rollback (a deadlock found by COMMIT itself, e.g.
            # in a deferred trigger, or by a statement sent with it): nothing is stored.
            raise
        raise OutcomeUnknownError(
            f"the connection was lost during COMMIT of a {request.mode} into "
            f"{request.display}: the rows may or may not be stored, so they are not sent again",
            table=request.display,
        ) from exc


# Class 40 errors that say the transaction was rolled back; 40003 (statement completion
# unknown) says the opposite, so the class alone does not do.
_ROLLED_BACK = frozenset({"40001", "40P01", "40002"})


def rolled_back(cause: BaseException | None) -> bool:
    """The server itself reported that the transaction was rolled back (a serialization
    failure or deadlock found at COMMIT, e.g. by a deferred trigger): its outcome is known."""
    return isinstance(cause, asyncpg.PostgresError) and cause.sqlstate in _ROLLED_BACK
