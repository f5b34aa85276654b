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

import bisect
import contextlib
from collections.abc import Iterator
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from resources._arrow_fields import NULLABLE_DTYPES

from ._fetch_errors import FetchError, Where
from ._fetch_files import FileSet
from ._fetch_read import ReadRequest
from ._fetch_stores import store_error
from ._fetch_trail import ParquetOrigin

__all__ = ["parquet_batches", "parquet_chunks", "row_group_of"]

_PARQUET_MAGIC = b"PAR1"
# Header magic, footer length (4 bytes) and footer magic: nothing shorter is a Parquet file.
_PARQUET_MIN_SIZE = 12
_ERRORS = (pa.ArrowException, OSError)
#: A row group read: its first row in the dataset, file, id and the file's first row.
Group: TypeAlias = tuple[int, str, int, int]
# A column added to each batch: the row's position in the whole dataset, kept through the
# slice filter so that an error can name the row in the file, not in what the filter kept.
_POSITION = "__bulk_assets_position__"
# The frame attribute listing (first row, file, row group id, the file's first row) of the
# row groups read.
_SEEN = "bulk_assets.parquet_row_groups"
# The rows of the read's first batch: decoded and encoded in a few milliseconds, so the COPY
# starts at once; later batches double up to chunk_rows.
_FIRST_ROWS = 8_192
_TRUE = ds.scalar(True)


def parquet_chunks(files: FileSet, read: ReadRequest) -> Iterator[pd.DataFrame]:
    """Record batches of ``files`` regrouped into ``chunk_rows`` rows: pyarrow's batches stop
    at row-group ends, so it alone would give uneven chunks. Memory holds one row group at a
    time. Only ``columns`` are read (all if None), the rest is never decoded."""
    chunk_rows = read.chunk_rows
    seen: list[Group] = []
    pending, tables = _scan(files, read, seen)
    done = 0
    for table in tables:
        pending = pa.concat_tables([pending, table])
        while pending.num_rows >= chunk_rows:
            yield _traced(_to_pandas(pending.slice(0, chunk_rows), seen), seen, read)
            pending, done = pending.slice(chunk_rows), done + chunk_rows
    if pending.num_rows or not done:
        yield _traced(_to_pandas(pending, seen), seen, read)


def parquet_batches(files: FileSet, read: ReadRequest) -> Iterator[pa.RecordBatch]:
    """The same read as :func:`parquet_chunks` (slice pushed down, row groups outside it
    unread) as Arrow record batches of at most ``chunk_rows`` rows, for the Arrow path."""
    seen: list[Group] = []
    empty, tables = _scan(files, read, seen)
    given = False
    for table in tables:
        # Each table is one row group's (the one seen last) rows, numbered in the dataset.
        positions = table.column(_POSITION).to_numpy() if read.trail is not None else None
        start = 0
        for batch in table.drop_columns([_POSITION]).to_batches(max_chunksize=read.chunk_rows):
            if batch.num_rows:
                if read.trail is not None and positions is not None:
                    mine = positions[start : start + batch.num_rows]
                    read.trail.read(batch.num_rows, ParquetOrigin(_compact(mine), (seen[-1],)))
                start += batch.num_rows
                given = True
                yield batch
    if not given:
        yield pa.RecordBatch.from_pylist([], schema=empty.drop_columns([_POSITION]).schema)


def _scan(
    files: FileSet, read: ReadRequest, seen: list[Group]
) -> tuple[pa.Table, Iterator[pa.Table]]:
    """An empty table of the read's columns, and the row groups' rows as tables numbered
    with their position in the dataset, the slice's filter applied; ``read.skipped`` is told
    at the end how many rows the filter and the pruned row groups left out."""
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
    reading = wanted
    if wanted is not None and where_clause is not None and read.within_column not in wanted:
        reading = [*wanted, str(read.within_column)]  # read for the filter, then dropped

    def tables() -> Iterator[pa.Table]:
        position = kept_rows = 0
        fragments = sorted(dataset.get_fragments(), key=lambda f: str(f.path))
        for fragment in fragments:
            file_first = position
            where = files.where(fragment.path, read.where.format)
            groups, kept = _row_groups(fragment, where_clause, where)
            with _plain(fragment, dataset.schema, reading, where) as plain:
                for group in groups:
                    rows = group.num_rows
                    if kept is not None and group.id not in kept:
                        position += rows
                        continue
                    seen.append((position, where.location, group.id, file_first))
                    piece = fragment.subset(row_group_ids=[group.id])
                    got = 0
                    try:
                        if plain is None:
                            batches = piece.to_batches(
                                schema=dataset.schema, columns=reading, batch_size=read.chunk_rows
                            )
                        else:
                            first = len(seen) == 1
                            batches = _paged(plain, group.id, reading, read.chunk_rows, first)
                        for batch in batches:
                            table = _numbered(batch, position + got)
                            got += batch.num_rows
                            if where_clause is not None:
                                table = table.filter(where_clause)
                            if reading is not wanted:
                                table = table.drop_columns([str(read.within_column)])
                            kept_rows += table.num_rows
                            yield table
                    except _ERRORS as exc:
                        raise _corrupt(
                            piece, dataset.schema, wanted, where, group.id, position, exc
                        ) from exc
                    position += rows
        # Every row not handed on was skipped: in pruned row groups or by the filter.
        if read.skipped is not None and position > kept_rows:
            read.skipped(position - kept_rows)

    return _empty(dataset.schema, wanted), tables()


