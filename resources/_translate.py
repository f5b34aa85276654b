"""The driver's errors as ours: which class (and so whether a retry helps), and where the
server said the bad value is, as a column and a row of the whole write."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import asyncpg

from ._append_writers import InsertWriter
from ._mode_writer import ModeWriter
from ._request import WriteRequest
from ._retry import is_data_error, is_transient
from .errors import (
    BadValueError,
    BulkWriteError,
    SchemaMismatchError,
    TerminalWriteError,
    TransientWriteError,
    WriteTimeoutError,
)

if TYPE_CHECKING:
    from ._chunks import Chunk

# The server's context line for a row that COPY rejected; a trigger or function adds lines of
# its own ("PL/pgSQL function f() line 4 at RAISE"), which must not be taken for the row.
_COPY_CONTEXT = re.compile(r"^COPY .*, line (\d+)(?:, column (.+))?$", re.MULTILINE)


_EXECUTEMANY_ELEMENT = re.compile(r"argument \$(\d+) in element #(\d+)")


_INSERT_ARGUMENT = re.compile(r"query argument \$(\d+):")


def translate(
    exc: BaseException,
    request: WriteRequest,
    chunk: Chunk | None,
    writer: ModeWriter | None,
) -> BulkWriteError:
    table = request.display
    if isinstance(exc, asyncpg.PostgresError):
        state = exc.sqlstate or ""
        detail = f" ({exc.detail})" if getattr(exc, "detail", None) else ""
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        text = f"{message}{detail} [SQLSTATE {state}]"
        if state == "57014":
            return WriteTimeoutError(
                f"statement_timeout cancelled the write into {table}: {text}",
                limit="statement_timeout",
                table=table,
            )
        if state == "55P03":
            return WriteTimeoutError(
                f"lock_timeout: {table} stayed locked: {text}", limit="lock_timeout", table=table
            )
        if is_transient(exc):
            return TransientWriteError(f"write into {table} interrupted: {text}", table=table)
        if state in ("42P01", "3F000", "42703"):
            return SchemaMismatchError(f"write into {table}: {text}", table=table)
        if is_data_error(exc):
            column, row = locate(exc, chunk, writer)
            if row is None and chunk is not None:
                text += f" in {chunk.span}"
            return BadValueError(text, table=table, column=column, row=row)
        return TerminalWriteError(f"write into {table} failed: {text}", table=table)
    if is_transient(exc):
        return TransientWriteError(
            f"write into {table} interrupted: {type(exc).__name__}: {exc}", table=table
        )
    if isinstance(exc, TypeError | ValueError | OverflowError) and chunk is not None:
        return BadValueError(
            f"{type(exc).__name__}: {exc} in {chunk.span}",
            table=table,
            column=None,
            row=None,
        )
    return TerminalWriteError(
        f"write into {table} failed: {type(exc).__name__}: {exc}", table=table
    )


def locate(
    exc: asyncpg.PostgresError, chunk: Chunk | None, writer: ModeWriter | None
) -> tuple[str | None, int | None]:
    column = getattr(exc, "column_name", None)
    row = getattr(exc, "input_row", None)
    columns = writer.columns if writer is not None else ()
    context = getattr(exc, "context", None) or ""
    copy_lines = _COPY_CONTEXT.findall(context)
    if row is not None:
        pass  # the staged apply found the row itself
    elif copy_lines:
        line, copy_column = copy_lines[-1]
        row = _row(chunk, int(line) - 1)
        column = column or copy_column or None
    elif match := _EXECUTEMANY_ELEMENT.search(str(exc)):
        index = int(match.group(1)) - 1
        column = columns[index] if index < len(columns) else column
        row = _row(chunk, int(match.group(2)))
    elif (match := _INSERT_ARGUMENT.search(str(exc))) and isinstance(writer, InsertWriter):
        index = int(match.group(1)) - 1
        width = max(1, len(columns))
        column = columns[index % width]
        row = _row(chunk, writer.batch_start + index // width)
    return column, row


def _row(chunk: Chunk | None, index: int) -> int:
    return index if chunk is None else chunk.row(index)
