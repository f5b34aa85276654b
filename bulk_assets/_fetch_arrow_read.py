"""How ``Fetcher.batches`` reads each format as Arrow record batches, and keeps one
partition's slice of them: CSV parsed by the table's column types, Parquet through
``pyarrow.dataset`` with the slice pushed down, JSON Lines (and CSV with pandas-only
options) through the DataFrame reader."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np
import pyarrow as pa

from ._fetch_arrow_csv import ARROW_CSV_OPTIONS, csv_batches
from ._fetch_errors import Where
from ._fetch_files import FileSet
from ._fetch_formats import FileFormat
from ._fetch_many import Readers
from ._fetch_parquet import parquet_batches
from ._fetch_read import ReadRequest
from ._fetch_slice import RowSlice
from ._fetch_source import Bytes
from ._fetch_trail import Trail

__all__ = ["arrow_readers", "sliced"]


def arrow_readers(
    chosen: FileFormat,
    read: ReadRequest,
    *,
    types: Mapping[str, str],
    null_values: Sequence[str],
) -> Readers[pa.RecordBatch]:
    """The readers of ``chosen`` as record batches; ``types``: source column -> the base
    type of its target column (CSV parses each column as that type)."""
    if chosen.read_file is not None:
        return Readers(None, _parquet, _blank)
    if chosen.name == "csv" and set(read.read_options) <= ARROW_CSV_OPTIONS:

        def csv(stream: Bytes, request: ReadRequest) -> Iterator[pa.RecordBatch]:
            return csv_batches(stream, request, types=types, null_values=null_values)

        return Readers(csv, None, _blank)
    frames = chosen.read_stream
    assert frames is not None, "CSV and JSON Lines read streams"

    def via_pandas(stream: Bytes, request: ReadRequest) -> Iterator[pa.RecordBatch]:
        for frame in frames(stream, request):
            yield pa.RecordBatch.from_pandas(frame, preserve_index=False)

    return Readers(via_pandas, None, _blank)


def sliced(
    batches: Iterator[pa.RecordBatch],
    keep: RowSlice | None,
    where: Where,
    skipped: Callable[[int], None],
    trail: Trail | None = None,
) -> Iterator[pa.RecordBatch]:
    """``batches`` with only the rows inside ``keep`` (target column names), the others
    counted in ``skipped`` (and the kept ones' places told to ``trail``). A slice with no
    rows still gives one empty batch, so that the writer sees the columns (and replaces the
    partition with nothing)."""
    if keep is None:
        yield from batches
        return
    empty: pa.RecordBatch | None = None
    given = False
    read = 0  # rows the readers gave so far: the trail's numbering
    for batch in batches:
        if trail is None:
            inside, dropped = keep.batch(batch, where)
        else:
            inside, dropped = _kept(batch, keep, where, trail, read)
        read += batch.num_rows
        skipped(dropped)
        if not inside.num_rows:
            empty = inside
            continue
        given = True
        yield inside
    if not given and empty is not None:
        yield empty


# A column added while filtering: each row's place among the rows the readers gave.
_ROW = "__bulk_assets_row__"


def _kept(
    batch: pa.RecordBatch, keep: RowSlice, where: Where, trail: Trail, first: int
) -> tuple[pa.RecordBatch, int]:
    """``keep.batch``, telling ``trail`` which of the readers' rows (``first``...) it kept.
    Only the slice's column is filtered, numbered, and the batch taken by those numbers.
    For 50,000 rows of 5 columns: 0.24 against 0.29 ms when all are kept, 1.3 against 1.4
    ms when the kept ones are scattered, 0.9 against 0.5 ms for a batch the slice's edge
    cuts in two (in a sorted file, one or two batches)."""
    if not batch.num_rows or keep.column not in batch.schema.names:
        return keep.batch(batch, where)  # nothing to number, or the error naming the column
    numbers = pa.array(np.arange(batch.num_rows))
    key = pa.record_batch([batch.column(keep.column), numbers], names=[keep.column, _ROW])
    kept, dropped = keep.batch(key, where)
    if not dropped:
        trail.handed(batch.num_rows, first)
        return batch, 0
    rows = kept.column(_ROW).to_numpy()
    trail.handed(len(rows), rows + first)
    return batch.take(kept.column(_ROW)), dropped


def _parquet(files: FileSet, read: ReadRequest) -> Iterator[pa.RecordBatch]:
    return parquet_batches(files, read)


def _blank(batch: pa.RecordBatch) -> bool:
    return bool(batch.num_columns == 0 and batch.num_rows == 0)
