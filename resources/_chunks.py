"""The source's DataFrames as chunks ready to send: checked against the table and the range
being replaced, encoded for binary COPY (or converted to records), and prepared one ahead of
the chunk being sent."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa

from ._arrow_copy import encode_batch, to_frame
from ._binary_copy import encode_frame
from ._catalog import TableInfo
from ._quarantine import Rejected, convert_keeping_good_rows
from ._records import frame_to_values
from ._request import WriteRequest
from ._sequences import column_maxima, sequence_columns
from ._sources import Chunk as SourceChunk
from ._sources import iter_frames
from .errors import BadValueError, SchemaMismatchError
from .key_range import KeyRange

# Chunks converted ahead of the one being sent: conversion of chunk n+1 overlaps the server's
# ingest of chunk n. In memory at once: the chunk being sent, one queued, one being converted.
_PREFETCH = 1


@dataclass(slots=True)
class Chunk:
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


async def prepared_chunks(
    frames: AsyncIterator[SourceChunk],
    info: TableInfo,
    columns: Sequence[str],
    request: WriteRequest,
) -> AsyncIterator[Chunk]:
    offset = 0
    not_null = request.key_columns
    sequenced = sequence_columns(info, columns, request.write_mode)
    async for item in frames:
        if isinstance(item, pa.RecordBatch):
            if item.num_rows == 0:
                continue
            if item.schema.names != list(columns):
                _check_same_columns(item.schema.names, columns, request, offset)
                item = item.select(list(columns))
            if request.write_mode.binary_copy and request.on_bad_rows == "fail":
                arrow_chunk = await asyncio.to_thread(
                    _encode_arrow, item, info, columns, request, offset
                )
                if arrow_chunk is not None:
                    _describe(arrow_chunk, item, request, sequenced)
                    yield arrow_chunk
                    offset += item.num_rows
                    continue
            frame = await asyncio.to_thread(to_frame, item)
        else:
            frame = item
        if frame.empty:
            continue
        if list(frame.columns) != list(columns):
            _check_same_columns(list(frame.columns), columns, request, offset)
        frame = frame.reset_index(drop=True)

        def convert(part: pd.DataFrame, first_row: int) -> list[tuple[Any, ...]]:
            if isinstance(request.replace, KeyRange):
                _check_in_range(part, request.replace, request.display, first_row)
            return frame_to_values(part, info, columns, row_offset=first_row, not_null=not_null)

        def encode(part: pd.DataFrame, first_row: int) -> Chunk:
            """Whole columns to binary COPY when every column has a vectorised encoder (the
            same checks, an order of magnitude less Python per row); else Python records."""
            if isinstance(request.replace, KeyRange):
                _check_in_range(part, request.replace, request.display, first_row)
            payload = encode_frame(part, info, columns, row_offset=first_row, not_null=not_null)
            if payload is None:
                records = frame_to_values(
                    part, info, columns, row_offset=first_row, not_null=not_null
                )
                return Chunk(first_row, records, 0, rows=len(part))
            return Chunk(first_row, [], 0, payload=payload, rows=len(part))

        if request.on_bad_rows == "quarantine":
            records, positions, rejects = await asyncio.to_thread(
                convert_keeping_good_rows, frame, convert, offset=offset
            )
            kept = frame.iloc[[p - offset for p in positions]] if rejects else frame
            prepared = Chunk(
                offset,
                records,
                0,
                rows=len(records),
                positions=positions if rejects else None,
                rejects=rejects,
            )
        elif request.write_mode.binary_copy:
            kept = frame
            prepared = await asyncio.to_thread(encode, frame, offset)
        else:
            kept = frame
            records = await asyncio.to_thread(convert, frame, offset)
            prepared = Chunk(offset, records, 0, rows=len(records))
        if request.write_mode.staged:
            keys = list(request.key_columns)
            prepared.duplicates = int(kept.duplicated(subset=keys, keep="last").sum())
        if sequenced:
            prepared.maxima = column_maxima(kept, sequenced)
        yield prepared
        offset += len(frame)


def _encode_arrow(
    batch: pa.RecordBatch,
    info: TableInfo,
    columns: Sequence[str],
    request: WriteRequest,
    offset: int,
) -> Chunk | None:
    """The batch as binary COPY straight from Arrow; None when the plain path must judge it."""
    if isinstance(request.replace, KeyRange):
        keys = to_frame(batch.select([request.replace.column]))
        _check_in_range(keys, request.replace, request.display, offset)
    payload = encode_batch(batch, info, columns, row_offset=offset, not_null=request.key_columns)
    if payload is None:
        return None
    return Chunk(offset, [], 0, payload=payload, rows=batch.num_rows)


def _describe(
    chunk: Chunk, batch: pa.RecordBatch, request: WriteRequest, sequenced: Sequence[str]
) -> None:
    """What the staged apply and the sequences need of an Arrow chunk: only their columns
    become pandas."""
    if request.write_mode.staged:
        keys = list(request.key_columns)
        chunk.duplicates = int(to_frame(batch.select(keys)).duplicated(keep="last").sum())
    if sequenced:
        chunk.maxima = column_maxima(to_frame(batch.select(list(sequenced))), sequenced)


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
    names: Sequence[str], columns: Sequence[str], request: WriteRequest, offset: int
) -> None:
    """Every chunk must carry the first chunk's columns (in any order): a column that comes
    and goes would otherwise be dropped or NULLed without a word."""
    missing = [c for c in columns if c not in names]
    extra = [c for c in names if c not in columns]
    if missing or extra:
        raise SchemaMismatchError(
            f"the chunk of {request.display} starting at row {offset} has other columns than "
            f"the first chunk: missing {missing}, extra {extra}",
            table=request.display,
        )


class Prefetch:
    """Chunks prepared one ahead: conversion of chunk n+1 (in a worker thread) overlaps the
    server's ingest of chunk n. ``ready()`` tells whether the next one is already waiting."""

    def __init__(self, source: AsyncIterator[Chunk]) -> None:
        self._source = source
        self._queue: asyncio.Queue[tuple[Chunk | None, BaseException | None]] = asyncio.Queue(
            maxsize=_PREFETCH
        )
        self._task: asyncio.Task[None] | None = None
        self._arrived = asyncio.Event()
        #: The source's own exception, once it raised one: a COPY reading the source may
        #: surface it as the driver's error, and the caller must see it unchanged.
        self.failure: BaseException | None = None

    def __aiter__(self) -> Prefetch:
        if self._task is None:
            self._task = asyncio.create_task(self._produce())
        return self

    async def __anext__(self) -> Chunk:
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

    async def ready_within(self, seconds: float) -> bool:
        """Whether the next chunk is waiting, or arrives within ``seconds``."""
        self._arrived.clear()
        if self.ready():
            return True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._arrived.wait()
        return self.ready()

    async def _produce(self) -> None:
        try:
            async for item in self._source:
                await self._queue.put((item, None))
                self._arrived.set()
            await self._queue.put((None, None))
            self._arrived.set()
        except asyncio.CancelledError:
            raise  # the consumer is gone; nobody would read the queue
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self.failure = exc
            await self._queue.put((None, exc))
            self._arrived.set()

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


# Rows of a first Arrow batch made into pandas to describe the data (names, and the types of
# a table created from it): the types are the batch's, the rows only matter for object columns.
_DESCRIBE_ROWS = 1000


async def first_and_rest(
    request: WriteRequest,
) -> tuple[pd.DataFrame | None, AsyncIterator[SourceChunk]]:
    """The first chunk as a DataFrame that describes the data, and every chunk as it came."""
    frames = iter_frames(
        request.data, columns=request.columns, chunk_size=request.chunk_size, table=request.display
    )
    first = await anext(frames, None)

    async def chained() -> AsyncIterator[SourceChunk]:
        if first is not None:
            yield first
        async for frame in frames:
            yield frame

    if isinstance(first, pa.RecordBatch):
        return to_frame(first.slice(0, _DESCRIBE_ROWS)), chained()
    return first, chained()
