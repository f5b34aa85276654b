"""Which vectorised encoder takes a DataFrame column, and the encoders of numbers, numeric and
dates and times, built with whole-column numpy operations.

Each encoder enforces the type contract of :mod:`._convert` for the (dtype, column type) pairs it
takes: it finds suspicious values vectorised and hands the column to ``convert_column``, which
raises the very same :class:`BadValueError`. Where the plain path would accept what looked
suspicious, or a pair has no vectorised form, the encoder gives up (:class:`Fallback`) and the
caller converts the chunk the plain way. Text, uuid and JSON encoders live in
:mod:`._binary_text`; what all encoders share, in :mod:`._binary_fields`.
"""

from __future__ import annotations

import datetime as dt
import decimal

import numpy as np
import pandas as pd
import pyarrow as pa

from ._binary_fields import Column, Encodable, Encoder, Fallback, Wire, fixed
from ._binary_text import TEXT_ENCODERS, is_arrow_str
from ._catalog import ColumnInfo

_US_PER_DAY = 86_400_000_000
# 2000-01-01, PostgreSQL's epoch, in days and microseconds after 1970-01-01.
_PG_EPOCH_DAYS = 10_957
_PG_EPOCH_US = _PG_EPOCH_DAYS * _US_PER_DAY
# Python's datetime range in microseconds after 1970-01-01: 0001-01-01 to 9999-12-31 23:59:59.999999
_MIN_US = -62_135_596_800_000_000
_MAX_US = 253_402_300_799_999_999
# asyncpg sends datetime.max / datetime.min (and date.max / date.min) as PostgreSQL's
# +/-infinity; the fast path must store the same.
_INFINITY_TS = np.int64(0x7FFF_FFFF_FFFF_FFFF)
_NEG_INFINITY_TS = np.int64(-0x8000_0000_0000_0000)
_INFINITY_DATE = np.int32(0x7FFF_FFFF)
_NEG_INFINITY_DATE = np.int32(-0x8000_0000)
_MIN_DAYS = _MIN_US // _US_PER_DAY
_MAX_DAYS = _MAX_US // _US_PER_DAY
_UNIT_US = {"s": 1_000_000, "ms": 1_000, "us": 1}
_UTC_NAMES = frozenset({"UTC", "utc", "Etc/UTC", "UTC+00:00"})
# numeric(p, s) from doubles: s <= 15 keeps 10**s exact in a double, and |value * 10**s| < 2**52
# makes the one s-decimal that rounds to the double unique, so it equals repr()'s digits; those
# 16 digits also fit Decimal's context (28 by default) in the plain path's quantize.
_MAX_NUMERIC_SCALE = 15
_MAX_SCALED = 2.0**52


def encoder_for(series: pd.Series, column: ColumnInfo) -> Encoder | None:
    """The fast encoder for this (dtype, column type) pair, or ``None`` if there is none."""
    dtype = series.dtype
    base = column.base_type
    is_number = (
        pd.api.types.is_bool_dtype(dtype)  # refused by the number encoders, as by the plain path
        or pd.api.types.is_integer_dtype(dtype)
        or pd.api.types.is_float_dtype(dtype)
    )
    if base in ("int2", "int4", "int8"):
        return _encode_int if is_number else None
    if base in ("float4", "float8"):
        return _encode_float if is_number else None
    if base == "numeric":
        # A bool dtype goes through the plain path's per-value check, which refuses it.
        return _encode_numeric if is_number and not pd.api.types.is_bool_dtype(dtype) else None
    if base == "bool":
        return _encode_bool if pd.api.types.is_bool_dtype(dtype) else None
    if base in TEXT_ENCODERS:
        if not (is_arrow_str(series) or pd.api.types.is_object_dtype(dtype)):
            return None
        return TEXT_ENCODERS[base]
    if base in ("timestamp", "timestamptz"):
        if isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(dtype):
            return _encode_timestamp
        return None
    if base == "date":
        if pd.api.types.is_datetime64_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
            return _encode_date
        return None
    return None


# -- integers and floats --------------------------------------------------------------------


