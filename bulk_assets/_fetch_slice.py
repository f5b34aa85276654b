"""One partition's rows out of a source that holds many: the rows outside the partition's
window or key range are skipped and counted, chunk by chunk, instead of being refused by the
writer. The same rule serves a DataFrame chunk and, pushed down into Parquet, a pyarrow
expression that lets whole row groups go unread."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from resources import KeyRange

from ._fetch_errors import Where

__all__ = ["RowSlice"]


@dataclass(frozen=True, slots=True)
class RowSlice:
    """The rows a fetch keeps: ``range.column`` in ``[range.start, range.end)``.

    ``name`` says which slice in the run log ("skipped 41 rows outside 2026-03-01"); by
    default the range itself. A row whose value is missing lies in no slice and is skipped.

    Examples:
        .. code-block:: python

            fetcher.frames("s3://exports/events.parquet", within=RowSlice(
                KeyRange("occurred_at", march, april), name="2026-03-01"))
    """

    range: KeyRange
    name: str = ""

    @property
    def column(self) -> str:
        return self.range.column

    @property
    def label(self) -> str:
        return self.name or str(self.range)

    def frame(self, frame: pd.DataFrame, where: Where) -> tuple[pd.DataFrame, int]:
        """``frame``'s rows inside the slice, and how many were skipped. The column is
        compared as it is typed; a text column (no dtype declared) is parsed for the
        comparison only, as ISO 8601 for a time window and as a number for a key range."""
        self._check_column([str(c) for c in frame.columns], where)
        keep = self._inside(frame[self.column], where)
        skipped = int(len(keep) - keep.sum())
        return (frame if not skipped else frame[keep]), skipped

    def batch(self, batch: pa.RecordBatch, where: Where) -> tuple[pa.RecordBatch, int]:
        """``batch``'s rows inside the slice, and how many were skipped: compared in Arrow
        where the column's type allows it exactly, else as :meth:`frame` compares."""
        self._check_column(batch.schema.names, where)
        expression = self.expression(batch.schema, self.column)
        if expression is not None:
            out = batch.filter(expression)
        else:
            values = pd.Series(batch.column(self.column).to_pandas(), name=self.column)
            out = batch.filter(pa.array(self._inside(values, where)))
        return out, batch.num_rows - out.num_rows

    def _check_column(self, names: list[str], where: Where) -> None:
        if self.column not in names:
            raise where.error(
                f"has no column {self.column!r} to pick the partition's rows by "
                f"({self.label}); it has {names}",
                column=self.column,
            )

    def _inside(self, column: pd.Series, where: Where) -> np.ndarray:
        values = _comparable(column, self.range, where)
        start, end = self.range.start, self.range.end
        if isinstance(start, dt.datetime):
            start, end = pd.Timestamp(start), pd.Timestamp(end)
        try:
            inside = ((values >= start) & (values < end)).fillna(False)
        except TypeError as exc:
            raise where.error(
                f"column {self.column!r} ({values.dtype}) cannot be compared with the "
                f"partition's range {self.range}: {exc}; declare its dtype in dtypes",
                column=self.column,
            ) from None
        return np.asarray(inside, dtype=bool)

    def expression(self, schema: pa.Schema, source_column: str) -> ds.Expression | None:
        """The slice as a pyarrow filter on ``source_column``, or None where the file's type
        cannot be compared with the bounds exactly (text, a naive timestamp under a zone
        other than UTC): those rows are then filtered after conversion, as for CSV."""
        if source_column not in schema.names:
            return None
        kind = schema.field(source_column).type
        bounds = [_arrow_bound(value, kind) for value in (self.range.start, self.range.end)]
        if bounds[0] is None or bounds[1] is None:
            return None
        field = ds.field(source_column)
        expression: ds.Expression = (field >= bounds[0]) & (field < bounds[1])
        return expression


def _comparable(values: pd.Series, key_range: KeyRange, where: Where) -> pd.Series:
    if not pd.api.types.is_object_dtype(values.dtype) and not pd.api.types.is_string_dtype(
        values.dtype
    ):
        if isinstance(key_range.start, dt.datetime) and pd.api.types.is_datetime64_dtype(
            values.dtype
        ):
            # A naive timestamp is read as UTC, as the dtype conversion reads one.
            return values.dt.tz_localize("UTC")
        return values
    if isinstance(key_range.start, dt.datetime):
        parsed = pd.to_datetime(values, errors="coerce", utc=True, format="ISO8601")
    elif isinstance(key_range.start, dt.date):
        parsed = pd.to_datetime(values, errors="coerce", format="ISO8601").dt.date
    else:
        parsed = pd.to_numeric(values, errors="coerce")
    bad = parsed.isna() & values.notna()
    if bad.any():
        position = int(np.asarray(bad).argmax())
        raise where.error(
            f"column {values.name!r}, row {values.index[position]:,}: cannot tell whether "
            f"{values.iloc[position]!r} lies in the partition's range {key_range}",
            column=str(values.name),
            row=int(values.index[position]),
        )
    return parsed


def _arrow_bound(value: Any, kind: pa.DataType) -> pa.Scalar | None:
    try:
        if pa.types.is_timestamp(kind) and isinstance(value, dt.datetime):
            if kind.tz is None:
                if value.tzinfo is None:
                    return pa.scalar(value, type=kind)
                # A naive timestamp in the file is read as UTC.
                return pa.scalar(value.astimezone(dt.UTC).replace(tzinfo=None), type=kind)
            return pa.scalar(value, type=kind)
        if pa.types.is_date(kind) and isinstance(value, dt.date):
            day = value.date() if isinstance(value, dt.datetime) else value
            if isinstance(value, dt.datetime) and value.time() != dt.time():
                return None  # an hourly window of a date column: compared after conversion
            return pa.scalar(day, type=kind)
        if pa.types.is_integer(kind) and isinstance(value, int) and not isinstance(value, bool):
            return pa.scalar(value, type=pa.int64())
    except (pa.ArrowException, OverflowError, ValueError):
        return None
    return None
