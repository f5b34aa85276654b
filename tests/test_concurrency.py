"""Writers racing each other: 8 upserting overlapping keys in random order, and 4 appending to
one table. No deadlock or serialization failure reaches the caller (they are retried), no
lock is waited on for long, and the table ends up with exactly the rows written."""

from __future__ import annotations

import asyncio
import random
import threading
from typing import Any

import asyncpg
import numpy as np
import pandas as pd
import pytest
from _support import q, require_slow, wait_until_gone

from resources import PostgresBulkWriter
from resources._request import OnBadRows

WRITERS = 8
KEYS = 2_000
# One chunk per write: the upsert takes its row locks in key order, so writers of overlapping
# keys wait for each other but never deadlock.
ONE_CHUNK = 10_000
# Several chunks per write in one transaction: each chunk locks its rows in key order, but the
# chunks come in random key order, so two writers can lock in opposite orders and deadlock; the
# server breaks it by failing one (40P01), which the writer must retry.
CHUNK = 250
# deadlock_timeout is 1 s by default: the server waits that long before looking for a cycle.
# 100 ms keeps the test short (a superuser setting; the test servers connect as postgres).
FAST_DEADLOCKS = "deadlock_timeout=100ms"


def _round_frame(writer: int, round_: int, rng: random.Random) -> pd.DataFrame:
    """A random 60% of the keys, shuffled, each tagged with who wrote it in which round."""
    keys = rng.sample(range(KEYS), int(KEYS * 0.6))
    return pd.DataFrame(
        {
            "id": np.array(keys, dtype=np.int64),
            "writer": np.full(len(keys), writer, dtype=np.int32),
            "round": np.full(len(keys), round_, dtype=np.int32),
        }
    )


def _upsert_rounds(
    dsn: str,
    db: Any,
    schema: str,
    *,
    rounds: int,
    chunk: int,
    retries: int = 3,
    on_bad_rows: OnBadRows = "fail",
) -> list[int]:
    db.execute(
        f"CREATE TABLE {q(schema)}.kv (id bigint PRIMARY KEY, writer int NOT NULL, "
        "round int NOT NULL)"
    )
    app = f"race-{schema}"
    rng = random.Random(7_001)
    plans = [
        [_round_frame(w, r, rng) for r in range(rounds)] for w in range(WRITERS)
    ]  # plans[w][r]
    barrier = threading.Barrier(WRITERS)
    errors: list[BaseException] = []
    attempts: list[int] = []

    def run(w: int) -> None:
        try:
            with PostgresBulkWriter(
                dsn=dsn, application_name=app, pool_size=1, retries=retries
            ) as writer:
                for r in range(rounds):
                    barrier.wait(60)  # every writer starts round r together
                    result = writer.write(
                        "kv",
                        plans[w][r],
                        schema=schema,
                        mode="upsert",
                        key_columns=["id"],
                        chunk_size=chunk,
                        on_bad_rows=on_bad_rows,
                    )
                    attempts.append(result.attempts)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(w,)) for w in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a writer hung"
    assert errors == [], errors
    assert len(attempts) == WRITERS * rounds
    print(
        f"{WRITERS} writers x {rounds} rounds: {sum(a - 1 for a in attempts)} retries, "
        f"most attempts of one write {max(attempts)}"
    )

    # Every key written ends up there once; its value is one that some writer wrote for it
    # in the last round that touched it (rounds are separated by the barrier).
    written: dict[int, dict[int, set[int]]] = {}
    for w in range(WRITERS):
        for r in range(rounds):
            for key in plans[w][r]["id"].tolist():
                written.setdefault(key, {}).setdefault(r, set()).add(w)
    rows = db.fetch(f"SELECT id, writer, round FROM {q(schema)}.kv")
    assert sorted(r["id"] for r in rows) == sorted(written)
    for row in rows:
        last_round = max(written[row["id"]])
        assert row["round"] == last_round, dict(row)
        assert row["writer"] in written[row["id"]][last_round], dict(row)
    assert wait_until_gone(dsn, app) == []
    return attempts


def _with(dsn: str, setting: str) -> str:
    return f"{dsn}{'&' if '?' in dsn else '?'}{setting}"


def test_eight_writers_upsert_overlapping_keys_in_random_order(
    dsn: str, db: Any, schema: str
) -> None:
    """Single-chunk upserts lock in key order whatever the input order: no deadlock at all."""
    attempts = _upsert_rounds(dsn, db, schema, rounds=3, chunk=ONE_CHUNK)
    assert set(attempts) == {1}


def test_multi_chunk_upserts_apply_in_key_order_and_never_deadlock(
    dsn: str, db: Any, schema: str
) -> None:
    """A multi-chunk upsert stages every chunk and applies them in one key-ordered statement,
    so even with deadlock detection at 100 ms no write needs a second attempt."""
    attempts = _upsert_rounds(
        _with(dsn, FAST_DEADLOCKS), db, schema, rounds=2, chunk=CHUNK, retries=8
    )
    assert set(attempts) == {1}


def test_quarantined_multi_chunk_upserts_keep_key_order(dsn: str, db: Any, schema: str) -> None:
    """on_bad_rows="quarantine" stages every chunk too and applies them in one key-ordered
    statement (rows it refuses are set aside one by one): no deadlock, no second attempt.
    Applied chunk by chunk, 17 of 40 such writes used to fail."""
    attempts = _upsert_rounds(
        _with(dsn, FAST_DEADLOCKS),
        db,
        schema,
        rounds=2,
        chunk=CHUNK,
        retries=8,
        on_bad_rows="quarantine",
    )
    assert set(attempts) == {1}


