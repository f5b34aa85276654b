"""Asset checks that read the table itself: row counts per partition against what was
written, duplicate keys, NULLs in required columns."""

# No `from __future__ import annotations`: Dagster reads the context type from the function
# signature when the asset or check is defined.

from collections.abc import Callable, Mapping
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
    asset_check,
)

from resources import PostgresBulkWriter, quote_ident

from .loading import count_rows, table_regclass
from .metadata import ROWS_BY_PARTITION
from .partitions import partition_for_key
from .specs import DatasetSpec

__all__ = [
    "build_checks",
    "check_not_null",
    "check_row_counts",
    "check_unique",
    "rows_written_by_partition",
]

_SHOWN = 5  # offending partitions or keys named in a failed check's metadata
_PAGE = 1_000


def check_row_counts(
    spec: DatasetSpec, writer: PostgresBulkWriter, written: Mapping[str, int]
) -> AssetCheckResult:
    """Each partition's slice holds exactly the rows its last run wrote, and the table holds
    nothing outside the partitions written (a row there would be loaded twice one day)."""
    regclass = table_regclass(spec)
    if not written:
        return AssetCheckResult(
            passed=False,
            severity=AssetCheckSeverity.WARN,
            description="no materialization recorded yet: nothing to compare the table with",
        )
    mismatched: dict[str, dict[str, int]] = {}
    for key, expected in sorted(written.items()):
        key_range = partition_for_key(spec, key or None).range
        actual = count_rows(writer, regclass, key_range)
        if actual != expected:
            mismatched[key or "(table)"] = {"written": expected, "in_table": actual}
    total = count_rows(writer, regclass)
    expected_total = sum(written.values())
    passed = not mismatched and total == expected_total
    return AssetCheckResult(
        passed=passed,
        description=(
            None
            if passed
            else f"{len(mismatched)} partition(s) differ from what was written; table holds "
            f"{total:,} rows, {expected_total:,} were written"
        ),
        metadata={
            "rows_in_table": total,
            "rows_written": expected_total,
            "partitions_checked": len(written),
            "mismatched": dict(list(mismatched.items())[:_SHOWN]),
        },
    )


def check_unique(spec: DatasetSpec, writer: PostgresBulkWriter) -> AssetCheckResult:
    columns = ", ".join(quote_ident(c) for c in spec.unique_columns)
    duplicates = writer.fetch(
        f"SELECT {columns}, count(*) AS copies FROM {table_regclass(spec)} "
        f"GROUP BY {columns} HAVING count(*) > 1 ORDER BY {columns} LIMIT {_SHOWN}"
    )
    groups = _scalar(
        writer,
        f"SELECT count(*) FROM (SELECT 1 FROM {table_regclass(spec)} "
        f"GROUP BY {columns} HAVING count(*) > 1) d",
    )
    return AssetCheckResult(
        passed=groups == 0,
        description=None if groups == 0 else f"{groups:,} key(s) occur more than once",
        metadata={
            "columns": ", ".join(spec.unique_columns),
            "duplicated_keys": groups,
            "examples": [{k: str(v) for k, v in row.items()} for row in duplicates],
        },
    )


def check_not_null(spec: DatasetSpec, writer: PostgresBulkWriter) -> AssetCheckResult:
    counts = ", ".join(
        f"count(*) FILTER (WHERE {quote_ident(c)} IS NULL) AS {quote_ident(c)}"
        for c in spec.checks.not_null
    )
    nulls = writer.fetch(f"SELECT {counts} FROM {table_regclass(spec)}")[0]
    offending = {column: n for column, n in nulls.items() if n}
    return AssetCheckResult(
        passed=not offending,
        description=None if not offending else f"NULLs in {', '.join(offending)}",
        metadata={"null_counts": {column: int(n) for column, n in nulls.items()}},
    )


def rows_written_by_partition(instance: DagsterInstance, asset_key: AssetKey) -> dict[str, int]:
    """The rows each partition's latest materialization wrote ("" for an unpartitioned
    asset), from the event log."""
    written: dict[str, int] = {}
    cursor = None
    while True:
        page = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=asset_key), limit=_PAGE, cursor=cursor
        )
        for record in page.records:
            key = record.partition_key or ""
            materialization = record.asset_materialization
            if key in written or materialization is None:
                continue
            by_partition = materialization.metadata.get(ROWS_BY_PARTITION)
            value = getattr(by_partition, "value", None) or {}
            if key in value:
                written[key] = int(value[key])
        if not page.has_more:
            return written
        cursor = page.cursor


def build_checks(spec: DatasetSpec, asset_key: AssetKey) -> list[AssetChecksDefinition]:
    checks = []
    if spec.checks_row_count:
        checks.append(
            _check(
                spec,
                asset_key,
                "row_count",
                "Rows in each partition's slice of the table equal the rows its last run wrote.",
                lambda context, writer: check_row_counts(
                    spec, writer, rows_written_by_partition(context.instance, asset_key)
                ),
            )
        )
    if spec.unique_columns:
        checks.append(
            _check(
                spec,
                asset_key,
                "unique_keys",
                f"No two rows share ({', '.join(spec.unique_columns)}).",
                lambda context, writer: check_unique(spec, writer),
            )
        )
    if spec.checks.not_null:
        checks.append(
            _check(
                spec,
                asset_key,
                "not_null",
                f"No NULL in {', '.join(spec.checks.not_null)}.",
                lambda context, writer: check_not_null(spec, writer),
            )
        )
    return checks


def _check(
    spec: DatasetSpec,
    asset_key: AssetKey,
    name: str,
    description: str,
    run: Callable[[AssetCheckExecutionContext, PostgresBulkWriter], AssetCheckResult],
) -> AssetChecksDefinition:
    @asset_check(
        asset=asset_key,
        name=name,
        description=description,
        required_resource_keys={"writer"},
    )
    def _run(context: AssetCheckExecutionContext) -> AssetCheckResult:
        return run(context, context.resources.writer)

    return _run


def _scalar(writer: PostgresBulkWriter, sql: str, *args: Any) -> int:
    row = writer.fetch(sql, *args)[0]
    return int(next(iter(row.values())))
