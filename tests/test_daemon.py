"""The deployment path: dagster-daemon and dagster-webserver as subprocesses on an instance
configured by deploy/dagster.yaml, with its storage in a fresh PostgreSQL database.

A 24-partition backfill launched through the webserver's GraphQL API as the UI launches it
loads exact counts, never with more runs writing at once than the write pool allows; a
schedule turned on through GraphQL ticks and its run loads; a run worker killed with SIGKILL
mid-write is failed, its pool slot freed, and the run retried to exact counts, with no
session left in a transaction. Needs DATABASE_URL: the server over TCP (CI's second pass)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import _daemon_definitions as location
import psycopg2
import pytest
import yaml

from benchmarks._dagster_runs import (
    BACKFILL_STATUS,
    START_SCHEDULE,
    free_port,
    graphql,
    launch_backfill,
    started,
    wait_for,
    with_database,
)

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LOCATION, REPOSITORY = "daemon_test", "__repository__"
WRITE_POOL = "postgres_writes"
# Tighter than deploy/dagster.yaml, so that the pool, not the run queue, limits the writers,
# and faster daemon loops, so that the test takes a minute or two rather than ten.
POOL_LIMIT, BACKFILL_RUNS = 2, 4

pytestmark = pytest.mark.timeout(420)


class Sql:
    def __init__(self, dsn: str) -> None:
        self.conn = psycopg2.connect(dsn)
        self.conn.autocommit = True

    def rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with self.conn.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall()) if cur.description else []

    def value(self, sql: str, *args: Any) -> Any:
        return self.rows(sql, *args)[0][0]


class WriterSampler(threading.Thread):
    """Counts, every 0.1 s, the run workers (one pid each in application_name) that hold a
    transaction in the test's database."""

    def __init__(self, dsn: str, database: str) -> None:
        super().__init__(daemon=True)
        self.sql, self.database = Sql(dsn), database
        self.most, self.samples = 0, 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.1):
            writing = self.sql.value(
                "SELECT count(DISTINCT application_name) FROM pg_stat_activity"
                " WHERE datname = %s AND application_name LIKE %s AND xact_start IS NOT NULL",
                self.database,
                f"{location.APPLICATION_PREFIX}%",
            )
            self.most, self.samples = max(self.most, writing), self.samples + 1