def test_multi_chunk_upserts_with_default_settings_do_not_fail_on_deadlocks(
    dsn: str, db: Any, schema: str
) -> None:
    attempts = _upsert_rounds(dsn, db, schema, rounds=1, chunk=CHUNK)
    assert set(attempts) == {1}


@pytest.mark.slow
def test_eight_writers_upsert_overlapping_keys_many_rounds(
    dsn: str, db: Any, schema: str, request: pytest.FixtureRequest
) -> None:
    require_slow(request)
    _upsert_rounds(dsn, db, schema, rounds=40, chunk=ONE_CHUNK)


def test_eight_async_tasks_upsert_overlapping_keys(dsn: str, db: Any, schema: str) -> None:
    """The same race on one event loop: each task awaits awrite on a writer of its own."""
    db.execute(
        f"CREATE TABLE {q(schema)}.kv (id bigint PRIMARY KEY, writer int NOT NULL, "
        "round int NOT NULL)"
    )
    rng = random.Random(7_002)
    frames = [_round_frame(w, 0, rng) for w in range(WRITERS)]

    async def run() -> list[Any]:
        writers = [
            PostgresBulkWriter(dsn=dsn, application_name=f"arace-{schema}") for _ in range(WRITERS)
        ]
        return await asyncio.gather(
            *(
                w.awrite(
                    "kv", f, schema=schema, mode="upsert", key_columns=["id"], chunk_size=ONE_CHUNK
                )
                for w, f in zip(writers, frames, strict=True)
            )
        )

    results = asyncio.run(run())
    assert [r.rows for r in results] == [len(f) for f in frames]
    expected: dict[int, set[int]] = {}
    for w, frame in enumerate(frames):
        for key in frame["id"].tolist():
            expected.setdefault(key, set()).add(w)
    rows = db.fetch(f"SELECT id, writer FROM {q(schema)}.kv")
    assert sorted(r["id"] for r in rows) == sorted(expected)
    assert all(r["writer"] in expected[r["id"]] for r in rows)
    assert wait_until_gone(dsn, f"arace-{schema}") == []


def test_four_concurrent_appends_into_one_table(dsn: str, db: Any, schema: str) -> None:
    """COPY appends take a ROW EXCLUSIVE lock, which does not conflict with itself: four at
    once never wait for one another (lock_timeout=1 s would say so), and every row lands once."""
    db.execute(f"CREATE TABLE {q(schema)}.log (id bigint PRIMARY KEY, part int NOT NULL)")
    parts, per_part = 4, 50_000
    outcomes: dict[int, BaseException | int] = {}

    def run(part: int) -> None:
        ids = np.arange(part * per_part, (part + 1) * per_part, dtype=np.int64)
        frame = pd.DataFrame({"id": ids, "part": np.full(per_part, part, dtype=np.int32)})
        try:
            with PostgresBulkWriter(dsn=dsn, lock_timeout=1, retries=0) as writer:
                outcomes[part] = writer.write("log", frame, schema=schema, chunk_size=10_000).rows
        except BaseException as exc:  # a WriteTimeoutError would mean a lock wait over 1 s
            outcomes[part] = exc

    threads = [threading.Thread(target=run, args=(p,)) for p in range(parts)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert outcomes == dict.fromkeys(range(parts), per_part)
    row = db.fetch(
        f"SELECT count(*) AS n, count(DISTINCT id) AS d, min(id) AS lo, max(id) AS hi "
        f"FROM {q(schema)}.log"
    )[0]
    assert tuple(row) == (parts * per_part, parts * per_part, 0, parts * per_part - 1)
    per = db.fetch(f"SELECT part, count(*) AS n FROM {q(schema)}.log GROUP BY part ORDER BY part")
    assert [(r["part"], r["n"]) for r in per] == [(p, per_part) for p in range(parts)]


def test_sequence_advances_lock_in_one_order_whatever_the_column_order(
    dsn: str, db: Any, schema: str
) -> None:
    """Two writers of a table with two sequences, with the columns in opposite orders: while
    the first holds both locks, the second waits on the first sequence by name, the one the
    first writer also took first; in column order it would take b's lock and then wait for
    a's, the half of a deadlock. Once the first commits, the second moves both on."""
    from resources._catalog import describe_table
    from resources._sequences import advance_sequences

    db.execute(f"CREATE TABLE {q(schema)}.t (a bigserial, b bigserial, x int)")

    async def race() -> tuple[int, int | None, list[str]]:
        first, second = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
        try:
            info = await describe_table(first, "t", schema=schema)
            assert info is not None
            a_oid = await first.fetchval("SELECT $1::regclass::oid", info.columns["a"].sequence)
            one, two = first.transaction(), second.transaction()
            await one.start()
            await advance_sequences(first, info, {"a": 10, "b": 10})
            await two.start()
            pending = asyncio.ensure_future(advance_sequences(second, info, {"b": 20, "a": 20}))
            waited_on = None
            for _ in range(250):
                waited_on = await first.fetchval(
                    "SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                )
                if waited_on is not None:
                    break
                await asyncio.sleep(0.02)
            assert not pending.done()
            await one.commit()
            lines = await asyncio.wait_for(pending, timeout=10)
            await two.commit()
            return a_oid, waited_on, lines
        finally:
            await first.close()
            await second.close()

    a_oid, waited_on, lines = asyncio.run(race())
    assert waited_on == a_oid
    assert len(lines) == 2 and all("advanced to 20" in line for line in lines)
    assert db.fetchval(f"SELECT nextval('{schema}.t_a_seq')") == 21
    assert db.fetchval(f"SELECT nextval('{schema}.t_b_seq')") == 21
