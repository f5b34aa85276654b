"""``python -m benchmarks --rtt MS``: what network latency costs each write mode.

Every write goes through :class:`~benchmarks._proxy.DelayProxy`, once with no delay and once
with ``MS`` of round-trip time, so both runs pay the proxy's own overhead alike. For each mode
it times a 1,000-row write (median of several) and counts its round trips; then it loads a
200,000-row table once per appending or staged mode at both latencies.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pandas as pd

from resources import KeyRange, PostgresBulkWriter

from ._data import frame_to_tuples, keyed_frame, narrow_frame, quote
from ._proxy import DelayProxy
from ._sql import execute

SMALL_ROWS = 1_000
BIG_ROWS = 200_000
# Timed writes per mode and latency (the median counts), after one untimed warm-up write.
WRITES = {0.0: 15, 1.0: 7}
METHOD = (
    "Counted by the proxy. Round trips: each time the server answers after the client sent "
    "(bytes the client sends again before the answer ride the same trip), plus one per new "
    "connection's TCP handshake, whose first bytes the proxy holds back one round trip. "
    "Z: the server's ReadyForQuery messages, one per query cycle of the protocol (no "
    "handshake, no SSL negotiation). A pipelined stream (executemany) whose answers come "
    "back while the client is still sending counts each burst of answers: an upper bound."
)
SMALL_MODES = (
    "copy", "insert", "executemany", "update", "upsert", "replace", "replace_cold", "native"
)  # fmt: skip
BIG_MODES = ("insert", "copy", "upsert", "executemany")


@dataclass(frozen=True, slots=True)
class Tables:
    schema: str

    def name(self, table: str) -> str:
        return f"{quote(self.schema)}.{quote(table)}"


def through(dsn: str, port: int) -> str:
    """``dsn`` with its host and port replaced by the proxy's."""
    parts = urlsplit(dsn)
    auth = parts.netloc.rpartition("@")[0]
    netloc = f"{auth}@127.0.0.1:{port}" if auth else f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


def target_of(dsn: str) -> tuple[str, int]:
    parts = urlsplit(dsn)
    return parts.hostname or "127.0.0.1", parts.port or 5432


async def _prepare(dsn: str, tables: Tables) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {quote(tables.schema)} CASCADE")
        await conn.execute(f"CREATE SCHEMA {quote(tables.schema)}")
        # append: the server fills id; keyed: update/upsert targets; replace: a bigserial id
        # written with explicit values, so the write moves its sequence as a partition does.
        await conn.execute(
            f"CREATE TABLE {tables.name('append')} (id bigserial PRIMARY KEY, name text, "
            f"email text); CREATE TABLE {tables.name('keyed')} (id bigint PRIMARY KEY, "
            f"name text, email text); CREATE TABLE {tables.name('replace')} "
            "(id bigserial PRIMARY KEY, name text, email text)"
        )
        # native: a range-partitioned table whose one child holds exactly the slice.
        await conn.execute(
            f"CREATE TABLE {tables.name('native')} (id bigint PRIMARY KEY, name text, "
            f"email text) PARTITION BY RANGE (id); CREATE TABLE {tables.name('native_1')} "
            f"PARTITION OF {tables.name('native')} FOR VALUES FROM (1) TO ({SMALL_ROWS + 1})"
        )
    finally:
        await conn.close()


def _small_write(mode: str, schema: str) -> tuple[str, pd.DataFrame, dict[str, Any]]:
    keyed = keyed_frame("narrow", SMALL_ROWS)
    if mode in ("copy", "insert", "executemany"):
        return "append", narrow_frame(SMALL_ROWS), {"mode": mode, "schema": schema}
    if mode in ("update", "upsert"):
        options = {"mode": mode, "schema": schema, "key_columns": ["id"]}
        return "keyed", keyed, options
    span = KeyRange("id", 1, SMALL_ROWS + 1)
    if mode == "native":
        native: dict[str, Any] = {"schema": schema, "replace": span, "native_partitions": True}
        return "native", keyed, native
    return "replace", keyed, {"mode": "copy", "schema": schema, "replace": span}


