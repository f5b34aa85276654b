"""A failed write changes nothing, and its error says what, where and why.

Every bad value is caught in every mode as BadValueError naming the table, the column and the
0-based row of the whole write; data that does not fit the table is a SchemaMismatchError; a
value the server refuses (CHECK, UNIQUE) is a BadValueError that keeps the driver's exception
as ``__cause__``. After each failure the table holds exactly what it held before.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import numpy as np
import pandas as pd
import pytest
from _support import KEYED, MODES

from resources import BadValueError, Mode, PostgresBulkWriter, SchemaMismatchError

APPENDING = ["copy", "executemany", "insert"]


def snapshot(db: Any, schema: str, table: str = "t") -> list[tuple[Any, ...]]:
    """The whole content of a table, in a stable order."""
    return [tuple(r) for r in db.fetch(f'SELECT * FROM "{schema}"."{table}" ORDER BY 1')]


def key_for(mode: Mode) -> list[str] | None:
    return ["id"] if mode in KEYED else None


# -- a bad value inside chunk 3 of a 5-chunk write, in every mode ------------------------------

CHUNK = 1_000
BAD_ROW = 2_345  # chunk 3 (rows 2000..2999) of 5


def ledger(db: Any, schema: str) -> None:
    """t(id, amount int CHECK >= 0, memo text NOT NULL) pre-filled with ids 0..5999."""
    db.execute(
        f'CREATE TABLE "{schema}".t (id int PRIMARY KEY, amount int CHECK (amount >= 0), '
        "memo text NOT NULL)"
    )
    db.execute(
        f"INSERT INTO \"{schema}\".t SELECT g, g % 100, 'before ' || g "
        "FROM generate_series(0, 5999) g"
    )


def five_chunks(mode: Mode, kind: str) -> pd.DataFrame:
    """5,000 rows; update/upsert target existing ids, the appending modes new ones."""
    start = 0 if mode in KEYED else 10_000
    ids = np.arange(start, start + 5 * CHUNK)
    frame = pd.DataFrame(
        {
            "id": ids,
            "amount": np.arange(5 * CHUNK, dtype=np.int64),
            "memo": pd.Series([f"after {i}" for i in ids], dtype=object),
        }
    )
    if kind == "nul":
        frame.loc[BAD_ROW, "memo"] = "nul \x00 byte"
    elif kind == "overflow":
        frame.loc[BAD_ROW, "amount"] = 2**31
    elif kind == "null":
        frame.loc[BAD_ROW, "memo"] = None
    elif kind == "check":
        frame.loc[BAD_ROW, "amount"] = -5
    return frame


@pytest.mark.parametrize(
    ("kind", "column"), [("nul", "memo"), ("overflow", "amount"), ("null", "memo")]
)
@pytest.mark.parametrize("mode", MODES)
def test_bad_value_in_chunk_three_names_its_global_row_and_changes_nothing(
    mode: Mode, kind: str, column: str, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """The error's row is the 0-based index in the whole write (not in the chunk), its column
    and table are named, and the table content is exactly what it was before."""
    ledger(db, schema)
    before = snapshot(db, schema)

    with pytest.raises(BadValueError) as info:
        writer.write(
            "t",
            five_chunks(mode, kind),
            mode=mode,
            key_columns=key_for(mode),
            schema=schema,
            chunk_size=CHUNK,
        )

    err = info.value
    assert err.row == BAD_ROW
    assert err.column == column
    assert err.table == f"{schema}.t"
    assert f"row {BAD_ROW}" in str(err)
    assert f"{schema}.t" in str(err)
    assert repr(column) in str(err) or column in str(err)
    assert snapshot(db, schema) == before


@pytest.mark.parametrize("mode", MODES)
def test_value_refused_by_the_server_in_chunk_three_changes_nothing(
    mode: Mode, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """A CHECK violation found by the server: BadValueError with the driver's exception as
    __cause__; COPY reports the global row; other modes name the failing chunk's rows."""
    ledger(db, schema)
    before = snapshot(db, schema)

    with pytest.raises(BadValueError) as info:
        writer.write(
            "t",
            five_chunks(mode, "check"),
            mode=mode,
            key_columns=key_for(mode),
            schema=schema,
            chunk_size=CHUNK,
        )

    err = info.value
    assert isinstance(err.__cause__, asyncpg.CheckViolationError)
    assert err.table == f"{schema}.t"
    assert "t_amount_check" in str(err)
    if mode == "copy":
        assert err.row == BAD_ROW
    else:
        assert err.row in (None, BAD_ROW)
    if err.row is None:
        assert "rows 2000..2999" in str(err)
    assert snapshot(db, schema) == before


