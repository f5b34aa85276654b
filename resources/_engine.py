"""One bulk write, start to finish: resolve the table, stream chunks through the chosen mode in
one transaction (or one per chunk), retry what is transient, translate what is not."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import asyncpg
import pandas as pd

from ._binary_copy import copy_data, encode_frame, frame_to_values
from ._catalog import TableInfo, check_columns, check_key_columns, create_table_sql, describe_table
from ._identifiers import check_identifier, quote_ident
from ._locks import CREATE, SLICE, lock
from ._modes import (
    BINARY_COPY_MODES,
    MODES,
    STAGED_MODES,
    InsertWriter,
    ModeWriter,
    StagedWriter,
    make_writer,
    pieces,
)
from ._quarantine import (
    Rejected,
    convert_keeping_good_rows,
    record_rejects,
    rejects_table_name,
    send_keeping_good_rows,
)
from ._retry import is_data_error, is_transient, sleep_before_retry
from ._sequences import advance_sequences, column_maxima, merge_maxima, sequence_columns
from ._sources import is_replayable, iter_frames
from .errors import (
    BadValueError,
    BulkWriteError,
    OutcomeUnknownError,
    SchemaMismatchError,
    TerminalWriteError,
    TransientWriteError,
    WriteTimeoutError,
)
from .key_range import KeyRange
from .write_result import Mode, WriteResult

if TYPE_CHECKING:
    from asyncpg.pool import Pool

Commit = Literal["write", "chunk"]
OnBadRows = Literal["fail", "quarantine"]
# How often a round trip in flight checks that its connection is still there.
_WATCH_INTERVAL = 0.25
# One COPY statement carries at most this much: a statement stays well inside
# round_trip_timeout, and a failure re-sends little.
_STREAM_BYTES = 256 << 20
# Chunks converted ahead of the one being sent: conversion of chunk n+1 overlaps the server's
# ingest of chunk n. In memory at once: the chunk being sent, one queued, one being converted.
_PREFETCH = 1
# The server's context line for a row that COPY rejected; a trigger or function adds lines of
# its own ("PL/pgSQL function f() line 4 at RAISE"), which must not be taken for the row.
_COPY_CONTEXT = re.compile(r"^COPY .*, line (\d+)(?:, column (.+))?$", re.MULTILINE)
_EXECUTEMANY_ELEMENT = re.compile(r"argument \$(\d+) in element #(\d+)")
_INSERT_ARGUMENT = re.compile(r"query argument \$(\d+):")


class Progress(Protocol):
    def info(self, msg: str, *args: Any) -> Any: ...


@dataclass(slots=True)
class WriteRequest:
    table: str
    data: Any
    mode: Mode
    key_columns: tuple[str, ...]
    columns: tuple[str, ...] | None
    chunk_size: int
    schema: str | None
    create: bool
    commit: Commit
    replace: bool | KeyRange
    retries: int
    round_trip_timeout: float | None
    on_bad_rows: OnBadRows = "fail"
    rejects_table: str | None = None

    def __post_init__(self) -> None:
        """Refuse what cannot work before anything connects."""
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}; got {self.mode!r}")
        if self.commit not in ("write", "chunk"):
            raise ValueError(f"commit must be 'write' or 'chunk', got {self.commit!r}")
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, got {self.chunk_size}")
        if self.mode in STAGED_MODES and not self.key_columns:
            raise SchemaMismatchError(
                f"mode={self.mode!r} needs key_columns to match rows of {self.display}",
                table=self.display,
            )
        if self.replace is not False and (self.commit == "chunk" or self.mode in STAGED_MODES):
            raise ValueError(
                "replace empties the table (or the KeyRange) inside the write's one "
                "transaction: it needs commit='write' and an appending mode, got "
                f"commit={self.commit!r}, mode={self.mode!r}"
            )
        if self.on_bad_rows not in ("fail", "quarantine"):
            raise ValueError(
                f"on_bad_rows must be 'fail' or 'quarantine', got {self.on_bad_rows!r}"
            )
        if not isinstance(self.replace, bool | KeyRange):
            raise TypeError(
                f"replace must be True, False or a KeyRange, got {type(self.replace).__name__}"
            )
        # A name PostgreSQL would truncate could write another table: refused before
        # anything connects.
        check_identifier(self.table, what="table name")
        if self.schema is not None:
            check_identifier(self.schema, what="schema name")
        if self.rejects_table is not None:
            check_identifier(self.rejects_table, what="rejects_table")
        for column in (*self.key_columns, *(self.columns or ())):
            check_identifier(column, what="column name")
        if isinstance(self.replace, KeyRange):
            check_identifier(self.replace.column, what="KeyRange column")

    @property
    def display(self) -> str:
        return self.table if self.schema is None else f"{self.schema}.{self.table}"


@dataclass(slots=True)
class _Stats:
    rows: int = 0
    affected: int = 0
    chunks: int = 0
    duplicates: int = 0
    deleted: int = 0
    rejected: int = 0
    rejects_table: str | None = None
    created: bool = False
    columns: tuple[str, ...] = ()
    table: str = ""
    started: float = field(default_factory=time.perf_counter)
    maxima: dict[str, int] = field(default_factory=dict)

    def add(self, chunk: _Prepared, affected: int) -> None:
        self.rows += chunk.rows
        self.affected += affected
        self.chunks += 1
        self.duplicates += chunk.duplicates
        self.rejected += len(chunk.rejects)
        self.rejects_table = chunk.rejects_table or self.rejects_table
        merge_maxima(self.maxima, chunk.maxima)


async def execute_write(pool: Pool, request: WriteRequest, log: Progress) -> WriteResult:
    """Run ``request`` against ``pool``; retry the whole write after a transient failure when
    the source can be replayed."""
    started = time.perf_counter()
    # A one-shot source cannot be read again, and with commit="chunk" each chunk retries
    # itself: only a replayable one-transaction write is retried whole.
    whole = request.commit == "write" and is_replayable(request.data)
    stats = _Stats()

    async def attempt() -> None:
        nonlocal stats
        stats = _Stats()
        if request.commit == "chunk":
            await _write_per_chunk(pool, request, stats, log)
        else:
            await _write_in_one_transaction(pool, request, stats, log)

    attempts = await _with_retries(
        attempt, request, log, retries=request.retries if whole else 0, what="the write"
    )
    seconds = time.perf_counter() - started
    return WriteResult(
        table=stats.table or request.display,
        mode=request.mode,
        rows=stats.rows,
        rows_affected=stats.affected,
        chunks=stats.chunks,
        seconds=seconds,
        duplicates_resolved=stats.duplicates,
        rows_deleted=stats.deleted,
        rows_rejected=stats.rejected,
        rejects_table=stats.rejects_table,
        attempts=attempts,
        created=stats.created,
        columns=stats.columns,
    )


def _retryable(exc: BulkWriteError) -> bool:
    # A statement that outran statement_timeout would only outrun it again.
    return isinstance(exc, TransientWriteError) and not (
        isinstance(exc, WriteTimeoutError) and exc.limit == "statement_timeout"
    )


@dataclass(slots=True)
class _Prepared:
    offset: int
    records: list[tuple[Any, ...]]
    duplicates: int
    #: The chunk's rows already encoded for binary COPY; then ``records`` is empty.
    payload: bytes | memoryview | None = None
    rows: int = 0
    #: Global row number of each record, when rows were set aside (quarantine).
    positions: list[int] | None = None
    rejects: list[Rejected] = field(default_factory=list)
    rejects_table: str | None = None
    #: Highest value of each written serial/identity column in the chunk.
    maxima: dict[str, int] = field(default_factory=dict)

    def row(self, index: int) -> int:
        return self.offset + index if self.positions is None else self.positions[index]

    @property
    def span(self) -> str:
        return f"rows {self.row(0)}..{self.row(self.rows - 1)}" if self.rows else "no rows"


async def _prepared_chunks(
    frames: AsyncIterator[pd.DataFrame],
    info: TableInfo,
    columns: Sequence[str],
    request: WriteRequest,
) -> AsyncIterator[_Prepared]:
    offset = 0
    not_null = request.key_columns
    sequenced = sequence_columns(info, columns, request.mode)
    async for frame in frames:
        if frame.empty:
            continue
        if list(frame.columns) != list(columns):
            _check_same_columns(frame, columns, request, offset)
        frame = frame.reset_index(drop=True)

        def convert(part: pd.DataFrame, first_row: int) -> list[tuple[Any, ...]]:
            if isinstance(request.replace, KeyRange):
                _check_in_range(part, request.replace, request.display, first_row)
            return frame_to_values(part, info, columns, row_offset=first_row, not_null=not_null)

        def encode(part: pd.DataFrame, first_row: int) -> _Prepared:
            """Whole columns to binary COPY when every column has a vectorised encoder (the
            same checks, an order of magnitude less Python per row); else Python records."""
            if isinstance(request.replace, KeyRange):
                _check_in_range(part, request.replace, request.display, first_row)
            payload = encode_frame(part, info, columns, row_offset=first_row, not_null=not_null)
            if payload is None:
                records = frame_to_values(
                    part, info, columns, row_offset=first_row, not_null=not_null
                )
                return _Prepared(first_row, records, 0, rows=len(part))
            return _Prepared(first_row, [], 0, payload=payload, rows=len(part))

        if request.on_bad_rows == "quarantine":
            records, positions, rejects = await asyncio.to_thread(
                convert_keeping_good_rows, frame, convert, offset=offset
            )
            kept = frame.iloc[[p - offset for p in positions]] if rejects else frame
            prepared = _Prepared(
                offset,
                records,
                0,
                rows=len(records),
                positions=positions if rejects else None,
                rejects=rejects,
            )
        elif request.mode in BINARY_COPY_MODES:
            kept = frame
            prepared = await asyncio.to_thread(encode, frame, offset)
        else:
            kept = frame
            records = await asyncio.to_thread(convert, frame, offset)
            prepared = _Prepared(offset, records, 0, rows=len(records))
        if request.mode in STAGED_MODES:
            keys = list(request.key_columns)
            prepared.duplicates = int(kept.duplicated(subset=keys, keep="last").sum())
        if sequenced:
            prepared.maxima = column_maxima(kept, sequenced)
        yield prepared
        offset += len(frame)


def _check_in_range(frame: pd.DataFrame, key_range: KeyRange, table: str, offset: int) -> None:
    """A row outside the range being replaced would survive the next replace of this range
    and be loaded again: a duplicate. Refuse it before anything is sent."""
    values = frame[key_range.column]
    try:
        start, end = key_range.start, key_range.end
        if pd.api.types.is_datetime64_any_dtype(values.dtype):
            start, end = pd.Timestamp(start), pd.Timestamp(end)
        inside = (values >= start) & (values < end)
        outside = ~inside.fillna(False).to_numpy(dtype=bool)
    except TypeError as exc:
        raise BadValueError(
            f"values of {key_range.column!r} cannot be compared with the range being replaced "
            f"({key_range}): {exc}",
            table=table,
            column=key_range.column,
            row=offset,
        ) from None
    if outside.any():
        position = int(outside.argmax())
        raise BadValueError(
            f"{values.iloc[position]!r} is outside the range being replaced ({key_range}); "
            "a row outside it would not be replaced by the next run of this range",
            table=table,
            column=key_range.column,
            row=offset + position,
        )


def _check_same_columns(
    frame: pd.DataFrame, columns: Sequence[str], request: WriteRequest, offset: int
) -> None:
    """Every chunk must carry the first chunk's columns (in any order): a column that comes
    and goes would otherwise be dropped or NULLed without a word."""
    missing = [c for c in columns if c not in frame.columns]
    extra = [c for c in frame.columns if c not in columns]
    if missing or extra:
        raise SchemaMismatchError(
            f"the chunk of {request.display} starting at row {offset} has other columns than "
            f"the first chunk: missing {missing}, extra {extra}",
            table=request.display,
        )


class _Prefetch:
    """Chunks prepared one ahead: conversion of chunk n+1 (in a worker thread) overlaps the
    server's ingest of chunk n. ``ready()`` tells whether the next one is already waiting."""

    def __init__(self, source: AsyncIterator[_Prepared]) -> None:
        self._source = source
        self._queue: asyncio.Queue[tuple[_Prepared | None, BaseException | None]] = asyncio.Queue(
            maxsize=_PREFETCH
        )
        self._task: asyncio.Task[None] | None = None

    def __aiter__(self) -> _Prefetch:
        if self._task is None:
            self._task = asyncio.create_task(self._produce())
        return self

    async def __anext__(self) -> _Prepared:
        self.__aiter__()
        item, error = await self._queue.get()
        if error is not None:
            raise error
        if item is None:
            await self._queue.put((None, None))  # stays exhausted for later calls
            raise StopAsyncIteration
        return item

    def ready(self) -> bool:
        return not self._queue.empty()

    async def _produce(self) -> None:
        try:
            async for item in self._source:
                await self._queue.put((item, None))
            await self._queue.put((None, None))
        except asyncio.CancelledError:
            raise  # the consumer is gone; nobody would read the queue
        except BaseException as exc:  # handed to the consumer, which re-raises it
            await self._queue.put((None, exc))

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


