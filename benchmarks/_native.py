"""``--only native``: replacing one partition of a range-partitioned table, three ways.

The table (narrow rows: id bigint primary key, name, email) is loaded in 100 partitions by
the writer's first loads (each a new table ATTACHed); then one partition is replaced 10 times
each way, in the same run, against the same table:

- ``truncate_copy_freeze``: the writer's native path, TRUNCATE of the child and COPY FREEZE
  in one transaction;
- ``swap_detach_attach``: a new table LIKE the parent (its CHECK and primary key made empty),
  loaded by the writer's TRUNCATE + COPY FREEZE, then DETACH + DROP of the old child and
  ATTACH of the new one in one short transaction;
- ``delete_copy``: the writer's DELETE of the slice + COPY, through the parent.

The reference is loading the same rows into an empty table of the same shape. After each
way: dead tuples of the child (pgstattuple, exact; else n_dead_tup after ANALYZE) and the
whole table's size against its size after the fresh load. Each way is also run once while
a reader of another partition holds its transaction open: the longest wait of short queries
on a third partition during that replace says whether readers of other partitions wait.
"""

from __future__ import annotations

import asyncio
import functools
import os
import statistics
import time
from typing import Any

import asyncpg
import pandas as pd

from resources import KeyRange, PostgresBulkWriter

from ._data import narrow_frame, quote

PARTITIONS = 100
REPLACES = 10
PARENT = "native_parts"
EMPTY = "native_empty"
_DDL = "(id bigint PRIMARY KEY, name text NOT NULL, email text NOT NULL)"
# Short queries on a third partition, this far apart, while a replace runs.
_PROBE_EVERY = 0.02


def _frame(lo: int, hi: int, marker: str = "") -> pd.DataFrame:
    frame = narrow_frame(hi - lo, start=lo, marker=marker)
    frame.insert(0, "id", range(lo, hi))
    return frame


