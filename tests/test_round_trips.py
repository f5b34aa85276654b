"""What a write costs in round trips, counted by a proxy between the writer and the server,
and what the savings must not cost: a description kept per pool is checked by every write,
so a table changed between two writes (even to a type of the same width) is written right.
Counts, not times: the speed under latency is in the benchmark (``--rtt``)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pandas as pd
import pytest

from benchmarks._proxy import DelayProxy
from benchmarks._rtt import SMALL_MODES, target_of, through
from resources import KeyRange, PostgresBulkWriter

ROWS = 1_000
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def proxy(tcp_dsn: str) -> Iterator[DelayProxy]:
    host, port = target_of(tcp_dsn)
    # A little latency keeps the count exact: without it the server's CopyInResponse can
    # beat COPY data the client sent with the query, and the proxy would see two trips.
    with DelayProxy(host, port, rtt_ms=4) as running:
        yield running


def _users(start: int = 1) -> pd.DataFrame:
    ids = range(start, start + ROWS)
    return pd.DataFrame({"id": list(ids), "name": [f"user {i}" for i in ids]})


def _trips(proxy: DelayProxy, write: Any) -> int:
    proxy.take()
    write()
    return proxy.take().round_trips


def test_a_warm_partition_replace_costs_four_round_trips(
    tcp_dsn: str, db: Any, schema: str, proxy: DelayProxy
) -> None:
    # A bigserial written with explicit ids: the sequence moves too, as for a partition.
    db.execute(f'CREATE TABLE "{schema}".users (id bigserial PRIMARY KEY, name text)')
    span = KeyRange("id", 1, ROWS + 1)
    with PostgresBulkWriter(dsn=through(tcp_dsn, proxy.port)) as writer:
        writer.write("users", _users(), schema=schema, replace=span)

        def again() -> None:
            writer.write("users", _users(), schema=schema, replace=span)

        # BEGIN with the limits, the slice's turn and the description's check; the DELETE;
        # the COPY; the sequence's advance with COMMIT.
        assert _trips(proxy, again) == 4
    assert db.fetchval(f'SELECT count(*) FROM "{schema}".users') == ROWS
    # The sequence moved past the ids written, so the server's next default is above them.
    assert db.fetchval(f"SELECT nextval('\"{schema}\".users_id_seq')") == ROWS + 1


def test_appending_and_upserting_warm_cost_three_and_five(
    tcp_dsn: str, db: Any, schema: str, proxy: DelayProxy
) -> None:
    db.execute(f'CREATE TABLE "{schema}".t (id bigint PRIMARY KEY, name text)')
    with PostgresBulkWriter(dsn=through(tcp_dsn, proxy.port)) as writer:
        writer.write("t", _users(), schema=schema, mode="copy")
        trips = _trips(
            proxy, lambda: writer.write("t", _users(ROWS + 1), schema=schema, mode="copy")
        )
        assert trips == 3  # BEGIN batch, COPY, COMMIT
        writer.write("t", _users(), schema=schema, mode="upsert", key_columns=["id"])
        trips = _trips(
            proxy,
            lambda: writer.write("t", _users(), schema=schema, mode="upsert", key_columns=["id"]),
        )
        # BEGIN batch with the stage's creation, COPY into it, SAVEPOINT, the apply, COMMIT.
        assert trips <= 6
    assert db.fetchval(f'SELECT count(*) FROM "{schema}".t') == 2 * ROWS


def test_a_column_retyped_to_the_same_width_between_writes_is_seen(
    dsn: str, db: Any, schema: str, writer: PostgresBulkWriter
) -> None:
    # int4 and float4 are both 4 bytes in binary COPY: a writer trusting its stale
    # description would send 1.5 as an error, or an int's bytes read as a float.
    db.execute(f'CREATE TABLE "{schema}".m (id int PRIMARY KEY, v int4)')
    writer.write("m", pd.DataFrame({"id": [1], "v": [7]}), schema=schema)
    db.execute(f'ALTER TABLE "{schema}".m ALTER COLUMN v TYPE float4')
    writer.write("m", pd.DataFrame({"id": [2], "v": [1.5]}), schema=schema)
    rows = db.fetch(f'SELECT id, v FROM "{schema}".m ORDER BY id')
    assert [(r["id"], r["v"]) for r in rows] == [(1, 7.0), (2, 1.5)]


def test_a_table_recreated_or_given_a_column_between_writes_is_written_as_it_is_now(
    dsn: str, db: Any, schema: str, writer: PostgresBulkWriter
) -> None:
    db.execute(f'CREATE TABLE "{schema}".r (id bigint, name text)')
    writer.write("r", _users(), schema=schema, replace=KeyRange("id", 1, ROWS + 1))
    db.execute(f'ALTER TABLE "{schema}".r ADD COLUMN score double precision')
    frame = _users().assign(score=0.5)
    writer.write("r", frame, schema=schema, replace=KeyRange("id", 1, ROWS + 1))
    assert db.fetchval(f'SELECT sum(score) FROM "{schema}".r') == ROWS * 0.5

    db.execute(f'DROP TABLE "{schema}".r')
    db.execute(f"CREATE TABLE \"{schema}\".r (name text, id bigint, extra text DEFAULT 'x')")
    writer.write("r", _users(), schema=schema, replace=KeyRange("id", 1, ROWS + 1))
    assert db.fetchval(f"SELECT count(*) FROM \"{schema}\".r WHERE extra = 'x'") == ROWS


def test_a_statement_run_through_execute_leaves_nothing_in_the_session(
    dsn: str, writer: PostgresBulkWriter
) -> None:
    # The pool's own reset is skipped after writes; execute() resets its connection itself.
    default = writer.fetch("SHOW statement_timeout")[0]["statement_timeout"]
    for _ in range(3):  # whichever pooled connection the next call gets
        writer.execute("SET statement_timeout = '123s'")
        assert writer.fetch("SHOW statement_timeout")[0]["statement_timeout"] == default


def _connect_trips(proxy: DelayProxy, tcp_dsn: str) -> int:
    """What opening a connection costs through ``proxy``: 3 with trust or md5 auth (the TCP
    handshake, the SSL request the server declines, the startup), 2 more with SCRAM."""

    async def connect() -> None:
        conn = await asyncpg.connect(through(tcp_dsn, proxy.port))
        await conn.close()

    return _trips(proxy, lambda: asyncio.run(connect()))


def test_a_new_writer_replacing_a_partition_costs_nine_round_trips(
    tcp_dsn: str, db: Any, schema: str, proxy: DelayProxy
) -> None:
    db.execute(f'CREATE TABLE "{schema}".users (id bigserial PRIMARY KEY, name text)')
    span = KeyRange("id", 1, ROWS + 1)

    def step() -> None:
        # As a Dagster step: a writer of its own, its pool opened and closed with the write.
        PostgresBulkWriter(dsn=through(tcp_dsn, proxy.port)).write(
            "users", _users(), schema=schema, replace=span
        )

    step()
    # Connecting: the TCP handshake, the SSL request the server declines, the startup. Then
    # the description (one COPY ... TO STDOUT), the BEGIN batch, the DELETE (parsed, then
    # run: a new connection has it not prepared), the COPY, the sequences with COMMIT.
    # 9 on a server with trust auth, as the target counts it.
    assert _trips(proxy, step) - _connect_trips(proxy, tcp_dsn) <= 6
    assert db.fetchval(f'SELECT count(*) FROM "{schema}".users') == ROWS


@pytest.mark.parametrize("name", ["it's", 'a "b"', "back\\slash", "E'x'"])
def test_names_that_need_escaping_are_described_and_written(
    db: Any, schema: str, writer: PostgresBulkWriter, name: str
) -> None:
    quoted = '"' + name.replace('"', '""') + '"'
    db.execute(f'CREATE TABLE "{schema}".{quoted} (id bigint, {quoted} text)')
    frame = pd.DataFrame({"id": [1, 2], name: ["x", "y"]})
    for _ in range(2):  # described, then from the cache, checked
        writer.write(name, frame, schema=schema, replace=KeyRange("id", 1, 3))
    assert db.fetchval(f'SELECT count(*) FROM "{schema}".{quoted}') == 2


@pytest.mark.once  # the benchmark's smoke run, the same on any server
def test_the_rtt_benchmark_reports_every_mode_with_its_round_trips(
    tcp_dsn: str, schema: str, tmp_path: Path, proxy: DelayProxy
) -> None:
    out = tmp_path / "rtt.json"
    command = [sys.executable, "-m", "benchmarks", "--rtt", "4", "--quick", "--dsn", tcp_dsn]
    command += ["--schema", schema, "--json", str(out)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "Counted by the proxy" in done.stdout
    small = json.loads(out.read_text())["runs"]["4.0"]["small"]
    assert set(small) == {*SMALL_MODES, "raw_replace"}
    # The same counts as the tests above, now through the benchmark's own bookkeeping.
    assert small["copy"]["round_trips"] == 3
    assert small["replace"]["round_trips"] == 4
    assert small["native"]["round_trips"] == 6
    assert small["replace_cold"]["round_trips"] - _connect_trips(proxy, tcp_dsn) <= 6
    assert small["replace_cold"]["connections"] == 1
    assert "password" not in done.stdout


def test_a_warm_native_partition_replace_costs_six_round_trips(
    tcp_dsn: str, db: Any, schema: str, proxy: DelayProxy
) -> None:
    table = f'"{schema}".users'
    db.execute(
        f"CREATE TABLE {table} (id bigint NOT NULL, name text) PARTITION BY RANGE (id);"
        f'CREATE TABLE "{schema}".users_1 PARTITION OF {table} FOR VALUES FROM (1) TO ({ROWS + 1})'
    )
    span = KeyRange("id", 1, ROWS + 1)
    with PostgresBulkWriter(dsn=through(tcp_dsn, proxy.port)) as writer:

        def again() -> Any:
            return writer.write(
                "users", _users(), schema=schema, replace=span, native_partitions=True
            )

        again()
        proxy.take()
        result = again()
        # BEGIN with the slice's turn and the parent's check; the partition key and children;
        # their bounds compared; the child locked, counted and TRUNCATEd in one batch; the
        # COPY FREEZE; COMMIT.
        assert proxy.take().round_trips == 6
    assert result.rows_deleted == ROWS
    assert db.fetchval(f'SELECT count(*) FROM "{schema}".users_1') == ROWS


def test_a_new_child_attached_with_commit_is_then_replaced_from_the_cache(
    tcp_dsn: str, db: Any, schema: str, writer: PostgresBulkWriter
) -> None:
    # The cached description is the parent's: a child attached by the first load leaves it
    # valid, and the next replace finds the child by reading the partitions afresh.
    db.execute(f'CREATE TABLE "{schema}".e (id bigint NOT NULL, name text) PARTITION BY RANGE (id)')
    span = KeyRange("id", 1, ROWS + 1)
    for _ in range(2):
        writer.write("e", _users(), schema=schema, replace=span, native_partitions=True)
    assert db.fetchval(f'SELECT count(*) FROM "{schema}".e_1') == ROWS
    assert db.fetchval(f'SELECT count(*) FROM "{schema}".e') == ROWS


def test_a_failure_of_the_statements_sent_with_commit_is_retried_not_unknown(
    dsn: str, db: Any, schema: str
) -> None:
    """The sequences' DO block travels with COMMIT: when it fails (here its lock waits past
    lock_timeout), COMMIT never ran, so an append is known not stored and is run again."""
    from resources._locks import SEQUENCE

    db.execute(f'CREATE TABLE "{schema}".s (id bigserial, name text)')
    oid = db.fetchval(f"SELECT '\"{schema}\".s_id_seq'::regclass::oid::int")

    async def hold() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("SELECT pg_advisory_lock($1, $2)", SEQUENCE, oid)
            await asyncio.sleep(2.5)
        finally:
            await conn.close()

    holder = threading.Thread(target=asyncio.run, args=(hold(),))
    holder.start()
    time.sleep(0.5)
    try:
        with PostgresBulkWriter(dsn=dsn, lock_timeout=1.0, retries=3) as writer:
            result = writer.write("s", lambda: _users(), schema=schema, mode="copy")
    finally:
        holder.join(30)
    assert result.attempts >= 2
    assert db.fetchval(f'SELECT count(*) FROM "{schema}".s') == ROWS
    assert db.fetchval(f'SELECT last_value FROM "{schema}".s_id_seq') == ROWS
