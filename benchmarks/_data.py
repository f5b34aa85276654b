"""The benchmark's tables and rows: a narrow and a wide table, their DataFrames (seeded, so
every run writes the same values) and the plain tuples a raw asyncpg loader would send."""

from __future__ import annotations

import decimal
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

SEED = 20_240_601
# One row in ten is NULL in every nullable column of the wide table.
NULL_FRACTION = 0.10
# The update benchmark rewrites this share of the table's keys (100,000 of 1,000,000).
UPDATE_FRACTION = 0.10
# Values written by an update are told apart from the loaded ones by this qty range: the
# loaded table holds 0..999, an update writes 1000..1999 (never NULL).
UPDATED_QTY_FROM = 1_000
_FIRST_NAMES = np.array(
    ["ada", "alan", "barbara", "edsger", "grace", "john", "ken", "linus", "margaret", "niklaus"]
)


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True, slots=True)
class TableShape:
    """One benchmark table: its DDL body, the columns a write sends and the key."""

    kind: str
    columns: tuple[str, ...]
    # Column definitions of the append target (narrow: a bigserial id the server fills in).
    ddl: str
    # Column definitions of a keyed copy for update/upsert: the key comes from the data.
    keyed_ddl: str

    def create_sql(self, schema: str, table: str, *, keyed: bool = False) -> str:
        body = self.keyed_ddl if keyed else self.ddl
        return f"CREATE TABLE {quote(schema)}.{quote(table)} ({body})"

    @property
    def keyed_columns(self) -> tuple[str, ...]:
        return self.columns if self.columns[0] == "id" else ("id", *self.columns)


NARROW = TableShape(
    kind="narrow",
    columns=("name", "email"),
    ddl="id bigserial PRIMARY KEY, name text, email text",
    keyed_ddl="id bigint PRIMARY KEY, name text, email text",
)
_WIDE_DDL = (
    "id bigint PRIMARY KEY, qty integer, score double precision, price numeric(12,2), "
    "label text, active boolean, created_at timestamptz, day date, payload jsonb, ref uuid"
)
WIDE = TableShape(
    kind="wide",
    columns=(
        "id",
        "qty",
        "score",
        "price",
        "label",
        "active",
        "created_at",
        "day",
        "payload",
        "ref",
    ),
    ddl=_WIDE_DDL,
    keyed_ddl=_WIDE_DDL,
)
SHAPES = {"narrow": NARROW, "wide": WIDE}


def update_rows(rows: int) -> int:
    return max(1, int(rows * UPDATE_FRACTION))


def narrow_frame(rows: int, *, seed: int = SEED, start: int = 0, marker: str = "") -> pd.DataFrame:
    """``rows`` users: name and email, unique through the row number ``start + i``."""
    rng = np.random.default_rng(seed)
    numbers = pd.Series(np.arange(start, start + rows, dtype=np.int64)).astype("str")
    first = pd.Series(rng.choice(_FIRST_NAMES, size=rows)).astype("str")
    name = marker + first + " " + numbers
    email = first + "." + numbers + "@example.com"
    return pd.DataFrame({"name": name, "email": email})


def _nulls(rng: np.random.Generator, rows: int) -> np.ndarray:
    return rng.random(rows) < NULL_FRACTION


def wide_frame(
    ids: np.ndarray, *, seed: int = SEED, qty_from: int = 0, qty_nulls: bool = True
) -> pd.DataFrame:
    """One row per id, every nullable column NULL in about 10% of rows."""
    rng = np.random.default_rng(seed)
    rows = len(ids)

    qty = pd.array(rng.integers(qty_from, qty_from + 1_000, size=rows), dtype="Int32")
    if qty_nulls:
        qty[_nulls(rng, rows)] = pd.NA
    score = rng.normal(100.0, 25.0, size=rows)
    score[_nulls(rng, rows)] = np.nan
    # Two decimals exactly, as numeric(12,2) keeps them: the writer refuses to round.
    price = np.round(rng.uniform(0, 100_000, size=rows), 2)
    price[_nulls(rng, rows)] = np.nan
    label = "label " + pd.Series(rng.integers(0, 50_000, size=rows)).astype("str")
    label[_nulls(rng, rows)] = pd.NA
    active = pd.array(rng.random(rows) < 0.5, dtype="boolean")
    active[_nulls(rng, rows)] = pd.NA
    # Whole microseconds: PostgreSQL keeps no finer, and the writer refuses to drop any.
    start = np.datetime64("2020-01-01T00:00:00", "us")
    micros = rng.integers(0, 4 * 365 * 86_400 * 10**6, size=rows)
    created = pd.Series(start + micros.astype("timedelta64[us]")).dt.tz_localize("UTC")
    created[_nulls(rng, rows)] = pd.NaT
    days = pd.Series(np.datetime64("2015-01-01", "s") + rng.integers(0, 3_650, size=rows) * 86_400)
    days = days.astype("datetime64[s]")
    days[_nulls(rng, rows)] = pd.NaT
    k = pd.Series(rng.integers(0, 1_000_000, size=rows)).astype("str")
    v = pd.Series(np.round(rng.random(rows), 4)).astype("str")
    payload = '{"k": ' + k + ', "tags": ["a", "b"], "v": ' + v + "}"
    payload[_nulls(rng, rows)] = pd.NA
    hexes = np.frombuffer(rng.bytes(16 * rows), dtype="S16")
    ref = pd.Series([_uuid_text(h) for h in hexes], dtype="str")
    ref[_nulls(rng, rows)] = pd.NA
    return pd.DataFrame(
        {
            "id": np.asarray(ids, dtype=np.int64),
            "qty": qty,
            "score": score,
            "price": price,
            "label": label,
            "active": active,
            "created_at": created,
            "day": days,
            "payload": payload,
            "ref": ref,
        }
    )


