"""DatasetSpec -> Dagster definitions: the asset, its checks, its job and schedule."""

# No `from __future__ import annotations`: Dagster reads the context type from the function
# signature when the asset or check is defined.

import inspect
import warnings
from collections.abc import Sequence
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSelection,
    BackfillPolicy,
    BetaWarning,
    CodeReferencesMetadataValue,
    Definitions,
    LocalFileCodeReference,
    MaterializeResult,
    PartitionsDefinition,
    RetryRequested,
    ScheduleDefinition,
    asset,
    build_schedule_from_partitioned_job,
    define_asset_job,
)

from resources import BulkWriteError, PostgresBulkWriter

from .checks import check_specs, run_checks
from .fetch import Fetcher, FetchError
from .loading import load_dataset
from .metadata import dataset_metadata
from .partitions import partitions_definition
from .specs import DatasetSpec, GeneratedSource, TimePartitions

__all__ = [
    "NO_RUN_RETRIES",
    "NO_STEP_FAILURE_RETRIES",
    "build_asset",
    "build_definitions",
    "build_schedule",
]

# Dagster's run tags read by the run-retry daemon (dagster._core.storage.tags: MAX_RETRIES_TAG
# and RETRY_ON_ASSET_OR_OP_FAILURE_TAG). A run of an appending load must never run again on
# its own: its COMMIT may have landed just before its worker died, and a second run would add
# the rows twice. A run that failed on a terminal error is not worth another run either; a
# crashed worker or step process, or retryable errors that outlasted the step's retries, are.
NO_STEP_FAILURE_RETRIES = {"dagster/retry_on_asset_or_op_failure": "false"}
NO_RUN_RETRIES = {"dagster/max_retries": "0", **NO_STEP_FAILURE_RETRIES}


def build_asset(spec: DatasetSpec) -> AssetsDefinition:
    partitions_def = partitions_definition(spec)
    backfill_policy = None
    if partitions_def is not None:
        backfill_policy = (
            BackfillPolicy.single_run()
            if spec.backfill == "single-run"
            else BackfillPolicy.multi_run(spec.max_partitions_per_run)
        )

    with warnings.catch_warnings():
        # backfill_policy is marked beta; single-run backfills are what makes
        # `dagster asset materialize --partition-range` work, so it is used on purpose.
        warnings.simplefilter("ignore", BetaWarning)
        return _asset(spec, partitions_def, backfill_policy)


def _asset(
    spec: DatasetSpec,
    partitions_def: PartitionsDefinition | None,
    backfill_policy: BackfillPolicy | None,
) -> AssetsDefinition:
    key = AssetKey(spec.name)

    @asset(
        key=key,
        description=spec.description or f"{spec.mode} into {spec.display}",
        group_name=spec.group,
        kinds={"postgres", "pandas", *spec.kinds},
        owners=spec.owners or None,
        tags=spec.tags or None,
        code_version=spec.code_version,
        partitions_def=partitions_def,
        backfill_policy=backfill_policy,
        pool=spec.pool,
        op_tags=spec.op_tags or None,
        automation_condition=spec.automation_condition,
        deps=spec.deps,
        check_specs=check_specs(spec, key),
        # The catalog links assets that write one table, and shows where they store it.
        metadata={
            **spec.metadata,
            "dagster/table_name": spec.display,
            "dagster/storage_kind": "postgres",
            "mode": spec.mode,
            **_code_references(spec),
        },
    )
    def _materialize(
        context: AssetExecutionContext, writer: PostgresBulkWriter, fetcher: Fetcher
    ) -> MaterializeResult:  # type: ignore[type-arg]  # Dagster reads this annotation
        keys: Sequence[str | None] = context.partition_keys if spec.partitions else [None]
        if not spec.dataset_mode.rerun_safe:
            # Tagged before the first write, whoever launched the run (UI, backfill, CLI,
            # schedule): a worker that dies before this point wrote nothing, and may be retried.
            context.instance.add_run_tags(context.run.run_id, NO_RUN_RETRIES)
        try:
            loads = load_dataset(spec, writer, fetcher, partition_keys=keys, log=context.log)
        except (BulkWriteError, FetchError) as exc:
            # One rule for the writer's retries and the step's: a retryable error of a load
            # that converges when run again retries the step. The writer already retried
            # within the step; a step retry waits longer, for a server that is restarting or
            # failing over. Appending loads never run twice: their COMMIT may have landed.
            if exc.retryable and spec.dataset_mode.rerun_safe:
                raise RetryRequested(
                    max_retries=spec.step_retries, seconds_to_wait=spec.step_retry_wait
                ) from exc
            if not exc.retryable:
                # The same rule for a run retry: a bad value or declaration fails again.
                context.instance.add_run_tags(context.run.run_id, NO_STEP_FAILURE_RETRIES)
            raise
        return MaterializeResult(
            metadata=dataset_metadata(spec, loads, writer),
            check_results=run_checks(spec, writer, loads),
        )

    return _materialize