async def _first_and_rest(
    request: WriteRequest,
) -> tuple[pd.DataFrame | None, AsyncIterator[pd.DataFrame]]:
    frames = iter_frames(
        request.data, columns=request.columns, chunk_size=request.chunk_size, table=request.display
    )
    first = await anext(frames, None)

    async def chained() -> AsyncIterator[pd.DataFrame]:
        if first is not None:
            yield first
        async for frame in frames:
            yield frame

    return first, chained()


def _data_columns(request: WriteRequest, first: pd.DataFrame) -> tuple[str, ...]:
    """The data's column names, checked before anything is sent."""
    columns = tuple(str(c) for c in first.columns)
    if len(set(columns)) != len(columns):
        dupes = sorted({c for c in columns if columns.count(c) > 1})
        raise SchemaMismatchError(
            f"data for {request.display} names columns more than once: {dupes}",
            table=request.display,
        )
    for column in columns:
        try:
            check_identifier(column, what="column name")
        except ValueError as exc:
            raise SchemaMismatchError(
                f"data for {request.display}: {exc}", table=request.display
            ) from None
    return columns


async def _resolve_target(
    conn: asyncpg.Connection, request: WriteRequest, first: pd.DataFrame, stats: _Stats
) -> tuple[TableInfo, tuple[str, ...]]:
    columns = _data_columns(request, first)
    info = await describe_table(conn, request.table, schema=request.schema)
    if info is None and request.create:
        # First loads racing to create one table take turns (CREATE ... IF NOT EXISTS itself
        # races on the catalog's unique index); the later one then finds the table.
        await lock(conn, CREATE, request.schema, request.table)
        info = await describe_table(conn, request.table, schema=request.schema)
    if info is None:
        if not request.create:
            raise SchemaMismatchError(
                f"table {request.display} does not exist (pass create=True to create it from "
                "the data's dtypes)",
                table=request.display,
            )
        # CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the schema
        # exists: a loader with CREATE on its schema only must not need it.
        if request.schema is not None and not await conn.fetchval(
            "SELECT true FROM pg_namespace WHERE nspname = $1", request.schema
        ):
            await conn.execute(f"CREATE SCHEMA {quote_ident(request.schema)}")
        await conn.execute(
            create_table_sql(
                first, request.table, schema=request.schema, key_columns=request.key_columns
            )
        )
        info = await describe_table(conn, request.table, schema=request.schema)
        assert info is not None, "a table created in this transaction is visible to it"
        stats.created = True
    check_columns(info, columns, mode=request.mode, key_columns=request.key_columns)
    if isinstance(request.replace, KeyRange) and request.replace.column not in columns:
        raise SchemaMismatchError(
            f"replace={request.replace} for {request.display}: the data has no column "
            f"{request.replace.column!r}, so its rows cannot be checked against the range",
            table=request.display,
        )
    if request.mode in STAGED_MODES:
        check_key_columns(info, columns, request.key_columns, mode=request.mode)
    stats.columns = columns
    stats.table = info.display
    return info, columns


