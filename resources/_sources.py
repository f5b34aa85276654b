"""Every accepted shape of ``data`` as one stream of DataFrame chunks.

Accepted: a DataFrame; an iterable or async iterable of DataFrames; an iterable or async
iterable of tuples (with ``columns``) or dicts; or a zero-argument callable returning any of
these, which makes the source replayable (a failed write can be retried from the start).
Rows are gathered ``chunk_size`` at a time, so memory stays bounded whatever the total.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Sequence
from typing import Any, TypeAlias

import pandas as pd

from .errors import TerminalWriteError

Row: TypeAlias = Sequence[Any] | dict[str, Any]
Data: TypeAlias = (
    pd.DataFrame
    | Iterable[pd.DataFrame]
    | AsyncIterable[pd.DataFrame]
    | Iterable[Row]
    | AsyncIterable[Row]
    | Callable[[], Any]
)

_END = object()


def is_replayable(data: Any) -> bool:
    """Whether the same rows can be produced again for a retry."""
    return isinstance(data, pd.DataFrame | list | tuple) or (
        callable(data) and not isinstance(data, Iterable | AsyncIterable)
    )


async def iter_frames(
    data: Any,
    *,
    columns: Sequence[str] | None,
    chunk_size: int,
    table: str,
) -> AsyncIterator[pd.DataFrame]:
    """Yield DataFrames of at most ``chunk_size`` rows. An empty frame is yielded only when
    it is all there is, so that its columns and dtypes can still describe a new table."""
    if callable(data) and not isinstance(data, pd.DataFrame | Iterable | AsyncIterable):
        data = await asyncio.to_thread(data)
    if isinstance(data, pd.DataFrame):
        async for frame in _slices(_select(data, columns, table), chunk_size):
            yield frame
        return
    if isinstance(data, str | bytes | dict):
        raise TerminalWriteError(
            f"cannot write a {type(data).__name__} to {table}: pass a DataFrame, or an iterable "
            "of DataFrames, tuples or dicts",
            table=table,
        )
    batch: list[Row] = []
    seen_rows = 0
    yielded = False
    kind: type | None = None
    async for item in _aiter(data):
        item_kind = pd.DataFrame if isinstance(item, pd.DataFrame) else tuple
        if kind is None:
            kind = item_kind
        elif item_kind is not kind:
            raise TerminalWriteError(
                f"data for {table} mixes DataFrames and rows; send one kind", table=table
            )
        if isinstance(item, pd.DataFrame):
            item = _select(item, columns, table)
            if item.empty and yielded:
                continue
            async for frame in _slices(item, chunk_size):
                yielded = True
                yield frame
            continue
        batch.append(item)
        if len(batch) >= chunk_size:
            yield _rows_to_frame(batch, columns, table=table, row_offset=seen_rows)
            seen_rows += len(batch)
            batch = []
    if batch:
        yield _rows_to_frame(batch, columns, table=table, row_offset=seen_rows)


async def _slices(frame: pd.DataFrame, chunk_size: int) -> AsyncIterator[pd.DataFrame]:
    if len(frame) <= chunk_size:
        yield frame
        return
    for start in range(0, len(frame), chunk_size):
        yield frame.iloc[start : start + chunk_size]


async def _aiter(data: Any) -> AsyncIterator[Any]:
    if isinstance(data, AsyncIterable):
        async for item in data:
            yield item
        return
    iterator: Iterator[Any] = iter(data)
    if isinstance(data, list | tuple):
        for item in iterator:
            yield item
        return
    # A generator may read files or the network: advance it off the event loop, so that the
    # previous chunk keeps streaming to the server meanwhile.
    while True:
        item = await asyncio.to_thread(next, iterator, _END)
        if item is _END:
            return
        yield item


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
