"""Datasets as a Dagster Component: a ``defs.yaml`` of ``type: bulk_assets.DatasetsComponent``
holds a list of datasets, in Dagster's own words where it has them (``partitions_def``,
``op.backfill_policy``, ``op.pool``, ``automation_condition``, ``group_name``), and each one
becomes a :class:`~bulk_assets.DatasetSpec` built by :mod:`bulk_assets.factory`.

Python-declared datasets (``@dataset``) join a defs folder through the same component:
``DatasetsComponent(datasets=[users])`` in a ``@dg.component_instance`` function, or the
shorthand ``component = datasets_component(users)``.
"""

# No `from __future__ import annotations`: Dagster derives the YAML schema from the runtime
# annotations of the component's fields.

import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from dagster import (
    AutomationCondition,
    BackfillPolicy,
    Component,
    ComponentLoadContext,
    Definitions,
    Model,
    ResolutionContext,
    Resolvable,
    Resolver,
    component_instance,
    scaffold_with,
)
from dagster.components.resolved.core_models import (
    MultiRunBackfillPolicyModel,
    SingleRunBackfillPolicyModel,
    resolve_backfill_policy,
)
from pydantic import BaseModel, Field, ValidationError

from .discovery import DatasetSpecError, import_function
from .factory import build_asset, build_schedule
from .scaffold import DatasetScaffolder
from .specs import (
    ChecksSpec,
    ChunkPartitions,
    DatasetMode,
    DatasetSpec,
    FetchSource,
    GeneratedSource,
    TimePartitions,
)

__all__ = ["DatasetsComponent", "datasets_component"]

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class GeneratedSourceModel(Resolvable, Model):
    """Rows made by a Python function, called once per partition with a Partition."""

    kind: Literal["generated"] = "generated"
    function: str = Field(description="'package.module:function', importable from the project.")


class ChunkPartitionsDef(Resolvable, Model):
    """``count`` partitions of ``size`` consecutive values of an integer column."""

    type: Literal["chunks"]
    column: str = Field(description="The integer column each partition owns a range of.")
    size: int = Field(gt=0, description="Values per partition.")
    count: int = Field(gt=0, le=100_000, description="Number of partitions.")
    start: int = Field(default=1, description="First value of partition 0.")


class TimePartitionsDef(Resolvable, Model):
    """One partition per hour, day, week or month, owning that window of a timestamp column.
    The fields are those of Dagster's partitions definitions, plus the column."""

    type: Literal["hourly", "daily", "weekly", "monthly"]
    column: str = Field(description="The timestamptz column each partition owns a window of.")
    start_date: str = Field(description="Start of the first partition, e.g. '2026-01-01'.")
    end_date: str | None = Field(
        default=None, description="End of the last partition; default: up to now."
    )
    timezone: str = Field(default="UTC", description="Timezone the windows are cut in.")


def _resolve_tags(context: ResolutionContext, tags: Mapping[str, Any]) -> Mapping[str, str]:
    # As Dagster's own asset attributes: `tier: 1` is the tag "1".
    return {k: str(v) for k, v in context.resolve_value(tags).items()}


@dataclass
class DatasetOp(Resolvable):
    """The op that writes the dataset: Dagster's op spec, less what the factory names itself."""

    pool: str = field(
        default="postgres_writes",
        metadata={"description": "Concurrency pool limiting how many writes run at once."},
    )
    tags: Mapping[str, str] | None = None
    backfill_policy: Annotated[
        BackfillPolicy | None,
        Resolver(
            resolve_backfill_policy,
            model_field_type=SingleRunBackfillPolicyModel | MultiRunBackfillPolicyModel,
            description=(
                "single_run: a range of partitions runs in one run; multi_run (default): one "
                "run per max_partitions_per_run (1)."
            ),
        ),
    ] = None