def _measure(proxy: DelayProxy, writes: int, one: Callable[[], object]) -> dict[str, float | int]:
    one()  # warm-up: the pool, the statement cache, the server's own caches
    seconds, trips, ready, connections = [], [], [], []
    for _ in range(writes):
        proxy.take()
        started = time.perf_counter()
        one()
        seconds.append(time.perf_counter() - started)
        counts = proxy.take()
        trips.append(counts.round_trips)
        ready.append(counts.ready)
        connections.append(counts.connections)
    return {
        "ms": statistics.median(seconds) * 1000,
        "round_trips": int(statistics.median(trips)),
        "ready": int(statistics.median(ready)),
        "connections": int(statistics.median(connections)),
    }


def _small(dsn: str, proxy: DelayProxy, schema: str, writes: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for mode in SMALL_MODES:
        table, frame, options = _small_write(mode, schema)
        if mode == "replace_cold":
            # What a Dagster step does: a new writer, its pool opened for the write and
            # closed after it.
            def cold(table: str = table, frame: Any = frame, options: Any = options) -> None:
                PostgresBulkWriter(dsn=dsn).write(table, frame, **options)

            results[mode] = _measure(proxy, writes, cold)
            continue
        with PostgresBulkWriter(dsn=dsn) as writer:

            def warm(
                writer: PostgresBulkWriter = writer,
                table: str = table,
                frame: Any = frame,
                options: Any = options,
            ) -> None:
                writer.write(table, frame, **options)

            results[mode] = _measure(proxy, writes, warm)
    results["raw_replace"] = _raw_replace(dsn, proxy, schema, writes)
    return results


def _raw_replace(dsn: str, proxy: DelayProxy, schema: str, writes: int) -> dict[str, float | int]:
    """The floor: BEGIN, DELETE the slice, COPY 1,000 rows, COMMIT on an open connection."""
    rows = frame_to_tuples(keyed_frame("narrow", SMALL_ROWS))
    loop = asyncio.new_event_loop()
    conn = loop.run_until_complete(asyncpg.connect(dsn))

    async def replace() -> None:
        async with conn.transaction():
            await conn.execute(
                f"DELETE FROM {quote(schema)}.replace WHERE id >= $1 AND id < $2",
                1,
                SMALL_ROWS + 1,
            )
            await conn.copy_records_to_table(
                "replace", schema_name=schema, records=rows, columns=["id", "name", "email"]
            )

    try:
        return _measure(proxy, writes, lambda: loop.run_until_complete(replace()))
    finally:
        loop.run_until_complete(conn.close())
        loop.close()


def _big(dsn: str, direct: str, schema: str, proxy: DelayProxy) -> dict[str, Any]:
    tables = Tables(schema)
    results: dict[str, Any] = {}
    frame, keyed = narrow_frame(BIG_ROWS), keyed_frame("narrow", BIG_ROWS)
    for mode in BIG_MODES:
        table = "keyed" if mode == "upsert" else "append"
        asyncio.run(execute(direct, f"TRUNCATE {tables.name(table)}"))
        options: dict[str, Any] = {"mode": mode, "schema": schema}
        data = frame
        if mode == "upsert":
            options["key_columns"] = ["id"]
            data = keyed
        with PostgresBulkWriter(dsn=dsn) as writer:
            writer.execute("SELECT 1")  # the pool open before the clock starts
            proxy.take()
            started = time.perf_counter()
            writer.write(table, data, **options)
            seconds = time.perf_counter() - started
            trips = proxy.take().round_trips
        results[mode] = {
            "rows_per_second": BIG_ROWS / seconds,
            "seconds": seconds,
            "round_trips": trips,
        }
    return results


def run_rtt(
    dsn: str, schema: str, rtt_ms: float, *, big: bool = True, repeat: int = 3
) -> dict[str, Any]:
    """Both latencies, every mode; the numbers as a dict (see :func:`render_rtt`). The
    200,000-row loads alternate between the latencies, ``repeat`` rounds, medians kept, so
    that a busy minute on a shared machine weighs on both alike."""
    tables = Tables(f"{schema}_rtt")
    asyncio.run(_prepare(dsn, tables))
    host, port = target_of(dsn)
    runs: dict[str, Any] = {}
    try:
        with (
            DelayProxy(host, port, rtt_ms=0.0) as zero,
            DelayProxy(host, port, rtt_ms=rtt_ms) as slow,
        ):
            proxies = {"0.0": zero, str(float(rtt_ms)): slow}
            for key, proxy in proxies.items():
                writes = WRITES[0.0] if proxy is zero else WRITES[1.0]
                small = _small(through(dsn, proxy.port), proxy, tables.schema, writes)
                runs[key] = {"small": small, "big": {}}
            rounds: dict[str, list[dict[str, Any]]] = {key: [] for key in proxies}
            for _ in range(repeat if big else 0):
                for key, proxy in proxies.items():
                    rounds[key].append(_big(through(dsn, proxy.port), dsn, tables.schema, proxy))
            for key, results in rounds.items():
                if results:
                    runs[key]["big"] = {
                        mode: {
                            "rows_per_second": statistics.median(
                                r[mode]["rows_per_second"] for r in results
                            ),
                            "rounds": [r[mode]["rows_per_second"] for r in results],
                            # Each round's pair: this latency's load over the 0 ms one
                            # just before it, so that a busy minute weighs on both alike.
                            "paired_ratios": [
                                r[mode]["rows_per_second"] / z[mode]["rows_per_second"]
                                for r, z in zip(results, rounds["0.0"], strict=True)
                            ],
                            "round_trips": max(r[mode]["round_trips"] for r in results),
                        }
                        for mode in BIG_MODES
                    }
    finally:
        asyncio.run(execute(dsn, f"DROP SCHEMA IF EXISTS {quote(tables.schema)} CASCADE"))
    return {
        "rtt_ms": rtt_ms,
        "repeat": repeat,
        "method": METHOD,
        "machine": f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f} at the end",
        "runs": runs,
    }


