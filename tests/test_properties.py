"""Random frames of every supported type, NULLs included, read back equal through every mode.

Each test owns one table and one held writer; examples TRUNCATE it and go through the writer's
own pool, so an example costs a few milliseconds. CI runs a handful of examples per type and
mode; ``-m slow`` runs 2,000 per type and mode (10,000 per type).
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd
import pytest
from _support import KEYED, MODES, q, require_slow
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resources import Mode, PostgresBulkWriter

UTC = dt.UTC
ZONES = [zoneinfo.ZoneInfo(z) for z in ("America/New_York", "Europe/London", "Australia/Lord_Howe")]
# Instants around DST switches (2024): the hour that repeats and the hour that is skipped.
DST_EDGES = [
    dt.datetime(2024, 3, 10, 7, 0, tzinfo=UTC),  # New York springs forward
    dt.datetime(2024, 11, 3, 6, 0, tzinfo=UTC),  # New York falls back
    dt.datetime(2024, 3, 31, 1, 0, tzinfo=UTC),  # London
    dt.datetime(2024, 10, 27, 1, 0, tzinfo=UTC),
    dt.datetime(2024, 4, 6, 15, 0, tzinfo=UTC),  # Lord Howe: a 30-minute shift
]
# Lone surrogates cannot be encoded as UTF-8, so no text column can hold them.
SURROGATES: tuple[Literal["Cs"]] = ("Cs",)
TEXT = st.text(st.characters(exclude_categories=SURROGATES, exclude_characters="\x00"), max_size=40)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=10,
)


def _instant(moment: dt.datetime) -> st.SearchStrategy[dt.datetime]:
    return st.sampled_from([*ZONES, UTC]).map(moment.astimezone)


AWARE = st.one_of(
    st.datetimes(dt.datetime(1, 1, 2), dt.datetime(9999, 12, 30)).map(
        lambda d: d.replace(tzinfo=UTC)
    ),
    st.sampled_from(DST_EDGES).flatmap(
        lambda edge: st.integers(-7200, 7200).flatmap(
            lambda s: _instant(edge + dt.timedelta(seconds=s))
        )
    ),
).flatmap(_instant)


def _json_norm(value: Any) -> Any:
    """jsonb keeps numbers as numeric: 1.0 comes back as 1, 1e300 as its exact digits."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list):
        return [_json_norm(v) for v in value]
    return {k: _json_norm(v) for k, v in value.items()}


def _float_eq(got: Any, want: Any) -> bool:
    return got == want and math.copysign(1, got) == math.copysign(1, want)


@dataclass(frozen=True)
class Kind:
    sql: str
    values: st.SearchStrategy[Any]
    dtype: Any = object
    expect: Callable[[Any], Any] = lambda v: v
    equal: Callable[[Any, Any], bool] = lambda a, b: a == b and type(a) is type(b)


def _ints(bits: int) -> st.SearchStrategy[int]:
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return st.one_of(st.sampled_from([low, high, 0, -1]), st.integers(low, high))


KINDS: dict[str, Kind] = {
    "int2": Kind("smallint", _ints(16), dtype="Int16"),
    "int4": Kind("integer", _ints(32), dtype="Int32"),
    "int8": Kind("bigint", _ints(64)),
    "float8": Kind(
        "double precision",
        st.floats(allow_nan=False) | st.sampled_from([math.inf, -math.inf, -0.0, 5e-324]),
        dtype="float64",
        equal=_float_eq,
    ),
    "float4": Kind("real", st.floats(width=32, allow_nan=False), dtype="float32", equal=_float_eq),
    "numeric": Kind(
        "numeric",
        st.builds(
            lambda n, s: decimal.Decimal(n).scaleb(-s),
            st.integers(-(10**40), 10**40),
            st.integers(0, 30),
        )
        | st.sampled_from([decimal.Decimal("Infinity"), decimal.Decimal("-Infinity")]),
    ),
    "text": Kind("text", TEXT),
    "text-str-dtype": Kind("text", TEXT, dtype="str"),
    "bool": Kind("boolean", st.booleans(), dtype="boolean"),
    "date": Kind("date", st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31))),
    "timestamp": Kind("timestamp", st.datetimes(dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31))),
    # astimezone first: by PEP 495 a datetime with fold=1 in a repeated hour never compares
    # equal to one in another zone, even at the same instant.
    "timestamptz": Kind("timestamptz", AWARE, equal=lambda a, b: a == b.astimezone(UTC)),
    "interval": Kind("interval", st.timedeltas(-dt.timedelta(10**6), dt.timedelta(10**6))),
    "bytea": Kind("bytea", st.binary(max_size=40)),
    # asyncpg returns its own UUID subclass, equal to the uuid.UUID written.
    "uuid": Kind("uuid", st.uuids(), equal=lambda a, b: a == b),
    "jsonb": Kind(
        "jsonb",
        # A top-level str is taken as JSON text (the contract); documents are everything else.
        JSON.filter(lambda v: not isinstance(v, str)),
        expect=_json_norm,
        equal=lambda got, want: _json_norm(json.loads(got)) == want,
    ),
}


def _run_examples(dsn: str, db: Any, schema: str, kind: Kind, mode: Mode, examples: int) -> None:
    table = f"{q(schema)}.p"
    db.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, v {kind.sql})")
    with PostgresBulkWriter(dsn=dsn) as writer:

        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(st.lists(st.none() | kind.values, max_size=12))
        def example(values: list[Any]) -> None:
            writer.execute(f"TRUNCATE {table}")
            n = len(values)
            if mode == "update":
                writer.execute(f"INSERT INTO {table} (id) SELECT generate_series(0, $1)", n - 1)
            elif mode == "upsert":
                writer.execute(f"INSERT INTO {table} (id) SELECT generate_series(0, $1, 2)", n - 1)
            frame = pd.DataFrame({"id": range(n), "v": pd.Series(values, dtype=kind.dtype)})
            writer.write(
                "p", frame, schema=schema, mode=mode, key_columns=["id"] if mode in KEYED else None
            )
            got = [r["v"] for r in writer.fetch(f"SELECT v FROM {table} ORDER BY id")]
            assert len(got) == n
            for i, (value, back) in enumerate(zip(values, got, strict=True)):
                if value is None:
                    assert back is None, (i, value, back)
                else:
                    assert back is not None and kind.equal(back, kind.expect(value)), (
                        i,
                        value,
                        back,
                    )

        example()


CASES = [(name, mode) for name in KINDS for mode in MODES]


@pytest.mark.parametrize(("name", "mode"), CASES)
def test_random_values_round_trip(name: str, mode: Mode, dsn: str, db: Any, schema: str) -> None:
    _run_examples(dsn, db, schema, KINDS[name], mode, examples=6)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "mode"), CASES)
def test_random_values_round_trip_long(
    name: str, mode: Mode, dsn: str, db: Any, schema: str, request: pytest.FixtureRequest
) -> None:
    require_slow(request)
    _run_examples(dsn, db, schema, KINDS[name], mode, examples=2_000)
