"""A partition whose run fails after chunk k (for every k) and is run again ends up
byte-identical to a clean run; a killed backend is retried by the step."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import asyncpg
import pandas as pd
import pytest
from dagster import DagsterEventType, DagsterInstance, ExecuteInProcessResult, materialize

from bulk_assets import ChunkPartitions, Fetcher, Partition, build_asset, dataset
from resources import PostgresBulkWriter

CHUNKS, ROWS = 5, 200
KEY = "0001-1000"
DDL = "CREATE TABLE IF NOT EXISTS items (id bigint PRIMARY KEY, label text NOT NULL)"
APP = "bulk-assets-reexecution"


class Plan:
    """What the generator does on its next call: fail after ``fail_after`` chunks, once."""

    version = "v1"
    fail_after: int | None = None
    kill_after: int | None = None
    dsn = ""


def chunks(part: Partition) -> Any:
    fail, kill = Plan.fail_after, Plan.kill_after
    Plan.fail_after = Plan.kill_after = None  # only the first attempt fails
    for k in range(CHUNKS):
        if fail == k:
            raise RuntimeError(f"injected failure after chunk {k}")
        if kill == k:
            terminate_our_backends(Plan.dsn)
        lo = part.start + k * ROWS
        yield pd.DataFrame(
            {"id": range(lo, lo + ROWS), "label": [f"{Plan.version}-{i}" for i in range(ROWS)]}
        )
    if fail == CHUNKS:
        raise RuntimeError("injected failure after the last chunk")


def terminate_our_backends(dsn: str) -> None:
    async def kill() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = $1 AND pid <> pg_backend_pid()",
                APP,
            )
        finally:
            await conn.close()

    # The generator may run on the writer's event loop thread: a thread of its own runs this.
    worker = threading.Thread(target=asyncio.run, args=(kill(),))
    worker.start()
    worker.join()


items = dataset(
    table="items",
    ddl=DDL,
    partitions=ChunkPartitions(column="id", size=1000, count=3),
    chunk_size=ROWS,
    step_retry_wait=0.2,
)(chunks)


@pytest.fixture
def resources(search_path_dsn: str) -> dict[str, Any]:
    Plan.dsn = search_path_dsn
    writer = PostgresBulkWriter(dsn=search_path_dsn, application_name=APP, retries=0)
    return {"writer": writer, "fetcher": Fetcher()}


def run(resources: dict[str, Any], instance: DagsterInstance) -> ExecuteInProcessResult:
    return materialize(
        [build_asset(items)],
        resources=resources,
        instance=instance,
        partition_key=KEY,
        raise_on_error=False,
    )


def content(db: Any, schema: str) -> str:
    digest: str = db.fetchval(
        f"SELECT md5(string_agg(t::text, '|' ORDER BY id)) FROM \"{schema}\".items t"
    )
    return digest


@pytest.mark.parametrize("k", range(CHUNKS + 1))
def test_run_failing_after_chunk_k_then_rerun_equals_a_clean_run(
    resources: dict[str, Any], db: Any, schema: str, k: int
) -> None:
    instance = DagsterInstance.ephemeral()
    Plan.version = "v2"
    assert run(resources, instance).success
    clean_v2 = content(db, schema)
    Plan.version = "v1"
    assert run(resources, instance).success
    v1 = content(db, schema)
    assert v1 != clean_v2

    Plan.version, Plan.fail_after = "v2", k
    failed = run(resources, instance)
    assert not failed.success
    assert content(db, schema) == v1  # nothing of the failed run is visible
    again = run(resources, instance)
    assert again.success and content(db, schema) == clean_v2


def test_killed_backend_is_retried_by_the_step(
    resources: dict[str, Any], db: Any, schema: str
) -> None:
    instance = DagsterInstance.ephemeral()
    Plan.version = "v1"
    assert run(resources, instance).success
    clean = content(db, schema)
    db.execute(f'TRUNCATE "{schema}".items')
    Plan.kill_after = 2
    result = run(resources, instance)
    assert result.success
    restarts = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_RESTARTED]
    assert len(restarts) == 1
    assert content(db, schema) == clean
    leftover = db.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 "
        "AND state = 'idle in transaction'",
        APP,
    )
    assert leftover == 0
