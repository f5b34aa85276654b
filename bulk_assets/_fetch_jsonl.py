"""JSON Lines as DataFrame chunks of at most ``chunk_rows`` rows and about ``chunk_bytes``
bytes, read from a byte stream. A stream without a record comes out as one frame without
columns, which the caller turns into an empty result or an error."""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import Iterator

import numpy as np
import pandas as pd

from ._fetch_errors import FetchError, Where
from ._fetch_read import ReadRequest
from ._fetch_source import Bytes
from ._fetch_trail import LinesOrigin

__all__ = ["jsonl_chunks"]


def jsonl_chunks(stream: Bytes, read: ReadRequest) -> Iterator[pd.DataFrame]:
    """``pd.read_json(lines=True)`` on up to ``chunk_rows`` non-blank lines and about
    ``chunk_bytes`` bytes at a time; we batch the lines ourselves, so that a malformed one can
    be named by its line number, and a line past ``max_line_bytes`` is refused before it fills
    memory. ``dtype=False`` by default: pandas would otherwise turn a text column of digits
    ("01", "02") into ints."""
    where = read.where
    options = {"dtype": False, **read.read_options}
    encoding = options.pop("encoding", None) or "utf-8"
    records = _numbered_lines(stream, where, encoding, read.max_line_bytes)
    row = 0
    while batch := _batch(records, read.chunk_rows, read.chunk_bytes):
        body = "\n".join(line for _, line in batch)
        try:
            frame = pd.read_json(io.StringIO(body), lines=True, **options)
        except ValueError as exc:
            raise _jsonl_error(exc, batch, row, where) from exc
        row += len(batch)
        if read.trail is not None:
            lines = np.fromiter((number for number, _ in batch), dtype=np.int64, count=len(batch))
            read.trail.read(len(frame), LinesOrigin(where.location, lines))
        yield frame
    if not row:
        yield pd.DataFrame()


def _batch(records: Iterator[tuple[int, str]], rows: int, size: int) -> list[tuple[int, str]]:
    batch: list[tuple[int, str]] = []
    total = 0
    for record in itertools.islice(records, rows):
        batch.append(record)
        total += len(record[1])
        if total >= size:
            break
    return batch


def _numbered_lines(
    stream: Bytes, where: Where, encoding: str, max_line: int
) -> Iterator[tuple[int, str]]:
    number = 0
    while True:
        # One byte more than the ceiling: a line that fills it all is too long.
        raw = stream.readline(max_line + 1)
        if not raw:
            return
        number += 1
        content = raw.rstrip(b"\r\n")
        if len(content) > max_line:
            raise where.error(
                f"line {number}: longer than max_line_bytes={max_line:,} bytes (a line that "
                "large is refused to bound memory; raise the Fetcher's max_line_bytes if the "
                "file is meant so)",
                line=number,
            )
        try:
            line = content.decode(encoding)
        except UnicodeDecodeError as exc:
            raise where.error(f"line {number} is not valid {encoding}: {exc.reason}") from exc
        if line.strip():
            yield number, line


def _jsonl_error(
    exc: ValueError, batch: list[tuple[int, str]], row: int, where: Where
) -> FetchError:
    for i, (line, text) in enumerate(batch):
        try:
            value = json.loads(text)
        except ValueError as bad:
            return where.error(f"line {line} is not valid JSON: {bad}", line=line, row=row + i)
        if not isinstance(value, dict):
            return where.error(
                f"line {line} holds a JSON {type(value).__name__}, expected an object",
                line=line,
                row=row + i,
            )
    lines = f"lines {batch[0][0]}..{batch[-1][0]}"
    return where.error(f"{lines} do not form a table: {exc}", line=batch[0][0], row=row)
