"""The Dagster resource that bulk-writes datasets into PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import AsyncIterable, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, Unpack

from dagster import ConfigurableResource, EnvVar, InitResourceContext
from pydantic import Field, PrivateAttr

from ._limits import Pooler, SessionLimits
from ._progress import Log
from ._request import WriteOptions, WriteRequest
from .errors import NoDatabaseError, TransientWriteError
from .write_result import WriteResult

# The engine (asyncpg, pandas, pyarrow: 0.7 s of CPU to import) is imported by the first
# write, not with the resource: every code server and run worker loads the definitions, and
# most of them never write.
if TYPE_CHECKING:
    from ._session import Session
    from ._sources import Data

__all__ = ["PostgresBulkWriter"]

_logger = logging.getLogger(__name__)
T = TypeVar("T")

#: Set to 1 to let a writer without ``dsn`` or ``DATABASE_URL`` start the embedded PostgreSQL;
#: ``python3 tasks.py ui`` and ``python3 tasks.py test`` set it.
EMBEDDED_OPT_IN = "BULK_ASSETS_EMBEDDED_POSTGRES"
_TRUE = frozenset({"1", "true", "yes", "on"})


class PostgresBulkWriter(ConfigurableResource):  # type: ignore[type-arg]
    """Writes DataFrames and row streams into PostgreSQL by binary COPY, executemany,
    multi-row INSERT, batch UPDATE or upsert; each write is one transaction by default.

    The connection comes from ``dsn``; left unset, from the ``DATABASE_URL`` environment
    variable at run time. With neither, the writer fails at resource set-up, before any write,
    unless local development asked for the PostgreSQL the project starts itself
    (:mod:`resources.embedded_postgres`): ``embedded=True`` or
    ``BULK_ASSETS_EMBEDDED_POSTGRES=1``. One asyncpg pool serves a whole Dagster run, opened
    on the first write and closed when the run's step ends; outside Dagster, each call opens and
    closes its own unless the writer is used as a context manager.

    Examples:
        .. code-block:: python

            from dagster import Definitions, EnvVar, asset
            from resources import PostgresBulkWriter

            @asset
            def users(writer: PostgresBulkWriter) -> None:
                writer.write("users", make_users_frame(), mode="copy")

            defs = Definitions(
                assets=[users],
                resources={"writer": PostgresBulkWriter(dsn=EnvVar("DATABASE_URL"))},
            )
    """

    # A misspelled option (retry_wiat=1) is an error, not a silently ignored keyword; the
    # error never echoes the value given (dns="postgresql://user:secret@...").
    model_config = {
        **ConfigurableResource.model_config,
        "extra": "forbid",
        "hide_input_in_errors": True,
    }

    dsn: str | None = Field(
        default=None,
        repr=False,
        description=(
            "libpq-style URL, e.g. postgresql://user:pass@host:5432/db?sslmode=verify-full. "
            "Pass EnvVar('DATABASE_URL') so the secret never enters config. Unset: the "
            "DATABASE_URL environment variable at run time, else the embedded PostgreSQL if "
            "`embedded` allows it, else an error at resource set-up."
        ),
    )
    embedded: bool = Field(
        default=False,
        description=(
            "For local development: with neither `dsn` nor DATABASE_URL set, start and use the "
            "embedded PostgreSQL. Also turned on by BULK_ASSETS_EMBEDDED_POSTGRES=1 (set by "
            "`python3 tasks.py ui` and `test`). Off, such a writer fails at resource set-up, "
            "so a deployment that lost its secret never loads into a throwaway database."
        ),
    )
    chunk_size: int = Field(
        default=50_000,
        description="Rows per chunk: the unit streamed, converted and sent in one round trip.",
    )
    pool_size: int = Field(
        default=4, description="Most connections one run opens (asyncpg pool max_size)."
    )
    retries: int = Field(
        default=3,
        description=(
            "Retries of a write (or a chunk, with commit='chunk') after a transient failure: "
            "lost connection, terminated backend, deadlock, serialization failure."
        ),
    )
    connect_timeout: float = Field(default=10.0, description="Seconds to open a connection.")
    statement_timeout: float = Field(
        default=600.0,
        description="Server-side limit in seconds for one statement (one chunk); 0 disables.",
    )
    lock_timeout: float = Field(
        default=60.0,
        description="Server-side limit in seconds to wait for a lock on the table; 0 disables.",
    )
    idle_in_transaction_timeout: float = Field(
        default=300.0,
        description=(
            "Seconds the server keeps a transaction whose client went silent before ending it, "
            "so a crashed run never holds locks for long; 0 disables."
        ),
    )
    client_connection_check_interval: float = Field(
        default=5.0,
        description=(
            "Seconds between the server's checks, during a long statement, that the client "
            "is still connected: a run killed mid-write then stops its statement (and frees "
            "its locks) within this long instead of running it to the end. 0 disables; "
            "PostgreSQL 13 and older do not know the setting and need 0."
        ),
    )
    round_trip_timeout: float = Field(
        default=900.0,
        description=(
            "Client-side limit in seconds on each round trip. A backend that dies mid-COPY can "
            "leave the client waiting for ever; this turns that into an error."
        ),
    )
    application_name: str = Field(
        default="bulk-assets", description="Shown in pg_stat_activity for our sessions."
    )
    pooler: Pooler = Field(
        default="none",
        description=(
            "What sits between the writer and PostgreSQL. 'none': a direct connection; the "
            "limits above are set once per connection, at connect. 'transaction': PgBouncer "
            "(needed for pool_mode=transaction, and works in every pool mode); only "
            "application_name is sent at connect, each transaction sets the limits with SET "
            "LOCAL, and asyncpg's statement cache is off. See docs/pgbouncer.md."
        ),
    )
    embedded_data_dir: str | None = Field(
        default=None,
        description=(
            "Data directory of the embedded PostgreSQL used when no DSN is configured. Unset: "
            "BULK_ASSETS_PGDATA, else $DAGSTER_HOME/embedded-postgres, else a user data dir."
        ),
    )

    _session: Session | None = PrivateAttr(default=None)
    _session_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _lock_pid: int = PrivateAttr(default_factory=os.getpid)
    _in_use: int = PrivateAttr(default=0)
    _held: bool = PrivateAttr(default=False)
    _log: Log | None = PrivateAttr(default=None)

    # -- lifecycle -------------------------------------------------------------------------

    def _lock(self) -> threading.Lock:
        """The lock guarding the session. A child of fork() gets a new one: a parent thread
        that held it at the fork is not there to release it."""
        if self._lock_pid != os.getpid():
            self._session_lock, self._lock_pid = threading.Lock(), os.getpid()
        return self._session_lock

    def setup_for_execution(self, context: InitResourceContext) -> None:
        # Before any write: a run without a database fails here, naming the missing setting.
        self._configured_dsn()
        self._log = context.log
        self._held = True

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        self.close()

    def __enter__(self) -> PostgresBulkWriter:
        self._held = True
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pool and its loop; the next write opens new ones."""
        with self._lock():
            self._held = False
            session, self._session = self._session, None
        if session is not None:
            session.close()

    def resolve_dsn(self) -> str:
        """The DSN this writer connects to, starting the embedded server if it is the one.

        Raises:
            NoDatabaseError: no ``dsn``, no ``DATABASE_URL``, and the embedded server was not
                asked for.
        """
        dsn = self._configured_dsn()
        if dsn is not None:
            return dsn
        from .embedded_postgres import EmbeddedPostgres

        if self.embedded_data_dir:
            return EmbeddedPostgres(Path(self.embedded_data_dir)).ensure_running()
        return EmbeddedPostgres.default().ensure_running()

    def _limits(self) -> SessionLimits:
        return SessionLimits(
            pooler=self.pooler,
            application_name=self.application_name,
            statement_timeout=self.statement_timeout,
            lock_timeout=self.lock_timeout,
            idle_in_transaction_timeout=self.idle_in_transaction_timeout,
            client_connection_check_interval=self.client_connection_check_interval,
        )

    def _configured_dsn(self) -> str | None:
        """``dsn``, else ``DATABASE_URL``; None if the embedded server may stand in."""
        if self.dsn:
            return self.dsn
        from_env = EnvVar("DATABASE_URL").get_value()
        if from_env:
            return from_env
        opt_in = (EnvVar(EMBEDDED_OPT_IN).get_value() or "").strip().lower()
        if self.embedded or opt_in in _TRUE:
            return None
        raise NoDatabaseError(
            "PostgresBulkWriter has no database to write to: set its `dsn` (e.g. "
            "PostgresBulkWriter(dsn=EnvVar('MY_URL'))) or the DATABASE_URL environment "
            "variable of the run worker. For local development only, "
            f"{EMBEDDED_OPT_IN}=1 (or embedded=True) starts an embedded PostgreSQL instead; "
            "`python3 tasks.py ui` and `python3 tasks.py test` set it."
        )

    def _acquire_session(self) -> Session:
        with self._lock():
            if self._session is None:
                self._session = self._connect()
            self._in_use += 1
            return self._session

    def _connect(self) -> Session:
        """Open the pool, retrying a server that is restarting or momentarily full."""
        from ._retry import backoff
        from ._session import Session

        dsn = self.resolve_dsn()
        limits = self._limits()
        attempt = 0
        while True:
            try:
                return Session.open(
                    dsn,
                    max_size=self.pool_size,
                    connect_timeout=self.connect_timeout,
                    server_settings=limits.startup_settings(),
                    statement_cache_size=limits.statement_cache_size(),
                )
            except TransientWriteError as exc:
                if attempt >= self.retries:
                    raise
                attempt += 1
                self._progress().info("connecting failed (%s), retrying", exc)
                time.sleep(backoff(attempt))

    def _release_if_acquired(self, acquiring: asyncio.Future[Session]) -> None:
        if not acquiring.cancelled() and acquiring.exception() is None:
            # Closing may block for seconds: not on the caller's event loop.
            threading.Thread(target=self._release_session, daemon=True).start()

    def _release_session(self) -> None:
        """Outside a Dagster run or ``with`` block, the last call in flight closes the pool."""
        with self._lock():
            self._in_use -= 1
            if self._held or self._in_use > 0:
                return
            session, self._session = self._session, None
        if session is not None:
            session.close()

    # -- writing ---------------------------------------------------------------------------

    def write(self, table: str, data: Data, **options: Unpack[WriteOptions]) -> WriteResult:
        """Write ``data`` into ``table``; all of it or, on any error, none of it.

        Args:
            table: target table name (quoted as given: ``"Users"`` is not ``users``).
            data: a DataFrame or a ``pyarrow.Table`` / ``RecordBatch`` (encoded to COPY
                without pandas); an iterable or async iterable of those; an iterable or async
                iterable of tuples (name them with ``columns``) or dicts; a zero-argument
                callable returning one of these, which lets a failed write be retried; or a
                :class:`~resources.TableTypedSource` (``Fetcher.batches``), told the table's
                column types before it reads.
            **options: keyword-only, see :class:`~resources.WriteOptions`: ``mode``,
                ``key_columns``, ``columns``, ``chunk_size``, ``schema``, ``create``,
                ``commit``, ``replace``, ``on_bad_rows``, ``rejects_table``.

        Returns:
            A :class:`WriteResult` with rows, chunks, seconds and rows per second.

        Raises:
            BadValueError: a value would not survive the trip; names table, column and row.
            SchemaMismatchError: unknown table, missing or extra columns.
            TransientWriteError: the server or network failed, and retries ran out.
            Whatever the source raises, unchanged, with the write rolled back.
        """
        if isinstance(data, AsyncIterable) and _loop_running():
            raise TypeError(
                f"write({table!r}, ...) got an async iterable inside a running event loop, which "
                "it would have to block to consume: use `await writer.awrite(...)` instead"
            )
        from ._engine import execute_write

        request = self._request(table, data, options)
        session = self._acquire_session()
        try:
            return session.run(execute_write(self._pool(session), request, self._progress()))
        finally:
            self._release_session()

    async def awrite(self, table: str, data: Data, **options: Unpack[WriteOptions]) -> WriteResult:
        """The awaitable twin of :meth:`write`, with the same arguments, for async assets and
        plain asyncio code. Async iterables are consumed on the caller's event loop."""
        from ._engine import execute_write
        from ._session import bridge

        if isinstance(data, AsyncIterable):
            data = bridge(data, asyncio.get_running_loop())
        request = self._request(table, data, options)
        acquiring = asyncio.ensure_future(asyncio.to_thread(self._acquire_session))
        try:
            session = await asyncio.shield(acquiring)
        except asyncio.CancelledError:
            # The pool may still open in its thread: whoever gets it must hand it back.
            acquiring.add_done_callback(self._release_if_acquired)
            raise
        try:
            return await session.arun(execute_write(self._pool(session), request, self._progress()))
        finally:
            await asyncio.to_thread(self._release_session)

    def execute(self, sql: str, *args: Any) -> str:
        """Run one SQL command (DDL, maintenance) with bound ``args``; returns its status.
        Errors are this package's (:class:`TerminalWriteError`, :class:`TransientWriteError`,
        ...), with the driver's exception as ``__cause__``."""

        async def status(conn: Any) -> str:
            return str(await conn.execute(sql, *args))

        return self._call(sql, status)

    def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        """Run a query with bound ``args``; rows as dicts (for checks and metadata)."""

        async def rows(conn: Any) -> list[dict[str, Any]]:
            return [dict(r) for r in await conn.fetch(sql, *args)]

        return self._call(sql, rows)

    def _call(self, sql: str, work: Callable[[Any], Awaitable[T]]) -> T:
        from ._statement import Statement, run_statement

        statement = Statement.of(sql, self._timeout(), self._limits().per_transaction())
        session = self._acquire_session()
        try:
            return session.run(run_statement(self._pool(session), statement, work))
        finally:
            self._release_session()

    def _timeout(self) -> float | None:
        return self.round_trip_timeout or None

    def _request(self, table: str, data: Any, options: WriteOptions) -> WriteRequest:
        return WriteRequest.of(
            table,
            data,
            options,
            chunk_size=self.chunk_size,
            retries=self.retries,
            round_trip_timeout=self._timeout(),
            set_local=self._limits().per_transaction(),
        )

    @staticmethod
    def _pool(session: Session) -> Any:
        assert session.pool is not None, "an open session has a pool"
        return session.pool

    def _progress(self) -> Log:
        return self._log if self._log is not None else _logger


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
