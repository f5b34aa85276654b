"""DataFrame columns to Python values the driver encodes, checked against the target column.

The type contract: NaN, NaT, pd.NA and None become NULL; numpy scalars and pandas nullable
dtypes become plain Python values; a value that would change on the way in (1.5 into an integer
column, an aware datetime into ``timestamp``, an int outside the column's range, a NUL byte in
text) raises :class:`BadValueError` naming the table, column and row, before anything is sent.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import re
import uuid
from collections.abc import Callable
from typing import Any, cast

import numpy as np
import pandas as pd

from ._catalog import ColumnInfo
from ._display import first_true, show
from .errors import BadValueError

_TEXT_TYPES = frozenset({"text", "varchar", "bpchar", "name", "citext"})
# "\u0000" in JSON text, unless its backslash is itself escaped ("\\u0000" is legal text).
_JSON_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


class _Reject(Exception):
    def __init__(self, reason: str, position: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.position = position


def _got(value: object) -> str:
    return f"got {type(value).__name__} {show(value)}"


def convert_column(
    series: pd.Series,
    column: ColumnInfo,
    *,
    table: str,
    row_offset: int,
    not_null: bool = False,
) -> list[Any]:
    """The values of ``series`` as the driver takes them for ``column``, NULL as ``None``.

    Raises:
        BadValueError: for the first value the type contract refuses, with its global row
            (``row_offset`` plus its position).
    """
    try:
        na = np.asarray(series.isna(), dtype=bool)
        if (not_null or column.required) and na.any():
            raise _Reject(
                f"NULL in a column that cannot be NULL ({column.sql_type} NOT NULL"
                + (", key column" if not_null else "")
                + ")",
                int(np.flatnonzero(na)[0]),
            )
        converter = _CONVERTERS.get(column.base_type, _convert_passthrough)
        return converter(series, na, column)
    except _Reject as bad:
        row = None if bad.position is None else row_offset + bad.position
        raise BadValueError(
            f"{bad.reason} (column type {column.sql_type})",
            table=table,
            column=column.name,
            row=row,
        ) from None


def with_nulls(values: list[Any], na: np.ndarray) -> list[Any]:
    if na.any():
        for i in np.flatnonzero(na).tolist():
            values[i] = None
    return values


def _per_value(series: pd.Series, na: np.ndarray, convert: Callable[[Any], Any]) -> list[Any]:
    out: list[Any] = []
    append = out.append
    for i, (value, missing) in enumerate(zip(series.to_numpy(dtype=object), na, strict=True)):
        if missing:
            append(None)
            continue
        try:
            append(convert(value))
        except _Reject as bad:
            bad.position = i
            raise
    return out


# -- integers ---------------------------------------------------------------------------------


def _convert_int(series: pd.Series, na: np.ndarray, column: ColumnInfo) -> list[Any]:
    int_range = column.int_range
    assert int_range is not None  # only smallint, integer and bigint columns come here
    low, high = int_range
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        raise _Reject(f"expected an integer, got bool {series.iloc[0]!r}", 0)
    if pd.api.types.is_integer_dtype(dtype):
        values = series.to_numpy(dtype=object, na_value=None)
        valid = series[~na]
        if len(valid):
            over = (valid < low) | (valid > high)
            if over.any():
                pos = int(np.flatnonzero(~na)[first_true(np.asarray(over))])
                raise _Reject(f"{values[pos]} is out of range [{low}, {high}]", pos)
        return [None if v is None else int(v) for v in values] if na.any() else series.tolist()
    if pd.api.types.is_float_dtype(dtype):
        arr = series.to_numpy(dtype="float64", na_value=np.nan)
        valid = ~na
        bad_frac = valid & ~np.isfinite(arr) | valid & np.isfinite(arr) & (np.floor(arr) != arr)
        if bad_frac.any():
            pos = first_true(bad_frac)
            raise _Reject(f"expected an integer, got float {arr[pos]!r} (not whole)", pos)
        # 2**63 is exact in float64, so comparing against it (not high) is exact too.
        over = valid & ((arr < low) | (arr >= float(high) + 1))
        if over.any():
            pos = first_true(over)
            raise _Reject(f"{arr[pos]!r} is out of range [{low}, {high}]", pos)
        ints = np.where(valid, arr, 0).astype(np.int64).tolist()
        return with_nulls(ints, na)

    def one(value: Any) -> int:
        if isinstance(value, bool | np.bool_):
            raise _Reject(f"expected an integer, {_got(value)}")
        if isinstance(value, int | np.integer):
            result = int(value)
        elif isinstance(value, float | np.floating | decimal.Decimal):
            if not math.isfinite(value) or value != int(value):
                raise _Reject(f"expected an integer, {_got(value)} (not whole)")
            result = int(value)
        else:
            raise _Reject(f"expected an integer, {_got(value)}")
        if not low <= result <= high:
            raise _Reject(f"{result} is out of range [{low}, {high}]")
        return result

    return _per_value(series, na, one)


# -- floats and numeric -----------------------------------------------------------------------


def _convert_float(series: pd.Series, na: np.ndarray, column: ColumnInfo) -> list[Any]:
    dtype = series.dtype
    # real keeps integers exactly up to 2**24, double precision up to 2**53.
    as_float = np.float32 if column.base_type == "float4" else np.float64
    if pd.api.types.is_bool_dtype(dtype):
        raise _Reject(f"expected a number, got bool {series.iloc[0]!r}", 0)
    if pd.api.types.is_float_dtype(dtype):
        return with_nulls(series.to_numpy(dtype="float64", na_value=np.nan).tolist(), na)
    if pd.api.types.is_signed_integer_dtype(dtype):
        ints = series.to_numpy(dtype="int64", na_value=0)
        floats = ints.astype(as_float)
        # Compare in the integer domain: int-to-float comparison would round the int first.
        # Above 2**62 the cast back may overflow; such values are inexact in either type (and
        # numpy's warning about that overflowing cast is noise).
        with np.errstate(invalid="ignore"):
            inexact = ~na & ((np.abs(floats) >= 2.0**62) | (floats.astype(np.int64) != ints))
        if inexact.any():
            pos = first_true(inexact)
            raise _Reject(f"integer {ints[pos]} has no exact {column.sql_type} value", pos)
        return with_nulls(floats.astype(np.float64).tolist(), na)

    def one(value: Any) -> float:
        if isinstance(value, bool | np.bool_):
            raise _Reject(f"expected a number, {_got(value)}")
        if isinstance(value, int | np.integer):
            # Python compares int and float exactly, without rounding either.
            if float(as_float(value)) != int(value):
                raise _Reject(f"integer {value} has no exact {column.sql_type} value")
            return float(value)
        if isinstance(value, float | np.floating | decimal.Decimal):
            return float(value)
        raise _Reject(f"expected a number, {_got(value)}")

    return _per_value(series, na, one)


def _convert_numeric(series: pd.Series, na: np.ndarray, column: ColumnInfo) -> list[Any]:
    scale = column.numeric_scale
    quantum = decimal.Decimal(1).scaleb(-scale) if scale is not None else None

    def one(value: Any) -> decimal.Decimal:
        if isinstance(value, bool | np.bool_):
            raise _Reject(f"expected a number, {_got(value)}")
        if isinstance(value, decimal.Decimal):
            result = value
        elif isinstance(value, int | np.integer):
            result = decimal.Decimal(int(value))
        elif isinstance(value, float | np.floating):
            # repr gives the shortest string that round-trips: 0.1, not 0.1000000000000000055...
            result = decimal.Decimal(repr(float(value)))
        else:
            raise _Reject(f"expected a number, {_got(value)}")
        if quantum is not None and result.is_finite():
            try:
                exact = result.quantize(quantum) == result
            except decimal.InvalidOperation:
                exact = False
            if not exact:
                raise _Reject(f"{result} does not fit {column.sql_type} without rounding")
        return result

    return _per_value(series, na, one)


# -- text, bool, bytes, uuid, json ------------------------------------------------------------


def _convert_text(series: pd.Series, na: np.ndarray, column: ColumnInfo) -> list[Any]:
    limit = column.max_chars
    if pd.api.types.is_string_dtype(series.dtype) and not pd.api.types.is_object_dtype(
        series.dtype
    ):
        strings = series.astype(object)
        nul = np.asarray(series.str.contains("\x00", regex=False).fillna(False), dtype=bool)
        if nul.any():
            pos = first_true(nul)
            raise _Reject(f"text contains a NUL byte: {show(strings.iloc[pos])}", pos)
        if limit is not None:
            long = np.asarray(series.str.len().fillna(0) > limit, dtype=bool)
            if long.any():
                pos = first_true(long)
                raise _Reject(f"{len(strings.iloc[pos])} characters, the limit is {limit}", pos)
        return with_nulls(strings.tolist(), na)

    def one(value: Any) -> str:
        if not isinstance(value, str):
            raise _Reject(f"expected str, {_got(value)}")
        if "\x00" in value:
            raise _Reject(f"text contains a NUL byte: {show(value)}")
        if limit is not None and len(value) > limit:
            raise _Reject(f"{len(value)} characters, the limit is {limit}")
        return str(value)

    return _per_value(series, na, one)


def _convert_bool(series: pd.Series, na: np.ndarray, column: ColumnInfo) -> list[Any]:
    if pd.api.types.is_bool_dtype(series.dtype):
        return with_nulls(series.to_numpy(dtype=object, na_value=None).tolist(), na)

    def one(value: Any) -> bool:
        if not isinstance(value, bool | np.bool_):
            raise _Reject(f"expected bool, {_got(value)}")
        return bool(value)

    return _per_value(series, na, one)


def _convert_bytea(series: pd.Series, na: np.ndarray, column: ColumnInfo) -> list[Any]:
    def one(value: Any) -> bytes:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise _Reject(f"expected bytes, {_got(value)}")
        return bytes(value)

    return _per_value(series, na, one)


def _convert_uuid(series: pd.Series, na: np.ndarray, column: ColumnInfo) -> list[Any]:
    def one(value: Any) -> uuid.UUID:
        if isinstance(value, uuid.UUID):
            return value
        if isinstance(value, str):
            try:
                return uuid.UUID(value)
            except ValueError:
                raise _Reject(f"invalid UUID string {show(value)}") from None
        raise _Reject(f"expected a UUID, {_got(value)}")

    return _per_value(series, na, one)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} {show(value)} is not JSON serializable")


def _convert_json(series: pd.Series, na: np.ndarray, column: ColumnInfo) -> list[Any]:
    def one(value: Any) -> str:
        if isinstance(value, str):
            text = value  # already a JSON document, as asyncpg takes it
            try:
                json.loads(text)
            except ValueError as exc:
                raise _Reject(f"str is not a JSON document ({exc}): {show(value)}") from None
        else:
            try:
                text = json.dumps(value, ensure_ascii=False, allow_nan=False, default=_json_default)
            except (TypeError, ValueError) as exc:
                raise _Reject(f"cannot be stored as JSON: {exc}") from None
        # PostgreSQL's jsonb has no representation of U+0000 and rejects its escape.
        if column.base_type == "jsonb" and ("\x00" in text or _JSON_NUL.search(text)):
            raise _Reject(f"JSON contains a NUL character (U+0000): {show(value)}")
        return text

    return _per_value(series, na, one)


# -- dates and times --------------------------------------------------------------------------


def _check_no_nanos(series: pd.Series, na: np.ndarray) -> None:
    # PostgreSQL keeps microseconds; dropping nanoseconds silently would change the value.
    nanos = np.asarray(series.dt.nanosecond.fillna(0) != 0, dtype=bool) & ~na
    if nanos.any():
        pos = first_true(nanos)
        raise _Reject(f"{series.iloc[pos]} has nanoseconds; PostgreSQL keeps microseconds", pos)


def _datetimes(series: pd.Series, na: np.ndarray) -> list[Any]:
    _check_no_nanos(series, na)
    values = series.astype(object).tolist()
    return [
        None if missing else value.to_pydatetime()
        for value, missing in zip(values, na, strict=True)
    ]


def _convert_timestamp(series: pd.Series, na: np.ndarray, column: ColumnInfo) -> list[Any]:
    aware_wanted = column.base_type == "timestamptz"
    if isinstance(series.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(
        series.dtype
    ):
        is_aware = isinstance(series.dtype, pd.DatetimeTZDtype)
        if is_aware != aware_wanted and (~na).any():
            raise _Reject(_tz_reason(aware_wanted), first_true(~na))
        return _datetimes(series, na)

    def one(value: Any) -> dt.datetime:
        if isinstance(value, pd.Timestamp):
            if value.nanosecond:
                raise _Reject(f"{value} has nanoseconds; PostgreSQL keeps microseconds")
            value = value.to_pydatetime()
        elif isinstance(value, np.datetime64):
            stamp = pd.Timestamp(value)
            if stamp.nanosecond:
                raise _Reject(f"{stamp} has nanoseconds; PostgreSQL keeps microseconds")
            value = stamp.to_pydatetime()
        elif isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            if aware_wanted:
                raise _Reject(f"a date has no time zone; {_tz_reason(True)}")
            return dt.datetime(value.year, value.month, value.day)
        if not isinstance(value, dt.datetime):
            raise _Reject(f"expected a datetime, {_got(value)}")
        if (value.tzinfo is not None) != aware_wanted:
            raise _Reject(f"{_tz_reason(aware_wanted)}: {show(value)}")
        return value

    return _per_value(series, na, one)


def _tz_reason(aware_wanted: bool) -> str:
    if aware_wanted:
        return "naive datetime into a timestamptz column: its time zone is unknown (localize it)"
    return "time-zone-aware datetime into a timestamp column would lose its offset"


def _convert_date(series: pd.Series, na: np.ndarray, column: ColumnInfo) -> list[Any]:
    if pd.api.types.is_datetime64_dtype(series.dtype):
        normalized = series.dt.normalize()
        has_time = np.asarray(normalized != series, dtype=bool) & ~na
        if has_time.any():
            pos = first_true(has_time)
            raise _Reject(f"{series.iloc[pos]} has a time part; a date column drops it", pos)
        # numpy turns a whole datetime64[D] array into date objects (NaT into None) in C; a
        # day outside Python's date range comes out as an int and takes the slow way.
        days: list[Any] = series.to_numpy().astype("datetime64[D]").astype(object).tolist()
        if not any(type(day) is int for day in days):
            return days
        return [
            None if missing else value.date()
            for value, missing in zip(series.astype(object).tolist(), na, strict=True)
        ]

    def one(value: Any) -> dt.date:
        if isinstance(value, np.datetime64):
            value = pd.Timestamp(value)  # then judged as the datetime it is
        if isinstance(value, dt.datetime):
            if value.tzinfo is not None or value.time() != dt.time():
                raise _Reject(f"{show(value)} has a time part or zone; a date column drops it")
            return value.date()
        if isinstance(value, dt.date):
            return value
        raise _Reject(f"expected a date, {_got(value)}")

    return _per_value(series, na, one)


def _convert_interval(series: pd.Series, na: np.ndarray, column: ColumnInfo) -> list[Any]:
    def one(value: Any) -> dt.timedelta:
        if isinstance(value, np.timedelta64):
            value = pd.Timedelta(value)
        if isinstance(value, pd.Timedelta):
            if value.nanoseconds:
                raise _Reject(f"{value} has nanoseconds; PostgreSQL keeps microseconds")
            return cast(dt.timedelta, value.to_pytimedelta())
        if isinstance(value, dt.timedelta):
            return value
        raise _Reject(f"expected a timedelta, {_got(value)}")

    return _per_value(series, na, one)


def _convert_passthrough(series: pd.Series, na: np.ndarray, column: ColumnInfo) -> list[Any]:
    def one(value: Any) -> Any:
        return value.item() if isinstance(value, np.generic) else value

    return _per_value(series, na, one)


_CONVERTERS: dict[str, Callable[[pd.Series, np.ndarray, ColumnInfo], list[Any]]] = {
    "int2": _convert_int,
    "int4": _convert_int,
    "int8": _convert_int,
    "float4": _convert_float,
    "float8": _convert_float,
    "numeric": _convert_numeric,
    **dict.fromkeys(_TEXT_TYPES, _convert_text),
    "bool": _convert_bool,
    "bytea": _convert_bytea,
    "uuid": _convert_uuid,
    "json": _convert_json,
    "jsonb": _convert_json,
    "timestamp": _convert_timestamp,
    "timestamptz": _convert_timestamp,
    "date": _convert_date,
    "interval": _convert_interval,
}
