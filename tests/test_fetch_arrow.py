"""``Fetcher.batches``: CSV parsed by the target table's column types, as the server's own CSV
COPY parses it; missing values as people write them; a bad value named by its line."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
from pathlib import Path
from typing import Any

import asyncpg
import pyarrow as pa
import pytest
from _support import q

from bulk_assets.fetch import Fetcher, FetchError
from resources import PostgresBulkWriter

COLUMNS = (
    "(id int, flag boolean, amount numeric, price numeric(10, 2), at timestamptz, "
    "naive timestamp, day date, u uuid, doc jsonb, name text, n bigint, x double precision)"
)
# Every spelling below means the same to PostgreSQL's CSV COPY and to the reader.
CSV = (
    "id,flag,amount,price,at,naive,day,u,doc,name,n,x\n"
    "1,t,1.50,3.1,2026-01-02 03:04:05+02,2026-01-02 03:04:05.25,2026-01-02,"
    '12345678-1234-5678-1234-567812345678,"{""a"": [1, 2]}",plain,9007199254740993,1.5\n'
    '2,FALSE,-0.001,-7,2026-01-02T03:04:05Z,2026-01-02T00:00:00,1999-12-31,,,"two\nlines",,-2e3\n'
    "3,yes,123456789012345678901234567890.5,,,,,,,,-1,\n"
    '4,0,0,0.5,2026-06-30 23:59:59.999999+00:00,,,,[],"",0,0\n'
)


def _run(dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    async def go() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(dsn)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    return asyncio.run(go())


def _server_copy(dsn: str, table: str, data: bytes) -> None:
    async def go() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.copy_to_table(
                table.split(".")[1].strip('"'),
                schema_name=table.split(".")[0].strip('"'),
                source=io.BytesIO(data),
                format="csv",
                header=True,
            )
        finally:
            await conn.close()

    asyncio.run(go())


def test_a_csv_loads_as_the_servers_csv_copy_loads_it(
    tmp_path: Path, dsn: str, schema: str, writer: PostgresBulkWriter
) -> None:
    path = tmp_path / "rows.csv"
    path.write_text(CSV)
    for table in ("ours", "server"):
        _run(dsn, f"CREATE TABLE {q(schema)}.{table} {COLUMNS}")
    result = writer.write("ours", Fetcher().batches(str(path)), schema=schema)
    assert result.rows == 4
    _server_copy(dsn, f"{q(schema)}.server", CSV.encode())
    ours = _run(dsn, f"SELECT * FROM {q(schema)}.ours ORDER BY id")
    theirs = _run(dsn, f"SELECT * FROM {q(schema)}.server ORDER BY id")
    assert [tuple(map(repr, r.values())) for r in ours] == [
        tuple(map(repr, r.values())) for r in theirs
    ]
    # Exact numerics, with each value's own scale; 2**53 + 1 kept as an integer.
    assert [str(r["amount"]) for r in ours] == [
        "1.50",
        "-0.001",
        "123456789012345678901234567890.5",
        "0",
    ]
    assert ours[0]["n"] == 2**53 + 1


def test_missing_values_as_people_write_them(
    tmp_path: Path, dsn: str, schema: str, writer: PostgresBulkWriter
) -> None:
    path = tmp_path / "na.csv"
    path.write_text('id,n,name\n1,NA,NA\n2,NULL,"NA"\n3,,None\n4,n/a,#N/A\n5,5,x\n')
    _run(dsn, f"CREATE TABLE {q(schema)}.t (id int, n int, name text)")
    writer.write("t", Fetcher().batches(str(path)), schema=schema)
    rows = _run(dsn, f"SELECT n, name FROM {q(schema)}.t ORDER BY id")
    # A quoted "NA" is text, as in the server's CSV COPY.
    want = [(None, None), (None, "NA"), (None, None), (None, None), (5, "x")]
    assert [tuple(r) for r in rows] == want
    read = Fetcher().batches(str(path), null_values=[""], columns=["id", "name"])
    writer.write("t", read, schema=schema, replace=True)
    names = _run(dsn, f"SELECT name FROM {q(schema)}.t ORDER BY id")
    assert [r[0] for r in names] == ["NA", "NA", "None", "#N/A", "x"]


def test_an_integer_column_with_missing_values_is_created_as_an_integer(
    tmp_path: Path, dsn: str, schema: str, writer: PostgresBulkWriter
) -> None:
    path = tmp_path / "ints.csv"
    path.write_text("id,n\n1,NA\n2,\n3,9007199254740993\n4,N/A\n")
    batches = list(Fetcher().batches(str(path))())
    assert batches[0].schema.field("n").type == pa.int64()
    writer.write("made", Fetcher().batches(str(path)), schema=schema, create=True)
    types = _run(
        dsn,
        "SELECT data_type FROM information_schema.columns WHERE table_schema = $1 "
        "AND table_name = 'made' AND column_name = 'n'",
        schema,
    )
    assert types[0][0] == "bigint"
    assert _run(dsn, f"SELECT max(n) FROM {q(schema)}.made")[0][0] == 2**53 + 1


@pytest.mark.parametrize(
    ("body", "line", "column"),
    [
        ('id,flag,note\n1,t,a\n2,f,"quoted\nnewline"\n3,f,b\n4,maybe,c\n', 6, "flag"),
        ('id,flag,note\n1,t,a\n2,f,"x\ny"\n3,f,b\n\n4,maybe,c\n', 7, "flag"),
        ("id,flag,note\n1,t,a\n2,f,b\nthree,t,c\n", 4, "id"),
    ],
)
def test_a_value_that_does_not_parse_names_its_line_and_leaves_nothing(
    tmp_path: Path,
    dsn: str,
    schema: str,
    writer: PostgresBulkWriter,
    body: str,
    line: int,
    column: str,
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(body)
    _run(dsn, f"CREATE TABLE {q(schema)}.t (id int, flag boolean, note text)")
    fetcher = Fetcher(chunk_rows=2)  # the bad value is in a later chunk than the first
    with pytest.raises(FetchError) as error:
        writer.write("t", fetcher.batches(str(path)), schema=schema)
    assert (error.value.line, error.value.column) == (line, column)
    assert f"line {line}, column {column!r}" in str(error.value)
    assert _run(dsn, f"SELECT count(*) FROM {q(schema)}.t")[0][0] == 0


def test_a_numeric_with_more_decimals_than_its_scale_names_its_line(
    tmp_path: Path, dsn: str, schema: str, writer: PostgresBulkWriter
) -> None:
    path = tmp_path / "n.csv"
    path.write_text("id,price\n1,1.5\n2,2.25\n3,0.125\n")
    _run(dsn, f"CREATE TABLE {q(schema)}.t (id int, price numeric(8, 2))")
    with pytest.raises(FetchError, match=r"line 4, column 'price': '0.125'") as error:
        writer.write("t", Fetcher().batches(str(path)), schema=schema)
    assert (error.value.line, error.value.row) == (4, 2)


def test_a_malformed_record_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text('id,name\n1,"a\nb"\n2,b,extra\n')
    with pytest.raises(FetchError, match="line 4 has 3 fields, expected 2") as error:
        list(Fetcher().batches(str(path))())
    assert error.value.line == 4


def test_timestamptz_values_without_a_zone_are_read_as_utc(
    tmp_path: Path, dsn: str, schema: str, writer: PostgresBulkWriter
) -> None:
    path = tmp_path / "ts.csv"
    path.write_text("at\n2026-01-02 03:04:05\n2026-01-02 03:04:06\n")
    _run(dsn, f"CREATE TABLE {q(schema)}.t (at timestamptz)")
    writer.write("t", Fetcher().batches(str(path)), schema=schema)
    rows = _run(dsn, f"SELECT at FROM {q(schema)}.t ORDER BY at")
    assert rows[0][0] == dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def test_rename_and_columns_apply_to_batches(
    tmp_path: Path, dsn: str, schema: str, writer: PostgresBulkWriter
) -> None:
    path = tmp_path / "r.csv"
    path.write_text("ID,Flag,skip\n1,t,x\n2,f,y\n")
    _run(dsn, f"CREATE TABLE {q(schema)}.t (id int, flag boolean)")
    read = Fetcher().batches(str(path), rename={"ID": "id", "Flag": "flag"}, columns=["id", "flag"])
    writer.write("t", read, schema=schema)
    rows = _run(dsn, f"SELECT id, flag FROM {q(schema)}.t ORDER BY id")
    assert [tuple(r) for r in rows] == [(1, True), (2, False)]


def test_a_column_that_is_text_only_because_of_stray_tokens_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "dash.csv"
    path.write_text("id,n\n1,5\n2,-\n3,7\n4,?\n")
    with pytest.raises(FetchError, match=r"column 'n' reads as text only because of") as error:
        list(Fetcher().batches(str(path))())
    assert error.value.column == "n"
    batches = list(Fetcher().batches(str(path), null_values=["", "-", "?"])())
    assert batches[0].column("n").to_pylist() == [5, None, 7, None]


def test_later_chunks_keep_the_types_the_first_chunk_gave(tmp_path: Path) -> None:
    path = tmp_path / "later.csv"
    path.write_text("id,n\n1,5\n2,\n3,\n4,1.5\n")
    read = Fetcher(chunk_rows=2).batches(str(path))
    with pytest.raises(FetchError, match=r"line 5, column 'n': '1.5' is not a valid int64"):
        list(read())
