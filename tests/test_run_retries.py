"""Runs of appending loads tag themselves so that the run-retry daemon never runs them again;
runs that replace their slice keep the instance's retries."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from dagster import DagsterInstance, materialize

from bulk_assets import Fetcher, build_asset, build_definitions, dataset
from bulk_assets.factory import NO_RUN_RETRIES
from resources import PostgresBulkWriter


def rows() -> pd.DataFrame:
    return pd.DataFrame({"id": range(10), "name": [f"n{i}" for i in range(10)]})


def spec_for(mode: str) -> Any:
    name = f"log_{mode.replace('-', '_')}"
    return dataset(
        name=name,
        table=name,
        mode=mode,
        ddl=f"CREATE TABLE IF NOT EXISTS {name} (id bigint, name text)",
    )(rows)


@pytest.mark.parametrize(
    ("mode", "tagged"),
    [("copy", True), ("executemany", True), ("insert", True), ("replace-partition", False)],
)
def test_appending_runs_opt_out_of_run_retries(
    search_path_dsn: str, mode: str, tagged: bool
) -> None:
    instance = DagsterInstance.ephemeral()
    result = materialize(
        [build_asset(spec_for(mode))],
        resources={"writer": PostgresBulkWriter(dsn=search_path_dsn), "fetcher": Fetcher()},
        instance=instance,
    )
    tags = instance.get_run_by_id(result.run_id).tags  # type: ignore[union-attr]
    assert (tags.get("dagster/max_retries") == "0") is tagged
    assert (tags.get("dagster/retry_on_asset_or_op_failure") == "false") is tagged


def test_schedule_jobs_of_appending_loads_carry_the_tags() -> None:
    specs = [spec_for("copy"), spec_for("replace-partition")]
    specs = [s.model_copy(update={"schedule": "0 * * * *"}) for s in specs]
    defs = build_definitions(specs, resources={})
    jobs = {s.job_name: s.job for s in defs.schedules or ()}  # type: ignore[union-attr]
    assert dict(jobs["log_copy_job"].tags or {}) == NO_RUN_RETRIES
    assert "dagster/max_retries" not in (jobs["log_replace_partition_job"].tags or {})


def bad_rows() -> pd.DataFrame:
    return pd.DataFrame({"id": ["not a number"], "name": ["x"]})


@pytest.mark.parametrize("mode", ["replace-partition", "upsert"])
def test_terminal_failures_opt_out_of_step_failure_retries(search_path_dsn: str, mode: str) -> None:
    name = f"bad_{mode.replace('-', '_')}"
    spec = dataset(
        name=name,
        table=name,
        mode=mode,
        key_columns=["id"] if mode == "upsert" else [],
        ddl=f"CREATE TABLE IF NOT EXISTS {name} (id bigint PRIMARY KEY, name text)",
    )(bad_rows)
    instance = DagsterInstance.ephemeral()
    result = materialize(
        [build_asset(spec)],
        resources={"writer": PostgresBulkWriter(dsn=search_path_dsn), "fetcher": Fetcher()},
        instance=instance,
        raise_on_error=False,
    )
    assert not result.success
    tags = instance.get_run_by_id(result.run_id).tags  # type: ignore[union-attr]
    assert tags.get("dagster/retry_on_asset_or_op_failure") == "false"
    assert "dagster/max_retries" not in tags