async def _write_in_one_transaction(
    pool: Pool, request: WriteRequest, stats: _Stats, log: Progress
) -> None:
    first, frames = await _first_and_rest(request)
    if first is None and request.replace is False:
        return
    if first is not None:
        _data_columns(request, first)
    async with _connection(pool, request) as conn, _transaction(conn, request):
        if first is None:
            await _clear(conn, request, stats)
            return
        async with _round_trip(conn, request, "table lookup"):
            info, columns = await _resolve_target(conn, request, first, stats)
        if request.replace is not False:
            await _clear(conn, request, stats)
        writer = await _begin_writer(
            conn, request, info, columns, fresh=request.replace is True or stats.created
        )
        async with contextlib.aclosing(
            _Prefetch(_prepared_chunks(frames, info, columns, request))
        ) as chunks:
            if writer.streams and request.on_bad_rows == "fail":
                await _stream(conn, writer, chunks, request, stats, log)
            else:
                async for chunk in chunks:
                    stats.add(chunk, await _send(conn, writer, chunk, request))
                    _report(log, request, stats)
        async with _round_trip(conn, request, "apply", writer=writer):
            deferred = await writer.finish(conn)
        if deferred is not None:
            # One statement for the whole write: a key repeated across chunks counts too.
            stats.affected, stats.duplicates = deferred
        if isinstance(writer, StagedWriter) and writer.rejected:
            await _record_applied_rejects(conn, request, writer, stats, log)
        await _advance_sequences(conn, request, info, stats.maxima, log)


