"""The binary COPY encoder and the column-wise driver values against the plain path: same
table contents, same refusals.

Every case loads one frame from ``encode_frame``'s payload with
``copy_to_table(format="binary")``, and from the type contract's values (``convert_column``,
column by column) and ``frame_to_values`` (the values of executemany and INSERT) with
``copy_records_to_table``; the tables are read back and compared value by value (by ``repr``,
so -0.0, a Decimal's scale and a datetime's zone count).
Refusals are compared by message, column and global row.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import io
import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from _support import q, require_slow
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_types import contract_columns

from resources import _json_check
from resources._binary_copy import copy_file, encode_frame
from resources._catalog import TableInfo, describe_table
from resources._convert import convert_column
from resources._json_check import all_json
from resources._records import frame_to_values
from resources.errors import BadValueError

ROW_OFFSET = 1_000  # global row of the frame's first row, as in a later chunk
BERLIN = "Europe/Berlin"
I16, I32, I64 = np.iinfo(np.int16), np.iinfo(np.int32), np.iinfo(np.int64)


class Twin:
    """Two tables of one shape in the test's schema: ``fast`` loaded from the payload,
    ``plain`` from the records. One connection on a private event loop serves every call."""

    def __init__(self, dsn: str, schema: str) -> None:
        self.schema = schema
        self.loop = asyncio.new_event_loop()
        self.conn: asyncpg.Connection = self.run(asyncpg.connect(dsn))
        self.info: TableInfo | None = None

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self.run(self.conn.close())
        self.loop.close()

    def create(self, columns: dict[str, str]) -> TableInfo:
        """Both tables with a ``_row`` column (to read rows back in order) and ``columns``."""
        defs = ", ".join(f"{q(name)} {sql}" for name, sql in {"_row": "bigint", **columns}.items())
        for table in ("fast", "plain"):
            self.run(self.conn.execute(f"DROP TABLE IF EXISTS {q(self.schema)}.{table}"))
            self.run(self.conn.execute(f"CREATE TABLE {q(self.schema)}.{table} ({defs})"))
        self.info = self.run(describe_table(self.conn, "fast", schema=self.schema))
        assert self.info is not None
        return self.info

    def encode(self, frame: pd.DataFrame, not_null: Sequence[str] = ()) -> memoryview | None:
        assert self.info is not None
        return encode_frame(
            frame, self.info, list(frame.columns), row_offset=ROW_OFFSET, not_null=not_null
        )

    def records(self, frame: pd.DataFrame, not_null: Sequence[str] = ()) -> list[tuple[Any, ...]]:
        """The type contract's values, every column converted in order by ``convert_column``."""
        info = self.info
        assert info is not None
        columns = [
            convert_column(
                frame[name],
                info.columns[name],
                table=info.display,
                row_offset=ROW_OFFSET,
                not_null=name in not_null,
            )
            for name in frame.columns
        ]
        return list(zip(*columns, strict=True))

    def values(self, frame: pd.DataFrame, not_null: Sequence[str] = ()) -> list[tuple[Any, ...]]:
        assert self.info is not None
        return frame_to_values(
            frame, self.info, list(frame.columns), row_offset=ROW_OFFSET, not_null=not_null
        )

    def load_fast(
        self, frame: pd.DataFrame, payload: bytes | memoryview
    ) -> list[tuple[str, ...]] | str:
        return self._load(
            "fast",
            self.conn.copy_to_table(
                "fast",
                schema_name=self.schema,
                columns=list(frame.columns),
                source=io.BytesIO(copy_file(payload)),
                format="binary",
            ),
        )

    def load_plain(
        self, frame: pd.DataFrame, records: list[tuple[Any, ...]]
    ) -> list[tuple[str, ...]] | str:
        return self._load(
            "plain",
            self.conn.copy_records_to_table(
                "plain", schema_name=self.schema, columns=list(frame.columns), records=records
            ),
        )

    def _load(self, table: str, copy: Any) -> list[tuple[str, ...]] | str:
        """The rows as reprs in ``_row`` order, or the name of the error the load raised."""
        self.run(self.conn.execute(f"TRUNCATE {q(self.schema)}.{table}"))
        try:
            self.run(copy)
        except (asyncpg.PostgresError, ValueError, OverflowError) as exc:
            return type(exc).__name__
        rows = self.run(self.conn.fetch(f"SELECT * FROM {q(self.schema)}.{table} ORDER BY _row"))
        return [tuple(repr(v) for v in row.values()) for row in rows]


