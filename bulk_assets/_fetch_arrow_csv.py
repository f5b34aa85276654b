"""CSV as Arrow record batches, each column parsed as the target table's column type, as
``psql \\copy`` parses it.

The byte stream is cut into batches of whole records (:class:`._fetch_csv._Records`: a newline
outside quotes ends one; at most ``chunk_rows`` records and ``chunk_bytes`` bytes), and each
batch is parsed by ``pyarrow.csv`` with the header in front of it. Knowing where each batch
starts in the file is what lets a value that does not parse be named by its line, as an editor
counts it (header = line 1, newlines inside quotes counted), and its column.

Types pyarrow parses itself: integers, floats, booleans (``t/f/true/false/1/0/yes/no/on/off``,
any case), dates, timestamps with a zone (``timestamptz``; a value without one is read as UTC,
the server's default zone) or without (``timestamp``). Every other column (numeric, uuid, JSON,
text, interval ...) stays text, which the writer encodes exactly.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from ._fetch_csv import _check_header, _Records
from ._fetch_errors import FetchError
from ._fetch_read import ReadRequest
from ._fetch_source import Bytes
from ._fetch_trail import CsvOrigin, record_starts

__all__ = ["ARROW_CSV_OPTIONS", "DEFAULT_NULL_VALUES", "arrow_type", "csv_batches"]

#: Missing values as people write them: pandas' default ``na_values`` (R's ``NA`` among them)
#: and the empty field. ``null_values=[""]`` keeps "NA" (Namibia) and "None" as text.
DEFAULT_NULL_VALUES: tuple[str, ...] = (
    "",
    "#N/A",
    "#N/A N/A",
    "#NA",
    "-1.#IND",
    "-1.#QNAN",
    "-NaN",
    "-nan",
    "1.#IND",
    "1.#QNAN",
    "<NA>",
    "N/A",
    "NA",
    "NULL",
    "NaN",
    "None",
    "n/a",
    "nan",
    "null",
)
#: The read_options this reader honours; with any other the fetch falls back to pandas.
ARROW_CSV_OPTIONS = frozenset({"sep", "delimiter", "quotechar", "encoding"})

_TRUE = ("t", "true", "1", "yes", "y", "on")
_FALSE = ("f", "false", "0", "no", "n", "off")
# PostgreSQL reads booleans in any case: pyarrow compares exactly, so every spelling is listed.
_TRUE_VALUES = sorted({v for t in _TRUE for v in (t, t.upper(), t.capitalize())})
_FALSE_VALUES = sorted({v for f in _FALSE for v in (f, f.upper(), f.capitalize())})
_INTEGERS = frozenset({"int2", "int4", "int8"})
_COLUMN_ERROR = re.compile(r"In CSV column #(\d+): (.*)", re.S)
# numeric(p, s) as the writer passes it; Arrow's decimal128 holds up to 38 digits.
_NUMERIC = re.compile(r"numeric\((\d+),(\d+)\)")
_MAX_DECIMAL_DIGITS = 38
_NO_ZONE = "expected a zone offset"


def arrow_type(base_type: str) -> pa.DataType:
    """The Arrow type a CSV column is parsed as for a PostgreSQL column of ``base_type``
    (``numeric(p,s)`` with its precision and scale); text for any type it cannot parse."""
    if base_type in _INTEGERS:
        return pa.int64()  # the writer checks the column's range, naming the row
    if (numeric := _NUMERIC.fullmatch(base_type)) is not None:
        precision, scale = int(numeric.group(1)), int(numeric.group(2))
        # Parsed exactly by Arrow; a value with more decimals than the scale is refused.
        return pa.decimal128(precision, scale) if precision <= _MAX_DECIMAL_DIGITS else pa.string()
    return {
        "float4": pa.float64(),
        "float8": pa.float64(),
        "bool": pa.bool_(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("us"),
        "timestamptz": pa.timestamp("us", tz="UTC"),
    }.get(base_type, pa.string())


def csv_batches(
    stream: Bytes,
    read: ReadRequest,
    *,
    types: Mapping[str, str],
    null_values: Sequence[str],
) -> Iterator[pa.RecordBatch]:
    """Record batches of the CSV on ``stream``; ``types`` maps source columns to the base
    type of their target column (others are inferred). A header without rows gives one
    empty batch; a stream without even a header, one batch without columns."""
    where = read.where
    options = dict(read.read_options)
    sep = options.get("sep", options.get("delimiter", ","))
    quote = options.get("quotechar", '"')
    encoding = options.get("encoding") or "utf-8"
    records = _Records(stream, where, quote=ord(quote), max_record=read.max_line_bytes)
    header = records.take(1, 0)
    while header is not None and not header.strip():
        header = records.take(1, 0)
    if header is None:
        yield pa.record_batch({})
        return
    _check_header(header, where, options, encoding)
    parser = _Parser(header, read, types, null_values, sep=sep, quote=quote, encoding=encoding)
    given = False
    while True:
        first_line = records.line
        batch = records.take(read.chunk_rows, read.chunk_bytes)
        if batch is None:
            break
        table = parser.parse(batch, first_line)
        if read.trail is not None and table.num_rows:
            newlines = records.line - first_line  # counted by take() already
            origin = CsvOrigin.of(
                where.location,
                first_line,
                batch,
                newlines=newlines,
                rows=table.num_rows,
                quote=ord(quote),
            )
            read.trail.read(table.num_rows, origin)
        if table.num_rows or not given:
            given = True
            yield from _batches(table)
    if not given:
        yield from _batches(parser.parse(b"", records.line))


def _batches(table: pa.Table) -> Iterator[pa.RecordBatch]:
    # One batch per chunk of records: the writer sends it as one COPY chunk.
    combined = table.combine_chunks()
    batches = combined.to_batches()
    if not batches:
        yield pa.RecordBatch.from_pylist([], schema=table.schema)
        return
    yield from batches


class _Parser:
    """Parses batches of records with the header in front; names the line of a bad value."""

    def __init__(
        self,
        header: bytes,
        read: ReadRequest,
        types: Mapping[str, str],
        null_values: Sequence[str],
        *,
        sep: str,
        quote: str,
        encoding: str,
    ) -> None:
        self._header = header if header.endswith(b"\n") else header + b"\n"
        self._where = read.where
        self._encoding = encoding
        self._quote = ord(quote)
        self._dialect: dict[str, Any] = {"delimiter": sep, "quotechar": quote}
        self._read_options = pcsv.ReadOptions(encoding=encoding, block_size=1 << 24)
        self._parse_options = pcsv.ParseOptions(
            delimiter=sep, quote_char=quote, newlines_in_values=True
        )
        self._types = {name: arrow_type(base) for name, base in types.items()}
        self._base_types = dict(types)
        # timestamptz columns whose values carry no zone: parsed naive, then read as UTC.
        self._naive: set[str] = set()
        self._null_values = list(null_values)
        self._columns = list(read.columns) if read.columns is not None else None
        self._rows = 0
        self._line_offset = self._header.count(b"\n")

    def _convert_options(self, as_text: str | None = None) -> pcsv.ConvertOptions:
        column_types = {
            name: pa.timestamp("us") if name in self._naive else kind
            for name, kind in self._types.items()
        }
        if as_text is not None:
            column_types[as_text] = pa.string()
        return pcsv.ConvertOptions(
            column_types=column_types,
            null_values=self._null_values,
            strings_can_be_null=True,
            # As \copy reads CSV: a quoted "" or "NA" is that text, not a missing value.
            quoted_strings_can_be_null=False,
            true_values=_TRUE_VALUES,
            false_values=_FALSE_VALUES,
            include_columns=self._columns,
        )

    def parse(self, batch: bytes, first_line: int) -> pa.Table:
        data = self._header + batch
        while True:
            try:
                table = self._read(data, self._convert_options())
                break
            except pa.ArrowInvalid as exc:
                found = _COLUMN_ERROR.search(str(exc))
                name = self._column_name(found) if found else None
                if (
                    name is not None
                    and found is not None
                    and _NO_ZONE in found.group(2)
                    and self._base_types.get(name) == "timestamptz"
                    and name not in self._naive
                ):
                    self._naive.add(name)
                    continue
                raise self._error(exc, batch, first_line, name) from exc
        for name in self._naive & set(table.column_names):
            index = table.column_names.index(name)
            table = table.set_column(
                index, name, table.column(name).cast(pa.timestamp("us", tz="UTC"))
            )
        if table.num_rows:
            self._fix_inferred(table, first_line)
        self._rows += table.num_rows
        return table

    def _fix_inferred(self, table: pa.Table, first_line: int) -> None:
        """Columns of no declared type keep the type the first rows gave them (a later chunk
        is then parsed, and refused by line, the same way); a column that is text only
        because of a few tokens (``-``, ``?``) among numbers is refused, never made text."""
        for field in table.schema:
            if field.name in self._types:
                continue
            if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
                tokens = _stray_tokens(table.column(field.name))
                if tokens:
                    raise self._where.error(
                        f"column {field.name!r} reads as text only because of {tokens} among "
                        f"numbers (lines {first_line}...): add them to null_values, or give "
                        "the column a type (an existing table's, or dtypes)",
                        line=first_line,
                        column=field.name,
                    )
            kind = pa.string() if pa.types.is_null(field.type) else field.type
            self._types[field.name] = kind
            self._base_types.setdefault(field.name, str(kind))

    def _read(self, data: bytes, convert: pcsv.ConvertOptions) -> pa.Table:
        return pcsv.read_csv(
            io.BytesIO(data),
            read_options=self._read_options,
            parse_options=self._parse_options,
            convert_options=convert,
        )

    def _column_name(self, found: re.Match[str]) -> str | None:
        names = self._read(self._header, pcsv.ConvertOptions()).column_names
        index = int(found.group(1))
        return names[index] if index < len(names) else None

    def _error(self, exc: Exception, batch: bytes, first_line: int, name: str | None) -> FetchError:
        where = self._where
        if name is None:
            return self._malformed(exc, batch, first_line)
        texts = self._read(self._header + batch, self._convert_options(as_text=name)).column(name)
        position = self._first_bad(texts.to_pylist(), name)
        line = first_line + batch.count(b"\n", 0, record_starts(batch, self._quote)[position])
        value = texts[position].as_py()
        base = self._base_types.get(name, "the inferred type")
        return where.error(
            f"line {line}, column {name!r}: {value!r} is not a valid {base} (the table's "
            "column type; null_values lists the texts read as missing)",
            line=line,
            row=self._rows + position,
            column=name,
        )

    def _malformed(self, exc: Exception, batch: bytes, first_line: int) -> FetchError:
        """A record with a field too many or too few, named by the line it starts on."""
        expected = len(self._read(self._header, pcsv.ConvertOptions()).column_names)
        starts = [*record_starts(batch, self._quote), len(batch)]
        for begin, end in itertools.pairwise(starts):
            text = batch[begin:end].decode(self._encoding, errors="replace")
            fields = next(csv.reader(io.StringIO(text), **self._dialect), [])
            if len(fields) != expected:
                line = first_line + batch.count(b"\n", 0, begin)
                return self._where.error(
                    f"line {line} has {len(fields)} fields, expected {expected}", line=line
                )
        return self._where.error(f"malformed at line {first_line} or after: {exc}", line=first_line)

    def _first_bad(self, values: list[str | None], name: str) -> int:
        """The first value of ``name`` that does not parse as its type: a binary search
        re-parsing halves of the column (the error path only; about 17 parses for 100,000)."""
        low, high = 0, len(values)
        while high - low > 1:
            middle = (low + high) // 2
            if self._parses(values[low:middle], name):
                low = middle
            else:
                high = middle
        return low

    def _parses(self, values: list[str | None], name: str) -> bool:
        column = pa.table({name: pa.array(values, pa.string())})
        sink = io.BytesIO()
        # Every value quoted, NULL as an empty field: a quoted "NA" stays text, as it was.
        quoted = pcsv.WriteOptions(quoting_style="all_valid")
        pcsv.write_csv(column, sink, write_options=quoted)
        convert = pcsv.ConvertOptions(
            column_types={name: pa.timestamp("us") if name in self._naive else self._types[name]},
            null_values=self._null_values,
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=_TRUE_VALUES,
            false_values=_FALSE_VALUES,
        )
        try:
            pcsv.read_csv(io.BytesIO(sink.getvalue()), convert_options=convert)
        except pa.ArrowInvalid:
            return False
        return True


# A text column whose values are numbers but for at most this many distinct short tokens is
# one whose missing values are spelled in a way null_values does not know.
_MAX_STRAY_TOKENS = 3
_MAX_TOKEN_CHARS = 12
_NUMBER = r"^\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*$"


def _stray_tokens(column: pa.ChunkedArray) -> list[str]:
    values = column.drop_null()
    if not len(values):
        return []
    numeric = pc.match_substring_regex(values, _NUMBER)
    others = pc.unique(values.filter(pc.invert(numeric)))
    if not pc.any(numeric).as_py() or len(others) > _MAX_STRAY_TOKENS:
        return []
    tokens = [str(t) for t in others.to_pylist()]
    return tokens if all(len(t) <= _MAX_TOKEN_CHARS for t in tokens) else []
