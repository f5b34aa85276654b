"""A year of daily rows, sliced by month: the data the partitioned fetch tests (pandas and
Arrow paths) share, and a way to break one Parquet row group of it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from resources import KeyRange

YEAR = pd.date_range("2026-01-01", periods=365, freq="D", tz="UTC")
MARCH = KeyRange(
    "at", dt.datetime(2026, 3, 1, tzinfo=dt.UTC), dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
)


def year_frame() -> pd.DataFrame:
    """One row a day of 2026: a 12-month export."""
    return pd.DataFrame(
        {"id": range(1, len(YEAR) + 1), "at": YEAR, "amount": [i * 0.5 for i in range(len(YEAR))]}
    )


def march_ids() -> list[int]:
    frame = year_frame()
    ids: list[int] = frame.loc[frame["at"].dt.month == 3, "id"].tolist()
    return ids


def corrupt_row_group(path: Path, group: int, column: str) -> None:
    """Overwrite one column chunk's data pages with garbage, leaving the footer (and its
    statistics) intact: reading that row group fails, the others read fine."""
    meta = pq.ParquetFile(path).metadata
    index = meta.schema.to_arrow_schema().get_field_index(column)
    chunk = meta.row_group(group).column(index)
    start = chunk.dictionary_page_offset or chunk.data_page_offset
    data = bytearray(path.read_bytes())
    data[start : start + chunk.total_compressed_size] = b"\xff" * chunk.total_compressed_size
    path.write_bytes(bytes(data))
