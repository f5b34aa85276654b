"""The code location that test_daemon.py serves with dagster-daemon and dagster-webserver:
``chunks`` (24 partitions of 1,000 ids, two per run) and ``ticks`` (scheduled every minute),
both written by the writer to ``DATABASE_URL``. Not collected by pytest (no ``test_`` prefix).

The first attempt at partition ``KILL_PARTITION`` writes its process id to the file named by
``BULK_ASSETS_TEST_KILL_FILE`` once its transaction has rows in it, then waits to be killed;
later attempts find the file and load normally."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
from dagster import Definitions, EnvVar, in_process_executor

from bulk_assets import ChunkPartitions, Fetcher, Partition, build_definitions, dataset
from resources import PostgresBulkWriter

PARTITIONS, ROWS, CHUNKS = 24, 1_000, 4
KILL_PARTITION = 9
TICK_ROWS = 500
# Each run worker's pid in its sessions' application_name: the test tells runs apart by it.
APPLICATION_PREFIX = "bulk-assets-test-"


def chunk_rows(part: Partition) -> Iterator[pd.DataFrame]:
    """ids start..end in 4 chunks, 0.75 s apart: each run writes for seconds, so that runs
    queue for the write pool."""
    step = ROWS // CHUNKS
    for k in range(CHUNKS):
        lo = part.start + k * step
        yield pd.DataFrame({"id": range(lo, lo + step), "label": [part.key] * step})
        if k == 1 and part.start == 1 + KILL_PARTITION * ROWS:
            _wait_to_be_killed()
        time.sleep(0.75)


def _wait_to_be_killed() -> None:
    marker = Path(os.environ["BULK_ASSETS_TEST_KILL_FILE"])
    if marker.exists():
        return
    marker.write_text(str(os.getpid()))
    time.sleep(120)


def tick_rows() -> pd.DataFrame:
    """The whole table, replaced on each tick."""
    return pd.DataFrame({"id": range(TICK_ROWS), "label": ["tick"] * TICK_ROWS})


chunks = dataset(
    name="chunks",
    table="chunks",
    partitions=ChunkPartitions(column="id", size=ROWS, count=PARTITIONS),
    backfill="multi-run",
    max_partitions_per_run=2,
    chunk_size=ROWS // CHUNKS,
    checks={"row_count": False},
)(chunk_rows)
ticks = dataset(name="ticks", table="ticks", schedule="* * * * *", checks={"row_count": False})(
    tick_rows
)


def _in_process(built: Definitions) -> Definitions:
    """The run worker as the process that writes, so that killing it kills the write."""
    return Definitions(
        assets=built.assets,
        asset_checks=built.asset_checks,
        schedules=built.schedules,
        resources=built.resources,
        executor=in_process_executor,
    )


defs = _in_process(
    build_definitions(
        [chunks, ticks],
        resources={
            "writer": PostgresBulkWriter(
                dsn=EnvVar("DATABASE_URL"),
                application_name=f"{APPLICATION_PREFIX}{os.getpid()}",
                pool_size=2,
            ),
            "fetcher": Fetcher(),
        },
    )
)


def chunks_partition_keys() -> list[str]:
    partitions_def = defs.resolve_assets_def("chunks").partitions_def
    assert partitions_def is not None
    return list(partitions_def.get_partition_keys())
