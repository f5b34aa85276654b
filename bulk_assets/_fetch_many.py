"""Where a fetch's bytes come from: one URL, one local file, or the many files a directory, a
glob or an object-store prefix names, read one after another. The same routing serves both
readers of a location: DataFrame chunks (``Fetcher.frames``) and Arrow record batches
(``Fetcher.batches``), so that a glob or an ``s3://`` prefix reads the same either way."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import pandas as pd
import pyarrow.fs as pafs

from resources import KeyRange
from resources._redact import Secrets

from ._fetch_errors import Where, redact
from ._fetch_files import FileSet, has_glob, list_files
from ._fetch_formats import FILE_FORMATS, FileFormat, Format, file_format, infer_format
from ._fetch_read import ReadRequest
from ._fetch_slice import RowSlice
from ._fetch_source import Bytes, Source, download, open_bytes, open_raw
from ._fetch_stores import store_error

__all__ = [
    "Opener",
    "Readers",
    "adder",
    "choose_format",
    "frame_readers",
    "locate_source",
    "one_local_file",
    "secrets_of",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Readers(Generic[T]):
    """How one kind of output (DataFrames, record batches) is read from a byte stream and
    from seekable files; ``blank`` tells an output of a file without any data (not even a
    header), which a file of many adds nothing with."""

    stream: Callable[[Bytes, ReadRequest], Iterator[T]] | None
    file: Callable[[FileSet, ReadRequest], Iterator[T]] | None
    blank: Callable[[T], bool]


@dataclass(frozen=True, slots=True)
class Opener:
    """Opens a fetch's locations with the resource's timeout and request headers."""

    timeout: float
    headers: Mapping[str, str]
    user_agent: str

    def read(
        self,
        chosen: FileFormat,
        source: Source,
        read: ReadRequest,
        stack: contextlib.ExitStack,
        current: list[Where],
        readers: Readers[T],
    ) -> Iterator[T]:
        """``source`` read with ``readers``: a seekable format straight from its files (a URL
        or a gzipped file downloaded first), a streamed one file after file."""
        files = None if source.url is not None else self.files(chosen, source)
        single = files is None or (len(files.paths) == 1 and source.store is None)
        if files is not None and readers.file is not None:
            if not source.gzip_name:
                return readers.file(files, read)
            if not single:
                raise source.where.error(
                    f"gzipped {chosen.title} is read from one local file or URL at a time"
                )
        if not single:
            assert files is not None
            return self._each_file(chosen, files, read, current, readers)
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
        if readers.stream is not None:
            return readers.stream(stream, read)
        assert readers.file is not None, "a format has a stream or a file reader"
        path = download(stream, source.where, suffix=chosen.extensions[0])
        stack.callback(path.unlink, missing_ok=True)
        return readers.file(one_local_file(str(path), source.where), read)

    def files(self, chosen: FileFormat, source: Source) -> FileSet:
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
            return one_local_file(path, source.where)
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
        self,
        chosen: FileFormat,
        files: FileSet,
        read: ReadRequest,
        current: list[Where],
        readers: Readers[T],
    ) -> Iterator[T]:
        """The files' outputs one file after another, each file's errors naming that file
        (``current`` says which file the output came from). A file without any data (not
        even a header) adds nothing, unless all are so."""
        assert readers.stream is not None
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
                for out in readers.stream(stream, dataclasses.replace(read, where=where)):
                    if readers.blank(out) and (given or number < len(files.paths)):
                        continue
                    given = True
                    yield out


def choose_format(location: str, format: Format | None) -> tuple[FileFormat, bool]:
    """The format of ``location`` (``format``, else its name's extension) and whether the
    name ends in ``.gz``."""
    # A URL's query and fragment are not part of its name; in a path (and an object key)
    # "?" is a glob character.
    web = location.lower().startswith(("http://", "https://", "file://"))
    path_part = location.split("?", 1)[0].split("#", 1)[0] if web else location
    named, gzip_name = infer_format(path_part)
    chosen = file_format(format) if format else named
    if chosen is None:
        names = tuple(FILE_FORMATS)
        raise ValueError(
            f"cannot tell the format of {redact(location)} from its name: pass format= one "
            f"of {names}"
            if format is None
            else f"format must be one of {names}, got {format!r}"
        )
    return chosen, gzip_name


def secrets_of(source: Source) -> Secrets:
    if source.store is None:
        return source.secrets
    return Secrets(source.secrets.values | source.store.secrets().values)


def frame_readers(chosen: FileFormat) -> Readers[pd.DataFrame]:
    """The readers of ``chosen`` as DataFrame chunks (``Fetcher.frames``)."""
    return Readers(chosen.read_stream, chosen.read_file, _blank_frame)


def _blank_frame(frame: pd.DataFrame) -> bool:
    return bool(frame.columns.empty and not len(frame))


def one_local_file(path: str, where: Where) -> FileSet:
    """One local file, shown in messages as ``where`` shows the location it came from."""
    parent = str(Path(path).parent.as_posix())
    return FileSet(pafs.LocalFileSystem(), (path,), parent, lambda _: where.location)


def locate_source(
    location: str,
    format: Format | None,
    options: Mapping[str, Any],
    within: KeyRange | RowSlice | None,
    rename: Mapping[str, str] | None,
) -> tuple[FileFormat, Source, RowSlice | None, dict[str, str]]:
    """Format, parsed source, slice and target -> source names: one check for both readers."""
    chosen, gzip_name = choose_format(location, format)
    if options and not chosen.takes_read_options:
        raise ValueError(f"read_options do not apply to {chosen.title}, got {sorted(options)}")
    where = Where(redact(location), chosen.name)
    source = Source.parse(location, where, gzip_name=gzip_name)
    keep = RowSlice(within) if isinstance(within, KeyRange) else within
    return chosen, source, keep, {target: name for name, target in (rename or {}).items()}


def adder(total: list[int]) -> Callable[[int], None]:
    def add(n: int) -> None:
        total[0] += n

    return add
