"""The file formats ``Fetcher.frames`` reads: each one object that says everything about
itself. The fetch asks the format (does it read a stream or a local file, may its records
lack keys, does it take read options) instead of testing names; adding a format means its
reader module and one entry in :data:`FILE_FORMATS`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Literal, TypeAlias

if TYPE_CHECKING:
    import pandas as pd

    from ._fetch_files import FileSet
    from ._fetch_read import FileReader, ReadRequest, StreamReader
    from ._fetch_source import Bytes

__all__ = ["FILE_FORMATS", "FileFormat", "Format", "file_format", "infer_format"]

#: The names of :data:`FILE_FORMATS`, for type checkers and JSON schemas (a test keeps the two
#: the same).
Format: TypeAlias = Literal["csv", "parquet", "jsonl"]


@dataclass(frozen=True, slots=True)
class FileFormat:
    """One file format: its name, the file names it claims and how it is read.

    Exactly one of ``read_stream`` and ``read_file`` is given.

    Examples:
        .. code-block:: python

            FileFormat("jsonl", "JSON Lines", (".jsonl", ".ndjson"), read_stream=jsonl_chunks)
    """

    #: The ``format=`` value, and the first word of every error message about the source.
    name: str
    #: The name in prose ("Parquet").
    title: str
    #: Lower-case file name suffixes that imply the format, each optionally followed by
    #: ``.gz``. The first is the suffix of a download.
    extensions: tuple[str, ...]
    #: Reads the format front to back from a byte stream (decompressed already).
    read_stream: StreamReader | None = None
    #: Reads the format from files it may seek in (local, or in an object store): a URL or a
    #: gzipped file is downloaded to a temporary file first.
    read_file: FileReader | None = None
    #: Records may lack keys: a column a chunk lacks is missing values, not an error.
    sparse: bool = False
    #: Takes ``read_options``, passed on to its reader (``pd.read_csv``, ``pd.read_json``).
    takes_read_options: bool = True

    def __post_init__(self) -> None:
        if (self.read_stream is None) == (self.read_file is None):
            raise ValueError(f"format {self.name}: give exactly one of read_stream and read_file")


# The readers are imported by the first read: this registry is imported with the dataset
# specs when definitions load, and the readers need pandas and pyarrow (0.7 s of CPU).
def _csv_chunks(stream: Bytes, read: ReadRequest) -> Iterator[pd.DataFrame]:
    from ._fetch_csv import csv_chunks

    return csv_chunks(stream, read)


def _jsonl_chunks(stream: Bytes, read: ReadRequest) -> Iterator[pd.DataFrame]:
    from ._fetch_jsonl import jsonl_chunks

    return jsonl_chunks(stream, read)


def _parquet_chunks(files: FileSet, read: ReadRequest) -> Iterator[pd.DataFrame]:
    from ._fetch_parquet import parquet_chunks

    return parquet_chunks(files, read)


FILE_FORMATS: dict[str, FileFormat] = {
    fmt.name: fmt
    for fmt in (
        FileFormat("csv", "CSV", (".csv",), read_stream=_csv_chunks),
        FileFormat(
            "parquet",
            "Parquet",
            (".parquet", ".pq"),
            read_file=_parquet_chunks,
            takes_read_options=False,
        ),
        FileFormat(
            "jsonl", "JSON Lines", (".jsonl", ".ndjson"), read_stream=_jsonl_chunks, sparse=True
        ),
    )
}
_BY_EXTENSION = {ext: fmt for fmt in FILE_FORMATS.values() for ext in fmt.extensions}


def file_format(name: object) -> FileFormat | None:
    """The format called ``name``; None for any other value."""
    return FILE_FORMATS.get(name) if isinstance(name, str) else None


def infer_format(path: str) -> tuple[FileFormat | None, bool]:
    """The format a file name implies, and whether it is gzipped: ``x.csv.gz`` is CSV and
    ``True``; an unknown extension gives ``None``."""
    name = PurePosixPath(path).name.lower()
    gzipped = name.endswith(".gz")
    if gzipped:
        name = name.removesuffix(".gz")
    return _BY_EXTENSION.get(PurePosixPath(name).suffix), gzipped