# -- bad input, value by value ------------------------------------------------------------------

ROWS = 10
BAD_AT = 7  # with chunk_size=4: the last row of chunk 2
AWARE = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
NAIVE = dt.datetime(2024, 5, 1, 12, 0)


@dataclass(frozen=True)
class Case:
    """A column type, a frame column of good values with one bad value at BAD_AT, and a word
    the error's reason must contain."""

    id: str
    sql_type: str
    good: Any
    bad: Any
    reason: str
    dtype: Any = object
    series: Callable[[], pd.Series] | None = None
    prefill: str = "NULL"  # the pre-filled rows' value (SQL)

    def column(self) -> pd.Series:
        if self.series is not None:
            return self.series()
        values = [self.good] * ROWS
        values[BAD_AT] = self.bad
        return pd.Series(values, dtype=self.dtype)


def _datetimes(tz: str | None, bad_tz: str | None) -> Callable[[], pd.Series]:
    """A datetime64 column, NaT up to BAD_AT, whose first value has the wrong zone."""

    def make() -> pd.Series:
        values = pd.Series(pd.NaT, index=range(ROWS), dtype="datetime64[us]")
        if bad_tz is not None:
            values = values.dt.tz_localize(bad_tz)
        values[BAD_AT:] = pd.Timestamp("2024-05-01 12:00", tz=bad_tz)
        return values

    return make


def _nat_at_bad_row() -> pd.Series:
    values = pd.Series(pd.Timestamp("2024-05-01"), index=range(ROWS))
    values[BAD_AT] = pd.NaT
    return values


