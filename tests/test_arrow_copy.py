"""Arrow record batches straight to binary COPY, against the plain path: same table contents,
same refusals; numeric from text as the server's own text input reads it; and Arrow data
through ``write()`` (a Table, batches, a callable), encoded without pandas."""

from __future__ import annotations

import datetime as dt
import decimal
import io
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest
from _support import q
from test_binary_copy import ROW_OFFSET, Twin

import resources._arrow_fields as arrow_fields
from resources import BadValueError, PostgresBulkWriter
from resources._arrow_copy import encode_batch, to_frame
from resources._binary_copy import copy_file

UTC = dt.UTC


@pytest.fixture
def twin(dsn: str, schema: str) -> Iterator[Twin]:
    pair = Twin(dsn, schema)
    yield pair
    pair.close()


def _batch(**columns: pa.Array) -> pa.RecordBatch:
    n = len(next(iter(columns.values())))
    return pa.record_batch({"_row": pa.array(range(n), pa.int64()), **columns})


CASES: list[tuple[str, pa.Array]] = [
    ("bigint", pa.array([1, None, -(2**63), 2**63 - 1], pa.int64())),
    ("integer", pa.array([1, None, -(2**31), 7], pa.int32())),
    ("smallint", pa.array([1, None, 300, -5], pa.int64())),
    ("integer", pa.array([0, None, 2**31 - 1, 9], pa.uint32())),
    ("double precision", pa.array([1.5, None, float("inf"), -0.0], pa.float64())),
    ("real", pa.array([1.5, None, 3.25, -0.0], pa.float32())),
    ("double precision", pa.array([1, None, 2**53, -3], pa.int64())),
    ("numeric", pa.array([1, None, -(2**63), 2**63 - 1], pa.int64())),
    ("numeric(12, 2)", pa.array([1, None, -5, 10**9], pa.int64())),
    ("boolean", pa.array([True, None, False, True])),
    (
        "numeric(12, 2)",
        pa.array(
            [decimal.Decimal(v) for v in ("1.50", "-3.25", "0", "-0.01")], pa.decimal128(12, 2)
        ),
    ),
    (
        "numeric",
        pa.array(
            [decimal.Decimal("123456789.0001"), None, None, decimal.Decimal("-1")],
            pa.decimal128(20, 4),
        ),
    ),
    ("numeric(12, 1)", pa.array([decimal.Decimal("1.50"), None, None, None], pa.decimal128(12, 2))),
    ("text", pa.array(["a", None, "", "zß€"], pa.string())),
    ("varchar(3)", pa.array(["abc", None, "", "z"], pa.large_string())),
    ("uuid", pa.array(["12345678-1234-5678-1234-567812345678", None, None, None])),
    ("jsonb", pa.array(['{"a": 1}', None, "[1, 2]", '"x"'])),
    ("json", pa.array(['{"a": 1}', None, "[1, 2]", '"x"'])),
    (
        "timestamptz",
        pa.array(
            [dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC), None, dt.datetime.max, None],
            pa.timestamp("us", tz="UTC"),
        ),
    ),
    (
        "timestamptz",
        pa.array(
            [0, None, 1_700_000_000_123_456_000, 5_000], pa.timestamp("ns", tz="Europe/Berlin")
        ),
    ),
    ("timestamp", pa.array([0, None, 1_700_000_000, -5], pa.timestamp("s"))),
    ("date", pa.array([dt.date(2026, 1, 2), None, dt.date.min, dt.date(1900, 3, 1)])),
    # A day or more inside Python's range: sent in one pass, without the edge checks.
    (
        "timestamp",
        pa.array(
            [dt.datetime(1, 1, 2), None, dt.datetime(9999, 12, 30, 23, 59, 59, 999_999), None],
            pa.timestamp("us"),
        ),
    ),
    (
        "timestamptz",
        pa.array(
            [dt.datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC), None, None, 5],
            pa.timestamp("us", tz="America/New_York"),
        ),
    ),
    ("date", pa.array([dt.date(1, 1, 2), None, dt.date(9999, 12, 30), dt.date(1999, 12, 31)])),
    ("smallint", pa.array([1, None, -(2**15), 2**15 - 1], pa.int16())),
]


@pytest.mark.parametrize(("sql_type", "values"), CASES, ids=lambda v: str(getattr(v, "type", v)))
def test_an_arrow_column_loads_as_the_plain_path_loads_it(
    twin: Twin, sql_type: str, values: pa.Array
) -> None:
    info = twin.create({"v": sql_type})
    batch = _batch(v=values)
    payload = encode_batch(batch, info, batch.schema.names, row_offset=ROW_OFFSET)
    assert payload is not None, "every case has an Arrow encoder"
    frame = to_frame(batch)
    assert twin.load_fast(frame, payload) == twin.load_plain(frame, twin.records(frame))


