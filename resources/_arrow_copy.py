"""An Arrow record batch as one binary COPY payload, without going through pandas.

Each column's Arrow buffers become numpy arrays (zero-copy for fixed-width types) and are
encoded with the pieces of the DataFrame encoder (:mod:`._binary_fields`, the numeric words
of :mod:`._binary_columns`, the text / uuid / JSON encoders of :mod:`._binary_text`). The type
contract is the DataFrame one: a value it refuses raises the same :class:`BadValueError`
(table, column, global row), judged by ``convert_column`` on that one column. Two
differences, both Arrow's own: a float NaN stays NaN (Arrow tells it from NULL, pandas cannot),
and text is taken for ``numeric`` (what a CSV reader leaves as text: exact, with its scale).

Each encoder checks its column and hands it on as a wire array that pgpq frames into rows
(:mod:`._arrow_frame`). A batch with a column that has no Arrow encoder gives ``None``:
:func:`to_frame` turns it into a DataFrame for the plain path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ._arrow_fields import ArrowColumn, numbers, to_frame
from ._arrow_frame import encode_columns, native
from ._arrow_numeric import encode_decimal, encode_text_numeric
from ._binary_columns import float_fields, int_float_fields, integer_numeric, split_sign
from ._binary_fields import Column, Fallback, Wire, null_mask
from ._binary_text import TEXT_ENCODERS
from ._catalog import TableInfo

__all__ = ["encode_batch", "to_frame"]

_US_PER_DAY = 86_400_000_000
_PG_EPOCH_DAYS = 10_957
_PG_EPOCH_US = _PG_EPOCH_DAYS * _US_PER_DAY
# Python's datetime range, 0001-01-01 to 9999-12-31 23:59:59.999999, in us after 1970: the
# plain path's limits; its ends are sent as -infinity / infinity, as asyncpg does.
_MIN_US = -62_135_596_800_000_000
_MAX_US = 253_402_300_799_999_999
_MIN_DAYS = _MIN_US // _US_PER_DAY
_MAX_DAYS = _MAX_US // _US_PER_DAY
_UNIT_US = {"s": 1_000_000, "ms": 1_000, "us": 1}
_UTC_NAMES = frozenset({"UTC", "utc", "Etc/UTC", "+00:00", "UTC+00:00"})

_Encoder = Callable[[ArrowColumn], Wire]
_INT_TYPES = {
    "int2": (np.int16, pa.int16()),
    "int4": (np.int32, pa.int32()),
    "int8": (np.int64, pa.int64()),
}


def encode_batch(
    batch: pa.RecordBatch,
    info: TableInfo,
    columns: Sequence[str],
    *,
    row_offset: int,
    not_null: Sequence[str] = (),
) -> memoryview | None:
    """The batch's rows in binary COPY format (no header or trailer), as
    :func:`._binary_copy.encode_frame` gives a DataFrame's; ``None`` when a column has no
    Arrow encoder or the plain path must judge it (then convert with :func:`to_frame`).

    Raises:
        BadValueError: for the first value (in column order) the type contract refuses.

    Examples:
        payload = encode_batch(batch, info, columns, row_offset=offset)
        if payload is None:
            payload = encode_frame(to_frame(batch), info, columns, row_offset=offset)
    """
    encoders: list[_Encoder] = []
    for name in columns:
        encoder = _encoder_for(batch.column(name).type, info.columns[name].base_type)
        if encoder is None:
            return None
        encoders.append(encoder)
    made = (
        ArrowColumn(
            arr=batch.column(name),
            info=info.columns[name],
            na=null_mask(batch.column(name)),
            table=info.display,
            row_offset=row_offset,
            not_null=name in not_null,
        )
        for name in columns
    )
    return encode_columns(batch.num_rows, zip(made, encoders, strict=True))


def _encoder_for(arrow_type: pa.DataType, base: str) -> _Encoder | None:
    is_int = pa.types.is_integer(arrow_type)
    if base in ("int2", "int4", "int8"):
        return _encode_int if is_int else None
    if base in ("float4", "float8"):
        return _encode_float if is_int or pa.types.is_floating(arrow_type) else None
    if base == "numeric":
        if is_int:
            return _encode_int_numeric
        if pa.types.is_decimal128(arrow_type):
            return encode_decimal
        return encode_text_numeric if _is_string(arrow_type) else None
    if base == "bool":
        return _encode_bool if pa.types.is_boolean(arrow_type) else None
    if base in TEXT_ENCODERS:
        return _encode_text if _is_string(arrow_type) else None
    if base in ("timestamp", "timestamptz"):
        return _encode_timestamp if pa.types.is_timestamp(arrow_type) else None
    if base == "date":
        return _encode_date if pa.types.is_date32(arrow_type) else None
    return None


def _is_string(arrow_type: pa.DataType) -> bool:
    return bool(pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type))


# -- numbers --------------------------------------------------------------------------------


def _encode_int(col: ArrowColumn) -> Wire:
    np_type, arrow_type = _INT_TYPES[col.info.base_type]
    if col.arr.type == arrow_type:
        return Wire(col.arr)  # the column's own width: every value fits, nothing to check
    int_range = col.info.int_range
    assert int_range is not None  # only smallint, integer and bigint columns come here
    low, high = int_range
    valid = ~col.na
    if pa.types.is_unsigned_integer(col.arr.type):
        unsigned = numbers(col, 0, np.uint64)
        if (valid & (unsigned > high)).any():
            col.refuse()
        ints = unsigned.astype(np.int64)
    else:
        ints = numbers(col, 0, np.int64)
        if (valid & ((ints < low) | (ints > high))).any():
            col.refuse()
    return native(ints.astype(np_type), col.na, arrow_type)


def _encode_float(col: ArrowColumn) -> Wire:
    if pa.types.is_integer(col.arr.type):
        if pa.types.is_unsigned_integer(col.arr.type):
            raise Fallback
        return int_float_fields(col, numbers(col, 0, np.int64))
    if col.info.base_type == "float8":
        return Wire(col.arr if col.arr.type == pa.float64() else col.arr.cast(pa.float64()))
    return float_fields(col, numbers(col, np.nan, np.float64))


def _encode_bool(col: ArrowColumn) -> Wire:
    return Wire(col.arr)


def _encode_int_numeric(col: ArrowColumn) -> Wire:
    scale = col.info.numeric_scale
    if scale is not None and scale < 0:
        raise Fallback  # multiples of 10**-scale only: the plain path checks each value
    if pa.types.is_unsigned_integer(col.arr.type):
        magnitude = numbers(col, 0, np.uint64)
        negative = np.zeros(len(magnitude), dtype=bool)
    else:
        magnitude, negative = split_sign(numbers(col, 0, np.int64))
    return integer_numeric(col, magnitude, negative, scale)


# -- text, uuid, json ---------------------------------------------------------------------------


def _encode_text(col: ArrowColumn) -> Wire:
    arr = col.arr if pa.types.is_large_string(col.arr.type) else col.arr.cast(pa.large_string())
    series = pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([arr])), copy=False)
    shared = Column(
        series=series,
        info=col.info,
        na=col.na,
        table=col.table,
        row_offset=col.row_offset,
        not_null=col.not_null,
    )
    return TEXT_ENCODERS[col.info.base_type](shared)


# -- dates and times ------------------------------------------------------------------------


def _within(ints: pa.Array, low: int, high: int) -> bool:
    """Whether every non-NULL value lies in ``low..high`` (True when all are NULL)."""
    bounds = pc.min_max(ints)
    least, most = bounds["min"].as_py(), bounds["max"].as_py()
    return least is None or (low <= least and most <= high)


def _encode_timestamp(col: ArrowColumn) -> Wire:
    arrow_type = col.arr.type
    aware = arrow_type.tz is not None
    valid = ~col.na
    if aware != (col.info.base_type == "timestamptz") and valid.any():
        col.refuse()
    ints = col.arr.cast(pa.int64())
    if arrow_type.unit == "us" and _within(ints, _MIN_US + _US_PER_DAY, _MAX_US - _US_PER_DAY):
        # Microseconds a day or more inside Python's range, where no zone can push a local
        # time out of it: one pass (the checks below take ten, 0.03 s per 1M values).
        return Wire(pc.subtract(ints, pa.scalar(_PG_EPOCH_US, pa.int64())))
    raw = numbers(col.with_arr(ints), 0, np.int64)
    if arrow_type.unit == "ns":
        if (valid & (raw % 1000 != 0)).any():
            col.refuse()  # nanoseconds, which PostgreSQL cannot keep
        micros = raw // 1000
    else:
        factor = _UNIT_US[arrow_type.unit]
        low, high = -(-_MIN_US // factor), _MAX_US // factor
        if (valid & ((raw < low) | (raw > high))).any():
            raise Fallback  # beyond Python's datetime range: the plain path's business
        micros = raw * factor
    edge = valid & ((micros < _MIN_US + _US_PER_DAY) | (micros > _MAX_US - _US_PER_DAY))
    if aware and arrow_type.tz not in _UTC_NAMES and edge.any():
        raise Fallback  # a zone's local time near datetime's limits may leave Python's range
    values = micros - _PG_EPOCH_US
    values = np.where(micros == _MAX_US, np.int64(0x7FFF_FFFF_FFFF_FFFF), values)
    values = np.where(micros == _MIN_US, np.int64(-0x8000_0000_0000_0000), values)
    # timestamp and timestamptz send 8-byte microseconds since 2000: an int8's bytes.
    return native(values, col.na, pa.int64())


def _encode_date(col: ArrowColumn) -> Wire:
    ints = col.arr.cast(pa.int32())
    if _within(ints, _MIN_DAYS + 1, _MAX_DAYS - 1):
        return Wire(pc.subtract(ints, pa.scalar(_PG_EPOCH_DAYS, pa.int32())))
    days = numbers(col.with_arr(ints), 0, np.int64)
    valid = ~col.na
    if (valid & ((days < _MIN_DAYS) | (days > _MAX_DAYS))).any():
        raise Fallback
    values = (days - _PG_EPOCH_DAYS).astype(np.int32)
    values = np.where(days == _MAX_DAYS, np.int32(0x7FFF_FFFF), values)
    values = np.where(days == _MIN_DAYS, np.int32(-0x8000_0000), values)
    # date sends 4-byte days since 2000: an int4's bytes.
    return native(values, col.na, pa.int32())
