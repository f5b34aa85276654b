"""The event loop and connection pool behind a writer.

asyncpg pools belong to the event loop that made them. A writer must serve sync Dagster assets,
async assets and notebooks (which run a loop of their own) alike, so its pool lives on one
private loop in a background thread; callers on any thread or loop submit work to it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterable, AsyncIterator, Coroutine, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from .errors import TerminalWriteError, TransientWriteError, WriteTimeoutError

T = TypeVar("T")


def redact(dsn: str) -> str:
    """The DSN with its password replaced by ``***``, fit for a message."""
    try:
        parts = urlsplit(dsn)
    except ValueError:
        return "<unparsable DSN>"
    if parts.password is None:
        return dsn
    netloc = parts.netloc.rsplit("@", 1)
    user = (parts.username or "") + ":***"
    return urlunsplit(parts._replace(netloc=f"{user}@{netloc[-1]}"))


class Session:
    """A private event loop thread and an asyncpg pool on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="bulk-writer-loop", daemon=True
        )
        self._thread.start()
        self.pool: asyncpg.Pool | None = None

    @classmethod
    def open(
        cls,
        dsn: str,
        *,
        max_size: int,
        connect_timeout: float,
        server_settings: Mapping[str, str],
    ) -> Session:
        session = cls()
        try:
            session.pool = session.run(
                _create_pool(
                    dsn,
                    max_size=max_size,
                    connect_timeout=connect_timeout,
                    server_settings=dict(server_settings),
                )
            )
        except BaseException:
            session.close()
            raise
        return session

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the session's loop and wait for it from this thread."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    async def arun(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the session's loop, awaited from the caller's loop."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def close(self) -> None:
        if self.pool is not None and not self.loop.is_closed():
            pool, self.pool = self.pool, None
            try:
                self.run(asyncio.wait_for(pool.close(), 10))
            except Exception:  # a pool that will not close cleanly is cut off instead
                pool.terminate()
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()


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


async def _create_pool(
    dsn: str, *, max_size: int, connect_timeout: float, server_settings: dict[str, str]
) -> asyncpg.Pool:
    where = redact(dsn)
    password = urlsplit(dsn).password if "://" in dsn else None
    try:
        pool = await asyncpg.create_pool(
            dsn,
            min_size=1,
            max_size=max_size,
            timeout=connect_timeout,
            server_settings=server_settings,
            # Connections idle this long are closed: after a server restart no stale one
            # lingers for long.
            max_inactive_connection_lifetime=60.0,
        )
    except TimeoutError as exc:
        raise WriteTimeoutError(
            f"could not connect to {where} within connect_timeout={connect_timeout} s",
            limit="connect_timeout",
        ) from exc
    except (OSError, asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError) as exc:
        raise TransientWriteError(f"could not connect to {where}: {_clean(exc, password)}") from (
            None if password and password in str(exc) else exc
        )
    except Exception as exc:
        raise TerminalWriteError(f"could not connect to {where}: {_clean(exc, password)}") from (
            None if password and password in str(exc) else exc
        )
    assert pool is not None
    return pool


def _clean(exc: BaseException, password: str | None) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text.replace(password, "***") if password else text
