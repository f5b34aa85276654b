"""A value the writer refuses, from a fetched file, is named by the file and its line (CSV,
JSON Lines) or its row group and row (Parquet), next to its row in the write."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _support import q
from conftest import Db
from test_fetch import Server, body
from test_fetch import server as server  # the HTTP server fixture, shared

from bulk_assets._fetch_errors import redact
from bulk_assets.fetch import Fetcher
from resources import BadValueError, KeyRange, PostgresBulkWriter, RowLocator


def _bad(writer: PostgresBulkWriter, table: str, data: object, schema: str) -> BadValueError:
    with pytest.raises(BadValueError) as caught:
        writer.write(table, data, schema=schema)
    return caught.value


def test_a_csv_value_is_named_by_its_line_with_quoted_newlines_before_it(
    tmp_path: Path, db: Db, schema: str, writer: PostgresBulkWriter
) -> None:
    path = tmp_path / "orders.csv"
    # Row 3 of the write is on line 8: row 1's note spans three lines, a blank line follows.
    path.write_text(
        "id,note,u\n"
        "1,plain,12345678-1234-5678-1234-567812345678\n"
        '2,"one\ntwo\nthree",12345678-1234-5678-1234-567812345678\n'
        "\n"
        "3,x,12345678-1234-5678-1234-567812345678\n"
        "4,y,x\n"
    )
    db.execute(f"CREATE TABLE {q(schema)}.orders (id int, note text, u uuid)")
    for chunk_rows in (2, 50_000):
        error = _bad(writer, "orders", Fetcher().batches(str(path), chunk_rows=chunk_rows), schema)
        assert error.row == 3
        assert error.column == "u"
        assert error.source == f"{path}, line 8"
        assert str(error) == (
            f"bad value at table {schema}.orders, column 'u', row 3 ({path}, line 8): "
            "invalid UUID string 'x' (column type uuid)"
        )


def test_a_csv_value_the_server_refuses_is_named_by_its_line(
    tmp_path: Path, db: Db, schema: str, writer: PostgresBulkWriter
) -> None:
    """A CHECK constraint: the writer finds the row from the server's COPY line."""
    path = tmp_path / "checked.csv"
    path.write_text('id,note\n1,"a\nb"\n2,ok\n-3,neg\n4,ok\n')
    db.execute(f"CREATE TABLE {q(schema)}.checked (id int CHECK (id > 0), note text)")
    error = _bad(writer, "checked", Fetcher().batches(str(path)), schema)
    assert error.row == 2
    assert error.source == f"{path}, line 5"
    assert f"row 2 ({path}, line 5)" in str(error)


def test_the_second_file_of_a_glob_is_named(
    tmp_path: Path, db: Db, schema: str, writer: PostgresBulkWriter
) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.csv").write_text("id,doc\n1,{}\n2,[]\n")
    (tmp_path / "in" / "b.csv").write_text('id,doc\n3,{}\n4,"{""a"": 1}"\n5,{bad\n')
    db.execute(f"CREATE TABLE {q(schema)}.docs (id int, doc jsonb)")
    error = _bad(writer, "docs", Fetcher().batches(str(tmp_path / "in" / "*.csv")), schema)
    assert error.row == 4
    assert error.source == f"{tmp_path / 'in' / 'b.csv'}, line 4"
    assert f"row 4 ({tmp_path / 'in' / 'b.csv'}, line 4)" in str(error)


