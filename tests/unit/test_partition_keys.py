"""Partition keys and the slice each owns; the cron offsets of a time-partitioned schedule."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bulk_assets import ChunkPartitions, DatasetSpec, Partition, TimePartitions
from bulk_assets.factory import _offsets
from bulk_assets.partitions import chunk_index, chunk_keys, partition_for_key
from resources import KeyRange


def spec(partitions: dict[str, Any] | None, schedule: str | None = None) -> DatasetSpec:
    return DatasetSpec.model_validate(
        {
            "name": "d",
            "table": "t",
            "source": {"kind": "generated", "function": lambda part: None},
            "partitions": partitions,
            "schedule": schedule,
        }
    )


@pytest.mark.parametrize(
    ("start", "size", "count", "keys"),
    [
        (1, 10, 3, ["01-10", "11-20", "21-30"]),
        (0, 5, 2, ["0-4", "5-9"]),
        (1, 10_000, 2, ["00001-10000", "10001-20000"]),
        (1, 1, 1, ["1-1"]),
    ],
)
def test_chunk_keys_name_their_range_and_sort_in_order(
    start: int, size: int, count: int, keys: list[str]
) -> None:
    partitions = ChunkPartitions(column="id", start=start, size=size, count=count)
    assert chunk_keys(partitions) == keys
    assert sorted(keys) == keys
    assert [chunk_index(partitions, key) for key in keys] == list(range(count))


def test_chunk_keys_of_a_hundred_partitions_have_one_width() -> None:
    keys = chunk_keys(ChunkPartitions(column="id", size=10_000, count=100))
    assert len(keys) == 100 and len({len(key) for key in keys}) == 1
    assert keys[0] == "0000001-0010000" and keys[-1] == "0990001-1000000"


@pytest.mark.parametrize("key", ["", "x", "00-09", "02-11", "31-40", "-1-9", "abc-def"])
def test_a_key_that_is_not_a_chunk_is_refused(key: str) -> None:
    partitions = ChunkPartitions(column="id", start=1, size=10, count=3)
    with pytest.raises(ValueError, match="is not a partition of these chunks"):
        chunk_index(partitions, key)


@pytest.mark.parametrize(
    ("key", "start", "end"),
    [("01-10", 1, 11), ("11-20", 11, 21), ("21-30", 21, 31)],
)
def test_a_chunk_key_owns_its_half_open_range(key: str, start: int, end: int) -> None:
    got = partition_for_key(spec({"kind": "chunks", "column": "id", "size": 10, "count": 3}), key)
    assert got == Partition(key, KeyRange("id", start, end))
    assert (got.start, got.end) == (start, end)


@pytest.mark.parametrize(
    ("kind", "start", "key", "window"),
    [
        ("daily", "2026-01-01", "2026-03-01", ("2026-03-01", "2026-03-02")),
        ("hourly", "2026-01-01-00:00", "2026-03-01-05:00", ("2026-03-01T05", "2026-03-01T06")),
        ("monthly", "2026-01-01", "2026-02-01", ("2026-02-01", "2026-03-01")),
        # Weeks start on Sunday.
        ("weekly", "2026-01-04", "2026-03-01", ("2026-03-01", "2026-03-08")),
    ],
)
def test_a_time_key_owns_its_window(
    kind: str, start: str, key: str, window: tuple[str, str]
) -> None:
    first = dt.datetime.fromisoformat(start[:10])
    partitions = {"kind": kind, "column": "at", "start": first.isoformat()}
    got = partition_for_key(spec(partitions), key)
    assert got.key == key and got.range is not None and got.range.column == "at"
    utc = ZoneInfo("UTC")
    expected = tuple(dt.datetime.fromisoformat(w).replace(tzinfo=utc) for w in window)
    assert (got.start, got.end) == expected
    assert got.start.tzinfo is not None


def test_a_daily_window_follows_its_timezone_across_a_dst_change() -> None:
    """In Europe/Berlin the 29th of March 2026 is 23 hours long."""
    zone = ZoneInfo("Europe/Berlin")
    partitions = {"kind": "daily", "column": "at", "start": "2026-03-01", "timezone": zone.key}
    got = partition_for_key(spec(partitions), "2026-03-29")
    assert got.start == dt.datetime(2026, 3, 29, tzinfo=zone)
    assert got.end.timestamp() - got.start.timestamp() == 23 * 3600


def test_an_unpartitioned_dataset_has_one_whole_partition() -> None:
    assert partition_for_key(spec(None), None) == Partition()
    assert Partition().start is None and Partition().end is None


def test_a_partitioned_dataset_needs_a_key() -> None:
    with pytest.raises(ValueError, match="a partition key is needed"):
        partition_for_key(spec({"kind": "chunks", "column": "id", "size": 10, "count": 3}), None)


@pytest.mark.parametrize(
    ("cron", "offsets"),
    [
        ("10 0 * * *", {"minute_of_hour": 10, "hour_of_day": 0}),
        ("* * * * *", {}),
        ("0 6 * * 1", {"minute_of_hour": 0, "hour_of_day": 6, "day_of_week": 1}),
        ("30 2 1 * *", {"minute_of_hour": 30, "hour_of_day": 2, "day_of_month": 1}),
    ],
)
def test_cron_fields_become_offsets(cron: str, offsets: dict[str, int]) -> None:
    daily = {"kind": "daily", "column": "at", "start": "2026-01-01"}
    assert _offsets(spec(daily, schedule=cron)) == offsets


@pytest.mark.parametrize(
    ("cron", "says"),
    [
        ("10 0 * *", "must be a 5-field cron"),
        ("10 0 * * * *", "must be a 5-field cron"),
        ("10 0 * 3 *", "must be a 5-field cron"),  # a month is not an offset
        ("*/5 0 * * *", "must be a number or"),
        ("10 0-6 * * *", "must be a number or"),
        ("10 0 * * MON", "must be a number or"),
    ],
)
def test_a_cron_that_is_not_an_offset_is_refused(cron: str, says: str) -> None:
    daily = {"kind": "daily", "column": "at", "start": "2026-01-01"}
    with pytest.raises(ValueError, match=says):
        _offsets(spec(daily, schedule=cron))


def test_a_chunk_partitioned_dataset_cannot_be_scheduled() -> None:
    with pytest.raises(ValueError, match="no partition for a schedule to pick"):
        spec({"kind": "chunks", "column": "id", "size": 10, "count": 3}, schedule="0 0 * * *")


def test_time_partitions_parse_their_start() -> None:
    partitions = TimePartitions(kind="daily", column="at", start=dt.date(2026, 1, 1))
    assert partitions.timezone == "UTC"