@contextlib.contextmanager
def _plain(
    fragment: Any, schema: pa.Schema, columns: list[str] | None, where: Where
) -> Iterator[pq.ParquetFile | None]:
    """The fragment's file opened for :func:`_paged`, when it holds exactly what the dataset
    reads (no hive keys to add, the dataset's own types: nothing to cast); else None, and the
    dataset's scanner reads it."""
    physical = fragment.physical_schema
    names = schema.names if columns is None else columns
    same = fragment.partition_expression.equals(_TRUE) and all(
        physical.get_field_index(name) >= 0 and physical.field(name).type == schema.field(name).type
        for name in names
    )
    if not same or (columns is None and physical.names != names):
        yield None
        return
    try:
        file = pq.ParquetFile(
            fragment.path,
            metadata=fragment.metadata,
            filesystem=fragment.filesystem,
            # Pre-buffering reads a row group's column chunks whole, on Arrow's I/O threads:
            # worth it where each read is a request (object stores). A local file gains
            # nothing and pays for the buffers: 87 MB held for the 84 MB benchmark file, and
            # its first pass 0.53 s instead of 0.27 s, most of it the kernel faulting pages in.
            pre_buffer=not isinstance(fragment.filesystem, pafs.LocalFileSystem),
        )
    except _ERRORS as exc:
        raise where.error(f"not a readable Parquet file: {exc}") from exc
    with file:
        yield file


def _paged(
    file: pq.ParquetFile, group: int, columns: list[str] | None, chunk_rows: int, first: bool
) -> Iterator[pa.RecordBatch]:
    """One row group's rows, decoded a page at a time in the calling thread. The scanner
    decodes a whole row group before its first batch (0.1 to 0.4 s for 250,000 rows of the
    12-column benchmark file, while the server waits for its first row) and decodes ahead on
    Arrow's threads, taking the core the server copies on. The dataset's first row group
    starts with a batch of _FIRST_ROWS, then batches double up to ``chunk_rows``: the COPY
    starts after a few milliseconds of decoding."""
    size = min(_FIRST_ROWS, chunk_rows) if first else chunk_rows
    reader = file.iter_batches(
        batch_size=size, row_groups=[group], columns=columns, use_threads=False
    )
    pending: list[pa.RecordBatch] = []
    want, held = size, 0
    for batch in reader:
        if columns is not None and batch.schema.names != columns:
            batch = batch.select(columns)
        pending.append(batch)
        held += batch.num_rows
        while held >= want:
            # Exactly ``want`` rows: the reader's batches stay _FIRST_ROWS long for the whole
            # first row group, and 7 of them (57,344 rows) would leave a 7,344-row chunk of
            # its own at 50,000.
            whole = _joined(pending)
            rest = whole.slice(want)
            yield whole.slice(0, want)
            pending, held = ([rest] if rest.num_rows else []), rest.num_rows
            want = min(want * 2, chunk_rows)
    if pending:
        yield _joined(pending)


def _joined(batches: list[pa.RecordBatch]) -> pa.RecordBatch:
    if len(batches) == 1:
        return batches[0]
    return pa.Table.from_batches(batches).combine_chunks().to_batches()[0]


def row_group_of(frame: pd.DataFrame, row: int) -> tuple[str, int] | None:
    """The file and row group that the dataset's ``row`` came from, for a chunk this reader
    yielded; None for any other frame."""
    groups = frame.attrs.get(_SEEN)
    if not isinstance(groups, _RowGroups) or not groups.entries:
        return None
    seen = groups.entries
    index = bisect.bisect_right([group[0] for group in seen], row) - 1
    if index < 0:
        return None
    _, location, group, _ = seen[index]
    return location, group


def _empty(schema: pa.Schema, wanted: list[str] | None) -> pa.Table:
    table = schema.empty_table()
    if wanted is not None:
        table = table.select(wanted)
    return table.append_column(_POSITION, pa.array([], type=pa.int64()))


def _numbered(batch: pa.RecordBatch, first: int) -> pa.Table:
    """``batch`` with each row's position in the whole dataset, which survives the filter."""
    positions = pa.array(np.arange(first, first + batch.num_rows, dtype=np.int64))
    return pa.Table.from_batches([batch]).append_column(_POSITION, positions)


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


def _to_pandas(table: pa.Table, seen: list[Group]) -> pd.DataFrame:
    """The chunk, indexed by each row's position in the whole dataset (rows a filter left out
    leave gaps), with the row groups read so far for messages naming one."""
    positions = table.column(_POSITION).to_numpy()
    frame = table.drop_columns([_POSITION]).to_pandas(types_mapper=NULLABLE_DTYPES.get)
    frame.index = pd.Index(positions)
    frame.attrs[_SEEN] = _RowGroups(tuple(seen))
    return frame


def _traced(frame: pd.DataFrame, seen: list[Group], read: ReadRequest) -> pd.DataFrame:
    """``frame``, its rows' origin told to ``read.trail``: the row groups it spans."""
    if read.trail is not None and len(frame):
        positions = frame.index.to_numpy()
        first = int(positions[0])
        start = len(seen) - 1
        while start > 0 and seen[start][0] > first:
            start -= 1
        origin = ParquetOrigin(_compact(positions), tuple(seen[start:]))
        read.trail.read(len(frame), origin)
    return frame


def _compact(positions: np.ndarray) -> np.ndarray | int:
    """Consecutive positions (no filter dropped any) as the first one alone."""
    first = int(positions[0])
    return first if int(positions[-1]) - first == len(positions) - 1 else positions.copy()


class _RowGroups:
    """(first row, file, row group id, the file's first row) of the row groups read so far.
    pandas deep-copies a frame's attrs on every operation: shared as is, not copied (copying
    a 50-entry list per operation cost 0.7 s of a 3.4 s read of 5M rows)."""

    __slots__ = ("entries",)

    def __init__(self, entries: tuple[Group, ...]) -> None:
        self.entries = entries

    def __deepcopy__(self, memo: dict[int, object]) -> _RowGroups:
        return self