def _encode_int(col: Column) -> Wire:
    int_range = col.info.int_range
    assert int_range is not None  # only smallint, integer and bigint columns come here
    low, high = int_range
    dtype = col.series.dtype
    valid = ~col.na
    if pd.api.types.is_bool_dtype(dtype):
        col.refuse()
    if pd.api.types.is_integer_dtype(dtype):
        if pd.api.types.is_unsigned_integer_dtype(dtype):
            unsigned = col.series.to_numpy(dtype=np.uint64, na_value=0)
            if (valid & (unsigned > high)).any():
                col.refuse()
            ints = unsigned.astype(np.int64)
        else:
            ints = col.series.to_numpy(dtype=np.int64, na_value=0)
            if (valid & ((ints < low) | (ints > high))).any():
                col.refuse()
    else:
        arr = col.series.to_numpy(dtype="float64", na_value=np.nan)
        finite = np.isfinite(arr)
        # The same tests as the plain path; 2**63 is exact in float64.
        if (valid & (~finite | (np.floor(arr) != arr))).any():
            col.refuse()
        if (valid & ((arr < low) | (arr >= float(high) + 1))).any():
            col.refuse()
        ints = np.where(valid, arr, 0).astype(np.int64)
    size = {"int2": 2, "int4": 4, "int8": 8}[col.info.base_type]
    return fixed(ints.astype(f">i{size}"), col.na)


def _encode_float(col: Column) -> Wire:
    dtype = col.series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        col.refuse()
    if pd.api.types.is_float_dtype(dtype):
        return float_fields(col, col.series.to_numpy(dtype="float64", na_value=np.nan))
    if not pd.api.types.is_signed_integer_dtype(dtype):
        raise Fallback
    return int_float_fields(col, col.series.to_numpy(dtype="int64", na_value=0))


def float_fields(col: Encodable, doubles: np.ndarray) -> Wire:
    """float64 values as the fields of a float4 or float8 column."""
    if col.info.base_type != "float4":
        return fixed(doubles.astype(">f8"), col.na)
    with np.errstate(over="ignore"):
        singles = doubles.astype(np.float32)
    # asyncpg refuses a finite double beyond float32's range; leave that error to it.
    if (~col.na & np.isinf(singles) & np.isfinite(doubles)).any():
        raise Fallback
    return fixed(singles.astype(">f4"), col.na)


def int_float_fields(col: Encodable, ints: np.ndarray) -> Wire:
    """int64 values as the fields of a float4 or float8 column; one a float cannot hold
    exactly goes to the plain path."""
    single = col.info.base_type == "float4"
    floats = ints.astype(np.float32 if single else np.float64)
    # Compare in the integer domain, as the plain path does.
    with np.errstate(invalid="ignore"):
        inexact = ~col.na & ((np.abs(floats) >= 2.0**62) | (floats.astype(np.int64) != ints))
    if inexact.any():
        col.refuse()
    return fixed(floats.astype(">f4" if single else ">f8"), col.na)


def _encode_bool(col: Column) -> Wire:
    flags = col.series.to_numpy(dtype=bool, na_value=False)
    return fixed(flags.view(np.uint8), col.na)


# -- numeric --------------------------------------------------------------------------------


def _encode_numeric(col: Column) -> Wire:
    scale = col.info.numeric_scale
    if scale is not None and scale < 0:
        # numeric(5, -2) (PostgreSQL 15+) holds multiples of 100 only: the plain path checks
        # each value with Decimal.quantize instead of letting the server round it.
        raise Fallback
    dtype = col.series.dtype
    valid = ~col.na
    if pd.api.types.is_float_dtype(dtype):
        if scale is None or scale > _MAX_NUMERIC_SCALE or decimal.getcontext().prec < 17:
            raise Fallback  # repr()'s digits of a double have no vectorised form
        arr = col.series.to_numpy(dtype="float64", na_value=0.0)
        if (valid & ~np.isfinite(arr)).any():
            raise Fallback  # NaN / Infinity as numeric: rare, left to the plain path
        power = 10.0**scale
        scaled = np.rint(arr * power)
        if (valid & (np.abs(scaled) >= _MAX_SCALED)).any():
            raise Fallback
        if (valid & (scaled / power != arr)).any():
            col.refuse()  # more decimals than the column's scale
        magnitude, negative = split_sign(np.where(valid, scaled, 0).astype(np.int64))
        return fixed(numeric_words(magnitude, negative, scale, scale), col.na)
    if pd.api.types.is_unsigned_integer_dtype(dtype):
        magnitude = col.series.to_numpy(dtype=np.uint64, na_value=0)
        negative = np.zeros(len(magnitude), dtype=bool)
    else:
        magnitude, negative = split_sign(col.series.to_numpy(dtype=np.int64, na_value=0))
    return integer_numeric(col, magnitude, negative, scale)


