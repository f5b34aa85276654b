"""Where a run's time goes, read from its event log's timestamps: each phase ends at the first
event of a kind (the queue, the launcher, the run worker, the step, the write, the checks)."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dagster import DagsterInstance
    from dagster._core.events.log import EventLogEntry

__all__ = ["PHASES", "breakdown", "event_counts", "run_span"]

# One event per check: the checks end at the last one.
CHECKS_DONE = "ASSET_CHECK_EVALUATION"
# (phase, the event that ends it: its first occurrence after the previous phase's end). A
# phase whose event a run lacks (the step process of an in-process run) is left out, and the
# next phase starts where the last one found ended.
PHASES: tuple[tuple[str, str], ...] = (
    ("launch request: the webserver creates the run", "RUN_ENQUEUED"),
    ("queued until the run coordinator launched it", "RUN_STARTING"),
    ("run worker process started, dagster imported", "ENGINE_EVENT"),
    ("definitions loaded, plan built", "RUN_START"),
    ("step process started, definitions loaded again", "STEP_WORKER_STARTED"),
    ("-> resource setup starts", "RESOURCE_INIT_STARTED"),
    ("resource setup (writer pool)", "RESOURCE_INIT_SUCCESS"),
    ("step start", "STEP_START"),
    ("write (generate + COPY) and its metadata", "ASSET_MATERIALIZATION"),
    ("checks", CHECKS_DONE),
    ("step success", "STEP_SUCCESS"),
    ("executor shutdown -> run success", "RUN_SUCCESS"),
)


def _entries(instance: DagsterInstance, run_id: str) -> list[EventLogEntry]:
    return list(instance.all_logs(run_id))


def _kind(entry: EventLogEntry) -> str:
    # The enum's name: its value keeps old spellings (RUN_SUCCESS is "PIPELINE_SUCCESS").
    return entry.dagster_event.event_type.name if entry.dagster_event else "LOG_MESSAGE"


def breakdown(instance: DagsterInstance, run_id: str, *, launched_at: float) -> dict[str, Any]:
    """The run's phases in seconds from ``launched_at`` (the launch request's wall time), the
    write's own seconds and rows/s, and the run's event-log writes."""
    entries = _entries(instance, run_id)
    phases, previous = [], launched_at
    for name, kind in PHASES:
        at = _boundary(entries, kind, after=previous)
        if at is not None:
            phases.append({"name": name, "seconds": at - previous})
            previous = at
    return {
        "run_id": run_id,
        "total": previous - launched_at,
        "phases": phases,
        "write": _write(entries),
        "event_counts": event_counts(instance, run_id, entries=entries),
        "events": [
            {"at": round(e.timestamp - launched_at, 3), "kind": _kind(e), "step": e.step_key}
            for e in entries
        ],
    }


def _boundary(entries: list[EventLogEntry], kind: str, *, after: float) -> float | None:
    """When the first ``kind`` event at or after ``after`` was written; for the checks, the
    last evaluation (one event per check)."""
    times = [e.timestamp for e in entries if _kind(e) == kind and e.timestamp >= after]
    if not times:
        return None
    return max(times) if kind == CHECKS_DONE else min(times)


def _write(entries: list[EventLogEntry]) -> dict[str, float]:
    """The materialization's own figures: the write's seconds and rows/s."""
    for entry in entries:
        event = entry.dagster_event
        if event is None or event.event_type.name != "ASSET_MATERIALIZATION":
            continue
        metadata = event.event_specific_data.materialization.metadata  # type: ignore[union-attr]
        return {
            key: float(metadata[key].value)  # type: ignore[arg-type]
            for key in ("rows_written", "seconds", "rows_per_second")
            if key in metadata
        }
    return {}


def event_counts(
    instance: DagsterInstance, run_id: str, *, entries: list[EventLogEntry] | None = None
) -> dict[str, int]:
    """Event-log records the run wrote, by kind, and their total."""
    counts = Counter(_kind(e) for e in entries or _entries(instance, run_id))
    return {"total": sum(counts.values()), **dict(counts.most_common())}


def run_span(instance: DagsterInstance, run_id: str) -> dict[str, float]:
    """When the run was enqueued (or created) and when it ended, as wall times."""
    record = instance.get_run_record_by_id(run_id)
    assert record is not None
    created = record.create_timestamp.timestamp()
    ended = record.end_time or record.update_timestamp.timestamp()
    return {"enqueued": created, "ended": ended}
