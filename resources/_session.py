"""The event loop and connection pool behind a writer.

asyncpg pools belong to the event loop that made them. A writer must serve sync Dagster assets,
async assets and notebooks (which run a loop of their own) alike, so its pool lives on one
private loop in a background thread; callers on any thread or loop submit work to it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from collections.abc import AsyncIterable, AsyncIterator, Coroutine, Mapping
from typing import Any, TypeVar

import asyncpg

from ._catalog_cache import discard
from ._redact import MalformedDsnError, dsn_secrets, mask_url
from ._retry import is_transient
from .errors import BulkWriteError, TerminalWriteError, TransientWriteError, WriteTimeoutError

T = TypeVar("T")
# Seconds a cancelled write gets to roll back and hand its connection back.
_CANCEL_GRACE = 5.0


# What forked children inherited from their parent's sessions: kept referenced and never
# closed, since the sockets are the parent's too and a child must not touch them.
_inherited: list[tuple[Any, ...]] = []
_renewing = threading.Lock()


def _after_fork_in_child() -> None:
    global _renewing
    # Another thread of the parent may have held it at the fork; that thread is gone.
    _renewing = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


class Session:
    """A private event loop thread and an asyncpg pool on it.

    After ``fork()`` the child has the session but not its loop thread, so a call would wait
    for ever. The first use in the child starts it afresh (new loop thread, new pool from the
    same settings) and leaves the parent's pool untouched.
    """

    def __init__(self) -> None:
        self._pid = os.getpid()
        self._settings: dict[str, Any] | None = None
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="bulk-writer-loop", daemon=True
        )
        self._thread.start()
        self._pool: asyncpg.Pool | None = None

    @property
    def pool(self) -> asyncpg.Pool | None:
        self._renew_if_forked()
        return self._pool

    @pool.setter
    def pool(self, pool: asyncpg.Pool | None) -> None:
        self._pool = pool

    def _renew_if_forked(self) -> None:
        if self._pid == os.getpid():
            return
        with _renewing:
            if self._pid == os.getpid():
                return
            # Opened first: if it fails, this session stays as it was, and the next call
            # tries again.
            fresh = Session.open(**self._settings) if self._settings is not None else Session()
            _inherited.append((self.loop, self._thread, self._pool))
            self.loop, self._thread, self._pool = fresh.loop, fresh._thread, fresh._pool
            self._pid = fresh._pid

    @classmethod
    def open(
        cls,
        dsn: str,
        *,
        max_size: int,
        connect_timeout: float,
        server_settings: Mapping[str, str],
        statement_cache_size: int,
    ) -> Session:
        session = cls()
        session._settings = {
            "dsn": dsn,
            "max_size": max_size,
            "connect_timeout": connect_timeout,
            "server_settings": server_settings,
            "statement_cache_size": statement_cache_size,
        }
        try:
            session.pool = session.run(
                _create_pool(
                    dsn,
                    max_size=max_size,
                    connect_timeout=connect_timeout,
                    server_settings=dict(server_settings),
                    statement_cache_size=statement_cache_size,
                )
            )
        except BaseException:
            session.close()
            raise
        return session

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the session's loop and wait for it from this thread. If the wait is
        interrupted (Ctrl-C, a terminated Dagster run), the work is cancelled too, so that a
        write the caller gave up on does not go on to commit."""
        self._renew_if_forked()
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result()
        except BaseException:
            if future.cancel():
                # Give the write a moment to roll back and release its connection.
                concurrent.futures.wait([future], timeout=_CANCEL_GRACE)
            raise

    async def arun(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the session's loop, awaited from the caller's loop."""
        self._renew_if_forked()
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def close(self) -> None:
        """Cancel work still running (its callers get CancelledError rather than waiting for
        ever), close the pool, stop the loop."""
        if self._pid != os.getpid():
            # Forked and never used here: all of it is the parent's, to be left alone.
            _inherited.append((self.loop, self._thread, self._pool))
            self._pool = None
            return
        if not self.loop.is_closed():
            pool, self._pool = self._pool, None
            discard(pool)
            try:
                asyncio.run_coroutine_threadsafe(_shutdown(pool), self.loop).result(
                    _CANCEL_GRACE + 10
                )
            except Exception:  # a pool that will not close cleanly is cut off instead
                if pool is not None:
                    pool.terminate()
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()


async def _shutdown(pool: asyncpg.Pool | None) -> None:
    me = asyncio.current_task()
    pending = [task for task in asyncio.all_tasks() if task is not me]
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=_CANCEL_GRACE)
    if pool is not None:
        await asyncio.wait_for(pool.close(), 10)
    # The threads that advanced sync sources and converted chunks end with the session.
    await asyncio.get_running_loop().shutdown_default_executor()


def bridge(items: AsyncIterable[Any], home: asyncio.AbstractEventLoop) -> AsyncIterator[Any]:
    """Iterate ``items`` on its own loop ``home`` while being consumed on another loop, so
    that async sources tied to the caller's loop (HTTP clients, queues) keep working."""

    async def consume() -> AsyncIterator[Any]:
        iterator = aiter(items)

        async def step() -> Any:
            return await anext(iterator)

        while True:
            future = asyncio.run_coroutine_threadsafe(step(), home)
            try:
                item = await asyncio.wrap_future(future)
            except StopAsyncIteration:
                return
            yield item

    return consume()


async def keep_session(conn: asyncpg.Connection) -> None:
    """The pool's reset on release, after asyncpg has rolled back any open transaction: none.
    A write leaves nothing in the session (transaction-level locks, SET LOCAL, temporary
    tables dropped at COMMIT), so the default reset query (UNLISTEN, RESET ALL, unlock all)
    would cost every write a round trip for nothing. ``execute`` and ``fetch``, which run
    the caller's SQL, reset their connection themselves (``run_statement``)."""


async def _create_pool(
    dsn: str,
    *,
    max_size: int,
    connect_timeout: float,
    server_settings: dict[str, str],
    statement_cache_size: int,
) -> asyncpg.Pool:
    try:
        secrets = dsn_secrets(dsn)
    except MalformedDsnError as exc:
        # Its message is ours and quotes nothing of the DSN; it has no cause to leak.
        raise TerminalWriteError(f"could not connect: {exc}") from exc
    where = secrets.scrub(mask_url(dsn, keep_user=True))
    failure: BulkWriteError
    try:
        pool = await asyncpg.create_pool(
            dsn,
            min_size=1,
            max_size=max_size,
            timeout=connect_timeout,
            server_settings=server_settings,
            # 0 behind a transaction pooler: asyncpg then sends each statement's Parse with its
            # Bind and Execute, so none is left on a server connection another client gets.
            statement_cache_size=statement_cache_size,
            # Connections idle this long are closed: after a server restart no stale one
            # lingers for long.
            max_inactive_connection_lifetime=60.0,
            reset=keep_session,
        )
    except TimeoutError as exc:
        cause: BaseException = exc
        failure = WriteTimeoutError(
            f"could not connect to {where} within connect_timeout={connect_timeout} s",
            limit="connect_timeout",
        )
    except Exception as exc:
        cause = exc
        # The same rule as for any round trip: a refused or reset connection, a server
        # starting up, full, or terminating the new backend (57P01: a restart, or
        # pg_terminate_backend while the pool opened) is worth another try.
        # A protocol violation (08P01) at connect is a refusal that would repeat: a pooler
        # refusing a startup parameter, not a dropped connection.
        retry = is_transient(exc) and not isinstance(exc, asyncpg.ProtocolViolationError)
        kind = TransientWriteError if retry else TerminalWriteError
        failure = kind(f"could not connect to {where}: {secrets.describe(exc)}")
    else:
        assert pool is not None
        return pool
    # Raised here, outside the except blocks, so that a driver exception whose text holds the
    # password is not chained as __context__ when it cannot be kept as __cause__.
    raise failure from secrets.safe_cause(cause)
