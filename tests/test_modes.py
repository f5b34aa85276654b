"""Semantics of the write modes: update and upsert matching, duplicate keys in a batch,
composite keys, the bind-parameter limit of multi-row INSERT, per-chunk commits and the
WriteResult a write returns."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np
import pandas as pd
import pytest
from _support import MODES

from resources import BadValueError, Mode, PostgresBulkWriter, SchemaMismatchError
from resources._request import Commit, OnBadRows


def items(db: Any, schema: str, rows: int = 10) -> None:
    """items(id, name, qty, note) holding ids 1..rows as ('old<i>', i, 'keep')."""
    db.execute(
        f'CREATE TABLE "{schema}".items (id int PRIMARY KEY, name text, qty int, '
        "note text DEFAULT 'default')"
    )
    if rows:
        db.execute(
            f"INSERT INTO \"{schema}\".items SELECT g, 'old' || g, g, 'keep' "
            f"FROM generate_series(1, {rows}) g"
        )


def content(db: Any, schema: str, table: str = "items", order: str = "1") -> list[tuple[Any, ...]]:
    return [tuple(r) for r in db.fetch(f'SELECT * FROM "{schema}"."{table}" ORDER BY {order}')]


# -- update ------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", [2, 1_000])
def test_update_sets_matched_rows_and_ignores_the_rest(
    chunk_size: int, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """Matched rows get the data's non-key columns; other table rows and columns not in the
    data stay; data rows whose key is absent are ignored; rows_affected counts the changes."""
    items(db, schema)
    before = content(db, schema)
    frame = pd.DataFrame(
        {"id": [3, 100, 5, 7, 200], "name": ["three", "x", "five", "seven", "y"], "qty": [30] * 5}
    )

    result = writer.write(
        "items", frame, mode="update", key_columns=["id"], schema=schema, chunk_size=chunk_size
    )

    after = content(db, schema)
    expected = [
        (
            i,
            {3: "three", 5: "five", 7: "seven"}.get(i, f"old{i}"),
            30 if i in (3, 5, 7) else i,
            "keep",
        )
        for i in range(1, 11)
    ]
    assert after == expected
    changed = sum(a != b for a, b in zip(before, after, strict=True))
    assert result.rows_affected == changed == 3
    assert result.rows == 5
    assert result.mode == "update"


def test_update_with_a_key_column_as_a_single_string(
    writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """key_columns="id" is taken as one column name, not as the characters of a string."""
    items(db, schema, rows=3)
    result = writer.write(
        "items",
        pd.DataFrame({"id": [2], "qty": [99]}),
        mode="update",
        key_columns="id",
        schema=schema,
    )
    assert result.rows_affected == 1
    assert content(db, schema)[1] == (2, "old2", 99, "keep")


# -- upsert ------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", [3, 1_000])
def test_upsert_inserts_new_keys_and_updates_existing(
    chunk_size: int, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """Existing keys get the data's values, new keys are inserted (columns not in the data
    take their default), other rows stay."""
    items(db, schema)
    frame = pd.DataFrame({"id": range(8, 16), "name": [f"new{i}" for i in range(8, 16)]})
    frame["qty"] = frame["id"] * 100

    result = writer.write(
        "items", frame, mode="upsert", key_columns=["id"], schema=schema, chunk_size=chunk_size
    )

    expected = [(i, f"old{i}", i, "keep") for i in range(1, 8)]
    expected += [(i, f"new{i}", i * 100, "keep") for i in range(8, 11)]
    expected += [(i, f"new{i}", i * 100, "default") for i in range(11, 16)]
    assert content(db, schema) == expected
    assert result.rows_affected == 8
    assert result.rows == 8


def test_upsert_of_key_only_data_inserts_missing_keys_and_keeps_existing(
    writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """Data holding only the key columns inserts new keys and leaves existing rows as they are."""
    items(db, schema, rows=3)
    result = writer.write(
        "items", pd.DataFrame({"id": [2, 3, 4]}), mode="upsert", key_columns=["id"], schema=schema
    )
    assert content(db, schema) == [
        (1, "old1", 1, "keep"),
        (2, "old2", 2, "keep"),
        (3, "old3", 3, "keep"),
        (4, None, None, "default"),
    ]
    assert result.rows_affected == 1


# -- duplicate keys in one batch ---------------------------------------------------------------


@pytest.mark.parametrize("mode", ["update", "upsert"])
def test_duplicate_keys_in_a_batch_last_row_wins(
    mode: Mode, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """A key repeated inside one chunk: the last row wins, duplicates_resolved says how many
    rows were dropped, and the server raises nothing (no "cannot affect row a second time")."""
    items(db, schema, rows=3)
    frame = pd.DataFrame(
        {
            "id": [1, 2, 1, 3, 1, 2, 9, 9],
            "name": ["a", "b", "c", "d", "e", "f", "g", "h"],
            "qty": [1, 2, 3, 4, 5, 6, 7, 8],
        }
    )

    result = writer.write("items", frame, mode=mode, key_columns=["id"], schema=schema)

    expected = [(1, "e", 5, "keep"), (2, "f", 6, "keep"), (3, "d", 4, "keep")]
    if mode == "upsert":
        expected.append((9, "h", 8, "default"))
    assert content(db, schema) == expected
    assert result.duplicates_resolved == 4
    assert result.rows_affected == len(expected)


@pytest.mark.parametrize("mode", ["update", "upsert"])
def test_duplicate_keys_across_chunks_last_row_wins(
    mode: Mode, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """A key repeated in later chunks of the same write ends with the last row's values."""
    items(db, schema, rows=3)
    frame = pd.DataFrame({"id": [1, 2, 1, 3, 1, 2, 1], "name": list("abcdefg")})

    result = writer.write(
        "items", frame, mode=mode, key_columns=["id"], schema=schema, chunk_size=2
    )

    assert [r[:2] for r in content(db, schema)] == [(1, "g"), (2, "f"), (3, "d")]
    assert result.chunks == 4


