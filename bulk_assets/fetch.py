"""The resource that reads datasets (CSV, Parquet, JSON Lines) from URLs or paths in chunks."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.fs as pafs
from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr

from resources import KeyRange
from resources._redact import Secrets
from resources._retry import backoff

from ._fetch_errors import FetchError, Where, redact, scrubbed
from ._fetch_files import FileSet, has_glob, list_files
from ._fetch_formats import FILE_FORMATS, FileFormat, Format, file_format, infer_format
from ._fetch_located import Located
from ._fetch_read import ReadRequest
from ._fetch_shape import Shape, check_dtype
from ._fetch_slice import RowSlice
from ._fetch_source import Source, download, open_bytes, open_raw
from ._fetch_stores import store_error

__all__ = ["FetchError", "Fetcher", "Format", "RowSlice"]

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
        the generator early closes the connection and deletes a Parquet download.

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
        rows = self.chunk_rows if chunk_rows is None else chunk_rows
        if rows < 1:
            raise ValueError(f"chunk_rows must be at least 1, got {rows}")
        options = dict(read_options or {})
        if reserved := sorted(_RESERVED & set(options)):
            raise ValueError(f"read_options may not set {reserved}: frames() controls them")
        for dtype in (dtypes or {}).values():
            check_dtype(dtype)
        shown = redact(location)
        # A URL's query and fragment are not part of its name; in a path (and an object key)
        # "?" is a glob character.
        web = location.lower().startswith(("http://", "https://", "file://"))
        path_part = location.split("?", 1)[0].split("#", 1)[0] if web else location
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
        keep = RowSlice(within) if isinstance(within, KeyRange) else within
        back = {target: source_name for source_name, target in (rename or {}).items()}
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
        return self._frames(chosen, source, shape, read)

    def _frames(
        self, chosen: FileFormat, source: Source, shape: Shape, read: ReadRequest
    ) -> Generator[pd.DataFrame, None, None]:
        attempt = 0
        keep = read.within
        secrets = source.secrets
        if source.store is not None:
            secrets = Secrets(secrets.values | source.store.secrets().values)
        while True:
            yielded = False
            skipped = [0]
            counted = dataclasses.replace(read, skipped=_adder(skipped))
            try:
                with contextlib.ExitStack() as stack:
                    empty: pd.DataFrame | None = None
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
                        yielded = True
                        yield chunk
                    if keep is not None and not yielded and empty is not None:
                        yielded = True
                        yield empty
                if keep is not None and skipped[0]:
                    (self._log or _logger).info(
                        "%s: skipped %s rows outside %s",
                        source.where.location,
                        f"{skipped[0]:,}",
                        keep.label,
                    )
                return
            except FetchError as exc:
                failure = scrubbed(exc, secrets)
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
        self,
        chosen: FileFormat,
        source: Source,
        read: ReadRequest,
        stack: contextlib.ExitStack,
        current: list[Where],
    ) -> Iterator[pd.DataFrame]:
        files = None if source.url is not None else self._files(chosen, source)
        single = files is None or (len(files.paths) == 1 and source.store is None)
        if files is not None and chosen.read_file is not None:
            if not source.gzip_name:
                return chosen.read_file(files, read)
            if not single:
                raise source.where.error(
                    f"gzipped {chosen.title} is read from one local file or URL at a time"
                )
        if not single:
            assert files is not None
            return self._each_file(chosen, files, read, current)
        if files is not None and source.store is not None:
            stream = self._open_in_store(files, files.paths[0], source.where, stack)
        else:
            stream = open_bytes(
                source,
                stack,
                timeout=self.timeout,
                headers=self.headers,
                user_agent=self.user_agent,
            )
        if chosen.read_stream is not None:
            return chosen.read_stream(stream, read)
        assert chosen.read_file is not None, "a format has a stream or a file reader"
        path = download(stream, source.where, suffix=chosen.extensions[0])
        stack.callback(path.unlink, missing_ok=True)
        return chosen.read_file(_one_local_file(str(path), source.where), read)

    def _files(self, chosen: FileFormat, source: Source) -> FileSet:
        """The files a path or object-store location names (one, or a directory's or a
        glob's), listed now: a pattern matching nothing fails before anything is read."""
        if source.store is not None:
            assert source.store_path is not None
            store, where = source.store, source.where
            filesystem = store.open(where, timeout=self.timeout)
            scheme = store.scheme
            return list_files(
                filesystem,
                source.store_path,
                where,
                extensions=chosen.extensions,
                location=lambda p: f"{scheme}://{p}",
                store=store,
            )
        assert source.path is not None, "a source is a path, a URL or an object"
        path = source.path.as_posix()
        if not has_glob(path) and not source.path.is_dir():
            return _one_local_file(path, source.where)
        return list_files(
            pafs.LocalFileSystem(),
            path,
            source.where,
            extensions=chosen.extensions,
            location=lambda p: p,
        )

    def _open_in_store(
        self, files: FileSet, path: str, where: Where, stack: contextlib.ExitStack
    ) -> Any:
        assert files.store is not None
        try:
            raw = files.filesystem.open_input_stream(path, compression=None)
        except OSError as exc:
            raise store_error(files.store, where, "cannot open it", exc) from None
        return open_raw(raw, where, stack, gzip_name=infer_format(path)[1], timeout=self.timeout)

    def _each_file(
        self, chosen: FileFormat, files: FileSet, read: ReadRequest, current: list[Where]
    ) -> Iterator[pd.DataFrame]:
        """The files' chunks one file after another, each file's errors naming that file
        (``current`` says which file the chunk came from). A file without any data (not even
        a header) adds nothing, unless all are so."""
        assert chosen.read_stream is not None
        given = False
        for number, path in enumerate(files.paths, 1):
            where = files.where(path, chosen.name)
            current[:] = [where]
            with contextlib.ExitStack() as one:
                if files.store is not None:
                    stream = self._open_in_store(files, path, where, one)
                else:
                    local = Source.parse(path, where, gzip_name=infer_format(path)[1])
                    stream = open_bytes(
                        local,
                        one,
                        timeout=self.timeout,
                        headers=self.headers,
                        user_agent=self.user_agent,
                    )
                for frame in chosen.read_stream(stream, dataclasses.replace(read, where=where)):
                    blank = frame.columns.empty and not len(frame)
                    if blank and (given or number < len(files.paths)):
                        continue
                    given = True
                    yield frame


def _one_local_file(path: str, where: Where) -> FileSet:
    """One local file, shown in messages as ``where`` shows the location it came from."""
    parent = str(Path(path).parent.as_posix())
    return FileSet(pafs.LocalFileSystem(), (path,), parent, lambda _: where.location)


def _adder(total: list[int]) -> Callable[[int], None]:
    def add(n: int) -> None:
        total[0] += n

    return add
