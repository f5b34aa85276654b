"""replace=KeyRange(...): a partition's slice deleted and reloaded in one transaction."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

from resources import BadValueError, KeyRange, Mode, PostgresBulkWriter, SchemaMismatchError

UTC = dt.UTC


def numbered(db: Any, schema: str, rows: int = 30) -> None:
    db.execute(f'CREATE TABLE "{schema}".n (id bigint PRIMARY KEY, label text)')
    db.execute(f"INSERT INTO \"{schema}\".n SELECT g, 'old' || g FROM generate_series(1, {rows}) g")


def content(db: Any, schema: str, table: str = "n") -> list[tuple[Any, ...]]:
    return [tuple(r) for r in db.fetch(f'SELECT * FROM "{schema}"."{table}" ORDER BY 1')]


def slice_frame(start: int, stop: int, tag: str = "new") -> pd.DataFrame:
    ids = list(range(start, stop))
    return pd.DataFrame({"id": ids, "label": [f"{tag}{i}" for i in ids]})


def test_replaces_exactly_the_range(writer: PostgresBulkWriter, db: Any, schema: str) -> None:
    numbered(db, schema)
    # The new slice is smaller than the old one: ids 18..20 must go, not linger.
    result = writer.write("n", slice_frame(11, 18), schema=schema, replace=KeyRange("id", 11, 21))
    rows = content(db, schema)
    assert result.rows == 7 and result.rows_deleted == 10
    assert rows == (
        [(i, f"old{i}") for i in range(1, 11)]
        + [(i, f"new{i}") for i in range(11, 18)]
        + [(i, f"old{i}") for i in range(21, 31)]
    )


@pytest.mark.parametrize("mode", ["copy", "insert", "executemany"])
def test_rerunning_a_range_gives_the_same_table(
    writer: PostgresBulkWriter, db: Any, schema: str, mode: Mode
) -> None:
    numbered(db, schema)
    seen = []
    for _ in range(3):
        writer.write(
            "n", slice_frame(5, 15), schema=schema, mode=mode, replace=KeyRange("id", 5, 15)
        )
        seen.append(content(db, schema))
    assert seen[0] == seen[1] == seen[2]
    assert len(seen[0]) == 30


def test_row_outside_the_range_is_refused_and_nothing_changes(
    writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    numbered(db, schema)
    before = content(db, schema)
    frames = [slice_frame(11, 15), slice_frame(15, 22)]  # id 21 is past the range, chunk 2
    with pytest.raises(BadValueError) as caught:
        writer.write("n", frames, schema=schema, replace=KeyRange("id", 11, 21))
    error = caught.value
    assert error.column == "id" and error.row == 10
    assert "outside the range being replaced" in str(error) and "21" in str(error)
    assert content(db, schema) == before


def test_null_key_is_outside_every_range(writer: PostgresBulkWriter, db: Any, schema: str) -> None:
    db.execute(f'CREATE TABLE "{schema}".m (k int, v text)')
    frame = pd.DataFrame({"k": pd.array([1, None], dtype="Int64"), "v": ["a", "b"]})
    with pytest.raises(BadValueError) as caught:
        writer.write("m", frame, schema=schema, replace=KeyRange("k", 0, 10))
    assert caught.value.row == 1 and caught.value.column == "k"


def test_empty_data_deletes_the_range(writer: PostgresBulkWriter, db: Any, schema: str) -> None:
    numbered(db, schema)
    result = writer.write(
        "n", pd.DataFrame({"id": [], "label": []}), schema=schema, replace=KeyRange("id", 1, 11)
    )
    assert result.rows == 0 and result.rows_deleted == 10
    assert [r[0] for r in content(db, schema)] == list(range(11, 31))


def test_time_range_on_timestamptz(writer: PostgresBulkWriter, db: Any, schema: str) -> None:
    db.execute(f'CREATE TABLE "{schema}".e (at timestamptz, v int)')
    day = dt.datetime(2026, 3, 29, tzinfo=UTC)
    old = pd.DataFrame(
        {
            "at": pd.to_datetime(
                ["2026-03-28 23:59:59", "2026-03-29 00:00:00", "2026-03-30 00:00:00"], utc=True
            ),
            "v": [1, 2, 3],
        }
    )
    writer.write("e", old, schema=schema)
    new = pd.DataFrame({"at": pd.to_datetime(["2026-03-29 12:00"], utc=True), "v": [20]})
    writer.write("e", new, schema=schema, replace=KeyRange("at", day, day + dt.timedelta(days=1)))
    assert [r["v"] for r in db.fetch(f'SELECT v FROM "{schema}".e ORDER BY at')] == [1, 20, 3]


def test_range_column_must_be_in_the_data(writer: PostgresBulkWriter, db: Any, schema: str) -> None:
    db.execute(f'CREATE TABLE "{schema}".n (id bigserial PRIMARY KEY, label text)')
    db.execute(f"""INSERT INTO "{schema}".n (label) VALUES ('kept')""")
    with pytest.raises(SchemaMismatchError, match="no column 'id'"):
        writer.write(
            "n", pd.DataFrame({"label": ["x"]}), schema=schema, replace=KeyRange("id", 1, 2)
        )
    assert content(db, schema) == [(1, "kept")]


def test_bad_ranges_and_combinations_are_refused(writer: PostgresBulkWriter) -> None:
    with pytest.raises(ValueError, match="empty"):
        KeyRange("id", 5, 5)
    with pytest.raises(ValueError, match="comparable"):
        KeyRange("id", 1, "z")
    with pytest.raises(ValueError, match="commit='write'"):
        writer.write("n", slice_frame(1, 2), replace=KeyRange("id", 1, 2), commit="chunk")
    with pytest.raises(ValueError, match="appending mode"):
        writer.write(
            "n", slice_frame(1, 2), mode="upsert", key_columns=["id"], replace=KeyRange("id", 1, 2)
        )


def test_readers_keep_the_old_slice_until_commit(dsn: str, db: Any, schema: str) -> None:
    """Unlike a TRUNCATE, a range replace does not block readers: they see the old rows
    until the new ones commit, and never a table without the slice."""
    numbered(db, schema, rows=10)
    counts: list[int] = []
    stop = threading.Event()

    def slow_frames() -> Iterator[pd.DataFrame]:
        yield slice_frame(1, 6)
        time.sleep(0.6)  # the DELETE has run; the transaction is still open
        yield slice_frame(6, 11)

    def read() -> None:
        while not stop.is_set():
            counts.append(db.fetchval(f'SELECT count(*) FROM "{schema}".n'))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        with PostgresBulkWriter(dsn=dsn) as w:
            w.write("n", slow_frames, schema=schema, chunk_size=5, replace=KeyRange("id", 1, 11))
    finally:
        stop.set()
        reader.join()
    assert len(counts) > 3 and set(counts) == {10}
    assert [r[1] for r in content(db, schema)][:2] == ["new1", "new2"]


def test_four_partitions_of_one_table_replace_concurrently(dsn: str, db: Any, schema: str) -> None:
    """A backfill running 4 partitions at a time: no lock wait reaches a second
    (lock_timeout=1 would fail the write), exact counts, no duplicates, each run twice."""
    db.execute(f'CREATE TABLE "{schema}".n (id bigint PRIMARY KEY, label text)')
    size, partitions = 20_000, 8
    errors: list[BaseException] = []

    def backfill(worker: int) -> None:
        try:
            with PostgresBulkWriter(dsn=dsn, lock_timeout=1, chunk_size=5_000) as w:
                for p in range(worker, partitions, 4):
                    for _ in range(2):
                        lo = p * size
                        w.write(
                            "n",
                            slice_frame(lo, lo + size, tag=f"p{p}-"),
                            schema=schema,
                            replace=KeyRange("id", lo, lo + size),
                        )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=backfill, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    counts = db.fetch(
        f"SELECT count(*) AS n, count(DISTINCT id) AS ids, min(id) AS lo, max(id) AS hi "
        f'FROM "{schema}".n'
    )[0]
    assert tuple(counts) == (size * partitions, size * partitions, 0, size * partitions - 1)