@pytest.fixture
def twin(dsn: str, schema: str) -> Iterator[Twin]:
    pair = Twin(dsn, schema)
    yield pair
    pair.close()


def _frame(**columns: Any) -> pd.DataFrame:
    first = next(iter(columns.values()))
    return pd.DataFrame({"_row": np.arange(len(first), dtype=np.int64), **columns})


def _errors(
    twin: Twin, frame: pd.DataFrame, not_null: Sequence[str] = ()
) -> tuple[BadValueError, BadValueError]:
    with pytest.raises(BadValueError) as plain:
        twin.records(frame, not_null)
    with pytest.raises(BadValueError) as fast:
        twin.encode(frame, not_null)
    with pytest.raises(BadValueError) as values:
        twin.values(frame, not_null)
    _assert_same_error(plain.value, values.value)
    return plain.value, fast.value


def _assert_same_error(plain: BadValueError, fast: BadValueError) -> None:
    assert (fast.column, fast.row, str(fast)) == (plain.column, plain.row, str(plain))


# -- every fast pair, with its edge values --------------------------------------------------


def _s(values: list[Any], dtype: Any = None) -> pd.Series:
    return pd.Series(values, dtype=dtype)


def _aware(values: list[str | None], zone: str, unit: str = "us") -> pd.Series:
    naive = pd.Series(pd.to_datetime(values, format="ISO8601")).dt.as_unit(unit)
    return naive.dt.tz_localize("UTC").dt.tz_convert(zone)


LONG = "long " * 20_000
TEXTS = ["", "plain", "😀🎉 astral", "\U0001d518\U0001d52b", "tab\tnl\n", "quote ' \" \\", LONG]
UUIDS = [str(uuid.UUID(int=0)), str(uuid.UUID(int=2**128 - 1)), str(uuid.uuid4()).upper()]
JSONS = [
    '{"a": 1, "b": [true, null, 1.5e300]}',
    '"😀 astral"',
    "[]",
    ' {"nested": {"x": "]\\"[,"}} ',
    '"escaped backslash before u0000: \\\\u0000"',
    "-0",
]
# Instants around Berlin's 2021 DST switches: the skipped hour and both passes of the repeated one.
DST = ["2021-03-28T00:59:59", "2021-03-28T01:00:00", "2021-10-31T00:30:00", "2021-10-31T01:30:00"]
EDGE_US = ["0001-01-01T00:00:00", "0001-01-01T00:00:00.000001", "9999-12-31T23:59:59.999999"]
EDGE_US += ["9999-12-31T23:59:59.999998", "2000-01-01T00:00:00", "1969-12-31T23:59:59.999999"]

