"""A code location for the Celery test: six datasets, one step each, in one job on
``celery_executor``. Celery workers import it by name (``_celery_defs``, with ``tests/`` on
PYTHONPATH); the broker, queue, DSN and the writers' application_name come from the
environment, so that the test process and each worker read their own."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pandas as pd
from dagster import AssetSelection, Definitions, EnvVar, JobDefinition, define_asset_job
from dagster_celery import celery_executor

from bulk_assets import DatasetSpec, Fetcher, build_definitions, dataset
from resources import PostgresBulkWriter

STEPS = 6
ROWS, CHUNKS = 6_000, 6
# Chunks 0.25 s apart: a step writes for about 1.5 s, so steps on two workers overlap.
PAUSE = 0.25


def rows(offset: int) -> Iterator[pd.DataFrame]:
    step = ROWS // CHUNKS
    for k in range(CHUNKS):
        time.sleep(PAUSE)
        lo = offset + k * step
        yield pd.DataFrame(
            {"id": range(lo, lo + step), "pid": [os.getpid()] * step},
        )


def _spec(i: int) -> DatasetSpec:
    def make() -> Iterator[pd.DataFrame]:
        return rows(i * ROWS)

    make.__name__ = f"celery_{i}"
    return dataset(
        table=f"celery_{i}",
        ddl=f"CREATE TABLE IF NOT EXISTS celery_{i} (id bigint PRIMARY KEY, pid int NOT NULL)",
        chunk_size=ROWS // CHUNKS,
        step_retries=0,
    )(make)


SPECS = [_spec(i) for i in range(STEPS)]

defs = Definitions.merge(
    build_definitions(
        SPECS,
        resources={
            # pool_size=1: one server session per writing step, so that pg_stat_activity
            # counts the steps writing at once.
            "writer": PostgresBulkWriter(
                dsn=EnvVar("CELERY_TEST_DSN"),
                application_name=EnvVar("CELERY_TEST_APP"),
                pool_size=1,
            ),
            "fetcher": Fetcher(),
        },
    ),
    Definitions(
        jobs=[
            define_asset_job(
                "celery_load",
                selection=AssetSelection.assets(*(s.name for s in SPECS)),
                executor_def=celery_executor,
            )
        ]
    ),
)


def celery_load() -> JobDefinition:
    """The job, for ``reconstructable``: workers rebuild it from this module."""
    return defs.resolve_job_def("celery_load")
