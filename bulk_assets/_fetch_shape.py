"""Chunks as the caller asked for them: renamed, narrowed to ``columns`` in that order, and
converted to the declared dtypes. A value that does not convert is an error naming its
column and its row in the whole dataset, never a silent NaN."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from resources._display import first_true, show

from ._fetch_errors import Where

__all__ = ["Shape", "check_dtype"]

# Text forms a bool column accepts, compared lowercased.
_TRUTH = {"true": True, "t": True, "yes": True, "y": True, "1": True}
_TRUTH |= {"false": False, "f": False, "no": False, "n": False, "0": False}
# dtypes whose CSV columns are read as text, parsed by us rather than guessed by pandas.
_FROM_TEXT = ("string", "str", "date", "bool", "boolean", "datetime64")


class _Bad(Exception):
    def __init__(self, position: int | None, reason: str) -> None:
        super().__init__(reason)
        self.position = position
        self.reason = reason


def check_dtype(dtype: str) -> None:
    """Refuse an unknown dtype before anything is fetched."""
    if dtype != "date":
        pd.api.types.pandas_dtype(dtype)


class Shape:
    """Applies ``rename``, ``columns`` and ``dtypes`` to every chunk; the first chunk fixes
    the column list, and every later chunk comes out with the same columns in the same order."""

    def __init__(
        self,
        where: Where,
        *,
        rename: Mapping[str, str],
        columns: Sequence[str] | None,
        dtypes: Mapping[str, str],
        sparse: bool,
    ) -> None:
        self._where = where
        self._rename = dict(rename)
        self._columns = list(columns) if columns is not None else None
        self._dtypes = dict(dtypes)
        # JSON Lines: a key absent from a record is a null, so a chunk may lack a column.
        self._sparse = sparse
        self._names: list[str] | None = None
        self._rows = 0

    def source_columns(self) -> list[str] | None:
        """The source columns needed (None: all), to skip reading the others."""
        if self._columns is None:
            return None
        back = {target: source for source, target in self._rename.items()}
        return [back.get(name, name) for name in self._columns]

    def text_columns(self) -> list[str]:
        """Source columns whose declared dtype is parsed from text."""
        back = {target: source for source, target in self._rename.items()}
        return [
            back.get(name, name)
            for name, dtype in self._dtypes.items()
            if isinstance(dtype, str) and dtype.startswith(_FROM_TEXT)
        ]

    def __call__(self, frame: pd.DataFrame) -> pd.DataFrame:
        where = self._where
        if self._names is None:
            self._names = self._first(frame)
        if frame.columns.empty and not len(frame):
            frame = pd.DataFrame(columns=self._names, dtype=object)
        frame = frame.rename(columns=self._rename)
        names = self._names
        missing = [c for c in names if c not in frame.columns]
        if missing and not self._sparse:
            raise where.error(f"the chunk at row {self._rows:,} lacks columns {missing}")
        if self._columns is None and (extra := [c for c in frame.columns if c not in names]):
            raise where.error(
                f"columns {extra} first appear in the chunk at row {self._rows:,}, after the "
                f"first chunk fixed the columns as {names}; pass columns=[...] to choose",
                row=self._rows,
            )
        frame = frame.reindex(columns=names)
        for name, dtype in self._dtypes.items():
            try:
                frame[name] = _convert(frame[name], dtype)
            except _Bad as bad:
                row = None if bad.position is None else self._rows + bad.position
                at = "" if row is None else f", row {row:,}"
                raise where.error(
                    f"column {name!r}{at}: {bad.reason}", row=row, column=name
                ) from bad
        frame.index = pd.RangeIndex(self._rows, self._rows + len(frame))
        self._rows += len(frame)
        return frame

    def _first(self, frame: pd.DataFrame) -> list[str]:
        where = self._where
        if frame.columns.empty and not len(frame):
            if self._columns is None:
                raise where.error(
                    "holds no data, not even a header; pass columns=[...] to read it as empty"
                )
            return list(self._columns)
        source = [str(c) for c in frame.columns]
        if unknown := [c for c in self._rename if c not in source]:
            raise where.error(f"rename names columns {unknown} that it lacks (it has {source})")
        names = [self._rename.get(c, c) for c in source]
        if len(set(names)) != len(names):
            raise where.error(f"after rename, columns repeat: {names}")
        if self._columns is not None:
            if missing := [c for c in self._columns if c not in names]:
                raise where.error(f"columns {missing} are not in it (it has {names})")
            names = list(self._columns)
        if unknown := [c for c in self._dtypes if c not in names]:
            raise where.error(f"dtypes names columns {unknown} it will not have (it has {names})")
        return names


def _convert(series: pd.Series, dtype: str) -> pd.Series:
    if dtype == "date":
        return _to_date(series)
    target = pd.api.types.pandas_dtype(dtype)
    if isinstance(target, pd.DatetimeTZDtype) or (
        isinstance(target, np.dtype) and target.kind == "M"
    ):
        return _to_datetime(series, target, dtype)
    if pd.api.types.is_bool_dtype(target):
        return _to_bool(series, target, dtype)
    if pd.api.types.is_integer_dtype(target):
        return _to_int(series, target, dtype)
    if pd.api.types.is_float_dtype(target):
        return _numbers(series, dtype, nan_text=True).astype(target)
    if isinstance(target, pd.StringDtype):
        return series.astype(target)
    try:
        return series.astype(target)
    except (ValueError, TypeError, OverflowError) as exc:
        for i, value in enumerate(series):
            try:
                pd.Series([value]).astype(target)
            except (ValueError, TypeError, OverflowError) as bad:
                raise _Bad(i, f"expected {dtype}, got {show(value)} ({bad})") from exc
        raise _Bad(None, f"cannot convert to {dtype}: {exc}") from exc


def _numbers(series: pd.Series, dtype: str, *, nan_text: bool = False) -> pd.Series:
    if pd.api.types.is_bool_dtype(series.dtype):
        raise _Bad(
            first_true(series.notna()) if series.notna().any() else 0,
            f"expected {dtype}, got booleans",
        )
    if pd.api.types.is_numeric_dtype(series.dtype):
        return series
    parsed = pd.to_numeric(series, errors="coerce")
    bad = parsed.isna() & series.notna()
    if nan_text:
        bad &= series.astype(str).str.strip().str.lower() != "nan"
    if bad.any():
        pos = first_true(bad)
        raise _Bad(pos, f"expected {dtype}, got {show(series.iloc[pos])}")
    return parsed


def _refuse_missing(missing: pd.Series, target: Any, dtype: str, *, nullable: str) -> None:
    """A numpy dtype has no NULL: a missing value needs the pandas nullable twin."""
    if isinstance(target, np.dtype) and missing.any():
        raise _Bad(
            first_true(missing),
            f"expected {dtype}, got a missing value (use {nullable!r} for a column with nulls)",
        )


def _to_int(series: pd.Series, target: Any, dtype: str) -> pd.Series:
    numbers = _numbers(series, dtype)
    missing = numbers.isna()
    _refuse_missing(missing, target, dtype, nullable="Int64")
    if pd.api.types.is_float_dtype(numbers.dtype):
        values = numbers.to_numpy(dtype="float64", na_value=np.nan)
        fractional = ~np.isnan(values) & (values != np.floor(values))
        if fractional.any():
            pos = first_true(fractional)
            raise _Bad(pos, f"expected {dtype}, got {show(series.iloc[pos])} (not a whole number)")
    info = np.iinfo(target.numpy_dtype if not isinstance(target, np.dtype) else target)
    out_of_range = ~missing & ((numbers < info.min) | (numbers > info.max))
    if out_of_range.any():
        pos = first_true(out_of_range)
        raise _Bad(pos, f"expected {dtype} ({info.min}..{info.max}), got {show(series.iloc[pos])}")
    return numbers.astype(target)


def _to_bool(series: pd.Series, target: Any, dtype: str) -> pd.Series:
    missing = series.isna()
    _refuse_missing(missing, target, dtype, nullable="boolean")
    if pd.api.types.is_bool_dtype(series.dtype):
        return series.astype(target)
    mapped = series.map(lambda v: _TRUTH.get(str(v).strip().lower()) if not pd.isna(v) else None)
    bad = mapped.isna() & ~missing
    if bad.any():
        pos = first_true(bad)
        raise _Bad(
            pos, f"expected {dtype} (true/false, t/f, yes/no, 1/0), got {show(series.iloc[pos])}"
        )
    return mapped.astype("boolean").astype(target)


def _parse_datetimes(series: pd.Series, dtype: str, *, utc: bool) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        parsed = series
    else:
        try:
            parsed = pd.to_datetime(series, errors="coerce", utc=utc, format="ISO8601")
        except (ValueError, TypeError) as exc:
            raise _Bad(None, f"expected {dtype}: {exc}") from exc
    bad = parsed.isna() & series.notna()
    if bad.any():
        pos = first_true(bad)
        raise _Bad(pos, f"expected {dtype} (ISO 8601), got {show(series.iloc[pos])}")
    return parsed


def _to_datetime(series: pd.Series, target: Any, dtype: str) -> pd.Series:
    aware = isinstance(target, pd.DatetimeTZDtype)
    parsed = _parse_datetimes(series, dtype, utc=aware)
    has_zone = isinstance(parsed.dtype, pd.DatetimeTZDtype)
    if aware:
        # Values without a zone are read as UTC, the same for text and for Parquet timestamps.
        parsed = (
            parsed.dt.tz_convert(target.tz)
            if has_zone
            else parsed.dt.tz_localize("UTC").dt.tz_convert(target.tz)
        )
    elif has_zone:
        raise _Bad(
            first_true(parsed.notna()) if parsed.notna().any() else None,
            f"expected {dtype} (no time zone), got values with a zone; "
            "declare 'datetime64[us, UTC]'",
        )
    return parsed.astype(target)


def _to_date(series: pd.Series) -> pd.Series:
    present = series.notna().to_numpy()
    values = series.to_numpy(dtype=object)
    if all(isinstance(v, dt.date) and not isinstance(v, dt.datetime) for v in values[present]):
        return pd.Series(np.where(present, values, None), index=series.index, dtype=object)
    parsed = _parse_datetimes(series, "date", utc=False)
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        raise _Bad(first_true(parsed.notna()), "expected a date, got a timestamp with a time zone")
    timed = parsed.notna() & (parsed != parsed.dt.normalize())
    if timed.any():
        pos = first_true(timed)
        raise _Bad(pos, f"expected a date, got {show(series.iloc[pos])} (it has a time part)")
    dates = parsed.dt.date.to_numpy(dtype=object)
    return pd.Series(np.where(present, dates, None), index=series.index, dtype=object)
