"""Faults: a backend killed mid-write, a lock or statement that outlives its limit, a stale
pooled connection. Afterwards the table holds the whole write or none of it, and no session
of ours is left open."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

import asyncpg
import numpy as np
import pandas as pd
import pytest
from _support import sessions_of
from dagster import DagsterInstance, asset, materialize

from resources import (
    BulkWriteError,
    KeyRange,
    Mode,
    OutcomeUnknownError,
    PostgresBulkWriter,
    TransientWriteError,
    WriteResult,
    WriteTimeoutError,
)
from resources._sources import Data

CHUNK = 20_000
CHUNKS = 15


def _chunks() -> Iterator[pd.DataFrame]:
    for n in range(CHUNKS):
        ids = np.arange(n * CHUNK, (n + 1) * CHUNK, dtype=np.int64)
        yield pd.DataFrame({"id": ids, "label": np.char.add("row-", ids.astype(str))})


async def _kill_first_load(
    dsn: str, app: str, *, pattern: str = "COPY%", running_for: float = 0.0
) -> int:
    """Terminate the first backend of ours found running ``pattern`` (for at least
    ``running_for`` seconds); return its pid."""
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            pid = await conn.fetchval(
                "SELECT pid FROM pg_stat_activity WHERE application_name = $1 "
                "AND state = 'active' AND query LIKE $2 "
                "AND now() - query_start >= make_interval(secs => $3) LIMIT 1",
                app,
                pattern,
                running_for,
            )
            if pid is not None:
                await conn.execute("SELECT pg_terminate_backend($1)", pid)
                return int(pid)
            await asyncio.sleep(0.005)
        raise AssertionError("no load to kill was seen within 30 s")
    finally:
        await conn.close()


async def _our_sessions(dsn: str, app: str) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT state FROM pg_stat_activity WHERE application_name = $1", app
        )
        return [r["state"] for r in rows]
    finally:
        await conn.close()


def _make_table(db: Any, schema: str) -> None:
    db.execute(f'CREATE TABLE "{schema}".loads (id bigint NOT NULL, label text NOT NULL)')


def _counts(db: Any, schema: str) -> tuple[int, int]:
    row = db.fetch(f'SELECT count(*) AS n, count(DISTINCT id) AS d FROM "{schema}".loads')[0]
    return row["n"], row["d"]


async def _write_while_killing(
    writer: PostgresBulkWriter, dsn: str, data: Data, schema: str
) -> WriteResult:
    killer = asyncio.create_task(_kill_first_load(dsn, writer.application_name))
    try:
        return await writer.awrite("loads", data, schema=schema, chunk_size=CHUNK)
    finally:
        await killer


def test_killed_backend_mid_copy_is_retried_exactly_once(dsn: str, db: Any, schema: str) -> None:
    """A replayable source (a callable) is written again from the start after the kill:
    every row once, none twice."""
    _make_table(db, schema)
    writer = PostgresBulkWriter(dsn=dsn, application_name=f"faults-{schema}")
    result = asyncio.run(_write_while_killing(writer, dsn, _chunks, schema))
    assert result.attempts == 2
    assert result.rows == CHUNK * CHUNKS
    assert _counts(db, schema) == (CHUNK * CHUNKS, CHUNK * CHUNKS)


def test_killed_backend_with_one_shot_source_leaves_nothing(dsn: str, db: Any, schema: str) -> None:
    """A generator cannot be replayed: the write fails as transient, and nothing of it stays."""
    _make_table(db, schema)
    app = f"faults-{schema}"
    writer = PostgresBulkWriter(dsn=dsn, application_name=app)
    with pytest.raises(TransientWriteError) as caught:
        asyncio.run(_write_while_killing(writer, dsn, _chunks(), schema))
    assert "loads" in str(caught.value)
    assert _counts(db, schema) == (0, 0)
    deadline = time.monotonic() + 5
    while asyncio.run(_our_sessions(dsn, app)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert asyncio.run(_our_sessions(dsn, app)) == []


def _make_partitioned(db: Any, schema: str, *, child: bool) -> None:
    """loads range-partitioned on id; with ``child``, the slice's child holding old rows."""
    total = CHUNK * CHUNKS
    db.execute(
        f'CREATE TABLE "{schema}".loads (id bigint NOT NULL, label text NOT NULL) '
        "PARTITION BY RANGE (id)"
    )
    if child:
        db.execute(
            f'CREATE TABLE "{schema}".loads_0 PARTITION OF "{schema}".loads '
            f"FOR VALUES FROM (0) TO ({total});"
            f"INSERT INTO \"{schema}\".loads SELECT g, 'old' FROM generate_series(0, {total - 1}) g"
        )