@pytest.fixture
def database() -> Iterator[tuple[str, str]]:
    """A fresh database for the instance and the loads; dropped, sessions and all, after."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        pytest.skip("needs DATABASE_URL: a PostgreSQL that the daemon's storage reaches by TCP")
    name = f"dagster_{uuid.uuid4().hex[:10]}"
    admin = Sql(url)
    admin.rows(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(url, name), name
    finally:
        admin.rows(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.conn.close()


def instance_config(home: Path) -> None:
    config = yaml.safe_load((REPO / "deploy" / "dagster.yaml").read_text())
    config["run_coordinator"]["config"]["dequeue_interval_seconds"] = 1
    config["concurrency"]["runs"]["tag_concurrency_limits"][0]["limit"] = BACKFILL_RUNS
    config["concurrency"]["pools"]["default_limit"] = POOL_LIMIT
    config["run_monitoring"].update(poll_interval_seconds=1, free_slots_after_run_end_seconds=1)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    (home / "workspace.yaml").write_text(
        yaml.safe_dump(
            {
                "load_from": [
                    {
                        "python_module": {
                            "module_name": "tests._daemon_definitions",
                            "location_name": LOCATION,
                            "working_directory": str(REPO),
                        }
                    }
                ]
            }
        )
    )


def test_backfill_schedule_and_killed_run_through_the_daemon(
    database: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started_at = time.monotonic()
    dsn, name = database
    parts = urlsplit(dsn)
    schema = "loads"
    sql = Sql(dsn)
    sql.rows(f"CREATE SCHEMA {schema}")
    sql.rows(f"CREATE TABLE {schema}.chunks (id bigint PRIMARY KEY, label text NOT NULL)")
    sql.rows(f"CREATE TABLE {schema}.ticks (id bigint PRIMARY KEY, label text NOT NULL)")

    home = tmp_path / "dagster_home"
    home.mkdir()
    instance_config(home)
    kill_file = tmp_path / "kill.pid"
    env = {
        key: value for key, value in os.environ.items() if key != "BULK_ASSETS_EMBEDDED_POSTGRES"
    }
    env.update(
        DAGSTER_HOME=str(home),
        DAGSTER_PG_HOST=parts.hostname or "127.0.0.1",
        DAGSTER_PG_PORT=str(parts.port or 5432),
        DAGSTER_PG_DB=name,
        DAGSTER_PG_USER=parts.username or "postgres",
        DAGSTER_PG_PASSWORD=parts.password or "",
        DATABASE_URL=with_database(dsn, name, search_path=schema),
        BULK_ASSETS_TEST_KILL_FILE=str(kill_file),
        PYTHONPATH=str(REPO),
    )
    for key in ("DAGSTER_HOME", "DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_DB"):
        monkeypatch.setenv(key, env[key])
    monkeypatch.setenv("DAGSTER_PG_USER", env["DAGSTER_PG_USER"])
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", env["DAGSTER_PG_PASSWORD"])

    port = free_port()
    workspace = str(home / "workspace.yaml")
    commands: dict[str, list[str | Path]] = {
        "daemon": [BIN / "dagster-daemon", "run", "-w", workspace],
        "webserver": [
            BIN / "dagster-webserver",
            *("-w", workspace, "-h", "127.0.0.1", "-p", str(port)),
        ],
    }
    sampler = WriterSampler(dsn, name)
    try:
        with started(commands, env=env, cwd=REPO, logs=tmp_path) as processes:
            try:
                run_scenario(
                    sql, schema, port, kill_file, sampler, started_at, tmp_path / "daemon.log"
                )
            except BaseException:
                print(processes.tail())
                raise
    finally:
        sampler.stop.set()
        sql.conn.close()


def start_schedule(port: int, schedule: str) -> Any:
    try:
        result = graphql(
            port,
            START_SCHEDULE,
            scheduleSelector={
                "repositoryLocationName": LOCATION,
                "repositoryName": REPOSITORY,
                "scheduleName": schedule,
            },
        )["startSchedule"]
    except OSError:  # the webserver is still starting
        return None
    # The code location may still be loading: the selector is then not found.
    return result if result["__typename"] == "ScheduleStateResult" else None


def run_scenario(
    sql: Sql,
    schema: str,
    port: int,
    kill_file: Path,
    sampler: WriterSampler,
    started_at: float,
    daemon_log: Path,
) -> None:
    from dagster import AssetKey, DagsterInstance, DagsterRunStatus, RunsFilter

    # A schedule ticks on the minute: turned on first, it ticks while the backfill runs.
    state = wait_for(
        "the webserver and the code location", lambda: start_schedule(port, "ticks_schedule"), 90
    )
    assert state["scheduleState"]["status"] == "RUNNING"

    keys = location.chunks_partition_keys()
    backfill_id = launch_backfill(port, "chunks", keys)
    sampler.start()

    # The first attempt at the kill partition waits, mid-transaction, to be killed.
    pid = int(
        wait_for("the run to kill", lambda: kill_file.exists() and kill_file.read_text(), 150)
    )
    application = f"{location.APPLICATION_PREFIX}{pid}"
    in_transaction = wait_for(
        "the doomed run's transaction",
        lambda: sql.rows(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s"
            " AND backend_xid IS NOT NULL",
            application,
        ),
        30,
        every=0.1,
    )
    os.kill(pid, signal.SIGKILL)
    killed_at = time.monotonic()

    instance = DagsterInstance.get()
    try:

        def backfill_done() -> str | None:
            status = graphql(port, BACKFILL_STATUS, backfillId=backfill_id)
            status = status["partitionBackfillOrError"]["status"]
            busy = instance.get_runs_count(
                RunsFilter(
                    statuses=[
                        DagsterRunStatus.QUEUED,
                        DagsterRunStatus.NOT_STARTED,
                        DagsterRunStatus.STARTING,
                        DagsterRunStatus.STARTED,
                    ]
                )
            )
            return status if status != "REQUESTED" and busy == 0 else None

        backfill_status = wait_for("the backfill", backfill_done, 200, every=1)
        tick_run = wait_for(
            "the schedule's run",
            lambda: [
                r
                for r in instance.get_runs(
                    RunsFilter(
                        tags={"dagster/schedule_name": "ticks_schedule"},
                        statuses=[DagsterRunStatus.SUCCESS],
                    )
                )
            ],
            90,
            every=1,
        )[0]
        sampler.stop.set()
        sampler.join()

        runs = instance.get_runs(RunsFilter(tags={"dagster/backfill": backfill_id}))
        killed = [r for r in runs if r.status == DagsterRunStatus.FAILURE]
        assert len(killed) == 1, [(r.run_id, r.status) for r in runs]
        killed_run = killed[0]
        retries = instance.get_runs(RunsFilter(tags={"dagster/parent_run_id": killed_run.run_id}))
        assert [r.status for r in retries] == [DagsterRunStatus.SUCCESS]
        retry = retries[0]
        # What the killed run's log says after the kill: who noticed, and how it ended.
        fate = [
            f"{e.dagster_event.event_type_value}: {e.message}"
            for e in instance.all_logs(killed_run.run_id)
            if e.dagster_event is not None
            and e.dagster_event.event_type_value in ("ENGINE_EVENT", "PIPELINE_FAILURE")
        ][-3:]
        assert any("was terminated by signal" in line for line in fate), fate
        assert fate[-1] == "ENGINE_EVENT: Retrying the run", fate

        materialized = instance.get_materialized_partitions(AssetKey("chunks"))
        assert materialized == set(keys)
        counts = sql.rows(
            f"SELECT (id - 1) / {location.ROWS}, count(*), count(DISTINCT id)"
            f" FROM {schema}.chunks GROUP BY 1 ORDER BY 1"
        )
        assert counts == [(k, location.ROWS, location.ROWS) for k in range(location.PARTITIONS)]
        assert sql.value(f"SELECT count(*) FROM {schema}.ticks") == location.TICK_ROWS

        assert 1 <= sampler.most <= POOL_LIMIT, sampler.most
        pool = instance.event_log_storage.get_concurrency_info(WRITE_POOL)
        assert pool.active_slot_count == 0 and pool.pending_step_count == 0
        assert (
            sql.rows(
                # This test's database only: the server may be shared with other suites.
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND (state LIKE 'idle in transaction%%' OR application_name = %s)",
                application,
            )
            == []
        )

        print(
            f"\ndaemon test: {len(keys)} partitions x {location.ROWS} rows, backfill"
            f" {backfill_status}; {len(runs)} backfill runs ({len(runs) - 1} + the killed"
            f" run's retry), schedule run {tick_run.run_id[:8]} {tick_run.status.value};"
            f" most runs writing at once {sampler.most} (pool limit {POOL_LIMIT},"
            f" {sampler.samples} samples); killed run {killed_run.run_id[:8]} (pid {pid},"
            f" backend {in_transaction[0][0]} mid-transaction) -> {killed_run.status.value},"
            f" retried as {retry.run_id[:8]} -> {retry.status.value}"
            f" {time.monotonic() - killed_at:.0f} s after the kill; wall time"
            f" {time.monotonic() - started_at:.0f} s"
        )
        print("killed run's last events:\n  " + "\n  ".join(fate))
        freed = [
            line.split(" - ")[-1]
            for line in daemon_log.read_text().splitlines()
            if f"slots for run {killed_run.run_id}" in line
        ]
        print(f"run monitoring: {freed or 'no slot of the killed run left to free'}")
    finally:
        instance.dispose()
