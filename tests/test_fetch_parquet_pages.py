"""Parquet through ``Fetcher.batches``: a plain file is decoded page by page, its first rows
in a small batch; files that need pyarrow's scanner (hive keys, another file's types) give
the same rows as ``pyarrow.dataset`` reads them."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from _support import q
from conftest import Db

from bulk_assets.fetch import Fetcher
from resources import BadValueError, PostgresBulkWriter


def _table(first: int, n: int) -> pa.Table:
    ids = list(range(first, first + n))
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "name": pa.array([f"n{i}" if i % 7 else None for i in ids], pa.string()),
            "x": pa.array([i / 4 for i in ids], pa.float64()),
        }
    )


def test_a_plain_file_starts_with_a_small_batch_and_keeps_every_row(tmp_path: Path) -> None:
    path = tmp_path / "plain.parquet"
    expected = _table(0, 100_000)
    pq.write_table(expected, path, row_group_size=40_000)
    batches = list(Fetcher(chunk_rows=50_000).batches(str(path))())
    # The first row group: 8,192 rows, then twice as many, then its rest; the others whole.
    assert [b.num_rows for b in batches] == [8_192, 16_384, 15_424, 40_000, 20_000]
    assert pa.Table.from_batches(batches).equals(expected)


def test_the_ramp_ends_at_chunk_rows_exactly(tmp_path: Path) -> None:
    """Within a long first row group, batches are never longer than chunk_rows, and none is
    a short leftover until the row group ends."""
    path = tmp_path / "long.parquet"
    expected = _table(0, 200_000)
    pq.write_table(expected, path, row_group_size=200_000)
    batches = list(Fetcher(chunk_rows=30_000).batches(str(path))())
    assert [b.num_rows for b in batches] == [
        8_192,
        16_384,
        *[30_000] * 5,
        25_424,
    ]
    assert pa.Table.from_batches(batches).equals(expected)


def test_the_ramps_slices_load_every_row_once(
    tmp_path: Path, db: Db, schema: str, writer: PostgresBulkWriter
) -> None:
    """The first row group's batches are slices of joined pages, at offsets into shared
    buffers: the table gets each row as the file holds it."""
    path = tmp_path / "long.parquet"
    expected = _table(0, 60_000)
    pq.write_table(expected, path, row_group_size=60_000)
    db.execute(f"CREATE TABLE {q(schema)}.t (id bigint, name text, x double precision)")
    result = writer.write("t", Fetcher(chunk_rows=10_000).batches(str(path)), schema=schema)
    assert result.rows == 60_000
    rows = db.fetch(f"SELECT id, name, x FROM {q(schema)}.t ORDER BY id")
    assert [tuple(r) for r in rows] == [tuple(r.values()) for r in expected.to_pylist()]


def test_a_bad_value_in_a_slice_names_its_row_group_and_row(
    tmp_path: Path, db: Db, schema: str, writer: PostgresBulkWriter
) -> None:
    path = tmp_path / "bad.parquet"
    amounts = [f"{i}.5" for i in range(30_000)]
    amounts[20_000] = "2.x"  # rows 18,192 to 28,191 make the third batch: a slice
    pq.write_table(pa.table({"id": pa.array(range(30_000), pa.int64()), "amount": amounts}), path)
    db.execute(f"CREATE TABLE {q(schema)}.t (id bigint, amount numeric(10, 2))")
    with pytest.raises(BadValueError) as info:
        writer.write("t", Fetcher(chunk_rows=10_000).batches(str(path)), schema=schema)
    assert (info.value.row, info.value.column) == (20_000, "amount")
    assert f"({path}, row group 0, row 20000)" in str(info.value)
    assert db.fetchval(f"SELECT count(*) FROM {q(schema)}.t") == 0


def test_chosen_columns_come_in_the_order_asked_for(tmp_path: Path) -> None:
    path = tmp_path / "plain.parquet"
    pq.write_table(_table(0, 10), path)
    batches = list(Fetcher().batches(str(path), columns=["x", "id"])())
    assert [b.schema.names for b in batches] == [["x", "id"]]
    assert batches[0].column("id").to_pylist() == list(range(10))


def test_a_file_with_other_types_reads_as_the_dataset_reads_it(tmp_path: Path) -> None:
    """The second file's ids are int32: pyarrow's scanner casts them to the first file's
    int64, as it does for a whole dataset."""
    pq.write_table(_table(0, 5), tmp_path / "a.parquet")
    second = _table(5, 5)
    second = second.set_column(0, "id", second.column("id").cast(pa.int32()))
    pq.write_table(second, tmp_path / "b.parquet")
    batches = list(Fetcher().batches(str(tmp_path / "*.parquet"))())
    table = pa.Table.from_batches(batches)
    assert table.schema.field("id").type == pa.int64()
    assert table.column("id").to_pylist() == list(range(10))
    assert table.column("name").to_pylist() == _table(0, 10).column("name").to_pylist()


def test_a_hive_tree_gets_its_key_column_as_the_dataset_gives_it(tmp_path: Path) -> None:
    for month in (1, 2):
        folder = tmp_path / f"month={month}"
        folder.mkdir()
        pq.write_table(_table(month * 100, 3), folder / "part.parquet")
    batches = list(Fetcher().batches(str(tmp_path), format="parquet")())
    table = pa.Table.from_batches(batches)
    expected = ds.dataset(tmp_path, format="parquet", partitioning="hive").to_table()
    assert table.column_names == expected.column_names
    assert sorted(table.to_pylist(), key=lambda r: r["id"]) == sorted(
        expected.to_pylist(), key=lambda r: r["id"]
    )
    assert set(table.column("month").to_pylist()) == {1, 2}