@pytest.mark.parametrize("child", [True, False], ids=["truncate", "attach"])
def test_killed_native_partition_replace_is_retried_or_leaves_the_old_slice(
    dsn: str, db: Any, schema: str, child: bool
) -> None:
    """Killed mid-COPY FREEZE into the truncated (or new) child: a replayable source is
    written again, whole; a one-shot one fails and the old slice (or no child) stays."""
    total = CHUNK * CHUNKS
    _make_partitioned(db, schema, child=child)
    before = _counts(db, schema)
    app = f"faults-{schema}"
    writer = PostgresBulkWriter(dsn=dsn, application_name=app)

    async def replace(data: Data) -> WriteResult:
        killer = asyncio.create_task(_kill_first_load(dsn, app))
        try:
            return await writer.awrite(
                "loads",
                data,
                schema=schema,
                chunk_size=CHUNK,
                replace=KeyRange("id", 0, total),
                native_partitions=True,
            )
        finally:
            await killer

    with pytest.raises(TransientWriteError):
        asyncio.run(replace(_chunks()))
    assert _counts(db, schema) == before
    assert db.fetchval(f"SELECT to_regclass('\"{schema}\".loads_0') IS NOT NULL") is child
    result = asyncio.run(replace(_chunks))
    assert result.attempts == 2
    assert _counts(db, schema) == (total, total)
    assert db.fetchval(f"SELECT count(*) FROM \"{schema}\".loads WHERE label = 'old'") == 0


@pytest.mark.parametrize("mode", ["upsert", "update"])
def test_killed_backend_mid_staged_write_is_retried(
    dsn: str, db: Any, schema: str, mode: Mode
) -> None:
    db.execute(f'CREATE TABLE "{schema}".loads (id bigint PRIMARY KEY, label text NOT NULL)')
    db.execute(
        f"INSERT INTO \"{schema}\".loads SELECT g, 'old' FROM generate_series(0, $1) g",
        CHUNK * CHUNKS - 1,
    )
    writer = PostgresBulkWriter(dsn=dsn, application_name=f"faults-{schema}")

    async def run() -> WriteResult:
        killer = asyncio.create_task(_kill_first_load(dsn, writer.application_name))
        try:
            return await writer.awrite(
                "loads", _chunks, schema=schema, mode=mode, key_columns=["id"], chunk_size=CHUNK
            )
        finally:
            await killer

    result = asyncio.run(run())
    assert result.attempts == 2
    labels = db.fetch(
        "SELECT count(*) AS n, count(*) FILTER (WHERE label = 'old') AS old "
        f'FROM "{schema}".loads'
    )[0]
    assert labels["n"] == CHUNK * CHUNKS and labels["old"] == 0


def test_lock_timeout_names_the_limit(dsn: str, db: Any, schema: str) -> None:
    _make_table(db, schema)

    async def run() -> WriteTimeoutError:
        holder = await asyncpg.connect(dsn)
        try:
            async with holder.transaction():
                await holder.execute(f'LOCK TABLE "{schema}".loads IN ACCESS EXCLUSIVE MODE')
                writer = PostgresBulkWriter(dsn=dsn, lock_timeout=0.2, retries=0)
                with pytest.raises(WriteTimeoutError) as caught:
                    await writer.awrite("loads", [(1, "a")], columns=["id", "label"], schema=schema)
                return caught.value
        finally:
            await holder.close()

    error = asyncio.run(run())
    assert error.limit == "lock_timeout"
    assert "lock_timeout" in str(error)
    assert _counts(db, schema) == (0, 0)


def _slow_trigger(db: Any, schema: str, seconds: float) -> None:
    db.execute(
        f'CREATE FUNCTION "{schema}".slow() RETURNS trigger LANGUAGE plpgsql AS '
        f"$$ BEGIN PERFORM pg_sleep({seconds}); RETURN NEW; END $$"
    )
    db.execute(
        f'CREATE TRIGGER slow BEFORE INSERT ON "{schema}".loads '
        f'FOR EACH ROW EXECUTE FUNCTION "{schema}".slow()'
    )