def test_a_parquet_value_is_named_by_row_group_and_row_in_the_file_under_a_slice(
    tmp_path: Path, db: Db, schema: str, writer: PostgresBulkWriter
) -> None:
    """Rows the partition's slice skips do not shift the row named: it is the file's."""
    path = tmp_path / "x.parquet"
    ids = list(range(100))
    amounts = ["1.00"] * 100
    amounts[70] = "2.x"  # row group 2 (rows 60..89), row 70 of the file
    pq.write_table(pa.table({"id": ids, "amount": amounts}), path, row_group_size=30)
    db.execute(f"CREATE TABLE {q(schema)}.amounts (id int, amount numeric(10, 2))")
    within = KeyRange("id", 45, 95)
    for rows in (7, 1000):
        read = Fetcher().batches(str(path), chunk_rows=rows, within=within)
        error = _bad(writer, "amounts", read, schema)
        assert error.row == 25  # the 26th row kept (ids 45..)
        assert error.source == f"{path}, row group 2, row 70"
        assert str(error) == (
            f"bad value at table {schema}.amounts, column 'amount', row 25 ({path}, row "
            "group 2, row 70): expected a number, got str '2.x' (column type numeric(10,2))"
        )


def test_parquet_frames_and_batches_name_the_row_group_and_row(
    tmp_path: Path, db: Db, schema: str, writer: PostgresBulkWriter
) -> None:
    (tmp_path / "in").mkdir()
    first, second = tmp_path / "in" / "a.parquet", tmp_path / "in" / "b.parquet"
    pq.write_table(pa.table({"id": range(50), "n": [1] * 50}), first, row_group_size=20)
    big = [1] * 50
    big[33] = 2**40  # b.parquet: row group 1 (rows 20..39), row 33
    pq.write_table(pa.table({"id": range(50, 100), "n": big}), second, row_group_size=20)
    db.execute(f"CREATE TABLE {q(schema)}.counts (id int, n int4)")
    location = str(tmp_path / "in" / "*.parquet")
    within = KeyRange("id", 30, 100)
    for rows in (7, 1000):
        for read in (
            Fetcher().batches(location, chunk_rows=rows, within=within),
            lambda rows=rows: Fetcher().frames(location, chunk_rows=rows, within=within),
        ):
            error = _bad(writer, "counts", read, schema)
            assert error.row == 53  # ids 30.. kept: id 83 is the 54th
            assert error.source == f"{second}, row group 1, row 33"
            assert f"column 'n', row 53 ({second}, row group 1, row 33): " in str(error)


def test_frames_name_the_line_too(
    tmp_path: Path, db: Db, schema: str, writer: PostgresBulkWriter
) -> None:
    path = tmp_path / "f.csv"
    path.write_text('id,note,n\n1,"a\nb",1\n2,b,2\n3,c,99999999999\n')
    db.execute(f"CREATE TABLE {q(schema)}.f (id int, note text, n int4)")
    error = _bad(writer, "f", lambda: Fetcher().frames(str(path), chunk_rows=1), schema)
    assert error.row == 2
    assert error.column == "n"
    assert error.source == f"{path}, line 5"
    assert f"row 2 ({path}, line 5)" in str(error)


def test_frames_under_a_slice_name_the_line_in_the_file(
    tmp_path: Path, db: Db, schema: str, writer: PostgresBulkWriter
) -> None:
    path = tmp_path / "s.jsonl"
    lines = [f'{{"id": {i}, "n": {99999999999 if i == 7 else i}}}' for i in range(10)]
    path.write_text("\n".join(lines[:3]) + "\n\n" + "\n".join(lines[3:]) + "\n")
    db.execute(f"CREATE TABLE {q(schema)}.s (id int, n int4)")
    read = lambda: Fetcher().frames(str(path), chunk_rows=3, within=KeyRange("id", 5, 10))  # noqa: E731
    error = _bad(writer, "s", read, schema)
    assert error.row == 2  # ids 5, 6, 7
    assert error.source == f"{path}, line 9"  # the blank line 4 counts


