"""What a format's reader is given: one :class:`ReadRequest`, and either a byte stream or,
for a format that must seek, a set of files it may seek in (local or in an object store)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

import pandas as pd

from ._fetch_errors import Where
from ._fetch_source import Bytes

if TYPE_CHECKING:
    from ._fetch_files import FileSet
    from ._fetch_slice import RowSlice
    from ._fetch_trail import Trail

__all__ = ["FileReader", "ReadRequest", "StreamReader"]


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """How one fetch wants its chunks.

    A reader yields DataFrames of at most ``chunk_rows`` rows (a streamed one: fewer, once a
    chunk holds ``chunk_bytes`` bytes), the last one shorter, and refuses a record longer than
    ``max_line_bytes``. A source with no data at all comes out as one frame without columns,
    which the caller turns into an empty result or an error. Every error is ``where.error``.
    """

    where: Where
    chunk_rows: int
    chunk_bytes: int
    max_line_bytes: int
    #: The caller's options for the underlying reader (``pd.read_csv``, ``pd.read_json``).
    read_options: Mapping[str, Any]
    #: Source columns declared with a dtype parsed from text: read them as text, not guessed.
    text_columns: Sequence[str]
    #: Source columns needed (None: all); a reader may skip decoding the others.
    columns: Sequence[str] | None
    #: The partition's slice of a source holding many, and its column's source name: a
    #: reader may skip rows outside it early (Parquet: whole row groups), telling
    #: ``skipped`` how many; the fetch filters every chunk again after conversion.
    within: RowSlice | None = None
    within_column: str | None = None
    skipped: Callable[[int], None] | None = None
    #: Told where each chunk's rows came from (file, line, row group), for the writer's
    #: messages about a value it refuses.
    trail: Trail | None = None


#: Reads a format front to back from a byte stream.
StreamReader: TypeAlias = Callable[[Bytes, ReadRequest], Iterator[pd.DataFrame]]
#: Reads a format from files it may seek in, in the set's order.
FileReader: TypeAlias = Callable[["FileSet", ReadRequest], Iterator[pd.DataFrame]]
