"""``dg launch`` as a user types it in the project: one partition, a partition range, and a run
of two steps, each loading into the test's schema. A run of one step executes in the run
worker's process; a run of two steps gives each step a process of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Db
from dagster import DagsterInstance
from dagster._core.instance.ref import InstanceRef

REPO = Path(__file__).resolve().parents[1]
DG = Path(sys.executable).parent / "dg"

# Dagster tooling, the same on any server: CI runs it once.
pytestmark = [pytest.mark.timeout(180), pytest.mark.once]


def dg_launch(home: Path, dsn: str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "BULK_ASSETS_EMBEDDED_POSTGRES"}
    env.update(DAGSTER_HOME=str(home), DATABASE_URL=dsn, PYTHONPATH=str(REPO))
    done = subprocess.run(
        [str(DG), "launch", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


def engine_events(home: Path) -> list[list[str]]:
    """Each run's engine-event messages, oldest run first."""
    with DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        records = sorted(instance.get_run_records(), key=lambda r: r.create_timestamp)
        return [
            [
                e.message
                for e in instance.all_logs(record.dagster_run.run_id)
                if e.dagster_event is not None and e.dagster_event.event_type.name == "ENGINE_EVENT"
            ]
            for record in records
        ]


def test_one_partition_and_a_range_load_in_the_run_worker(
    tmp_path: Path, search_path_dsn: str, schema: str, db: Db
) -> None:
    dg_launch(tmp_path, search_path_dsn, "--assets", "events", "--partition", "2026-01-05")
    day = db.fetch(
        f"SELECT count(*) AS n, min(occurred_at)::date AS first, max(occurred_at)::date AS last"
        f' FROM "{schema}".events'
    )[0]
    assert (day["n"], str(day["first"]), str(day["last"])) == (5000, "2026-01-05", "2026-01-05")

    dg_launch(
        tmp_path,
        search_path_dsn,
        *("--assets", "users", "--partition-range", "0000001-0010000...0010001-0020000"),
    )
    users = db.fetch(f'SELECT count(*) AS n, min(id) AS lo, max(id) AS hi FROM "{schema}".users')
    assert tuple(users[0]) == (20_000, 1, 20_000)

    events_run, users_run = engine_events(tmp_path)
    for messages in (events_run, users_run):
        assert any(m.startswith("Executing steps in process") for m in messages), messages
        assert not any("multiprocess" in m for m in messages), messages


def test_a_run_of_two_steps_gives_each_a_process(
    tmp_path: Path, search_path_dsn: str, schema: str, db: Db
) -> None:
    dg_launch(tmp_path, search_path_dsn, "--assets", "users", "--partition", "0000001-0010000")
    dg_launch(tmp_path, search_path_dsn, "--assets", "cities,user_email_updates")
    assert db.fetchval(f'SELECT count(*) FROM "{schema}".cities') > 0
    moved = db.fetchval(f"SELECT count(*) FROM \"{schema}\".users WHERE email LIKE '%example.org'")
    # Every 10th id of the first 10,000 that the partition loaded.
    assert moved == 1_000
    messages = engine_events(tmp_path)[-1]
    assert any(m.startswith("Executing steps using multiprocess") for m in messages), messages
