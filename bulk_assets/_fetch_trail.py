"""Where each row a fetch hands out came from: the file and its line (CSV, JSON Lines), or
the file, row group and row (Parquet), so that a value the writer refuses later is named by
its place in the source, not only by its position in the write.

The readers tell a :class:`Trail` what each chunk they read holds (:meth:`Trail.read`), in
order; a partition's slice tells it which of those rows it kept (:meth:`Trail.handed`). Only
the last :data:`KEPT` chunks are remembered: the writer refuses a value in the chunk it is
sending, a few chunks behind the reader. A row further back is not named (None)."""

from __future__ import annotations

import bisect
import collections.abc
import threading
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import numpy as np
import pandas as pd

__all__ = [
    "KEPT",
    "CsvOrigin",
    "FileOrigin",
    "LinesOrigin",
    "ParquetOrigin",
    "Traced",
    "Trail",
    "handed",
    "record_starts",
]

#: Chunks remembered. In flight between the reader and the server: one parsed ahead, one
#: queued (read_ahead), one being encoded, one queued (the writer's prefetch) and the one
#: being sent; 64 leaves room for a writer that slices a chunk further (chunk_bytes).
KEPT = 64
#: Of those, the newest whose raw bytes are kept (a CSV chunk with newlines inside quoted
#: fields or blank lines needs them to count lines): at most 8 chunks of chunk_bytes.
KEPT_BYTES = 8

T = TypeVar("T")


class Origin(Protocol):
    """Where the rows of one chunk a reader read came from."""

    def at(self, index: int) -> str | None:
        """Where the chunk's ``index``-th row (0-based) came from; None if forgotten."""

    def forget(self) -> None:
        """Drop what is costly to keep (raw bytes); :meth:`at` may answer None after."""


@dataclass(slots=True)
class FileOrigin:
    """Only the file is known (CSV read by pandas with options that move lines around)."""

    location: str

    def at(self, index: int) -> str | None:
        return self.location

    def forget(self) -> None:
        pass


@dataclass(slots=True)
class CsvOrigin:
    """A chunk of CSV records starting on ``first_line`` (header = line 1). ``data`` (the
    chunk's bytes) is kept only when a record spans lines or blank lines sit between records:
    otherwise record k is on line ``first_line + k``."""

    location: str
    first_line: int
    data: bytes | None
    quote: int
    _starts: list[int] | None = field(default=None, repr=False)
    _forgotten: bool = False

    @classmethod
    def of(
        cls, location: str, first_line: int, data: bytes, *, newlines: int, rows: int, quote: int
    ) -> CsvOrigin:
        """``newlines``: the chunk's newline count (its reader counted them already)."""
        # One newline per record, the last one perhaps without: record k is on line first+k.
        plain = newlines == rows if data.endswith(b"\n") else newlines == rows - 1
        return cls(location, first_line, None if plain else data, quote)

    def at(self, index: int) -> str | None:
        data, starts = self.data, self._starts  # forget() may run in the reading thread
        if data is None:
            if self._forgotten:
                return None
            return f"{self.location}, line {self.first_line + index}"
        if starts is None:
            starts = self._starts = record_starts(data, self.quote)
        if index >= len(starts):
            return None
        line = self.first_line + data.count(b"\n", 0, starts[index])
        return f"{self.location}, line {line}"

    def forget(self) -> None:
        if self.data is not None:
            self.data, self._starts, self._forgotten = None, None, True


@dataclass(slots=True)
class LinesOrigin:
    """JSON Lines: each row's line number."""

    location: str
    lines: np.ndarray

    def at(self, index: int) -> str | None:
        return (
            f"{self.location}, line {int(self.lines[index])}" if index < len(self.lines) else None
        )

    def forget(self) -> None:
        pass


@dataclass(slots=True)
class ParquetOrigin:
    """Parquet rows by their position in the whole dataset (``positions``: one per row, or the
    first of consecutive ones); ``groups``: (first position, file, row group id, position of
    the file's first row) of the row groups they may come from, in order."""

    positions: np.ndarray | int
    groups: tuple[tuple[int, str, int, int], ...]

    def at(self, index: int) -> str | None:
        if isinstance(self.positions, int):
            position = self.positions + index
        elif index < len(self.positions):
            position = int(self.positions[index])
        else:
            return None
        found = bisect.bisect_right(self.groups, position, key=lambda g: g[0]) - 1
        if found < 0:
            return None
        _, location, group, file_first = self.groups[found]
        return f"{location}, row group {group}, row {position - file_first}"

    def forget(self) -> None:
        pass