FAST_PAIRS: dict[str, tuple[str, pd.Series]] = {
    "int16-smallint": ("smallint", _s([I16.min, I16.max, 0, -1], np.int16)),
    "int8-smallint": ("smallint", _s([-128, 127, 0], np.int8)),
    "uint8-smallint": ("smallint", _s([0, 255, 7], np.uint8)),
    "Int16-smallint": ("smallint", _s([I16.min, None, I16.max], "Int16")),
    "int64-smallint": ("smallint", _s([I16.min, I16.max, 3], np.int64)),
    "int32-integer": ("integer", _s([I32.min, I32.max, 0], np.int32)),
    "uint16-integer": ("integer", _s([0, 65_535], np.uint16)),
    "Int32-integer": ("integer", _s([None, I32.min, I32.max], "Int32")),
    "int64-bigint": ("bigint", _s([I64.min, I64.max, 0, -1], np.int64)),
    "uint32-bigint": ("bigint", _s([0, 2**32 - 1], np.uint32)),
    "uint64-bigint": ("bigint", _s([0, 2**63 - 1], np.uint64)),
    "Int64-bigint": ("bigint", _s([I64.min, None, I64.max, None], "Int64")),
    "UInt64-bigint": ("bigint", _s([0, None, 2**63 - 1], "UInt64")),
    "float64-bigint": ("bigint", _s([-(2.0**63), 2.0**62, -0.0, np.nan, 1.0])),
    "float64-smallint": ("smallint", _s([-32768.0, 32767.0, np.nan])),
    "float64-double": (
        "double precision",
        _s([np.inf, -np.inf, np.nan, -0.0, 0.0, 5e-324, 1.7976931348623157e308, 0.1]),
    ),
    "float32-real": ("real", _s([np.inf, -np.inf, np.nan, -0.0, 1.5, 3.4028235e38], np.float32)),
    "float64-real": ("real", _s([0.1, 1e-50, np.nan, 3.4e38, -np.inf])),
    "float32-double": ("double precision", _s([0.1, np.nan, 1e30], np.float32)),
    "Float64-double": ("double precision", _s([0.5, None, -2.25], "Float64")),
    "int64-double": ("double precision", _s([2**53, -(2**53), 0, 12345], np.int64)),
    "Int32-real": ("real", _s([2**24, None, -(2**24)], "Int32")),
    "bool-boolean": ("boolean", _s([True, False, True], bool)),
    "boolean-boolean": ("boolean", _s([True, None, False], "boolean")),
    "str-text": ("text", _s([*TEXTS, None], "str")),
    "object-text": ("text", _s([*TEXTS, None, np.nan, pd.NA], object)),
    "str-varchar": ("varchar(5)", _s(["", "😀😀😀😀😀", "abcde", None], "str")),
    "object-varchar": ("varchar(3)", _s(["ab", None, "\U0001d518\U0001d52b\U0001d526"], object)),
    "str-char": ("char(4)", _s(["ab", "abcd", None, ""], "str")),
    "str-jsonb": ("jsonb", _s([*JSONS, None], "str")),
    "object-jsonb": ("jsonb", _s([None, *JSONS], object)),
    "str-json": ("json", _s([None, *JSONS, "1e999"], "str")),
    "str-uuid": ("uuid", _s([*UUIDS, None], "str")),
    "object-uuid": ("uuid", _s([None, *UUIDS], object)),
    "float64-numeric": (
        "numeric(12, 2)",
        _s([0.1, 1.25, -99_999.99, 9_999_999_999.99, -0.0, 0.0, 0.01, np.nan, -0.07, 42.0]),
    ),
    "float64-numeric-odd-scale": ("numeric(10, 5)", _s([0.00001, -12345.12345, 1.0, np.nan])),
    "float64-numeric-scale-0": ("numeric(18, 0)", _s([1e15, -3.0, np.nan])),
    "uint64-numeric": ("numeric(20, 0)", _s([0, 2**64 - 1, 12345], np.uint64)),
    "int64-numeric": ("numeric", _s([I64.min, I64.max, 0, -10_000, 10_000], np.int64)),
    "uint64-numeric-scaled": ("numeric(28, 8)", _s([2**64 - 1, 1], np.uint64)),
    "Int64-numeric-scaled": ("numeric(30, 9)", _s([I64.min, None, I64.max, 7], "Int64")),
    "int64-numeric-big-scale": ("numeric(1000, 990)", _s([0, None, 0], "Int64")),
    "utc-timestamptz": ("timestamptz", _aware([*EDGE_US, None], "UTC")),
    "berlin-timestamptz": ("timestamptz", _aware([*DST, "1900-01-01T00:00:00"], BERLIN)),
    "ns-timestamptz": ("timestamptz", _aware([*DST, None], BERLIN, "ns")),
    "naive-us-timestamp": ("timestamp", _s([*EDGE_US, None], "datetime64[us]")),
    "naive-ns-timestamp": ("timestamp", _s([*DST, None], "datetime64[ns]")),
    "naive-ms-timestamp": ("timestamp", _s(["0001-01-01", "2021-03-28 01:00:00.123"], "M8[ms]")),
    "naive-s-timestamp": ("timestamp", _s(["9999-12-31 23:59:59", None], "datetime64[s]")),
    "datetime-date": (
        "date",
        _s(["0001-01-01", "9999-12-31", "2000-01-01", "1999-12-31", None], "datetime64[s]"),
    ),
    "ns-datetime-date": ("date", _s(["2021-03-28", None, "1970-01-01"], "datetime64[ns]")),
    "object-date": (
        "date",
        _s([dt.date.min, dt.date.max, dt.date(2000, 1, 1), None, dt.date(1, 1, 2)], object),
    ),
}


