"""The type contract, value by value, in every write mode.

One deterministic frame holds every type the contract names (numpy dtypes, numpy scalars in
object columns, pandas nullable dtypes, datetimes with and without a zone, dates, Decimals,
JSON documents, UUIDs, bytes, unicode text) with about 10% NULLs spelled as NaN, NaT, pd.NA
and None. It is written in each mode, read back with asyncpg, and every value is compared with
the Python value it must become.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
from _support import MODES

from resources import BadValueError, Mode, PostgresBulkWriter

ROWS = 100_000
SEED = 20_240_501
NULL_SHARE = 0.1
UTC = dt.UTC
EPOCH = dt.datetime(1970, 1, 1)
TEXT_POOL = np.array(
    [
        "plain ascii",
        "emoji 😀🎉 astral",
        "\U0001d518\U0001d52b\U0001d526 math letters",
        "中文 日本語 한국어",
        "עברית ومرحبا",
        "combining e\u0301 n\u0303",
        "quote ' and \" and \\ backslash",
        "tab\tnewline\nCR\r",
        "",
        "👩\u200d👩\u200d👧\u200d👦 family",
    ]
)


@dataclass(frozen=True)
class Column:
    """One column of the contract table: its DDL type, the data and the values expected back."""

    name: str
    sql_type: str
    old: str  # an SQL expression giving a non-NULL value, for rows that update/upsert overwrite
    data: Any
    expected: list[Any]
    compare: Callable[[Any, Any], bool] | None = None


def _json_equal(got: Any, expected: Any) -> bool:
    return bool(json.loads(got) == expected)


def _nulls(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.random(n) < NULL_SHARE


def _masked(values: list[Any], null: np.ndarray) -> list[Any]:
    return [None if missing else v for v, missing in zip(values, null.tolist(), strict=True)]


def _null_markers(null: np.ndarray, markers: tuple[Any, ...]) -> Callable[[list[Any]], list[Any]]:
    """Put the null markers (None, NaN, pd.NA, pd.NaT) in turn where ``null`` is set."""
    cycle = np.cumsum(null) % len(markers)

    def apply(values: list[Any]) -> list[Any]:
        out = list(values)
        for i in np.flatnonzero(null).tolist():
            out[i] = markers[cycle[i]]
        return out

    return apply


def contract_columns(n: int, seed: int = SEED) -> list[Column]:
    """Every column of the type contract, ``n`` rows, generated from ``seed``."""
    rng = np.random.default_rng(seed)
    ids = np.arange(n, dtype=np.int64)
    cols: list[Column] = [Column("id", "bigint PRIMARY KEY", "0", ids, ids.tolist())]

    # numpy dtypes, each over its whole range (the extremes included).
    numpy_ints: list[tuple[str, type[np.integer[Any]], str]] = [
        ("np_i8", np.int8, "smallint"),
        ("np_i16", np.int16, "smallint"),
        ("np_i32", np.int32, "integer"),
        ("np_i64", np.int64, "bigint"),
        ("np_u8", np.uint8, "smallint"),
        ("np_u16", np.uint16, "integer"),
        ("np_u32", np.uint32, "bigint"),
        ("np_u64", np.uint64, "numeric(20, 0)"),
    ]
    for name, dtype, sql in numpy_ints:
        info = np.iinfo(dtype)
        arr = rng.integers(info.min, info.max, size=n, dtype=dtype, endpoint=True)
        arr[:2] = [info.min, info.max]
        expected: list[Any] = arr.tolist()
        if name == "np_u64":
            expected = [decimal.Decimal(v) for v in expected]
        cols.append(Column(name, sql, "1", arr, expected))

    null = _nulls(rng, n)
    f32 = (rng.standard_normal(n) * 1e4).astype(np.float32)
    f32[null] = np.nan
    cols.append(Column("np_f32", "real", "1", f32, _masked([float(v) for v in f32.tolist()], null)))
    null = _nulls(rng, n)
    f64 = rng.standard_normal(n) * 1e12
    f64[:3] = [5e-324, 1.7976931348623157e308, -0.0]
    f64[null] = np.nan
    null[:3] = False
    cols.append(Column("np_f64", "double precision", "1", f64, _masked(f64.tolist(), null)))
    flags = rng.random(n) < 0.5
    cols.append(Column("np_bool", "boolean", "true", flags, flags.tolist()))

    # numpy scalars in object columns.
    null = _nulls(rng, n)
    int_types = [
        np.int8,
        np.int16,
        np.int32,
        np.int64,
        np.uint8,
        np.uint16,
        np.uint32,
        np.uint64,
    ]
    small = rng.integers(0, 127, size=n).tolist()
    kinds = (ids % len(int_types)).tolist()
    scalars = [int_types[k](v) for k, v in zip(kinds, small, strict=True)]
    scalars = _null_markers(null, (None, np.nan, pd.NA))(scalars)
    cols.append(
        Column(
            "obj_int",
            "bigint",
            "1",
            pd.Series(scalars, dtype=object),
            _masked(small, null),
        )
    )
    null = _nulls(rng, n)
    raw = rng.standard_normal(n) * 1000
    floats = [np.float32(v) if i % 2 else np.float64(v) for i, v in enumerate(raw.tolist())]
    expected_floats = [float(v) for v in floats]
    cols.append(
        Column(
            "obj_float",
            "double precision",
            "1",
            pd.Series(_null_markers(null, (None, np.nan))(floats), dtype=object),
            _masked(expected_floats, null),
        )
    )
    null = _nulls(rng, n)
    bools = [np.bool_(v) for v in (rng.random(n) < 0.5).tolist()]
    cols.append(
        Column(
            "obj_bool",
            "boolean",
            "true",
            pd.Series(_null_markers(null, (None, pd.NA))(bools), dtype=object),
            _masked([bool(v) for v in bools], null),
        )
    )

    # pandas nullable dtypes.
    for name, nullable, sql, low, high in [
        ("nl_i8", "Int8", "smallint", -128, 127),
        ("nl_i16", "Int16", "smallint", -(2**15), 2**15 - 1),
        ("nl_i32", "Int32", "integer", -(2**31), 2**31 - 1),
        ("nl_i64", "Int64", "bigint", -(2**63), 2**63 - 1),
    ]:
        null = _nulls(rng, n)
        values = rng.integers(low, high, size=n, endpoint=True).tolist()
        values[:2] = [low, high]
        null[:2] = False
        series = pd.array(_masked(values, null), dtype=nullable)
        cols.append(Column(name, sql, "1", series, _masked(values, null)))
    null = _nulls(rng, n)
    values = (rng.random(n) < 0.5).tolist()
    cols.append(
        Column(
            "nl_bool",
            "boolean",
            "true",
            pd.array(_masked(values, null), dtype="boolean"),
            _masked(values, null),
        )
    )
    null = _nulls(rng, n)
    values = rng.standard_normal(n).tolist()
    cols.append(
        Column(
            "nl_f64",
            "double precision",
            "1",
            pd.array(_masked(values, null), dtype="Float64"),
            _masked(values, null),
        )
    )

    # Text: pandas' nullable string dtype, its default str dtype and plain object columns.
    texts = np.char.add(
        np.char.add(TEXT_POOL[rng.integers(0, len(TEXT_POOL), n)], " #"), ids.astype(str)
    )
    null = _nulls(rng, n)
    cols.append(
        Column(
            "nl_str",
            "text",
            "'old'",
            pd.array(_masked(texts.tolist(), null), dtype="string"),
            _masked(texts.tolist(), null),
        )
    )
    null = _nulls(rng, n)
    cols.append(
        Column(
            "str_txt",
            "text",
            "'old'",
            pd.Series(_masked(texts.tolist(), null), dtype="str"),
            _masked(texts.tolist(), null),
        )
    )
    null = _nulls(rng, n)
    cols.append(
        Column(
            "obj_txt",
            "varchar(80)",
            "'old'",
            pd.Series(_null_markers(null, (None, np.nan, pd.NA))(texts.tolist()), dtype=object),
            _masked(texts.tolist(), null),
        )
    )

    # Datetimes: aware (another zone, nanosecond unit) -> timestamptz, naive -> timestamp.
    micros = rng.integers(-(2**41), 2**41, size=n)  # about 1900..2039
    null = _nulls(rng, n)
    aware = pd.to_datetime(micros * 1000, unit="ns", utc=True).tz_convert("America/New_York")
    aware = aware.where(~null, pd.NaT)
    expected_aware = [
        dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(microseconds=m) for m in micros.tolist()
    ]
    cols.append(Column("ts_tz", "timestamptz", "now()", aware, _masked(expected_aware, null)))
    null = _nulls(rng, n)
    naive = pd.Series(micros.astype("datetime64[us]")).where(~null, pd.NaT)
    expected_naive = [EPOCH + dt.timedelta(microseconds=m) for m in micros.tolist()]
    cols.append(Column("ts_naive", "timestamp", "now()", naive, _masked(expected_naive, null)))
    null = _nulls(rng, n)
    offsets = [dt.timezone(dt.timedelta(minutes=m)) for m in (-480, 0, 330, 765)]
    py_aware = [v.astimezone(offsets[i % len(offsets)]) for i, v in enumerate(expected_aware)]
    cols.append(
        Column(
            "obj_tstz",
            "timestamptz",
            "now()",
            pd.Series(_null_markers(null, (None, pd.NaT))(py_aware), dtype=object),
            _masked(expected_aware, null),
        )
    )

    # Dates, Decimals, JSON, UUIDs, bytes: Python objects in object columns.
    null = _nulls(rng, n)
    days = rng.integers(-200_000, 200_000, size=n).tolist()
    dates = [dt.date(2000, 1, 1) + dt.timedelta(days=d) for d in days]
    cols.append(
        Column(
            "d",
            "date",
            "current_date",
            pd.Series(_null_markers(null, (None, pd.NaT, np.nan))(dates), dtype=object),
            _masked(dates, null),
        )
    )
    null = _nulls(rng, n)
    units = rng.integers(-(10**15), 10**15, size=n).tolist()
    scales = rng.integers(0, 7, size=n).tolist()
    decimals = [decimal.Decimal(u).scaleb(-s) for u, s in zip(units, scales, strict=True)]
    decimals[:2] = [decimal.Decimal("0.000000000000000001"), decimal.Decimal("-1e30")]
    null[:2] = False
    cols.append(
        Column(
            "dec",
            "numeric",
            "1",
            pd.Series(_null_markers(null, (None, np.nan))(decimals), dtype=object),
            _masked(decimals, null),
        )
    )
    null = _nulls(rng, n)
    picks = rng.integers(0, 4, size=n).tolist()
    docs: list[Any] = []
    for i, (k, t) in enumerate(zip(picks, texts.tolist(), strict=True)):
        if k == 0:
            docs.append({"id": i, "text": t, "nested": {"list": [1, 2.5, None, True]}})
        elif k == 1:
            docs.append([i, t, {"k": "v"}])
        elif k == 2:
            docs.append({})
        else:
            docs.append(["ünïcödé 😀", -i])
    cols.append(
        Column(
            "js",
            "jsonb",
            "'{\"old\": true}'",
            pd.Series(_null_markers(null, (None, pd.NA))(docs), dtype=object),
            _masked(docs, null),
            _json_equal,
        )
    )
    null = _nulls(rng, n)
    raw_uuids = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    uuids = [uuid.UUID(bytes=row.tobytes()) for row in raw_uuids]
    cols.append(
        Column(
            "uid",
            "uuid",
            "gen_random_uuid()",
            pd.Series(_null_markers(null, (None, np.nan))(uuids), dtype=object),
            _masked(uuids, null),
        )
    )
    null = _nulls(rng, n)
    spellings = [
        str(u) if i % 3 == 0 else (str(u).upper() if i % 3 == 1 else u.hex)
        for i, u in enumerate(uuids)
    ]
    cols.append(
        Column(
            "uid_str",
            "uuid",
            "gen_random_uuid()",
            pd.Series(_masked(spellings, null), dtype="str"),
            _masked(uuids, null),
        )
    )
    null = _nulls(rng, n)
    lengths = rng.integers(0, 24, size=n)
    blob = rng.integers(0, 256, size=int(lengths.sum()), dtype=np.uint8).tobytes()
    ends = np.cumsum(lengths).tolist()
    blobs = [blob[e - k : e] for e, k in zip(ends, lengths.tolist(), strict=True)]
    blobs[0] = b"\x00\xff\\x00"
    null[0] = False
    cols.append(
        Column(
            "by",
            "bytea",
            "'\\x01'::bytea",
            pd.Series(_null_markers(null, (None, np.nan))(blobs), dtype=object),
            _masked(blobs, null),
        )
    )
    return cols


def contract_frame(cols: list[Column]) -> pd.DataFrame:
    return pd.DataFrame({c.name: c.data for c in cols})


def create_contract_table(db: Any, schema: str, table: str, cols: list[Column]) -> None:
    defs = ", ".join(f'"{c.name}" {c.sql_type}' for c in cols)
    db.execute(f'CREATE TABLE "{schema}"."{table}" ({defs})')


def preload_old_rows(db: Any, schema: str, table: str, cols: list[Column], ids: str) -> None:
    """Rows with ``ids`` (an SQL set expression) and a non-NULL old value in every column."""
    names = ", ".join(f'"{c.name}"' for c in cols)
    olds = ", ".join(["g"] + [c.old for c in cols[1:]])
    db.execute(f'INSERT INTO "{schema}"."{table}" ({names}) SELECT {olds} FROM {ids} AS g')


def assert_round_trip(db: Any, schema: str, table: str, cols: list[Column], n: int) -> None:
    """Every value read back equals the expected Python value (all mismatches reported)."""
    names = ", ".join(f'"{c.name}"' for c in cols)
    records = db.fetch(f'SELECT {names} FROM "{schema}"."{table}" ORDER BY id')
    assert len(records) == n
    problems: list[str] = []
    for j, col in enumerate(cols):
        got_column = [r[j] for r in records]
        if col.compare is None:
            if got_column == col.expected:
                continue
            equal: Callable[[Any, Any], bool] = lambda a, b: a == b and type(a) is type(b)  # noqa: E731
        else:
            equal = col.compare
        bad = [
            i
            for i, (got, want) in enumerate(zip(got_column, col.expected, strict=True))
            if not (got is None and want is None)
            and (got is None or want is None or not equal(got, want))
        ]
        if bad:
            shown = ", ".join(
                f"row {i}: got {got_column[i]!r} expected {col.expected[i]!r}" for i in bad[:3]
            )
            problems.append(f"{col.name}: {len(bad)} mismatches ({shown})")
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def contract() -> list[Column]:
    return contract_columns(ROWS)


def test_contract_frame_has_the_promised_dtypes_and_nulls(contract: list[Column]) -> None:
    """The generated frame really has the dtypes and ~10% NULLs the round trips rely on."""
    frame = contract_frame(contract)
    assert len(frame) == ROWS
    dtypes = {name: str(dtype) for name, dtype in frame.dtypes.items()}
    assert dtypes["np_u64"] == "uint64"
    assert dtypes["np_f32"] == "float32"
    assert dtypes["nl_i8"] == "Int8"
    assert dtypes["nl_bool"] == "boolean"
    assert dtypes["nl_str"] == "string"
    assert dtypes["ts_tz"].startswith("datetime64[ns, America/New_York")
    assert dtypes["ts_naive"] == "datetime64[us]"
    assert dtypes["obj_int"] == dtypes["js"] == dtypes["by"] == "object"
    share = frame["dec"].isna().mean()
    assert 0.08 < share < 0.12
    assert {type(v) for v in frame["obj_int"].dropna()} >= {np.int8, np.uint64}


@pytest.mark.parametrize("mode", MODES)
def test_contract_round_trips_in_every_mode(
    mode: Mode, contract: list[Column], writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """Every contract value, 100k rows, arrives as the expected Python value in each mode."""
    create_contract_table(db, schema, "contract", contract)
    if mode == "update":
        preload_old_rows(db, schema, "contract", contract, f"generate_series(0, {ROWS - 1})")
    elif mode == "upsert":
        # Even ids exist (and get updated), odd ids are new (and get inserted).
        preload_old_rows(db, schema, "contract", contract, f"generate_series(0, {ROWS - 1}, 2)")
    frame = contract_frame(contract)
    key = ["id"] if mode in ("update", "upsert") else None

    result = writer.write(
        "contract", frame, mode=mode, key_columns=key, schema=schema, chunk_size=30_000
    )

    assert result.rows == ROWS
    assert result.rows_affected == ROWS
    assert result.chunks == 4
    assert_round_trip(db, schema, "contract", contract, ROWS)


NULL_TARGETS = {
    # column: (type, a non-NULL value for the rows that update and upsert overwrite)
    "i2": ("smallint", "1"),
    "i4": ("integer", "1"),
    "i8": ("bigint", "1"),
    "f4": ("real", "1"),
    "f8": ("double precision", "1"),
    "num": ("numeric(10, 2)", "1"),
    "b": ("boolean", "true"),
    "t": ("text", "'old'"),
    "vc": ("varchar(5)", "'old'"),
    "ts": ("timestamp", "now()"),
    "tstz": ("timestamptz", "now()"),
    "d": ("date", "current_date"),
    "js": ("jsonb", "'{}'"),
    "u": ("uuid", "gen_random_uuid()"),
    "by": ("bytea", "'\\x01'::bytea"),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("null", [None, np.nan, pd.NA, pd.NaT], ids=["None", "NaN", "pd.NA", "NaT"])
def test_every_null_marker_becomes_null_in_every_column_type(
    mode: Mode, null: Any, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """Each null spelling, in an object column of each contract type, is stored as NULL (and
    overwrites a non-NULL value in update and upsert)."""
    defs = ", ".join(f"{name} {sql}" for name, (sql, _) in NULL_TARGETS.items())
    db.execute(f'CREATE TABLE "{schema}".nulls (id int PRIMARY KEY, {defs})')
    if mode in ("update", "upsert"):
        olds = ", ".join(old for _, old in NULL_TARGETS.values())
        db.execute(f'INSERT INTO "{schema}".nulls SELECT g, {olds} FROM generate_series(0, 1) g')
    frame = pd.DataFrame(
        {"id": [0, 1], **{name: pd.Series([null, null], dtype=object) for name in NULL_TARGETS}}
    )
    key = ["id"] if mode in ("update", "upsert") else None

    result = writer.write("nulls", frame, mode=mode, key_columns=key, schema=schema)

    assert result.rows_affected == 2
    rows = db.fetch(f'SELECT * FROM "{schema}".nulls ORDER BY id')
    assert [r["id"] for r in rows] == [0, 1]
    for r in rows:
        assert {k: v for k, v in dict(r).items() if k != "id"} == dict.fromkeys(NULL_TARGETS)


# -- the users pattern: users(id bigserial primary key, name text, email text) --------------------

USERS = 2_500


def users_frame(start: int, stop: int, *, prefix: str = "User") -> pd.DataFrame:
    ids = np.arange(start, stop).astype(str)
    return pd.DataFrame(
        {
            "name": np.char.add(f"{prefix} 😀 ", ids),
            "email": np.char.add(np.char.add("user", ids), "@example.com"),
        }
    )


@pytest.mark.parametrize("mode", MODES)
def test_users_pattern_id_takes_its_default(
    mode: Mode, search_path_dsn: str, db: Any, schema: str
) -> None:
    """(name, email) rows go into users(id bigserial, ...) in every mode: ids come from the
    sequence, names and emails arrive as given, an unqualified name resolves via search_path."""
    unique = " UNIQUE" if mode == "upsert" else ""
    db.execute(
        f'CREATE TABLE "{schema}".users (id bigserial PRIMARY KEY, name text, email text{unique})'
    )
    frame = users_frame(0, USERS)
    expected_ids: dict[str, int]
    if mode in ("update", "upsert"):
        # Preload the first half with old names (ids 1..USERS/2).
        half = USERS // 2
        with PostgresBulkWriter(dsn=search_path_dsn) as writer:
            writer.write("users", users_frame(0, half, prefix="Old"), mode="copy")
        expected_ids = {f"user{i}@example.com": i + 1 for i in range(half)}
    else:
        expected_ids = {}

    with PostgresBulkWriter(dsn=search_path_dsn) as writer:
        result = writer.write("users", frame, mode=mode, key_columns=["email"], chunk_size=1_000)

    assert result.table == f"{schema}.users"
    assert result.columns == ("name", "email")
    rows = db.fetch(f'SELECT id, name, email FROM "{schema}".users ORDER BY id')
    got = {r["email"]: (r["id"], r["name"]) for r in rows}
    if mode == "update":
        # Only the existing half is matched; the other half of the data has no row to update.
        assert result.rows_affected == USERS // 2
        assert len(rows) == USERS // 2
        expected_emails = frame["email"].tolist()[: USERS // 2]
    else:
        assert result.rows_affected == USERS
        assert len(rows) == USERS
        expected_emails = frame["email"].tolist()
    names = dict(zip(frame["email"], frame["name"], strict=True))
    assert sorted(got) == sorted(expected_emails)
    assert all(got[e][1] == names[e] for e in expected_emails)
    for email, id_ in expected_ids.items():
        assert got[email][0] == id_, "an updated row keeps its id"
    assert len({id_ for id_, _ in got.values()}) == len(got)
    assert all(isinstance(id_, int) and id_ >= 1 for id_, _ in got.values())
    if mode in ("copy", "executemany", "insert"):
        assert sorted(id_ for id_, _ in got.values()) == list(range(1, USERS + 1))


# -- create=True: a missing table from the data's dtypes ----------------------------------------

CREATED_TYPES = {
    "id": "bigint",
    "i8": "smallint",
    "i16": "smallint",
    "i32": "integer",
    "f32": "real",
    "f64": "double precision",
    "flag": "boolean",
    "nl_int": "bigint",
    "nl_bool": "boolean",
    "nl_str": "text",
    "txt": "text",
    "ts": "timestamp without time zone",
    "tstz": "timestamp with time zone",
    "obj_tstz": "timestamp with time zone",
    "d": "date",
    "dec": "numeric",
    "js": "jsonb",
    "js_list": "jsonb",
    "u": "uuid",
    "b": "bytea",
}


def created_frame() -> pd.DataFrame:
    aware = dt.datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)
    return pd.DataFrame(
        {
            "id": np.array([1, 2, 3], dtype=np.int64),
            "i8": np.array([-128, 0, 127], dtype=np.int8),
            "i16": np.array([-(2**15), 0, 2**15 - 1], dtype=np.int16),
            "i32": np.array([-(2**31), 0, 2**31 - 1], dtype=np.int32),
            "f32": np.array([1.5, np.nan, -2.25], dtype=np.float32),
            "f64": [0.1, np.nan, 1e300],
            "flag": [True, False, True],
            "nl_int": pd.array([2**62, None, -1], dtype="Int64"),
            "nl_bool": pd.array([None, True, False], dtype="boolean"),
            "nl_str": pd.array(["a", None, "😀"], dtype="string"),
            "txt": pd.Series(["x", None, "ü"], dtype="str"),
            "ts": pd.to_datetime(
                ["2024-05-01 12:30:15.123456", None, "1900-01-01"], format="ISO8601"
            ),
            "tstz": pd.to_datetime(
                ["2024-05-01 12:30:15.123456", None, "1900-01-01"], format="ISO8601", utc=True
            ),
            "obj_tstz": pd.Series([None, aware, aware], dtype=object),
            "d": pd.Series([None, dt.date(2024, 2, 29), dt.date(1, 1, 1)], dtype=object),
            "dec": pd.Series([decimal.Decimal("1.10"), None, decimal.Decimal("-3")], dtype=object),
            "js": pd.Series([{"a": [1, 2]}, None, {}], dtype=object),
            "js_list": pd.Series([[1, "x"], [], None], dtype=object),
            "u": pd.Series([uuid.UUID(int=1), None, uuid.UUID(int=2**128 - 1)], dtype=object),
            "b": pd.Series([b"\x00\x01", None, b""], dtype=object),
        }
    )


def column_types(db: Any, schema: str, table: str) -> dict[str, str]:
    rows = db.fetch(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS t FROM pg_attribute a "
        "WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped",
        f'"{schema}"."{table}"',
    )
    return {r["attname"]: r["t"] for r in rows}


def primary_key(db: Any, schema: str, table: str) -> list[str]:
    rows = db.fetch(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
        "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = to_regclass($1) AND i.indisprimary "
        "ORDER BY a.attname",
        f'"{schema}"."{table}"',
    )
    return [r["attname"] for r in rows]


@pytest.mark.parametrize("mode", MODES)
def test_create_makes_the_table_from_dtypes_with_the_key_as_primary_key(
    mode: Mode, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """create=True makes a missing table with a column type per dtype and key_columns as its
    primary key; the appending modes and upsert then store the rows exactly."""
    frame = created_frame()

    result = writer.write("made", frame, mode=mode, key_columns=["id"], schema=schema, create=True)

    assert result.created is True
    assert column_types(db, schema, "made") == CREATED_TYPES
    assert primary_key(db, schema, "made") == ["id"]
    rows = db.fetch(f'SELECT * FROM "{schema}".made ORDER BY id')
    if mode == "update":
        assert result.rows_affected == 0
        assert rows == []
        return
    assert result.rows_affected == 3
    got = [dict(r) for r in rows]
    assert [r["id"] for r in got] == [1, 2, 3]
    assert [r["i8"] for r in got] == [-128, 0, 127]
    assert [r["i32"] for r in got] == [-(2**31), 0, 2**31 - 1]
    assert [r["f32"] for r in got] == [1.5, None, -2.25]
    assert [r["nl_int"] for r in got] == [2**62, None, -1]
    assert [r["nl_bool"] for r in got] == [None, True, False]
    assert [r["nl_str"] for r in got] == ["a", None, "😀"]
    assert [r["txt"] for r in got] == ["x", None, "ü"]
    assert got[0]["ts"] == dt.datetime(2024, 5, 1, 12, 30, 15, 123456)
    assert got[0]["tstz"] == dt.datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)
    assert [r["obj_tstz"] for r in got][1:] == [
        dt.datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)
    ] * 2
    assert [r["d"] for r in got] == [None, dt.date(2024, 2, 29), dt.date(1, 1, 1)]
    assert [r["dec"] for r in got] == [decimal.Decimal("1.10"), None, decimal.Decimal("-3")]
    assert [None if r["js"] is None else json.loads(r["js"]) for r in got] == [
        {"a": [1, 2]},
        None,
        {},
    ]
    assert [r["u"] for r in got] == [uuid.UUID(int=1), None, uuid.UUID(int=2**128 - 1)]
    assert [r["b"] for r in got] == [b"\x00\x01", None, b""]


@pytest.mark.parametrize(
    "dtype", ["uint8", "uint16", "uint32", "uint64", "UInt16", "UInt32", "UInt64"]
)
def test_create_gives_unsigned_dtypes_a_column_that_holds_their_range(
    dtype: str, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """A table created from an unsigned dtype stores the dtype's largest value exactly."""
    top = int(np.iinfo(dtype.lower()).max)
    frame = pd.DataFrame({"v": pd.Series([0, top], dtype=dtype)})

    writer.write("unsigned", frame, schema=schema, create=True)

    assert [int(r["v"]) for r in db.fetch(f'SELECT v FROM "{schema}".unsigned')] == [0, top]


