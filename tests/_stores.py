"""Helpers shared by the object-store suites (S3 on moto, GCS and Azure on their emulators):
the objects every store holds, a free port, an emulator process started with a deadline and
stopped at the end, and reading a location as a run worker does: as frames, as Arrow batches
of February's slice, and as one monthly partition of a dataset."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import DagsterInstance, materialize

from bulk_assets import DatasetSpec, Fetcher, FetchSource, TimePartitions, build_asset
from resources import KeyRange, PostgresBulkWriter

BUCKET = "exports"
DTYPES = {"id": "int64", "at": "datetime64[us, UTC]", "name": "string"}
# Node's Azurite takes about 2 s to listen on this machine, moto and the GCS emulator under 1 s.
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def rows(n: int = 90) -> pd.DataFrame:
    start = pd.Timestamp("2026-01-01", tz="UTC")
    return pd.DataFrame(
        {
            "id": range(1, n + 1),
            "at": [start + pd.Timedelta(days=i) for i in range(n)],
            "name": [f"row {i}" for i in range(n)],
        }
    )


def objects() -> dict[str, bytes]:
    """Every store's keys: the 90 rows as one CSV and one Parquet object (three row groups),
    and as three CSV parts whose names sort against their upload order, beside a _SUCCESS."""
    frame = rows()
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer, row_group_size=30)
    found = {
        "one/rows.csv": frame.to_csv(index=False).encode(),
        "one/rows.parquet": buffer.getvalue(),
    }
    for part, start in enumerate(range(0, 90, 30)):
        found[f"parts/part-{2 - part}.csv"] = frame[start : start + 30].to_csv(index=False).encode()
    found["parts/_SUCCESS"] = b""
    return found


def parts_in_sorted_order() -> pd.DataFrame:
    # part-0 holds the last 30 rows: sorted by name, not by upload.
    frame = rows()
    return pd.concat([frame[60:], frame[30:60], frame[:30]]).reset_index(drop=True)


def read(location: str, **options: Any) -> pd.DataFrame:
    frames = Fetcher(timeout=5, retries=0).frames(location, dtypes=DTYPES, **options)
    return pd.concat(frames).reset_index(drop=True)


def february_by_arrow(location: str) -> list[int]:
    """The ids ``Fetcher.batches`` reads from ``location`` within February 2026 (of a plain
    object, or of a prefix read as CSV)."""
    february = KeyRange(
        "at", dt.datetime(2026, 2, 1, tzinfo=dt.UTC), dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    )
    batches = Fetcher(timeout=5, retries=0).batches(
        location, format=None if "." in location.rsplit("/", 1)[-1] else "csv", within=february
    )
    return sorted(i for batch in batches() for i in batch.column("id").to_pylist())


def materialize_february(location: str, dsn: str) -> bool:
    """Materialize the February partition of a monthly dataset over the one object at
    ``location`` into table ``rows``; whether the run succeeded."""
    spec = DatasetSpec(
        name="rows",
        table="rows",
        create=True,
        source=FetchSource(location=location, dtypes=DTYPES),
        partitions=TimePartitions(kind="monthly", column="at", start=dt.date(2026, 1, 1)),
    )
    result = materialize(
        [build_asset(spec)],
        resources={"writer": PostgresBulkWriter(dsn=dsn), "fetcher": Fetcher(timeout=5)},
        instance=DagsterInstance.ephemeral(),
        partition_key="2026-02-01",
    )
    return result.success


@contextlib.contextmanager
def server(
    argv: Sequence[str],
    *,
    port: int,
    name: str,
    env: dict[str, str] | None = None,
    grace: float = 10.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``argv`` until the block ends, once it listens on ``port``; fail the test if it has
    not within START_TIMEOUT seconds. At the end it is terminated, and killed if it has not
    exited ``grace`` seconds later."""
    process = subprocess.Popen(
        list(argv), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if process.poll() is not None:
                pytest.fail(f"{name} exited with code {process.returncode} before listening")
            if time.monotonic() > deadline:
                pytest.fail(f"{name} did not listen on port {port} within {START_TIMEOUT:.0f} s")
            time.sleep(0.1)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