@pytest.mark.parametrize("pair", FAST_PAIRS)
def test_fast_pair_loads_what_the_plain_path_loads(pair: str, twin: Twin) -> None:
    sql, series = FAST_PAIRS[pair]
    frame = _frame(v=series)
    twin.create({"v": sql})
    payload = twin.encode(frame)
    assert payload is not None, f"{pair} fell back to the plain path"
    fast = twin.load_fast(frame, payload)
    plain = twin.load_plain(frame, twin.records(frame))
    assert isinstance(plain, list) and len(plain) == len(frame)
    assert fast == plain
    assert twin.load_plain(frame, twin.values(frame)) == plain
    # NULLs stay where the frame has them, and only there.
    assert [row[1] == "None" for row in fast] == series.isna().tolist()


def test_wide_frame_with_nulls_everywhere_loads_what_the_plain_path_loads(twin: Twin) -> None:
    rng = np.random.default_rng(7)
    n = 2_000
    null = rng.random((8, n)) < 0.3
    ints = pd.array(rng.integers(I64.min, I64.max, n, endpoint=True), dtype="Int64")
    ints[null[0]] = pd.NA
    floats = rng.standard_normal(n) * 1e6
    floats[null[1]] = np.nan
    texts = pd.Series(rng.choice(np.array([*TEXTS[:-1], "x"]), n), dtype="str").mask(null[2])
    stamps = (
        pd.Series(pd.to_datetime(rng.integers(-(6 * 10**16), 2 * 10**17, n), unit="us"))
        .dt.tz_localize("UTC")
        .mask(null[3])
    )
    docs = pd.Series([json.dumps({"i": int(i), "s": "é"}) for i in range(n)], dtype="str")
    uids = pd.Series([str(uuid.UUID(int=int(i))) for i in rng.integers(0, 2**62, n)], dtype="str")
    amounts = np.round(rng.uniform(-1e9, 1e9, n), 2)
    amounts[null[6]] = np.nan
    flags = pd.array(rng.random(n) < 0.5, dtype="boolean")
    flags[null[7]] = pd.NA
    frame = _frame(
        i=ints,
        f=floats,
        t=texts,
        ts=stamps,
        doc=docs.mask(null[4]),
        uid=uids.mask(null[5]),
        amount=amounts,
        flag=flags,
        day=pd.Series(stamps.dt.tz_localize(None).dt.normalize()),
    )
    twin.create(
        {
            "i": "bigint",
            "f": "double precision",
            "t": "text",
            "ts": "timestamptz",
            "doc": "jsonb",
            "uid": "uuid",
            "amount": "numeric(12, 2)",
            "flag": "boolean",
            "day": "date",
        }
    )
    payload = twin.encode(frame)
    assert payload is not None
    fast = twin.load_fast(frame, payload)
    assert fast == twin.load_plain(frame, twin.records(frame))
    assert fast == twin.load_plain(frame, twin.values(frame))
    assert sum(row.count("None") for row in fast) == int(frame.isna().to_numpy().sum())