def _uuid_text(raw: bytes) -> str:
    h = raw.ljust(16, b"\0").hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def insert_frame(kind: str, rows: int) -> pd.DataFrame:
    if kind == "narrow":
        return narrow_frame(rows)
    return wide_frame(np.arange(1, rows + 1, dtype=np.int64))


def update_frame(kind: str, rows: int) -> pd.DataFrame:
    """10% of the keys 1..rows in random order, each with new values (qty >= 1000)."""
    rng = np.random.default_rng(SEED + 1)
    ids = rng.choice(np.arange(1, rows + 1, dtype=np.int64), size=update_rows(rows), replace=False)
    if kind == "narrow":
        frame = narrow_frame(len(ids), seed=SEED + 2, marker="upd ")
        frame.insert(0, "id", ids)
        return frame
    return wide_frame(ids, seed=SEED + 2, qty_from=UPDATED_QTY_FROM, qty_nulls=False)


def keyed_frame(kind: str, rows: int) -> pd.DataFrame:
    """The rows of the update target as loaded before an update: keys 1..rows."""
    if kind == "narrow":
        frame = narrow_frame(rows)
        frame.insert(0, "id", np.arange(1, rows + 1, dtype=np.int64))
        return frame
    return insert_frame(kind, rows)


def stream_chunks(rows: int, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """``rows`` narrow rows as DataFrames of ``chunk_rows``, each made only when asked for."""
    for index, start in enumerate(range(0, rows, chunk_rows)):
        yield narrow_frame(min(chunk_rows, rows - start), seed=SEED + 100 + index, start=start)


def frame_to_tuples(frame: pd.DataFrame) -> list[tuple[Any, ...]]:
    """Rows as tuples of the Python values asyncpg encodes: what a hand-written loader builds
    before ``executemany`` or ``copy_records_to_table`` (NULL as None, numeric as Decimal)."""
    return list(zip(*(_python_values(frame[c]) for c in frame.columns), strict=True))


def _python_values(series: pd.Series) -> list[Any]:
    na = np.asarray(series.isna(), dtype=bool)
    dtype = series.dtype
    values: list[Any]
    if isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(dtype):
        stamps = series.astype(object).tolist()
        if series.name == "day":
            values = [None if m else s.date() for s, m in zip(stamps, na, strict=True)]
        else:
            values = [None if m else s.to_pydatetime() for s, m in zip(stamps, na, strict=True)]
        return values
    if series.name == "price":
        return [
            None if m else decimal.Decimal(repr(x))
            for x, m in zip(series.tolist(), na, strict=True)
        ]
    if pd.api.types.is_float_dtype(dtype):
        values = series.tolist()
    else:
        values = series.to_numpy(dtype=object, na_value=None).tolist()
    if na.any():
        for i in np.flatnonzero(na).tolist():
            values[i] = None
    return values


def arrow_for_adbc(frame: pd.DataFrame) -> Any:
    """The frame as the Arrow table ADBC's PostgreSQL driver can COPY into the table: it has
    no float-to-numeric, timestamp-to-date or string-to-jsonb/uuid conversion of its own."""
    import pyarrow as pa
    import pyarrow.compute as pc

    table = pa.Table.from_pandas(frame, preserve_index=False)
    if "price" not in frame.columns:
        return table
    retyped = {
        "price": pc.cast(table.column("price"), pa.decimal128(12, 2)),
        "day": pc.cast(table.column("day"), pa.date32()),
        "payload": pa.ExtensionArray.from_storage(
            pa.json_(pa.string()), table.column("payload").combine_chunks().cast(pa.string())
        ),
        "ref": pa.array(
            [None if r is None else uuid.UUID(r).bytes for r in table.column("ref").to_pylist()],
            type=pa.uuid(),
        ),
    }
    for name, column in retyped.items():
        index = table.schema.get_field_index(name)
        table = table.set_column(index, pa.field(name, column.type), column)
    return table


def to_sql_input(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The frame and SQLAlchemy column types for ``DataFrame.to_sql``: JSON documents as the
    Python objects SQLAlchemy serializes (parsing them is not timed), UUIDs cast from text."""
    if "payload" not in frame.columns:
        return frame, {}
    from sqlalchemy.dialects import postgresql

    documents = frame["payload"].map(json.loads, na_action="ignore")
    return frame.assign(payload=documents), {
        "payload": postgresql.JSONB(none_as_null=True),
        "ref": postgresql.UUID(as_uuid=False),
    }
