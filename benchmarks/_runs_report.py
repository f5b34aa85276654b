"""The runs benchmark as text: the targets, then where a one-partition run's time goes."""

from __future__ import annotations

from typing import Any

__all__ = ["render_runs"]


def render_runs(results: dict[str, Any]) -> str:
    m = results["machine"]
    targets = results["targets"]
    lines = [
        "",
        "Runs in Dagster (dg dev, launched through GraphQL as the UI launches them)",
        f"machine: {m['cpu']}, {m['logical_cores']} logical cores, {m['ram_gb']} GB RAM;"
        f" load before {results['load_before']['loadavg']}, after"
        f" {results['load_after']['loadavg']}; dg dev ready in"
        f" {results['dg_dev_ready_seconds']:.1f} s",
        "",
    ]
    for asset, summary in results.get("one_partition", {}).items():
        write = summary["write"]
        lines.append(
            f"one partition of {asset}: {summary['total']:.2f} s median of {summary['runs']}"
            f" {summary['totals']} (target {targets['one_partition']:.0f} s); the write itself"
            f" {write.get('seconds', 0):.3f} s, {write.get('rows_written', 0):,.0f} rows at"
            f" {write.get('rows_per_second', 0):,.0f} rows/s; event-log writes"
            f" {summary['event_counts']['total']}"
        )
        for phase in summary["phases"]:
            lines.append(f"    {phase['seconds']:7.2f} s  {phase['name']}")
        counts = {k: v for k, v in summary["event_counts"].items() if k != "total"}
        lines.append("    event log: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    for key in ("events_backfill", "users_backfill"):
        b = results.get(key)
        if b is None:
            continue
        if not b["finished"]:
            lines.append(
                f"backfill of {b['partitions']} {b['asset']} partitions: unfinished after"
                f" {b['after']:.0f} s (target {targets[key]:.0f} s), runs {b['runs_by_status']}"
            )
            continue
        lines.append(
            f"backfill of {b['partitions']} {b['asset']} partitions in {b['runs']} run(s):"
            f" {b['to_last_run_success']:.1f} s to the last RUN_SUCCESS (target"
            f" {targets[key]:.0f} s), backfill {b['status']} after"
            f" {b['to_backfill_completed']:.1f} s; first run enqueued after"
            f" {b['to_first_run_enqueued']:.1f} s; a run {b['run_seconds_median']:.1f} s"
            f" (median), {b['event_log_writes_per_run']:.0f} event-log writes per run"
        )
        counts = {k: v for k, v in b["event_counts"].items() if k != "total"}
        lines.append("    event log: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    lines.append(f"rows in the tables after: {results['rows_in_tables']}")
    return "\n".join(lines) + "\n"