def _code_references(spec: DatasetSpec) -> dict[str, Any]:
    """The generator's file and line, so the UI links a generated dataset to its code (a
    dataset declared in a defs.yaml gets that file's line from Dagster itself)."""
    function = spec.source.function if isinstance(spec.source, GeneratedSource) else None
    try:
        code = inspect.unwrap(function).__code__  # type: ignore[arg-type]
    except AttributeError:  # not a plain function (a callable object, a builtin): no link
        return {}
    reference = LocalFileCodeReference(file_path=code.co_filename, line_number=code.co_firstlineno)
    return {"dagster/code_references": CodeReferencesMetadataValue(code_references=[reference])}


def build_schedule(spec: DatasetSpec, asset_def: AssetsDefinition) -> Any:
    """A schedule for ``spec.schedule`` (stopped until turned on in the UI), or None. For time
    partitions each tick loads the partition that just ended."""
    if spec.schedule is None:
        return None
    job = define_asset_job(
        f"{spec.name}_job",
        selection=AssetSelection.assets(asset_def),
        description=f"Materializes {spec.name} and runs its checks.",
        # Shown on the schedule's runs from the start; the asset tags any run itself too.
        tags=None if spec.dataset_mode.rerun_safe else NO_RUN_RETRIES,
    )
    if isinstance(spec.partitions, TimePartitions):
        return build_schedule_from_partitioned_job(
            job, name=f"{spec.name}_schedule", **_offsets(spec)
        )
    return ScheduleDefinition(name=f"{spec.name}_schedule", job=job, cron_schedule=spec.schedule)


def _offsets(spec: DatasetSpec) -> dict[str, Any]:
    """A time-partitioned job ticks once per partition; the cron's fixed fields say when in
    the period (Dagster takes those, not a free cron, for partitioned schedules)."""
    assert spec.schedule is not None
    fields = spec.schedule.split()
    names = ("minute_of_hour", "hour_of_day", "day_of_month", None, "day_of_week")
    if len(fields) != 5 or fields[3] != "*":
        raise ValueError(
            f"dataset {spec.name}: schedule {spec.schedule!r} of a time-partitioned dataset "
            "must be a 5-field cron with fixed minute/hour/day fields, e.g. '10 0 * * *'"
        )
    offsets: dict[str, Any] = {}
    for name, value in zip(names, fields, strict=True):
        if name is not None and value != "*":
            if not value.isdigit():
                raise ValueError(
                    f"dataset {spec.name}: schedule field {value!r} must be a number or '*' "
                    "for a time-partitioned dataset (its cadence is the partitions')"
                )
            offsets[name] = int(value)
    return offsets


def build_definitions(
    specs: Sequence[DatasetSpec], resources: dict[str, Any], *, executor: Any = None
) -> Definitions:
    """The assets and schedules of ``specs`` with ``resources``; ``executor`` (e.g.
    ``k8s_job_executor``, ``celery_executor``) runs their steps, Dagster's default if None."""
    assets, schedules = [], []
    for spec in specs:
        asset_def = build_asset(spec)
        assets.append(asset_def)
        schedule = build_schedule(spec, asset_def)
        if schedule is not None:
            schedules.append(schedule)
    return Definitions(assets=assets, schedules=schedules, resources=resources, executor=executor)