async def _record_applied_rejects(
    conn: asyncpg.Connection,
    request: WriteRequest,
    writer: StagedWriter,
    stats: _Stats,
    log: Progress,
) -> None:
    """Rows the staged apply refused (quarantine): counted out of the rows written and
    recorded with the others."""
    rejects = sorted(writer.rejected, key=lambda r: r.row)
    async with _round_trip(conn, request, "rejects"):
        stats.rejects_table = await record_rejects(
            conn,
            writer.info,
            rejects_table_name(writer.info.name, request.rejects_table),
            rejects,
            timeout=request.round_trip_timeout,
        )
    stats.rows -= len(rejects)
    stats.rejected += len(rejects)
    log.info(
        "%s: the apply refused %d rows, set aside in %s",
        stats.table or request.display,
        len(rejects),
        stats.rejects_table,
    )


async def _advance_sequences(
    conn: asyncpg.Connection,
    request: WriteRequest,
    info: TableInfo,
    maxima: dict[str, int],
    log: Progress,
) -> None:
    """Before COMMIT: serial and identity columns written with explicit values get their
    sequences moved past those values."""
    if not maxima:
        return
    async with _round_trip(conn, request, "sequences"):
        lines = await advance_sequences(conn, info, maxima)
    for line in lines:
        log.info("%s", line)


