"""One source, many partitions; many files, one dataset. A partitioned dataset whose location
names one file loads each partition's rows of it and skips (and counts) the rest; Parquet
leaves row groups outside the partition unread; globs, directories and hive trees read as one
dataset, in sorted order, with errors naming the file. End to end against a real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from _year import MARCH, corrupt_row_group, march_ids, year_frame
from dagster import DagsterInstance, ExecuteInProcessResult, materialize

from bulk_assets import DatasetSpec, Fetcher, FetchError, FetchSource, TimePartitions, build_asset
from bulk_assets._fetch_errors import Where
from bulk_assets._fetch_files import FileSet
from bulk_assets._fetch_parquet import parquet_chunks
from bulk_assets._fetch_read import ReadRequest
from bulk_assets.fetch import RowSlice
from resources import KeyRange, PostgresBulkWriter

DTYPES = {"id": "int64", "at": "datetime64[us, UTC]", "amount": "float64"}


def monthly(location: Path | str, **source: Any) -> DatasetSpec:
    return DatasetSpec(
        name="sales",
        table="sales",
        create=True,
        source=FetchSource(location=str(location), dtypes=DTYPES, **source),
        partitions=TimePartitions(
            kind="monthly", column="at", start=dt.date(2026, 1, 1), end=dt.date(2027, 1, 1)
        ),
    )


@pytest.fixture
def resources(search_path_dsn: str) -> dict[str, Any]:
    return {"writer": PostgresBulkWriter(dsn=search_path_dsn), "fetcher": Fetcher()}


def run(
    spec: DatasetSpec,
    resources: dict[str, Any],
    key: str,
    instance: DagsterInstance | None = None,
) -> ExecuteInProcessResult:
    return materialize(
        [build_asset(spec)],
        resources=resources,
        instance=instance or DagsterInstance.ephemeral(),
        partition_key=key,
        raise_on_error=False,
    )


def log_messages(instance: DagsterInstance, result: ExecuteInProcessResult) -> list[str]:
    return [entry.user_message for entry in instance.all_logs(result.run_id)]


@pytest.mark.parametrize("name", ["year.csv", "year.csv.gz", "year.parquet", "year.jsonl"])
def test_each_month_of_one_file_loads_its_own_rows(
    name: str, tmp_path: Path, resources: dict[str, Any], db: Any, schema: str
) -> None:
    frame = year_frame()
    path = tmp_path / name
    if name.endswith(".parquet"):
        pq.write_table(pa.Table.from_pandas(frame), path, row_group_size=31)
    elif name.endswith(".jsonl"):
        frame.assign(at=frame["at"].map(lambda t: t.isoformat())).to_json(
            path, orient="records", lines=True
        )
    else:
        text = frame.to_csv(index=False).encode()
        path.write_bytes(gzip.compress(text) if name.endswith(".gz") else text)
    spec = monthly(path)
    instance = DagsterInstance.ephemeral()
    for key in ("2026-03-01", "2026-02-01", "2026-03-01"):
        result = run(spec, resources, key, instance)
        assert result.success, result.get_step_failure_events()
    ids = [r["id"] for r in db.fetch(f'SELECT id FROM "{schema}".sales ORDER BY id')]
    assert ids == list(range(32, 60)) + march_ids()  # February, then March once
    messages = log_messages(instance, result)
    assert any(f"skipped {365 - 31:,} rows outside 2026-03-01" in m for m in messages), messages


def test_an_explicit_refuse_keeps_one_file_strict(
    tmp_path: Path, resources: dict[str, Any]
) -> None:
    path = tmp_path / "year.csv"
    path.write_text(year_frame().to_csv(index=False))
    result = run(monthly(path, slice="refuse"), resources, "2026-03-01")
    assert not result.success
    error = result.get_step_failure_events()[0].step_failure_data.error
    assert error is not None and "outside the range being replaced" in error.to_string()


def test_a_templated_location_refuses_by_default_and_filters_when_asked(
    tmp_path: Path, resources: dict[str, Any], db: Any, schema: str
) -> None:
    (tmp_path / "2026-03-01.csv").write_text(year_frame().to_csv(index=False))
    template = str(tmp_path / "{partition_key}.csv")
    assert not FetchSource(location=template).filters_slice
    assert FetchSource(location=template, slice="filter").filters_slice
    assert FetchSource(location=str(tmp_path / "all.csv")).filters_slice
    assert not run(monthly(template), resources, "2026-03-01").success
    assert run(monthly(template, slice="filter"), resources, "2026-03-01").success
    assert db.fetchval(f'SELECT count(*) FROM "{schema}".sales') == 31


def test_slice_needs_partitions() -> None:
    with pytest.raises(ValueError, match="applies to partitioned datasets only"):
        DatasetSpec(name="x", table="x", source=FetchSource(location="/data/x.csv", slice="filter"))


def test_chunk_partitions_filter_by_key_range(tmp_path: Path) -> None:
    path = tmp_path / "ids.csv"
    path.write_text("id,v\n" + "".join(f"{i},{i * 2}\n" for i in range(1, 101)))
    within = RowSlice(KeyRange("id", 11, 21), name="0000011-0000020")
    frames = list(Fetcher().frames(str(path), within=within, chunk_rows=7))
    # Without a dtype the column is text: it is compared as a number ("100" < "21" as text).
    assert pd.concat(frames)["id"].astype(int).tolist() == list(range(11, 21))


def test_a_month_without_rows_still_gives_one_empty_frame(tmp_path: Path) -> None:
    path = tmp_path / "year.csv"
    path.write_text(year_frame().head(10).to_csv(index=False))
    frames = list(Fetcher().frames(str(path), dtypes=DTYPES, within=MARCH))
    assert [len(f) for f in frames] == [0] and list(frames[0].columns) == list(DTYPES)


def test_parquet_row_groups_outside_the_slice_are_never_read(tmp_path: Path) -> None:
    path = tmp_path / "year.parquet"
    pq.write_table(pa.Table.from_pandas(year_frame()), path, row_group_size=31)
    corrupt_row_group(path, 0, "amount")  # January's amounts
    frames = list(Fetcher().frames(str(path), dtypes=DTYPES, within=MARCH))
    assert pd.concat(frames)["id"].tolist() == march_ids()
    with pytest.raises(FetchError) as info:
        list(Fetcher().frames(str(path), dtypes=DTYPES))
    error = info.value
    assert "row group 0 (from row 0)" in str(error) and "column 'amount'" in str(error)
    assert (error.row, error.column, error.location) == (0, "amount", str(path))


def test_the_parquet_filter_counts_what_it_skipped(tmp_path: Path) -> None:
    path = tmp_path / "year.parquet"
    pq.write_table(pa.Table.from_pandas(year_frame()), path, row_group_size=10)
    counted: list[int] = []
    where = Where(str(path), "parquet")
    files = FileSet(pafs.LocalFileSystem(), (str(path),), str(tmp_path), lambda p: p)
    read = ReadRequest(
        where, 1000, 1 << 20, 1 << 20, {}, [], None, RowSlice(MARCH), "at", counted.append
    )
    rows = sum(len(f) for f in parquet_chunks(files, read))
    assert rows == 31 and counted == [365 - 31]


def write_parts(tmp_path: Path) -> pd.DataFrame:
    frame = year_frame().head(30)
    for i, part in enumerate([frame[20:], frame[:10], frame[10:20]]):
        (tmp_path / "in").mkdir(exist_ok=True)
        # Written out of order: the reading order is the sorted names', not the disk's.
        (tmp_path / "in" / f"part-{[2, 0, 1][i]}.csv").write_text(part.to_csv(index=False))
    (tmp_path / "in" / "_SUCCESS").write_text("")
    return frame


def test_a_glob_and_a_directory_read_every_file_in_sorted_order(tmp_path: Path) -> None:
    frame = write_parts(tmp_path)
    for location in [str(tmp_path / "in" / "part-*.csv"), str(tmp_path / "in")]:
        got = pd.concat(
            Fetcher().frames(location, format="csv", dtypes=DTYPES, chunk_rows=4)
        ).reset_index(drop=True)
        pd.testing.assert_frame_equal(got, frame.astype({"at": "datetime64[us, UTC]"}))


def test_an_error_names_the_file_of_many_and_its_line(tmp_path: Path) -> None:
    write_parts(tmp_path)
    (tmp_path / "in" / "part-1.csv").write_text("id,at,amount\n11,2026-01-11,x\n")
    with pytest.raises(FetchError, match=r"part-1\.csv.*column 'amount'") as info:
        list(Fetcher().frames(str(tmp_path / "in" / "*.csv"), dtypes=DTYPES))
    assert info.value.row == 10  # the first row of the second file, in the whole dataset


def test_jsonl_files_of_a_glob_and_nothing_matching(tmp_path: Path) -> None:
    for n in range(3):
        lines = [json.dumps({"id": n * 10 + i}) for i in range(10)]
        (tmp_path / f"d{n}.jsonl").write_text("\n".join(lines))
    frames = Fetcher().frames(str(tmp_path / "d?.jsonl"), dtypes={"id": "int64"})
    assert pd.concat(frames)["id"].tolist() == list(range(30))
    with pytest.raises(FetchError, match="no file matches the pattern"):
        list(Fetcher().frames(str(tmp_path / "nothing-*.jsonl")))
    with pytest.raises(FetchError, match=r"holds no \.csv file"):
        list(Fetcher().frames(str(tmp_path), format="csv"))


def test_a_hive_tree_of_parquet_reads_its_keys_as_columns(tmp_path: Path) -> None:
    frame = year_frame()
    for month in (1, 2, 3):
        part = frame[frame["at"].dt.month == month]
        folder = tmp_path / "tree" / "year=2026" / f"month={month:02d}"
        folder.mkdir(parents=True)
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False), folder / "data.parquet")
    got = pd.concat(Fetcher().frames(str(tmp_path / "tree"), format="parquet", chunk_rows=25))
    assert got["id"].tolist() == list(range(1, 91))
    assert got["year"].unique().tolist() == [2026]
    assert got.groupby("month")["id"].count().to_dict() == {1: 31, 2: 28, 3: 31}
    march = pd.concat(
        Fetcher().frames(str(tmp_path / "tree/**/*.parquet"), dtypes=DTYPES, within=MARCH)
    )
    assert march["id"].tolist() == march_ids()


def test_a_bad_parquet_value_is_named_by_its_row_in_the_file_and_its_row_group(
    tmp_path: Path,
) -> None:
    frame = year_frame().assign(amount=lambda f: f["amount"].astype(str))
    frame.loc[70, "amount"] = "x"  # 2026-03-12: the 12th row the March filter keeps
    path = tmp_path / "year.parquet"
    pq.write_table(pa.Table.from_pandas(frame), path, row_group_size=31)
    for within in (MARCH, None):
        with pytest.raises(FetchError) as info:
            list(Fetcher().frames(str(path), dtypes=DTYPES, within=within, chunk_rows=8))
        error = info.value
        assert "column 'amount', row 70 (row group 2)" in str(error)
        assert (error.row, error.column) == (70, "amount")


def test_a_bad_value_in_a_hive_tree_names_its_file(tmp_path: Path) -> None:
    frame = year_frame().assign(amount=lambda f: f["amount"].astype(str))
    frame.loc[40, "amount"] = "x"
    for month in (1, 2):
        folder = tmp_path / f"month={month}"
        folder.mkdir()
        part = frame[frame["at"].dt.month == month]
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False), folder / "p.parquet")
    with pytest.raises(FetchError) as info:
        list(Fetcher().frames(str(tmp_path), format="parquet", dtypes=DTYPES))
    error = info.value
    assert f"file {tmp_path}/month=2/p.parquet" in str(error)
    assert "row 40 (row group 0)" in str(error) and error.location.endswith("month=2/p.parquet")
