"""One DataFrame column of a chunk, and the binary COPY fields built from it: what every
vectorised encoder shares.

A field is its 4-byte big-endian length (-1 for NULL) followed by the value in the type's binary
send format. An encoder that doubts a value lets the plain path judge it (:meth:`Column.refuse`);
one that cannot prove its bytes equal to the plain path's gives up with :class:`Fallback`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn, Protocol, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa

from ._catalog import ColumnInfo
from ._convert import convert_column

# A field part: an (n, k) uint8 block (k bytes in every row) or an Arrow large_binary array
# (a different length per row); the framer (:mod:`._arrow_frame`) takes a column's parts as
# its length words and values.
Part: TypeAlias = np.ndarray | pa.Array


@dataclass(frozen=True, slots=True)
class Wire:
    """A column's values as the framer writes them (:mod:`._arrow_frame`): an Arrow array whose
    send format is its own (integers, doubles, booleans, text), or each field's bytes made
    beforehand (binary); ``jsonb`` puts jsonb's version byte before each text."""

    arr: pa.Array
    jsonb: bool = False


class Fallback(Exception):
    """The plain conversion must handle this chunk: the fast path cannot prove it equivalent."""


class Encodable(Protocol):
    """What the shared encoding steps ask of a column, pandas- or Arrow-backed."""

    @property
    def info(self) -> ColumnInfo: ...
    @property
    def na(self) -> np.ndarray: ...
    @property
    def not_null(self) -> bool: ...
    def refuse(self) -> NoReturn: ...


@dataclass(frozen=True, slots=True)
class Column:
    """One column of the chunk, with what ``convert_column`` needs to reproduce its verdict."""

    series: pd.Series
    info: ColumnInfo
    na: np.ndarray
    table: str
    row_offset: int
    not_null: bool

    def refuse(self) -> NoReturn:
        """Let the plain path judge a value the vectorised checks doubted: it raises the
        contract's BadValueError; if it accepts the column instead, fall back."""
        convert_column(
            self.series,
            self.info,
            table=self.table,
            row_offset=self.row_offset,
            not_null=self.not_null,
        )
        raise Fallback


Encoder = Callable[[Column], list[Part] | Wire]


def lengths(sizes: np.ndarray, null: np.ndarray) -> np.ndarray:
    """The 4-byte length words of n fields: ``sizes`` bytes each, -1 where NULL."""
    words = np.where(null, -1, sizes).astype(">i4")
    return words.view(np.uint8).reshape(-1, 4)


def fixed(values: np.ndarray, null: np.ndarray) -> list[Part]:
    """Fields of a fixed-size type from ``values``: (n,) big-endian scalars or (n, k) bytes."""
    n = len(null)
    raw = values.view(np.uint8).reshape(n, -1)
    width = raw.shape[1]
    if not null.any():
        block = np.empty((n, 4 + width), dtype=np.uint8)
        block[:, :4] = np.frombuffer(struct.pack(">i", width), np.uint8)
        block[:, 4:] = raw
        return [block]
    return [lengths(np.full(n, width), null), ragged(raw[~null].reshape(-1), width * ~null)]


def ragged(data: np.ndarray, sizes: np.ndarray) -> pa.Array:
    """An Arrow large_binary array whose row i is the next ``sizes[i]`` bytes of ``data``."""
    offsets = np.zeros(len(sizes) + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    return pa.Array.from_buffers(
        pa.large_binary(),
        len(sizes),
        [None, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(data))],
    )
