"""Bad input not covered by test_errors.py: NULL markers into NOT NULL columns of every kind,
integer bounds on the negative side, numpy scalars of every kind, Decimal specials, mixed
object columns, replace=True with no rows, a long source error, the widest table PostgreSQL
allows, and 63-byte identifiers. Each failure names table, column and row, and leaves the
table as it was."""

from __future__ import annotations

import datetime as dt
import decimal
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from _support import KEYED, MODES, q

from resources import (
    BadValueError,
    KeyRange,
    Mode,
    PostgresBulkWriter,
    SchemaMismatchError,
    TerminalWriteError,
)

ROWS = 6
BAD_AT = 4  # with chunk_size=3: the second row of chunk 2


def snapshot(db: Any, schema: str, table: str = "t") -> list[tuple[Any, ...]]:
    return [tuple(r) for r in db.fetch(f"SELECT * FROM {q(schema)}.{q(table)} ORDER BY 1")]


def key_for(mode: Mode) -> list[str] | None:
    return ["id"] if mode in KEYED else None


def _table(db: Any, schema: str, sql_type: str, prefill: str) -> None:
    db.execute(f"CREATE TABLE {q(schema)}.t (id int PRIMARY KEY, v {sql_type})")
    db.execute(f"INSERT INTO {q(schema)}.t SELECT g, {prefill} FROM generate_series(0, 9) g")


def _write(writer: PostgresBulkWriter, schema: str, mode: Mode, column: pd.Series) -> Any:
    start = 0 if mode in KEYED else 100
    frame = pd.DataFrame({"id": range(start, start + len(column)), "v": column})
    return writer.write(
        "t", frame, schema=schema, mode=mode, key_columns=key_for(mode), chunk_size=3
    )


def _refused(
    writer: PostgresBulkWriter, db: Any, schema: str, mode: Mode, column: pd.Series, reason: str
) -> BadValueError:
    before = snapshot(db, schema)
    with pytest.raises(BadValueError) as caught:
        _write(writer, schema, mode, column)
    err = caught.value
    assert (err.table, err.column, err.row) == (f"{schema}.t", "v", BAD_AT), str(err)
    assert reason in str(err)
    assert snapshot(db, schema) == before
    return err


def _with_bad(good: Any, bad: Any, dtype: Any = object) -> pd.Series:
    values = [good] * ROWS
    values[BAD_AT] = bad
    return pd.Series(values, dtype=dtype)


