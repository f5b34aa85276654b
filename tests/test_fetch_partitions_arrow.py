"""One shared file, many partitions, through the Arrow path: a partitioned dataset without
dtypes reads CSV and Parquet as record batches parsed by the table's column types
(``Fetcher.batches``), and each run still loads only its partition's rows, skipping and
counting the rest; Parquet row groups outside the slice stay unread. Against a real
PostgreSQL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _year import MARCH, corrupt_row_group, march_ids, year_frame
from dagster import DagsterInstance, materialize

from bulk_assets import DatasetSpec, Fetcher, FetchError, build_asset
from bulk_assets.fetch import ArrowRead
from bulk_assets.partitions import Partition
from bulk_assets.sources import rows_for
from resources import KeyRange, PostgresBulkWriter


def write_year(path: Path) -> None:
    frame = year_frame()
    if path.suffix == ".parquet":
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=31)
    else:
        path.write_text(frame.to_csv(index=False))


def monthly(location: Path) -> DatasetSpec:
    # As a defs.yaml entry reads: no dtypes, so the table's types parse the file.
    return DatasetSpec.model_validate(
        {
            "name": "sales",
            "table": "sales",
            "create": True,
            "source": {"kind": "fetch", "location": str(location)},
            "partitions": {"kind": "monthly", "column": "at", "start": "2026-01-01"},
        }
    )


@pytest.mark.parametrize("name", ["year.csv", "year.parquet"])
def test_each_month_of_one_file_loads_through_the_arrow_path(
    name: str, tmp_path: Path, search_path_dsn: str, db: Any, schema: str
) -> None:
    path = tmp_path / name
    write_year(path)
    spec = monthly(path)
    march = Partition(key="2026-03-01", range=MARCH)
    assert isinstance(rows_for(spec, march, Fetcher()), ArrowRead)
    instance = DagsterInstance.ephemeral()
    resources = {"writer": PostgresBulkWriter(dsn=search_path_dsn), "fetcher": Fetcher()}
    for key in ("2026-03-01", "2026-02-01", "2026-03-01"):
        result = materialize(
            [build_asset(spec)],
            resources=resources,
            instance=instance,
            partition_key=key,
            raise_on_error=False,
        )
        assert result.success, result.get_step_failure_events()
    ids = [r["id"] for r in db.fetch(f'SELECT id FROM "{schema}".sales ORDER BY id')]
    assert ids == list(range(32, 60)) + march_ids()  # February, then March once
    messages = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert any(f"skipped {365 - 31:,} rows outside 2026-03-01" in m for m in messages), messages
    kind = db.fetchval(
        "SELECT data_type FROM information_schema.columns "
        "WHERE table_schema = $1 AND table_name = 'sales' AND column_name = 'at'",
        schema,
    )
    assert kind == "timestamp with time zone"


def test_parquet_row_groups_outside_the_slice_are_never_read_by_batches(tmp_path: Path) -> None:
    path = tmp_path / "year.parquet"
    write_year(path)
    corrupt_row_group(path, 0, "amount")  # January's amounts
    read = Fetcher().batches(str(path), within=MARCH)
    ids = [i for batch in read() for i in batch.column("id").to_pylist()]
    assert ids == march_ids()


def test_a_text_key_is_compared_as_a_number_and_a_glob_reads_every_file(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    for part in range(3):
        rows = "".join(f"{i},x{i}\n" for i in range(part * 40 + 1, part * 40 + 41))
        (tmp_path / "in" / f"part-{part}.csv").write_text("id,v\n" + rows)
    within = KeyRange("id", 35, 85)
    read = Fetcher().batches(str(tmp_path / "in" / "*.csv"), chunk_rows=7, within=within)
    # The table says text: "100" < "35" as text, so the slice compares numbers.
    batches = list(read.with_table_types({"id": "text", "v": "text"})())
    assert [int(i) for b in batches for i in b.column("id").to_pylist()] == list(range(35, 85))


def test_a_slice_without_rows_gives_one_empty_batch_with_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "year.csv"
    path.write_text(year_frame().head(10).to_csv(index=False))
    batches = list(Fetcher().batches(str(path), within=MARCH)())
    assert [b.num_rows for b in batches] == [0]
    assert batches[0].schema.names == ["id", "at", "amount"]


def test_dates_of_a_time_window(tmp_path: Path) -> None:
    path = tmp_path / "days.csv"
    path.write_text("day,n\n2026-02-28,1\n2026-03-01,2\n2026-03-31,3\n2026-04-01,4\n")
    within = KeyRange("day", dt.date(2026, 3, 1), dt.date(2026, 4, 1))
    batches = list(Fetcher().batches(str(path), within=within).with_table_types({"day": "date"})())
    assert [n for b in batches for n in b.column("n").to_pylist()] == [2, 3]


def test_files_with_their_columns_in_another_order_read_in_the_first_files(
    tmp_path: Path,
) -> None:
    (tmp_path / "a.csv").write_text("id,v\n1,x\n")
    (tmp_path / "b.csv").write_text("v,id\ny,2\n")
    batches = list(Fetcher().batches(str(tmp_path / "*.csv"))())
    assert [b.schema.names for b in batches] == [["id", "v"], ["id", "v"]]
    (tmp_path / "c.csv").write_text("id,w\n3,z\n")
    with pytest.raises(FetchError, match="differ from the first's"):
        list(Fetcher().batches(str(tmp_path / "*.csv"))())
