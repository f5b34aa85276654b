"""What a write asks for is checked before anything connects: every refusal of
``WriteRequest.of``, and the defaults it fills in."""

from __future__ import annotations

from typing import Any

import pytest

from resources import KeyRange, SchemaMismatchError, WriteOptions
from resources._request import WriteRequest


def request(options: Any, table: str = "t") -> WriteRequest:
    return WriteRequest.of(
        table, None, options, chunk_size=50_000, retries=3, round_trip_timeout=None
    )


def test_defaults() -> None:
    made = request({})
    assert (made.mode, made.commit, made.on_bad_rows) == ("copy", "write", "fail")
    assert made.key_columns == () and made.columns is None
    assert made.chunk_size == 50_000 and made.replace is False and made.create is False
    assert made.display == "t"


@pytest.mark.parametrize(
    ("options", "field", "value"),
    [
        ({"key_columns": "id", "mode": "upsert"}, "key_columns", ("id",)),
        ({"key_columns": ["a", "b"], "mode": "update"}, "key_columns", ("a", "b")),
        ({"columns": ["x", "y"]}, "columns", ("x", "y")),
        ({"chunk_size": 10}, "chunk_size", 10),
        ({"chunk_size": None}, "chunk_size", 50_000),
        ({"schema": "s"}, "display", "s.t"),
        ({"replace": KeyRange("id", 1, 2)}, "replace", KeyRange("id", 1, 2)),
        ({"on_bad_rows": "quarantine", "rejects_table": "bad"}, "rejects_table", "bad"),
    ],
)
def test_options_are_taken(options: WriteOptions, field: str, value: Any) -> None:
    assert getattr(request(options), field) == value


@pytest.mark.parametrize(
    ("options", "error", "says"),
    [
        ({"mode": "copyy"}, ValueError, "mode must be one of"),
        ({"commit": "row"}, ValueError, "commit must be 'write' or 'chunk'"),
        ({"chunk_size": -5}, ValueError, "chunk_size must be at least 1"),
        ({"chunk_size": 0}, ValueError, "chunk_size must be at least 1"),
        ({"mode": "update"}, SchemaMismatchError, "needs key_columns"),
        ({"mode": "upsert", "key_columns": []}, SchemaMismatchError, "needs key_columns"),
        ({"replace": True, "commit": "chunk"}, ValueError, "needs commit='write'"),
        (
            {"replace": True, "mode": "upsert", "key_columns": ["id"]},
            ValueError,
            "an appending mode",
        ),
        ({"on_bad_rows": "skip"}, ValueError, "on_bad_rows must be 'fail' or 'quarantine'"),
        ({"replace": "yes"}, TypeError, "replace must be True, False or a KeyRange"),
        ({"replace": 1}, TypeError, "replace must be True, False or a KeyRange"),
        ({"replace": True, "native_partitions": True}, ValueError, "needs replace=KeyRange"),
        ({"native_partitions": True}, ValueError, "needs replace=KeyRange"),
        ({"schema": ""}, ValueError, "schema name must be a non-empty str"),
        ({"schema": "s" * 64}, ValueError, "schema name 's{64}' is 64 bytes"),
        ({"rejects_table": "r\x00"}, ValueError, "rejects_table cannot contain a NUL"),
        ({"columns": ["ok", ""]}, ValueError, "column name must be"),
        ({"mode": "upsert", "key_columns": ["k" * 64]}, ValueError, "column name 'k{64}'"),
        ({"replace": KeyRange("c" * 64, 1, 2)}, ValueError, "KeyRange column 'c{64}'"),
        ({"modes": "copy"}, TypeError, r"unexpected options \['modes'\]"),
        ({"timeout": 5, "chunk": 1}, TypeError, r"unexpected options \['chunk', 'timeout'\]"),
    ],
)
def test_refusals(options: Any, error: type[Exception], says: str) -> None:
    with pytest.raises(error, match=says):
        request(options)


@pytest.mark.parametrize("table", ["", "t" * 64, "a\x00b"])
def test_a_table_name_postgresql_would_change_is_refused(table: str) -> None:
    with pytest.raises(ValueError, match="table name"):
        request({}, table=table)


def test_the_refusal_of_missing_keys_names_the_table() -> None:
    with pytest.raises(SchemaMismatchError) as caught:
        request({"mode": "update", "schema": "s"})
    assert caught.value.table == "s.t"


def test_every_option_is_known() -> None:
    """A new option must reach the request: ``of`` reads every key of WriteOptions."""
    everything: WriteOptions = {
        "mode": "copy",
        "key_columns": ["id"],
        "columns": ["id"],
        "chunk_size": 7,
        "schema": "s",
        "create": True,
        "commit": "write",
        "replace": KeyRange("id", 1, 2),
        "on_bad_rows": "quarantine",
        "rejects_table": "r",
        "native_partitions": True,
    }
    assert set(everything) == set(WriteOptions.__annotations__)
    made = request(everything)
    assert made.create is True and made.chunk_size == 7 and made.rejects_table == "r"
    assert made.native_partitions is True