def test_sliced_and_concatenated_arrow_strings_encode_from_the_right_bytes(twin: Twin) -> None:
    # A chunk cut from a bigger frame views the parent's Arrow buffers at an offset; a
    # concatenated one holds several Arrow chunks. Both must encode their own rows only.
    texts = _s([f"t{i}" if i % 3 else None for i in range(30)], "str")
    docs = _s([json.dumps({"i": i}) for i in range(30)], "str")
    uids = _s([str(uuid.UUID(int=i)) if i % 4 else None for i in range(30)], "str")
    whole = _frame(t=texts, doc=docs, uid=uids)
    twin.create({"t": "text", "doc": "jsonb", "uid": "uuid"})
    sliced = whole.iloc[7:19].reset_index(drop=True)
    joined = pd.concat([whole.iloc[20:], whole.iloc[:5]], ignore_index=True)
    assert sliced["t"].array._pa_array.chunk(0).offset == 7
    assert joined["t"].array._pa_array.num_chunks == 2
    for frame in (sliced, joined):
        frame["_row"] = np.arange(len(frame))
        payload = twin.encode(frame)
        assert payload is not None
        fast = twin.load_fast(frame, payload)
        assert fast == twin.load_plain(frame, twin.records(frame))
        assert [row[1] for row in fast] == [repr(v) if v == v else "None" for v in frame["t"]]


def test_contract_columns_of_the_type_suite_load_like_the_plain_path(twin: Twin) -> None:
    """Each column of test_types' contract frame: fast where it can be, and then equal."""
    fast_columns = []
    for col in contract_columns(3_000, seed=11):
        sql = col.sql_type.replace(" PRIMARY KEY", "")
        twin.create({"v": sql})
        frame = _frame(v=col.data)
        payload = twin.encode(frame)
        if payload is None:
            continue
        fast_columns.append(col.name)
        assert twin.load_fast(frame, payload) == twin.load_plain(frame, twin.records(frame)), col
    numpy_columns = {f"np_{k}" for k in ("i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64")}
    assert numpy_columns | {"np_f32", "np_f64", "np_bool", "id"} <= set(fast_columns)


# -- refusals -------------------------------------------------------------------------------

REJECTS: dict[str, tuple[str, pd.Series]] = {
    "int64-over-smallint": ("smallint", _s([1, 2, 32_768], np.int64)),
    "int64-under-integer": ("integer", _s([0, -(2**31) - 1], np.int64)),
    "uint64-over-bigint": ("bigint", _s([1, 2**63], np.uint64)),
    "Int64-over-smallint-after-null": ("smallint", _s([None, 40_000], "Int64")),
    "float-not-whole-into-integer": ("integer", _s([1.0, np.nan, 1.5])),
    "inf-into-bigint": ("bigint", _s([np.inf])),
    "float-2-63-into-bigint": ("bigint", _s([0.0, 2.0**63])),
    "bool-into-integer": ("integer", _s([True, False], bool)),
    "bool-into-real": ("real", _s([True], "boolean")),
    "int64-inexact-double": ("double precision", _s([0, 2**53 + 1], np.int64)),
    "int32-inexact-real": ("real", _s([2**24 + 1], np.int32)),
    "nul-in-str-text": ("text", _s(["ok", "a\x00b"], "str")),
    "nul-in-object-text": ("text", _s(["ok", None, "\x00"], object)),
    "int-in-object-text": ("text", _s(["ok", 5], object)),
    "bytes-in-object-text": ("text", _s([b"raw"], object)),
    "too-long-varchar": ("varchar(3)", _s(["abc", "😀😀😀😀"], "str")),
    "too-long-char": ("char(2)", _s(["abc"], object)),
    "naive-into-timestamptz": ("timestamptz", _s([None, "2020-01-01"], "datetime64[us]")),
    "aware-into-timestamp": ("timestamp", _aware(["2020-01-01"], BERLIN)),
    "nanoseconds-into-timestamp": (
        "timestamp",
        _s(["2020-01-01", "2020-01-01 00:00:00.000000001"], "datetime64[ns]"),
    ),
    "nanoseconds-into-timestamptz": (
        "timestamptz",
        _aware(["2020-01-01", "2020-01-01T00:00:00.000000500"], BERLIN, "ns"),
    ),
    "time-part-into-date": ("date", _s(["2020-01-01", "2020-01-01 00:00:01"], "datetime64[s]")),
    "invalid-json": ("jsonb", _s(['{"a": 1}', "{'a': 1}"], "str")),
    "split-json": ("jsonb", _s(["[1", "2]", "3, 4"], "str")),
    "empty-json": ("json", _s(["1", ""], "str")),
    "json-nul-escape": ("jsonb", _s(['"ok"', '"\\u0000"'], "str")),
    "json-nul-byte": ("jsonb", _s(['"a\x00"'], object)),
    "short-uuid": ("uuid", _s([UUIDS[0], "1234"], "str")),
    "bad-hex-uuid": ("uuid", _s([UUIDS[0], "g" * 8 + UUIDS[0][8:]], "str")),
    "spaced-uuid": ("uuid", _s([UUIDS[0][:9] + " " + UUIDS[0][10:]], "str")),
    "too-many-decimals": ("numeric(12, 2)", _s([0.5, 0.125])),
    "third-decimal-of-a-double": ("numeric(12, 2)", _s([0.1 + 0.2])),
    # 20 digits and 9 decimals exceed Decimal's 28-digit context: the plain path refuses.
    "uint64-beyond-decimal-context": ("numeric(30, 9)", _s([1, 2**64 - 1], np.uint64)),
    "int64-beyond-decimal-context": ("numeric(40, 20)", _s([10**7, 10**8], np.int64)),
}


