"""How rows reach chunks: synchronous sources cross to a worker thread a batch at a time, not a
row at a time; chunks close at chunk_size rows or at about CHUNK_BYTES, whichever first."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from typing import Any

import pandas as pd
import pytest

import resources._sources as sources
from resources import PostgresBulkWriter
from resources._sources import iter_frames

KIB = 1024
MIB = 1024 * KIB


class CountingExecutor(concurrent.futures.ThreadPoolExecutor):
    """The loop's default executor, counting the calls handed to it: one per thread hop."""

    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.hops = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        self.hops += 1
        return super().submit(fn, *args, **kwargs)


def frames_of(data: Any, **options: Any) -> tuple[list[pd.DataFrame], int]:
    """The chunks iter_frames makes of ``data``, and the thread hops it took."""
    executor = CountingExecutor()

    async def collect() -> list[pd.DataFrame]:
        asyncio.get_running_loop().set_default_executor(executor)
        options.setdefault("table", "t")
        options.setdefault("columns", ["name", "email"])
        return [frame async for frame in iter_frames(data, **options)]

    return asyncio.run(collect()), executor.hops


def people(count: int, threads: set[int] | None = None) -> Iterator[tuple[str, str]]:
    for i in range(count):
        if threads is not None:
            threads.add(threading.get_ident())
        yield f"user {i}", f"user{i}@example.com"


@pytest.mark.parametrize("as_dicts", [False, True])
def test_a_generator_crosses_threads_once_per_chunk_not_per_row(as_dicts: bool) -> None:
    threads: set[int] = set()
    rows: Iterator[Any] = people(10_000, threads)
    if as_dicts:
        rows = ({"name": name, "email": email} for name, email in rows)

    frames, hops = frames_of(rows, chunk_size=1_000)

    assert [len(f) for f in frames] == [1_000] * 10
    assert frames[-1].iloc[-1].tolist() == ["user 9999", "user9999@example.com"]
    # One hop per row made 10,001; a batch per chunk makes ~11 (more only when a slow
    # machine hits the 0.1 s limit of a batch).
    assert hops <= 50
    # Still advanced off the event loop's thread, so a slow source does not stall it.
    assert threading.get_ident() not in threads


def test_lists_need_no_thread() -> None:
    frames, hops = frames_of(list(people(3_000)), chunk_size=1_000)

    assert [len(f) for f in frames] == [1_000] * 3
    assert hops == 0


class SourceBroke(Exception):
    pass


def test_the_sources_own_exception_propagates_unchanged() -> None:
    broke = SourceBroke("disk on fire")

    def rows() -> Iterator[tuple[str, str]]:
        yield from people(2_500)
        raise broke

    with pytest.raises(SourceBroke) as caught:
        frames_of(rows(), chunk_size=1_000)

    assert caught.value is broke
    assert caught.value.__cause__ is None


def test_cancelling_stops_pulling_from_the_source() -> None:
    pulled = 0

    def endless() -> Iterator[tuple[str, str]]:
        nonlocal pulled
        while True:
            pulled += 1
            time.sleep(0.0005)
            yield "x", "y"

    async def run() -> None:
        frames = iter_frames(endless(), columns=["a", "b"], chunk_size=10**9, table="t")

        async def pull() -> pd.DataFrame:
            return await anext(frames)

        task = asyncio.create_task(pull())
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
        assert isinstance(frames, AsyncGenerator)
        await frames.aclose()

    asyncio.run(run())
    # asyncio.run waited for the worker thread: the batch it was pulling has ended.
    stopped_at = pulled
    time.sleep(0.3)
    assert pulled == stopped_at


def wide_rows(count: int, width: int) -> Iterator[tuple[str, str]]:
    for i in range(count):
        yield f"user {i}", str(i % 10) * width


@pytest.mark.parametrize("shape", ["generator", "list", "dicts", "frame", "frames"])
def test_chunks_of_wide_rows_close_at_the_byte_bound(shape: str) -> None:
    rows = list(wide_rows(40, 256 * KIB))
    data: Any = {
        "generator": iter(rows),
        "list": rows,
        "dicts": [{"name": n, "email": e} for n, e in rows],
        "frame": pd.DataFrame(rows, columns=["name", "email"]),
        "frames": iter([pd.DataFrame(rows, columns=["name", "email"])]),
    }[shape]

    frames, _ = frames_of(data, chunk_size=50_000, chunk_bytes=1 * MIB)

    # 40 rows of 256 KiB: 10 chunks of ~1 MiB (fewer rows each where a frame's own size,
    # ~50 bytes per Python string more, is what is measured), not one of 40 rows.
    assert 10 <= len(frames) <= 14
    assert all(1 <= len(f) <= 4 for f in frames)
    assert pd.concat(frames)["email"].tolist() == [e for _, e in rows]


def test_narrow_rows_still_close_at_chunk_size() -> None:
    frames, _ = frames_of(people(5_000), chunk_size=1_000, chunk_bytes=64 * MIB)

    assert [len(f) for f in frames] == [1_000] * 5


def test_the_writer_sends_wide_rows_in_chunks_bounded_by_bytes(
    monkeypatch: pytest.MonkeyPatch, writer: PostgresBulkWriter, db: Any, schema: str
) -> None:
    db.execute(f'CREATE TABLE "{schema}".wide (name text, email text)')
    monkeypatch.setattr(sources, "CHUNK_BYTES", 1 * MIB)

    result = writer.write(
        "wide", wide_rows(40, 256 * KIB), columns=["name", "email"], schema=schema
    )

    assert (result.rows, result.chunks) == (40, 10)
    assert db.fetchval(f'SELECT sum(length(email)) FROM "{schema}".wide') == 40 * 256 * KIB