def test_every_case_side_by_side_in_one_batch_loads_as_the_plain_path(twin: Twin) -> None:
    """Rows framed from many columns at once, NULLs in different rows of each: the framer
    interleaves the columns' fields row by row."""
    names = {f"c{i}": sql_type for i, (sql_type, _) in enumerate(CASES)}
    info = twin.create(names)
    batch = _batch(**{f"c{i}": values for i, (_, values) in enumerate(CASES)})
    payload = encode_batch(batch, info, batch.schema.names, row_offset=ROW_OFFSET)
    assert payload is not None, "every case has an Arrow encoder"
    frame = to_frame(batch)
    assert twin.load_fast(frame, payload) == twin.load_plain(frame, twin.records(frame))


@pytest.mark.parametrize(
    ("sql_type", "values", "bad_row"),
    [
        ("integer", pa.array([1, None, 2**31], pa.int64()), 2),
        ("smallint", pa.array([70_000, 1], pa.uint32()), 0),
        ("varchar(2)", pa.array(["ab", "abc"]), 1),
        ("text", pa.array(["ok", "nul\x00"]), 1),
        ("uuid", pa.array(["12345678-1234-5678-1234-567812345678", "nope"]), 1),
        ("jsonb", pa.array(["{}", "{bad"]), 1),
        ("timestamp", pa.array([0, 1], pa.timestamp("us", tz="UTC")), 0),
        ("timestamptz", pa.array([0, 1], pa.timestamp("us")), 0),
        ("double precision", pa.array([1, 2**62 + 1], pa.int64()), 1),
        (
            "numeric(12, 1)",
            pa.array([decimal.Decimal("1.50"), decimal.Decimal("1.55")], pa.decimal128(12, 2)),
            1,
        ),
    ],
)
def test_a_refused_value_is_refused_as_the_plain_path_refuses_it(
    twin: Twin, sql_type: str, values: pa.Array, bad_row: int
) -> None:
    info = twin.create({"v": sql_type})
    batch = _batch(v=values)
    with pytest.raises(BadValueError) as arrow_error:
        encode_batch(batch, info, batch.schema.names, row_offset=ROW_OFFSET)
    with pytest.raises(BadValueError) as plain_error:
        twin.records(to_frame(batch))
    assert str(arrow_error.value) == str(plain_error.value)
    assert (arrow_error.value.column, arrow_error.value.row) == ("v", ROW_OFFSET + bad_row)


NUMERIC_TEXT = ["1.50", "-0.001", None, "12345678901234", "0", "-0", "+7.", ".5", "1e3", "NaN"]


@pytest.mark.parametrize("sql_type", ["numeric", "numeric(20, 4)"])
@pytest.mark.parametrize("plain_only", [True, False])
def test_numeric_text_loads_as_the_servers_text_input_reads_it(
    twin: Twin, sql_type: str, plain_only: bool
) -> None:
    """Value, scale and sign as ``'...'::numeric`` gives them; both the whole-column path
    (plain decimals only) and the value-by-value one (exponents, NaN)."""
    texts = [t for t in NUMERIC_TEXT if not plain_only or t not in ("1e3", "NaN")]
    info = twin.create({"v": sql_type})
    batch = _batch(v=pa.array(texts, pa.string()))
    payload = encode_batch(batch, info, batch.schema.names, row_offset=ROW_OFFSET)
    assert payload is not None
    twin.run(
        twin.conn.copy_to_table(
            "fast",
            schema_name=twin.schema,
            columns=["_row", "v"],
            source=io.BytesIO(copy_file(payload)),
            format="binary",
        )
    )
    got = twin.run(twin.conn.fetch(f"SELECT v::text FROM {q(twin.schema)}.fast ORDER BY _row"))
    want = twin.run(
        twin.conn.fetch(f"SELECT t::{sql_type}::text FROM unnest($1::text[]) AS t", texts)
    )
    assert [r[0] for r in got] == [r[0] for r in want]


@pytest.mark.parametrize(
    ("text", "reason"),
    [("12,5", "expected a number, got str '12,5'"), ("1.23456", r"does not fit numeric\(8,2\)")],
)
def test_numeric_text_that_does_not_parse_names_column_and_row(
    twin: Twin, text: str, reason: str
) -> None:
    info = twin.create({"v": "numeric(8, 2)"})
    batch = _batch(v=pa.array(["1.5", None, text]))
    with pytest.raises(BadValueError, match=reason) as error:
        encode_batch(batch, info, batch.schema.names, row_offset=ROW_OFFSET)
    assert (error.value.column, error.value.row) == ("v", ROW_OFFSET + 2)


