"""Parquet as DataFrame chunks of ``chunk_rows`` rows (the last one shorter), read through
``pyarrow.dataset`` from one file or many (a directory, a glob, a hive tree whose
``key=value`` directories become columns), locally or in an object store. The reader seeks
to each file's footer first, so a URL is downloaded before it is read.

A partition's slice is pushed down: a row group whose statistics put it outside the slice is
never read, and the rows of the others are filtered as they are decoded. Files are read one
row group at a time, so an error names the file, the row group, its first row and, for data
that does not decode, the column. A dataset without rows comes out as one empty frame with
its columns."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from ._fetch_errors import FetchError, Where
from ._fetch_files import FileSet
from ._fetch_read import ReadRequest
from ._fetch_stores import store_error

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
_ERRORS = (pa.ArrowException, OSError)


def parquet_chunks(files: FileSet, read: ReadRequest) -> Iterator[pd.DataFrame]:
    """Record batches of ``files`` regrouped into ``chunk_rows`` rows: pyarrow's batches stop
    at row-group ends, so it alone would give uneven chunks. Memory holds one row group at a
    time. Only ``columns`` are read (all if None), the rest is never decoded."""
    chunk_rows = read.chunk_rows
    for path in files.paths:
        _check_complete(files, path)
    first = files.where(files.paths[0], read.where.format)
    try:
        dataset = ds.dataset(
            list(files.paths),
            filesystem=files.filesystem,
            format="parquet",
            partitioning="hive",
            partition_base_dir=files.base,
        )
    except _ERRORS as exc:
        raise first.error(f"not a readable Parquet file: {exc}") from exc
    names = dataset.schema.names
    wanted = None if read.columns is None else [c for c in read.columns if c in names]
    where_clause = None
    if read.within is not None and read.within_column is not None:
        where_clause = read.within.expression(dataset.schema, read.within_column)
    pending = dataset.schema.empty_table()
    if wanted is not None:
        pending = pending.select(wanted)
    position = done = skipped = 0
    fragments = sorted(dataset.get_fragments(), key=lambda f: str(f.path))
    for fragment in fragments:
        where = files.where(fragment.path, read.where.format)
        groups, kept = _row_groups(fragment, where_clause, where)
        for group in groups:
            rows = group.num_rows
            if kept is not None and group.id not in kept:
                skipped, position = skipped + rows, position + rows
                continue
            piece = fragment.subset(row_group_ids=[group.id])
            got = 0
            try:
                for batch in piece.to_batches(
                    schema=dataset.schema,
                    columns=wanted,
                    filter=where_clause,
                    batch_size=chunk_rows,
                ):
                    got += batch.num_rows
                    pending = pa.concat_tables([pending, pa.Table.from_batches([batch])])
                    while pending.num_rows >= chunk_rows:
                        yield _to_pandas(pending.slice(0, chunk_rows))
                        pending, done = pending.slice(chunk_rows), done + chunk_rows
            except _ERRORS as exc:
                raise _corrupt(
                    piece, dataset.schema, wanted, where, group.id, position, exc
                ) from exc
            skipped, position = skipped + rows - got, position + rows
    if read.skipped is not None and skipped:
        read.skipped(skipped)
    if pending.num_rows or not done:
        yield _to_pandas(pending)


def _row_groups(
    fragment: Any, where_clause: ds.Expression | None, where: Where
) -> tuple[list[Any], set[int] | None]:
    """The fragment's row groups, and the ids of those its statistics do not rule out (None:
    no filter)."""
    try:
        fragment.ensure_complete_metadata()
        groups = list(fragment.row_groups)
        if where_clause is None:
            return groups, None
        kept = {piece.row_groups[0].id for piece in fragment.split_by_row_group(where_clause)}
    except _ERRORS as exc:
        raise where.error(f"not a readable Parquet file: {exc}") from exc
    return groups, kept


def _corrupt(
    piece: Any,
    schema: pa.Schema,
    wanted: list[str] | None,
    where: Where,
    group: int,
    position: int,
    exc: BaseException,
) -> FetchError:
    """The error of a row group that does not decode, naming the column: each wanted column
    is read alone until one fails (only on this path, so a good file pays nothing)."""
    column = None
    for name in wanted if wanted is not None else schema.names:
        try:
            piece.to_table(schema=schema, columns=[name])
        except _ERRORS:
            column = name
            break
    at = f", column {column!r}" if column is not None else ""
    failure = where.error(
        f"corrupt Parquet data in row group {group} (from row {position:,}){at}: {exc}",
        row=position,
        column=column,
    )
    return failure


def _check_complete(files: FileSet, path: str) -> None:
    where = files.where(path, "parquet")
    try:
        with files.filesystem.open_input_file(path) as file:
            size = file.size()
            head = file.read(4)
            file.seek(max(0, size - 4))
            tail = file.read(4)
    except FileNotFoundError as exc:
        raise where.error("cannot open it: No such file or directory") from exc
    except _ERRORS as exc:
        if files.store is not None:
            raise store_error(files.store, where, "cannot open it", exc) from None
        raise where.error(f"cannot open it: {getattr(exc, 'strerror', None) or exc}") from exc
    if head != _PARQUET_MAGIC:
        raise where.error(
            f"not a Parquet file: it starts with {head!r}, expected {_PARQUET_MAGIC!r}"
        )
    if size < _PARQUET_MIN_SIZE or tail != _PARQUET_MAGIC:
        raise where.error(f"truncated: the file ({size:,} bytes) ends before its footer")


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    return table.to_pandas(types_mapper=_NULLABLE.get)
