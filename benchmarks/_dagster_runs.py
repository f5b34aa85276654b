"""Real Dagster processes driven as the UI drives them: start a webserver and daemon (or
``dg dev``, which starts both) on a DAGSTER_HOME, launch runs and backfills through the
webserver's GraphQL API, wait for them. Shared by the runs benchmark and the daemon test."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = [
    "BACKFILL",
    "BACKFILL_STATUS",
    "LAUNCH_RUN",
    "START_SCHEDULE",
    "Processes",
    "free_port",
    "graphql",
    "launch_backfill",
    "launch_run",
    "started",
    "wait_for",
    "with_database",
]

BACKFILL = """
mutation LaunchPartitionBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on PartitionKeysNotFoundError { message }
    ... on InvalidSubsetError { message }
    ... on UnauthorizedError { message }
  }
}"""
# What the UI's Materialize button sends for one partition of one asset.
LAUNCH_RUN = """
mutation LaunchRun($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message stack }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on UnauthorizedError { message }
  }
}"""
START_SCHEDULE = """
mutation StartSchedule($scheduleSelector: ScheduleSelector!) {
  startSchedule(scheduleSelector: $scheduleSelector) {
    __typename
    ... on ScheduleStateResult { scheduleState { status } }
    ... on PythonError { message }
    ... on UnauthorizedError { message }
  }
}"""
BACKFILL_STATUS = """
query BackfillStatus($backfillId: String!) {
  partitionBackfillOrError(backfillId: $backfillId) {
    __typename
    ... on PartitionBackfill { status }
    ... on PythonError { message }
  }
}"""
_LOCATION_STATUS = """
query Locations {
  workspaceOrError {
    __typename
    ... on Workspace { locationEntries { name loadStatus
      locationOrLoadError { __typename ... on PythonError { message } } } }
  }
}"""


def with_database(url: str, name: str, **query: str) -> str:
    """``url`` with its database replaced by ``name`` and ``query`` added to its parameters
    (a Unix-socket URL keeps its ``host=``)."""
    parts = urlsplit(url)
    params = {**dict(parse_qsl(parts.query)), **query}
    return urlunsplit(parts._replace(path=f"/{name}", query=urlencode(params)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(what: str, check: Callable[[], Any], timeout: float, every: float = 0.5) -> Any:
    """``check()``'s first truthy value, polled every ``every`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def graphql(port: int, query: str, **variables: Any) -> dict[str, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.load(response)
    if body.get("errors"):
        raise AssertionError(f"GraphQL errors: {body['errors']}")
    return body["data"]  # type: ignore[no-any-return]


def location_loaded(port: int, location: str) -> bool:
    """Whether the webserver answers and has loaded ``location`` without error."""
    try:
        data = graphql(port, _LOCATION_STATUS)["workspaceOrError"]
    except OSError:  # the webserver is still starting
        return False
    for entry in data.get("locationEntries", []):
        if entry["name"] == location and entry["loadStatus"] == "LOADED":
            loaded = entry["locationOrLoadError"] or {}
            if loaded.get("__typename") == "PythonError":
                raise AssertionError(f"code location {location} failed: {loaded['message']}")
            return True
    return False


def launch_run(
    port: int, location: str, asset: str, *, partition: str | None, repository: str
) -> str:
    """One run of ``asset`` (its checks included), as the UI's Materialize button launches it;
    returns the run id."""
    tags = [] if partition is None else [{"key": "dagster/partition", "value": partition}]
    launched = graphql(
        port,
        LAUNCH_RUN,
        executionParams={
            "selector": {
                "repositoryLocationName": location,
                "repositoryName": repository,
                "jobName": "__ASSET_JOB",
                "assetSelection": [{"path": [asset]}],
            },
            "mode": "default",
            "runConfigData": "{}",
            "executionMetadata": {"tags": tags},
        },
    )["launchRun"]
    if launched["__typename"] != "LaunchRunSuccess":
        raise AssertionError(f"launchRun failed: {launched}")
    return str(launched["run"]["runId"])


def launch_backfill(port: int, asset: str, partitions: Sequence[str]) -> str:
    """A backfill of ``partitions`` of ``asset``, as the UI launches one; returns its id."""
    launched = graphql(
        port,
        BACKFILL,
        backfillParams={
            "assetSelection": [{"path": [asset]}],
            "partitionNames": list(partitions),
            "fromFailure": False,
            "tags": [],
        },
    )["launchPartitionBackfill"]
    if launched["__typename"] != "LaunchBackfillSuccess":
        raise AssertionError(f"launchPartitionBackfill failed: {launched}")
    return str(launched["backfillId"])


@dataclass
class Processes:
    """Started processes by name, each in a session of its own (code servers and run
    workers go with it), and their logs."""

    popen: dict[str, subprocess.Popen[bytes]]
    logs: dict[str, Path]

    def tail(self, lines: int = 60) -> str:
        return "\n".join(
            f"----- {name} log (last {lines} lines) -----\n"
            + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            for name, path in self.logs.items()
        )


@contextmanager
def started(
    commands: Mapping[str, Sequence[str | Path]], *, env: Mapping[str, str], cwd: Path, logs: Path
) -> Iterator[Processes]:
    """Start ``commands`` (name -> argv), logging to ``logs/<name>.log``; on exit SIGTERM each
    one's process group, then SIGKILL what is left after 30 s."""
    files: dict[str, IO[bytes]] = {n: (logs / f"{n}.log").open("wb") for n in commands}
    popen = {
        n: subprocess.Popen(
            [str(a) for a in argv],
            cwd=cwd,
            env=dict(env),
            stdout=files[n],
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for n, argv in commands.items()
    }
    try:
        yield Processes(popen, {n: logs / f"{n}.log" for n in commands})
    finally:
        for process in popen.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in popen.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for file in files.values():
            file.close()