async def _clear(conn: asyncpg.Connection, request: WriteRequest, stats: _Stats) -> None:
    """Remove what the write replaces, inside its transaction.

    A whole table is TRUNCATEd: readers wait on its ACCESS EXCLUSIVE lock and then see the new
    rows, never a half-loaded table. A KeyRange is DELETEd: readers keep seeing the old slice
    until COMMIT, and writers of other ranges are not blocked (row locks only)."""
    async with _round_trip(conn, request, "replace"):
        info = await describe_table(conn, request.table, schema=request.schema)
        if info is None:
            raise SchemaMismatchError(
                f"table {request.display} does not exist, so it cannot be replaced",
                table=request.display,
            )
        if isinstance(request.replace, KeyRange):
            key_range = request.replace
            if key_range.column not in info.columns:
                raise SchemaMismatchError(
                    f"replace={key_range}: table {info.display} has no column {key_range.column!r}",
                    table=info.display,
                )
            # Two writers of one slice take turns: under READ COMMITTED a DELETE cannot see
            # rows that another writer of the slice commits after it began, so without the
            # turn both loads would survive. The DELETE runs after the wait, as a statement
            # of its own, so that its snapshot includes what the other writer committed.
            await lock(conn, SLICE, info.oid, key_range.column, key_range.start, key_range.end)
            try:
                status = await conn.execute(
                    f"DELETE FROM {info.qualified} WHERE {key_range.where_sql()}",
                    key_range.start,
                    key_range.end,
                )
            except asyncpg.ForeignKeyViolationError as exc:
                # No row of the new data is at fault: the old rows cannot go.
                raise TerminalWriteError(
                    f"cannot replace {key_range} of {info.display}: rows of it are still "
                    f"referenced ({exc.detail or exc}); a replace deletes the slice's rows, "
                    "so the referencing rows must go first (or the foreign key be ON DELETE "
                    "CASCADE / SET NULL)",
                    table=info.display,
                ) from exc
            stats.deleted = int(status.rsplit(" ", 1)[-1])
        else:
            await conn.execute(f"TRUNCATE {info.qualified}")
    stats.table = info.display


async def _write_per_chunk(pool: Pool, request: WriteRequest, stats: _Stats, log: Progress) -> None:
    first, frames = await _first_and_rest(request)
    if first is None:
        return
    _data_columns(request, first)
    async with (
        _connection(pool, request) as conn,
        _transaction(conn, request),
        _round_trip(conn, request, "table lookup"),
    ):
        info, columns = await _resolve_target(conn, request, first, stats)

    async def write_chunk(chunk: _Prepared) -> None:
        async with _connection(pool, request) as conn:
            async with _transaction(conn, request):
                writer = await _begin_writer(conn, request, info, columns)
                affected = await _send(conn, writer, chunk, request)
                await _advance_sequences(conn, request, info, chunk.maxima, log)
            stats.add(chunk, affected)  # counted once its COMMIT is through

    async with contextlib.aclosing(
        _Prefetch(_prepared_chunks(frames, info, columns, request))
    ) as chunks:
        try:
            async for chunk in chunks:
                await _with_retries(
                    functools.partial(write_chunk, chunk),
                    request,
                    log,
                    retries=request.retries,
                    what=f"chunk {stats.chunks + 1}",
                )
                _report(log, request, stats)
        except BulkWriteError as exc:
            exc.committed_rows = stats.rows
            exc.args = (
                f"{exc.args[0]}; with commit='chunk', the {stats.rows:,} rows of the "
                f"{stats.chunks} chunk(s) before this one stay committed",
            )
            raise


