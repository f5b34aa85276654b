"""The driver's errors as ours: which class (and so whether a retry helps), and where the
server said the bad value is, as a column and a row of the whole write."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import asyncpg

from ._append_writers import InsertWriter
from ._mode_writer import ModeWriter
from ._request import Named
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
# asyncpg's own encoder refusing a value, before anything is sent: "invalid input for query
# argument $2 in element #3 of executemany() sequence: 'x' (...)", or "... argument $7: ..."
# for one statement, where $n of a multi-row INSERT is row (n - 1) // width of its batch.
_EXECUTEMANY_ELEMENT = re.compile(r"argument \$(\d+) in element #(\d+)")
_INSERT_ARGUMENT = re.compile(r"query argument \$(\d+):")


def translate(
    exc: BaseException,
    request: Named,
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
                # asyncpg's client-side DataError carries SQLSTATE 22000 but no server
                # fields: its message names the bind parameter instead.
                column, row = _locate_argument(str(exc), chunk, writer, column)
            if row is None and chunk is not None:
                text += f" in {chunk.span}"
            return BadValueError(text, table=table, column=column, row=row)
        return TerminalWriteError(f"write into {table} failed: {text}", table=table)
    if is_transient(exc):
        return TransientWriteError(
            f"write into {table} interrupted: {type(exc).__name__}: {exc}", table=table
        )
    if isinstance(exc, TypeError | ValueError | OverflowError) and chunk is not None:
        # A value without a check of ours (inet, arrays, enums) that the driver could not
        # encode: its message names the bind parameter, and so the column and row.
        column, row = _locate_argument(str(exc), chunk, writer, None)
        where = "" if row is not None else f" in {chunk.span}"
        return BadValueError(f"{exc}{where}", table=table, column=column, row=row)
    return TerminalWriteError(
        f"write into {table} failed: {type(exc).__name__}: {exc}", table=table
    )


def locate(
    exc: asyncpg.PostgresError, chunk: Chunk | None, writer: ModeWriter | None
) -> tuple[str | None, int | None]:
    column = getattr(exc, "column_name", None)
    row = getattr(exc, "input_row", None)
    context = getattr(exc, "context", None) or ""
    copy_lines = _COPY_CONTEXT.findall(context)
    if row is not None:
        pass  # the staged apply found the row itself
    elif copy_lines:
        line, copy_column = copy_lines[-1]
        row = _row(chunk, int(line) - 1)
        column = column or copy_column or None
    return column, row


def _locate_argument(
    message: str, chunk: Chunk, writer: ModeWriter | None, column: str | None
) -> tuple[str | None, int | None]:
    """Column and row of the bind parameter asyncpg could not encode (else ``column`` and
    no row)."""
    columns = writer.columns if writer is not None else ()
    if not columns:
        return column, None
    if (match := _EXECUTEMANY_ELEMENT.search(message)) and isinstance(writer, InsertWriter):
        index, width = int(match.group(1)) - 1, len(columns)
        batch = writer.batch_start + int(match.group(2)) * writer.rows_per_statement
        return columns[index % width], _row(chunk, batch + index // width)
    if match := _EXECUTEMANY_ELEMENT.search(message):
        index = int(match.group(1)) - 1
        return columns[index % len(columns)], _row(chunk, int(match.group(2)))
    if (match := _INSERT_ARGUMENT.search(message)) and isinstance(writer, InsertWriter):
        index = int(match.group(1)) - 1
        width = len(columns)
        return columns[index % width], _row(chunk, writer.batch_start + index // width)
    return column, None


def _row(chunk: Chunk | None, index: int) -> int:
    return index if chunk is None else chunk.row(index)
