"""Runs that touch one slice at once: writers of the same partition take turns, so however
they overlap (started together, one paused mid-replace, two Dagster runs of one partition)
the table ends with exactly one copy of the slice and every run succeeds. First loads racing
to create one table do the same."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from _support import q, require_slow, wait_until_gone

from resources import KeyRange, PostgresBulkWriter, WriteResult

REPO = Path(__file__).resolve().parents[1]
SLICE = KeyRange("id", 1, 20_001)


def slow_source(label: str, *, chunks: int = 4, pause: float = 0.1) -> Callable[[], Any]:
    """The slice's 20,000 rows in ``chunks`` chunks, ``pause`` seconds apart: a source that
    takes long enough for writers started together to overlap."""
    step = (SLICE.end - SLICE.start) // chunks

    def frames() -> Iterator[pd.DataFrame]:
        for k in range(chunks):
            time.sleep(pause)
            lo = SLICE.start + k * step
            yield pd.DataFrame({"id": range(lo, lo + step), "label": [label] * step})

    return frames


def race(writers: int, work: Callable[[int], WriteResult]) -> list[WriteResult | BaseException]:
    """Run ``work(i)`` for each writer in a thread of its own, all started together."""
    barrier = threading.Barrier(writers)
    outcomes: list[WriteResult | BaseException] = [RuntimeError("did not finish")] * writers

    def run(i: int) -> None:
        barrier.wait(30)
        try:
            outcomes[i] = work(i)
        except BaseException as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a writer hung"
    return outcomes


def slice_counts(db: Any, schema: str, table: str = "t") -> tuple[int, int, int]:
    row = db.fetch(
        f"SELECT count(*) AS n, count(DISTINCT id) AS d, count(DISTINCT label) AS labels "
        f"FROM {q(schema)}.{q(table)}"
    )[0]
    return row["n"], row["d"], row["labels"]


def replace_rounds(dsn: str, db: Any, schema: str, *, keyed: bool, rounds: int) -> None:
    key = " PRIMARY KEY" if keyed else ""
    db.execute(f"CREATE TABLE {q(schema)}.t (id bigint{key}, label text NOT NULL)")
    app = f"slice-{schema}"
    for r in range(rounds):

        def work(i: int, r: int = r) -> WriteResult:
            return PostgresBulkWriter(dsn=dsn, application_name=app).write(
                "t",
                slow_source(f"r{r}w{i}"),
                schema=schema,
                replace=SLICE,
                chunk_size=5_000,
            )

        outcomes = race(3, work)
        assert all(isinstance(o, WriteResult) for o in outcomes), outcomes
        # One copy of the slice, all of it from one writer: the last to take its turn.
        assert slice_counts(db, schema) == (20_000, 20_000, 1), f"round {r}"
    assert wait_until_gone(dsn, app) == []


@pytest.mark.parametrize("keyed", [False, True], ids=["no-key", "primary-key"])
def test_writers_of_one_slice_take_turns(dsn: str, db: Any, schema: str, keyed: bool) -> None:
    """Without a key both copies used to survive (40,000 rows); with a primary key the later
    writer failed on a duplicate key it could not have seen."""
    replace_rounds(dsn, db, schema, keyed=keyed, rounds=2)


@pytest.mark.slow
@pytest.mark.parametrize("keyed", [False, True], ids=["no-key", "primary-key"])
def test_writers_of_one_slice_take_turns_many_rounds(
    dsn: str, db: Any, schema: str, keyed: bool, request: pytest.FixtureRequest
) -> None:
    require_slow(request)
    replace_rounds(dsn, db, schema, keyed=keyed, rounds=10)


def test_writers_of_other_slices_do_not_wait(dsn: str, db: Any, schema: str) -> None:
    """The turn is per slice: partitions still load in parallel (lock_timeout=1 s and no
    retries would fail a writer that waited on another)."""
    db.execute(f"CREATE TABLE {q(schema)}.t (id bigint, label text NOT NULL)")
    size = 5_000

    def work(i: int) -> WriteResult:
        lo = 1 + i * size
        frames = [
            pd.DataFrame({"id": range(lo, lo + size), "label": [f"w{i}"] * size}),
        ]
        with PostgresBulkWriter(dsn=dsn, lock_timeout=1, retries=0) as writer:
            return writer.write("t", frames, schema=schema, replace=KeyRange("id", lo, lo + size))

    outcomes = race(4, work)
    assert all(isinstance(o, WriteResult) for o in outcomes), outcomes
    assert slice_counts(db, schema) == (4 * size, 4 * size, 4)


PAUSED_WRITER = """
import sys, time
import pandas as pd
from resources import KeyRange, PostgresBulkWriter

