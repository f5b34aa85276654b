"""Hostile identifiers: schema, table and column names holding quotes, SQL, spaces, upper
case, unicode and reserved words are used exactly as given in every mode (keys and
create=True included); the data round-trips and no other object is created or dropped."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from _support import KEYED, MODES

from resources import Mode, PostgresBulkWriter

HOSTILE = {
    "double-quote": 'we"ird',
    "sql-injection": "x; DROP TABLE y; --",
    "quote-injection": 'q"; DROP TABLE y; --',
    "space": "with space",
    "upper-case": "Users",
    "unicode": "ünï 表 😀",
    "reserved-select": "select",
    "reserved-order": "order",
    "apostrophe": "it's",
    "dot": "a.b",
    "dollar": "$1",
    "backslash": "back\\slash",
}


def q(name: str) -> str:
    """Quote an identifier for the test's own SQL."""
    return '"' + name.replace('"', '""') + '"'


def relations(db: Any, prefix: str) -> set[tuple[str, str, str]]:
    """(schema, name, kind) of every relation in the schemas whose name starts with
    ``prefix`` (the test's own), plus the sentinel check tables."""
    rows = db.fetch(
        "SELECT n.nspname, c.relname, c.relkind::text FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE starts_with(n.nspname, $1)",
        prefix,
    )
    return {(r[0], r[1], r[2]) for r in rows}


def sentinel(db: Any, schema: str) -> None:
    """Tables an injected ``DROP TABLE y`` or ``DROP TABLE "Users"`` would remove."""
    db.execute(f"CREATE TABLE {q(schema)}.y (id int); INSERT INTO {q(schema)}.y VALUES (42)")


def rows_of(db: Any, schema: str, table: str, order: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in db.fetch(f"SELECT * FROM {q(schema)}.{q(table)} ORDER BY {q(order)}")]


def prepare(db: Any, schema: str, table: str, columns: list[str], key: str, mode: Mode) -> None:
    """A table with ``columns`` (all text but ``key`` int primary key); update finds its keys."""
    defs = ", ".join(f"{q(c)} {'int PRIMARY KEY' if c == key else 'text'}" for c in columns)
    db.execute(f"CREATE TABLE {q(schema)}.{q(table)} ({defs})")
    if mode == "update":
        db.execute(f"INSERT INTO {q(schema)}.{q(table)} ({q(key)}) SELECT generate_series(0, 2)")


def frame_for(columns: list[str], key: str) -> pd.DataFrame:
    return pd.DataFrame(
        {c: [0, 1, 2] if c == key else [f"{c} {i}" for i in range(3)] for c in columns}
    )


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_table_names(
    name: str, mode: Mode, search_path_dsn: str, db: Any, schema: str
) -> None:
    """A table named with quotes, SQL, spaces, case, unicode or a reserved word is written as
    named (unqualified, through search_path); the sentinel tables survive and nothing else
    appears or disappears."""
    sentinel(db, schema)
    other = "users" if name == "Users" else "Users"
    db.execute(f"CREATE TABLE {q(schema)}.{q(other)} (id int)")
    db.execute(f"INSERT INTO {q(schema)}.{q(other)} VALUES (7)")
    prepare(db, schema, name, ["id", "v"], "id", mode)
    before = relations(db, schema)

    with PostgresBulkWriter(dsn=search_path_dsn) as writer:
        result = writer.write(
            name,
            frame_for(["id", "v"], "id"),
            mode=mode,
            key_columns=["id"] if mode in KEYED else None,
            chunk_size=2,
        )

    assert result.table == f"{schema}.{name}"
    assert rows_of(db, schema, name, "id") == [(0, "v 0"), (1, "v 1"), (2, "v 2")]
    assert relations(db, schema) == before
    assert db.fetchval(f"SELECT id FROM {q(schema)}.y") == 42
    assert db.fetchval(f"SELECT id FROM {q(schema)}.{q(other)}") == 7