CASES = [
    Case("nul-in-text-object", "text", "fine", "a\x00b", "NUL"),
    Case("nul-in-text-str-dtype", "text", "fine", "a\x00b", "NUL", dtype="str"),
    Case("nul-in-varchar-string-dtype", "varchar(10)", "fine", "a\x00b", "NUL", dtype="string"),
    Case("int4-gets-2**31", "integer", 1, 2**31, "range", dtype=np.int64),
    Case("int2-gets-40000", "smallint", 1, 40_000, "range", dtype=np.int64),
    Case("int2-gets-40000-nullable", "smallint", 1, 40_000, "range", dtype="Int64"),
    Case("int8-gets-2**63-object", "bigint", 1, 2**63, "range"),
    Case("int-gets-1.5-float-dtype", "integer", 1.0, 1.5, "1.5", dtype=np.float64),
    Case("int-gets-1.5-object", "integer", 1, 1.5, "1.5"),
    Case("int-gets-str-12", "integer", 1, "12", "'12'"),
    # A float column must not round an integer: float8 holds every integer up to 2**53,
    # float4 every integer up to 2**24.
    Case(
        "double-gets-2**53+1-int64",
        "double precision",
        1,
        2**53 + 1,
        "9007199254740993",
        dtype=np.int64,
    ),
    Case("double-gets-2**53+1-object", "double precision", 1, 2**53 + 1, "9007199254740993"),
    Case("real-gets-2**24+1-int64", "real", 1, 2**24 + 1, "16777217", dtype=np.int64),
    Case("real-gets-2**24+1-object", "real", 1, 2**24 + 1, "16777217"),
    Case("timestamp-gets-aware-object", "timestamp", NAIVE, AWARE, "zone"),
    Case(
        "timestamp-gets-aware-dtype",
        "timestamp",
        None,
        None,
        "zone",
        series=_datetimes(None, "UTC"),
    ),
    Case("timestamptz-gets-naive-object", "timestamptz", AWARE, NAIVE, "zone"),
    Case(
        "timestamptz-gets-naive-dtype",
        "timestamptz",
        None,
        None,
        "zone",
        series=_datetimes("UTC", None),
    ),
    Case(
        "not-null-gets-nat",
        "timestamp NOT NULL",
        None,
        None,
        "NULL",
        series=_nat_at_bad_row,
        prefill="now()",
    ),
    Case("not-null-gets-none", "text NOT NULL", "fine", None, "NULL", prefill="'x'"),
    Case(
        "not-null-gets-nan",
        "double precision NOT NULL",
        1.0,
        np.nan,
        "NULL",
        dtype=np.float64,
        prefill="1",
    ),
    Case("varchar-too-long", "varchar(5)", "abc", "abcdef", "limit is 5"),
    Case("invalid-uuid-string", "uuid", str(uuid.UUID(int=7)), "not-a-uuid", "not-a-uuid"),
    Case("json-with-a-set", "jsonb", {"a": 1}, {"a": {1, 2}}, "JSON"),
    Case("nul-in-jsonb-string", "jsonb", {"a": "x"}, {"a": "nul \x00"}, "NUL"),
    Case(
        "decimal-scale-over-numeric-10-2",
        "numeric(10, 2)",
        decimal.Decimal("1.25"),
        decimal.Decimal("1.234"),
        "1.234",
    ),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_value_is_refused_naming_table_column_and_row(
    case: Case, mode: Mode, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """Each value that would not survive the trip is a BadValueError naming the table, the
    column and the row (in the whole write), and nothing is written."""
    db.execute(f'CREATE TABLE "{schema}".t (id int PRIMARY KEY, v {case.sql_type}, note text)')
    db.execute(
        f"INSERT INTO \"{schema}\".t SELECT g, {case.prefill}, 'before ' || g "
        "FROM generate_series(0, 19) g"
    )
    before = snapshot(db, schema)
    start = 0 if mode in KEYED else 100
    frame = pd.DataFrame(
        {"id": range(start, start + ROWS), "v": case.column(), "note": ["after"] * ROWS}
    )

    with pytest.raises(BadValueError) as info:
        writer.write("t", frame, mode=mode, key_columns=key_for(mode), schema=schema, chunk_size=4)

    err = info.value
    message = str(err)
    assert (err.table, err.column, err.row) == (f"{schema}.t", "v", BAD_AT)
    assert f"{schema}.t" in message
    assert "'v'" in message
    assert f"row {BAD_AT}" in message
    assert case.reason in message
    assert snapshot(db, schema) == before


# -- data that does not fit the table ----------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_missing_required_and_extra_columns_are_listed_in_one_error(
    mode: Mode, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """A NOT NULL column without default missing from the data and a data column the table
    lacks are both named in one SchemaMismatchError (update needs no missing column: it sets
    only what it is given); nothing is written."""
    db.execute(
        f'CREATE TABLE "{schema}".t (id int PRIMARY KEY, required text NOT NULL, '
        "optional text, defaulted text NOT NULL DEFAULT 'd')"
    )
    db.execute(f"INSERT INTO \"{schema}\".t VALUES (1, 'r', 'o', 'x')")
    before = snapshot(db, schema)
    frame = pd.DataFrame({"id": [1, 2], "optional": ["a", "b"], "surplus": [1, 2]})

    with pytest.raises(SchemaMismatchError) as info:
        writer.write("t", frame, mode=mode, key_columns=key_for(mode), schema=schema)

    message = str(info.value)
    assert info.value.table == f"{schema}.t"
    assert f"{schema}.t" in message
    assert "surplus" in message
    if mode != "update":
        assert "required" in message
    assert "defaulted" not in message.split("table columns")[0]
    assert snapshot(db, schema) == before


@pytest.mark.parametrize("mode", MODES)
def test_unknown_table_is_a_schema_mismatch_unless_create(
    mode: Mode, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """Without create=True a missing table is a SchemaMismatchError naming it and nothing is
    made; with create=True it is created and the rows land in it."""
    frame = pd.DataFrame({"id": [1, 2, 3], "name": ["a", "b", "c"]})
    with pytest.raises(SchemaMismatchError) as info:
        writer.write("nowhere", frame, mode=mode, key_columns=["id"], schema=schema)
    assert f"{schema}.nowhere" in str(info.value)
    assert info.value.table == f"{schema}.nowhere"
    assert db.fetchval("SELECT to_regclass($1)", f'"{schema}".nowhere') is None

    result = writer.write(
        "nowhere", frame, mode=mode, key_columns=["id"], schema=schema, create=True
    )

    assert result.created is True
    assert db.fetchval("SELECT to_regclass($1)::text", f'"{schema}".nowhere') is not None
    rows = snapshot(db, schema, "nowhere")
    assert rows == ([] if mode == "update" else [(1, "a"), (2, "b"), (3, "c")])


@pytest.mark.parametrize("mode", MODES)
def test_unknown_schema_is_a_schema_mismatch(
    mode: Mode, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """A schema that does not exist is a SchemaMismatchError naming it; nothing is created."""
    missing = f"{schema}_missing"
    with pytest.raises(SchemaMismatchError) as info:
        writer.write("t", pd.DataFrame({"id": [1]}), mode=mode, key_columns=["id"], schema=missing)
    assert f"{missing}.t" in str(info.value)
    assert db.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = $1", missing) == 0


# -- values the server refuses ----------------------------------------------------------------


def uniques(db: Any, schema: str) -> None:
    """t(id PK, v int CHECK >= 0, u int UNIQUE) holding ids 0..19 with u = id."""
    db.execute(
        f'CREATE TABLE "{schema}".t (id int PRIMARY KEY, v int CHECK (v >= 0), u int UNIQUE, '
        "n numeric(5, 2))"
    )
    db.execute(f'INSERT INTO "{schema}".t SELECT g, g, g, 1 FROM generate_series(0, 19) g')


SERVER_CASES = {
    # kind: (column, bad value, driver exception)
    "check": ("v", -1, asyncpg.CheckViolationError),
    "unique-with-table-row": ("u", 15, asyncpg.UniqueViolationError),
    "unique-within-the-data": ("id", 102, asyncpg.UniqueViolationError),
    "numeric-precision": ("n", decimal.Decimal("1234.5"), asyncpg.NumericValueOutOfRangeError),
}


@pytest.mark.parametrize(
    ("kind", "mode"),
    [
        (kind, mode)
        for kind in SERVER_CASES
        for mode in MODES
        # update and upsert resolve a key repeated in the data (the last row wins)
        if not (kind == "unique-within-the-data" and mode in KEYED)
    ],
)
def test_server_side_violation_is_a_bad_value_keeping_the_driver_error(
    kind: str, mode: Mode, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """A CHECK or UNIQUE violation (or a numeric the column cannot hold) raised by the server
    is a BadValueError with the asyncpg exception as __cause__; COPY names the row from the
    server's context line; nothing is persisted."""
    column, bad, driver_error = SERVER_CASES[kind]
    uniques(db, schema)
    before = snapshot(db, schema)
    start = 0 if mode in KEYED else 100
    frame = pd.DataFrame(
        {
            "id": range(start, start + ROWS),
            "v": [1] * ROWS,
            "u": range(start + 1000, start + 1000 + ROWS),
            "n": pd.Series([decimal.Decimal("1.5")] * ROWS, dtype=object),
        }
    )
    frame[column] = frame[column].astype(object)
    frame.loc[BAD_AT, column] = bad

    with pytest.raises(BadValueError) as info:
        writer.write("t", frame, mode=mode, key_columns=key_for(mode), schema=schema, chunk_size=4)

    err = info.value
    assert isinstance(err.__cause__, driver_error), repr(err.__cause__)
    assert err.table == f"{schema}.t"
    assert f"{schema}.t" in str(err)
    if mode == "copy":
        assert err.row == BAD_AT
        assert f"row {BAD_AT}" in str(err)
    elif err.row is None:
        assert "rows 4..7" in str(err)
    else:
        assert err.row == BAD_AT
    assert snapshot(db, schema) == before


@pytest.mark.parametrize("create", [False, True], ids=["no-create", "create"])
def test_a_view_is_not_a_target_table(
    create: bool, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """A view under the target's name is a SchemaMismatchError naming it (with create=True
    too: no table can be made under that name); nothing is created."""
    db.execute(f'CREATE VIEW "{schema}".v AS SELECT 1 AS x')
    with pytest.raises(SchemaMismatchError) as info:
        writer.write("v", pd.DataFrame({"x": [1]}), schema=schema, create=create)
    assert f"{schema}.v" in str(info.value)
    kinds = db.fetch(
        "SELECT c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = $1",
        schema,
    )
    assert [r[0] for r in kinds] == ["v"]


@pytest.mark.parametrize("mode", ["copy", "executemany", "insert"])
def test_error_raised_by_a_trigger_names_the_row_or_its_chunk(
    mode: Mode, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """A trigger's own context ("PL/pgSQL function ... line 4") is not taken for the row: COPY
    names the row; the other modes, which the server cannot point into, name the chunk's rows."""
    db.execute(f'CREATE TABLE "{schema}".checked (id int, v int)')
    db.execute(
        f'CREATE FUNCTION "{schema}".no_fives() RETURNS trigger LANGUAGE plpgsql AS $$\n'
        "BEGIN\n"
        "  IF NEW.v = 5 THEN\n"
        "    RAISE EXCEPTION 'no fives' USING ERRCODE = '23514';\n"
        "  END IF;\n"
        "  RETURN NEW;\n"
        "END $$"
    )
    db.execute(
        f'CREATE TRIGGER no_fives BEFORE INSERT ON "{schema}".checked '
        f'FOR EACH ROW EXECUTE FUNCTION "{schema}".no_fives()'
    )
    frame = pd.DataFrame({"id": range(8), "v": range(8)})
    with pytest.raises(BadValueError) as caught:
        writer.write("checked", frame, schema=schema, mode=mode, chunk_size=4)
    if mode == "copy":
        assert caught.value.row == 5
    else:
        assert caught.value.row is None
        assert "rows 4..7" in str(caught.value)
    assert db.fetchval(f'SELECT count(*) FROM "{schema}".checked') == 0


def test_interval_keeps_microseconds_and_refuses_nanoseconds(
    writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    db.execute(f'CREATE TABLE "{schema}".spans (d interval)')
    good = pd.DataFrame({"d": pd.to_timedelta(["1 days 00:00:01.000002", None])})
    writer.write("spans", good, schema=schema)
    stored = [r["d"] for r in db.fetch(f'SELECT d FROM "{schema}".spans ORDER BY d')]
    assert stored == [dt.timedelta(days=1, seconds=1, microseconds=2), None]
    bad = pd.DataFrame({"d": [pd.Timedelta(1500, unit="ns")]})
    with pytest.raises(BadValueError) as caught:
        writer.write("spans", bad, schema=schema)
    assert caught.value.column == "d" and caught.value.row == 0
    assert "nanoseconds" in str(caught.value)
    assert db.fetchval(f'SELECT count(*) FROM "{schema}".spans') == 2


@pytest.mark.parametrize("mode", ["executemany", "insert"])
def test_a_value_the_driver_cannot_encode_names_its_column_and_row(
    mode: Mode, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """inet has no check of ours: the driver refuses 'x' before sending, and its message
    names the bind parameter, which becomes the column and the row of the whole write."""
    db.execute(f'CREATE TABLE "{schema}".hosts (id int, addr inet)')
    addrs = [f"10.0.{i // 250}.{i % 250}" for i in range(3_000)]
    addrs[2_345] = "x"
    frame = pd.DataFrame({"id": range(3_000), "addr": addrs})
    with pytest.raises(BadValueError) as caught:
        writer.write("hosts", frame, schema=schema, mode=mode, chunk_size=1_000)
    assert (caught.value.column, caught.value.row) == ("addr", 2_345)
    assert db.fetchval(f'SELECT count(*) FROM "{schema}".hosts') == 0