def split_sign(ints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int64 values as uint64 magnitudes and a negative flag."""
    # abs(-2**63) wraps to itself in int64; read as uint64 it is 2**63.
    return np.abs(ints).view(np.uint64), ints < 0


def integer_numeric(
    col: Encodable, magnitude: np.ndarray, negative: np.ndarray, scale: int | None
) -> Wire:
    """Whole numbers as numeric fields of a column with ``scale`` decimals (None: any)."""
    if scale is not None:
        # Decimal.quantize refuses a result longer than the context's precision (28
        # digits by default): digits + scale > prec. Zero always fits.
        room = decimal.getcontext().prec - scale
        if room <= 0:
            too_long = magnitude != 0
        else:
            too_long = magnitude >= np.uint64(10**room) if room < 20 else np.zeros(1, bool)
        if (~col.na & too_long).any():
            col.refuse()
    return fixed(numeric_words(magnitude, negative, 0, 0), col.na)


def numeric_words(
    magnitude: np.ndarray, negative: np.ndarray, scale: int, dscale: int
) -> np.ndarray:
    """numeric's send format for ``magnitude * 10**-scale``: ndigits, weight, sign, dscale, then
    base-10000 digits, all int16. Five digits hold any uint64 (10000**5 = 1e20 > 1.8e19)."""
    # Align the decimal point on a base-10000 digit boundary: 2 decimals become 0.xx00.
    aligned = -(-scale // 4) * 4
    if aligned != scale:
        # |value| * 10**scale < 2**52, so times 10**3 it still fits in uint64.
        magnitude = magnitude * np.uint64(10 ** (aligned - scale))
    n = len(magnitude)
    words = np.empty((n, 9), dtype=">i2")
    words[:, 0] = 5
    # numeric_recv strips leading and trailing zero digits, so all five can always be sent.
    words[:, 1] = 4 - aligned // 4
    words[:, 2] = np.where(negative, 0x4000, 0)
    words[:, 3] = dscale
    rest = magnitude.copy()
    for i in range(8, 3, -1):
        words[:, i] = (rest % np.uint64(10_000)).astype(np.int16)
        rest //= np.uint64(10_000)
    return words


# -- dates and times ------------------------------------------------------------------------


def _micros(col: Column) -> np.ndarray:
    """The column's datetimes as microseconds after 1970-01-01 (UTC for aware ones)."""
    unit = col.series.dt.unit
    raw = np.asarray(col.series.array.asi8)
    valid = ~col.na
    if unit == "ns":
        if (valid & (raw % 1000 != 0)).any():
            col.refuse()  # nanoseconds, which PostgreSQL cannot keep
        return raw // 1000
    factor = _UNIT_US.get(unit)
    if factor is None:
        raise Fallback
    low, high = -(-_MIN_US // factor), _MAX_US // factor
    # Beyond Python's datetime range the plain path fails in pandas, not with BadValueError.
    if (valid & ((raw < low) | (raw > high))).any():
        raise Fallback
    return np.where(valid, raw, 0) * factor


def _encode_timestamp(col: Column) -> Wire:
    aware = isinstance(col.series.dtype, pd.DatetimeTZDtype)
    valid = ~col.na
    if aware != (col.info.base_type == "timestamptz") and valid.any():
        col.refuse()
    micros = _micros(col)
    if aware and str(col.series.dtype.tz) not in _UTC_NAMES:
        # Within a day of datetime's limits the local time of a zone may leave Python's range.
        edge = valid & ((micros < _MIN_US + _US_PER_DAY) | (micros > _MAX_US - _US_PER_DAY))
        if edge.any():
            raise Fallback
    values = micros - _PG_EPOCH_US
    values = np.where(micros == _MAX_US, _INFINITY_TS, values)
    values = np.where(micros == _MIN_US, _NEG_INFINITY_TS, values)
    return fixed(values.astype(">i8"), col.na)


def _encode_date(col: Column) -> Wire:
    valid = ~col.na
    if pd.api.types.is_object_dtype(col.series.dtype):
        values = col.series.to_numpy(dtype=object)
        # infer_dtype says "date" for datetimes too (a datetime is a date): those, strings
        # and mixtures go to the plain path, which judges them.
        if pd.api.types.infer_dtype(col.series, skipna=True) != "date" or any(
            isinstance(v, dt.datetime) for v in values[valid]
        ):
            raise Fallback
        try:
            days = pa.array(values, type=pa.date32(), mask=col.na).to_numpy(zero_copy_only=False)
        except (pa.ArrowException, TypeError, ValueError):
            raise Fallback from None
        days = np.where(valid, days.astype("datetime64[D]").astype(np.int64), 0)
    else:
        micros = _micros(col)
        if (valid & (micros % _US_PER_DAY != 0)).any():
            col.refuse()  # a time part, which a date column would drop
        days = micros // _US_PER_DAY
    values = (days - _PG_EPOCH_DAYS).astype(np.int32)
    values = np.where(days == _MAX_DAYS, _INFINITY_DATE, values)
    values = np.where(days == _MIN_DAYS, _NEG_INFINITY_DATE, values)
    return fixed(values.astype(">i4"), col.na)
