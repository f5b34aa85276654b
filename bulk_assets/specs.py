"""What a dataset is: where its rows come from, where they go, and how they are split.

One :class:`DatasetSpec` per dataset, declared in YAML (see :mod:`bulk_assets.discovery`) or in
Python (:func:`bulk_assets.dataset`). Both routes build the same validated model, so a
mistake in either is reported the same way, when the code location loads.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from dagster import AutomationCondition
from pydantic import BaseModel, ConfigDict, Field, InstanceOf, field_validator, model_validator

from resources import check_identifier

from . import _location
from ._fetch_formats import Format
from .dataset_modes import DATASET_MODES, DatasetModeInfo

__all__ = [
    "ChecksSpec",
    "ChunkPartitions",
    "DatasetMode",
    "DatasetSpec",
    "FetchSource",
    "GeneratedSource",
    "TimePartitions",
]

DatasetMode = Literal["replace-partition", "copy", "executemany", "insert", "update", "upsert"]
# Dagster asset names: letters, digits and underscores.
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class GeneratedSource(_Spec):
    """Rows made by a Python function, called once per partition (or once, unpartitioned)
    with a :class:`~bulk_assets.Partition`; it returns a DataFrame, or yields DataFrames,
    tuples or dicts."""

    kind: Literal["generated"] = "generated"
    function: Annotated[
        str | Callable[..., Any],
        Field(
            description=(
                "The generator: a callable, or in YAML 'package.module:function' (importable "
                "from the working directory)."
            )
        ),
    ]


class FetchSource(_Spec):
    """Rows read from a CSV, Parquet or JSON Lines file at a URL or path, in chunks."""

    kind: Literal["fetch"] = "fetch"
    location: str = Field(
        description=(
            "http(s):// or file:// URL, or a path (relative to the YAML file that declares "
            "it). May contain {partition_key}, {start} and {end} for partitioned datasets, "
            "with a format spec ({start:%Y-%m-%d}); {{ and }} are literal braces."
        )
    )
    format: Format | None = Field(
        default=None, description="File format; default: from the extension."
    )
    rename: dict[str, str] = Field(
        default_factory=dict, description="Source column -> table column."
    )
    dtypes: dict[str, str] = Field(
        default_factory=dict, description="Table column -> pandas dtype, applied per chunk."
    )
    columns: list[str] | None = Field(
        default=None, description="Table columns to keep (after rename), in this order."
    )
    read_options: dict[str, Any] = Field(
        default_factory=dict, description="Passed to the reader, e.g. {sep: ';'}."
    )
    slice: Literal["filter", "refuse"] | None = Field(
        default=None,
        description=(
            "Partitioned datasets: filter: the source holds many partitions, and each run "
            "loads its own rows of it, skipping (and counting) the rest; refuse: every row "
            "must belong to the partition, else the run fails. Default: filter when the "
            "location has no {partition_key}, {start} or {end}, refuse when it has."
        ),
    )
    null_values: list[str] | None = Field(
        default=None,
        description=(
            "Field texts read as missing (CSV); default: the empty field, NA, N/A, NULL, null, "
            "NaN, None, #N/A ... (pandas' list). [''] keeps 'NA' (Namibia) as text."
        ),
    )

    @field_validator("location")
    @classmethod
    def check_location(cls, value: str) -> str:
        _location.parse(value)
        return value

    @property
    def templated(self) -> bool:
        """Whether the location names each partition's own file."""
        return any(name is not None for _, name, _ in _location.parse(self.location))

    @property
    def filters_slice(self) -> bool:
        """Whether a partition's run skips the source's rows outside its slice."""
        if self.slice is not None:
            return self.slice == "filter"
        return not self.templated


class ChunkPartitions(_Spec):
    """``count`` static partitions of ``size`` consecutive values of an integer column:
    partition i owns ``start + i*size`` up to ``start + (i+1)*size - 1``."""

    kind: Literal["chunks"] = "chunks"
    column: str = Field(description="The integer column each partition owns a range of.")
    size: int = Field(gt=0, description="Values per partition.")
    count: int = Field(gt=0, le=100_000, description="Number of partitions.")
    start: int = Field(default=1, description="First value of partition 0.")


