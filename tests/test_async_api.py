"""The writer inside event loops: ``awrite`` awaited in asyncio code (sequentially, concurrently,
with async sources that await), ``write`` called from a thread that runs a loop, and a writer
used without a context manager that leaves no connection behind."""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

import asyncpg
import numpy as np
import pandas as pd
import pytest

from resources import BadValueError, Mode, PostgresBulkWriter

T = TypeVar("T")
APP = "bulk-assets"
DEADLINE = 60.0  # seconds: far above any of these writes; reaching it means a deadlock


def within(seconds: float, work: Callable[[], T]) -> T:
    """Run ``work`` in a thread and fail (instead of hanging the suite) if it deadlocks."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s: deadlocked"
    if "error" in outcome:
        raise outcome["error"]
    value: T = outcome["value"]
    return value


def make_tables(db: Any, schema: str, *names: str) -> None:
    for name in names:
        db.execute(f'CREATE TABLE "{schema}"."{name}" (id bigint PRIMARY KEY, v double precision)')


def frame(start: int, rows: int) -> pd.DataFrame:
    ids = np.arange(start, start + rows, dtype=np.int64)
    return pd.DataFrame({"id": ids, "v": ids / 4})


def totals(db: Any, schema: str, table: str) -> tuple[int, int]:
    row = db.fetch(f'SELECT count(*) AS n, coalesce(sum(id), 0) AS s FROM "{schema}"."{table}"')
    return row[0]["n"], int(row[0]["s"])


def our_pids(db: Any) -> set[int]:
    rows = db.fetch(
        "SELECT pid FROM pg_stat_activity WHERE application_name = $1 "
        "AND datname = current_database()",
        APP,
    )
    return {r["pid"] for r in rows}


def assert_gone(db: Any, pids: set[int]) -> None:
    """None of ``pids`` is connected any more (waiting up to a second for them to go)."""
    deadline = time.monotonic() + 1.0
    while (left := pids & our_pids(db)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, f"connections {sorted(left)} of the writer are still open"


# -- awrite in a running loop ------------------------------------------------------------------


@pytest.mark.parametrize("held", [True, False], ids=["with-block", "no-context-manager"])
def test_awrite_awaited_several_times_in_one_loop(
    held: bool, dsn: str, db: Any, schema: str
) -> None:
    """Three awaits of awrite in one coroutine append their rows in order."""
    make_tables(db, schema, "t")

    async def main(writer: PostgresBulkWriter) -> list[int]:
        results = []
        for start in (0, 1_000, 2_000):
            result = await writer.awrite("t", frame(start, 1_000), schema=schema)
            results.append(result.rows)
        return results

    writer = PostgresBulkWriter(dsn=dsn)
    if held:
        with writer:
            assert asyncio.run(main(writer)) == [1_000] * 3
    else:
        assert asyncio.run(main(writer)) == [1_000] * 3
    assert totals(db, schema, "t") == (3_000, sum(range(3_000)))


@pytest.mark.parametrize("held", [True, False], ids=["with-block", "no-context-manager"])
def test_awrite_concurrently_with_gather(held: bool, dsn: str, db: Any, schema: str) -> None:
    """Writes to four tables awaited together with asyncio.gather all complete, each into its
    own table, in every mode; afterwards none of the writer's connections is left open."""
    tables = ["a", "b", "c", "d"]
    make_tables(db, schema, *tables)
    db.execute(f'INSERT INTO "{schema}".d SELECT g, 0 FROM generate_series(0, 4999) g')
    before = our_pids(db)
    modes: dict[str, Mode] = {"a": "copy", "b": "insert", "c": "upsert", "d": "update"}

    async def main(writer: PostgresBulkWriter) -> list[Any]:
        return await asyncio.gather(
            *(
                writer.awrite(
                    t,
                    frame(0, 5_000),
                    mode=modes[t],
                    key_columns=["id"],
                    schema=schema,
                    chunk_size=1_000,
                )
                for t in tables
            )
        )

    writer = PostgresBulkWriter(dsn=dsn)
    if held:
        with writer:
            results = asyncio.run(main(writer))
    else:
        results = asyncio.run(main(writer))

    assert [r.table for r in results] == [f"{schema}.{t}" for t in tables]
    assert [r.rows_affected for r in results] == [5_000] * 4
    for t in tables:
        assert totals(db, schema, t) == (5_000, sum(range(5_000)))
    assert db.fetchval(f'SELECT sum(v) FROM "{schema}".d') == float(frame(0, 5_000)["v"].sum())
    assert_gone(db, our_pids(db) - before)


