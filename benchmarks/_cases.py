"""The cases: what each one writes, how, and what it measures. Each runs in its own process
(see :mod:`benchmarks._measure`): set up a fresh table, load its data and warm up untimed,
then time the write alone, then count what arrived."""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import pickle
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pandas as pd

from resources import PostgresBulkWriter

from ._data import (
    NARROW,
    SHAPES,
    UPDATED_QTY_FROM,
    TableShape,
    arrow_for_adbc,
    frame_to_tuples,
    quote,
    stream_chunks,
    to_sql_input,
)
from ._measure import peak_rss_mb, rss_mb

# Rows per executemany call and per multi-row INSERT: large enough that round trips stop
# mattering, small enough to keep one statement's memory modest.
BATCH_ROWS = 5_000
# PostgreSQL's wire protocol counts bind parameters in an int16: at most 32,767 per statement,
# so ten columns allow 3,276 rows per INSERT.
MAX_BIND_PARAMS = 32_767
# Rows the one-at-a-time case really sends; its rate is extrapolated to the full count.
SAMPLE_ROWS = 5_000
# Rows pandas.to_sql really sends (6k to 30k rows/s: 1M rows would take minutes a round).
TO_SQL_SAMPLE_ROWS = 50_000
# Rows written by the writer before timing: opens the pool and fills its caches.
WARMUP_ROWS = 1_000
STREAM_FACTOR = 10
STREAM_CHUNK_ROWS = 50_000

SERVER_FILE = "server_file"
CLIENT_FILE = "client_file"


@dataclass(frozen=True, slots=True)
class CaseSpec:
    """Everything a case's process needs: picklable, no connection, no data."""

    section: str
    case: str
    kind: str
    rows: int
    dsn: str
    schema: str
    data_dir: str
    ceiling_source: str = SERVER_FILE
    sample_rows: int = SAMPLE_ROWS
    stream_factor: int = STREAM_FACTOR


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    run: Callable[[Run], Awaitable[int]]
    # The case whose rows/s is 1.0x: the server's own load of the same rows.
    group: str = "insert"
    ceiling: bool = False
    optional: bool = False
    note: str = ""


@dataclass(slots=True)
class Run:
    """One case in progress: its connection, its table and the clock."""

    spec: CaseSpec
    conn: asyncpg.Connection
    shape: TableShape
    table: str
    seconds: float = 0.0
    start_rss: float = 0.0
    checkpoint: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def qualified(self) -> str:
        return f"{quote(self.spec.schema)}.{quote(self.table)}"

    def data(self, name: str) -> pd.DataFrame:
        with open(Path(self.spec.data_dir) / f"{self.spec.kind}_{name}.pkl", "rb") as f:
            frame: pd.DataFrame = pickle.load(f)
        return frame

    async def fresh_table(self, table: str | None = None, *, keyed: bool = False) -> None:
        name = table or self.table
        schema = self.spec.schema
        await self.conn.execute(f"DROP TABLE IF EXISTS {quote(schema)}.{quote(name)}")
        await self.conn.execute(self.shape.create_sql(schema, name, keyed=keyed))

    async def settle(self) -> None:
        """Flush dirty buffers of earlier cases now, not during this one's timing."""
        try:
            await self.conn.execute("CHECKPOINT")
        except asyncpg.InsufficientPrivilegeError:
            self.checkpoint = False

    def timed(self) -> _Timer:
        return _Timer(self)


class _Timer:
    def __init__(self, run: Run) -> None:
        self._run = run
        self._started = 0.0

    def __enter__(self) -> None:
        self._run.start_rss = rss_mb()
        self._started = time.perf_counter()

    def __exit__(self, *exc_info: object) -> None:
        self._run.seconds = time.perf_counter() - self._started


def insert_sql(qualified: str, columns: Sequence[str], rows: int = 1) -> str:
    width = len(columns)
    values = ", ".join(
        "(" + ", ".join(f"${r * width + c + 1}" for c in range(width)) + ")" for r in range(rows)
    )
    names = ", ".join(quote(c) for c in columns)
    return f"INSERT INTO {qualified} ({names}) VALUES {values}"