def test_nan_in_arrow_stays_nan_as_null_stays_null(twin: Twin) -> None:
    """Arrow tells a missing value from NaN, so the table keeps the difference (pandas, which
    cannot, writes NULL for both)."""
    info = twin.create({"v": "double precision"})
    batch = _batch(v=pa.array([float("nan"), None]))
    payload = encode_batch(batch, info, batch.schema.names, row_offset=0)
    assert payload is not None
    assert twin.load_fast(to_frame(batch), payload) == [("0", "nan"), ("1", "None")]


def test_a_batch_without_an_arrow_encoder_goes_the_plain_way(twin: Twin) -> None:
    info = twin.create({"v": "interval"})
    batch = _batch(v=pa.array([dt.timedelta(seconds=5), None]))
    assert encode_batch(batch, info, batch.schema.names, row_offset=0) is None


def _events(n: int, start: int = 0) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(range(start, start + n), pa.int64()),
            "amount": pa.array([f"{i}.25" if i % 7 else None for i in range(n)]),
            "ok": pa.array([i % 3 == 0 if i % 5 else None for i in range(n)]),
            "at": pa.array([i * 1_000_000 for i in range(n)], pa.timestamp("us", tz="UTC")),
        }
    )


_DDL = "(id bigint PRIMARY KEY, amount numeric(12, 2), ok boolean, at timestamptz)"


@pytest.mark.parametrize("shape", ["table", "batches", "callable"])
def test_write_takes_arrow_data_without_pandas(
    writer: PostgresBulkWriter,
    db: Any,
    schema: str,
    shape: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db.execute(f"CREATE TABLE {q(schema)}.ev {_DDL}")
    table = _events(2_500)
    data: Any = {
        "table": table,
        "batches": iter(table.to_batches(max_chunksize=1_000)),
        "callable": lambda: table,
    }[shape]

    def no_pandas(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an Arrow batch with encoders for every column went through pandas")

    monkeypatch.setattr("resources._chunks.encode_frame", no_pandas)
    monkeypatch.setattr("resources._chunks.frame_to_values", no_pandas)
    result = writer.write("ev", data, schema=schema, chunk_size=1_000)
    assert (result.rows, result.chunks) == (2_500, 3)
    rows = db.fetch(f"SELECT count(*), sum(amount), count(ok), max(at) FROM {q(schema)}.ev")
    assert tuple(rows[0]) == (
        2_500,
        sum(decimal.Decimal(f"{i}.25") for i in range(2_500) if i % 7),
        sum(1 for i in range(2_500) if i % 5),
        dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(seconds=2_499),
    )


def test_a_bad_arrow_value_leaves_nothing_and_names_the_global_row(
    writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    db.execute(f"CREATE TABLE {q(schema)}.ev {_DDL}")
    bad = _events(10, start=1_000).to_pydict()
    bad["amount"][4] = "4.255"
    batches = [*_events(1_000).to_batches(), pa.RecordBatch.from_pydict(bad)]
    with pytest.raises(BadValueError) as error:
        writer.write("ev", batches, schema=schema)
    assert (error.value.column, error.value.row) == ("amount", 1_004)
    assert db.fetchval(f"SELECT count(*) FROM {q(schema)}.ev") == 0


def test_arrow_data_creates_its_table_from_arrow_types(
    writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    ints = pa.array([1, None, 3], pa.int64())
    writer.write("made", pa.table({"n": ints, "s": ["a", "b", None]}), schema=schema, create=True)
    types = db.fetch(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = $1 AND table_name = 'made' ORDER BY ordinal_position",
        schema,
    )
    assert [tuple(r) for r in types] == [("n", "bigint"), ("s", "text")]
    assert [r[0] for r in db.fetch(f"SELECT n FROM {q(schema)}.made ORDER BY s")] == [1, None, 3]


def test_to_frame_keeps_integers_and_booleans_around_nulls() -> None:
    frame = arrow_fields.to_frame(
        pa.record_batch({"n": pa.array([2**62 + 1, None]), "b": pa.array([True, None])})
    )
    assert frame["n"].iloc[0] == 2**62 + 1
    assert str(frame["n"].dtype) == "Int64"
    assert str(frame["b"].dtype) == "boolean"
