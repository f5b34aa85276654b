"""``python -m benchmarks --only runs``: what a Dagster run of a dataset costs beyond its write.

Starts ``dg dev`` (webserver, daemon, code server) on a fresh DAGSTER_HOME holding the
dagster.yaml that ``tasks.py ui`` writes, with the bundled datasets loading into a fresh
database, and times from the GraphQL launch (as the UI's buttons send it) to RUN_SUCCESS:
one-partition runs of ``events`` and ``users``, a 100-partition multi-run backfill of
``events`` and a single-run backfill of all 100 ``users`` partitions. Each one-partition run's
event log gives the breakdown (see :mod:`benchmarks._run_log`)."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import psutil

from ._dagster_runs import (
    BACKFILL_STATUS,
    free_port,
    graphql,
    launch_backfill,
    launch_run,
    location_loaded,
    started,
    wait_for,
    with_database,
)
from ._run import machine
from ._run_log import PHASES, breakdown, event_counts, run_span

if TYPE_CHECKING:
    from dagster import DagsterInstance

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LOCATION, REPOSITORY = "bulk_assets", "__repository__"
# The targets, in seconds from launch to the last RUN_SUCCESS.
TARGETS = {"one_partition": 8.0, "events_backfill": 240.0, "users_backfill": 30.0}
BACKFILL_PARTITIONS = 100
# The cases, in the order they run; --runs-case picks some.
CASES = ("one_partition", "events_backfill", "users_backfill")
# A backfill still running after this long is reported as unfinished, with its runs so far.
BACKFILL_TIMEOUT = 1200.0
_TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}


def run_runs_benchmark(
    *, dsn: str, repeat: int, say: Any, cases: Sequence[str] = CASES
) -> dict[str, Any]:
    """Start ``dg dev`` against a fresh database on ``dsn``'s server and time ``cases``; each
    one-partition run is repeated ``repeat`` times."""
    name = f"bulk_runs_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(dsn, f'CREATE DATABASE "{name}"'))
    try:
        # Run workers may still be flushing their logs as dg dev stops.
        with tempfile.TemporaryDirectory(
            prefix="bulk-assets-runs-", ignore_cleanup_errors=True
        ) as tmp:
            return _with_database(with_database(dsn, name), Path(tmp), repeat, say, cases)
    finally:
        asyncio.run(_admin(dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin(dsn: str, sql: str) -> Any:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def instance_yaml() -> str:
    """The dagster.yaml that ``python3 tasks.py ui`` writes into a fresh DAGSTER_HOME."""
    sys.path.insert(0, str(REPO))
    try:
        import tasks
    finally:
        sys.path.remove(str(REPO))
    return str(tasks.INSTANCE_CONFIG)


def _with_database(
    database_url: str, tmp: Path, repeat: int, say: Any, cases: Sequence[str]
) -> dict[str, Any]:
    from dagster import DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    home = tmp / "dagster_home"
    home.mkdir()
    config = instance_yaml()
    (home / "dagster.yaml").write_text(config)
    env = {k: v for k, v in os.environ.items() if k != "BULK_ASSETS_EMBEDDED_POSTGRES"}
    env.update(
        DAGSTER_HOME=str(home),
        DATABASE_URL=database_url,
        # This checkout's code, whichever checkout the interpreter was installed from.
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p),
        VIRTUAL_ENV=sys.prefix,
    )
    port = free_port()
    command: list[str | Path] = [BIN / "dg", "dev", "-p", str(port), "-h", "127.0.0.1"]
    say(f"runs: {' '.join(str(c) for c in command[1:])} on DAGSTER_HOME={home}")
    boot = time.monotonic()
    with started({"dg_dev": command}, env=env, cwd=REPO, logs=tmp) as processes:
        try:
            wait_for("dg dev's code location", lambda: location_loaded(port, LOCATION), 240)
            ready = time.monotonic() - boot
            say(f"runs: webserver and code location ready after {ready:.1f} s")
            instance = DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))
            try:
                results = _scenarios(instance, port, repeat, say, cases)
            finally:
                instance.dispose()
            results["instance_yaml"] = config
            results["dg_dev_ready_seconds"] = ready
            results["rows_in_tables"] = asyncio.run(_counts(database_url))
            return results
        except BaseException:
            print(processes.tail(), file=sys.stderr)
            raise


async def _counts(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    try:
        return {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in ("users", "events")}
    finally:
        await conn.close()


def _keys(dataset: str) -> list[str]:
    from bulk_assets.defs.examples import events, users
    from bulk_assets.partitions import partitions_definition

    spec = {"events": events.events, "users": users.users}[dataset]
    partitions_def = partitions_definition(spec)
    assert partitions_def is not None
    return list(partitions_def.get_partition_keys())[:BACKFILL_PARTITIONS]


def _scenarios(
    instance: DagsterInstance, port: int, repeat: int, say: Any, cases: Sequence[str]
) -> dict[str, Any]:
    out: dict[str, Any] = {"machine": machine(), "started_at": _now(), "load_before": _load()}
    events_keys, users_keys = _keys("events"), _keys("users")
    single: dict[str, list[dict[str, Any]]] = {"events": [], "users": []}
    for number in range(repeat if "one_partition" in cases else 0):
        for asset, keys in (("events", events_keys), ("users", users_keys)):
            key = keys[-1 - number]
            launched = time.time()
            run_id = launch_run(port, LOCATION, asset, partition=key, repository=REPOSITORY)
            _wait_runs(instance, [run_id], timeout=180)
            record = breakdown(instance, run_id, launched_at=launched)
            single[asset].append(record)
            say(
                f"runs: one partition of {asset} ({key}): {record['total']:.2f} s"
                f" (queued {record['phases'][0]['seconds']:.2f} s)"
            )
    if "one_partition" in cases:
        out["one_partition"] = {asset: _summary(records) for asset, records in single.items()}
    if "events_backfill" in cases:
        out["events_backfill"] = _backfill(instance, port, "events", events_keys, say)
    if "users_backfill" in cases:
        out["users_backfill"] = _backfill(instance, port, "users", users_keys, say)
    out["load_after"] = _load()
    out["targets"] = TARGETS
    return out


def _summary(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The median total and, per phase, the median over the runs that had it."""
    phases = []
    for name, _ in PHASES:
        seconds = [p["seconds"] for r in records for p in r["phases"] if p["name"] == name]
        if seconds:
            phases.append({"name": name, "seconds": statistics.median(seconds)})
    return {
        "runs": len(records),
        "total": statistics.median(r["total"] for r in records),
        "totals": [round(r["total"], 2) for r in records],
        "phases": phases,
        "write": records[-1]["write"],
        "event_counts": records[-1]["event_counts"],
        "events": records[-1]["events"],
    }


