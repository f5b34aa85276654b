"""Partitions of a dataset: the Dagster definition, and the slice of the table each key owns."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from dagster import (
    DailyPartitionsDefinition,
    HourlyPartitionsDefinition,
    MonthlyPartitionsDefinition,
    PartitionsDefinition,
    StaticPartitionsDefinition,
    TimeWindowPartitionsDefinition,
    WeeklyPartitionsDefinition,
)

from resources import KeyRange

from .specs import ChunkPartitions, DatasetSpec, TimePartitions

__all__ = ["Partition", "partition_for_key", "partitions_definition"]

_TIME_DEFS: dict[str, Any] = {
    "hourly": HourlyPartitionsDefinition,
    "daily": DailyPartitionsDefinition,
    "weekly": WeeklyPartitionsDefinition,
    "monthly": MonthlyPartitionsDefinition,
}


@dataclass(frozen=True, slots=True)
class Partition:
    """What a generator is asked for: one partition's slice, or the whole dataset.

    Attributes:
        key: the Dagster partition key; ``None`` for an unpartitioned dataset.
        range: the rows this partition owns (column, start, end: half-open); ``None`` when
            unpartitioned.
    """

    key: str | None = None
    range: KeyRange | None = None

    @property
    def start(self) -> Any:
        return None if self.range is None else self.range.start

    @property
    def end(self) -> Any:
        return None if self.range is None else self.range.end


def partitions_definition(spec: DatasetSpec) -> PartitionsDefinition | None:
    partitions = spec.partitions
    if partitions is None:
        return None
    if isinstance(partitions, ChunkPartitions):
        return StaticPartitionsDefinition(chunk_keys(partitions))
    time_def: PartitionsDefinition = _TIME_DEFS[partitions.kind](
        start_date=_as_datetime(partitions.start),
        end_date=None if partitions.end is None else _as_datetime(partitions.end),
        timezone=partitions.timezone,
    )
    return time_def


def chunk_keys(partitions: ChunkPartitions) -> list[str]:
    """Keys that name their id range and sort in order: '0000001-0010000', ..."""
    last = partitions.start + partitions.size * partitions.count - 1
    width = len(str(last))
    return [
        f"{lo:0{width}d}-{lo + partitions.size - 1:0{width}d}"
        for lo in range(partitions.start, last + 1, partitions.size)
    ]


def partition_for_key(spec: DatasetSpec, key: str | None) -> Partition:
    partitions = spec.partitions
    if partitions is None or key is None:
        if partitions is not None:
            raise ValueError(f"dataset {spec.name} is partitioned: a partition key is needed")
        return Partition()
    if isinstance(partitions, ChunkPartitions):
        index = chunk_index(partitions, key)
        lo = partitions.start + index * partitions.size
        return Partition(key, KeyRange(partitions.column, lo, lo + partitions.size))
    window = _time_window(partitions, spec, key)
    return Partition(key, KeyRange(partitions.column, window[0], window[1]))


def chunk_index(partitions: ChunkPartitions, key: str) -> int:
    try:
        lo = int(key.split("-", 1)[0])
    except ValueError:
        lo = -1
    index, rest = divmod(lo - partitions.start, partitions.size)
    if lo < 0 or rest or not 0 <= index < partitions.count:
        raise ValueError(f"{key!r} is not a partition of these chunks ({partitions})")
    return index


def _time_window(
    partitions: TimePartitions, spec: DatasetSpec, key: str
) -> tuple[dt.datetime, dt.datetime]:
    definition = partitions_definition(spec)
    assert isinstance(definition, TimeWindowPartitionsDefinition)
    window = definition.time_window_for_partition_key(key)
    zone = ZoneInfo(partitions.timezone)
    return window.start.astimezone(zone), window.end.astimezone(zone)


def _as_datetime(value: dt.date | dt.datetime) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime(value.year, value.month, value.day)