_LABELS = {
    "raw_replace": "raw asyncpg: BEGIN, DELETE slice, COPY, COMMIT (open connection)",
    "copy": "copy append, pool warm",
    "insert": "insert (multi-row INSERT), pool warm",
    "executemany": "executemany, pool warm",
    "update": "update (staged), pool warm",
    "upsert": "upsert (staged), pool warm",
    "replace": "replace=KeyRange, pool warm",
    "replace_cold": "replace=KeyRange, new writer (a Dagster step)",
    "native": "replace=KeyRange, native partition (TRUNCATE + COPY FREEZE), pool warm",
}


def render_rtt(results: dict[str, Any]) -> str:
    rtt = results["rtt_ms"]
    zero, slow = results["runs"]["0.0"], results["runs"][str(float(rtt))]
    lines = [
        f"Round trips: {SMALL_ROWS:,}-row writes through a proxy adding 0 and {rtt:g} ms RTT",
        "",
        results["method"],
        "",
        f"| write | 0 ms | {rtt:g} ms RTT | round trips | Z | connections opened |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key, label in _LABELS.items():
        a, b = zero["small"][key], slow["small"][key]
        lines.append(
            f"| {label} | {a['ms']:.1f} ms | {b['ms']:.0f} ms | {b['round_trips']} | "
            f"{b['ready']} | {b['connections']} |"
        )
    if zero["big"]:
        lines += [
            "",
            f"| {BIG_ROWS:,} rows (narrow), median of {results['repeat']} | rows/s at 0 ms | "
            f"at {rtt:g} ms RTT | ratio (median of paired rounds) | round trips | "
            f"ratio if latency only added round trips x {rtt:g} ms |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for mode in BIG_MODES:
            a, b = zero["big"][mode], slow["big"][mode]
            ratio = statistics.median(b["paired_ratios"])
            # What the round trips alone predict: the 0 ms time plus one RTT per trip.
            zero_seconds = BIG_ROWS / a["rows_per_second"]
            predicted = zero_seconds / (zero_seconds + b["round_trips"] * rtt / 1000)
            lines.append(
                f"| {mode} | {a['rows_per_second'] / 1000:.0f}k | "
                f"{b['rows_per_second'] / 1000:.0f}k | {ratio:.2f} | {b['round_trips']} | "
                f"{predicted:.2f} |"
            )
    lines += ["", f"Machine: {results['machine']}."]
    return "\n".join(lines) + "\n"
