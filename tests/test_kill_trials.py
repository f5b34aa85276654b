"""Backends killed at random moments, and a server restarted under a held writer.

Each trial starts a write of a replayable source (a DataFrame) and terminates every backend of
the writer (found by its application_name) after a seeded random delay spread over the load's
measured duration: while connecting, mid-COPY, in the staging statements, at COMMIT, or after
it is all done. Afterwards the table holds exactly the complete write, or, when the call raised
(retries used up, or an append whose COMMIT was cut off), exactly what it held before or the
complete write: never a part of it, never a row twice. No session of the writer outlives it,
and every call ends within its time limit.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import pandas as pd
import pytest
from _support import q, require_slow, sessions_of

from resources import KeyRange, Mode, OutcomeUnknownError, PostgresBulkWriter, TransientWriteError
from resources.embedded_postgres import EmbeddedPostgres

ROWS = 20_000
CHUNK = 5_000
# A write of 20,000 rows takes 0.05-0.3 s here; 30 s means it hung.
CALL_LIMIT = 30.0
SEED = 20_250_601


def _frame(trial: int) -> pd.DataFrame:
    ids = np.arange(ROWS, dtype=np.int64)
    return pd.DataFrame({"id": ids, "label": np.char.add(f"t{trial}-", ids.astype(str))})


def _expected_hash(frame: pd.DataFrame) -> str:
    import hashlib

    text = ",".join(f"{i}:{label}" for i, label in zip(frame["id"], frame["label"], strict=True))
    return hashlib.md5(text.encode()).hexdigest()


_STATE_SQL = (
    "SELECT count(*) AS n, count(DISTINCT id) AS d, "
    "coalesce(md5(string_agg(id::text || ':' || label, ',' ORDER BY id)), '') AS h FROM {t}"
)


async def _state(conn: asyncpg.Connection, table: str) -> tuple[int, int, str]:
    row = await conn.fetchrow(_STATE_SQL.format(t=table))
    assert row is not None
    return row["n"], row["d"], row["h"]


async def _prefill(conn: asyncpg.Connection, table: str, mode: Mode) -> None:
    """update finds every key; upsert finds every other key (so it inserts and updates)."""
    await conn.execute(f"TRUNCATE {table}")
    if mode == "update":
        await conn.execute(
            f"INSERT INTO {table} SELECT g, 'old' FROM generate_series(0, {ROWS - 1}) g"
        )
    elif mode == "upsert":
        await conn.execute(
            f"INSERT INTO {table} SELECT g, 'old' FROM generate_series(0, {ROWS - 1}, 2) g"
        )


async def _prefill_native(conn: asyncpg.Connection, schema: str, table: str, trial: int) -> None:
    """Odd trials replace a child holding old rows (TRUNCATE + COPY FREEZE), even ones load
    the slice for the first time (a new table ATTACHed at the end)."""
    await conn.execute(f"DROP TABLE IF EXISTS {q(schema)}.loads_0")
    if trial % 2:
        await conn.execute(
            f"CREATE TABLE {q(schema)}.loads_0 PARTITION OF {table} "
            f"FOR VALUES FROM (0) TO ({ROWS});"
            f"INSERT INTO {table} SELECT g, 'old' FROM generate_series(0, {ROWS - 1}) g"
        )


async def _relations(conn: asyncpg.Connection, schema: str) -> int:
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM pg_class WHERE relnamespace = $1::regnamespace "
            "AND relkind IN ('r', 'p')",
            q(schema),
        )
    )


class _Tally(Counter[str]):
    def line(self, mode: Mode) -> str:
        return (
            f"kill trials {mode}: {self['trials']} trials, {self['killed']} with a backend "
            f"killed, {self['retried']} retried, {self['raised']} raised, {self['lost']} rows "
            f"lost, {self['duplicated']} rows duplicated, {self['partial']} partial, "
            f"{self['hangs']} hangs, {self['leaked']} leaked sessions, "
            f"{self['orphans']} tables left behind"
        )


async def _trials(dsn: str, schema: str, mode: Mode, count: int, *, native: bool = False) -> _Tally:
    """``native``: each write replaces the slice [0, ROWS) of a range-partitioned table."""
    table = f"{q(schema)}.loads"
    key = ["id"] if mode in ("update", "upsert") else None
    options: dict[str, Any] = (
        {"replace": KeyRange("id", 0, ROWS), "native_partitions": True} if native else {}
    )
    tally = _Tally()
    rng = random.Random(f"{SEED}-{mode}-{count}")
    control = await asyncpg.connect(dsn)
    try:
        await control.execute(
            f"CREATE TABLE {table} (id bigint PRIMARY KEY, label text NOT NULL)"
            + (" PARTITION BY RANGE (id)" if native else "")
        )

        async def write(trial: int, app: str) -> Any:
            writer = PostgresBulkWriter(
                dsn=dsn, application_name=app, round_trip_timeout=10, connect_timeout=5
            )
            return await writer.awrite(
                "loads",
                _frame(trial),
                schema=schema,
                mode=mode,
                key_columns=key,
                chunk_size=CHUNK,
                **options,
            )

        async def prefill(trial: int) -> None:
            if native:
                await _prefill_native(control, schema, table, trial)
            else:
                await _prefill(control, table, mode)

        # The load's duration, connecting included, spans the kill moments; the first write
        # of a process pays for imports and type introspection, so the second one is timed.
        for warmup in (-2, -1):
            await prefill(warmup)
            started = time.monotonic()
            await write(warmup, f"warmup-{schema}")
            duration = time.monotonic() - started

        for trial in range(count):
            app = f"kill-{schema}-{trial}"
            await prefill(trial)
            before = await _state(control, table)
            frame = _frame(trial)
            complete = (ROWS, ROWS, _expected_hash(frame))
            task = asyncio.create_task(asyncio.wait_for(write(trial, app), CALL_LIMIT))
            started = time.monotonic()
            await asyncio.sleep(rng.uniform(0, duration))
            killed = await control.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = $1",
                app,
            )
            tally["trials"] += 1
            tally["killed"] += killed > 0
            raised: BaseException | None = None
            try:
                result = await task
                tally["retried"] += result.attempts > 1
            except TimeoutError:
                tally["hangs"] += 1
                raise
            except (TransientWriteError, OutcomeUnknownError) as exc:
                raised = exc
                tally["raised"] += 1
            assert time.monotonic() - started < CALL_LIMIT
            after = await _state(control, table)
            if after != complete:
                if raised is not None and after == before:
                    pass  # the call said it failed, and nothing of it stayed
                else:
                    tally["lost"] += max(0, ROWS - after[0])
                    tally["duplicated"] += after[0] - after[1]
                    tally["partial"] += 1
            deadline = time.monotonic() + 10
            while (left := await sessions_of(dsn, app)) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            tally["leaked"] += len(left)
            # A killed first load leaves no table beside the parent and its one child.
            tally["orphans"] += max(0, await _relations(control, schema) - 2)
            assert not tally["partial"], (
                f"trial {trial}: table {after}, expected {complete} or (if raised) {before}; "
                f"raised {raised!r}"
            )
    finally:
        await control.close()
    return tally


def _run(dsn: str, schema: str, mode: Mode, count: int, *, native: bool = False) -> None:
    tally = asyncio.run(_trials(dsn, schema, mode, count, native=native))
    print(tally.line(mode) + (" (native partitions)" if native else ""))
    assert tally["trials"] == count
    assert (tally["lost"], tally["duplicated"], tally["partial"]) == (0, 0, 0)
    assert (tally["hangs"], tally["leaked"], tally["orphans"]) == (0, 0, 0)
    # The delays are spread over the load, so most trials kill something mid-flight.
    assert tally["killed"] >= count // 3, tally.line(mode)


@pytest.mark.parametrize("mode", ["copy", "update", "upsert"])
def test_backend_killed_at_random_moments(mode: Mode, dsn: str, schema: str) -> None:
    _run(dsn, schema, mode, 20)


def test_native_partition_replace_killed_at_random_moments(dsn: str, schema: str) -> None:
    """TRUNCATE of the child or a new child ATTACHed, with COPY FREEZE: one transaction, so
    a kill leaves the old slice (or no child) or the new one, whole."""
    _run(dsn, schema, "copy", 20, native=True)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["copy", "update", "upsert"])
def test_backend_killed_at_random_moments_long(
    mode: Mode, dsn: str, schema: str, request: pytest.FixtureRequest
) -> None:
    require_slow(request)
    _run(dsn, schema, mode, 100)


# -- a server restarted between writes and between chunks --------------------------------------


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    """An embedded server of this test's own, so that restarting it disturbs no other test."""
    if os.environ.get("DATABASE_URL"):
        pytest.skip("needs the embedded server to restart it")
    server = EmbeddedPostgres(tmp_path / "pg")
    server.ensure_running()
    try:
        yield server
    finally:
        server.stop()