def test_statement_timeout_names_the_limit(dsn: str, db: Any, schema: str) -> None:
    _make_table(db, schema)
    _slow_trigger(db, schema, 2)
    writer = PostgresBulkWriter(dsn=dsn, statement_timeout=0.3, retries=0)
    with pytest.raises(WriteTimeoutError) as caught:
        writer.write("loads", [(1, "a")], columns=["id", "label"], schema=schema)
    assert caught.value.limit == "statement_timeout"
    assert _counts(db, schema) == (0, 0)


def test_statement_timeout_is_not_retried(dsn: str, db: Any, schema: str) -> None:
    """A statement that outran statement_timeout would only outrun it again: one attempt,
    counted by a sequence that the trigger advances (sequences ignore the rollback)."""
    _make_table(db, schema)
    db.execute(f'CREATE SEQUENCE "{schema}".attempts')
    db.execute(
        f'CREATE FUNCTION "{schema}".slow() RETURNS trigger LANGUAGE plpgsql AS '
        f"$$ BEGIN PERFORM nextval('\"{schema}\".attempts'); PERFORM pg_sleep(2); "
        "RETURN NEW; END $$"
    )
    db.execute(
        f'CREATE TRIGGER slow BEFORE INSERT ON "{schema}".loads '
        f'FOR EACH ROW EXECUTE FUNCTION "{schema}".slow()'
    )
    writer = PostgresBulkWriter(dsn=dsn, statement_timeout=0.3, retries=3)
    with pytest.raises(WriteTimeoutError) as caught:
        writer.write("loads", [(1, "a")], columns=["id", "label"], schema=schema)
    assert caught.value.limit == "statement_timeout"
    assert db.fetchval(f'SELECT last_value FROM "{schema}".attempts') == 1


def test_unknown_mode_is_refused_before_anything_runs(dsn: str, db: Any, schema: str) -> None:
    _make_table(db, schema)
    with pytest.raises(ValueError, match="copyy"):
        PostgresBulkWriter(dsn=dsn).write(
            "loads",
            [(1, "a")],
            columns=["id", "label"],
            schema=schema,
            mode="copyy",  # type: ignore[arg-type]
        )
    assert _counts(db, schema) == (0, 0)


def test_silent_server_is_cut_off_by_the_round_trip_timeout(dsn: str, db: Any, schema: str) -> None:
    """With the server-side limit off, the client-side guard still ends the wait, and the
    abandoned connection is closed rather than returned to the pool."""
    _make_table(db, schema)
    _slow_trigger(db, schema, 3)
    writer = PostgresBulkWriter(
        dsn=dsn, statement_timeout=0, round_trip_timeout=0.5, retries=0, application_name=schema
    )
    started = time.monotonic()
    with pytest.raises(WriteTimeoutError) as caught:
        writer.write("loads", [(1, "a")], columns=["id", "label"], schema=schema)
    assert caught.value.limit == "round_trip_timeout"
    assert time.monotonic() - started < 2.5
    deadline = time.monotonic() + 10
    while asyncio.run(_our_sessions(dsn, schema)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert asyncio.run(_our_sessions(dsn, schema)) == []
    assert _counts(db, schema) == (0, 0)


def test_stale_pooled_connection_is_replaced(dsn: str, db: Any, schema: str) -> None:
    """Connections of a held pool killed between two writes: the next write still lands."""
    _make_table(db, schema)
    app = f"stale-{schema}"
    with PostgresBulkWriter(dsn=dsn, application_name=app) as writer:
        writer.write("loads", [(1, "a")], columns=["id", "label"], schema=schema)
        db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            app,
        )
        result = writer.write("loads", [(2, "b")], columns=["id", "label"], schema=schema)
    assert result.rows == 1
    assert _counts(db, schema) == (2, 2)


SENTINEL = "s3cr3t-Sentinel-9f2c"