dsn, schema, marker = sys.argv[1:4]

def frames():
    for k in range(4):
        lo = 1 + k * 5_000
        yield pd.DataFrame({"id": range(lo, lo + 5_000), "label": ["paused"] * 5_000})
        if k == 0:
            open(marker, "w").close()  # the slice is deleted and the first chunk sent
            time.sleep(0.5)

result = PostgresBulkWriter(dsn=dsn, application_name="paused-" + schema).write(
    "t", frames, schema=schema, replace=KeyRange("id", 1, 20_001), chunk_size=5_000
)
print(result.rows)
"""


def test_a_writer_paused_mid_replace_keeps_one_copy(
    dsn: str, db: Any, schema: str, tmp_path: Path
) -> None:
    """A writer stopped (SIGSTOP: a GC pause, a VM stall) after deleting the slice and
    sending its first chunk; a second writer of the slice starts meanwhile and waits for its
    turn; the first resumes and commits, then the second replaces its rows: one copy."""
    db.execute(f"CREATE TABLE {q(schema)}.t (id bigint, label text NOT NULL)")
    db.execute(f"INSERT INTO {q(schema)}.t SELECT g, 'old' FROM generate_series(1, 20000) AS g")
    marker = tmp_path / "first-chunk-sent"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    paused = subprocess.Popen(
        [sys.executable, "-c", PAUSED_WRITER, dsn, schema, str(marker)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert paused.poll() is None, paused.communicate()
            assert time.monotonic() < deadline, "the paused writer never sent its first chunk"
            time.sleep(0.01)
        os.kill(paused.pid, signal.SIGSTOP)
        second: list[WriteResult | BaseException] = []

        def write_second() -> None:
            try:
                second.append(
                    PostgresBulkWriter(dsn=dsn, application_name=f"second-{schema}").write(
                        "t", slow_source("second", pause=0), schema=schema, replace=SLICE
                    )
                )
            except BaseException as exc:
                second.append(exc)

        thread = threading.Thread(target=write_second)
        thread.start()
        waiting = 0
        for _ in range(200):
            waiting = db.fetchval(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                "WHERE l.locktype = 'advisory' AND NOT l.granted AND a.application_name = $1",
                f"second-{schema}",
            )
            if waiting:
                break
            time.sleep(0.02)
        assert waiting == 1, "the second writer did not wait for the paused one's turn"
        time.sleep(0.5)
        assert thread.is_alive()
        os.kill(paused.pid, signal.SIGCONT)
        out, err = paused.communicate(timeout=60)
        assert paused.returncode == 0, err
        assert out.strip() == "20000"
        thread.join(60)
        assert not thread.is_alive()
    finally:
        if paused.poll() is None:
            os.kill(paused.pid, signal.SIGCONT)
            paused.kill()
    assert isinstance(second[0], WriteResult), second
    assert slice_counts(db, schema) == (20_000, 20_000, 1)
    assert db.fetchval(f"SELECT min(label) FROM {q(schema)}.t") == "second"


def materialize_at_once(dsn: str, schema: str, partition_key: str, runs: int) -> list[int]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("DAGSTER_HOME", None)
    script = str(REPO / "tests" / "_race_materialize.py")
    procs = [
        subprocess.Popen(
            [sys.executable, script, dsn, schema, partition_key, f"run{i}"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(runs)
    ]
    codes = []
    for proc in procs:
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err[-3000:]
        codes.append(proc.returncode)
    return codes


def dagster_rounds(dsn: str, db: Any, schema: str, *, rounds: int) -> None:
    for r in range(rounds):
        assert materialize_at_once(dsn, schema, "00001-08000", runs=2) == [0, 0]
        assert slice_counts(db, schema, "race") == (8_000, 8_000, 1), f"round {r}"


def test_two_dagster_runs_of_one_partition_leave_one_copy(dsn: str, db: Any, schema: str) -> None:
    """A schedule tick overlapping a manual run, or two overlapping backfills: two runs of
    one partition, in processes of their own, both succeed with one copy left."""
    dagster_rounds(dsn, db, schema, rounds=1)


@pytest.mark.slow
def test_two_dagster_runs_of_one_partition_many_rounds(
    dsn: str, db: Any, schema: str, request: pytest.FixtureRequest
) -> None:
    require_slow(request)
    dagster_rounds(dsn, db, schema, rounds=10)


def create_rounds(dsn: str, db: Any, schema: str, *, rounds: int) -> None:
    for r in range(rounds):
        table, target = f"new_{r}", f"{schema}_{r}"

        def work(i: int, table: str = table, target: str = target) -> WriteResult:
            frame = pd.DataFrame({"id": range(i * 1_000, (i + 1) * 1_000), "label": "x"})
            with PostgresBulkWriter(dsn=dsn, retries=0) as writer:
                return writer.write(table, frame, schema=target, create=True, chunk_size=250)

        outcomes = race(4, work)
        try:
            assert all(isinstance(o, WriteResult) for o in outcomes), outcomes
            assert sum(o.created for o in outcomes if isinstance(o, WriteResult)) == 1
            assert slice_counts(db, target, table) == (4_000, 4_000, 1)
        finally:
            db.execute(f"DROP SCHEMA IF EXISTS {q(target)} CASCADE")


def test_first_loads_racing_to_create_one_table(dsn: str, db: Any, schema: str) -> None:
    """Four first loads of a table (and its schema) that does not exist yet, with no
    retries: one creates it, the others wait and load into it."""
    create_rounds(dsn, db, schema, rounds=2)


@pytest.mark.slow
def test_first_loads_racing_to_create_one_table_many_rounds(
    dsn: str, db: Any, schema: str, request: pytest.FixtureRequest
) -> None:
    require_slow(request)
    create_rounds(dsn, db, schema, rounds=10)


def test_writers_take_turns_under_a_repeatable_read_default(dsn: str, db: Any, schema: str) -> None:
    """A role or database whose default isolation is REPEATABLE READ: a writer that waited
    for its turn would still see the slice as it was when its transaction began, and both
    copies would survive. Writes run READ COMMITTED whatever the default."""
    sep = "&" if "?" in dsn else "?"
    replace_rounds(
        f"{dsn}{sep}default_transaction_isolation=repeatable%20read",
        db,
        schema,
        keyed=False,
        rounds=1,
    )


def test_first_loads_of_other_tables_into_one_new_schema(dsn: str, db: Any, schema: str) -> None:
    """Four first loads of four tables into one schema that does not exist yet: they take
    turns creating the schema, and each creates its own table."""
    target = f"{schema}_new"

    def work(i: int) -> WriteResult:
        frame = pd.DataFrame({"id": range(100), "label": "x"})
        with PostgresBulkWriter(dsn=dsn, retries=0) as writer:
            return writer.write(f"t{i}", frame, schema=target, create=True)

    try:
        outcomes = race(4, work)
        assert all(isinstance(o, WriteResult) and o.created for o in outcomes), outcomes
        for i in range(4):
            assert slice_counts(db, target, f"t{i}") == (100, 100, 1)
    finally:
        db.execute(f"DROP SCHEMA IF EXISTS {q(target)} CASCADE")