def _backfill(
    instance: DagsterInstance, port: int, asset: str, keys: Sequence[str], say: Any
) -> dict[str, Any]:
    from dagster import RunsFilter

    launched = time.time()
    backfill_id = launch_backfill(port, asset, keys)

    def done() -> str | None:
        status = graphql(port, BACKFILL_STATUS, backfillId=backfill_id)
        status = status["partitionBackfillOrError"]["status"]
        return None if status in ("REQUESTED", "CANCELING", "FAILING") else str(status)

    try:
        status = wait_for(f"the backfill of {asset}", done, BACKFILL_TIMEOUT, every=0.5)
    except AssertionError:
        return _unfinished(instance, asset, keys, backfill_id, launched, say)
    completed = time.time()
    runs = instance.get_runs(RunsFilter(tags={"dagster/backfill": backfill_id}))
    _wait_runs(instance, [r.run_id for r in runs], timeout=120)
    spans = [run_span(instance, r.run_id) for r in runs]
    first_start = min(s["enqueued"] for s in spans)
    last_success = max(s["ended"] for s in spans)
    counts = [event_counts(instance, r.run_id) for r in runs]
    writes = [c["total"] for c in counts]
    result = {
        "asset": asset,
        "finished": True,
        "partitions": len(keys),
        "runs": len(runs),
        "status": status,
        "to_last_run_success": last_success - launched,
        "to_backfill_completed": completed - launched,
        "to_first_run_enqueued": first_start - launched,
        "run_seconds_median": statistics.median(s["ended"] - s["enqueued"] for s in spans),
        "event_log_writes_per_run": statistics.median(writes),
        # Of the run with the most: what a run's writes are.
        "event_counts": max(counts, key=lambda c: c["total"]),
    }
    say(
        f"runs: backfill of {len(keys)} {asset} partitions in {len(runs)} runs: last run"
        f" success after {result['to_last_run_success']:.1f} s, backfill {status} after"
        f" {result['to_backfill_completed']:.1f} s"
    )
    return result


def _unfinished(
    instance: DagsterInstance,
    asset: str,
    keys: Sequence[str],
    backfill_id: str,
    launched: float,
    say: Any,
) -> dict[str, Any]:
    """What a backfill still running at BACKFILL_TIMEOUT had done: its runs by status."""
    from dagster import RunsFilter

    runs = instance.get_runs(RunsFilter(tags={"dagster/backfill": backfill_id}))
    statuses = Counter(r.status.value for r in runs)
    say(f"runs: backfill of {asset} unfinished after {BACKFILL_TIMEOUT:.0f} s: {statuses}")
    return {
        "asset": asset,
        "partitions": len(keys),
        "finished": False,
        "after": time.time() - launched,
        "runs_by_status": dict(statuses),
    }


def _wait_runs(instance: DagsterInstance, run_ids: Sequence[str], *, timeout: float) -> None:
    from dagster import RunsFilter

    def finished() -> bool:
        runs = instance.get_runs(RunsFilter(run_ids=list(run_ids)))
        return len(runs) == len(run_ids) and all(r.status.value in _TERMINAL for r in runs)

    wait_for("the runs to finish", finished, timeout, every=0.2)
    failed = [
        r.run_id
        for r in instance.get_runs(RunsFilter(run_ids=list(run_ids)))
        if r.status.value != "SUCCESS"
    ]
    if failed:
        raise AssertionError(f"runs did not succeed: {failed}")


def _load() -> dict[str, Any]:
    one, five, fifteen = os.getloadavg()
    return {
        "loadavg": [round(one, 2), round(five, 2), round(fifteen, 2)],
        "cpu_percent": psutil.cpu_percent(interval=1.0),
    }


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