NOT_NULL = {
    "int": ("integer NOT NULL", "0", 1),
    "text": ("text NOT NULL", "'x'", "fine"),
    "date": ("date NOT NULL", "current_date", dt.date(2024, 1, 1)),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("null", [np.nan, pd.NaT, pd.NA], ids=["NaN", "NaT", "pd.NA"])
@pytest.mark.parametrize("kind", NOT_NULL)
def test_null_markers_into_not_null_columns(
    kind: str, null: Any, mode: Mode, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    sql_type, prefill, good = NOT_NULL[kind]
    _table(db, schema, sql_type, prefill)
    _refused(writer, db, schema, mode, _with_bad(good, null), "NULL")


INT_EDGES = {
    "int2-below": ("smallint", -(2**15) - 1, np.int64),
    "int4-below": ("integer", -(2**31) - 1, np.int64),
    "int8-below-object": ("bigint", -(2**63) - 1, object),
    "int8-gets-uint64-2**63": ("bigint", 2**63, np.uint64),
    "int4-gets-uint32-max": ("integer", 2**32 - 1, np.uint32),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", INT_EDGES)
def test_integers_outside_the_column_range(
    case: str, mode: Mode, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    sql_type, bad, dtype = INT_EDGES[case]
    _table(db, schema, sql_type, "0")
    _refused(writer, db, schema, mode, _with_bad(1, bad, dtype), "range")


# numpy scalars of every kind in object columns: (column type, scalar, value read back).
SCALARS = {
    "int8": ("smallint", np.int8(-128), -128),
    "uint64": ("numeric(20, 0)", np.uint64(2**64 - 1), decimal.Decimal(2**64 - 1)),
    "float16": ("real", np.float16(1.5), 1.5),
    "float32": ("real", np.float32(0.25), 0.25),
    "float64": ("double precision", np.float64(-0.5), -0.5),
    "bool_": ("boolean", np.bool_(True), True),
    "datetime64": (
        "timestamp",
        np.datetime64("2024-05-01T12:30:00.000001"),
        dt.datetime(2024, 5, 1, 12, 30, 0, 1),
    ),
    "timedelta64": ("interval", np.timedelta64(90, "s"), dt.timedelta(seconds=90)),
    "str_": ("text", np.str_("numpy text ü"), "numpy text ü"),
    "bytes_": ("bytea", np.bytes_(b"\x01\x02"), b"\x01\x02"),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", SCALARS)
def test_numpy_scalars_in_object_columns_round_trip(
    kind: str, mode: Mode, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    sql_type, scalar, expected = SCALARS[kind]
    _table(db, schema, sql_type, "NULL")
    _write(writer, schema, mode, pd.Series([scalar, None], dtype=object))
    start = 0 if mode in KEYED else 100
    got = db.fetch(
        f"SELECT v FROM {q(schema)}.t WHERE id IN ($1, $2) ORDER BY id", start, start + 1
    )
    assert [r["v"] for r in got] == [expected, None]


@pytest.mark.parametrize("mode", ["copy", "upsert"])
def test_numpy_datetime64_with_nanoseconds_is_refused(
    mode: Mode, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    _table(db, schema, "timestamp", "NULL")
    bad = np.datetime64("2024-05-01T12:30:00.000000001")
    before = snapshot(db, schema)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pandas: "Discarding nonzero nanoseconds"
        try:
            _write(writer, schema, mode, _with_bad(np.datetime64("2024-05-01"), bad))
            refused = False
        except BadValueError:
            refused = True
    assert refused, "the nanoseconds were dropped without a word"
    assert snapshot(db, schema) == before


def test_numpy_datetime64_day_into_a_date_column(
    writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    _table(db, schema, "date", "NULL")
    _write(writer, schema, "copy", pd.Series([np.datetime64("2024-05-01", "D")], dtype=object))
    assert db.fetchval(f"SELECT v FROM {q(schema)}.t WHERE id = 100") == dt.date(2024, 5, 1)


@pytest.mark.parametrize("mode", MODES)
def test_decimal_specials(mode: Mode, writer: PostgresBulkWriter, db: Any, schema: str) -> None:
    """Decimal NaN is a NaN, so NULL (NOT NULL refuses it); ±Infinity fit an unconstrained
    numeric (PostgreSQL 14+) but not numeric(10, 2), where the server refuses them."""
    _table(db, schema, "numeric", "0")
    inf = pd.Series(
        [decimal.Decimal("Infinity"), decimal.Decimal("-Infinity"), decimal.Decimal("NaN")],
        dtype=object,
    )
    _write(writer, schema, mode, inf)
    start = 0 if mode in KEYED else 100
    got = db.fetch(
        f"SELECT v FROM {q(schema)}.t WHERE id >= $1 AND id < $2 ORDER BY id", start, start + 3
    )
    assert [r["v"] for r in got] == [
        decimal.Decimal("Infinity"),
        decimal.Decimal("-Infinity"),
        None,
    ]

    db.execute(f"DROP TABLE {q(schema)}.t")
    _table(db, schema, "numeric(10, 2) NOT NULL", "0")
    _refused(
        writer, db, schema, mode, _with_bad(decimal.Decimal(1), decimal.Decimal("NaN")), "NULL"
    )
    before = snapshot(db, schema)
    with pytest.raises(BadValueError) as caught:
        _write(writer, schema, mode, _with_bad(decimal.Decimal(1), decimal.Decimal("Infinity")))
    assert caught.value.table == f"{schema}.t"
    assert snapshot(db, schema) == before


MIXED = {
    "int-gets-str": ("integer", 1, "2", "expected an integer"),
    "int-gets-bool": ("integer", 1, True, "expected an integer"),
    "text-gets-int": ("text", "a", 5, "expected str"),
    "date-gets-str": ("date", dt.date(2024, 1, 1), "2024-01-02", "expected a date"),
    "bool-gets-int": ("boolean", True, 1, "expected bool"),
    "jsonb-gets-datetime": ("jsonb", {"a": 1}, {"when": dt.datetime(2024, 1, 1)}, "JSON"),
    "jsonb-gets-nan": ("jsonb", {"a": 1}, {"a": float("nan")}, "JSON"),
    "jsonb-nul-in-key": ("jsonb", {"a": 1}, {"a\x00": 1}, "NUL"),
    "jsonb-text-escaped-nul": ("jsonb", {"a": 1}, '{"a": "\\u0000"}', "NUL"),
    "char3-too-long-str-dtype": ("char(3)", "abc", "abcd", "limit is 3"),
    "timestamptz-gets-date": (
        "timestamptz",
        dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        dt.date(2024, 1, 1),
        "zone",
    ),
    "date-gets-aware": (
        "date",
        dt.date(2024, 1, 1),
        dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        "zone",
    ),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", MIXED)
def test_mixed_and_unserializable_values(
    case: str, mode: Mode, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    sql_type, good, bad, reason = MIXED[case]
    _table(db, schema, sql_type, "NULL")
    dtype = "str" if case.endswith("str-dtype") else object
    _refused(writer, db, schema, mode, _with_bad(good, bad, dtype), reason)


@pytest.mark.parametrize("mode", ["copy", "executemany", "insert"])
def test_replace_with_no_rows_empties_the_table(
    mode: Mode, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    _table(db, schema, "text", "'old'")
    result = writer.write(
        "t",
        pd.DataFrame({"id": pd.Series([], dtype="int64")}),
        schema=schema,
        mode=mode,
        replace=True,
    )
    assert result.rows == 0
    assert snapshot(db, schema) == []


def test_replace_that_fails_keeps_the_old_rows(
    writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    _table(db, schema, "integer", "7")
    before = snapshot(db, schema)
    with pytest.raises(BadValueError):
        writer.write(
            "t", pd.DataFrame({"id": [1, 2], "v": [1, 2**40]}), schema=schema, replace=True
        )
    assert snapshot(db, schema) == before


class LongError(RuntimeError):
    pass


@pytest.mark.parametrize("mode", MODES)
def test_source_error_with_a_10_kb_message_arrives_intact(
    mode: Mode, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    _table(db, schema, "integer", "0")
    message = "".join(f"{i:05d}|" for i in range(1_700))  # 10,200 characters
    before = snapshot(db, schema)

    start = 0 if mode in KEYED else 100

    def frames() -> Iterator[pd.DataFrame]:
        yield pd.DataFrame({"id": [start, start + 1], "v": [1, 2]})
        raise LongError(message)

    with pytest.raises(LongError) as caught:
        writer.write("t", frames(), schema=schema, mode=mode, key_columns=key_for(mode))
    assert str(caught.value) == message and len(message) > 10_000
    assert snapshot(db, schema) == before


WIDEST = 1_600  # PostgreSQL's limit on the columns of a table


@pytest.mark.parametrize("mode", ["copy", "executemany", "insert", "update", "upsert"])
def test_the_widest_table_postgresql_allows(
    mode: Mode, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """1,600 columns: every mode writes all 45 rows (a multi-row INSERT then carries one row
    per statement, each well under the 32,767 bind parameters the protocol allows)."""
    names = ["id"] + [f"c{i}" for i in range(1, WIDEST)]
    db.execute(
        f"CREATE TABLE {q(schema)}.wide (id int PRIMARY KEY, "
        + ", ".join(f"{n} int" for n in names[1:])
        + ")"
    )
    if mode == "update":
        db.execute(f"INSERT INTO {q(schema)}.wide (id) SELECT generate_series(0, 44)")
    frame = pd.DataFrame(np.arange(45 * WIDEST, dtype=np.int64).reshape(45, WIDEST), columns=names)
    frame["id"] = range(45)
    writer.write("wide", frame, schema=schema, mode=mode, key_columns=key_for(mode))
    total = db.fetchval(f"SELECT sum(c{WIDEST - 1}) FROM {q(schema)}.wide")
    assert total == int(frame[f"c{WIDEST - 1}"].sum())


LONG_NAMES = {
    "ascii-63": "n" * 63,
    "utf8-63-bytes": "é" * 31 + "x",  # 31 two-byte characters and one: 63 bytes
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", LONG_NAMES.values(), ids=LONG_NAMES.keys())
def test_63_byte_identifiers_for_schema_table_and_column(
    name: str, mode: Mode, dsn: str, db: Any
) -> None:
    assert len(name.encode()) == 63
    schema = name[:-1] + "s"
    db.execute(f"CREATE SCHEMA {q(schema)}")
    try:
        db.execute(f"CREATE TABLE {q(schema)}.{q(name)} (id int PRIMARY KEY, {q(name)} text)")
        if mode == "update":
            db.execute(f"INSERT INTO {q(schema)}.{q(name)} (id) VALUES (1), (2)")
        with PostgresBulkWriter(dsn=dsn) as writer:
            result = writer.write(
                name,
                pd.DataFrame({"id": [1, 2], name: ["a", "b"]}),
                schema=schema,
                mode=mode,
                key_columns=key_for(mode),
            )
        assert result.table == f"{schema}.{name}"
        rows = db.fetch(f"SELECT id, {q(name)} FROM {q(schema)}.{q(name)} ORDER BY id")
        assert [tuple(r) for r in rows] == [(1, "a"), (2, "b")]
    finally:
        db.execute(f"DROP SCHEMA {q(schema)} CASCADE")


# Two names sharing their first 63 bytes: PostgreSQL would truncate both to one table.
TOO_LONG = {
    "ascii-64-bytes": "a" * 63 + "1",
    "utf8-64-bytes": "é" * 32,  # 32 two-byte characters
}


@pytest.mark.parametrize("what", ["table", "schema", "column", "key"])
@pytest.mark.parametrize("name", TOO_LONG.values(), ids=TOO_LONG.keys())
def test_names_postgresql_would_truncate_are_refused_before_anything_is_sent(
    name: str, what: str, dsn: str, db: Any, schema: str
) -> None:
    db.execute(f"CREATE TABLE {q(schema)}.t (id int PRIMARY KEY, v text)")
    frame = pd.DataFrame({"id": [1], "v": ["a"]})
    app = f"long-{schema}"
    options: dict[str, Any] = {"schema": schema}
    table = "t"
    if what == "table":
        table = name
    elif what == "schema":
        options["schema"] = name
    elif what == "column":
        frame = frame.rename(columns={"v": name})
    else:
        options.update(mode="upsert", key_columns=[name])
    with (
        PostgresBulkWriter(dsn=dsn, application_name=app) as writer,
        pytest.raises((ValueError, SchemaMismatchError), match=r"64 bytes long") as caught,
    ):
        writer.write(table, frame, create=True, **options)
    assert name in str(caught.value)
    # Nothing was sent: no connection was even opened for the write.
    assert (
        db.fetchval("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", app) == 0
    )
    assert db.fetchval(f"SELECT count(*) FROM {q(schema)}.t") == 0


def test_generated_always_identity_takes_no_values_in_any_mode(
    writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """INSERT refuses explicit values for a GENERATED ALWAYS identity; COPY would have taken
    them silently. Every mode that inserts now refuses them alike, and the table is untouched
    (an update only matches on its key and may use the identity as one)."""
    db.execute(f"CREATE TABLE {q(schema)}.g (id int GENERATED ALWAYS AS IDENTITY, v text)")
    for mode in ("copy", "executemany", "insert", "upsert"):
        with pytest.raises(SchemaMismatchError, match=r"GENERATED ALWAYS identity.*\['id'\]"):
            writer.write(
                "g",
                pd.DataFrame({"id": [5], "v": ["x"]}),
                schema=schema,
                mode=mode,
                key_columns=key_for(mode),
            )
    assert db.fetchval(f"SELECT count(*) FROM {q(schema)}.g") == 0
    writer.write("g", pd.DataFrame({"v": ["x", "y"]}), schema=schema)
    assert [r["id"] for r in db.fetch(f"SELECT id FROM {q(schema)}.g ORDER BY id")] == [1, 2]


def test_a_replace_whose_old_rows_are_referenced_says_so(
    writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """The DELETE of the slice breaks a foreign key: no row of the new data is at fault, so
    it is not reported as a bad value at some row."""
    db.execute(f"CREATE TABLE {q(schema)}.p (id int PRIMARY KEY)")
    db.execute(f"INSERT INTO {q(schema)}.p VALUES (1), (2)")
    db.execute(f"CREATE TABLE {q(schema)}.c (p int REFERENCES {q(schema)}.p (id))")
    db.execute(f"INSERT INTO {q(schema)}.c VALUES (2)")
    with pytest.raises(TerminalWriteError, match=r"rows of it are still referenced") as caught:
        writer.write("p", pd.DataFrame({"id": [1, 2]}), schema=schema, replace=KeyRange("id", 1, 3))
    assert not isinstance(caught.value, BadValueError)
    assert "Key (id)=(2)" in str(caught.value)
    assert db.fetchval(f"SELECT count(*) FROM {q(schema)}.p") == 2