@pytest.mark.parametrize(
    "bad_dsn",
    [
        f"postgresql://loader:{SENTINEL}@127.0.0.1:1/nowhere",
        f"postgresql://loader:{SENTINEL}@256.0.0.1:5432/nowhere",
    ],
)
def test_password_never_appears_in_errors_or_dagster_events(bad_dsn: str) -> None:
    writer = PostgresBulkWriter(dsn=bad_dsn, connect_timeout=2)
    assert SENTINEL not in repr(writer)
    with pytest.raises(BulkWriteError) as caught:
        writer.write("t", [(1,)], columns=["a"])
    rendered = "".join(traceback.format_exception(caught.value))
    assert SENTINEL not in rendered
    assert "***" in str(caught.value)

    @asset
    def leaky(writer: PostgresBulkWriter) -> None:
        writer.write("t", [(1,)], columns=["a"])

    instance = DagsterInstance.ephemeral()
    result = materialize(
        [leaky], resources={"writer": writer}, instance=instance, raise_on_error=False
    )
    assert not result.success
    logs = instance.all_logs(result.run_id)
    assert logs
    assert all(SENTINEL not in str(entry) for entry in logs)


def _deferred_slow_commit(db: Any, schema: str, seconds: float) -> None:
    """A deferred constraint trigger: COMMIT itself takes ``seconds``, a window to kill it in."""
    db.execute(
        f'CREATE FUNCTION "{schema}".slow_commit() RETURNS trigger LANGUAGE plpgsql AS '
        f"$$ BEGIN PERFORM pg_sleep({seconds}); RETURN NULL; END $$"
    )
    db.execute(
        f'CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON "{schema}".loads '
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
        f'WHEN (NEW.id = 0) EXECUTE FUNCTION "{schema}".slow_commit()'
    )


def test_connection_lost_at_commit_of_a_copy_is_not_resent(dsn: str, db: Any, schema: str) -> None:
    """COMMIT's outcome is unknown to the client: an append is never sent again (it could
    duplicate), the caller is told so. Here the server had not committed, so nothing is there."""
    _make_table(db, schema)
    _deferred_slow_commit(db, schema, 1)
    writer = PostgresBulkWriter(dsn=dsn, application_name=f"commit-{schema}")

    async def run() -> None:
        killer = asyncio.create_task(
            _kill_first_load(dsn, writer.application_name, pattern="COMMIT%")
        )
        try:
            await writer.awrite("loads", _chunks, schema=schema, chunk_size=CHUNK)
        finally:
            await killer

    with pytest.raises(OutcomeUnknownError) as caught:
        asyncio.run(run())
    assert "may or may not" in str(caught.value)
    assert _counts(db, schema) == (0, 0)


def test_a_deadlock_reported_at_commit_of_an_append_is_retried_once(
    dsn: str, db: Any, schema: str
) -> None:
    """A deferred trigger that fails COMMIT with a deadlock: the server said it rolled back,
    so the outcome is known and the append runs again, storing every row once."""
    _make_table(db, schema)
    # nextval is not rolled back with the transaction: only the first COMMIT fails.
    db.execute(f'CREATE SEQUENCE "{schema}".commits')
    db.execute(
        f'CREATE FUNCTION "{schema}".deadlock_once() RETURNS trigger LANGUAGE plpgsql AS $$ '
        f"BEGIN IF nextval('\"{schema}\".commits') = 1 THEN "
        "RAISE EXCEPTION 'deadlock detected' USING ERRCODE = '40P01'; END IF; "
        "RETURN NULL; END $$"
    )
    db.execute(
        f'CREATE CONSTRAINT TRIGGER deadlock_once AFTER INSERT ON "{schema}".loads '
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
        f'WHEN (NEW.id = 0) EXECUTE FUNCTION "{schema}".deadlock_once()'
    )
    frame = pd.DataFrame({"id": np.arange(1_000), "label": "x"})

    with PostgresBulkWriter(dsn=dsn, retries=2) as writer:
        result = writer.write("loads", frame, schema=schema)

    assert result.rows == 1_000
    assert result.attempts == 2
    assert _counts(db, schema) == (1_000, 1_000)


def test_connection_lost_at_commit_of_an_upsert_is_run_again(
    dsn: str, db: Any, schema: str
) -> None:
    db.execute(f'CREATE TABLE "{schema}".loads (id bigint PRIMARY KEY, label text NOT NULL)')
    _deferred_slow_commit(db, schema, 1)
    writer = PostgresBulkWriter(dsn=dsn, application_name=f"commit-{schema}")

    async def run() -> WriteResult:
        killer = asyncio.create_task(
            _kill_first_load(dsn, writer.application_name, pattern="COMMIT%")
        )
        try:
            return await writer.awrite(
                "loads", _chunks, schema=schema, mode="upsert", key_columns=["id"], chunk_size=CHUNK
            )
        finally:
            await killer

    result = asyncio.run(run())
    assert result.attempts == 2
    assert _counts(db, schema) == (CHUNK * CHUNKS, CHUNK * CHUNKS)


