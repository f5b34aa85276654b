"""The readers of JSON Lines (a byte stream) and Parquet (a file) as DataFrame chunks of
``chunk_rows`` rows each (JSON Lines: fewer, past ``chunk_bytes``), the last one shorter;
CSV's is in :mod:`._fetch_csv`. A source with no data at all comes out as one
frame without columns, which the caller turns into an empty result or an error."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ._fetch_errors import FetchError, Where
from ._fetch_source import Bytes

__all__ = ["infer_format", "jsonl_chunks", "parquet_chunks"]

_EXTENSIONS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
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


def infer_format(path: str) -> tuple[str | None, bool]:
    """The format a file name implies, and whether it is gzipped: ``x.csv.gz`` is
    ``("csv", True)``; an unknown extension gives ``None``."""
    name = PurePosixPath(path).name.lower()
    gzipped = name.endswith(".gz")
    if gzipped:
        name = name.removesuffix(".gz")
    return _EXTENSIONS.get(PurePosixPath(name).suffix), gzipped


def jsonl_chunks(
    stream: Bytes,
    where: Where,
    *,
    chunk_rows: int,
    chunk_bytes: int,
    max_line_bytes: int,
    read_options: Mapping[str, Any],
) -> Iterator[pd.DataFrame]:
    """``pd.read_json(lines=True)`` on up to ``chunk_rows`` non-blank lines and about
    ``chunk_bytes`` bytes at a time; we batch the lines ourselves, so that a malformed one can
    be named by its line number, and a line past ``max_line_bytes`` is refused before it fills
    memory. ``dtype=False`` by default: pandas would otherwise turn a text column of digits
    ("01", "02") into ints."""
    options = {"dtype": False, **read_options}
    encoding = options.pop("encoding", None) or "utf-8"
    records = _numbered_lines(stream, where, encoding, max_line_bytes)
    row = 0
    while batch := _batch(records, chunk_rows, chunk_bytes):
        body = "\n".join(line for _, line in batch)
        try:
            frame = pd.read_json(io.StringIO(body), lines=True, **options)
        except ValueError as exc:
            raise _jsonl_error(exc, batch, row, where) from exc
        row += len(batch)
        yield frame
    if not row:
        yield pd.DataFrame()


def _batch(records: Iterator[tuple[int, str]], rows: int, size: int) -> list[tuple[int, str]]:
    batch: list[tuple[int, str]] = []
    total = 0
    for record in itertools.islice(records, rows):
        batch.append(record)
        total += len(record[1])
        if total >= size:
            break
    return batch


def _numbered_lines(
    stream: Bytes, where: Where, encoding: str, max_line: int
) -> Iterator[tuple[int, str]]:
    number = 0
    while True:
        # One byte more than the ceiling: a line that fills it all is too long.
        raw = stream.readline(max_line + 1)
        if not raw:
            return
        number += 1
        content = raw.rstrip(b"\r\n")
        if len(content) > max_line:
            raise where.error(
                f"line {number}: longer than max_line_bytes={max_line:,} bytes (a line that "
                "large is refused to bound memory; raise the Fetcher's max_line_bytes if the "
                "file is meant so)",
                line=number,
            )
        try:
            line = content.decode(encoding)
        except UnicodeDecodeError as exc:
            raise where.error(f"line {number} is not valid {encoding}: {exc.reason}") from exc
        if line.strip():
            yield number, line


def _jsonl_error(
    exc: ValueError, batch: list[tuple[int, str]], row: int, where: Where
) -> FetchError:
    for i, (line, text) in enumerate(batch):
        try:
            value = json.loads(text)
        except ValueError as bad:
            return where.error(f"line {line} is not valid JSON: {bad}", line=line, row=row + i)
        if not isinstance(value, dict):
            return where.error(
                f"line {line} holds a JSON {type(value).__name__}, expected an object",
                line=line,
                row=row + i,
            )
    lines = f"lines {batch[0][0]}..{batch[-1][0]}"
    return where.error(f"{lines} do not form a table: {exc}", line=batch[0][0], row=row)


def parquet_chunks(
    path: Path, where: Where, *, chunk_rows: int, columns: Sequence[str] | None
) -> Iterator[pd.DataFrame]:
    """Record batches of ``path`` regrouped into ``chunk_rows`` rows: pyarrow's batches stop at
    row-group ends, so it alone would give uneven chunks. Memory holds one row group at a time.
    Only ``columns`` are read (all if None), the rest is never decoded."""
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