async def _with_retries(
    attempt: Callable[[], Awaitable[None]],
    request: WriteRequest,
    log: Progress,
    *,
    retries: int,
    what: str,
) -> int:
    """Run ``attempt`` until it succeeds, retrying a transient failure up to ``retries``
    times with backoff; each attempt is atomic, so a failed one left nothing behind.
    Returns the number of attempts made."""
    attempts = 1
    while True:
        try:
            await attempt()
            return attempts
        except BulkWriteError as exc:
            if not _retryable(exc) or attempts > retries:
                raise
            log.info(
                "%s: %s failed (%s); nothing of it was committed, retrying",
                request.display,
                what,
                exc,
            )
            await sleep_before_retry(attempts)
            attempts += 1


async def _begin_writer(
    conn: asyncpg.Connection,
    request: WriteRequest,
    info: TableInfo,
    columns: Sequence[str],
    *,
    fresh: bool = False,
) -> ModeWriter:
    """The mode's writer, begun. ``fresh``: the table was TRUNCATEd or created earlier in
    this transaction."""
    writer = make_writer(
        request.mode,
        info,
        columns,
        key_columns=request.key_columns,
        timeout=request.round_trip_timeout,
        apply_once=request.commit == "write",
        quarantine=request.on_bad_rows == "quarantine",
        # PostgreSQL allows FREEZE only after TRUNCATE or CREATE in the same subtransaction,
        # never on a partitioned table; quarantine's retries of a chunk run in savepoints.
        freeze=fresh and request.on_bad_rows == "fail" and not info.partitioned,
    )
    async with _round_trip(conn, request, "staging"):
        await writer.begin(conn)
    return writer


@contextlib.asynccontextmanager
async def _transaction(conn: asyncpg.Connection, request: WriteRequest) -> AsyncIterator[None]:
    """BEGIN; COMMIT when the block succeeds, roll back (or close the connection) when not."""
    transaction = conn.transaction()
    async with _round_trip(conn, request, "BEGIN"):
        await transaction.start()
    try:
        yield
    except BaseException as exc:
        await _abandon(conn, transaction, exc)
        raise
    await _commit(conn, transaction, request)


async def _stream(
    conn: asyncpg.Connection,
    writer: ModeWriter,
    chunks: _Prefetch,
    request: WriteRequest,
    stats: _Stats,
    log: Progress,
) -> None:
    """Send encoded chunks through as few COPY statements as possible: one COPY goes on
    from chunk to chunk while the next one is already prepared, so the server never waits
    for a statement to end and the next to start (each such gap cost ~5 ms, 10% of the
    narrow table's time at 50,000-row chunks). A COPY ends when the source falls behind,
    so that no statement stays open waiting for it, after _STREAM_BYTES, or before a chunk
    that has no encoding (it goes as records)."""
    pending = await anext(chunks, None)
    while pending is not None:
        if pending.payload is None:
            stats.add(pending, await _send(conn, writer, pending, request))
            _report(log, request, stats)
            pending = await anext(chunks, None)
            continue
        first, pending = pending, None
        # The rows of this one COPY: its line numbers count from the first chunk's offset.
        run = _Prepared(first.offset, [], 0, rows=0)
        more = True

        async def rows(first: _Prepared = first, run: _Prepared = run) -> AsyncIterator[Any]:
            nonlocal pending, more
            chunk, sent = first, 0
            while True:
                payload = chunk.payload or b""
                async for piece in pieces(payload):
                    yield piece
                run.rows += chunk.rows
                sent += len(payload)
                stats.add(chunk, chunk.rows)
                _report(log, request, stats)
                if not chunks.ready() or sent >= _STREAM_BYTES:
                    break
                following = await anext(chunks, None)
                if following is None or following.payload is None:
                    pending, more = following, following is not None
                    break
                chunk = following

        async with _round_trip(conn, request, "COPY", chunk=run, writer=writer):
            await writer.send_stream(conn, copy_data(rows()))
        if pending is None and more:
            pending = await anext(chunks, None)