@pytest.mark.parametrize("case", REJECTS)
def test_refusals_match_the_plain_path(case: str, twin: Twin) -> None:
    sql, series = REJECTS[case]
    twin.create({"v": sql})
    plain, fast = _errors(twin, _frame(v=series))
    _assert_same_error(plain, fast)
    assert fast.row is not None and fast.row >= ROW_OFFSET


def test_null_in_not_null_and_key_columns_is_refused_like_the_plain_path(twin: Twin) -> None:
    twin.create({"k": "bigint", "v": "text NOT NULL", "w": "double precision"})
    frame = _frame(k=_s([1, None, 3], "Int64"), v=_s(["a", "b", "c"], "str"), w=[1.0, 2.0, 3.0])
    plain, fast = _errors(twin, frame, not_null=["k"])
    _assert_same_error(plain, fast)
    assert "key column" in fast.reason
    frame = _frame(k=_s([1, 2, 3], "Int64"), v=_s(["a", None, "c"], "str"), w=[1.0, 2.0, 3.0])
    plain, fast = _errors(twin, frame)
    _assert_same_error(plain, fast)
    assert (fast.column, fast.row) == ("v", ROW_OFFSET + 1)


def test_first_bad_column_in_column_order_is_the_one_reported(twin: Twin) -> None:
    twin.create({"a": "smallint", "b": "text"})
    frame = _frame(a=_s([1, 99_999], np.int64), b=_s(["x\x00", "y"], "str"))
    plain, fast = _errors(twin, frame)
    _assert_same_error(plain, fast)
    assert fast.column == "a"
    frame = frame[["_row", "b", "a"]]
    plain, fast = _errors(twin, frame)
    _assert_same_error(plain, fast)
    assert fast.column == "b"


# -- pairs without a fast encoder -----------------------------------------------------------

UNSUPPORTED: dict[str, tuple[str, pd.Series]] = {
    "decimal-objects-numeric": ("numeric(12, 2)", _s([decimal.Decimal("1.5")])),
    "float-unconstrained-numeric": ("numeric", _s([0.1, 2.5])),
    "bytes-bytea": ("bytea", _s([b"\x00\x01"], object)),
    "timedelta-interval": ("interval", _s([dt.timedelta(seconds=1)])),
    "dicts-jsonb": ("jsonb", _s([{"a": 1}], object)),
    "uuid-objects-uuid": ("uuid", _s([uuid.UUID(int=5)], object)),
    "undashed-uuid": ("uuid", _s([uuid.UUID(int=5).hex], "str")),
    "ints-in-object-bigint": ("bigint", _s([1, 2], object)),
    "aware-datetime-objects-timestamptz": (
        "timestamptz",
        _s([dt.datetime(2020, 1, 1, tzinfo=dt.UTC)], object),
    ),
    "float-overflowing-real": ("real", _s([1e300])),
    "float-infinity-numeric": ("numeric(12, 2)", _s([np.inf])),
    "int-array": ("integer[]", _s([[1, 2]], object)),
}