@pytest.mark.parametrize("mode", MODES)
def test_hostile_column_names_including_keys(
    mode: Mode, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """Every hostile name as a column, one of them the key, plus a column named like the
    staging table's row-order column: all values land in the right columns."""
    sentinel(db, schema)
    key = HOSTILE["sql-injection"]
    columns = [*HOSTILE.values(), "bulk_row_order", "EXCLUDED", "t", "s"]
    prepare(db, schema, "cols", columns, key, mode)
    before = relations(db, schema)

    result = writer.write(
        "cols",
        frame_for(columns, key),
        mode=mode,
        schema=schema,
        key_columns=[key] if mode in KEYED else None,
        chunk_size=2,
    )

    assert result.columns == tuple(columns)
    got = db.fetch(f"SELECT * FROM {q(schema)}.cols ORDER BY {q(key)}")
    assert [dict(r) for r in got] == frame_for(columns, key).to_dict("records")
    assert relations(db, schema) == before
    assert db.fetchval(f"SELECT id FROM {q(schema)}.y") == 42


@pytest.mark.parametrize("mode", KEYED)
def test_hostile_composite_keys(
    mode: Mode, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """A composite key of a reserved word and a name with a quote and SQL matches rows."""
    keys = ["order", 'q"; DROP TABLE y; --']
    db.execute(
        f"CREATE TABLE {q(schema)}.{q('Mixed Case')} ({q(keys[0])} int, {q(keys[1])} text, "
        f"{q('sélect')} text, PRIMARY KEY ({q(keys[0])}, {q(keys[1])}))"
    )
    db.execute(f"INSERT INTO {q(schema)}.{q('Mixed Case')} VALUES (1, 'a', 'old'), (1, 'b', 'old')")
    frame = pd.DataFrame({keys[0]: [1, 1, 2], keys[1]: ["b", "b", "a"], "sélect": ["x", "y", "z"]})

    result = writer.write("Mixed Case", frame, mode=mode, key_columns=keys, schema=schema)

    expected = [(1, "a", "old"), (1, "b", "y")] + ([(2, "a", "z")] if mode == "upsert" else [])
    assert rows_of(db, schema, "Mixed Case", "sélect") == sorted(expected, key=lambda r: r[2])
    assert result.duplicates_resolved == 1


@pytest.fixture
def hostile_schemas(db: Any, schema: str) -> Iterator[dict[str, str]]:
    """Schemas named ``<test schema>`` + a hostile suffix, dropped afterwards."""
    names = {
        key: f"{schema}{suffix}"
        for key, suffix in {
            "double-quote": '_we"ird',
            "sql-injection": "; DROP TABLE y; --",
            "space-upper": " With Space",
            "unicode": "_ünï表",
            "dot": ".dot",
        }.items()
    }
    yield names
    for name in names.values():
        db.execute(f"DROP SCHEMA IF EXISTS {q(name)} CASCADE")


@pytest.mark.parametrize("mode", MODES)
def test_hostile_schema_names(
    mode: Mode, hostile_schemas: dict[str, str], writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """schema= is used as given, whatever it holds, and only the table in it is written."""
    sentinel(db, schema)
    for hostile in hostile_schemas.values():
        db.execute(f"CREATE SCHEMA {q(hostile)}")
        prepare(db, hostile, "select", ["id", "v"], "id", mode)
    before = relations(db, schema)

    for hostile in hostile_schemas.values():
        result = writer.write(
            "select",
            frame_for(["id", "v"], "id"),
            mode=mode,
            schema=hostile,
            key_columns=["id"] if mode in KEYED else None,
        )
        assert result.table == f"{hostile}.select"

    for hostile in hostile_schemas.values():
        assert rows_of(db, hostile, "select", "id") == [(0, "v 0"), (1, "v 1"), (2, "v 2")]
    assert relations(db, schema) == before
    assert db.fetchval(f"SELECT id FROM {q(schema)}.y") == 42


@pytest.mark.parametrize("mode", MODES)
def test_create_with_hostile_schema_table_and_column_names(
    mode: Mode, hostile_schemas: dict[str, str], writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """create=True makes exactly one table, with the names as given and the hostile key
    column as its primary key; nothing else is created or dropped."""
    sentinel(db, schema)
    target_schema = hostile_schemas["sql-injection"]
    db.execute(f"CREATE SCHEMA {q(target_schema)}")
    table = f'T "{uuid.uuid4().hex[:6]}"; DROP TABLE y; --'
    key = HOSTILE["quote-injection"]
    columns = [key, HOSTILE["reserved-order"], HOSTILE["unicode"], HOSTILE["upper-case"]]
    frame = pd.DataFrame({c: [0, 1, 2] if c == key else ["a", "b", "c"] for c in columns})
    before = relations(db, schema)

    result = writer.write(
        table, frame, mode=mode, schema=target_schema, key_columns=[key], create=True
    )

    assert result.created is True
    after = relations(db, schema)
    assert before <= after, "nothing was dropped"
    assert {(s, n) for s, n, kind in after - before if kind == "r"} == {(target_schema, table)}
    assert {kind for _, _, kind in after - before} <= {"r", "i"}
    attrs = db.fetch(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 "
        "ORDER BY attnum",
        f"{q(target_schema)}.{q(table)}",
    )
    assert [r["attname"] for r in attrs] == columns
    pk = db.fetch(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
        "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = to_regclass($1) AND i.indisprimary",
        f"{q(target_schema)}.{q(table)}",
    )
    assert [r["attname"] for r in pk] == [key]
    expected = [] if mode == "update" else [tuple(r) for r in frame.itertuples(index=False)]
    assert rows_of(db, target_schema, table, key) == expected
    assert db.fetchval(f"SELECT id FROM {q(schema)}.y") == 42


def test_upper_case_table_is_distinct_from_lower_case(
    writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """ "Users" and users are two tables: writing one leaves the other alone."""
    for name in ("Users", "users"):
        db.execute(f"CREATE TABLE {q(schema)}.{q(name)} (id int, who text)")

    writer.write("Users", pd.DataFrame({"id": [1], "who": ["upper"]}), schema=schema)
    assert rows_of(db, schema, "users", "id") == []
    writer.write("users", pd.DataFrame({"id": [2], "who": ["lower"]}), schema=schema)

    assert rows_of(db, schema, "Users", "id") == [(1, "upper")]
    assert rows_of(db, schema, "users", "id") == [(2, "lower")]


def test_upper_case_table_is_not_found_by_its_lower_case_name(
    writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """Names are not case-folded: with only "Users" present, writing "users" creates a
    separate table (create=True) instead of writing into "Users"."""
    db.execute(f"CREATE TABLE {q(schema)}.{q('Users')} (id int)")
    result = writer.write("users", pd.DataFrame({"id": [5]}), schema=schema, create=True)
    assert result.created is True
    assert rows_of(db, schema, "Users", "id") == []
    assert rows_of(db, schema, "users", "id") == [(5,)]