async def _send(
    conn: asyncpg.Connection, writer: ModeWriter, chunk: _Prepared, request: WriteRequest
) -> int:
    """Send one chunk; the rows the server reports changed. With on_bad_rows="quarantine",
    rows the server refuses are set aside with those the contract refused."""
    async with _round_trip(conn, request, "chunk", chunk=chunk, writer=writer):
        if chunk.payload is not None:
            return await writer.send_payload(conn, chunk.payload)
        if request.on_bad_rows != "quarantine":
            return await writer.send(conn, chunk.records)
        positions = chunk.positions or [chunk.row(i) for i in range(len(chunk.records))]
        affected, refused = await send_keeping_good_rows(
            conn,
            functools.partial(writer.send, conn),
            chunk.records,
            positions,
            writer.columns,
        )
        if refused:
            kept = set(positions) - {r.row for r in refused}
            chunk.positions = [p for p in positions if p in kept]
            chunk.records = [
                record for record, p in zip(chunk.records, positions, strict=True) if p in kept
            ]
            chunk.rows = len(chunk.records)
            chunk.rejects.extend(refused)
        if isinstance(writer, StagedWriter) and writer.apply_once:
            # Staged in this order; the apply at finish() may still refuse some of them.
            writer.positions.extend(positions if chunk.positions is None else chunk.positions)
        if chunk.rejects:
            chunk.rejects.sort(key=lambda r: r.row)
            stats_table = await record_rejects(
                conn,
                writer.info,
                rejects_table_name(writer.info.name, request.rejects_table),
                chunk.rejects,
                timeout=request.round_trip_timeout,
            )
            chunk.rejects_table = stats_table
        return affected


def _report(log: Progress, request: WriteRequest, stats: _Stats) -> None:
    elapsed = time.perf_counter() - stats.started
    rate = stats.rows / elapsed if elapsed > 0 else 0.0
    log.info(
        "%s: chunk %d written (%s): %s rows so far, %s rows/s%s",
        stats.table or request.display,
        stats.chunks,
        request.mode,
        f"{stats.rows:,}",
        f"{rate:,.0f}",
        f"; {stats.rejected:,} bad rows set aside in {stats.rejects_table}"
        if stats.rejected
        else "",
    )


@contextlib.asynccontextmanager
async def _connection(pool: Pool, request: WriteRequest) -> AsyncIterator[asyncpg.Connection]:
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
        raise _translate(exc, request, None, None) from exc
    try:
        yield conn
    except BaseException as exc:
        if not _state_known(exc) and not _lost(conn):
            conn.terminate()  # e.g. BEGIN itself failed mid-protocol
        raise
    finally:
        # A failed release (its reset query met a broken connection) has already terminated
        # the connection; the write's own outcome, success or error, is what the caller needs.
        with contextlib.suppress(Exception):
            await pool.release(conn)


@contextlib.asynccontextmanager
async def _round_trip(
    conn: asyncpg.Connection,
    request: WriteRequest,
    what: str,
    *,
    chunk: _Prepared | None = None,
    writer: ModeWriter | None = None,
) -> AsyncIterator[None]:
    """Apply the client-side limit and translate driver errors. A round trip whose server went
    silent (a backend killed mid-COPY can leave the client waiting for ever) fails instead of
    hanging; any error on a connection that turns out lost is transient, whatever asyncpg
    calls it."""
    async with _translated(conn, request, what, chunk, writer), _watched(conn, request, what):
        yield


