"""Steps on Celery workers: one run of six dataset assets on ``celery_executor``, with
RabbitMQ as broker and two workers started here. Every table holds exactly its rows, both
workers ran steps (from the event log's "Celery worker" of each step), and the pool
``postgres_writes`` (limit 3 on the instance) held across workers (pg_stat_activity sampled
for the writers' application_name)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from conftest import REPO, Db
from dagster import DagsterEventType, DagsterInstance, execute_job
from dagster import reconstructable as make_reconstructable

# Dagster's Celery executor, the same on any server: CI runs it once.
pytestmark = pytest.mark.once

pytest.importorskip("dagster_celery", reason="needs the celery extra: pip install -e '.[celery]'")

BROKER_HOST, BROKER_PORT = "127.0.0.1", 5672
BROKER = f"pyamqp://guest:guest@{BROKER_HOST}:{BROKER_PORT}//"
POOL_LIMIT = 3
WORKERS = ("w1", "w2")
# Each worker runs two steps at a time: four slots for six steps, so the pool's limit of 3,
# not the workers, decides how many write at once.
WORKER_CONCURRENCY = 2


def _broker_up() -> bool:
    try:
        socket.create_connection((BROKER_HOST, BROKER_PORT), timeout=3).close()
    except OSError:
        return False
    return True


@pytest.fixture
def broker() -> str:
    if not _broker_up():
        reason = (
            f"no RabbitMQ on {BROKER_HOST}:{BROKER_PORT} (Debian: apt-get install rabbitmq-server)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return BROKER


def _executor_config(broker: str, queue: str) -> dict[str, Any]:
    # A queue of the test's own: workers of other runs on the same broker never take its tasks.
    return {
        "broker": broker,
        "backend": "rpc://",
        "config_source": {"task_default_queue": queue, "worker_prefetch_multiplier": 1},
    }


@pytest.fixture
def dagster_home(tmp_path: Path) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(f"concurrency:\n  pools:\n    default_limit: {POOL_LIMIT}\n")
    # Create the SQLite storages here, once: workers that open a fresh home at the same
    # moment would each stamp its schema version.
    with DagsterInstance.from_config(str(home)) as instance:
        instance.get_runs(limit=1)
        instance.event_log_storage.get_concurrency_keys()
    return home


class Workers:
    """``dagster-celery worker start`` processes, each in a session of its own so that its
    celery children stop with it."""

    def __init__(self) -> None:
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}

    def start(self, name: str, config: Path, queue: str, env: dict[str, str], log: Path) -> None:
        cli = Path(sys.executable).with_name("dagster-celery")
        argv = [
            str(cli), "worker", "start", "-A", "dagster_celery.app", "-y", str(config),
            "-q", queue, "-n", name, "-l", "INFO",
            "--", f"--concurrency={WORKER_CONCURRENCY}", "--without-mingle", "--without-gossip",
        ]  # fmt: skip
        self.logs[name] = log
        with log.open("wb") as out:
            self.procs[name] = subprocess.Popen(
                argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def wait_ready(self, within: float) -> None:
        deadline = time.monotonic() + within
        for name, log in self.logs.items():
            while " ready." not in log.read_text(errors="replace"):
                proc = self.procs[name]
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"worker {name} did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.2)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


class Sampler(threading.Thread):
    """Counts the server sessions whose application_name starts with ``prefix``, every 50 ms."""

    def __init__(self, dsn: str, prefix: str) -> None:
        super().__init__(daemon=True)
        self.dsn, self.prefix = dsn, prefix
        self.stop_event = threading.Event()
        self.peak = 0
        self.seen: set[str] = set()

    def run(self) -> None:
        asyncio.run(self._sample())

    async def _sample(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            while not self.stop_event.is_set():
                names = await conn.fetch(
                    "SELECT application_name FROM pg_stat_activity "
                    "WHERE starts_with(application_name, $1)",
                    self.prefix,
                )
                self.peak = max(self.peak, len(names))
                self.seen.update(r["application_name"] for r in names)
                await asyncio.sleep(0.05)
        finally:
            await conn.close()


@pytest.fixture
def workers() -> Iterator[Workers]:
    started = Workers()
    try:
        yield started
    finally:
        started.stop()


def test_steps_spread_over_two_celery_workers_within_the_pool_limit(
    broker: str,
    dagster_home: Path,
    workers: Workers,
    search_path_dsn: str,
    db: Db,
    schema: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import _celery_defs as celery_defs  # imported here: it needs dagster_celery

    tag = uuid.uuid4().hex[:8]
    queue, app = f"bulk-assets-{tag}", f"bulk-{tag}"
    config = tmp_path / "celery.yaml"
    config.write_text(
        "execution:\n  config:\n"
        f"    broker: '{broker}'\n    backend: 'rpc://'\n"
        f"    config_source:\n      task_default_queue: '{queue}'\n"
        "      worker_prefetch_multiplier: 1\n"
    )
    pythonpath = os.pathsep.join([str(REPO / "tests"), str(REPO)])
    base_env = {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "PYTHONPATH": pythonpath,
        # dagster-celery runs `celery` from PATH: the one installed beside this Python.
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "CELERY_TEST_DSN": search_path_dsn,
    }
    for name in WORKERS:
        env = {**base_env, "CELERY_TEST_APP": f"{app}-{name}"}
        workers.start(name, config, queue, env, tmp_path / f"{name}.log")
    workers.wait_ready(within=90)

    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    monkeypatch.setenv("CELERY_TEST_DSN", search_path_dsn)
    monkeypatch.setenv("CELERY_TEST_APP", f"{app}-orchestrator")
    sampler = Sampler(search_path_dsn, app)
    sampler.start()
    started = time.monotonic()
    try:
        with DagsterInstance.get() as instance:
            result = execute_job(
                make_reconstructable(celery_defs.celery_load),
                instance=instance,
                run_config={"execution": {"config": _executor_config(broker, queue)}},
                raise_on_error=False,
            )
            run_id = result.run_id
            success = result.success
            placements = _placements(instance, run_id)
    finally:
        sampler.stop_event.set()
        sampler.join(10)
    seconds = time.monotonic() - started

    print(f"\ncelery run {run_id}: {seconds:.1f} s, peak writers {sampler.peak}")
    for step, worker in sorted(placements.items()):
        print(f"  {step:<10} ran on {worker}")
    assert success, "\n".join(log.read_text()[-2000:] for log in workers.logs.values())

    for i in range(celery_defs.STEPS):
        rows = db.fetchval(f'SELECT count(*) FROM "{schema}".celery_{i}')
        lo, hi = db.fetch(f'SELECT min(id), max(id) FROM "{schema}".celery_{i}')[0]
        assert (rows, lo, hi) == (
            celery_defs.ROWS,
            i * celery_defs.ROWS,
            (i + 1) * celery_defs.ROWS - 1,
        )

    assert set(placements) == {f"celery_{i}" for i in range(celery_defs.STEPS)}
    hosts = {worker.split("@")[0] for worker in placements.values()}
    assert hosts == set(WORKERS), f"steps ran on {hosts}, expected both of {WORKERS}"
    # Each writing step holds one session (pool_size=1) named after its worker.
    assert {name.rsplit("-", 1)[1] for name in sampler.seen} == set(WORKERS)
    assert 2 <= sampler.peak <= POOL_LIMIT, f"peak writers {sampler.peak}, limit {POOL_LIMIT}"


def _placements(instance: DagsterInstance, run_id: str) -> dict[str, str]:
    """Step key -> the Celery worker (name@host) that ran it, from the engine event that each
    worker reports when it takes a step."""
    placed: dict[str, str] = {}
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        event = entry.dagster_event
        data = event.engine_event_data if event is not None else None
        worker = data.metadata.get("Celery worker") if data is not None else None
        if entry.step_key is not None and worker is not None:
            placed[entry.step_key] = str(worker.value)
    return placed


def test_celery_cli_is_installed() -> None:
    assert shutil.which("dagster-celery", path=str(Path(sys.executable).parent))
