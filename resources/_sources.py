"""Every accepted shape of ``data`` as one stream of chunks: DataFrames, or Arrow record batches.

Accepted: a DataFrame, a ``pyarrow.Table`` or ``RecordBatch``; an iterable or async iterable
of those; an iterable or async iterable of tuples (with ``columns``) or dicts; or a
zero-argument callable returning any of these, which makes the source replayable (a failed
write can be retried from the start). Rows are gathered ``chunk_size`` at a time, or fewer
when they pass ``CHUNK_BYTES``, so memory stays bounded whatever the total or the width of
the rows.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Sequence
from typing import Any, TypeAlias

import pandas as pd
import pyarrow as pa

from .errors import TerminalWriteError

Row: TypeAlias = Sequence[Any] | dict[str, Any]
Frame: TypeAlias = pd.DataFrame | pa.Table | pa.RecordBatch
#: What the chunks are: Arrow data stays Arrow, encoded without pandas where it can be.
Chunk: TypeAlias = pd.DataFrame | pa.RecordBatch
Data: TypeAlias = (
    Frame
    | Iterable[Frame]
    | AsyncIterable[Frame]
    | Iterable[Row]
    | AsyncIterable[Row]
    | Callable[[], Any]
)

# A chunk closes at chunk_size rows or at about this many bytes of row values, whichever comes
# first. 64 MiB: rows under ~1.3 KiB (most tables) still close at the default 50,000 rows, as
# before, while a chunk of very wide rows, held as Python objects (~50 bytes per value more)
# and again as its encoded COPY buffer, stays within a few hundred MiB of memory.
CHUNK_BYTES = 64 * 1024 * 1024
# A thread hop that pulls rows from a synchronous source returns after this long even if the
# chunk is not full: a slow source still hands rows over, and a cancelled write stops, soon.
_TAKE_SECONDS = 0.1
_SIZED = (str, bytes, bytearray, memoryview)
# The first 16 rows of a batch are sized one by one, then every 16th row stands for the 16
# up to it: sizing every row cost ~1 us a row, 40% of a generator's whole path to the server.
_SAMPLE_EVERY = 16
_FRAMES = (pd.DataFrame, pa.Table, pa.RecordBatch)


def is_replayable(data: Any) -> bool:
    """Whether the same rows can be produced again for a retry."""
    return isinstance(data, pd.DataFrame | pa.Table | pa.RecordBatch | list | tuple) or (
        callable(data) and not isinstance(data, Iterable | AsyncIterable | pa.Table)
    )


async def iter_frames(
    data: Any,
    *,
    columns: Sequence[str] | None,
    chunk_size: int,
    table: str,
    chunk_bytes: int | None = None,
) -> AsyncIterator[Chunk]:
    """Yield DataFrames (Arrow data: record batches) of at most ``chunk_size`` rows and about
    ``chunk_bytes`` (default :data:`CHUNK_BYTES`). An empty chunk is yielded only when it is
    all there is, so that its columns and types can still describe a new table."""
    chunk_bytes = chunk_bytes or CHUNK_BYTES
    if callable(data) and not isinstance(data, (*_FRAMES, Iterable, AsyncIterable)):
        data = await asyncio.to_thread(data)
    if isinstance(data, _FRAMES):
        for piece in _any_slices(data, columns, table, chunk_size, chunk_bytes):
            yield piece
        return
    if isinstance(data, str | bytes | dict):
        raise TerminalWriteError(
            f"cannot write a {type(data).__name__} to {table}: pass a DataFrame, or an iterable "
            "of DataFrames, tuples or dicts",
            table=table,
        )
    batch: list[Row] = []
    batch_bytes = 0
    seen_rows = 0
    yielded = False
    kind: type | None = None
    source = _Items(data)
    while items := await source.take(chunk_size - len(batch), chunk_bytes - batch_bytes):
        # A take ends at a DataFrame: it is either [frame] or rows, a frame last only if the
        # source mixes kinds.
        item_kind = pd.DataFrame if isinstance(items[0], _FRAMES) else tuple
        if kind is None:
            kind = item_kind
        if item_kind is not kind or (kind is tuple and isinstance(items[-1], _FRAMES)):
            raise TerminalWriteError(
                f"data for {table} mixes DataFrames and rows; send one kind", table=table
            )
        if kind is pd.DataFrame:
            for piece in _any_slices(items[0], columns, table, chunk_size, chunk_bytes):
                if piece.shape[0] == 0 and yielded:
                    continue
                yielded = True
                yield piece
            continue
        batch += items
        batch_bytes += source.taken_bytes
        if len(batch) >= chunk_size or batch_bytes >= chunk_bytes:
            yield _rows_to_frame(batch, columns, table=table, row_offset=seen_rows)
            seen_rows += len(batch)
            batch = []
            batch_bytes = 0
    if batch:
        yield _rows_to_frame(batch, columns, table=table, row_offset=seen_rows)


def _any_slices(
    data: Frame, columns: Sequence[str] | None, table: str, chunk_size: int, chunk_bytes: int
) -> Iterator[Chunk]:
    if isinstance(data, pd.DataFrame):
        return _slices(_select(data, columns, table), chunk_size, chunk_bytes)
    return _arrow_slices(_select_arrow(data, columns, table), chunk_size, chunk_bytes)


def _arrow_slices(
    data: pa.Table | pa.RecordBatch, chunk_size: int, chunk_bytes: int
) -> Iterator[Chunk]:
    """Record batches of at most ``chunk_size`` rows and about ``chunk_bytes`` (Arrow knows
    its buffers' size: no sampling). A table's own batches are not merged: slicing is free,
    copying is not."""
    batches = data.to_batches() if isinstance(data, pa.Table) else [data]
    if not batches:
        yield pa.RecordBatch.from_pylist([], schema=data.schema)
        return
    for batch in batches:
        per_row = batch.nbytes / batch.num_rows if batch.num_rows else 1.0
        step = max(1, min(chunk_size, int(chunk_bytes // max(per_row, 1.0))))
        if batch.num_rows <= step:
            yield batch
            continue
        for start in range(0, batch.num_rows, step):
            yield batch.slice(start, step)


def _select_arrow(
    data: pa.Table | pa.RecordBatch, columns: Sequence[str] | None, table: str
) -> pa.Table | pa.RecordBatch:
    if columns is None:
        return data
    names = data.schema.names
    missing = [c for c in columns if c not in names]
    if missing:
        raise TerminalWriteError(
            f"columns {missing} given for {table} are not in the Arrow data (it has {names})",
            table=table,
        )
    return data.select(list(columns))


def _slices(frame: pd.DataFrame, chunk_size: int, chunk_bytes: int) -> Iterator[pd.DataFrame]:
    step = min(chunk_size, _rows_within(frame, chunk_bytes))
    if len(frame) <= step:
        yield frame
        return
    for start in range(0, len(frame), step):
        yield frame.iloc[start : start + step]


def _rows_within(frame: pd.DataFrame, chunk_bytes: int) -> int:
    """How many of the frame's rows make about ``chunk_bytes``, from ~1,000 sampled rows:
    measuring every Python string of a large object column would cost more than the write."""
    if len(frame) == 0:
        return 1
    sample = frame.iloc[:: max(1, len(frame) // 1000)]
    per_row = float(sample.memory_usage(deep=True, index=False).sum()) / len(sample)
    return max(1, int(chunk_bytes // max(per_row, 1.0)))


class _Items:
    """The items of ``data``, taken a batch at a time.

    A synchronous iterator other than a list or tuple (a generator may read files or the
    network) is advanced in a worker thread, so that the previous chunk keeps streaming to the
    server meanwhile. A whole batch per thread hop: one hop per row cost ~65 us a row, ~25
    times the rest of the row's way to the server. The source's own exceptions propagate as
    they are.
    """

    def __init__(self, data: Any) -> None:
        self._async: AsyncIterator[Any] | None = None
        self._sync: Iterator[Any] | None = None
        if isinstance(data, AsyncIterable):
            self._async = aiter(data)
        else:
            self._sync = iter(data)
        self._threaded = not isinstance(data, list | tuple | AsyncIterable)
        self._done = False
        self.taken_bytes = 0

    async def take(self, max_rows: int, max_bytes: int) -> list[Any]:
        """Up to ``max_rows`` rows or about ``max_bytes`` of them, or one frame (ending
        the batch); [] at the end. Sets :attr:`taken_bytes` to the rows' estimated size."""
        if self._done:
            return []
        if self._async is not None:
            taken = await _take_async(self._async, max_rows, max_bytes)
        elif self._threaded:
            assert self._sync is not None
            taken = await asyncio.to_thread(_take, self._sync, max_rows, max_bytes, _TAKE_SECONDS)
        else:
            assert self._sync is not None
            taken = _take(self._sync, max_rows, max_bytes, None)
        items, self.taken_bytes, self._done = taken
        return items


def _take(
    iterator: Iterator[Any], max_rows: int, max_bytes: int, seconds: float | None
) -> tuple[list[Any], int, bool]:
    """(items, their estimated bytes, whether the iterator is exhausted)."""
    items: list[Any] = []
    append = items.append
    size = 0
    deadline = time.monotonic() + seconds if seconds is not None else None
    for item in iterator:
        append(item)
        if isinstance(item, _FRAMES):
            return items, size, False
        size += _sampled_bytes(item, len(items))
        if len(items) >= max_rows or size >= max_bytes:
            return items, size, False
        # Checking the clock every 256 rows costs nothing measurable.
        if deadline is not None and not len(items) & 255 and time.monotonic() > deadline:
            return items, size, False
    return items, size, True


async def _take_async(
    iterator: AsyncIterator[Any], max_rows: int, max_bytes: int
) -> tuple[list[Any], int, bool]:
    items: list[Any] = []
    size = 0
    async for item in iterator:
        items.append(item)
        if isinstance(item, _FRAMES):
            return items, size, False
        size += _sampled_bytes(item, len(items))
        if len(items) >= max_rows or size >= max_bytes:
            return items, size, False
    return items, size, True


def _sampled_bytes(row: Any, position: int) -> int:
    """The estimated bytes that the ``position``-th row (from 1) of a batch adds."""
    if position <= _SAMPLE_EVERY:
        return _row_bytes(row)
    if position % _SAMPLE_EVERY:
        return 0
    return _row_bytes(row) * _SAMPLE_EVERY


def _row_bytes(row: Any) -> int:
    """A row's size as its text and bytes lengths, 8 for any other value: cheap (no
    sys.getsizeof), and what matters when bounding memory is the long values."""
    if isinstance(row, tuple | list):
        values: Iterable[Any] = row
    elif isinstance(row, dict):
        values = row.values()
    else:
        return 8  # not a row: _rows_to_frame says so, with its index
    size = 0
    for value in values:
        size += len(value) if isinstance(value, _SIZED) else 8
    return size


def _select(frame: pd.DataFrame, columns: Sequence[str] | None, table: str) -> pd.DataFrame:
    """The frame with ``columns`` only (all if None), every label a str: a column labelled
    0 is the table's column "0"."""
    if any(not isinstance(c, str) for c in frame.columns):
        frame = frame.rename(columns=str)
    if columns is None:
        return frame
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise TerminalWriteError(
            f"columns {missing} given for {table} are not in the DataFrame "
            f"(it has {list(frame.columns)})",
            table=table,
        )
    return frame[list(columns)]


def _rows_to_frame(
    batch: list[Row], columns: Sequence[str] | None, *, table: str, row_offset: int
) -> pd.DataFrame:
    first = batch[0]
    if isinstance(first, dict):
        names = list(columns) if columns is not None else list(first)
        expected = set(names)
        for i, row in enumerate(batch):
            if not isinstance(row, dict) or set(row) != expected:
                got = sorted(row) if isinstance(row, dict) else type(row).__name__
                raise TerminalWriteError(
                    f"row {row_offset + i} for {table} has keys {got}, expected {sorted(names)}",
                    table=table,
                )
        values = [[row[name] for row in batch] for name in names]  # type: ignore[call-overload]
    else:
        if columns is None:
            raise TerminalWriteError(
                f"rows for {table} are {type(first).__name__}s: pass columns=[...] to name "
                "their fields",
                table=table,
            )
        names = list(columns)
        for i, row in enumerate(batch):
            if isinstance(row, dict | str | bytes) or len(row) != len(names):
                raise TerminalWriteError(
                    f"row {row_offset + i} for {table} has "
                    f"{len(row) if isinstance(row, Sequence) else type(row).__name__} fields, "
                    f"expected {len(names)} ({names})",
                    table=table,
                )
        values = [list(col) for col in zip(*batch, strict=True)]
    # object dtype keeps every value exactly as given: no int -> float promotion around None.
    return pd.DataFrame(
        {name: pd.Series(col, dtype=object) for name, col in zip(names, values, strict=True)},
        index=pd.RangeIndex(len(batch)),
    )
