"""A writer used before ``fork()`` works in the child, with connections of its own, and the
parent's keeps working: the child inherits the writer but not its event loop thread."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from typing import Any

import pytest

from resources import PostgresBulkWriter

# A child that hangs is killed after this long and fails the test.
CHILD_SECONDS = 60


def wait_for_child(pid: int) -> int:
    """The child's exit code; a child still running after CHILD_SECONDS is killed (-9)."""
    deadline = time.monotonic() + CHILD_SECONDS
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return -9


def backend_pid(writer: PostgresBulkWriter) -> int:
    return int(writer.fetch("SELECT pg_backend_pid() AS pid")[0]["pid"])


def written_by(db: Any, schema: str) -> list[tuple[int, str]]:
    rows = db.fetch(f'SELECT id, who FROM "{schema}".log ORDER BY id')
    return [(r["id"], r["who"]) for r in rows]


@pytest.mark.timeout(2 * CHILD_SECONDS)
def test_writer_used_before_os_fork_writes_in_child_and_parent(
    dsn: str, db: Any, schema: str
) -> None:
    db.execute(f'CREATE TABLE "{schema}".log (id int, who text)')
    with PostgresBulkWriter(dsn=dsn, pool_size=1) as writer:
        writer.write("log", [(1, "parent")], columns=["id", "who"], schema=schema)
        parent_backend = backend_pid(writer)

        pid = os.fork()
        if pid == 0:  # the child: report by exit code only, never return into pytest
            code = 1
            try:
                child_backend = backend_pid(writer)
                writer.write("log", [(2, "child")], columns=["id", "who"], schema=schema)
                # 3: the child used the parent's connection instead of one of its own.
                code = 3 if child_backend == parent_backend else 0
            finally:
                os._exit(code)

        assert wait_for_child(pid) == 0
        # The parent's connection is the one it had, and still in step with the server.
        assert backend_pid(writer) == parent_backend
        writer.write("log", [(3, "parent")], columns=["id", "who"], schema=schema)

    assert written_by(db, schema) == [(1, "parent"), (2, "child"), (3, "parent")]


def _write_in_child(writer: PostgresBulkWriter, schema: str) -> None:
    writer.write("log", [(2, "child")], columns=["id", "who"], schema=schema)
    writer.close()


@pytest.mark.timeout(2 * CHILD_SECONDS)
def test_writer_used_before_a_forked_multiprocessing_child(dsn: str, db: Any, schema: str) -> None:
    db.execute(f'CREATE TABLE "{schema}".log (id int, who text)')
    writer = PostgresBulkWriter(dsn=dsn)
    with writer:
        writer.write("log", [(1, "parent")], columns=["id", "who"], schema=schema)
        child = multiprocessing.get_context("fork").Process(
            target=_write_in_child, args=(writer, schema)
        )
        child.start()
        child.join(CHILD_SECONDS)
        if child.is_alive():
            child.kill()
            child.join()
        assert child.exitcode == 0
        writer.write("log", [(3, "parent")], columns=["id", "who"], schema=schema)

    assert written_by(db, schema) == [(1, "parent"), (2, "child"), (3, "parent")]
