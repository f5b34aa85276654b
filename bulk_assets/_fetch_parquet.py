"""Parquet as DataFrame chunks of ``chunk_rows`` rows (the last one shorter), read from a
local file: the reader seeks to the footer first, so a URL is downloaded before it is read.
A file without rows comes out as one empty frame with the file's columns."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ._fetch_errors import Where
from ._fetch_read import ReadRequest

__all__ = ["parquet_chunks"]

_PARQUET_MAGIC = b"PAR1"
# Header magic, footer length (4 bytes) and footer magic: nothing shorter is a Parquet file.
_PARQUET_MIN_SIZE = 12
# Integer and bool columns read as pandas' nullable dtypes: every chunk then has the same dtype,
# whether or not it happens to hold a null (numpy would make those chunks float64 / object).
_NULLABLE: dict[pa.DataType, Any] = {
    pa.int8(): pd.Int8Dtype(),
    pa.int16(): pd.Int16Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.uint8(): pd.UInt8Dtype(),
    pa.uint16(): pd.UInt16Dtype(),
    pa.uint32(): pd.UInt32Dtype(),
    pa.uint64(): pd.UInt64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}


def parquet_chunks(path: Path, read: ReadRequest) -> Iterator[pd.DataFrame]:
    """Record batches of ``path`` regrouped into ``chunk_rows`` rows: pyarrow's batches stop at
    row-group ends, so it alone would give uneven chunks. Memory holds one row group at a time.
    Only ``columns`` are read (all if None), the rest is never decoded."""
    where, chunk_rows, columns = read.where, read.chunk_rows, read.columns
    _check_complete(path, where)
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise where.error(f"not a readable Parquet file: {exc}") from exc
    with contextlib.closing(parquet):
        names = parquet.schema_arrow.names
        wanted = None if columns is None else [c for c in columns if c in names]
        pending = parquet.schema_arrow.empty_table()
        if wanted is not None:
            pending = pending.select(wanted)
        done = 0
        try:
            for batch in parquet.iter_batches(batch_size=chunk_rows, columns=wanted):
                pending = pa.concat_tables([pending, pa.Table.from_batches([batch])])
                while pending.num_rows >= chunk_rows:
                    yield _to_pandas(pending.slice(0, chunk_rows))
                    pending, done = pending.slice(chunk_rows), done + chunk_rows
        except (pa.ArrowException, OSError) as exc:
            raise where.error(f"corrupt Parquet data after row {done:,}: {exc}", row=done) from exc
        if pending.num_rows or not done:
            yield _to_pandas(pending)


def _check_complete(path: Path, where: Where) -> None:
    try:
        size = path.stat().st_size
        with open(path, "rb") as file:
            head = file.read(4)
            file.seek(max(0, size - 4))
            tail = file.read(4)
    except OSError as exc:
        raise where.error(f"cannot open it: {exc.strerror or exc}") from exc
    if head != _PARQUET_MAGIC:
        raise where.error(
            f"not a Parquet file: it starts with {head!r}, expected {_PARQUET_MAGIC!r}"
        )
    if size < _PARQUET_MIN_SIZE or tail != _PARQUET_MAGIC:
        raise where.error(f"truncated: the file ({size:,} bytes) ends before its footer")


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    return table.to_pandas(types_mapper=_NULLABLE.get)
