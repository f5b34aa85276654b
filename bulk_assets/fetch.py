"""The resource that reads datasets (CSV, Parquet, JSON Lines) from URLs or paths in chunks."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Generator, Iterator, Mapping, Sequence
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr

from resources._retry import backoff

from ._fetch_arrow_csv import ARROW_CSV_OPTIONS, DEFAULT_NULL_VALUES, csv_batches
from ._fetch_batches import ArrowRead, read_ahead, shaped
from ._fetch_errors import FetchError, Where, redact, scrubbed
from ._fetch_formats import FILE_FORMATS, FileFormat, Format, file_format, infer_format
from ._fetch_read import ReadRequest
from ._fetch_shape import Shape, check_dtype
from ._fetch_source import Source, download, open_bytes

__all__ = ["ArrowRead", "FetchError", "Fetcher", "Format"]

# Options that would break the chunk contract; chunk_rows says how many rows.
_RESERVED = frozenset({"chunksize", "iterator", "lines", "nrows", "compression"})
# Retry pauses: full jitter (the writer's policy) up to 1 s, 2 s, 4 s ..., capped at 8 s: a
# server that dropped many readers at once is not hit by them all again at once.
_BACKOFF_FIRST = 0.5
_BACKOFF_MAX = 8.0

_logger = logging.getLogger(__name__)


class Fetcher(ConfigurableResource):  # type: ignore[type-arg]
    """Reads datasets from URLs or paths in chunks.

    ``frames`` streams CSV (``.csv``, ``.csv.gz``), JSON Lines (``.jsonl``, ``.ndjson``) and
    Parquet from an http(s) URL, a file URL or a local path as DataFrames of ``chunk_rows`` rows
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
    ) -> Generator[pd.DataFrame, None, None]:
        """Stream the dataset at ``location`` as DataFrames of ``chunk_rows`` rows.

        Every chunk has the same columns in the same order; its index is the rows' position in
        the whole dataset. A dataset with a header and no rows gives one empty frame. Closing
        the generator early closes the connection and deletes a Parquet download.

        Args:
            location: an ``http(s)://`` URL (``user:password@`` in it becomes Basic auth),
                a ``file://`` URL or a path (relative to the current directory).
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

        Raises:
            FetchError: on first use or later: the location could not be read, a row is
                malformed, the download was truncated or a value did not convert.
            ValueError: at once, for arguments no fetch can satisfy.
        """
        rows = self.chunk_rows if chunk_rows is None else chunk_rows
        if rows < 1:
            raise ValueError(f"chunk_rows must be at least 1, got {rows}")
        options = dict(read_options or {})
        if reserved := sorted(_RESERVED & set(options)):
            raise ValueError(f"read_options may not set {reserved}: frames() controls them")
        for dtype in (dtypes or {}).values():
            check_dtype(dtype)
        shown = redact(location)
        path_part = location.split("?", 1)[0].split("#", 1)[0]
        named, gzip_name = infer_format(path_part)
        chosen = file_format(format) if format else named
        if chosen is None:
            names = tuple(FILE_FORMATS)
            raise ValueError(
                f"cannot tell the format of {shown} from its name: pass format= one of {names}"
                if format is None
                else f"format must be one of {names}, got {format!r}"
            )
        if options and not chosen.takes_read_options:
            raise ValueError(f"read_options do not apply to {chosen.title}, got {sorted(options)}")
        where = Where(shown, chosen.name)
        source = Source.parse(location, where, gzip_name=gzip_name)
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
        )
        return self._frames(chosen, source, shape, read)

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
    ) -> ArrowRead:
        """The dataset at ``location`` as Arrow record batches, the fast way to a table.

        Give the result to ``writer.write(table, fetcher.batches(url))`` as it is (not
        called): the writer looks the table up first and the reader parses each CSV column as
        the table's column type, as ``psql \\copy`` does (booleans as ``t``/``false``/``yes``,
        timestamps with or without a zone, numerics exactly); the batches reach binary COPY
        without pandas. Called (``fetcher.batches(url)()``) it reads with inferred types.

        Args:
            location, format, rename, columns, chunk_rows: as for :meth:`frames`.
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
        rows = self.chunk_rows if chunk_rows is None else chunk_rows
        if rows < 1:
            raise ValueError(f"chunk_rows must be at least 1, got {rows}")
        shown = redact(location)
        named, gzip_name = infer_format(location.split("?", 1)[0].split("#", 1)[0])
        chosen = file_format(format) if format else named
        if chosen is None:
            raise ValueError(
                f"cannot tell the format of {shown}: pass format= one of {tuple(FILE_FORMATS)}"
            )
        where = Where(shown, chosen.name)
        source = Source.parse(location, where, gzip_name=gzip_name)
        back = {target: name for name, target in (rename or {}).items()}
        read = ReadRequest(
            where,
            chunk_rows=rows,
            chunk_bytes=self.chunk_bytes,
            max_line_bytes=self.max_line_bytes,
            read_options=dict(read_options or {}),
            text_columns=(),
            columns=None if columns is None else [back.get(c, c) for c in columns],
        )
        nulls = DEFAULT_NULL_VALUES if null_values is None else tuple(null_values)

        def open_(types: Mapping[str, str]) -> Iterator[pa.RecordBatch]:
            by_source = {back.get(name, name): base for name, base in types.items()}
            return read_ahead(
                shaped(
                    self._batches(chosen, source, read, by_source, nulls),
                    where,
                    rename=rename or {},
                    columns=columns,
                )
            )

        return ArrowRead(open_)

    def _batches(
        self,
        chosen: FileFormat,
        source: Source,
        read: ReadRequest,
        types: Mapping[str, str],
        null_values: Sequence[str],
    ) -> Generator[pa.RecordBatch, None, None]:
        attempt = 0
        while True:
            yielded = False
            try:
                with contextlib.ExitStack() as stack:
                    for batch in self._raw_batches(chosen, source, read, stack, types, null_values):
                        yielded = True
                        yield batch
                return
            except FetchError as exc:
                failure = scrubbed(exc, source.secrets)
                retry = not yielded and exc.transient and attempt < self.retries
            if not retry:
                raise failure
            attempt += 1
            time.sleep(backoff(attempt, base=_BACKOFF_FIRST, cap=_BACKOFF_MAX))

    def _raw_batches(
        self,
        chosen: FileFormat,
        source: Source,
        read: ReadRequest,
        stack: contextlib.ExitStack,
        types: Mapping[str, str],
        null_values: Sequence[str],
    ) -> Iterator[pa.RecordBatch]:
        if chosen.name == "parquet":
            path = source.path
            if path is None or source.gzip_name:
                stream = open_bytes(
                    source,
                    stack,
                    timeout=self.timeout,
                    headers=self.headers,
                    user_agent=self.user_agent,
                )
                path = download(stream, source.where, suffix=chosen.extensions[0])
                stack.callback(path.unlink, missing_ok=True)
            columns = None if read.columns is None else list(read.columns)
            batches: Iterator[pa.RecordBatch] = pq.ParquetFile(path).iter_batches(
                batch_size=read.chunk_rows, columns=columns
            )
            return batches
        stream = open_bytes(
            source, stack, timeout=self.timeout, headers=self.headers, user_agent=self.user_agent
        )
        if chosen.name == "csv" and set(read.read_options) <= ARROW_CSV_OPTIONS:
            return csv_batches(stream, read, types=types, null_values=null_values)
        assert chosen.read_stream is not None, "CSV and JSON Lines read streams"
        frames = chosen.read_stream(stream, read)
        return (pa.RecordBatch.from_pandas(f, preserve_index=False) for f in frames)

    def _frames(
        self, chosen: FileFormat, source: Source, shape: Shape, read: ReadRequest
    ) -> Generator[pd.DataFrame, None, None]:
        attempt = 0
        while True:
            yielded = False
            try:
                with contextlib.ExitStack() as stack:
                    for frame in self._raw_chunks(chosen, source, read, stack):
                        chunk = shape(frame)
                        yielded = True
                        yield chunk
                return
            except FetchError as exc:
                failure = scrubbed(exc, source.secrets)
                retry = not yielded and exc.transient and attempt < self.retries
            if not retry:
                # Raised here, outside the except block: a scrubbed copy must not carry the
                # original, whose text holds a secret, as its __context__.
                raise failure
            attempt += 1
            pause = backoff(attempt, base=_BACKOFF_FIRST, cap=_BACKOFF_MAX)
            (self._log or _logger).warning(
                "%s; retrying in %.1f s (attempt %d of %d)",
                failure,
                pause,
                attempt + 1,
                self.retries + 1,
            )
            time.sleep(pause)

    def _raw_chunks(
        self, chosen: FileFormat, source: Source, read: ReadRequest, stack: contextlib.ExitStack
    ) -> Iterator[pd.DataFrame]:
        if chosen.read_file is not None and source.path is not None and not source.gzip_name:
            return chosen.read_file(source.path, read)
        stream = open_bytes(
            source, stack, timeout=self.timeout, headers=self.headers, user_agent=self.user_agent
        )
        if chosen.read_stream is not None:
            return chosen.read_stream(stream, read)
        assert chosen.read_file is not None, "a format has a stream or a file reader"
        path = download(stream, source.where, suffix=chosen.extensions[0])
        stack.callback(path.unlink, missing_ok=True)
        return chosen.read_file(path, read)