@pytest.mark.parametrize("case", UNSUPPORTED)
def test_pairs_without_a_fast_encoder_give_none_and_the_plain_path_still_works(
    case: str, twin: Twin
) -> None:
    sql, series = UNSUPPORTED[case]
    frame = _frame(v=series)
    twin.create({"v": sql})
    assert twin.encode(frame) is None
    # None only hands the chunk over: the plain conversion takes it as before.
    assert len(twin.records(frame)) == len(frame)


def test_payload_frames_into_a_complete_binary_copy_file(twin: Twin) -> None:
    twin.create({"v": "integer"})
    rows = twin.encode(_frame(v=_s([7, None], "Int32")))
    assert rows is not None
    payload = copy_file(rows)
    header = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
    row0 = (
        b"\x00\x02"
        + b"\x00\x00\x00\x08"
        + (0).to_bytes(8, "big")
        + b"\x00\x00\x00\x04"
        + (7).to_bytes(4, "big")
    )
    row1 = b"\x00\x02" + b"\x00\x00\x00\x08" + (1).to_bytes(8, "big") + b"\xff\xff\xff\xff"
    assert payload == header + row0 + row1 + b"\xff\xff"


# -- random frames --------------------------------------------------------------------------

# Lone surrogates cannot be encoded as UTF-8, so no text column can hold them.
SURROGATES: tuple[Literal["Cs"]] = ("Cs",)
TEXT = st.text(st.characters(exclude_categories=SURROGATES), max_size=30)


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | TEXT,
    _containers,
    max_leaves=8,
)
ZONES = ["UTC", BERLIN, "America/New_York", "Australia/Lord_Howe", "Pacific/Kiritimati"]


@dataclass(frozen=True)
class Kind:
    """Random values of one pair: SQL type, value strategy, how a list of them becomes a column,
    and whether the encoder may leave some frames to the plain path."""

    sql: str
    values: st.SearchStrategy[Any]
    column: Callable[[list[Any]], pd.Series]
    may_fall_back: bool = False


def _json_text(value: Any, ascii_only: bool) -> str:
    return json.dumps(value, ensure_ascii=ascii_only)


def _zoned(values: list[Any], zone: str) -> pd.Series:
    return _s(values, "datetime64[us]").dt.tz_localize("UTC").dt.tz_convert(zone)


KINDS: dict[str, Kind] = {
    "int-smallint": Kind(
        "smallint",
        st.integers(-40_000, 40_000) | st.integers(I64.min, I64.max),
        lambda v: _s(v, "Int64"),
    ),
    "int-integer": Kind("integer", st.integers(I64.min, I64.max), lambda v: _s(v, "Int64")),
    "int-bigint": Kind("bigint", st.integers(I64.min, I64.max), lambda v: _s(v, "Int64")),
    "float-bigint": Kind(
        "bigint",
        st.integers(-(2**63), 2**63).map(float) | st.floats(),
        lambda v: _s(v, "float64"),
    ),
    "float-double": Kind("double precision", st.floats(), lambda v: _s(v, "float64")),
    "float-real": Kind("real", st.floats(), lambda v: _s(v, "float64"), may_fall_back=True),
    "int-double": Kind(
        "double precision",
        st.integers(-(2**54), 2**54) | st.integers(I64.min, I64.max),
        lambda v: _s(v, "Int64"),
    ),
    "float-numeric": Kind(
        "numeric(14, 3)",
        st.integers(-(10**14), 10**14).map(lambda k: k / 1000) | st.floats(-1e12, 1e12),
        lambda v: _s(v, "float64"),
        may_fall_back=True,
    ),
    "bool": Kind("boolean", st.booleans(), lambda v: _s(v, "boolean")),
    "str-text": Kind("text", TEXT, lambda v: _s(v, "str")),
    "object-varchar": Kind("varchar(4)", TEXT | st.integers(), lambda v: _s(v, object)),
    "timestamp": Kind(
        "timestamp",
        st.datetimes(dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59, 999_999)),
        lambda v: _s(v, "datetime64[us]"),
    ),
    "timestamptz": Kind(
        "timestamptz",
        st.datetimes(dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59, 999_999)),
        lambda v: _zoned(v, ZONES[len(v) % len(ZONES)]),
        may_fall_back=True,  # a zone's local time beyond year 9999
    ),
    "date": Kind(
        "date",
        st.datetimes(dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31))
        | st.dates().map(lambda d: dt.datetime(d.year, d.month, d.day)),
        lambda v: _s(v, "datetime64[s]"),
    ),
    "jsonb": Kind(
        "jsonb",
        st.builds(_json_text, JSON_VALUES, st.booleans()) | TEXT,
        lambda v: _s(v, "str"),
    ),
    "json": Kind(
        "json", st.builds(_json_text, JSON_VALUES, st.booleans()) | TEXT, lambda v: _s(v, "str")
    ),
    "uuid": Kind(
        "uuid",
        st.uuids().map(str) | st.uuids().map(lambda u: str(u).upper()) | TEXT,
        lambda v: _s(v, "str"),
        may_fall_back=True,  # non-canonical spellings uuid.UUID accepts
    ),
}


