"""One DataFrame column of a chunk, and what its vectorised encoder gives: the column's values
in the type's binary send format as an Arrow array (:class:`Wire`), which the framer
(:mod:`._arrow_frame`) writes into rows with each field's length word.

An encoder that doubts a value lets the plain path judge it (:meth:`Column.refuse`); one that
cannot prove its bytes equal to the plain path's gives up with :class:`Fallback`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa

from ._catalog import ColumnInfo
from ._convert import convert_column


@dataclass(frozen=True, slots=True)
class Wire:
    """A column's values as the framer writes them (:mod:`._arrow_frame`): an Arrow array whose
    send format is its own (integers, doubles, booleans, text), or each field's bytes made
    beforehand (binary, NULL where the column is); ``jsonb`` puts jsonb's version byte before
    each text."""

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


Encoder = Callable[[Column], Wire]


def fixed(values: np.ndarray, null: np.ndarray) -> Wire:
    """Fields of a fixed-size type from ``values``: (n,) big-endian scalars or (n, k) bytes,
    whatever they hold where ``null``."""
    n = len(null)
    raw = np.ascontiguousarray(values.view(np.uint8).reshape(n, -1))
    validity = pa.array(~null).buffers()[1] if null.any() else None
    return Wire(pa.Array.from_buffers(pa.binary(raw.shape[1]), n, [validity, pa.py_buffer(raw)]))


def null_mask(arr: pa.Array) -> np.ndarray:
    """True where ``arr`` is NULL, unpacked from its validity bits (7 times faster than
    ``is_null().to_numpy()``, which converts bit by bit)."""
    n = len(arr)
    if arr.null_count == 0:
        return np.zeros(n, dtype=bool)
    validity = arr.buffers()[0]
    if validity is None:  # the null type: no bitmap, every value NULL
        return np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    bits = np.frombuffer(validity, dtype=np.uint8)
    valid = np.unpackbits(bits, count=arr.offset + n, bitorder="little")[arr.offset :]
    return np.equal(valid, 0)
