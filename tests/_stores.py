"""Helpers shared by the object-store suites (S3 on moto, GCS and Azure on their emulators):
the objects every store holds, a free port, an emulator process started with a deadline and
stopped at the end, and reading a location as a run worker does."""

from __future__ import annotations

import contextlib
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

from bulk_assets import Fetcher

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