class Trail:
    """The origins of the last :data:`KEPT` chunks read, and (``sliced``: a partition's slice
    drops rows) which of their rows were handed out. Readers and the slice run in the
    reading thread, :meth:`locate` in the writer's: a lock keeps them apart (once a chunk)."""

    def __init__(self, *, sliced: bool) -> None:
        self._sliced = sliced
        self._lock = threading.Lock()
        self._read = 0
        self._origins: deque[tuple[int, int, Origin]] = deque(maxlen=KEPT)
        self._handed = 0
        self._kept: deque[tuple[int, int, np.ndarray | int]] = deque(maxlen=KEPT)

    def restart(self) -> None:
        """A new attempt reads from the start."""
        with self._lock:
            self._read = self._handed = 0
            self._origins.clear()
            self._kept.clear()

    def read(self, rows: int, origin: Origin) -> None:
        """The next ``rows`` rows the readers give come from ``origin``."""
        if not rows:
            return
        with self._lock:
            self._origins.append((self._read, rows, origin))
            self._read += rows
            if len(self._origins) > KEPT_BYTES:
                self._origins[-KEPT_BYTES - 1][2].forget()

    def handed(self, rows: int, raw: np.ndarray | int) -> None:
        """The next ``rows`` rows handed out are the readers' rows ``raw`` (an array, or the
        first of consecutive ones); only for a sliced read."""
        if not rows:
            return
        with self._lock:
            self._kept.append((self._handed, rows, raw))
            self._handed += rows

    def locate(self, row: int) -> str | None:
        """Where the ``row``-th row handed out (0-based) came from; None if forgotten."""
        with self._lock:
            raw: int | None = row
            if self._sliced:
                raw = _find(self._kept, row)
            if raw is None:
                return None
            found = None
            for first, rows, origin in self._origins:
                if first <= raw < first + rows:
                    found = origin, raw - first
                    break
        return None if found is None else found[0].at(found[1])


def _find(kept: deque[tuple[int, int, np.ndarray | int]], row: int) -> int | None:
    for first, rows, raw in kept:
        if first <= row < first + rows:
            index = row - first
            return raw + index if isinstance(raw, int) else int(raw[index])
    return None


def handed(trail: Trail | None, frame: pd.DataFrame) -> None:
    """``frame``'s rows, indexed by their place among the readers' rows, are handed out."""
    if trail is None:
        return
    index = frame.index
    if isinstance(index, pd.RangeIndex) and index.step == 1:
        trail.handed(len(frame), int(index.start))
    else:
        trail.handed(len(frame), index.to_numpy(dtype=np.int64).copy())


class Traced(collections.abc.Generator[T, None, None]):
    """A fetch's generator that can also say where a row it handed out came from: the writer
    asks :meth:`locate` for the row of a value it refuses."""

    def __init__(self, inner: Generator[T, None, None], trail: Trail) -> None:
        self._inner = inner
        self._trail = trail

    def send(self, value: None) -> T:
        return self._inner.send(value)

    def throw(self, *args: Any) -> T:
        return self._inner.throw(*args)

    def close(self) -> None:
        self._inner.close()

    def locate(self, row: int) -> str | None:
        """Where the ``row``-th row (0-based) of this read came from: ``"orders.csv, line
        7"``, ``"s3://bucket/x.parquet, row group 2, row 70"``; None once it is too far
        back."""
        return self._trail.locate(row)


def record_starts(batch: bytes, quote: int) -> list[int]:
    """Byte offsets in ``batch`` where each non-blank record starts (pyarrow and pandas skip
    blank lines, so they hold no row)."""
    data = np.frombuffer(batch, dtype=np.uint8)
    newlines = np.flatnonzero(data == 0x0A)
    quotes = np.flatnonzero(data == quote)
    inside = np.searchsorted(quotes, newlines) % 2 == 1
    ends = newlines[~inside] + 1
    starts = np.concatenate(([0], ends))
    starts = starts[starts < len(batch)]
    blank = np.array([batch[s : s + 1] in (b"\n", b"\r") for s in starts.tolist()], dtype=bool)
    return [int(s) for s in starts[~blank]]
