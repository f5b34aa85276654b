"""Creating a partitioned table also indexes its partition column (each replace DELETEs by
it), and a table that cannot take what the dataset declares fails before anything is
fetched or written, naming table, column, both types and the statement to run."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from dagster import DagsterInstance, ExecuteInProcessResult, materialize

from bulk_assets import DatasetSpec, Fetcher, FetchSource, TimePartitions, build_asset
from bulk_assets._table_contract import DTYPE_FAMILIES, family_of
from resources import KeyRange, PostgresBulkWriter

DTYPES = {"id": "int64", "at": "datetime64[us, UTC]", "amount": "float64"}


@pytest.fixture
def resources(search_path_dsn: str) -> dict[str, Any]:
    return {"writer": PostgresBulkWriter(dsn=search_path_dsn), "fetcher": Fetcher()}


@pytest.fixture
def source(tmp_path: Path) -> Path:
    days = pd.date_range("2026-01-01", periods=60, freq="D", tz="UTC")
    frame = pd.DataFrame({"id": range(1, 61), "at": days, "amount": [1.5] * 60})
    path = tmp_path / "sales.csv"
    path.write_text(frame.to_csv(index=False))
    return path


def spec_for(path: Path, **source: Any) -> DatasetSpec:
    return DatasetSpec(
        name="sales",
        table="sales",
        create=True,
        source=FetchSource(location=str(path), dtypes=source.pop("dtypes", DTYPES), **source),
        partitions=TimePartitions(kind="monthly", column="at", start=dt.date(2026, 1, 1)),
    )


def run(spec: DatasetSpec, resources: dict[str, Any], key: str) -> ExecuteInProcessResult:
    return materialize(
        [build_asset(spec)],
        resources=resources,
        instance=DagsterInstance.ephemeral(),
        partition_key=key,
        raise_on_error=False,
    )


def indexed_columns(db: Any, schema: str, table: str) -> list[list[str]]:
    rows = db.fetch(
        "SELECT array_agg(a.attname ORDER BY k.n) AS cols FROM pg_index i "
        "CROSS JOIN unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) "
        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
        "WHERE i.indrelid = to_regclass($1) GROUP BY i.indexrelid ORDER BY 1",
        f'"{schema}"."{table}"',
    )
    return [list(r["cols"]) for r in rows]


def failure_text(result: ExecuteInProcessResult) -> str:
    error = result.get_step_failure_events()[0].step_failure_data.error
    assert error is not None
    return error.to_string()


def test_creating_a_partitioned_table_indexes_its_partition_column(
    source: Path, resources: dict[str, Any], db: Any, schema: str
) -> None:
    assert run(spec_for(source), resources, "2026-02-01").success
    assert indexed_columns(db, schema, "sales") == [["at"]]


def test_a_chunk_partitioned_table_keyed_on_its_column_needs_no_second_index(
    writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    frame = pd.DataFrame({"id": range(1, 11), "v": range(10)})
    writer.write(
        "keyed",
        frame,
        schema=schema,
        mode="upsert",
        key_columns=["id"],
        create=True,
    )
    writer.write("sliced", frame, schema=schema, create=True, replace=KeyRange("id", 1, 11))
    assert indexed_columns(db, schema, "keyed") == [["id"]]
    assert indexed_columns(db, schema, "sliced") == [["id"]]


def test_a_dtype_the_existing_column_cannot_take_fails_before_writing(
    source: Path, resources: dict[str, Any], db: Any, schema: str
) -> None:
    db.execute(f'CREATE TABLE "{schema}".sales (id text, at timestamptz, amount float8)')
    db.execute(f"INSERT INTO \"{schema}\".sales VALUES ('keep', '2026-02-02', 1)")
    result = run(spec_for(source), resources, "2026-02-01")
    assert not result.success
    text = failure_text(result)
    assert f"table {schema}.sales, column 'id'" in text
    assert "int64" in text and "the table's column is text" in text
    assert f'ALTER TABLE "{schema}"."sales" ALTER COLUMN "id" TYPE bigint' in text
    assert db.fetchval(f'SELECT id FROM "{schema}".sales') == "keep"


def test_a_declared_column_the_table_lacks_fails_before_writing(
    source: Path, resources: dict[str, Any], db: Any, schema: str
) -> None:
    db.execute(f'CREATE TABLE "{schema}".sales (id bigint, at timestamptz)')
    result = run(spec_for(source), resources, "2026-02-01")
    assert not result.success
    text = failure_text(result)
    assert "column 'amount'" in text and "no such column" in text
    assert f'ALTER TABLE "{schema}"."sales" ADD COLUMN "amount" double precision' in text


def test_compatible_types_pass(
    source: Path, resources: dict[str, Any], db: Any, schema: str
) -> None:
    db.execute(f'CREATE TABLE "{schema}".sales (id integer, at timestamptz, amount numeric(12, 2))')
    assert run(spec_for(source), resources, "2026-02-01").success
    assert db.fetchval(f'SELECT count(*) FROM "{schema}".sales') == 28


@pytest.mark.parametrize(
    ("dtype", "family"),
    [
        ("int64", "integer"),
        ("Int32", "integer"),
        ("float64", "float"),
        ("bool", "boolean"),
        ("boolean", "boolean"),
        ("datetime64[us, UTC]", "aware timestamp"),
        ("datetime64[ns]", "naive timestamp"),
        ("date", "date"),
        ("string", None),
    ],
)
def test_each_dtype_has_one_family(dtype: str, family: str | None) -> None:
    found = family_of(dtype)
    assert (found.name if found else None) == family
    assert sum(f.matches(dtype) for f in DTYPE_FAMILIES) == (family is not None)
