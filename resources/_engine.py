"""One bulk write, start to finish: resolve the table, stream chunks through the chosen mode in
one transaction (or one per chunk), retry what is transient."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

import asyncpg
import pandas as pd

from ._catalog import TableInfo
from ._catalog_cache import is_stale
from ._chunks import Chunk, Prefetch, first_and_rest, prepared_chunks
from ._guards import connection, round_trip, transaction
from ._mode_writer import ModeWriter, WriterOptions
from ._progress import Log, Stats, report
from ._quarantine import located, record_rejects, rejects_table_name
from ._request import WriteRequest
from ._retry import sleep_before_retry
from ._row_locator import Opened
from ._send import send, stream
from ._sequences import FoldedAdvance, advance_sequences
from ._sources import is_replayable
from ._staged_writers import StagedWriter
from ._target import clear, data_columns, resolve_target
from ._target_cache import known_target, prelude
from ._txn import Transaction
from ._typed_source import with_table_types
from .errors import BulkWriteError, SchemaMismatchError
from .write_result import WriteResult

if TYPE_CHECKING:
    from asyncpg.pool import Pool


async def execute_write(pool: Pool, request: WriteRequest, log: Log) -> WriteResult:
    """Run ``request`` against ``pool``; retry the whole write after a transient failure when
    the source can be replayed."""
    started = time.perf_counter()
    request = await with_table_types(pool, request)
    # A one-shot source cannot be read again, and with commit="chunk" each chunk retries
    # itself: only a replayable one-transaction write is retried whole.
    whole = request.commit == "write" and is_replayable(request.data)
    opened = Opened(request.data)
    request = dataclasses.replace(request, data=opened.data, locate=opened.locate)
    stats = Stats()

    async def attempt() -> None:
        nonlocal stats
        stats = Stats()
        if request.commit == "chunk":
            await _write_per_chunk(pool, request, stats, log)
        else:
            await _write_in_one_transaction(pool, request, stats, log)

    try:
        attempts = await _with_retries(
            attempt, request, log, retries=request.retries if whole else 0, what="the write"
        )
    except BulkWriteError as exc:
        opened.name(exc)  # a bad value: which file and line its row came from
        raise
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


async def _write_in_one_transaction(
    pool: Pool, request: WriteRequest, stats: Stats, log: Log
) -> None:
    first, frames = await first_and_rest(request)
    if first is None and request.replace is False:
        return
    if first is not None:
        data_columns(request, first)
    async with connection(pool, request) as conn:
        target = None if first is None else await known_target(pool, conn, request, first, stats)
        if target is None:
            # No rows, or no table yet: read (or create) it inside the transaction.
            async with transaction(conn, request) as txn:
                await _write_body(conn, txn, request, first, frames, None, stats, log)
            return
        for attempt in (1, 2):
            info, columns = target
            # The stage of update and upsert is made by the BEGIN batch too.
            writer = _new_writer(request, info, columns, fresh=request.replace is True)
            begun = False
            try:
                statements = [*prelude(request, info), *writer.setup_sql()]
                async with transaction(conn, request, statements) as txn:
                    begun = True
                    await _write_body(
                        conn, txn, request, first, frames, target, stats, log, writer=writer
                    )
                return
            except BulkWriteError as exc:
                # The BEGIN batch found the table changed: nothing of the data was read or
                # sent yet, so the write starts over from a fresh description.
                if begun or attempt == 2 or not is_stale(exc):
                    raise
            target = await known_target(pool, conn, request, first, stats, fresh=True)
            if target is None:
                raise SchemaMismatchError(
                    f"table {request.display} was dropped during the write", table=request.display
                )


async def _write_body(
    conn: asyncpg.Connection,
    txn: Transaction,
    request: WriteRequest,
    first: pd.DataFrame | None,
    frames: AsyncIterator[pd.DataFrame],
    target: tuple[TableInfo, tuple[str, ...]] | None,
    stats: Stats,
    log: Log,
    *,
    writer: ModeWriter | None = None,
) -> None:
    """The write inside its transaction. ``target``: the table as the BEGIN batch found it
    (locked, its description checked, the slice's turn taken); None: read it here.
    ``writer``: begun by the BEGIN batch; None: made and begun here."""
    if first is None:
        native = await clear(conn, request, stats, log=log)
        if native is not None:
            txn.before_commit.extend(native.attach)
        return
    native = None
    if target is None:
        async with round_trip(conn, request, "table lookup"):
            info, columns = await resolve_target(conn, request, first, stats)
        if request.replace is not False:
            native = await clear(conn, request, stats, log=log)
    else:
        info, columns = target
        if request.replace is not False:
            native = await clear(conn, request, stats, info=info, log=log)
    if native is not None:
        # The rows go to the slice's child, emptied or created in this transaction. Only
        # appending modes replace, and their writers make nothing in the BEGIN batch.
        writer = await _begin_writer(conn, request, native.table, columns, fresh=True)
        # ATTACH of a new child travels with COMMIT: its SHARE UPDATE EXCLUSIVE lock on the
        # parent is held for that one round trip only.
        txn.before_commit.extend(native.attach)
    elif writer is None:
        writer = await _begin_writer(
            conn, request, info, columns, fresh=request.replace is True or stats.created
        )
    async with contextlib.aclosing(
        Prefetch(prepared_chunks(frames, info, columns, request))
    ) as chunks:
        if writer.streams and request.on_bad_rows == "fail":
            await stream(conn, writer, chunks, request, stats, log)
        else:
            async for chunk in chunks:
                stats.add(chunk, await send(conn, writer, chunk, request))
                report(log, request, stats)
    async with round_trip(conn, request, "apply", writer=writer):
        deferred = await writer.finish(conn)
    if deferred is not None:
        # One statement for the whole write: a key repeated across chunks counts too.
        stats.affected, stats.duplicates = deferred
    if isinstance(writer, StagedWriter) and writer.rejected:
        await _record_applied_rejects(conn, request, writer, stats, log)
    await _advance_sequences(conn, txn, request, info, stats.maxima, log)


async def _record_applied_rejects(
    conn: asyncpg.Connection,
    request: WriteRequest,
    writer: StagedWriter,
    stats: Stats,
    log: Log,
) -> None:
    """Rows the staged apply refused (quarantine): counted out of the rows written and
    recorded with the others."""
    rejects = located(sorted(writer.rejected, key=lambda r: r.row), request.locate)
    async with round_trip(conn, request, "rejects"):
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
    txn: Transaction,
    request: WriteRequest,
    info: TableInfo,
    maxima: dict[str, int],
    log: Log,
) -> None:
    """Before COMMIT: serial and identity columns written with explicit values get their
    sequences moved past those values, in one statement sent with COMMIT; its report is
    logged once COMMIT is through."""
    if not maxima:
        return
    folded = FoldedAdvance.of(info, maxima)
    if folded is None:
        async with round_trip(conn, request, "sequences"):
            lines = await advance_sequences(conn, info, maxima)
        for line in lines:
            log.info("%s", line)
        return
    txn.before_commit.append(folded.sql())
    txn.notice_listeners.append(folded.heard)
    txn.after_commit.append(lambda: _log_lines(log, folded))


def _log_lines(log: Log, folded: FoldedAdvance) -> None:
    for line in folded.lines():
        log.info("%s", line)


async def _write_per_chunk(pool: Pool, request: WriteRequest, stats: Stats, log: Log) -> None:
    first, frames = await first_and_rest(request)
    if first is None:
        return
    data_columns(request, first)
    async with (
        connection(pool, request) as conn,
        transaction(conn, request),
        round_trip(conn, request, "table lookup"),
    ):
        info, columns = await resolve_target(conn, request, first, stats)

    async def write_chunk(chunk: Chunk) -> None:
        async with connection(pool, request) as conn:
            async with transaction(conn, request) as txn:
                writer = await _begin_writer(conn, request, info, columns)
                affected = await send(conn, writer, chunk, request)
                await _advance_sequences(conn, txn, request, info, chunk.maxima, log)
            stats.add(chunk, affected)  # counted once its COMMIT is through

    async with contextlib.aclosing(
        Prefetch(prepared_chunks(frames, info, columns, request))
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
                report(log, request, stats)
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
    log: Log,
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
            if not exc.retryable or attempts > retries:
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
    writer = _new_writer(request, info, columns, fresh=fresh)
    async with round_trip(conn, request, "staging"):
        await writer.begin(conn)
    return writer


def _new_writer(
    request: WriteRequest, info: TableInfo, columns: Sequence[str], *, fresh: bool
) -> ModeWriter:
    options = WriterOptions(
        key_columns=request.key_columns,
        apply_once=request.commit == "write",
        quarantine=request.on_bad_rows == "quarantine",
        # PostgreSQL allows FREEZE only after TRUNCATE or CREATE in the same subtransaction,
        # never on a partitioned table; quarantine's retries of a chunk run in savepoints.
        freeze=fresh and request.on_bad_rows == "fail" and not info.partitioned,
    )
    return request.write_mode.writer(info, columns, request.round_trip_timeout, options)