class TimePartitions(_Spec):
    """One partition per hour, day, week or month, owning that window of a timestamp column."""

    kind: Literal["hourly", "daily", "weekly", "monthly"]
    column: str = Field(description="The timestamptz column each partition owns a window of.")
    start: dt.date | dt.datetime = Field(description="Start of the first partition.")
    end: dt.date | dt.datetime | None = Field(
        default=None, description="End of the last partition; default: up to now."
    )
    timezone: str = Field(default="UTC", description="Timezone the windows are cut in.")


class ChecksSpec(_Spec):
    """Asset checks, run in the materialization's own step on the partitions it wrote: each
    reads only those slices (a count backed by the partition column's index), so a check
    costs the same at partition 1 and partition 10,000. All are blocking: a failed check
    stops downstream assets."""

    row_count: bool | None = Field(
        default=None,
        description=(
            "Rows in each written partition's slice (or the table) equal the rows the run "
            "wrote there. Default: on for replace-partition."
        ),
    )
    count_table: bool = Field(
        default=False,
        description=(
            "Also count the whole table after each materialization (dagster/row_count). A "
            "full scan of the table: off by default."
        ),
    )
    unique: list[str] | None = Field(
        default=None,
        description="Columns that must identify a row. Default: key_columns, if any.",
    )
    not_null: list[str] = Field(default_factory=list, description="Columns that must hold no NULL.")


