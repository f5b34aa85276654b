"""One retry rule: ``retryable`` on the error, read by the writer's retries and a step's."""

from __future__ import annotations

import pytest

from resources import (
    BadValueError,
    BulkWriteError,
    OutcomeUnknownError,
    SchemaMismatchError,
    TerminalWriteError,
    TransientWriteError,
    WriteTimeoutError,
)


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (BulkWriteError("x"), False),
        (TransientWriteError("x"), True),
        (TerminalWriteError("x"), False),
        (SchemaMismatchError("x"), False),
        (BadValueError("x", table="t", column=None, row=None), False),
        (OutcomeUnknownError("x"), False),
        (WriteTimeoutError("x", limit="connect_timeout"), True),
        (WriteTimeoutError("x", limit="lock_timeout"), True),
        (WriteTimeoutError("x", limit="round_trip_timeout"), True),
        # A statement that outran its limit would only outrun it again.
        (WriteTimeoutError("x", limit="statement_timeout"), False),
    ],
)
def test_retryable(error: BulkWriteError, retryable: bool) -> None:
    assert error.retryable is retryable


@pytest.mark.parametrize(
    ("column", "row", "message"),
    [
        ("qty", 7, "bad value at table s.t, column 'qty', row 7: too big"),
        (None, 7, "bad value at table s.t, row 7: too big"),
        ("qty", None, "bad value at table s.t, column 'qty': too big"),
        (None, None, "bad value at table s.t: too big"),
        ("qty", 0, "bad value at table s.t, column 'qty', row 0: too big"),
    ],
)
def test_a_bad_value_says_where(column: str | None, row: int | None, message: str) -> None:
    error = BadValueError("too big", table="s.t", column=column, row=row)
    assert str(error) == message
    assert (error.table, error.column, error.row, error.reason) == ("s.t", column, row, "too big")


def test_no_rows_are_committed_unless_said() -> None:
    assert TransientWriteError("x").committed_rows == 0
