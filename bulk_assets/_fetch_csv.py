"""CSV as DataFrame chunks bounded by bytes as well as rows.

pandas' own chunking counts rows only: one 200 MB field, or a file without line breaks, is read
whole into its tokenizer and then into the frame. Here the byte stream is cut into batches of
whole records first (a newline outside quotes ends a record), each at most ``chunk_rows``
records and ``chunk_bytes`` bytes (or one record, if that alone is longer), and every batch is
parsed with the header in front of it. A record longer than ``max_line_bytes`` is an error
naming its line. Memory then holds one batch and its frame, whatever the file looks like.

Options that change where records start or which line is the header (``header``, ``names``,
``skiprows``, ``comment``, an ``escapechar``, a multi-character ``sep``, a non-ASCII-based
encoding ...) fall back to pandas' row chunks over a stream that still refuses a physical line
longer than ``max_line_bytes``.
"""

from __future__ import annotations

import codecs
import io
import re
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd

from ._fetch_errors import FetchError, Where
from ._fetch_read import ReadRequest
from ._fetch_source import Bytes
from ._fetch_trail import CsvOrigin, FileOrigin

__all__ = ["csv_chunks"]

_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
# Bytes read from the stream at a time: 256 KiB, as pandas' own reader does, so that the first
# chunk goes out before the whole of a small file has arrived.
_BLOCK = 1 << 18
_NEWLINE = 0x0A
# With any of these, where a record starts is pandas' business alone (see the module doc).
_PANDAS_FRAMES = frozenset(
    {
        "header",
        "names",
        "skiprows",
        "skipfooter",
        "comment",
        "escapechar",
        "lineterminator",
        "quoting",
        "doublequote",
        "delim_whitespace",
        "engine",
        "skipinitialspace",
    }
)


def csv_chunks(stream: Bytes, read: ReadRequest) -> Iterator[pd.DataFrame]:
    """``pd.read_csv`` batch by batch. Only an empty field is a missing value unless
    ``read_options`` says otherwise: pandas' default list also takes "NA" (Namibia's country
    code) and "null" for missing. ``text_columns`` are read as text, so "007" stays "007"."""
    where, chunk_rows, chunk_bytes = read.where, read.chunk_rows, read.chunk_bytes
    read_options, text_columns = read.read_options, read.text_columns
    options: dict[str, Any] = {}
    if "na_values" not in read_options and "keep_default_na" not in read_options:
        options.update(keep_default_na=False, na_values=[""])
    options.update(read_options)
    given = options.get("dtype")
    if text_columns and (given is None or isinstance(given, Mapping)):
        options["dtype"] = {**dict.fromkeys(text_columns, "str"), **(given or {})}
    encoding = options.get("encoding") or "utf-8"
    quote = _quote_byte(options, encoding)
    if quote is None:
        guarded = io.BufferedReader(_LineGuard(stream, where, read.max_line_bytes))
        for chunk in _pandas_chunks(guarded, where, chunk_rows, options, encoding):
            if read.trail is not None:
                read.trail.read(len(chunk), FileOrigin(where.location))
            yield chunk
        return
    records = _Records(stream, where, quote=quote, max_record=read.max_line_bytes)
    header = records.take(1, 0)
    while header is not None and not header.strip():  # pandas skips blank lines before it
        header = records.take(1, 0)
    if header is None:
        yield pd.DataFrame()
        return
    _check_header(header, where, options, encoding)
    header_lines = header.count(b"\n")
    given_frame = False
    while True:
        first_line = records.line
        batch = records.take(chunk_rows, chunk_bytes)
        if batch is None:
            break
        frame = _parse(header + batch, where, options, encoding, first_line - 1 - header_lines)
        if read.trail is not None and len(frame):
            newlines = records.line - first_line  # counted by take() already
            origin = CsvOrigin.of(
                where.location, first_line, batch, newlines=newlines, rows=len(frame), quote=quote
            )
            read.trail.read(len(frame), origin)
        if len(frame) or not given_frame:
            given_frame = True
            yield frame
    if not given_frame:
        yield _parse(header, where, options, encoding, 0)