@pytest.mark.parametrize("mode", ["update", "upsert"])
def test_composite_keys_match_on_all_key_columns(
    mode: Mode, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """Rows are matched on every key column together; duplicates of the pair are resolved."""
    db.execute(
        f'CREATE TABLE "{schema}".daily (region text, day date, value int, '
        "PRIMARY KEY (region, day))"
    )
    db.execute(
        f'INSERT INTO "{schema}".daily VALUES '
        "('eu', '2024-01-01', 1), ('eu', '2024-01-02', 2), ('us', '2024-01-01', 3)"
    )
    days = pd.to_datetime(["2024-01-02", "2024-01-01", "2024-01-02", "2024-01-01", "2024-01-02"])
    frame = pd.DataFrame(
        {
            "value": [20, 30, 21, 99, 40],
            "day": [d.date() for d in days],
            "region": ["eu", "us", "eu", "asia", "us"],
        }
    )

    result = writer.write("daily", frame, mode=mode, key_columns=["day", "region"], schema=schema)

    got = {
        (r["region"], str(r["day"])): r["value"]
        for r in db.fetch(f'SELECT * FROM "{schema}".daily')
    }
    expected = {("eu", "2024-01-01"): 1, ("eu", "2024-01-02"): 21, ("us", "2024-01-01"): 30}
    if mode == "upsert":
        expected |= {("asia", "2024-01-01"): 99, ("us", "2024-01-02"): 40}
    assert got == expected
    assert result.duplicates_resolved == 1
    assert result.rows_affected == (4 if mode == "upsert" else 2)


def test_upsert_without_a_unique_index_on_the_keys_is_a_schema_mismatch(
    writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """Upsert needs a primary key or unique index on exactly the key columns: a plain index, a
    unique index on more columns or a partial unique index is refused before writing."""
    db.execute(
        f'CREATE TABLE "{schema}".loose (id int, name text, qty int);'
        f'CREATE INDEX ON "{schema}".loose (id);'
        f'CREATE UNIQUE INDEX ON "{schema}".loose (id, name);'
        f'CREATE UNIQUE INDEX ON "{schema}".loose (name) WHERE qty > 0;'
        f"INSERT INTO \"{schema}\".loose VALUES (1, 'a', 1)"
    )
    frame = pd.DataFrame({"id": [1, 2], "name": ["x", "y"], "qty": [5, 6]})
    for key in (["id"], ["name"]):
        with pytest.raises(SchemaMismatchError) as info:
            writer.write("loose", frame, mode="upsert", key_columns=key, schema=schema)
        assert f"{schema}.loose" in str(info.value)
        assert key[0] in str(info.value)
    assert content(db, schema, "loose") == [(1, "a", 1)]


def test_upsert_on_a_deferrable_unique_constraint_is_a_schema_mismatch(
    writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """ON CONFLICT cannot use a DEFERRABLE unique constraint as its arbiter: when that is the
    only unique key on the key columns, the upsert is refused as a SchemaMismatchError (like
    no unique index at all), and nothing is written."""
    db.execute(
        f'CREATE TABLE "{schema}".deferred (id int, name text, '
        "CONSTRAINT deferred_id UNIQUE (id) DEFERRABLE INITIALLY IMMEDIATE)"
    )
    db.execute(f"INSERT INTO \"{schema}\".deferred VALUES (1, 'a')")
    frame = pd.DataFrame({"id": [1, 2], "name": ["x", "y"]})

    with pytest.raises(SchemaMismatchError, match="id"):
        writer.write("deferred", frame, mode="upsert", key_columns=["id"], schema=schema)

    assert content(db, schema, "deferred") == [(1, "a")]


@pytest.mark.parametrize("mode", ["update", "upsert"])
def test_update_and_upsert_need_key_columns(
    mode: Mode, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """Without key_columns, or with a key that is not in the data, nothing is written."""
    items(db, schema, rows=2)
    frame = pd.DataFrame({"id": [1], "name": ["x"]})
    with pytest.raises(SchemaMismatchError):
        writer.write("items", frame, mode=mode, schema=schema)
    with pytest.raises(SchemaMismatchError, match="qty"):
        writer.write("items", frame, mode=mode, key_columns=["qty"], schema=schema)
    assert content(db, schema) == [(1, "old1", 1, "keep"), (2, "old2", 2, "keep")]


# -- multi-row INSERT and the bind-parameter limit ---------------------------------------------


@pytest.mark.parametrize(("width", "rows"), [(40, 2_000), (1, 40_000), (300, 250)])
@pytest.mark.parametrize("mode", ["insert", "executemany"])
def test_wide_inserts_stay_under_the_bind_parameter_limit(
    mode: Mode, width: int, rows: int, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """width * rows is far above 32,767 bind parameters: the write succeeds, every value is
    stored (checked by a per-column sum)."""
    names = [f"c{i}" for i in range(width)]
    db.execute(f'CREATE TABLE "{schema}".wide ({", ".join(f"{n} bigint" for n in names)})')
    data = np.arange(rows * width, dtype=np.int64).reshape(rows, width)
    frame = pd.DataFrame(data, columns=names)

    result = writer.write("wide", frame, mode=mode, schema=schema)

    assert result.rows == rows
    sums = db.fetch(
        f"SELECT count(*) AS n, {', '.join(f'sum({n})::bigint AS {n}' for n in names)} "
        f'FROM "{schema}".wide'
    )[0]
    assert sums["n"] == rows
    assert [sums[n] for n in names] == data.sum(axis=0).tolist()


# -- commit="chunk" vs commit="write" ----------------------------------------------------------

CHUNK = 1_000
FAILING_ROW = 2_345  # inside chunk 3 of 5


def ledger(db: Any, schema: str, mode: Mode) -> None:
    """ledger(id PK, amount CHECK >= 0, memo); update/upsert find ids 0..4999 already there."""
    db.execute(
        f'CREATE TABLE "{schema}".ledger '
        "(id int PRIMARY KEY, amount int CHECK (amount >= 0), memo text)"
    )
    if mode in ("update", "upsert"):
        db.execute(
            f"INSERT INTO \"{schema}\".ledger SELECT g, 0, 'before' "
            f"FROM generate_series(0, {5 * CHUNK - 1}) g"
        )


def ledger_frame(bad: str) -> pd.DataFrame:
    ids = np.arange(5 * CHUNK)
    frame = pd.DataFrame(
        {"id": ids, "amount": ids + 1, "memo": pd.Series([f"m{i}" for i in ids], dtype=object)}
    )
    if bad == "client":
        frame.loc[FAILING_ROW, "memo"] = "nul\x00byte"
    else:
        frame.loc[FAILING_ROW, "amount"] = -1  # the CHECK constraint fails on the server
    return frame


@pytest.mark.parametrize("bad", ["client", "server"])
@pytest.mark.parametrize("mode", MODES)
def test_commit_chunk_keeps_the_chunks_before_a_failing_one(
    mode: Mode, bad: str, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """commit="chunk": chunk 3 of 5 fails, chunks 1 and 2 (2,000 rows) stay committed, chunk 3
    and later are not written, and the error says how many rows were committed."""
    ledger(db, schema, mode)

    with pytest.raises(BadValueError) as info:
        writer.write(
            "ledger",
            ledger_frame(bad),
            mode=mode,
            key_columns=["id"],
            schema=schema,
            chunk_size=CHUNK,
            commit="chunk",
        )

    written = db.fetch(f"SELECT id FROM \"{schema}\".ledger WHERE memo <> 'before' ORDER BY id")
    assert [r["id"] for r in written] == list(range(2 * CHUNK))
    message = str(info.value)
    assert "committed" in message
    assert re.search(r"\b2,?000 rows\b", message), message


@pytest.mark.parametrize("bad", ["client", "server"])
@pytest.mark.parametrize("mode", MODES)
def test_commit_write_keeps_nothing_when_a_chunk_fails(
    mode: Mode, bad: str, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """Default commit="write": chunk 3 of 5 fails and not one row of chunks 1 and 2 stays."""
    ledger(db, schema, mode)
    before = content(db, schema, "ledger")

    with pytest.raises(BadValueError):
        writer.write(
            "ledger",
            ledger_frame(bad),
            mode=mode,
            key_columns=["id"],
            schema=schema,
            chunk_size=CHUNK,
        )

    assert content(db, schema, "ledger") == before


@pytest.mark.parametrize("mode", MODES)
def test_commit_chunk_writes_everything_when_nothing_fails(
    mode: Mode, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """commit="chunk" with good data stores every row and counts every chunk."""
    ledger(db, schema, mode)
    frame = ledger_frame("client")
    frame.loc[FAILING_ROW, "memo"] = "fine"

    result = writer.write(
        "ledger",
        frame,
        mode=mode,
        key_columns=["id"],
        schema=schema,
        chunk_size=CHUNK,
        commit="chunk",
    )

    assert result.chunks == 5
    assert result.rows == result.rows_affected == 5 * CHUNK
    total = db.fetchval(f'SELECT sum(amount) FROM "{schema}".ledger')
    assert total == int(frame["amount"].sum())


# -- WriteResult --------------------------------------------------------------------------------


@pytest.mark.parametrize("commit", ["write", "chunk"])
@pytest.mark.parametrize("mode", MODES)
def test_write_result_reports_the_write(
    mode: Mode, commit: Commit, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """rows, rows_affected, chunks, seconds, rows_per_second, mode, table ("schema.name"),
    columns, created and attempts describe what happened."""
    items(db, schema, rows=0)
    if mode == "update":
        db.execute(f'INSERT INTO "{schema}".items (id) SELECT generate_series(0, 2499)')
    frame = pd.DataFrame({"id": np.arange(2_500), "qty": np.arange(2_500) % 7})

    result = writer.write(
        "items",
        frame,
        mode=mode,
        key_columns=["id"],
        schema=schema,
        chunk_size=1_000,
        commit=commit,
    )

    assert result.table == f"{schema}.items"
    assert result.mode == mode
    assert result.rows == 2_500
    assert result.rows_affected == 2_500
    assert result.chunks == math.ceil(2_500 / 1_000)
    assert result.seconds > 0
    assert result.rows_per_second == pytest.approx(2_500 / result.seconds)
    assert result.columns == ("id", "qty")
    assert result.created is False
    assert result.attempts == 1
    assert result.duplicates_resolved == 0
    assert db.fetchval(f'SELECT sum(qty) FROM "{schema}".items') == int(frame["qty"].sum())


def test_write_result_names_the_resolved_schema_for_an_unqualified_table(
    search_path_dsn: str, db: Any, schema: str
) -> None:
    """A table named without schema= is reported as "schema.name" as the server resolved it."""
    items(db, schema, rows=0)
    with PostgresBulkWriter(dsn=search_path_dsn) as writer:
        result = writer.write("items", pd.DataFrame({"id": [1, 2]}))
    assert result.table == f"{schema}.items"
    assert result.rows == 2


@pytest.mark.parametrize("mode", ["update", "upsert"])
def test_staged_write_names_the_row_the_server_refused(
    mode: Mode, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """The whole write is applied in one statement; when the server refuses a row, the row
    is found among those applied (a bad row overridden by a later one for its key is not)."""
    db.execute(f'CREATE TABLE "{schema}".c (id int PRIMARY KEY, v int CHECK (v >= 0))')
    db.execute(f'INSERT INTO "{schema}".c SELECT g, 0 FROM generate_series(1, 20) g')
    frame = pd.DataFrame({"id": list(range(1, 16)), "v": [1] * 15})
    frame.loc[4, "v"] = -1  # id 5, overridden by row 15 below: last row wins, not an error
    frame = pd.concat([frame, pd.DataFrame({"id": [5], "v": [2]})], ignore_index=True)
    ok = writer.write("c", frame, schema=schema, mode=mode, key_columns=["id"], chunk_size=4)
    assert ok.duplicates_resolved == 1
    assert db.fetchval(f'SELECT v FROM "{schema}".c WHERE id = 5') == 2
    frame.loc[11, "v"] = -7  # id 12, chunk 3
    before = content(db, schema, "c")
    with pytest.raises(BadValueError) as caught:
        writer.write("c", frame, schema=schema, mode=mode, key_columns=["id"], chunk_size=4)
    assert caught.value.row == 11 and "c_v_check" in str(caught.value)
    assert content(db, schema, "c") == before


# -- replace of a whole table: COPY FREEZE -------------------------------------------------------


def _pages_dirtied_by_first_scan(db: Any, schema: str, table: str) -> int:
    """Buffers the first read of the table dirties: a read that finds committed rows without
    their hint bits sets them, dirtying every page; frozen, all-visible rows need nothing."""
    plan = db.fetchval(
        f'EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT count(*) FROM "{schema}"."{table}"'
    )
    return int(json.loads(plan)[0]["Plan"]["Shared Dirtied Blocks"])


def test_replace_of_a_whole_table_loads_rows_frozen(
    writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    frame = pd.DataFrame({"id": np.arange(20_000), "v": np.arange(20_000) % 13})
    for table in ("appended", "replaced"):
        db.execute(f'CREATE TABLE "{schema}"."{table}" (id bigint PRIMARY KEY, v int)')
        db.execute(f'INSERT INTO "{schema}"."{table}" VALUES (-1, 0)')
    writer.write("appended", frame, schema=schema)
    result = writer.write("replaced", frame, schema=schema, replace=True)

    # Written out, so that a page the scan changes counts as dirtied by the scan.
    db.execute("CHECKPOINT")
    assert _pages_dirtied_by_first_scan(db, schema, "appended") > 10
    assert _pages_dirtied_by_first_scan(db, schema, "replaced") == 0
    assert result.rows == 20_000
    assert content(db, schema, "replaced") == [(i, i % 13) for i in range(20_000)]


@pytest.mark.parametrize("on_bad_rows", ["fail", "quarantine"])
def test_replace_where_freeze_is_not_allowed_still_replaces(
    on_bad_rows: OnBadRows, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """PostgreSQL refuses COPY FREEZE on a partitioned table, and quarantine sends its chunks
    in savepoints, where the TRUNCATE is not in the current subtransaction."""
    db.execute(f'CREATE TABLE "{schema}".p (id int, v int) PARTITION BY RANGE (id)')
    db.execute(
        f'CREATE TABLE "{schema}".p_low PARTITION OF "{schema}".p FOR VALUES FROM (0) TO (50)'
    )
    db.execute(
        f'CREATE TABLE "{schema}".p_high PARTITION OF "{schema}".p FOR VALUES FROM (50) TO (100)'
    )
    db.execute(f'CREATE TABLE "{schema}".plain (id int PRIMARY KEY, v int)')
    frame = pd.DataFrame({"id": np.arange(100), "v": np.arange(100)})
    for table in ("p", "plain"):
        db.execute(f'INSERT INTO "{schema}"."{table}" VALUES (7, -1), (60, -1)')
        writer.write(table, frame, schema=schema, replace=True, on_bad_rows=on_bad_rows)
        assert content(db, schema, table) == [(i, i) for i in range(100)]


# -- serial and identity columns written with explicit values -----------------------------------


@pytest.mark.parametrize("commit", ["write", "chunk"])
@pytest.mark.parametrize("mode", ["copy", "executemany", "insert", "upsert"])
def test_explicit_ids_move_the_sequence_past_the_highest_and_never_back(
    mode: Mode, commit: Commit, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    db.execute(f'CREATE TABLE "{schema}".users (id bigserial PRIMARY KEY, name text, email text)')
    db.execute(
        f'CREATE TABLE "{schema}".ident (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, '
        "name text, email text)"
    )
    key_columns = ["id"] if mode == "upsert" else None
    for table in ("users", "ident"):

        def write(ids: list[int], table: str = table) -> None:
            frame = pd.DataFrame({"id": ids, "name": "n", "email": [f"{i}@x" for i in ids]})
            writer.write(
                table,
                frame,
                schema=schema,
                mode=mode,
                commit=commit,
                chunk_size=2,
                key_columns=key_columns,
            )

        def next_id(table: str = table) -> int:
            value: int = db.fetchval(
                f'INSERT INTO "{schema}"."{table}" (name) VALUES (\'default\') RETURNING id'
            )
            return value

        write([5, 300, 42])
        assert next_id() == 301
        write([7, 8])  # below the sequence: left where it is
        assert next_id() == 302


def test_data_without_the_serial_column_leaves_the_sequence_to_its_defaults(
    writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    db.execute(f'CREATE TABLE "{schema}".users (id bigserial PRIMARY KEY, name text, email text)')
    frame = pd.DataFrame({"name": ["a", "b", "c"], "email": ["a@x", "b@x", "c@x"]})
    writer.write("users", frame, schema=schema)
    assert content(db, schema, "users") == [(1, "a", "a@x"), (2, "b", "b@x"), (3, "c", "c@x")]
    next_id = db.fetchval(f"INSERT INTO \"{schema}\".users (name) VALUES ('d') RETURNING id")
    assert next_id == 4


def test_a_write_the_server_refuses_moves_no_sequence(
    writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    db.execute(
        f'CREATE TABLE "{schema}".users '
        "(id bigserial PRIMARY KEY, name text CHECK (name <> 'bad'))"
    )
    frame = pd.DataFrame({"id": [500, 9], "name": ["a", "bad"]})
    with pytest.raises(BadValueError):
        writer.write("users", frame, schema=schema)
    next_id = db.fetchval(f"INSERT INTO \"{schema}\".users (name) VALUES ('d') RETURNING id")
    assert next_id == 1


def test_a_restarted_sequence_ahead_of_the_data_is_left_alone(
    writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """After RESTART the sequence has not been called: its next value is the restart value,
    which is ahead of the ids written."""
    db.execute(f'CREATE TABLE "{schema}".a (id bigserial PRIMARY KEY, x int)')
    db.execute(f'ALTER SEQUENCE "{schema}".a_id_seq RESTART WITH 1000000')
    writer.write("a", pd.DataFrame({"id": [1, 2, 500], "x": 0}), schema=schema)
    assert db.fetchval(f'INSERT INTO "{schema}".a (x) VALUES (1) RETURNING id') == 1_000_000


def test_values_past_the_sequence_maxvalue_still_load_and_the_sequence_stops_there(
    writer: PostgresBulkWriter, db: Any, schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A serial later widened to bigint keeps its integer sequence (MAXVALUE 2**31 - 1)."""
    db.execute(f'CREATE TABLE "{schema}".b (id serial PRIMARY KEY, x int)')
    db.execute(f'ALTER TABLE "{schema}".b ALTER id TYPE bigint')
    with caplog.at_level("INFO"):
        result = writer.write("b", pd.DataFrame({"id": [3_000_000_000], "x": 0}), schema=schema)
    assert result.rows == 1
    assert db.fetchval(f'SELECT id FROM "{schema}".b') == 3_000_000_000
    assert "stopped at its MAXVALUE 2147483647" in caplog.text
    with pytest.raises(Exception, match="reached maximum value"):
        db.execute(f'INSERT INTO "{schema}".b (x) VALUES (1)')


def test_ids_past_2_to_the_53_advance_the_sequence_exactly(
    writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """An object column of Python ints with a None: read as float64 it would round. The
    column is nullable, with a sequence of its own (OWNED BY, as serial makes it)."""
    db.execute(f'CREATE SEQUENCE "{schema}".c_seq')
    db.execute(
        f'CREATE TABLE "{schema}".c (id bigint DEFAULT nextval(\'"{schema}".c_seq\'), x int)'
    )
    db.execute(f'ALTER SEQUENCE "{schema}".c_seq OWNED BY "{schema}".c.id')
    ids = pd.Series([2**53 + 1, None], dtype=object)
    writer.write("c", pd.DataFrame({"id": ids, "x": [0, 0]}), schema=schema)
    added = db.fetchval(f'INSERT INTO "{schema}".c (x) VALUES (1) RETURNING id')
    assert added == 2**53 + 2


def test_a_partition_or_a_default_drawing_from_a_shared_sequence_is_advanced(
    writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    db.execute(f'CREATE TABLE "{schema}".p (id bigserial, x int) PARTITION BY RANGE (id)')
    db.execute(
        f'CREATE TABLE "{schema}".p1 PARTITION OF "{schema}".p FOR VALUES FROM (1) TO (1000)'
    )
    db.execute(f'CREATE SEQUENCE "{schema}".shared')
    db.execute(
        f'CREATE TABLE "{schema}".s (id bigint DEFAULT nextval(\'"{schema}".shared\'), x int)'
    )
    writer.write("p1", pd.DataFrame({"id": [1, 40, 7], "x": 0}), schema=schema)
    writer.write("s", pd.DataFrame({"id": [1, 90], "x": 0}), schema=schema)
    assert db.fetchval(f'INSERT INTO "{schema}".p (x) VALUES (1) RETURNING id') == 41
    assert db.fetchval(f'INSERT INTO "{schema}".s (x) VALUES (1) RETURNING id') == 91