@dataclass
class Dataset(Resolvable):
    """One dataset in YAML: becomes one asset writing one PostgreSQL table. The fields are
    DatasetSpec's (see the README), under Dagster's names where it has them."""

    name: str
    table: str
    source: FetchSource | GeneratedSourceModel
    schema: str | None = None
    mode: DatasetMode = "replace-partition"
    key_columns: Sequence[str] = ()
    partitions_def: Annotated[
        ChunkPartitionsDef | TimePartitionsDef | None,
        Resolver.default(description="How the table is split: chunks of ids, or time windows."),
    ] = None
    op: DatasetOp | None = None
    cron_schedule: Annotated[
        str | None,
        Resolver.default(
            description=(
                "A schedule (stopped until turned on). For time partitions each tick loads "
                "the partition that just ended."
            )
        ),
    ] = None
    automation_condition: Annotated[
        AutomationCondition[Any] | None,
        Resolver.default(
            model_field_type=str | None,
            description="e.g. '{{ dg.AutomationCondition.eager() }}'",
        ),
    ] = None
    ddl: str | None = None
    create: bool = False
    native_partitions: bool = False
    chunk_size: int | None = None
    on_bad_rows: Literal["fail", "quarantine"] = "fail"
    rejects_table: str | None = None
    step_retries: int = 2
    step_retry_wait: float = 30.0
    checks: ChecksSpec | None = None
    description: str | None = None
    group_name: str | None = None
    deps: Sequence[str] = ()
    owners: Annotated[
        Sequence[str],
        Resolver.default(description="Emails or 'team:name' owning the asset."),
    ] = ()
    tags: Annotated[
        Mapping[str, str],
        Resolver(
            _resolve_tags,
            model_field_type=Mapping[str, str | int | float | bool],
            description="Asset tags, for filtering and organizing.",
        ),
    ] = field(default_factory=dict)
    kinds: Annotated[
        Sequence[str],
        Resolver.default(description="Kinds shown in the UI, beside postgres and pandas."),
    ] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    code_version: str | None = None


def _spec(dataset: Dataset, base: Path) -> DatasetSpec:
    """The DatasetSpec of a resolved YAML dataset; a relative ``location`` is read against
    ``base``, the folder of the defs.yaml."""
    source: FetchSource | GeneratedSource
    if isinstance(dataset.source, GeneratedSourceModel):
        source = GeneratedSource(function=import_function(dataset.source.function))
    else:
        source = _located(dataset.source, base)
    op = dataset.op or DatasetOp()
    policy = op.backfill_policy
    fields: dict[str, Any] = {
        "name": dataset.name,
        "table": dataset.table,
        "schema": dataset.schema,
        "source": source,
        "mode": dataset.mode,
        "key_columns": list(dataset.key_columns),
        "partitions": _partitions(dataset.partitions_def),
        "backfill": "single-run"
        if policy is not None and policy.max_partitions_per_run is None
        else "multi-run",
        "max_partitions_per_run": 1 if policy is None else policy.max_partitions_per_run or 1,
        "pool": op.pool,
        "op_tags": dict(op.tags or {}),
        "schedule": dataset.cron_schedule,
        "automation_condition": dataset.automation_condition,
        "ddl": dataset.ddl,
        "create": dataset.create,
        "native_partitions": dataset.native_partitions,
        "chunk_size": dataset.chunk_size,
        "on_bad_rows": dataset.on_bad_rows,
        "rejects_table": dataset.rejects_table,
        "step_retries": dataset.step_retries,
        "step_retry_wait": dataset.step_retry_wait,
        "checks": dataset.checks or ChecksSpec(),
        "description": dataset.description,
        "group": dataset.group_name or "datasets",
        "deps": list(dataset.deps),
        "owners": list(dataset.owners),
        "tags": dict(dataset.tags),
        "kinds": list(dataset.kinds),
        "metadata": dict(dataset.metadata),
        "code_version": dataset.code_version,
    }
    return DatasetSpec.model_validate(fields)


def _partitions(
    model: ChunkPartitionsDef | TimePartitionsDef | None,
) -> ChunkPartitions | TimePartitions | None:
    if model is None:
        return None
    if isinstance(model, ChunkPartitionsDef):
        return ChunkPartitions(
            column=model.column, size=model.size, count=model.count, start=model.start
        )
    return TimePartitions.model_validate(
        {
            "kind": model.type,
            "column": model.column,
            "start": model.start_date,
            "end": model.end_date,
            "timezone": model.timezone,
        }
    )


def _resolve_datasets(context: ResolutionContext, models: Sequence[Any]) -> list[DatasetSpec]:
    """Each YAML dataset resolved (templates, Dagster's own fields), then checked as a
    DatasetSpec; a mistake names the file and line of the dataset it is in."""
    # The folder of the YAML document being resolved; "." resolves against it.
    base = context.resolve_source_relative_path(".")
    specs = []
    for index, model in enumerate(models):
        at = context.at_path(index)
        dataset = Dataset.resolve_from_model(at, model)
        try:
            spec = _spec(dataset, base)
        except ValidationError as exc:
            raise DatasetSpecError(_where(at, f"dataset {dataset.name}: {_errors(exc)}")) from None
        except (ImportError, AttributeError, ValueError) as exc:
            raise DatasetSpecError(_where(at, f"dataset {dataset.name}: {exc}")) from None
        specs.append(spec)
    return specs