def test_the_fetchers_iterators_are_row_locators(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("a\n1\n2\n")
    frames = Fetcher().frames(str(path))
    batches = Fetcher().batches(str(path))()
    try:
        assert isinstance(frames, RowLocator)
        assert isinstance(batches, RowLocator)
        assert sum(b.num_rows for b in batches) == 2
        assert batches.locate(1) == f"{path}, line 3"
        assert batches.locate(2) is None
    finally:
        frames.close()
        batches.close()


def test_rows_long_handed_out_are_forgotten(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text("a\n" + "".join(f"{i}\n" for i in range(200)))
    batches = Fetcher().batches(str(path), chunk_rows=1)()
    try:
        assert sum(b.num_rows for b in batches) == 200
        assert batches.locate(0) is None  # 200 chunks read: only the last ones are kept
        assert batches.locate(199) == f"{path}, line 201"
    finally:
        batches.close()


@pytest.mark.parametrize("mode", ["copy", "upsert"])
def test_rows_set_aside_name_their_line(
    tmp_path: Path, db: Db, schema: str, writer: PostgresBulkWriter, mode: str
) -> None:
    """Quarantine: a value the contract refuses, one a CHECK refuses and (upsert) one the
    apply refuses, each recorded with its file and line in front of the error."""
    path = tmp_path / "q.csv"
    path.write_text('id,note,u\n1,"a\nb",\n2,ok,x\n-3,ok,\n4,ok,\n')
    db.execute(
        f"CREATE TABLE {q(schema)}.q (id int PRIMARY KEY CHECK (id <> -3), note text, u uuid)"
    )
    result = writer.write(
        "q",
        Fetcher().batches(str(path)),
        schema=schema,
        mode=mode,  # type: ignore[arg-type]
        key_columns=["id"] if mode == "upsert" else None,
        on_bad_rows="quarantine",
    )
    assert result.rows_rejected == 2
    rejects = db.fetch(f"SELECT row_index, error FROM {q(schema)}.q__rejects ORDER BY row_index")
    assert [r["row_index"] for r in rejects] == [1, 2]
    assert rejects[0]["error"].startswith(f"{path}, line 4: "), rejects[0]["error"]
    assert rejects[1]["error"].startswith(f"{path}, line 5: "), rejects[1]["error"]


def test_with_commit_chunk_the_message_keeps_both_the_line_and_the_committed_rows(
    tmp_path: Path, db: Db, schema: str, writer: PostgresBulkWriter
) -> None:
    path = tmp_path / "c.csv"
    path.write_text("id,u\n1,\n2,\n3,x\n")
    db.execute(f"CREATE TABLE {q(schema)}.c (id int, u uuid)")
    with pytest.raises(BadValueError) as caught:
        writer.write("c", Fetcher().batches(str(path), chunk_rows=1), schema=schema, commit="chunk")
    assert str(caught.value) == (
        f"bad value at table {schema}.c, column 'u', row 2 ({path}, line 4): invalid UUID "
        "string 'x' (column type uuid); with commit='chunk', the 2 rows of the 2 chunk(s) "
        "before this one stay committed"
    )


def test_json_lines_through_batches_name_the_line(
    tmp_path: Path, db: Db, schema: str, writer: PostgresBulkWriter
) -> None:
    path = tmp_path / "j.jsonl"
    path.write_text('{"id": 1, "u": null}\n\n{"id": 2, "u": "x"}\n')
    db.execute(f"CREATE TABLE {q(schema)}.j (id int, u uuid)")
    error = _bad(writer, "j", Fetcher().batches(str(path)), schema)
    assert error.row == 1
    assert error.source == f"{path}, line 3"  # the blank line 2 counts
    assert f"column 'u', row 1 ({path}, line 3): " in str(error)


def test_a_url_is_named_with_its_credentials_masked(
    server: Server, db: Db, schema: str, writer: PostgresBulkWriter
) -> None:
    server.routes["/rows.csv"] = body(b"id,u\n1,\n2,x\n")
    url = server.url("/rows.csv", userinfo="reader:s3cret@") + "?token=s3cret"
    db.execute(f"CREATE TABLE {q(schema)}.web (id int, u uuid)")
    error = _bad(writer, "web", Fetcher().batches(url), schema)
    assert error.source == f"{redact(url)}, line 3"
    assert "s3cret" not in str(error) and "***" in str(error)
