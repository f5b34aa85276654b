"""``python -m benchmarks.fetch_slices``: what one partition of a source holding many costs.

A year of rows (one file) is read whole and as one month's slice: Parquet through the
row-group pruning and filter, CSV through parsing and a per-chunk filter. Then the DELETE a
day's and a month's replace runs, on a table of the same rows with and without the index that
``create`` now puts on the partition column. Median of ``--repeat`` rounds."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import asyncpg
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from bulk_assets.fetch import Fetcher, RowSlice
from resources import KeyRange, PostgresBulkWriter

from ._measure import median
from ._sql import execute

# About one row group a month: 1M rows over 365 days at 100k rows a group is ~3.6 groups a
# month, so March's slice touches 4 of 10 groups at most, and statistics rule out the rest.
ROW_GROUP_ROWS = 100_000
DTYPES = {"id": "int64", "at": "datetime64[us, UTC]", "amount": "float64", "name": "string"}
MARCH = KeyRange(
    "at", dt.datetime(2026, 3, 1, tzinfo=dt.UTC), dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
)


def year(rows: int) -> pd.DataFrame:
    seconds = np.linspace(0, 365 * 86_400 - 1, rows).astype("int64")
    return pd.DataFrame(
        {
            "id": np.arange(1, rows + 1),
            "at": pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(seconds, unit="s"),
            "amount": np.arange(rows) * 0.25,
            "name": [f"customer {i % 9973}" for i in range(rows)],
        }
    )


def timed(work: Callable[[], int], repeat: int) -> tuple[float, int]:
    times, rows = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        rows = work()
        times.append(time.perf_counter() - start)
    return median(times), rows


def read(path: Path, within: RowSlice | None) -> Callable[[], int]:
    return lambda: sum(len(f) for f in Fetcher().frames(str(path), dtypes=DTYPES, within=within))


async def delete_slice(
    dsn: str, schema: str, table: str, key_range: KeyRange, repeat: int
) -> float:
    conn = await asyncpg.connect(dsn)
    try:
        times = []
        for _ in range(repeat):
            transaction = conn.transaction()
            await transaction.start()
            start = time.perf_counter()
            await conn.execute(
                f'DELETE FROM "{schema}"."{table}" WHERE at >= $1 AND at < $2',
                key_range.start,
                key_range.end,
            )
            times.append(time.perf_counter() - start)
            await transaction.rollback()
        return median(times)
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fetch_slices")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    frame = year(args.rows)
    print(f"{args.rows:,} rows over 2026, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as folder:
        parquet, csv = Path(folder) / "year.parquet", Path(folder) / "year.csv"
        pq.write_table(pa.Table.from_pandas(frame), parquet, row_group_size=ROW_GROUP_ROWS)
        frame.to_csv(csv, index=False)
        for path in (parquet, csv):
            whole, n = timed(read(path, None), args.repeat)
            month, m = timed(read(path, RowSlice(MARCH)), args.repeat)
            print(
                f"{path.suffix[1:]:8} whole {n:,} rows {whole:.2f} s | March {m:,} rows "
                f"{month:.2f} s ({whole / month:.1f}x faster)"
            )
    dsn = os.environ["DATABASE_URL"]
    schema = f"bench_slices_{os.getpid()}"
    asyncio.run(execute(dsn, f'CREATE SCHEMA "{schema}"'))
    try:
        with PostgresBulkWriter(dsn=dsn) as writer:
            # replace=KeyRange creates the table with the index; mode copy without it.
            writer.write("indexed", frame, schema=schema, create=True, replace=MARCH_ALL)
            writer.write("plain", frame, schema=schema, create=True)
        asyncio.run(execute(dsn, f'ANALYZE "{schema}".indexed; ANALYZE "{schema}".plain'))
        for name, key_range in (("a day", DAY), ("March", MARCH)):
            for table in ("plain", "indexed"):
                seconds = asyncio.run(delete_slice(dsn, schema, table, key_range, args.repeat))
                print(f"DELETE of {name:5} from {table:8} {seconds * 1000:,.0f} ms")
    finally:
        asyncio.run(execute(dsn, f'DROP SCHEMA "{schema}" CASCADE'))


# A daily partition's replace: 1/365 of the table.
DAY = KeyRange(
    "at", dt.datetime(2026, 3, 15, tzinfo=dt.UTC), dt.datetime(2026, 3, 16, tzinfo=dt.UTC)
)
# The whole year as one range: the write that creates the indexed table replaces all of it.
MARCH_ALL = KeyRange(
    "at", dt.datetime(2026, 1, 1, tzinfo=dt.UTC), dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
)


if __name__ == "__main__":
    main()
