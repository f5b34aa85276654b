"""The resource that reads datasets (CSV, Parquet, JSON Lines) from URLs or paths in chunks."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import logging
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr

from resources import KeyRange

from ._fetch_batches import ArrowRead, ahead_where_it_helps, shaped
from ._fetch_errors import FetchError, Where
from ._fetch_formats import FileFormat, Format

# The readers (pandas, pyarrow: 0.7 s of CPU to import) are imported by the first fetch, not
# with the resource: every code server and run worker loads the definitions, and a run of a
# generated dataset never fetches.
if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from ._fetch_many import Opener, Readers
    from ._fetch_read import ReadRequest
    from ._fetch_shape import Shape
    from ._fetch_slice import RowSlice
    from ._fetch_source import Source
    from ._fetch_trail import Traced

__all__ = ["ArrowRead", "FetchError", "Fetcher", "Format", "RowSlice"]

# Options that would break the chunk contract; chunk_rows says how many rows.
_RESERVED = frozenset({"chunksize", "iterator", "lines", "nrows", "compression"})

_logger = logging.getLogger(__name__)


class Fetcher(ConfigurableResource):  # type: ignore[type-arg]
    """Reads datasets from URLs or paths in chunks.

    ``frames`` streams CSV (``.csv``, ``.csv.gz``), JSON Lines (``.jsonl``, ``.ndjson``) and
    Parquet from an http(s) URL, a file URL, a local path, a glob or folder of files, or an
    ``s3://`` / ``gs://`` / ``az://`` object or prefix, as DataFrames of ``chunk_rows`` rows
    (CSV and JSON Lines: fewer once a chunk holds ``chunk_bytes`` bytes): a multi-GB file never
    sits in memory whole, and a record past ``max_line_bytes`` is refused. Each call returns a
    fresh, lazy generator (nothing connects until the first chunk is asked for), so a writer given
    ``lambda: fetcher.frames(url)`` can replay the whole read when it retries a write.

    Examples:
        .. code-block:: python

            from dagster import Definitions, EnvVar, asset
            from bulk_assets.fetch import Fetcher
            from resources import PostgresBulkWriter

            @asset
            def cities(fetcher: Fetcher, writer: PostgresBulkWriter) -> None:
                url = "https://example.com/cities.csv.gz"
                writer.write(
                    "cities",
                    lambda: fetcher.frames(url, dtypes={"city_id": "int64", "founded": "date"}),
                    create=True,
                )

            defs = Definitions(
                assets=[cities],
                resources={
                    "fetcher": Fetcher(headers={"Authorization": EnvVar("DATA_TOKEN")}),
                    "writer": PostgresBulkWriter(),
                },
            )
    """

    # A misspelled option is an error, not silently ignored; the error never echoes a value
    # (a header may hold a token).
    model_config = {
        **ConfigurableResource.model_config,
        "extra": "forbid",
        "hide_input_in_errors": True,
    }

    timeout: float = Field(
        default=30.0,
        description=(
            "Seconds to wait for the connection, for the response headers and for each read "
            "of the body; a slow but steady download never times out."
        ),
    )
    chunk_rows: int = Field(
        default=50_000, description="Rows per DataFrame chunk, unless frames() says otherwise."
    )
    chunk_bytes: int = Field(
        default=32 * 2**20,
        gt=0,
        description=(
            "CSV and JSON Lines: a chunk ends early once it holds this many bytes of the file "
            "(32 MiB), so that wide rows do not make chunk_rows rows a memory problem. A "
            "chunk always holds at least one row."
        ),
    )
    max_line_bytes: int = Field(
        default=64 * 2**20,
        gt=0,
        description=(
            "CSV and JSON Lines: the longest record or line accepted, in bytes (64 MiB). A "
            "quoted CSV field spanning lines counts whole. Past it the fetch fails naming the "
            "line, rather than growing memory without limit on a runaway field or a file "
            "with no line breaks."
        ),
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        repr=False,
        description=(
            "Extra request headers (e.g. Authorization from an EnvVar). Never logged, and sent "
            "on a redirect only when it stays on the same scheme, host and port."
        ),
    )
    retries: int = Field(
        default=2,
        description=(
            "Attempts after the first when the connection fails, times out or breaks off, or "
            "the server answers 5xx / 408 / 429, as long as no chunk was handed out yet."
        ),
    )
    user_agent: str = Field(
        default="bulk-assets-fetch/0.1", description="User-Agent header of every request."
    )

    _log: Any = PrivateAttr(default=None)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._log = context.log

    def frames(
        self,
        location: str,
        *,
        format: Format | None = None,
        rename: Mapping[str, str] | None = None,
        dtypes: Mapping[str, str] | None = None,
        columns: Sequence[str] | None = None,
        chunk_rows: int | None = None,
        read_options: Mapping[str, Any] | None = None,
        within: KeyRange | RowSlice | None = None,
    ) -> Generator[pd.DataFrame, None, None]:
        """Stream the dataset at ``location`` as DataFrames of ``chunk_rows`` rows.

        Every chunk has the same columns in the same order; its index is the rows' position in
        the whole dataset. A dataset with a header and no rows gives one empty frame. Closing
        the generator early closes the connection and deletes a Parquet download. Its
        ``locate(row)`` names a row's file and line (or row group): the writer's errors say it.

        Args:
            location: an ``http(s)://`` URL (``user:password@`` in it becomes Basic auth),
                a ``file://`` URL, a path (relative to the current directory), or an
                ``s3://``, ``gs://`` or ``az://`` URL (credentials from the environment). A
                path or object-store location may be a directory or a glob (``data/*.csv``,
                ``**`` across directories): its files are read one after another in sorted
                order, as one dataset; a Parquet directory may be a hive tree
                (``year=2026/month=03/``), whose keys become columns.
            format: ``csv``, ``parquet`` or ``jsonl``; None: from the extension (``.csv``,
                ``.parquet``, ``.pq``, ``.jsonl``, ``.ndjson``, each optionally ``.gz``).
            rename: source column -> target column.
            dtypes: target column -> pandas dtype (``"int64"``, ``"Int64"``, ``"float64"``,
                ``"string"``, ``"bool"``, ``"datetime64[us, UTC]"``) or ``"date"`` (Python
                dates); a value that does not convert raises, naming column and row. Without
                it, each chunk's dtypes are whatever the reader infers for that chunk.
            columns: target columns to keep, in this order (default: all).
            chunk_rows: rows per chunk; default: the resource's ``chunk_rows``.
            read_options: passed on to ``pd.read_csv`` or ``pd.read_json`` (e.g. ``sep``,
                ``encoding``, ``na_values``). CSV reads only empty fields as missing unless
                ``na_values`` or ``keep_default_na`` is given.
            within: keep only the rows whose column (target name) lies in this range: one
                partition's slice of a source that holds many. The others are skipped and
                counted in the run log; Parquet row groups outside it are not read at all.

        Raises:
            FetchError: on first use or later: the location could not be read, a row is
                malformed, the download was truncated or a value did not convert.
            ValueError: at once, for arguments no fetch can satisfy.
        """
        from ._fetch_many import locate_source
        from ._fetch_read import ReadRequest
        from ._fetch_shape import Shape, check_dtype
        from ._fetch_trail import Traced, Trail

        rows = self._chunk_rows(chunk_rows)
        options = dict(read_options or {})
        if reserved := sorted(_RESERVED & set(options)):
            raise ValueError(f"read_options may not set {reserved}: frames() controls them")
        for dtype in (dtypes or {}).values():
            check_dtype(dtype)
        chosen, source, keep, back = locate_source(location, format, options, within, rename)
        where = source.where
        shape = Shape(
            where,
            rename=rename or {},
            columns=columns,
            dtypes=dtypes or {},
            sparse=chosen.sparse,
        )
        read = ReadRequest(
            where,
            chunk_rows=rows,
            chunk_bytes=self.chunk_bytes,
            max_line_bytes=self.max_line_bytes,
            read_options=options,
            text_columns=shape.text_columns(),
            columns=shape.source_columns(),
            within=keep,
            within_column=None if keep is None else back.get(keep.column, keep.column),
        )
        trail = Trail(sliced=keep is not None)
        return Traced(
            self._frames(chosen, source, shape, dataclasses.replace(read, trail=trail)), trail
        )

    def batches(
        self,
        location: str,
        *,
        format: Format | None = None,
        rename: Mapping[str, str] | None = None,
        columns: Sequence[str] | None = None,
        chunk_rows: int | None = None,
        null_values: Sequence[str] | None = None,
        read_options: Mapping[str, Any] | None = None,
        within: KeyRange | RowSlice | None = None,
    ) -> ArrowRead:
        """The dataset at ``location`` as Arrow record batches, the fast way to a table.

        Give the result to ``writer.write(table, fetcher.batches(url))`` as it is (not
        called): the writer looks the table up first and the reader parses each CSV column as
        the table's column type, as ``psql \\copy`` does (booleans as ``t``/``false``/``yes``,
        timestamps with or without a zone, numerics exactly); the batches reach binary COPY
        without pandas. Called (``fetcher.batches(url)()``) it reads with inferred types.

        Args:
            location, format, rename, columns, chunk_rows, within: as for :meth:`frames`
                (many files, object stores, a partition's slice with Parquet row groups
                outside it unread).
            null_values: field texts read as NULL (CSV); default
                :data:`~bulk_assets._fetch_arrow_csv.DEFAULT_NULL_VALUES`: the empty field,
                ``NA``, ``N/A``, ``NULL``, ``null``, ``NaN``, ``None``, ``#N/A`` ... (pandas'
                list). A quoted field is always text.
            read_options: CSV: ``sep``, ``quotechar``, ``encoding``; any other option reads
                through pandas (:meth:`frames`) without the table's types.

        Raises:
            FetchError: on first use or later, as :meth:`frames`; a CSV value that does not
                parse as its column's type names its line (header = line 1) and column.
        """
        from ._fetch_arrow_csv import DEFAULT_NULL_VALUES
        from ._fetch_arrow_read import arrow_readers
        from ._fetch_many import locate_source
        from ._fetch_read import ReadRequest
        from ._fetch_trail import Traced, Trail

        rows = self._chunk_rows(chunk_rows)
        options = dict(read_options or {})
        chosen, source, keep, back = locate_source(location, format, options, within, rename)
        where = source.where
        read = ReadRequest(
            where,
            chunk_rows=rows,
            chunk_bytes=self.chunk_bytes,
            max_line_bytes=self.max_line_bytes,
            read_options=options,
            text_columns=(),
            columns=None if columns is None else [back.get(c, c) for c in columns],
            within=keep,
            within_column=None if keep is None else back.get(keep.column, keep.column),
        )
        nulls = DEFAULT_NULL_VALUES if null_values is None else tuple(null_values)

        def open_(types: Mapping[str, str]) -> Traced[pa.RecordBatch]:
            by_source = {back.get(name, name): base for name, base in types.items()}
            readers = arrow_readers(chosen, read, types=by_source, null_values=nulls)
            shape = functools.partial(shaped, where=where, rename=rename or {}, columns=columns)
            trail = Trail(sliced=keep is not None)
            traced = dataclasses.replace(read, trail=trail)
            batches = self._batches(chosen, source, traced, readers, shape)
            remote = source.url is not None or source.store is not None
            return Traced(ahead_where_it_helps(batches, remote=remote), trail)

        return ArrowRead(open_)

    def _batches(
        self,
        chosen: FileFormat,
        source: Source,
        read: ReadRequest,
        readers: Readers[pa.RecordBatch],
        shape: Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]],
    ) -> Generator[pa.RecordBatch, None, None]:
        from ._fetch_arrow_read import sliced
        from ._fetch_many import adder, secrets_of
        from ._fetch_retry import with_retries

        keep = read.within

        def attempt() -> Iterator[pa.RecordBatch]:
            skipped = [0]
            counted = dataclasses.replace(read, skipped=adder(skipped))
            if read.trail is not None:
                read.trail.restart()
            with contextlib.ExitStack() as stack:
                raw = self._opener().read(chosen, source, counted, stack, [], readers)
                yield from sliced(shape(raw), keep, source.where, adder(skipped), read.trail)
            self._skipped(source, keep, skipped[0])

        log = self._log or _logger
        yield from with_retries(attempt, retries=self.retries, secrets=secrets_of(source), log=log)

    def _chunk_rows(self, chunk_rows: int | None) -> int:
        rows = self.chunk_rows if chunk_rows is None else chunk_rows
        if rows < 1:
            raise ValueError(f"chunk_rows must be at least 1, got {rows}")
        return rows

    def _skipped(self, source: Source, keep: RowSlice | None, skipped: int) -> None:
        if keep is not None and skipped:
            where = source.where.location
            (self._log or _logger).info(f"{where}: skipped {skipped:,} rows outside {keep.label}")

    def _frames(
        self, chosen: FileFormat, source: Source, shape: Shape, read: ReadRequest
    ) -> Generator[pd.DataFrame, None, None]:
        from ._fetch_located import Located
        from ._fetch_many import adder, secrets_of
        from ._fetch_retry import with_retries
        from ._fetch_trail import handed

        keep = read.within

        def attempt() -> Iterator[pd.DataFrame]:
            skipped = [0]
            counted = dataclasses.replace(read, skipped=adder(skipped))
            if read.trail is not None:
                read.trail.restart()
            with contextlib.ExitStack() as stack:
                empty: pd.DataFrame | None = None
                given = False
                current: list[Where] = []
                # A fresh copy each attempt: the shape counts rows, and an attempt may have
                # shaped (and filtered away) chunks before failing.
                located = Located(copy.copy(shape), source.where, current)
                for frame in self._raw_chunks(chosen, source, counted, stack, current):
                    chunk = located(frame)
                    if keep is not None:
                        chunk, dropped = keep.frame(chunk, source.where)
                        skipped[0] += dropped
                        if not len(chunk):
                            # Held back: a slice with no rows still gives one empty frame.
                            empty = chunk
                            continue
                        handed(read.trail, chunk)
                    given = True
                    yield chunk
                if keep is not None and not given and empty is not None:
                    yield empty
            self._skipped(source, keep, skipped[0])

        log = self._log or _logger
        yield from with_retries(attempt, retries=self.retries, secrets=secrets_of(source), log=log)

    def _raw_chunks(
        self,
        chosen: FileFormat,
        source: Source,
        read: ReadRequest,
        stack: contextlib.ExitStack,
        current: list[Where],
    ) -> Iterator[pd.DataFrame]:
        from ._fetch_many import frame_readers

        return self._opener().read(chosen, source, read, stack, current, frame_readers(chosen))

    def _opener(self) -> Opener:
        from ._fetch_many import Opener

        return Opener(self.timeout, self.headers, self.user_agent)


def __getattr__(name: str) -> Any:
    # RowSlice (pandas, pyarrow) is exported here but imported only when asked for.
    if name == "RowSlice":
        from ._fetch_slice import RowSlice

        return RowSlice
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
