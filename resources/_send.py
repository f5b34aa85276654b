"""Prepared chunks onto the wire through the mode's writer: encoded chunks as one COPY that
runs on from chunk to chunk, others one by one (setting aside rows the server refuses, with
``on_bad_rows="quarantine"``)."""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from ._binary_copy import copy_data
from ._chunks import Chunk, Prefetch
from ._guards import round_trip
from ._mode_writer import ModeWriter, pieces
from ._progress import Log, Stats, report
from ._quarantine import located, record_rejects, rejects_table_name, send_keeping_good_rows
from ._request import WriteRequest
from ._staged_writers import StagedWriter
from .errors import BulkWriteError

# One COPY statement carries at most this much: a statement stays well inside
# round_trip_timeout, and a failure re-sends little.
_STREAM_BYTES = 256 << 20
# A COPY waits this long for the next chunk before it ends: ending costs a round trip, and a
# 50,000-row chunk converts in about 0.1 s (ending at every gap cost 4 of a 200,000-row
# load's 7 round trips, 0.86x its 0 ms throughput at 10 ms RTT). A source slower than that
# gets a COPY per chunk, so that no statement stays open waiting for it.
_STREAM_WAIT = 0.5
# ... and it ends after this long whatever comes, far inside the default statement_timeout
# (600 s), which a COPY fed by a source that is slow but never quite 0.5 s late would meet.
_STREAM_SECONDS = 30.0


async def stream(
    conn: asyncpg.Connection,
    writer: ModeWriter,
    chunks: Prefetch,
    request: WriteRequest,
    stats: Stats,
    log: Log,
) -> None:
    """Send encoded chunks through as few COPY statements as possible: one COPY goes on
    from chunk to chunk while the next one is already prepared, so the server never waits
    for a statement to end and the next to start (each such gap cost ~5 ms, 10% of the
    narrow table's time at 50,000-row chunks). A COPY ends when the source falls more than
    _STREAM_WAIT behind, so that no statement stays open waiting for it, after _STREAM_BYTES
    or _STREAM_SECONDS, or before a chunk that has no encoding (it goes as records)."""
    pending = await anext(chunks, None)
    while pending is not None:
        if pending.payload is None:
            stats.add(pending, await send(conn, writer, pending, request))
            report(log, request, stats)
            pending = await anext(chunks, None)
            continue
        first, pending = pending, None
        # The rows of this one COPY: its line numbers count from the first chunk's offset.
        run = Chunk(first.offset, [], 0, rows=0)
        more = True

        async def rows(first: Chunk = first, run: Chunk = run) -> AsyncIterator[Any]:
            nonlocal pending, more
            chunk, sent, began = first, 0, time.monotonic()
            while True:
                payload = chunk.payload or b""
                async for piece in pieces(payload):
                    yield piece
                run.rows += chunk.rows
                sent += len(payload)
                stats.add(chunk, chunk.rows)
                report(log, request, stats)
                if sent >= _STREAM_BYTES or time.monotonic() - began > _STREAM_SECONDS:
                    break
                if not await chunks.ready_within(_STREAM_WAIT):
                    break
                following = await anext(chunks, None)
                if following is None or following.payload is None:
                    pending, more = following, following is not None
                    break
                chunk = following

        try:
            async with round_trip(conn, request, "COPY", chunk=run, writer=writer):
                await writer.send_stream(conn, copy_data(rows()))
        except BulkWriteError as exc:
            # The COPY's own error stands unless the source's failure is what ended it.
            if chunks.failure is None or exc.__cause__ is not chunks.failure:
                raise
        if chunks.failure is not None:
            # The source failed while the COPY read it: its exception, not the driver's
            # account of the aborted COPY, is what the caller can act on (a transient
            # FetchError keeps its retry).
            raise chunks.failure
        if pending is None and more:
            pending = await anext(chunks, None)


async def send(
    conn: asyncpg.Connection, writer: ModeWriter, chunk: Chunk, request: WriteRequest
) -> int:
    """Send one chunk; the rows the server reports changed. With on_bad_rows="quarantine",
    rows the server refuses are set aside with those the contract refused."""
    async with round_trip(conn, request, "chunk", chunk=chunk, writer=writer):
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
            chunk.rejects = located(sorted(chunk.rejects, key=lambda r: r.row), request.locate)
            stats_table = await record_rejects(
                conn,
                writer.info,
                rejects_table_name(writer.info.name, request.rejects_table),
                chunk.rejects,
                timeout=request.round_trip_timeout,
            )
            chunk.rejects_table = stats_table
        return affected