def test_awrite_with_an_async_generator_that_sleeps_between_chunks(
    writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """An async generator bound to the caller's loop (it reads an asyncio.Queue filled by a
    task on that loop, and sleeps between chunks) feeds awrite to the end."""
    make_tables(db, schema, "t")
    seen_loops: set[int] = set()

    async def main() -> Any:
        queue: asyncio.Queue[pd.DataFrame | None] = asyncio.Queue(maxsize=1)

        async def produce() -> None:
            for c in range(6):
                await queue.put(frame(c * 500, 500))
                await asyncio.sleep(0.01)
            await queue.put(None)

        async def chunks() -> AsyncIterator[pd.DataFrame]:
            while (item := await queue.get()) is not None:
                seen_loops.add(id(asyncio.get_running_loop()))
                await asyncio.sleep(0.01)
                yield item

        producer = asyncio.create_task(produce())
        result = await writer.awrite("t", chunks(), schema=schema)
        await producer
        return result, id(asyncio.get_running_loop())

    result, caller_loop = asyncio.run(main())

    assert result.rows == 3_000
    assert result.chunks == 6
    assert seen_loops == {caller_loop}
    assert totals(db, schema, "t") == (3_000, sum(range(3_000)))


def test_awrite_raises_the_writers_errors_into_the_loop(
    writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """A bad value awaited through awrite is the same BadValueError, with nothing written; the
    writer stays usable in the same loop afterwards."""
    db.execute(f'CREATE TABLE "{schema}".t (id int, name text)')
    bad = pd.DataFrame({"id": [1, 2], "name": ["ok", "nul\x00"]})

    async def main() -> Any:
        with pytest.raises(BadValueError) as info:
            await writer.awrite("t", bad, schema=schema)
        assert (info.value.column, info.value.row) == ("name", 1)
        return await writer.awrite("t", bad.iloc[:1], schema=schema)

    assert asyncio.run(main()).rows == 1
    assert db.fetch(f'SELECT * FROM "{schema}".t') == [(1, "ok")]


@pytest.mark.parametrize("held", [True, False], ids=["with-block", "no-context-manager"])
def test_cancelled_awrite_rolls_back_and_releases_its_connection(
    held: bool, dsn: str, db: Any, schema: str
) -> None:
    """An awrite cancelled by its caller (here by asyncio.wait_for, while the source waits
    forever after its first chunk) writes nothing; the writer's connections are given back
    (closed, without a context manager) and the writer keeps working."""
    make_tables(db, schema, "t")
    before = our_pids(db)

    async def stalls() -> AsyncIterator[pd.DataFrame]:
        yield frame(0, 1_000)
        await asyncio.Event().wait()  # never set
        yield frame(1_000, 1_000)

    async def main(writer: PostgresBulkWriter) -> int:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(writer.awrite("t", stalls(), schema=schema), timeout=1.0)
        return (await writer.awrite("t", frame(5_000, 10), schema=schema)).rows

    writer = PostgresBulkWriter(dsn=dsn)

    def run() -> int:
        if held:
            with writer:
                return asyncio.run(main(writer))
        return asyncio.run(main(writer))

    assert within(DEADLINE, run) == 10
    assert totals(db, schema, "t") == (10, sum(range(5_000, 5_010)))
    assert_gone(db, our_pids(db) - before)


# -- write (sync) from code running in an event loop --------------------------------------------


def test_sync_write_called_directly_inside_a_coroutine(
    writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """write() called from a coroutine (blocking that loop's thread) completes: the writer
    runs on its own loop thread, so it does not deadlock on the caller's."""
    make_tables(db, schema, "t", "u")

    async def main() -> list[int]:
        first = writer.write("t", frame(0, 2_000), schema=schema)
        await asyncio.sleep(0)
        second = writer.write("u", frame(0, 2_000), schema=schema, mode="insert")
        return [first.rows, second.rows]

    assert within(DEADLINE, lambda: asyncio.run(main())) == [2_000, 2_000]
    assert totals(db, schema, "t") == totals(db, schema, "u") == (2_000, sum(range(2_000)))


def test_sync_write_of_an_async_generator_inside_a_coroutine_points_to_awrite(
    writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    """write() given an async generator from inside a running loop (whose source it would have
    to block to consume) refuses at once, naming awrite, instead of deadlocking; nothing is
    written, and awrite then loads the same kind of source."""
    make_tables(db, schema, "t")

    async def chunks() -> AsyncIterator[pd.DataFrame]:
        for c in range(4):
            await asyncio.sleep(0.005)
            yield frame(c * 250, 250)

    async def main() -> int:
        with pytest.raises(TypeError, match="awrite"):
            writer.write("t", chunks(), schema=schema)
        return (await writer.awrite("t", chunks(), schema=schema)).rows

    assert within(DEADLINE, lambda: asyncio.run(main())) == 1_000
    # Only awrite's rows: the refused write sent nothing (ids would otherwise collide).
    assert totals(db, schema, "t") == (1_000, sum(range(1_000)))


@pytest.mark.parametrize("held", [True, False], ids=["with-block", "no-context-manager"])
def test_sync_write_in_run_in_executor_concurrently(
    held: bool, dsn: str, db: Any, schema: str
) -> None:
    """Several write() calls in loop.run_in_executor threads, at once on one writer, all
    complete; without a context manager the last one leaves no connection behind."""
    tables = ["a", "b", "c"]
    make_tables(db, schema, *tables)
    before = our_pids(db)

    async def main(writer: PostgresBulkWriter) -> list[int]:
        loop = asyncio.get_running_loop()
        results = await asyncio.gather(
            *(
                loop.run_in_executor(
                    None, functools.partial(writer.write, t, frame(0, 3_000), schema=schema)
                )
                for t in tables
            )
        )
        return [r.rows for r in results]

    writer = PostgresBulkWriter(dsn=dsn)

    def run() -> list[int]:
        if held:
            with writer:
                return asyncio.run(main(writer))
        return asyncio.run(main(writer))

    assert within(DEADLINE, run) == [3_000] * 3
    for t in tables:
        assert totals(db, schema, t) == (3_000, sum(range(3_000)))
    assert_gone(db, our_pids(db) - before)


# -- connections of a writer without a context manager ---------------------------------------


def test_write_without_context_manager_closes_its_connections(
    dsn: str, db: Any, schema: str
) -> None:
    """Outside a with block each write() opens and closes its own pool: the connections seen
    during the write (application_name 'bulk-assets') are gone after it."""
    make_tables(db, schema, "t")
    before = our_pids(db)
    during: set[int] = set()

    def chunks() -> Iterator[pd.DataFrame]:
        yield frame(0, 500)
        during.update(our_pids(db) - before)  # runs in a worker thread, mid-write
        yield frame(500, 500)

    writer = PostgresBulkWriter(dsn=dsn)
    for start in (0, 1):
        during.clear()
        data = chunks() if start == 0 else (lambda: chunks())
        writer.write("t", data, schema=schema, mode="upsert", key_columns=["id"])
        assert during, "the write's own connection was visible while it ran"
        assert_gone(db, during)
        assert totals(db, schema, "t") == (1_000, sum(range(1_000)))


def test_awrite_without_context_manager_closes_its_connections(
    dsn: str, db: Any, schema: str
) -> None:
    """awrite() outside a with block also closes its pool when done."""
    make_tables(db, schema, "t")
    before = our_pids(db)
    during: set[int] = set()

    async def chunks() -> AsyncIterator[pd.DataFrame]:
        yield frame(0, 500)
        conn = await asyncpg.connect(dsn)
        try:
            rows = await conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE application_name = $1", APP
            )
        finally:
            await conn.close()
        during.update({r["pid"] for r in rows} - before)
        yield frame(500, 500)

    async def main() -> int:
        writer = PostgresBulkWriter(dsn=dsn)
        return (await writer.awrite("t", chunks(), schema=schema)).rows

    assert asyncio.run(main()) == 1_000
    assert during, "the write's own connection was visible while it ran"
    assert_gone(db, during)
    assert totals(db, schema, "t") == (1_000, sum(range(1_000)))


def test_with_block_keeps_one_pool_and_closes_it_on_exit(dsn: str, db: Any, schema: str) -> None:
    """Inside a with block the pool stays open between writes (its connections are reused),
    and leaving the block closes them."""
    make_tables(db, schema, "t", "u")
    before = our_pids(db)
    with PostgresBulkWriter(dsn=dsn) as writer:
        writer.write("t", frame(0, 100), schema=schema)
        between = our_pids(db) - before
        writer.write("u", frame(0, 100), schema=schema)
        assert between, "the pool stays open between writes"
        assert between <= our_pids(db), "the same connections serve the next write"
    assert_gone(db, between)
    assert totals(db, schema, "u") == (100, sum(range(100)))
