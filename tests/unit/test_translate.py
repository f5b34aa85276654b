"""The driver's errors as ours: the class (and so the retry) follows the SQLSTATE, and the bad
value is placed at its column and its row of the whole write."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from resources import (
    BadValueError,
    BulkWriteError,
    SchemaMismatchError,
    TerminalWriteError,
    TransientWriteError,
    WriteTimeoutError,
)
from resources._chunks import Chunk
from resources._translate import locate, translate


@dataclass(frozen=True)
class Target:
    display: str = "s.t"
    round_trip_timeout: float | None = None


def server_error(sqlstate: str, message: str = "refused", **fields: str) -> asyncpg.PostgresError:
    """The exception asyncpg raises for an ErrorResponse: its class follows the SQLSTATE.
    ``fields`` are the protocol's one-letter field codes (D detail, W context, c column)."""
    error = asyncpg.PostgresError.new({"C": sqlstate, "M": message, **fields})
    assert isinstance(error, asyncpg.PostgresError)
    return error


def chunk(offset: int, rows: int, positions: list[int] | None = None) -> Chunk:
    return Chunk(offset=offset, records=[], duplicates=0, rows=rows, positions=positions)


@pytest.mark.parametrize(
    ("sqlstate", "expected"),
    [
        ("40001", TransientWriteError),  # serialization_failure
        ("40P01", TransientWriteError),  # deadlock_detected
        ("53300", TransientWriteError),  # too_many_connections
        ("57P01", TransientWriteError),  # admin_shutdown
        ("57P02", TransientWriteError),  # crash_shutdown
        ("57P03", TransientWriteError),  # cannot_connect_now
        ("08006", TransientWriteError),  # connection_failure: all of class 08
        ("08000", TransientWriteError),
        ("42P01", SchemaMismatchError),  # undefined_table
        ("3F000", SchemaMismatchError),  # invalid_schema_name
        ("42703", SchemaMismatchError),  # undefined_column
        ("22P02", BadValueError),  # invalid_text_representation
        ("22003", BadValueError),  # numeric_value_out_of_range
        ("23505", BadValueError),  # unique_violation
        ("23502", BadValueError),  # not_null_violation
        ("23514", BadValueError),  # check_violation
        ("P0001", BadValueError),  # a trigger's RAISE EXCEPTION
        ("P0004", BadValueError),  # a failed ASSERT
        ("42501", TerminalWriteError),  # insufficient_privilege
        ("42601", TerminalWriteError),  # syntax_error
        ("XX000", TerminalWriteError),  # internal_error
    ],
)
def test_the_class_follows_the_sqlstate(sqlstate: str, expected: type[BulkWriteError]) -> None:
    error = translate(server_error(sqlstate), Target(), None, None)
    assert type(error) is expected
    assert error.table == "s.t"
    assert f"[SQLSTATE {sqlstate}]" in str(error)
    assert error.retryable is issubclass(expected, TransientWriteError)


@pytest.mark.parametrize(
    ("sqlstate", "limit", "retryable"),
    [("57014", "statement_timeout", False), ("55P03", "lock_timeout", True)],
)
def test_timeouts_name_their_limit(sqlstate: str, limit: str, retryable: bool) -> None:
    error = translate(server_error(sqlstate), Target(), None, None)
    assert isinstance(error, WriteTimeoutError)
    assert error.limit == limit and limit in str(error)
    assert error.retryable is retryable


def test_the_detail_is_kept_in_the_message() -> None:
    exc = server_error("23505", "duplicate key", D="Key (id)=(7) already exists.")
    error = translate(exc, Target(), None, None)
    assert "duplicate key (Key (id)=(7) already exists.) [SQLSTATE 23505]" in str(error)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (ConnectionResetError("reset by peer"), TransientWriteError),
        (TimeoutError("round trip"), TransientWriteError),
        (asyncpg.InternalClientError("cannot switch to state 12"), TransientWriteError),
        (asyncpg.InterfaceError("connection is closed"), TransientWriteError),
        (asyncpg.InterfaceError("released back to the pool"), TransientWriteError),
        (asyncpg.InterfaceError("another operation is in progress"), TerminalWriteError),
        (RuntimeError("boom"), TerminalWriteError),
        (ValueError("no chunk to place it in"), TerminalWriteError),
    ],
)
def test_client_side_errors(exc: BaseException, expected: type[BulkWriteError]) -> None:
    error = translate(exc, Target(), None, None)
    assert type(error) is expected
    assert type(exc).__name__ in str(error)


@pytest.mark.parametrize("exc", [TypeError("bad"), ValueError("bad"), OverflowError("bad")])
def test_an_unencodable_value_in_a_chunk_is_a_bad_value(exc: Exception) -> None:
    error = translate(exc, Target(), chunk(offset=30, rows=5), None)
    assert isinstance(error, BadValueError)
    assert error.row is None and "in rows 30..34" in str(error)


@pytest.mark.parametrize(
    ("context", "offset", "positions", "column", "row"),
    [
        # Binary COPY's context (the writer's only COPY format) names no value. Its line
        # numbers count from 1; the chunk's first row is the write's row `offset`.
        ("COPY t, line 1, column qty", 0, None, "qty", 0),
        ("COPY t, line 3, column qty", 100, None, "qty", 102),
        ("COPY t, line 2", 10, None, None, 11),
        # Rows set aside (quarantine): the chunk's records keep their global positions.
        ("COPY t, line 2, column v", 0, [4, 9, 15], "v", 9),
        # A trigger's own context line comes first; the COPY line is the last.
        (
            "PL/pgSQL function f() line 4 at RAISE\nCOPY t, line 5, column id",
            0,
            None,
            "id",
            4,
        ),
        ("PL/pgSQL function f() line 4 at RAISE", 0, None, None, None),
        ("", 0, None, None, None),
    ],
)
def test_locate_reads_the_copy_context(
    context: str, offset: int, positions: list[int] | None, column: str | None, row: int | None
) -> None:
    exc = server_error("22P02", W=context) if context else server_error("22P02")
    assert locate(exc, chunk(offset, 20, positions), None) == (column, row)


def test_locate_prefers_the_servers_column_name() -> None:
    exc = server_error("23502", c="email", W="COPY t, line 2, column id")
    assert locate(exc, chunk(0, 5), None) == ("email", 1)


def test_locate_keeps_a_row_found_by_the_staged_apply() -> None:
    exc: Any = server_error("23505", W="COPY t, line 2, column id")
    exc.input_row = 41
    assert locate(exc, chunk(0, 5), None) == (None, 41)


def test_a_bad_value_without_a_place_names_the_chunks_rows() -> None:
    error = translate(server_error("22003"), Target(), chunk(offset=1_000, rows=500), None)
    assert isinstance(error, BadValueError)
    assert (error.column, error.row) == (None, None)
    assert "in rows 1000..1499" in str(error)


def test_a_bad_value_with_a_copy_line_is_placed() -> None:
    exc = server_error("22P02", 'invalid input syntax for type integer: "x"', W="COPY t, line 7")
    error = translate(exc, Target(display="public.items"), chunk(offset=70, rows=10), None)
    assert isinstance(error, BadValueError)
    assert error.row == 76 and error.table == "public.items"
    assert str(error).startswith("bad value at table public.items, row 76: invalid input syntax")