def multirow_batch(columns: Sequence[str]) -> int:
    return min(BATCH_ROWS, MAX_BIND_PARAMS // len(columns))


# -- appending: narrow and wide -----------------------------------------------------------------


async def _ceiling_copy(run: Run) -> int:
    cols = run.shape.columns
    path = str(Path(run.spec.data_dir) / f"{run.spec.kind}.bin")
    names = ", ".join(quote(c) for c in cols)
    literal = "'" + path.replace("'", "''") + "'"
    with run.timed():
        if run.spec.ceiling_source == SERVER_FILE:
            await run.conn.execute(
                f"COPY {run.qualified} ({names}) FROM {literal} WITH (FORMAT binary)"
            )
        else:
            await run.conn.copy_to_table(
                run.table,
                source=path,
                columns=list(cols),
                schema_name=run.spec.schema,
                format="binary",
            )
    return run.spec.rows


async def _one_at_a_time(run: Run) -> int:
    sample = min(run.spec.sample_rows, run.spec.rows)
    records = frame_to_tuples(run.data("insert").head(sample))
    sql = insert_sql(run.qualified, run.shape.columns)
    await run.conn.execute(sql, *records[0])  # prepares the statement outside the timing
    await run.conn.execute(f"TRUNCATE {run.qualified}")
    # Autocommit: each row is its own transaction, as in a loop over conn.execute.
    with run.timed():
        for record in records:
            await run.conn.execute(sql, *record)
    run.extra["sampled"] = True
    return sample


async def _executemany_in_batches(run: Run, sql: str, records: list[tuple[Any, ...]]) -> None:
    for start in range(0, len(records), BATCH_ROWS):
        await run.conn.executemany(sql, records[start : start + BATCH_ROWS])


async def _raw_executemany(run: Run, *, from_frame: bool = False) -> int:
    frame = run.data("insert")
    records = [] if from_frame else frame_to_tuples(frame)
    sql = insert_sql(run.qualified, run.shape.columns)
    with run.timed():
        if from_frame:
            records = frame_to_tuples(frame)
        async with run.conn.transaction():
            await _executemany_in_batches(run, sql, records)
    return len(records)


async def _raw_multirow_insert(run: Run, *, from_frame: bool = False) -> int:
    frame = run.data("insert")
    records = [] if from_frame else frame_to_tuples(frame)
    cols = run.shape.columns
    per = multirow_batch(cols)
    full = insert_sql(run.qualified, cols, per)
    with run.timed():
        if from_frame:
            records = frame_to_tuples(frame)
        async with run.conn.transaction():
            for start in range(0, len(records), per):
                batch = records[start : start + per]
                sql = full if len(batch) == per else insert_sql(run.qualified, cols, len(batch))
                await run.conn.execute(sql, *[v for record in batch for v in record])
    return len(records)


async def _raw_copy_records(run: Run) -> int:
    records = frame_to_tuples(run.data("insert"))
    with run.timed():
        await run.conn.copy_records_to_table(
            run.table, records=records, columns=list(run.shape.columns), schema_name=run.spec.schema
        )
    return len(records)


async def _raw_copy_records_from_frame(run: Run) -> int:
    frame = run.data("insert")
    with run.timed():
        records = frame_to_tuples(frame)
        await run.conn.copy_records_to_table(
            run.table, records=records, columns=list(run.shape.columns), schema_name=run.spec.schema
        )
    return len(records)


def _ours(mode: str, *, key_columns: tuple[str, ...] = ()) -> Callable[[Run], Awaitable[int]]:
    async def case(run: Run) -> int:
        frame = run.data("update" if key_columns else "insert")
        warmup = f"{run.table}_warmup"
        await run.fresh_table(warmup, keyed=bool(key_columns))
        with PostgresBulkWriter(dsn=run.spec.dsn) as writer:
            options: dict[str, Any] = {"mode": mode, "schema": run.spec.schema}
            if key_columns:
                options["key_columns"] = key_columns
            writer.write(warmup, frame.head(WARMUP_ROWS), **options)
            await run.conn.execute(f"DROP TABLE {quote(run.spec.schema)}.{quote(warmup)}")
            with run.timed():
                result = writer.write(run.table, frame, **options)
        return result.rows

    return case


async def _pandas_to_sql(run: Run) -> int:
    import sqlalchemy

    sample = min(TO_SQL_SAMPLE_ROWS, run.spec.rows)
    frame, dtype = to_sql_input(run.data("insert").head(sample))
    engine = sqlalchemy.create_engine(_sqlalchemy_url(run.spec.dsn))
    try:
        frame.head(WARMUP_ROWS).to_sql(
            run.table,
            engine,
            schema=run.spec.schema,
            if_exists="append",
            index=False,
            dtype=dtype,
        )
        await run.conn.execute(f"TRUNCATE {run.qualified}")
        with run.timed():
            frame.to_sql(
                run.table,
                engine,
                schema=run.spec.schema,
                if_exists="append",
                index=False,
                method="multi",
                chunksize=multirow_batch(run.shape.columns),
                dtype=dtype,
            )
    finally:
        engine.dispose()
    run.extra["sampled"] = True
    return sample


async def _adbc_ingest(run: Run) -> int:
    import adbc_driver_postgresql.dbapi as adbc

    frame = run.data("insert")
    with adbc.connect(run.spec.dsn) as conn, conn.cursor() as cursor:
        cursor.adbc_ingest(
            run.table,
            arrow_for_adbc(frame.head(WARMUP_ROWS)),
            mode="append",
            db_schema_name=run.spec.schema,
        )
        conn.commit()
        await run.conn.execute(f"TRUNCATE {run.qualified}")
        with run.timed():
            # DataFrame to Arrow is timed, as DataFrame to COPY is in the writer's cases.
            table = arrow_for_adbc(frame)
            cursor.adbc_ingest(run.table, table, mode="append", db_schema_name=run.spec.schema)
            conn.commit()
    return len(frame)


def sync_driver() -> str | None:
    """The first PostgreSQL DB-API driver SQLAlchemy could use here, if any."""
    for module, dialect in (("psycopg", "psycopg"), ("psycopg2", "psycopg2"), ("pg8000", "pg8000")):
        if importlib.util.find_spec(module) is not None:
            return dialect
    return None


def _sqlalchemy_url(dsn: str) -> str:
    rest = dsn.partition("://")[2]
    return f"postgresql+{sync_driver()}://{rest}"


def missing_optional(name: str) -> str | None:
    """Why an optional case cannot run here, or None when it can."""
    if name == "pandas_to_sql_multi":
        if importlib.util.find_spec("sqlalchemy") is None:
            return "SQLAlchemy is not installed"
        if sync_driver() is None:
            return (
                "SQLAlchemy is installed but no synchronous PostgreSQL driver is "
                "(psycopg, psycopg2 or pg8000); pandas.to_sql cannot use asyncpg"
            )
    if name == "adbc_ingest" and importlib.util.find_spec("adbc_driver_postgresql") is None:
        return "adbc-driver-postgresql is not installed"
    return None


# -- update and upsert of 10% of the keys -------------------------------------------------------


def _set_list(shape: TableShape, source: str) -> str:
    return ", ".join(f"{quote(c)} = {source}.{quote(c)}" for c in shape.keyed_columns[1:])


async def _staged(run: Run) -> None:
    """The update's rows in a loaded temporary table, for the ceiling to read."""
    records = frame_to_tuples(run.data("update"))
    await run.conn.execute(f"CREATE TEMP TABLE staging (LIKE {run.qualified} INCLUDING DEFAULTS)")
    await run.conn.copy_records_to_table(
        "staging", records=records, columns=list(run.shape.keyed_columns)
    )
    await run.conn.execute("ANALYZE staging")


async def _ceiling_update(run: Run) -> int:
    await _staged(run)
    with run.timed():
        status = await run.conn.execute(
            f"UPDATE {run.qualified} AS t SET {_set_list(run.shape, 's')} "
            "FROM staging AS s WHERE t.id = s.id"
        )
    return int(status.split()[-1])


async def _ceiling_upsert(run: Run) -> int:
    await _staged(run)
    names = ", ".join(quote(c) for c in run.shape.keyed_columns)
    with run.timed():
        status = await run.conn.execute(
            f"INSERT INTO {run.qualified} ({names}) SELECT {names} FROM staging "
            f"ON CONFLICT (id) DO UPDATE SET {_set_list(run.shape, 'EXCLUDED')}"
        )
    return int(status.split()[-1])


async def _raw_executemany_update(run: Run) -> int:
    records = frame_to_tuples(run.data("update"))
    others = run.shape.keyed_columns[1:]
    sets = ", ".join(f"{quote(c)} = ${i + 2}" for i, c in enumerate(others))
    sql = f"UPDATE {run.qualified} SET {sets} WHERE id = $1"
    with run.timed():
        async with run.conn.transaction():
            await _executemany_in_batches(run, sql, records)
    return len(records)


async def _raw_executemany_upsert(run: Run) -> int:
    records = frame_to_tuples(run.data("update"))
    sql = (
        insert_sql(run.qualified, run.shape.keyed_columns)
        + f" ON CONFLICT (id) DO UPDATE SET {_set_list(run.shape, 'EXCLUDED')}"
    )
    with run.timed():
        async with run.conn.transaction():
            await _executemany_in_batches(run, sql, records)
    return len(records)


# -- streaming: memory of 10x N rows from a generator vs N rows in one DataFrame -------------


async def _stream_frame(run: Run) -> int:
    return await _ours("copy")(run)


async def _stream_generator(run: Run) -> int:
    rows = run.spec.rows * run.spec.stream_factor
    chunk = min(STREAM_CHUNK_ROWS, run.spec.rows)
    warmup = f"{run.table}_warmup"
    await run.fresh_table(warmup)
    with PostgresBulkWriter(dsn=run.spec.dsn) as writer:
        writer.write(warmup, stream_chunks(WARMUP_ROWS, WARMUP_ROWS), schema=run.spec.schema)
        await run.conn.execute(f"DROP TABLE {quote(run.spec.schema)}.{quote(warmup)}")
        with run.timed():
            result = writer.write(run.table, stream_chunks(rows, chunk), schema=run.spec.schema)
    return result.rows


# -- the catalogue ------------------------------------------------------------------------------

_FILE_NOTE = "the server reads a binary COPY file of the same rows from its own disk"
_CLIENT_NOTE = (
    "the server cannot read the client's file (remote or not superuser): the binary file's "
    "bytes are sent with COPY FROM STDIN"
)
APPEND_CASES: tuple[Case, ...] = (
    Case("server_copy_from_file", _ceiling_copy, ceiling=True, note=_FILE_NOTE),
    Case(
        "one_at_a_time",
        _one_at_a_time,
        note="conn.execute per row, autocommit; sampled, rate extrapolated",
    ),
    Case("raw_executemany", _raw_executemany, note="asyncpg executemany, 5,000-row batches"),
    Case("raw_multirow_insert", _raw_multirow_insert, note="INSERT ... VALUES of many rows"),
    Case(
        "raw_executemany_from_frame",
        functools.partial(_raw_executemany, from_frame=True),
        note="DataFrame to tuples timed too",
    ),
    Case(
        "raw_multirow_insert_from_frame",
        functools.partial(_raw_multirow_insert, from_frame=True),
        note="DataFrame to tuples timed too",
    ),
    Case("raw_copy_records", _raw_copy_records, note="tuples built before timing"),
    Case(
        "raw_copy_records_from_frame",
        _raw_copy_records_from_frame,
        note="DataFrame to tuples timed too",
    ),
    Case("ours_copy", _ours("copy")),
    Case("ours_executemany", _ours("executemany")),
    Case("ours_insert", _ours("insert")),
    Case(
        "pandas_to_sql_multi",
        _pandas_to_sql,
        optional=True,
        note="SQLAlchemy, method='multi'; sampled, rate extrapolated",
    ),
    Case("adbc_ingest", _adbc_ingest, optional=True, note="ADBC adbc_ingest from Arrow"),
)
CLIENT_CEILING = Case("copy_from_stdin_file", _ceiling_copy, ceiling=True, note=_CLIENT_NOTE)
UPDATE_CASES: tuple[Case, ...] = (
    Case(
        "server_update_from_staging",
        _ceiling_update,
        group="update",
        ceiling=True,
        note="UPDATE ... FROM a loaded table; only that statement is timed",
    ),
    Case(
        "server_upsert_from_staging",
        _ceiling_upsert,
        group="upsert",
        ceiling=True,
        note="INSERT ... SELECT ... ON CONFLICT DO UPDATE from a loaded table",
    ),
    Case("ours_update", _ours("update", key_columns=("id",)), group="update"),
    Case("ours_upsert", _ours("upsert", key_columns=("id",)), group="upsert"),
    Case(
        "raw_executemany_update",
        _raw_executemany_update,
        group="update",
        note="UPDATE ... WHERE id = $1, 5,000-row batches",
    ),
    Case(
        "raw_executemany_upsert",
        _raw_executemany_upsert,
        group="upsert",
        note="INSERT ... ON CONFLICT DO UPDATE, 5,000-row batches",
    ),
)
STREAM_CASES: tuple[Case, ...] = (
    Case("ours_copy_frame_1x", _stream_frame, note="one DataFrame of N rows"),
    Case(
        "ours_copy_generator_10x",
        _stream_generator,
        note="a generator of 50,000-row DataFrames, 10x N rows in all",
    ),
)


def cases_of(section: str, *, ceiling_source: str = SERVER_FILE) -> tuple[Case, ...]:
    if section in ("narrow", "wide"):
        if ceiling_source == CLIENT_FILE:
            return (CLIENT_CEILING, *APPEND_CASES[1:])
        return APPEND_CASES
    if section.startswith("update_"):
        return UPDATE_CASES
    return STREAM_CASES


def table_name(section: str, case: str) -> str:
    return f"{section}_{case}"


def find_case(spec: CaseSpec) -> Case:
    for case in cases_of(spec.section, ceiling_source=spec.ceiling_source):
        if case.name == spec.case:
            return case
    raise KeyError(f"no case {spec.case!r} in section {spec.section!r}")


# -- one case, in its own process -----------------------------------------------------------


def run_case(spec: CaseSpec) -> dict[str, Any]:
    """Set up, time and check one case; the result is plain data for the parent."""
    return asyncio.run(_run_case(spec))


async def _run_case(spec: CaseSpec) -> dict[str, Any]:
    case = find_case(spec)
    shape = NARROW if spec.section == "stream" else SHAPES[spec.kind]
    conn = await asyncpg.connect(spec.dsn)
    try:
        run = Run(spec=spec, conn=conn, shape=shape, table=table_name(spec.section, spec.case))
        updating = spec.section.startswith("update_")
        await run.fresh_table(keyed=updating)
        if updating:
            base = f"{quote(spec.schema)}.{quote(spec.kind + '_base')}"
            await conn.execute(f"INSERT INTO {run.qualified} SELECT * FROM {base}")
            await conn.execute(f"VACUUM ANALYZE {run.qualified}")
        await run.settle()
        rows = await case.run(run)
        counts = await _counts(run, updating)
    finally:
        await conn.close()
    return {
        "rows": rows,
        "seconds": run.seconds,
        "start_rss_mb": run.start_rss,
        "peak_rss_mb": peak_rss_mb(),
        "checkpoint": run.checkpoint,
        **counts,
        **run.extra,
    }


async def _counts(run: Run, updating: bool) -> dict[str, int]:
    counts = {
        "rows_in_table": int(await run.conn.fetchval(f"SELECT count(*) FROM {run.qualified}"))
    }
    if updating:
        changed = (
            "name LIKE 'upd %'"
            if run.shape.kind == "narrow"
            else f"qty >= {UPDATED_QTY_FROM}"  # the loaded rows hold qty 0..999
        )
        counts["rows_changed"] = int(
            await run.conn.fetchval(f"SELECT count(*) FROM {run.qualified} WHERE {changed}")
        )
    return counts