def _own_table(dsn: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("DROP TABLE IF EXISTS loads")
            await conn.execute("CREATE TABLE loads (id bigint PRIMARY KEY, label text NOT NULL)")
        finally:
            await conn.close()

    asyncio.run(run())


def _own_counts(dsn: str) -> tuple[int, int]:
    async def run() -> tuple[int, int]:
        conn = await asyncpg.connect(dsn)
        try:
            row = await conn.fetchrow("SELECT count(*), count(DISTINCT id) FROM loads")
            assert row is not None
            return row[0], row[1]
        finally:
            await conn.close()

    return asyncio.run(run())


def test_held_writer_survives_a_server_restart_between_writes(
    own_server: EmbeddedPostgres,
) -> None:
    """The pool's connections die with the server; the next write gets a fresh one instead of a
    stale one, and lands."""
    dsn = own_server.dsn()
    _own_table(dsn)
    with PostgresBulkWriter(dsn=dsn, application_name="restart-between") as writer:
        writer.write("loads", _frame(0).iloc[:1_000], chunk_size=500)
        own_server.stop()
        assert dsn == own_server.ensure_running()
        result = writer.write("loads", _frame(0).iloc[1_000:3_000], chunk_size=500)
    assert result.rows == 2_000
    assert _own_counts(dsn) == (3_000, 3_000)


@pytest.mark.parametrize("mode", ["copy", "upsert"])
def test_server_restart_between_chunks_is_retried_from_the_start(
    mode: Mode, own_server: EmbeddedPostgres
) -> None:
    """The source restarts the server after its second chunk (once): the transaction is lost with
    its connection, and the replayable source is written again, whole, once the server is back."""
    dsn = own_server.dsn()
    _own_table(dsn)
    restarted: list[float] = []
    frames = [_frame(1).iloc[i : i + 1_000] for i in range(0, 5_000, 1_000)]

    def source() -> Iterator[pd.DataFrame]:
        for n, frame in enumerate(frames):
            if n == 2 and not restarted:
                own_server.stop()
                own_server.ensure_running()
                restarted.append(time.monotonic())
            yield frame

    with PostgresBulkWriter(dsn=dsn, application_name="restart-chunks", retries=5) as writer:
        result = writer.write(
            "loads", source, mode=mode, key_columns=["id"] if mode == "upsert" else None
        )
    assert restarted
    assert result.attempts >= 2
    assert result.rows == 5_000
    assert _own_counts(dsn) == (5_000, 5_000)