class DatasetSpec(_Spec):
    """One dataset: becomes one Dagster asset writing one PostgreSQL table."""

    name: str = Field(description="Asset name: letters, digits, underscores.")
    table: str = Field(description="Target table (quoted as given).")
    schema_name: str | None = Field(
        default=None, alias="schema", description="Target schema; default: search_path."
    )
    source: Annotated[GeneratedSource | FetchSource, Field(discriminator="kind")]
    mode: DatasetMode = Field(
        default="replace-partition",
        description=(
            "replace-partition: delete the partition's slice (or the whole table, "
            "unpartitioned) and COPY the new rows in one transaction. copy / executemany / "
            "insert: append. update / upsert: match rows on key_columns."
        ),
    )
    key_columns: list[str] = Field(
        default_factory=list, description="Columns identifying a row (update / upsert)."
    )
    partitions: Annotated[ChunkPartitions | TimePartitions | None, Field(discriminator="kind")] = (
        None
    )
    backfill: Literal["single-run", "multi-run"] = Field(
        default="multi-run",
        description=(
            "single-run: a backfill of a range runs in one run (and `dagster asset "
            "materialize --partition-range` works); multi-run: one run per "
            "max_partitions_per_run partitions."
        ),
    )
    max_partitions_per_run: int = Field(default=1, gt=0)
    schedule: str | None = Field(
        default=None,
        description=(
            "Cron expression. For time partitions, the run it starts loads the partition that "
            "just ended; chunk-partitioned datasets cannot be scheduled."
        ),
    )
    automation_condition: InstanceOf[AutomationCondition] | None = Field(  # type: ignore[type-arg]
        default=None,
        description=(
            "When Dagster's automation sensor materializes the dataset, e.g. "
            "AutomationCondition.eager(): after its deps update. Beside or instead of schedule."
        ),
    )
    ddl: str | None = Field(
        default=None,
        description="SQL run before each load, e.g. CREATE TABLE IF NOT EXISTS ... .",
    )
    create: bool = Field(
        default=False, description="Create a missing table from the first chunk's dtypes."
    )
    native_partitions: bool = Field(
        default=False,
        description=(
            "Use PostgreSQL's own range partitions on the partition column: create makes "
            "the table PARTITION BY RANGE and a child per partition on its first load; a "
            "replace TRUNCATEs that child and loads it by COPY FREEZE (no dead tuples)."
        ),
    )
    chunk_size: int | None = Field(default=None, gt=0, description="Rows per chunk written.")
    on_bad_rows: Literal["fail", "quarantine"] = Field(
        default="fail",
        description=(
            "fail: a bad row fails the partition. quarantine: bad rows (type, NOT NULL, "
            "unique, check, foreign key) go to rejects_table with their error; the rest load."
        ),
    )
    rejects_table: str | None = Field(
        default=None, description="Where quarantined rows go; default: <table>__rejects."
    )
    step_retries: int = Field(
        default=2,
        ge=0,
        description=(
            "Times Dagster re-runs the step after a transient failure the writer's own retries "
            "did not overcome (idempotent modes only: replace-partition, update, upsert)."
        ),
    )
    step_retry_wait: float = Field(
        default=30.0, ge=0, description="Seconds before such a step retry."
    )
    group: str = Field(default="datasets", description="Asset group in the UI.")
    description: str | None = None
    deps: list[str] = Field(default_factory=list, description="Upstream asset names.")
    checks: ChecksSpec = Field(default_factory=ChecksSpec)
    pool: str = Field(
        default="postgres_writes",
        description="Dagster concurrency pool limiting how many writes run at once.",
    )
    op_tags: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Tags on the asset's op, read by the executor that runs its step: e.g. "
            "'dagster-k8s/config' with the step pod's resource requests under "
            "k8s_job_executor, or 'dagster-celery/queue' under celery_executor."
        ),
    )
    owners: list[str] = Field(
        default_factory=list, description="Emails or 'team:name' owning the asset."
    )
    tags: dict[str, str] = Field(default_factory=dict, description="Asset tags.")
    kinds: list[str] = Field(
        default_factory=list, description="Kinds shown in the UI, beside postgres and pandas."
    )
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="Asset metadata, beside the table's own."
    )
    code_version: str | None = Field(
        default=None, description="Dagster code version: change it when the source changes."
    )

    @field_validator("name")
    @classmethod
    def check_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"must be letters, digits and underscores, got {value!r}")
        return value

    @field_validator("table", "schema_name", "rejects_table")
    @classmethod
    def check_identifier(cls, value: str | None) -> str | None:
        # Refused here, when the code location loads, rather than at the first run.
        return None if value is None else check_identifier(value, what="the name")

    @field_validator("key_columns")
    @classmethod
    def check_key_identifiers(cls, value: list[str]) -> list[str]:
        return [check_identifier(v, what="the column name") for v in value]

    @model_validator(mode="after")
    def check_consistent(self) -> DatasetSpec:
        if self.dataset_mode.needs_keys and not self.key_columns:
            raise ValueError(f"mode {self.mode!r} needs key_columns")
        if self.schedule is not None and isinstance(self.partitions, ChunkPartitions):
            raise ValueError(
                "a chunk-partitioned dataset has no partition for a schedule to pick; "
                "schedule a time-partitioned or unpartitioned dataset"
            )
        if self.native_partitions and (self.partitions is None or not self.dataset_mode.replaces):
            raise ValueError(
                "native_partitions replaces one partition's child table: it needs "
                f"partitions and mode replace-partition, got mode {self.mode!r} and "
                f"{'no partitions' if self.partitions is None else 'partitions'}"
            )
        if isinstance(self.source, FetchSource):
            _check_fields(self.source.location, self.partitions)
            if self.source.slice is not None and self.partitions is None:
                raise ValueError(
                    f"source.slice: {self.source.slice} applies to partitioned datasets only"
                )
        return self

    @property
    def dataset_mode(self) -> DatasetModeInfo:
        return DATASET_MODES[self.mode]

    @property
    def display(self) -> str:
        return self.table if self.schema_name is None else f"{self.schema_name}.{self.table}"

    @property
    def unique_columns(self) -> list[str]:
        if self.checks.unique is not None:
            return self.checks.unique
        return self.key_columns

    @property
    def checks_row_count(self) -> bool:
        if self.checks.row_count is not None:
            return self.checks.row_count
        return self.dataset_mode.replaces


def _check_fields(location: str, partitions: ChunkPartitions | TimePartitions | None) -> None:
    """Each field of ``location`` exists for ``partitions`` and its format spec applies to a
    value of the partition's type (a datetime for time partitions, an int for chunks)."""
    fields = [(name, spec) for _, name, spec in _location.parse(location) if name is not None]
    if fields and partitions is None:
        raise ValueError(
            f"source.location {location!r} has fields, but the dataset has no partitions to "
            "fill them; write a literal brace as {{ or }}"
        )
    if partitions is None:
        return
    bound: Any = 1 if isinstance(partitions, ChunkPartitions) else dt.datetime(2024, 1, 1)
    sample = {"partition_key": "key", "start": bound, "end": bound}
    for name, spec in fields:
        try:
            format(sample[name], spec)
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"source.location {location!r}: format spec {spec!r} does not apply to "
                f"{{{name}}} ({type(sample[name]).__name__}): {exc}"
            ) from exc