def _quote_byte(options: Mapping[str, Any], encoding: str) -> int | None:
    """The quote character's byte, if records can be told apart at the byte level; None for
    the options and encodings that need pandas to do it."""
    if _PANDAS_FRAMES & set(options):
        return None
    sep = options.get("sep", options.get("delimiter", ","))
    quotechar = options.get("quotechar", '"')
    if not (isinstance(sep, str) and len(sep) == 1 and isinstance(quotechar, str)):
        return None
    try:
        codec = codecs.lookup(encoding)
    except LookupError:
        return None
    # An encoding in which newline, quote and separator are their ASCII bytes, and no byte of
    # a multi-byte character is one of them (UTF-8, Latin-1, cp1252 ... but not UTF-16).
    probe = f"\n{quotechar}{sep}"
    if codec.name.startswith(("utf-16", "utf-32")) or len(quotechar) != 1:
        return None
    try:
        if probe.encode(codec.name) != probe.encode("ascii"):
            return None
    except UnicodeEncodeError:
        return None
    return ord(quotechar)


def _check_header(header: bytes, where: Where, options: Mapping[str, Any], encoding: str) -> None:
    """Refuse a header that names a column twice: pandas would rename the second ``id`` to
    ``id.1`` and load it under a name no one chose."""
    raw = {k: v for k, v in options.items() if k in ("sep", "delimiter", "quotechar", "encoding")}
    try:
        row = pd.read_csv(io.BytesIO(header), header=None, dtype=str, nrows=1, **raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _csv_error(exc, where, encoding) from exc
    names = ["" if pd.isna(v) else str(v) for v in row.iloc[0]] if len(row) else []
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise where.error(
                f"the header names column {name!r} twice; rename one (the header is line 1)",
                line=1,
                column=name,
            )
        seen.add(name)


def _parse(
    data: bytes, where: Where, options: Mapping[str, Any], encoding: str, offset: int
) -> pd.DataFrame:
    try:
        return pd.read_csv(io.BytesIO(data), **options)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _csv_error(exc, where, encoding, offset) from exc


def _pandas_chunks(
    stream: Bytes, where: Where, chunk_rows: int, options: Mapping[str, Any], encoding: str
) -> Iterator[pd.DataFrame]:
    try:
        reader = pd.read_csv(stream, chunksize=chunk_rows, **options)
    except pd.errors.EmptyDataError:
        yield pd.DataFrame()
        return
    except (ValueError, UnicodeDecodeError) as exc:
        raise _csv_error(exc, where, encoding) from exc
    with reader:
        while True:
            try:
                chunk = next(reader, None)
            except (ValueError, UnicodeDecodeError) as exc:
                raise _csv_error(exc, where, encoding) from exc
            if chunk is None:
                return
            yield chunk


def _csv_error(exc: Exception, where: Where, encoding: str, offset: int = 0) -> FetchError:
    """``exc`` from pandas as a FetchError; ``offset`` turns a line of the parsed batch into a
    line of the file."""
    if isinstance(exc, FetchError):
        return exc
    if isinstance(exc, UnicodeDecodeError):
        return where.error(f"not valid {encoding} text: {exc.reason}")
    if isinstance(exc, pd.errors.EmptyDataError):
        return where.error("holds no data, not even a header")
    text = str(exc).strip()
    if found := _FIELDS.search(text):
        expected, line, saw = (int(g) for g in found.groups())
        line += offset
        return where.error(f"line {line} has {saw} fields, expected {expected}", line=line)
    return where.error(f"malformed: {text.removeprefix('Error tokenizing data. C error: ')}")


class _Records:
    """Whole CSV records from a byte stream: a newline ends a record when an even number of
    quote bytes precede it in the record (``""`` inside a quoted field counts twice)."""

    def __init__(self, stream: Bytes, where: Where, *, quote: int, max_record: int) -> None:
        self._stream = stream
        self._where = where
        self._quote = quote
        self._quote_byte = bytes([quote])
        self._max = max_record
        self._buffer = bytearray()
        # Offsets in _buffer just past each complete record, one array per block read: kept
        # as numpy arrays, never as Python ints (a list of one int per record cost more than
        # pyarrow's parse of the records on a file of narrow rows).
        self._ends: list[np.ndarray] = []
        self._records = 0  # complete records in _buffer
        self._last = 0  # the last complete record's end
        self._quoted = False  # inside quotes at the end of the buffer
        self._eof = False
        #: The file's line number (1-based) at the start of the buffer.
        self.line = 1

    def take(self, rows: int, size: int) -> bytes | None:
        """Up to ``rows`` whole records of at most ``size`` bytes together (one record if it
        alone is longer); None at the end of the stream."""
        while not self._eof and self._records < rows and (not self._records or self._last <= size):
            self._fill()
        if not self._records:
            return None
        ends = self._ends[0] if len(self._ends) == 1 else np.concatenate(self._ends)
        within = ends[: min(rows, len(ends))]
        count = max(1, int(np.searchsorted(within, size, side="right")))
        cut = int(ends[count - 1])
        data = bytes(self._buffer[:cut])
        del self._buffer[:cut]
        rest = ends[count:] - cut
        self._ends = [rest] if len(rest) else []
        self._records = len(rest)
        self._last = int(rest[-1]) if len(rest) else 0
        self.line += data.count(b"\n")
        return data

    def _fill(self) -> None:
        block = self._stream.read(_BLOCK)
        start = len(self._buffer)
        if not block:
            self._eof = True
            if len(self._buffer) > self._last:  # the last record has no newline
                self._add(np.array([len(self._buffer)], dtype=np.int64))
            return
        self._buffer += block
        data = np.frombuffer(block, dtype=np.uint8)
        newlines = np.flatnonzero(data == _NEWLINE)
        if not self._quoted and self._quote_byte not in block:
            ends = newlines + (start + 1)  # no quotes: every newline ends a record
        else:
            quotes = np.flatnonzero(data == self._quote)
            inside = (np.searchsorted(quotes, newlines) + int(self._quoted)) % 2 == 1
            ends = newlines[~inside] + (start + 1)
            self._quoted = (len(quotes) + int(self._quoted)) % 2 == 1
        self._check(self._last, ends)
        self._add(ends)

    def _add(self, ends: np.ndarray) -> None:
        if len(ends):
            self._ends.append(ends)
            self._records += len(ends)
            self._last = int(ends[-1])

    def _check(self, previous: int, ends: np.ndarray) -> None:
        """Fail on a record (complete, or still open at the end of the buffer) longer than
        the ceiling, naming the line it starts on."""
        if len(self._buffer) - previous <= self._max:
            return  # every record since `previous` fits in that span
        bounds = np.concatenate(([previous], ends, [len(self._buffer)]))
        too_long = np.flatnonzero(np.diff(bounds) > self._max)
        if len(too_long):
            begin = int(bounds[too_long[0]])
            line = self.line + self._buffer.count(b"\n", 0, begin)
            raise self._where.error(
                f"line {line}: a record longer than max_line_bytes={self._max:,} bytes "
                "(a field or line that large is refused to bound memory; raise the "
                "Fetcher's max_line_bytes if the file is meant so)",
                line=line,
            )


class _LineGuard(io.RawIOBase):
    """A byte stream that fails on a physical line longer than ``max_line`` bytes."""

    def __init__(self, inner: Bytes, where: Where, max_line: int) -> None:
        self._inner = inner
        self._where = where
        self._max = max_line
        self._run = 0  # bytes since the last newline
        self._line = 1

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._inner.read(len(buffer))
        n = len(data)
        last = data.rfind(b"\n")
        if self._run + n <= self._max:  # no line in here can be too long
            self._line += data.count(b"\n")
            self._run = self._run + n if last < 0 else n - last - 1
            buffer[:n] = data
            return n
        at = 0
        while True:
            newline = data.find(b"\n", at)
            length = self._run + ((n if newline < 0 else newline) - at)
            if length > self._max:
                raise self._where.error(
                    f"line {self._line}: longer than max_line_bytes={self._max:,} bytes (a line "
                    "that large is refused to bound memory; raise the Fetcher's "
                    "max_line_bytes if the file is meant so)",
                    line=self._line,
                )
            if newline < 0:
                self._run = length
                break
            self._run, self._line, at = 0, self._line + 1, newline + 1
        buffer[:n] = data
        return n

    def close(self) -> None:
        self._inner.close()
        super().close()
