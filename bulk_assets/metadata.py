"""Materialization metadata: what was written and how fast, and what the table holds now,
read back from the database rather than assumed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dagster import MetadataValue, TableColumn, TableColumnConstraints, TableSchema

from resources import PostgresBulkWriter, quote_ident

from .loading import PartitionLoad, count_rows, slice_args, slice_filter, table_regclass
from .partitions import partition_for_key

if TYPE_CHECKING:
    from .specs import DatasetSpec

__all__ = ["ROWS_BY_PARTITION", "dataset_metadata"]

# Rows written per partition key, as JSON: what the row-count check compares each slice to.
ROWS_BY_PARTITION = "rows_by_partition"
_PREVIEW_ROWS = 5
_PREVIEW_CELL = 40


def dataset_metadata(
    spec: DatasetSpec, loads: Sequence[PartitionLoad], writer: PostgresBulkWriter
) -> dict[str, Any]:
    """TableMetadataSet keys (dagster/partition_row_count, dagster/column_schema, and
    dagster/row_count where it is known without a scan) from the table itself, plus the write's
    own figures and a preview of the rows written.

    Nothing here reads more than the written slices: a whole table's count(*) is a full scan
    after every partition, so it is taken only with ``checks.count_table``. An unpartitioned
    replace knows it exactly: the table holds what was written."""
    rows = sum(load.result.rows for load in loads)
    seconds = sum(load.result.seconds for load in loads)
    regclass = table_regclass(spec)
    metadata: dict[str, Any] = {
        "dagster/column_schema": MetadataValue.table_schema(column_schema(writer, regclass)),
        "rows_written": MetadataValue.int(rows),
        "mode": MetadataValue.text(spec.mode),
        "chunks": MetadataValue.int(sum(load.result.chunks for load in loads)),
        "seconds": MetadataValue.float(round(seconds, 3)),
        "rows_per_second": MetadataValue.float(round(rows / seconds, 1) if seconds else 0.0),
        "rows_affected": MetadataValue.int(sum(load.result.rows_affected for load in loads)),
        "rows_removed": MetadataValue.int(sum(load.result.rows_deleted for load in loads)),
        "rows_rejected": MetadataValue.int(sum(load.result.rows_rejected for load in loads)),
        "duplicates_resolved": MetadataValue.int(
            sum(load.result.duplicates_resolved for load in loads)
        ),
        "attempts": MetadataValue.int(max((load.result.attempts for load in loads), default=1)),
        ROWS_BY_PARTITION: MetadataValue.json({load.key or "": load.result.rows for load in loads}),
    }
    rejects = {load.result.rejects_table for load in loads} - {None}
    if rejects:
        metadata["rejects_table"] = MetadataValue.text(", ".join(sorted(map(str, rejects))))
    if spec.checks.count_table:
        metadata["dagster/row_count"] = MetadataValue.int(count_rows(writer, regclass))
    elif spec.dataset_mode.replaces and not spec.partitions:
        metadata["dagster/row_count"] = MetadataValue.int(rows)
    keys = [load.key for load in loads if load.key is not None]
    if keys:
        ranges = [partition_for_key(spec, key).range for key in keys]
        metadata["dagster/partition_row_count"] = MetadataValue.int(
            sum(count_rows(writer, regclass, key_range) for key_range in ranges)
        )
        metadata["preview"] = MetadataValue.md(_preview(writer, regclass, ranges[0]))
    else:
        metadata["preview"] = MetadataValue.md(_preview(writer, regclass, None))
    return metadata


def column_schema(writer: PostgresBulkWriter, regclass: str) -> TableSchema:
    columns = writer.fetch(
        "SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, "
        "a.attnotnull AS not_null, "
        "EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = a.attrelid AND i.indisunique "
        "AND i.indnatts = 1 AND i.indkey[0] = a.attnum) AS is_unique, "
        "col_description(a.attrelid, a.attnum) AS description "
        "FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 "
        "AND NOT a.attisdropped ORDER BY a.attnum",
        regclass,
    )
    return TableSchema(
        columns=[
            TableColumn(
                name=c["name"],
                type=c["type"],
                description=c["description"],
                constraints=TableColumnConstraints(
                    nullable=not c["not_null"], unique=bool(c["is_unique"])
                ),
            )
            for c in columns
        ]
    )


def _preview(writer: PostgresBulkWriter, regclass: str, key_range: Any) -> str:
    order = "1" if key_range is None else f"{quote_ident(key_range.column)}, 1"
    rows = writer.fetch(
        f"SELECT * FROM {regclass} WHERE {slice_filter(key_range)} ORDER BY {order} "
        f"LIMIT {_PREVIEW_ROWS}",
        *slice_args(key_range),
    )
    if not rows:
        return "_no rows_"
    header = list(rows[0])
    lines = [
        "| " + " | ".join(_cell(h) for h in header) + " |",
        "|" + "---|" * len(header),
    ]
    lines += ["| " + " | ".join(_cell(row[h]) for h in header) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    text = "NULL" if value is None else str(value)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= _PREVIEW_CELL else text[: _PREVIEW_CELL - 1] + "…"
