"""Asset checks that read the table itself, run inline with the materialization (one step)
on the partitions it wrote: each partition's row count against what the run wrote, no
duplicate keys, no NULLs in required columns.

A check reads only the written slices, through the partition column's predicate, so its
cost follows the size of the partition, not of the table or of its history."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from dagster import AssetCheckResult, AssetCheckSpec, AssetKey

from resources import KeyRange, PostgresBulkWriter, quote_ident

from .loading import count_rows, slice_args, slice_filter, table_regclass
from .partitions import partition_for_key

if TYPE_CHECKING:
    from .loading import PartitionLoad
    from .specs import DatasetSpec

__all__ = ["check_not_null", "check_row_counts", "check_specs", "check_unique", "run_checks"]

_SHOWN = 5  # offending partitions or keys named in a failed check's metadata


def check_specs(spec: DatasetSpec, asset_key: AssetKey) -> list[AssetCheckSpec]:
    """The checks the asset declares; blocking, so a failure stops downstream assets."""
    specs = []
    if spec.checks_row_count:
        specs.append(
            AssetCheckSpec(
                "row_count",
                asset=asset_key,
                blocking=True,
                description="Rows in each written partition's slice equal the rows written.",
            )
        )
    if spec.unique_columns:
        # Within each written slice: a key repeated in another partition would need a scan of
        # the whole table after every partition. A unique index catches those for good.
        scope = "" if spec.partitions is None else " within each partition written"
        specs.append(
            AssetCheckSpec(
                "unique_keys",
                asset=asset_key,
                blocking=True,
                description=f"No two rows share ({', '.join(spec.unique_columns)}){scope}.",
            )
        )
    if spec.checks.not_null:
        specs.append(
            AssetCheckSpec(
                "not_null",
                asset=asset_key,
                blocking=True,
                description=f"No NULL in {', '.join(spec.checks.not_null)}.",
            )
        )
    return specs


def run_checks(
    spec: DatasetSpec, writer: PostgresBulkWriter, loads: Sequence[PartitionLoad]
) -> list[AssetCheckResult]:
    """Every declared check, on the partitions ``loads`` wrote."""
    ranges = _ranges(spec, [load.key for load in loads])
    results = []
    if spec.checks_row_count:
        written = {load.key or "": load.result.rows for load in loads}
        results.append(check_row_counts(spec, writer, written))
    if spec.unique_columns:
        results.append(check_unique(spec, writer, ranges))
    if spec.checks.not_null:
        results.append(check_not_null(spec, writer, ranges))
    return results


def check_row_counts(
    spec: DatasetSpec, writer: PostgresBulkWriter, written: Mapping[str, int]
) -> AssetCheckResult:
    """Each slice (``""``: the whole table) holds exactly the rows written to it."""
    regclass = table_regclass(spec)
    mismatched: dict[str, dict[str, int]] = {}
    for key, expected in sorted(written.items()):
        key_range = partition_for_key(spec, key or None).range
        actual = count_rows(writer, regclass, key_range)
        if actual != expected:
            mismatched[key or "(table)"] = {"written": expected, "in_table": actual}
    return AssetCheckResult(
        check_name="row_count",
        passed=not mismatched,
        description=None
        if not mismatched
        else f"{len(mismatched)} partition(s) differ from what was written",
        metadata={
            "rows_written": sum(written.values()),
            "partitions_checked": len(written),
            "mismatched": dict(list(mismatched.items())[:_SHOWN]),
        },
    )


def check_unique(
    spec: DatasetSpec, writer: PostgresBulkWriter, ranges: Sequence[KeyRange | None] = (None,)
) -> AssetCheckResult:
    """No key occurs twice within the given slices (``None``: the whole table)."""
    columns = ", ".join(quote_ident(c) for c in spec.unique_columns)
    groups, examples = 0, []
    for key_range in ranges:
        # One statement per slice: the number of duplicated keys and the first few of them.
        rows = writer.fetch(
            f"SELECT count(*) OVER () AS bulk_duplicated, * FROM ("
            f"SELECT {columns}, count(*) AS copies FROM {table_regclass(spec)} "
            f"WHERE {slice_filter(key_range)} GROUP BY {columns} HAVING count(*) > 1"
            f") d ORDER BY {columns} LIMIT {_SHOWN}",
            *slice_args(key_range),
        )
        if rows:
            groups += int(rows[0].pop("bulk_duplicated"))
            for row in rows[1:]:
                row.pop("bulk_duplicated")
            examples += [{k: str(v) for k, v in row.items()} for row in rows]
    return AssetCheckResult(
        check_name="unique_keys",
        passed=groups == 0,
        description=None if groups == 0 else f"{groups:,} key(s) occur more than once",
        metadata={
            "columns": ", ".join(spec.unique_columns),
            "duplicated_keys": groups,
            "examples": examples[:_SHOWN],
        },
    )


def check_not_null(
    spec: DatasetSpec, writer: PostgresBulkWriter, ranges: Sequence[KeyRange | None] = (None,)
) -> AssetCheckResult:
    """No NULL in the required columns within the given slices (``None``: the table)."""
    counts = ", ".join(
        f"count(*) FILTER (WHERE {quote_ident(c)} IS NULL) AS {quote_ident(c)}"
        for c in spec.checks.not_null
    )
    nulls = dict.fromkeys(spec.checks.not_null, 0)
    for key_range in ranges:
        row = writer.fetch(
            f"SELECT {counts} FROM {table_regclass(spec)} WHERE {slice_filter(key_range)}",
            *slice_args(key_range),
        )[0]
        for column, n in row.items():
            nulls[column] += int(n)
    offending = {column: n for column, n in nulls.items() if n}
    return AssetCheckResult(
        check_name="not_null",
        passed=not offending,
        description=None if not offending else f"NULLs in {', '.join(offending)}",
        metadata={"null_counts": nulls},
    )


def _ranges(spec: DatasetSpec, keys: Sequence[str | None]) -> list[KeyRange | None]:
    return [partition_for_key(spec, key).range for key in keys] or [None]