@pytest.mark.parametrize("mode", MODES)
def test_json_text_with_escaped_backslashes_round_trips(
    mode: Mode, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """Strings holding a literal backslash (even one followed by "u0000", as in a Windows
    path) are valid JSON and are stored as given; only a real U+0000 is refused."""
    docs = [
        {"path": "C:\\u0000dir"},
        ["\\", "\\\\u0000", "tab\t", 'quote"'],
        {"emoji": "😀", "nested": {"k": "\\n is not a newline"}},
    ]
    db.execute(f'CREATE TABLE "{schema}".docs (id int PRIMARY KEY, doc jsonb)')
    if mode == "update":
        db.execute(f"INSERT INTO \"{schema}\".docs SELECT g, '{{}}' FROM generate_series(0, 2) g")
    frame = pd.DataFrame({"id": [0, 1, 2], "doc": pd.Series(docs, dtype=object)})
    key = ["id"] if mode in ("update", "upsert") else None

    writer.write("docs", frame, mode=mode, key_columns=key, schema=schema)

    rows = db.fetch(f'SELECT doc FROM "{schema}".docs ORDER BY id')
    assert [json.loads(r["doc"]) for r in rows] == docs


@pytest.mark.parametrize("create", [True, False], ids=["create", "existing-table"])
def test_frame_with_integer_column_labels_is_written_under_their_names(
    create: bool, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """A frame built without column names (labels 0, 1) writes into columns "0" and "1"."""
    if not create:
        db.execute(f'CREATE TABLE "{schema}".labels ("0" bigint, "1" bigint)')
    frame = pd.DataFrame(np.arange(6, dtype=np.int64).reshape(3, 2))

    result = writer.write("labels", frame, schema=schema, create=create)

    assert result.columns == ("0", "1")
    rows = db.fetch(f'SELECT "0", "1" FROM "{schema}".labels ORDER BY 1')
    assert [tuple(r) for r in rows] == [(0, 1), (2, 3), (4, 5)]


@pytest.mark.parametrize("mode", MODES)
def test_negative_numeric_scale_takes_multiples_and_refuses_the_rest(
    mode: Mode, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """numeric(5, -2) (PostgreSQL 15+) stores hundreds: 1200 goes in as it is, 1250 is refused
    rather than rounded by the server."""
    if int(db.fetchval("SHOW server_version_num")) < 150_000:
        pytest.skip("numeric with a negative scale needs PostgreSQL 15 or newer")
    db.execute(f'CREATE TABLE "{schema}".hundreds (id int PRIMARY KEY, v numeric(5, -2))')
    if mode == "update":
        db.execute(f'INSERT INTO "{schema}".hundreds SELECT g, 0 FROM generate_series(0, 2) g')
    key = ["id"] if mode in ("update", "upsert") else None
    good = pd.DataFrame({"id": [0, 1, 2], "v": [1200, -9_999_900, 0]})

    writer.write("hundreds", good, mode=mode, key_columns=key, schema=schema)

    rows = db.fetch(f'SELECT v FROM "{schema}".hundreds ORDER BY id')
    assert [int(r["v"]) for r in rows] == [1200, -9_999_900, 0]
    for values in ([1250, 0, 0], [1200.0, 0.5, 0.0]):
        bad = pd.DataFrame({"id": [0, 1, 2], "v": values})
        with pytest.raises(BadValueError, match="hundreds"):
            writer.write("hundreds", bad, mode=mode, key_columns=key, schema=schema)
    after = db.fetch(f'SELECT v FROM "{schema}".hundreds ORDER BY id')
    assert [int(r["v"]) for r in after] == [1200, -9_999_900, 0]