def _run_random(twin: Twin, kind: Kind, examples: int) -> None:
    twin.create({"v": kind.sql})

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.lists(st.none() | kind.values, min_size=1, max_size=12))
    def example(values: list[Any]) -> None:
        frame = _frame(v=kind.column(values))
        try:
            records = twin.records(frame)
        except BadValueError as plain:
            with pytest.raises(BadValueError) as fast:
                twin.encode(frame)
            _assert_same_error(plain, fast.value)
            with pytest.raises(BadValueError) as as_values:
                twin.values(frame)
            _assert_same_error(plain, as_values.value)
            return
        payload = twin.encode(frame)
        plain_rows = twin.load_plain(frame, records)
        assert twin.load_plain(frame, twin.values(frame)) == plain_rows, values
        if payload is None:
            # Only kinds with a documented reason may hand a frame over, or frames that the
            # plain path itself cannot load.
            assert kind.may_fall_back or isinstance(plain_rows, str), values
            return
        assert twin.load_fast(frame, payload) == plain_rows, values

    example()


@pytest.mark.parametrize("kind", KINDS)
def test_random_frames_load_like_the_plain_path(kind: str, twin: Twin) -> None:
    _run_random(twin, KINDS[kind], examples=50)


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_random_frames_load_like_the_plain_path_long(
    kind: str, twin: Twin, request: pytest.FixtureRequest
) -> None:
    require_slow(request)
    _run_random(twin, KINDS[kind], examples=2_000)


# Documents json.loads takes and simdjson does not.
LAX = ["NaN", "-Infinity", "1e400", '"\\ud800"', str(2**70)]
FRAGMENTS = st.text('[]{},:"\\ 1an', max_size=8) | st.builds(json.dumps, JSON_VALUES)


@pytest.fixture(params=["json.loads", "simdjson"])
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test once with the parser of the standard library and once with simdjson."""
    if request.param == "json.loads":
        monkeypatch.setattr(_json_check, "_simdjson", None)
    else:
        monkeypatch.setattr(_json_check, "_simdjson", pytest.importorskip("simdjson"))
    return str(request.param)


def _json_valid(text: str) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):  # the plain path raises either
        return False
    return True


@settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    texts=st.lists(
        FRAGMENTS | st.sampled_from(["NaN", "1e400", '"\\ud800"', str(2**70)]), max_size=5
    )
)
def test_one_parse_of_all_documents_judges_each_as_json_loads_does(
    parser: str, texts: list[str]
) -> None:
    """Fragments that only together form JSON ("[1", "2]") must not pass for documents."""
    assert all_json(pa.array(texts, pa.large_string())) == all(map(_json_valid, texts)), parser


@pytest.mark.parametrize("depth", [1, 199, 250, 2_000])
def test_deeply_nested_documents_get_the_verdict_of_json_loads(parser: str, depth: int) -> None:
    texts = ["[" * depth + "]" * depth, "{}"]
    assert all_json(pa.array(texts, pa.large_string())) == all(map(_json_valid, texts))