def test_commit_per_chunk_retries_the_chunk_that_failed(dsn: str, db: Any, schema: str) -> None:
    """With commit="chunk", even a one-shot generator survives a killed backend: the chunk in
    hand is sent again, the committed ones are not. A trigger holds chunk 2's COPY for a second,
    so the kill lands mid-COPY: killed during a COMMIT, an append's outcome would be unknown
    and, rightly, not sent again."""
    _make_table(db, schema)
    db.execute(
        f'CREATE FUNCTION "{schema}".hold() RETURNS trigger LANGUAGE plpgsql AS '
        "$$ BEGIN PERFORM pg_sleep(1); RETURN NEW; END $$"
    )
    db.execute(
        f'CREATE TRIGGER hold BEFORE INSERT ON "{schema}".loads FOR EACH ROW '
        f'WHEN (NEW.id = {CHUNK + 5}) EXECUTE FUNCTION "{schema}".hold()'
    )
    writer = PostgresBulkWriter(dsn=dsn, application_name=f"chunk-{schema}")

    async def run() -> WriteResult:
        killer = asyncio.create_task(
            _kill_first_load(dsn, writer.application_name, running_for=0.3)
        )
        try:
            return await writer.awrite(
                "loads", _chunks(), schema=schema, chunk_size=CHUNK, commit="chunk"
            )
        finally:
            await killer

    result = asyncio.run(run())
    assert result.rows == CHUNK * CHUNKS
    assert _counts(db, schema) == (CHUNK * CHUNKS, CHUNK * CHUNKS)


async def _slow_chunks() -> AsyncIterator[pd.DataFrame]:
    for frame in _chunks():
        yield frame
        await asyncio.sleep(0.2)


def _wait_until_gone(dsn: str, app: str) -> list[str]:
    deadline = time.monotonic() + 10
    while (sessions := asyncio.run(_our_sessions(dsn, app))) and time.monotonic() < deadline:
        time.sleep(0.05)
    return sessions


def test_cancelled_awrite_commits_nothing(dsn: str, db: Any, schema: str) -> None:
    _make_table(db, schema)
    app = f"cancel-{schema}"
    writer = PostgresBulkWriter(dsn=dsn, application_name=app)

    async def run() -> None:
        task = asyncio.create_task(
            writer.awrite("loads", _slow_chunks(), schema=schema, chunk_size=CHUNK)
        )
        await asyncio.sleep(0.7)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
    assert _wait_until_gone(dsn, app) == []
    assert _counts(db, schema) == (0, 0)


def test_interrupted_write_commits_nothing(dsn: str, db: Any, schema: str) -> None:
    """Ctrl-C while write() waits: the write is cancelled and rolled back, not left to finish
    and commit in the background."""
    _make_table(db, schema)
    app = f"interrupt-{schema}"
    writer = PostgresBulkWriter(dsn=dsn, application_name=app)

    def interrupt(signum: int, frame: FrameType | None) -> NoReturn:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.7)
        with pytest.raises(KeyboardInterrupt):
            writer.write("loads", _slow_chunks(), schema=schema, chunk_size=CHUNK)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    time.sleep(CHUNKS * 0.2)  # longer than the write would have taken
    assert _wait_until_gone(dsn, app) == []
    assert _counts(db, schema) == (0, 0)


def test_close_while_another_thread_writes_does_not_hang(dsn: str, db: Any, schema: str) -> None:
    _make_table(db, schema)
    writer = PostgresBulkWriter(dsn=dsn, application_name=f"close-{schema}")
    outcome: dict[str, BaseException | None] = {}

    def write() -> None:
        try:
            writer.write("loads", _slow_chunks(), schema=schema, chunk_size=CHUNK)
            outcome["error"] = None
        except BaseException as exc:
            outcome["error"] = exc

    with writer:
        thread = threading.Thread(target=write)
        thread.start()
        time.sleep(0.7)
    thread.join(30)
    assert not thread.is_alive()
    assert isinstance(outcome["error"], concurrent.futures.CancelledError)
    assert _counts(db, schema) == (0, 0)


