"""Materializing a dataset: each partition's rows written by the resource, one transaction
per partition, plus what the table holds afterwards."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from resources import BulkWriteError, KeyRange, Log, PostgresBulkWriter, WriteResult, qualified
from resources._locks import CREATE
from resources._locks import key as lock_key

from .partitions import partition_for_key
from .specs import DatasetSpec

if TYPE_CHECKING:
    from .fetch import Fetcher

__all__ = ["PartitionLoad", "count_rows", "load_dataset", "slice_filter", "table_regclass"]


@dataclass(frozen=True, slots=True)
class PartitionLoad:
    key: str | None
    result: WriteResult


def load_dataset(
    spec: DatasetSpec,
    writer: PostgresBulkWriter,
    fetcher: Fetcher,
    *,
    partition_keys: Sequence[str | None],
    log: Log,
) -> list[PartitionLoad]:
    """Write each partition in turn, each one atomic: a failure in partition k leaves
    partitions before it committed and k itself untouched, so a re-run converges."""
    # Imported by the run that loads: the table contract and the sources need pandas and
    # pyarrow, which loading the definitions does not.
    from ._table_contract import check_table
    from .sources import rows_for

    if spec.ddl:
        run_ddl(writer, spec)
    # Before any fetch: a table that cannot take the declared columns fails in one query,
    # not after downloading the source.
    check_table(writer, spec)
    loads = []
    for key in partition_keys:
        partition = partition_for_key(spec, key)
        result = writer.write(
            spec.table,
            rows_for(spec, partition, fetcher),
            schema=spec.schema_name,
            chunk_size=spec.chunk_size,
            create=spec.create,
            on_bad_rows=spec.on_bad_rows,
            rejects_table=spec.rejects_table,
            **spec.dataset_mode.write_options(partition.range, spec.key_columns),
            native_partitions=spec.native_partitions,
        )
        loads.append(PartitionLoad(key, result))
        log.info(
            "%s%s: %s rows %s in %.2f s (%s rows/s)%s",
            result.table,
            "" if key is None else f" partition {key}",
            f"{result.rows:,}",
            "replaced" if spec.dataset_mode.replaces else f"written ({result.mode})",
            result.seconds,
            f"{result.rows_per_second:,.0f}",
            f", {result.rows_deleted:,} old rows removed" if result.rows_deleted else "",
        )
        if result.rows_rejected:
            log.warning(
                "%s%s: %s bad rows set aside in %s",
                result.table,
                "" if key is None else f" partition {key}",
                f"{result.rows_rejected:,}",
                result.rejects_table,
            )
    return loads


def run_ddl(writer: PostgresBulkWriter, spec: DatasetSpec) -> None:
    """Run the dataset's DDL. Concurrent partitions would race on CREATE TABLE IF NOT EXISTS
    (PostgreSQL can raise a unique violation on pg_type when two create one table at once),
    so the DDL runs under the advisory lock the writer takes to create a table: first loads
    and DDL of one table take turns."""
    assert spec.ddl is not None
    space, lock_id = CREATE, lock_key(spec.schema_name, spec.table)
    # Without bound arguments the string runs as one simple query, in one implicit
    # transaction: the advisory lock is held until the DDL commits.
    try:
        writer.execute(f"SELECT pg_advisory_xact_lock({space}, {lock_id});\n{spec.ddl}")
    except BulkWriteError as exc:
        exc.args = (f"dataset {spec.name}: the DDL for {spec.display} failed: {exc}",)
        raise


def table_regclass(spec: DatasetSpec) -> str:
    """The table as a quoted, optionally schema-qualified name, for ``to_regclass``."""
    return qualified(spec.schema_name, spec.table)


def slice_filter(key_range: KeyRange | None) -> str:
    """The rows of ``key_range`` (bounds in $1 and $2, see slice_args), or all rows."""
    return "TRUE" if key_range is None else key_range.where_sql()


def slice_args(key_range: KeyRange | None) -> tuple[Any, ...]:
    return () if key_range is None else (key_range.start, key_range.end)


def count_rows(writer: PostgresBulkWriter, regclass: str, key_range: KeyRange | None = None) -> int:
    """Rows in the table, or in one partition's slice of it."""
    sql = f"SELECT count(*) AS n FROM {regclass} WHERE {slice_filter(key_range)}"
    return int(writer.fetch(sql, *slice_args(key_range))[0]["n"])