def run_native(dsn: str, schema: str, rows: int) -> dict[str, Any]:
    """Every number of the section; ``rows`` is the whole table (100 partitions of it)."""
    part = max(1, rows // PARTITIONS)
    target = PARTITIONS // 2
    lo, hi = target * part + 1, (target + 1) * part + 1
    parent = f"{quote(schema)}.{quote(PARENT)}"
    out: dict[str, Any] = {
        "rows": part * PARTITIONS,
        "partitions": PARTITIONS,
        "partition_rows": part,
        "replaces": REPLACES,
        "load_before": os.getloadavg(),
    }
    with PostgresBulkWriter(dsn=dsn) as writer:
        try:
            _run(writer, dsn, schema, out, part, lo, hi)
        finally:
            writer.execute(
                f"DROP TABLE IF EXISTS {parent}, {quote(schema)}.{quote(EMPTY)}, "
                f"{quote(schema)}.{quote(f'{PARENT}_{lo}_new')}"
            )
    out["load_after"] = os.getloadavg()
    return out


def _run(
    writer: PostgresBulkWriter,
    dsn: str,
    schema: str,
    out: dict[str, Any],
    part: int,
    lo: int,
    hi: int,
) -> None:
    slice_ = KeyRange("id", lo, hi)
    parent = f"{quote(schema)}.{quote(PARENT)}"
    child = f"{quote(schema)}.{quote(f'{PARENT}_{lo}')}"
    writer.execute(f"DROP TABLE IF EXISTS {parent}, {quote(schema)}.{quote(EMPTY)}")
    writer.execute(f"CREATE TABLE {parent} {_DDL} PARTITION BY RANGE (id)")
    started = time.perf_counter()
    for k in range(PARTITIONS):
        a, b = k * part + 1, (k + 1) * part + 1
        writer.write(
            PARENT, _frame(a, b), schema=schema, replace=KeyRange("id", a, b),
            native_partitions=True,
        )  # fmt: skip
    out["initial_load_seconds"] = time.perf_counter() - started
    writer.execute(f"VACUUM ANALYZE {parent}")
    fresh = _size(writer, parent)
    out["fresh_bytes"] = fresh

    def empty_load() -> float:
        writer.execute(f"DROP TABLE IF EXISTS {quote(schema)}.{quote(EMPTY)}")
        writer.execute(f"CREATE TABLE {quote(schema)}.{quote(EMPTY)} {_DDL}")
        frame = _frame(lo, hi)
        started = time.perf_counter()
        writer.write(EMPTY, frame, schema=schema)
        return time.perf_counter() - started

    def native(frame: pd.DataFrame) -> None:
        writer.write(PARENT, frame, schema=schema, replace=slice_, native_partitions=True)

    def swap(frame: pd.DataFrame) -> None:
        _swap(writer, schema, slice_, frame)

    def delete(frame: pd.DataFrame) -> None:
        writer.write(PARENT, frame, schema=schema, replace=slice_)

    ways = {"truncate_copy_freeze": native, "swap_detach_attach": swap, "delete_copy": delete}
    results = []
    empties: list[float] = []
    for name, replace in ways.items():
        times, ratios = [], []
        for n in range(REPLACES):
            # An empty-table load beside each replace: this machine's speed drifts by 2x
            # within minutes (shared; load average 6 to 10), and the pair drifts together.
            empties.append(empty_load())
            # Built before the clock starts, as the empty load's rows are: making 100k rows
            # takes about 60 ms, a third of the load itself.
            frame = _frame(lo, hi, f"{name[0]}{n}")
            started = time.perf_counter()
            replace(frame)
            times.append(time.perf_counter() - started)
            ratios.append(times[-1] / empties[-1])
        median = statistics.median(times)
        dead, size = _dead(writer, child), _size(writer, parent)
        in_slice = writer.fetch(
            f"SELECT count(*) AS n FROM {parent} WHERE id >= $1 AND id < $2", lo, hi
        )[0]["n"]
        waits = asyncio.run(
            _reader_wait(dsn, parent, part, functools.partial(replace, _frame(lo, hi, "w")), median)
        )
        results.append(
            {
                "name": name,
                "seconds": median,
                "rounds": times,
                "x_empty_load": statistics.median(ratios),
                "dead_tuples": dead,
                "bytes": size,
                "x_fresh_size": size / fresh,
                "rows_in_slice": in_slice,
                "other_reader_wait_seconds": waits,
            }
        )
        # The next way starts from a table without dead tuples, as the first did.
        writer.execute(f"VACUUM {parent}")
    writer.execute(f"DROP TABLE {quote(schema)}.{quote(EMPTY)}")
    out["cases"] = results
    out["empty_load_seconds"] = statistics.median(empties)


def _swap(writer: PostgresBulkWriter, schema: str, slice_: KeyRange, frame: pd.DataFrame) -> None:
    """A new table beside the child, then the short swap; the child keeps its name."""
    parent = f"{quote(schema)}.{quote(PARENT)}"
    name = f"{PARENT}_{slice_.start}"
    new = f"{quote(schema)}.{quote(name + '_new')}"
    writer.execute(
        f"CREATE TABLE {new} (LIKE {parent} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
        f"INCLUDING INDEXES, CHECK (id >= {int(slice_.start)} AND id < {int(slice_.end)}))"
    )
    # TRUNCATE first, so that the COPY may FREEZE (the writer's replace=True).
    writer.write(name + "_new", frame, schema=schema, replace=True)
    writer.execute(
        f"ALTER TABLE {parent} DETACH PARTITION {quote(schema)}.{quote(name)};"
        f"DROP TABLE {quote(schema)}.{quote(name)};"
        f"ALTER TABLE {new} RENAME TO {quote(name)};"
        f"ALTER TABLE {parent} ATTACH PARTITION {quote(schema)}.{quote(name)} "
        f"FOR VALUES FROM ({int(slice_.start)}) TO ({int(slice_.end)})"
    )


async def _reader_wait(
    dsn: str, parent: str, part: int, replace: Any, replace_seconds: float
) -> dict[str, float]:
    """The longest a short query on a third partition waited while ``replace`` ran and a
    reader of another partition kept its transaction open for three times the replace's
    time (so that a swap's DETACH meets it); by a custom plan (pruned while planning: only
    that partition is locked) and by a generic one (PostgreSQL up to 17 locks every
    partition before pruning at run time)."""
    hold = max(1.0, 3 * replace_seconds)
    reader = await asyncpg.connect(dsn)
    probers = {
        plan: await asyncpg.connect(dsn, server_settings={"plan_cache_mode": f"force_{plan}_plan"})
        for plan in ("custom", "generic")
    }
    try:
        await reader.execute("BEGIN")
        await reader.fetchval(f"SELECT count(*) FROM {parent} WHERE id >= 1 AND id < $1", part)

        async def release() -> None:
            await asyncio.sleep(hold)
            await reader.execute("COMMIT")

        released = asyncio.create_task(release())
        task = asyncio.get_running_loop().run_in_executor(None, replace)
        longest = dict.fromkeys(probers, 0.0)

        async def probe(plan: str) -> None:
            while not task.done():
                started = time.perf_counter()
                await probers[plan].fetchval(
                    f"SELECT count(*) FROM {parent} WHERE id = $1", 3 * part
                )
                longest[plan] = max(longest[plan], time.perf_counter() - started)
                await asyncio.sleep(_PROBE_EVERY)

        await asyncio.gather(*(probe(plan) for plan in probers))
        await task
        await released
        return longest
    finally:
        await reader.close()
        for conn in probers.values():
            await conn.close()


def _size(writer: PostgresBulkWriter, parent: str) -> int:
    return int(
        writer.fetch(
            "SELECT sum(pg_total_relation_size(relid)) AS b FROM pg_partition_tree($1::regclass)",
            parent,
        )[0]["b"]
    )


def _dead(writer: PostgresBulkWriter, table: str) -> int:
    try:
        return int(
            writer.fetch("SELECT dead_tuple_count AS n FROM pgstattuple($1::regclass)", table)[0][
                "n"
            ]
        )
    except Exception:  # pgstattuple not installed (or not allowed): the statistics instead
        writer.execute(f"ANALYZE {table}")
        return int(
            writer.fetch(
                "SELECT n_dead_tup AS n FROM pg_stat_user_tables WHERE relid = $1::regclass",
                table,
            )[0]["n"]
        )


def render(native: dict[str, Any]) -> list[str]:
    """Markdown lines of the section."""
    lines = [
        "## Native partitions",
        "",
        f"One {native['partition_rows']:,}-row partition of a {native['rows']:,}-row table in "
        f"{native['partitions']} partitions, replaced {native['replaces']} times each way. "
        f"Initial load (100 first loads, each a new table ATTACHed): "
        f"{native['initial_load_seconds']:.1f} s. Loading the partition's rows into an empty "
        f"table of the same shape, once beside each replace: {native['empty_load_seconds']:.3f} "
        "s (median); x empty load: the median of each replace over its own. Load "
        f"average (1, 5, 15 min) before: {_load(native['load_before'])}; after: "
        f"{_load(native['load_after'])}.",
        "",
        "| way | seconds (median) | x empty load (paired) | dead tuples after | size x fresh "
        "load | another partition's reader waited: custom plan | generic plan |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {c['name']} | {c['seconds']:.3f} | {c['x_empty_load']:.2f} | {c['dead_tuples']:,} "
        f"| {c['x_fresh_size']:.4f} | {c['other_reader_wait_seconds']['custom']:.3f} s "
        f"| {c['other_reader_wait_seconds']['generic']:.3f} s |"
        for c in native["cases"]
    ]
    return lines


def _load(values: Any) -> str:
    return ", ".join(f"{v:.2f}" for v in values)