@contextlib.asynccontextmanager
async def _watched(
    conn: asyncpg.Connection, request: WriteRequest, what: str
) -> AsyncIterator[None]:
    """The client-side limit, and a watchdog on the connection: asyncpg waits for its
    transport to accept more COPY data without noticing that the connection was lost (its
    flow-control event is never set again), which would otherwise hang until
    round_trip_timeout (15 minutes)."""
    task = asyncio.current_task()
    assert task is not None, "round trips run inside a task"
    watchdog = asyncio.create_task(_cancel_when_lost(conn, task))

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
async def _translated(
    conn: asyncpg.Connection,
    request: WriteRequest,
    what: str,
    chunk: _Prepared | None,
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
        if _lost(conn) and not isinstance(exc, asyncpg.PostgresError):
            raise TransientWriteError(
                f"connection lost during {what} for {request.display}: {type(exc).__name__}: {exc}",
                table=request.display,
            ) from exc
        raise _translate(exc, request, chunk, writer) from exc


async def _cancel_when_lost(conn: asyncpg.Connection, task: asyncio.Task[Any]) -> None:
    while not _lost(conn):
        await asyncio.sleep(_WATCH_INTERVAL)
    task.cancel()


def _lost(conn: asyncpg.Connection) -> bool:
    try:
        return conn.is_closed()
    except asyncpg.InterfaceError:
        return True  # the pool already detached the lost connection


async def _abandon(conn: asyncpg.Connection, transaction: Any, error: BaseException) -> None:
    """Roll back after a clean error (a bad value caught here, an error the server reported);
    close a connection whose state is unknown (lost, timed out or confused mid-protocol), so
    that the pool never hands it out again: the server then rolls back on its own."""
    if _lost(conn):
        return
    if not _state_known(error):
        conn.terminate()
        return
    try:
        async with asyncio.timeout(5):
            await transaction.rollback()
    except BaseException:
        conn.terminate()


def _state_known(error: BaseException) -> bool:
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


async def _commit(conn: asyncpg.Connection, transaction: Any, request: WriteRequest) -> None:
    try:
        async with _round_trip(conn, request, "COMMIT"):
            await transaction.commit()
    except TransientWriteError as exc:
        if request.mode in STAGED_MODES or request.replace is not False:
            raise  # running it again converges on the same rows
        raise OutcomeUnknownError(
            f"the connection was lost during COMMIT of a {request.mode} into "
            f"{request.display}: the rows may or may not be stored, so they are not sent again",
            table=request.display,
        ) from exc


def _translate(
    exc: BaseException,
    request: WriteRequest,
    chunk: _Prepared | None,
    writer: ModeWriter | None,
) -> BulkWriteError:
    table = request.display
    if isinstance(exc, asyncpg.PostgresError):
        state = exc.sqlstate or ""
        detail = f" ({exc.detail})" if getattr(exc, "detail", None) else ""
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        text = f"{message}{detail} [SQLSTATE {state}]"
        if state == "57014":
            return WriteTimeoutError(
                f"statement_timeout cancelled the write into {table}: {text}",
                limit="statement_timeout",
                table=table,
            )
        if state == "55P03":
            return WriteTimeoutError(
                f"lock_timeout: {table} stayed locked: {text}", limit="lock_timeout", table=table
            )
        if is_transient(exc):
            return TransientWriteError(f"write into {table} interrupted: {text}", table=table)
        if state in ("42P01", "3F000", "42703"):
            return SchemaMismatchError(f"write into {table}: {text}", table=table)
        if is_data_error(exc):
            column, row = _locate(exc, chunk, writer)
            if row is None and chunk is not None:
                text += f" in {chunk.span}"
            return BadValueError(text, table=table, column=column, row=row)
        return TerminalWriteError(f"write into {table} failed: {text}", table=table)
    if is_transient(exc):
        return TransientWriteError(
            f"write into {table} interrupted: {type(exc).__name__}: {exc}", table=table
        )
    if isinstance(exc, TypeError | ValueError | OverflowError) and chunk is not None:
        return BadValueError(
            f"{type(exc).__name__}: {exc} in {chunk.span}",
            table=table,
            column=None,
            row=None,
        )
    return TerminalWriteError(
        f"write into {table} failed: {type(exc).__name__}: {exc}", table=table
    )


def _locate(
    exc: asyncpg.PostgresError, chunk: _Prepared | None, writer: ModeWriter | None
) -> tuple[str | None, int | None]:
    column = getattr(exc, "column_name", None)
    row = getattr(exc, "input_row", None)
    columns = writer.columns if writer is not None else ()
    context = getattr(exc, "context", None) or ""
    copy_lines = _COPY_CONTEXT.findall(context)
    if row is not None:
        pass  # the staged apply found the row itself
    elif copy_lines:
        line, copy_column = copy_lines[-1]
        row = _row(chunk, int(line) - 1)
        column = column or copy_column or None
    elif match := _EXECUTEMANY_ELEMENT.search(str(exc)):
        index = int(match.group(1)) - 1
        column = columns[index] if index < len(columns) else column
        row = _row(chunk, int(match.group(2)))
    elif (match := _INSERT_ARGUMENT.search(str(exc))) and isinstance(writer, InsertWriter):
        index = int(match.group(1)) - 1
        width = max(1, len(columns))
        column = columns[index % width]
        row = _row(chunk, writer.batch_start + index // width)
    return column, row


def _row(chunk: _Prepared | None, index: int) -> int:
    return index if chunk is None else chunk.row(index)