@pytest.mark.parametrize(
    "bad_dsn",
    [
        f"postgresql://loader@127.0.0.1:1/nowhere?password={SENTINEL}&sslmode=disable",
        f"postgresql://loader:{SENTINEL}@127.0.0.1:1/nowhere",
    ],
)
def test_password_is_masked_in_every_dsn_form(bad_dsn: str) -> None:
    writer = PostgresBulkWriter(dsn=bad_dsn, connect_timeout=2, retries=1)
    with pytest.raises(BulkWriteError) as caught:
        writer.write("t", [(1,)], columns=["a"])
    assert SENTINEL not in "".join(traceback.format_exception(caught.value))
    assert "password=***" in str(caught.value) or ":***@" in str(caught.value)


def test_a_round_trip_stuck_on_a_lost_connection_fails_fast(dsn: str) -> None:
    """asyncpg waits for its transport to take more COPY data without noticing that the
    connection is gone (its flow-control event is never set again). Any round trip stuck like
    that is ended by the watchdog as a transient error, well before round_trip_timeout."""
    from resources._guards import round_trip
    from resources._request import WriteRequest

    request = WriteRequest(
        table="t",
        data=None,
        mode="copy",
        key_columns=(),
        columns=None,
        chunk_size=10,
        schema=None,
        create=False,
        commit="write",
        replace=False,
        retries=0,
        round_trip_timeout=60,
    )

    async def run() -> float:
        conn = await asyncpg.connect(dsn)
        killer = await asyncpg.connect(dsn)
        pid = conn.get_server_pid()
        never = asyncio.Event()  # what a paused transport waits on after the connection died
        started = time.monotonic()
        try:
            with pytest.raises(TransientWriteError, match="connection lost during COPY"):
                async with round_trip(conn, request, "COPY"):
                    await killer.execute("SELECT pg_terminate_backend($1)", pid)
                    await asyncio.wait_for(never.wait(), timeout=30)
            return time.monotonic() - started
        finally:
            await killer.close()
            conn.terminate()

    assert asyncio.run(run()) < 5


KILLED_CLIENT = """
import sys
from resources import PostgresBulkWriter

dsn, app = sys.argv[1:3]
PostgresBulkWriter(dsn=dsn, application_name=app, client_connection_check_interval=0.5).execute(
    "SELECT pg_sleep(60)"
)
"""


def test_a_statement_of_a_killed_client_ends_soon_after_it(dsn: str) -> None:
    """A run killed with SIGKILL mid-statement: the server notices the closed socket within
    client_connection_check_interval and ends the statement, instead of running it to the
    end (60 s here) holding its locks."""
    app = f"killed-{os.getpid()}-{time.monotonic_ns()}"
    repo = Path(__file__).resolve().parents[1]
    client = subprocess.Popen(
        [sys.executable, "-c", KILLED_CLIENT, dsn, app], env={**os.environ, "PYTHONPATH": str(repo)}
    )
    try:
        deadline = time.monotonic() + 30
        while "active" not in asyncio.run(sessions_of(dsn, app)):
            assert client.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(client.pid, signal.SIGKILL)
        client.wait(10)
        killed = time.monotonic()
        while asyncio.run(sessions_of(dsn, app)) and time.monotonic() - killed < 20:
            time.sleep(0.1)
        assert asyncio.run(sessions_of(dsn, app)) == []
        assert time.monotonic() - killed < 5
    finally:
        if client.poll() is None:
            client.kill()


def test_execute_and_fetch_go_through_the_guards(dsn: str) -> None:
    """A statement outside a write gets the same treatment as a write's round trips: the
    client-side time limit, and the driver's errors translated (with the cause kept)."""
    from resources import TerminalWriteError, WriteTimeoutError

    with PostgresBulkWriter(dsn=dsn, round_trip_timeout=0.5, statement_timeout=0) as writer:
        with pytest.raises(WriteTimeoutError) as slow:
            writer.fetch("SELECT pg_sleep(5)")
        assert slow.value.limit == "round_trip_timeout"
        with pytest.raises(TerminalWriteError, match="SELECT nonsense") as bad:
            writer.execute("SELECT nonsense FROM nowhere_at_all")
        assert isinstance(bad.value.__cause__, asyncpg.UndefinedTableError)
        assert writer.fetch("SELECT 1 AS one") == [{"one": 1}]
