"""on_bad_rows="quarantine": good rows load, bad ones (refused by the type contract or by the
server: type, NOT NULL, unique, check, foreign key) go to a rejects table with their error,
column and row, all in the write's one transaction."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

from resources import KeyRange, Mode, PostgresBulkWriter

MODES = ["copy", "executemany", "insert", "upsert"]


def accounts(db: Any, schema: str) -> None:
    db.execute(f'CREATE TABLE "{schema}".owners (id int PRIMARY KEY)')
    db.execute(f'INSERT INTO "{schema}".owners SELECT generate_series(1, 5)')
    db.execute(
        f'CREATE TABLE "{schema}".accounts ('
        "id int PRIMARY KEY, "
        "balance int NOT NULL CHECK (balance >= 0), "
        f'owner int REFERENCES "{schema}".owners (id), '
        "code varchar(4) UNIQUE)"
    )


def frame_with_bad_rows(rows: int = 300) -> tuple[pd.DataFrame, dict[int, str]]:
    """``rows`` good rows with some bad ones planted; returns the frame and the bad rows,
    each with the column that is wrong."""
    ids = list(range(1, rows + 1))
    frame = pd.DataFrame(
        {
            "id": ids,
            "balance": [float(i) for i in ids],
            "owner": [1 + i % 5 for i in ids],
            "code": [f"c{i}" for i in ids],
        }
    )
    frame["balance"] = frame["balance"].astype(object)
    bad = {
        7: "balance",  # 1.5 into int: the type contract (client side)
        100: "balance",  # -1: CHECK (server side)
        101: "owner",  # no such owner: FOREIGN KEY
        202: "code",  # 'c1' again: UNIQUE
        250: "code",  # 'toolong': varchar(4) (client side)
    }
    frame.loc[7, "balance"] = 1.5
    frame.loc[100, "balance"] = -1
    frame.loc[101, "owner"] = 99
    frame.loc[202, "code"] = "c1"
    frame.loc[250, "code"] = "toolong"
    return frame, bad


@pytest.mark.parametrize("mode", MODES)
def test_good_rows_load_and_bad_rows_are_set_aside(
    writer: PostgresBulkWriter, db: Any, schema: str, mode: Mode
) -> None:
    accounts(db, schema)
    frame, bad = frame_with_bad_rows()
    result = writer.write(
        "accounts",
        frame,
        schema=schema,
        mode=mode,
        key_columns=["id"] if mode == "upsert" else None,
        chunk_size=64,
        on_bad_rows="quarantine",
    )
    assert result.rows_rejected == len(bad)
    assert result.rows == len(frame) - len(bad)
    assert result.rejects_table == f"{schema}.accounts__rejects"
    stored = {r["id"] for r in db.fetch(f'SELECT id FROM "{schema}".accounts')}
    assert stored == {i + 1 for i in range(len(frame)) if i not in bad}
    rejects = db.fetch(
        f"SELECT target_table, row_index, column_name, error, sqlstate, row_data "
        f'FROM "{schema}".accounts__rejects ORDER BY row_index'
    )
    assert [r["row_index"] for r in rejects] == sorted(bad)
    assert all(r["target_table"] == f"{schema}.accounts" for r in rejects)
    by_row = {r["row_index"]: r for r in rejects}
    assert by_row[7]["column_name"] == "balance" and by_row[7]["sqlstate"] is None
    assert "1.5" in by_row[7]["error"]
    assert by_row[100]["sqlstate"] == "23514"  # check_violation
    assert by_row[101]["sqlstate"] == "23503"  # foreign_key_violation
    assert by_row[202]["sqlstate"] == "23505"  # unique_violation
    assert json.loads(by_row[250]["row_data"])["code"] == "toolong"


def test_without_quarantine_the_same_frame_fails_whole(
    writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    accounts(db, schema)
    frame, _ = frame_with_bad_rows()
    with pytest.raises(Exception, match="row 7"):
        writer.write("accounts", frame, schema=schema)
    assert db.fetchval(f'SELECT count(*) FROM "{schema}".accounts') == 0


def test_rejects_roll_back_with_a_write_that_fails(
    writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    accounts(db, schema)
    frame, _ = frame_with_bad_rows(120)

    def chunks() -> Iterator[pd.DataFrame]:
        yield frame.iloc[:110]
        raise RuntimeError("source gone")

    with pytest.raises(RuntimeError, match="source gone"):
        writer.write("accounts", chunks, schema=schema, on_bad_rows="quarantine")
    assert db.fetchval(f'SELECT count(*) FROM "{schema}".accounts') == 0
    assert db.fetchval(f"SELECT to_regclass('\"{schema}\".accounts__rejects')") is None


def test_custom_rejects_table_and_readable_row_data(
    writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    db.execute(f'CREATE TABLE "{schema}".notes (id int, body text NOT NULL, extra jsonb)')
    frame = pd.DataFrame(
        {
            "id": [1, 2, 3, 4],
            "body": ["fine", "nul\x00byte", None, "nan inside json"],
            "extra": [{"a": 1}, {"b": "\x00"}, {"c": "x"}, {"n": [float("nan")]}],
        }
    )
    result = writer.write(
        "notes", frame, schema=schema, on_bad_rows="quarantine", rejects_table="bad_notes"
    )
    assert (result.rows, result.rows_rejected) == (1, 3)
    assert result.rejects_table == f"{schema}.bad_notes"
    rows = db.fetch(f'SELECT row_index, row_data FROM "{schema}".bad_notes ORDER BY 1')
    assert [r["row_index"] for r in rows] == [1, 2, 3]
    assert json.loads(rows[0]["row_data"]) == {
        "id": 2,
        "body": "nul\\x00byte",
        "extra": {"b": "\\x00"},
    }
    assert json.loads(rows[1]["row_data"])["body"] is None
    assert json.loads(rows[2]["row_data"])["extra"] == {"n": [None]}


def test_rows_outside_a_replaced_range_are_set_aside(
    writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    db.execute(f'CREATE TABLE "{schema}".n (id int PRIMARY KEY)')
    frame = pd.DataFrame({"id": [1, 2, 50, 3]})
    result = writer.write(
        "n", frame, schema=schema, replace=KeyRange("id", 1, 10), on_bad_rows="quarantine"
    )
    assert result.rows_rejected == 1
    assert [r["id"] for r in db.fetch(f'SELECT id FROM "{schema}".n ORDER BY 1')] == [1, 2, 3]
    assert db.fetchval(f'SELECT row_index FROM "{schema}".n__rejects') == 2


def test_on_bad_rows_is_validated(writer: PostgresBulkWriter) -> None:
    with pytest.raises(ValueError, match="on_bad_rows must be"):
        writer.write("x", pd.DataFrame({"a": [1]}), on_bad_rows="skip")  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", MODES)
def test_rows_a_trigger_refuses_are_set_aside(
    writer: PostgresBulkWriter, db: Any, schema: str, mode: Mode
) -> None:
    """A trigger's RAISE EXCEPTION (SQLSTATE P0001) refuses one row: that row is quarantined
    like a constraint's refusal, not the whole write failed."""
    db.execute(f'CREATE TABLE "{schema}".t (id int PRIMARY KEY, v int)')
    db.execute(
        f'CREATE FUNCTION "{schema}".no_13() RETURNS trigger LANGUAGE plpgsql AS $$ '
        "BEGIN IF NEW.v = 13 THEN RAISE EXCEPTION 'unlucky %', NEW.id; END IF; "
        "RETURN NEW; END $$"
    )
    db.execute(
        f'CREATE TRIGGER no_13 BEFORE INSERT ON "{schema}".t '
        f'FOR EACH ROW EXECUTE FUNCTION "{schema}".no_13()'
    )
    frame = pd.DataFrame(
        {"id": range(20), "v": [13 if i in (4, 17) else 100 + i for i in range(20)]}
    )
    result = writer.write(
        "t",
        frame,
        schema=schema,
        mode=mode,
        key_columns=["id"] if mode == "upsert" else None,
        chunk_size=8,
        on_bad_rows="quarantine",
    )
    assert (result.rows, result.rows_rejected) == (18, 2)
    rejects = db.fetch(f'SELECT row_index, sqlstate, error FROM "{schema}".t__rejects ORDER BY 1')
    assert [(r["row_index"], r["sqlstate"]) for r in rejects] == [(4, "P0001"), (17, "P0001")]
    assert "unlucky 4" in rejects[0]["error"]
    assert db.fetchval(f'SELECT count(*) FROM "{schema}".t') == 18