def _located(source: FetchSource, base: Path) -> FetchSource:
    if _URL.match(source.location) or Path(source.location).is_absolute():
        return source
    return source.model_copy(update={"location": str((base / source.location).resolve())})


def _where(context: ResolutionContext, message: str) -> str:
    tree = context.source_position_tree
    if tree is None:
        return message
    source = tree.source_error(
        yaml_path=context.path, inline_error_message=message, value_error=True
    )
    return f"{source.file_name}:{source.start_line_no}: {message}\n{source.snippet}"


def _errors(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in error['loc']) or '(dataset)'}: {error['msg']}"
        for error in exc.errors()
    )


with warnings.catch_warnings():
    # The YAML field `schema` names BaseModel's deprecated `schema()` method: harmless here.
    warnings.filterwarnings("ignore", message='Field name "schema"', category=UserWarning)
    _DATASET_MODEL = Dataset.model()


class _DatasetsComponentModel(Model):
    datasets: list[_DATASET_MODEL] = Field(  # type: ignore[valid-type]
        default_factory=list, description="The datasets: one asset each."
    )


@scaffold_with(DatasetScaffolder)
@dataclass
class DatasetsComponent(Component, Resolvable):
    """Datasets bulk-loaded into PostgreSQL: each becomes an asset (with its checks, run in the
    same step) and, with ``cron_schedule``, a schedule.

    The writer and the fetcher are the resources ``writer`` (:class:`PostgresBulkWriter`) and
    ``fetcher`` (:class:`Fetcher`), bound in Python (``defs/resources.py``) so that secrets stay
    out of YAML. ``dg scaffold defs bulk_assets.DatasetsComponent NAME`` writes a starter.

    Examples:
        .. code-block:: yaml

            # defs/orders/defs.yaml
            type: bulk_assets.DatasetsComponent
            attributes:
              datasets:
                - name: orders
                  table: orders
                  create: true
                  source: {location: orders.csv}   # relative to this file
                  checks: {unique: [order_id]}

        .. code-block:: python

            # defs/squares.py: a dataset declared in Python
            component = datasets_component(squares)
    """

    # DatasetSpec objects (Any here: Dagster would otherwise try to derive YAML from them).
    datasets: Annotated[
        Sequence[Any],
        Resolver(
            _resolve_datasets,
            model_field_type=list[_DATASET_MODEL],
            description="The datasets: one asset each.",
        ),
    ] = ()

    @classmethod
    def get_model_cls(cls) -> type[BaseModel]:
        # Dagster's derived model lets every field also be a template string; `datasets` is
        # always a list, so `dg check yaml` can point at the dataset and field in error
        # instead of at `datasets:` as a whole.
        return _DatasetsComponentModel

    def __post_init__(self) -> None:
        for spec in self.datasets:
            if not isinstance(spec, DatasetSpec):
                raise TypeError(f"expected DatasetSpec objects in datasets, got {spec!r}")

    def build_defs(self, context: ComponentLoadContext) -> Definitions:
        # A Python-declared dataset's relative location: against the file that declares it.
        base = context.path if context.path.is_dir() else context.path.parent
        assets, schedules = [], []
        for spec in self.datasets:
            if isinstance(spec.source, FetchSource):
                spec = spec.model_copy(update={"source": _located(spec.source, base)})
            asset_def = build_asset(spec)
            assets.append(asset_def)
            schedule = build_schedule(spec, asset_def)
            if schedule is not None:
                schedules.append(schedule)
        return Definitions(assets=assets, schedules=schedules)


def datasets_component(*specs: DatasetSpec) -> Callable[[ComponentLoadContext], DatasetsComponent]:
    """Python-declared datasets as a component of the defs folder they are in: assign the
    result at the top of the module.

    Examples:
        .. code-block:: python

            @dataset(table="squares", create=True)
            def squares() -> pd.DataFrame:
                return pd.DataFrame({"n": range(10)}).assign(sq=lambda d: d.n**2)

            component = datasets_component(squares)
    """

    @component_instance
    def load(context: ComponentLoadContext) -> DatasetsComponent:
        return DatasetsComponent(datasets=list(specs))

    return load
