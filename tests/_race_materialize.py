"""One Dagster run of one partition, in a process of its own, for the race tests:
``python tests/_race_materialize.py DSN SCHEMA PARTITION_KEY LABEL``. Its source is slow
(chunks 0.1 s apart), so that runs started together overlap. Exits 0 on success."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator

import pandas as pd
from dagster import DagsterInstance, materialize

from bulk_assets import ChunkPartitions, Fetcher, Partition, build_asset, dataset
from resources import PostgresBulkWriter

SIZE, CHUNKS = 8_000, 4
LABEL = sys.argv[4] if len(sys.argv) > 4 else "run"


def rows(part: Partition) -> Iterator[pd.DataFrame]:
    step = SIZE // CHUNKS
    for k in range(CHUNKS):
        time.sleep(0.1)
        lo = part.start + k * step
        yield pd.DataFrame({"id": range(lo, lo + step), "label": [LABEL] * step})


race = dataset(
    table="race",
    ddl="CREATE TABLE IF NOT EXISTS race (id bigint, label text NOT NULL)",
    partitions=ChunkPartitions(column="id", size=SIZE, count=4),
    chunk_size=SIZE // CHUNKS,
)(rows)


def main(dsn: str, schema: str, partition_key: str) -> int:
    sep = "&" if "?" in dsn else "?"
    writer = PostgresBulkWriter(dsn=f"{dsn}{sep}search_path={schema}")
    result = materialize(
        [build_asset(race)],
        resources={"writer": writer, "fetcher": Fetcher()},
        instance=DagsterInstance.ephemeral(),
        partition_key=partition_key,
        raise_on_error=False,
    )
    return 0 if result.success else 1


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:4]))
