"""A whole benchmark: prepare the data once, run every case once per round (cases alternate,
so a slow minute on the machine hits all of them alike), then take medians."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import pickle
import platform
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import asyncpg
import psutil

from ._cases import (
    BATCH_ROWS,
    CLIENT_FILE,
    SAMPLE_ROWS,
    SERVER_FILE,
    STREAM_FACTOR,
    CaseSpec,
    cases_of,
    missing_optional,
    run_case,
    table_name,
)
from ._data import SHAPES, frame_to_tuples, insert_frame, keyed_frame, quote, update_frame
from ._data import update_rows as count_update_rows
from ._measure import CaseFailed, Isolated, median
from ._native import run_native

SECTIONS = {
    "narrow": ("narrow",),
    "wide": ("wide",),
    "update": ("update_narrow", "update_wide"),
    "stream": ("stream",),
    # Not a section of cases: one table, replaced three ways in this process (_native.py).
    "native": (),
}
_SETTINGS = ("shared_buffers", "max_wal_size", "synchronous_commit", "fsync", "wal_level")


@dataclass(frozen=True, slots=True)
class Options:
    rows: int
    repeat: int
    dsn: str
    source: str
    schema: str = "bulk_bench"
    only: tuple[str, ...] = tuple(SECTIONS)
    quick: bool = False
    keep_tables: bool = False
    sample_rows: int = SAMPLE_ROWS
    command: str = ""


def section_names(only: Sequence[str]) -> list[str]:
    return [name for key in SECTIONS if key in only for name in SECTIONS[key]]


def kind_of(section: str) -> str:
    return "narrow" if section == "stream" else section.removeprefix("update_")


def run_benchmarks(options: Options, *, progress: Any = None) -> dict[str, Any]:
    """Run the chosen sections and return the results (see ``render_markdown``)."""
    say = progress or (lambda line: print(line, file=sys.stderr, flush=True))
    sections = section_names(options.only)
    data_dir = Path(tempfile.mkdtemp(prefix="bulk-assets-bench-"))
    # The server writes and reads the ceiling's COPY file here, as its own OS user.
    data_dir.chmod(0o777)
    created_schema = False
    try:
        say(f"preparing {options.rows:,} rows per table in {data_dir}")
        server, created_schema = asyncio.run(_prepare(options, sections, data_dir))
        plan = _plan(options, sections, server["ceiling_source"], str(data_dir))
        rounds: dict[tuple[str, str], list[dict[str, Any]]] = {key: [] for key, _ in plan}
        failures: dict[tuple[str, str], str] = {}
        isolated = Isolated()
        for number in range(1, options.repeat + 1):
            for key, spec in plan:
                if key in failures:
                    continue
                try:
                    outcome = isolated.run(run_case, spec)
                except CaseFailed as exc:
                    if not _optional(spec):
                        raise
                    failures[key] = str(exc).strip().splitlines()[-1]
                    say(f"round {number}: {key[0]} {key[1]} failed: {failures[key]}")
                    continue
                rounds[key].append(outcome)
                say(
                    f"round {number}/{options.repeat} {key[0]:<14} {key[1]:<28} "
                    f"{outcome['rows']:>11,} rows {outcome['seconds']:9.3f} s "
                    f"peak {outcome['peak_rss_mb']:7.0f} MB"
                )
        server["checkpoint_between_cases"] = all(
            o.get("checkpoint", True) for outcomes in rounds.values() for o in outcomes
        )
        results = {
            "benchmark": {
                "rows": options.rows,
                "update_rows": count_update_rows(options.rows),
                "repeat": options.repeat,
                "quick": options.quick,
                "sample_rows": min(options.sample_rows, options.rows),
                "stream_factor": STREAM_FACTOR,
                "batch_rows": BATCH_ROWS,
                "process_per_case": isolated.start_method,
                "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "command": options.command,
            },
            "machine": machine(),
            "software": software(),
            "server": server,
            "sections": _aggregate(options, sections, plan, rounds, failures, server),
        }
        if "native" in options.only:
            say(f"native partitions: {options.rows:,} rows in 100 partitions")
            results["native"] = run_native(options.dsn, options.schema, options.rows)
        return results
    finally:
        if not options.keep_tables:
            asyncio.run(_drop(options, sections, created_schema))
        shutil.rmtree(data_dir, ignore_errors=True)


def _optional(spec: CaseSpec) -> bool:
    return any(
        c.optional
        for c in cases_of(spec.section, ceiling_source=spec.ceiling_source)
        if c.name == spec.case
    )


def _plan(
    options: Options, sections: Sequence[str], ceiling_source: str, data_dir: str
) -> list[tuple[tuple[str, str], CaseSpec]]:
    plan = []
    for section in sections:
        for case in cases_of(section, ceiling_source=ceiling_source):
            if case.optional and missing_optional(case.name):
                continue
            spec = CaseSpec(
                section=section,
                case=case.name,
                kind=kind_of(section),
                rows=options.rows,
                dsn=options.dsn,
                schema=options.schema,
                data_dir=data_dir,
                ceiling_source=ceiling_source,
                sample_rows=options.sample_rows,
            )
            plan.append(((section, case.name), spec))
    return plan


# -- preparation, untimed ---------------------------------------------------------------------


async def _prepare(
    options: Options, sections: Sequence[str], data_dir: Path
) -> tuple[dict[str, Any], bool]:
    """Server facts; the DataFrames pickled for the cases; a loaded ``<kind>_base`` table per
    kind; and the ceiling's binary COPY file of the same rows."""
    conn = await asyncpg.connect(options.dsn)
    try:
        server: dict[str, Any] = {
            "version": await conn.fetchval("SHOW server_version"),
            "source": options.source,
            "superuser": await conn.fetchval("SHOW is_superuser") == "on",
            "settings": {name: await conn.fetchval(f"SHOW {name}") for name in _SETTINGS},
        }
        exists = await conn.fetchval(
            "SELECT true FROM pg_namespace WHERE nspname = $1", options.schema
        )
        if not exists:
            await conn.execute(f"CREATE SCHEMA {quote(options.schema)}")
        ceiling_source = SERVER_FILE
        kinds = sorted({kind_of(s) for s in sections})
        for kind in kinds:
            shape = SHAPES[kind]
            frame = insert_frame(kind, options.rows)
            _pickle(frame, data_dir / f"{kind}_insert.pkl")
            if f"update_{kind}" in sections:
                _pickle(update_frame(kind, options.rows), data_dir / f"{kind}_update.pkl")
            if kind not in sections and f"update_{kind}" not in sections:
                continue  # stream only: its cases need no base table nor COPY file
            base = f"{kind}_base"
            await conn.execute(f"DROP TABLE IF EXISTS {quote(options.schema)}.{quote(base)}")
            await conn.execute(shape.create_sql(options.schema, base, keyed=True))
            await conn.copy_records_to_table(
                base,
                records=frame_to_tuples(keyed_frame(kind, options.rows)),
                columns=list(shape.keyed_columns),
                schema_name=options.schema,
            )
            await conn.execute(f"VACUUM ANALYZE {quote(options.schema)}.{quote(base)}")
            if kind in sections:
                ceiling_source = await _copy_file(
                    conn, options.schema, kind, data_dir, ceiling_source
                )
        server["ceiling_source"] = ceiling_source
        return server, not exists
    finally:
        await conn.close()


def _pickle(frame: Any, path: Path) -> None:
    with open(path, "wb") as f:
        pickle.dump(frame, f, protocol=pickle.HIGHEST_PROTOCOL)


async def _copy_file(
    conn: asyncpg.Connection, schema: str, kind: str, data_dir: Path, source: str
) -> str:
    """Write ``<kind>.bin``; by the server itself when it can, else through the client."""
    shape = SHAPES[kind]
    names = ", ".join(quote(c) for c in shape.columns)
    query = f"SELECT {names} FROM {quote(schema)}.{quote(kind + '_base')} ORDER BY id"
    path = str(data_dir / f"{kind}.bin")
    if source == SERVER_FILE:
        literal = "'" + path.replace("'", "''") + "'"
        try:
            await conn.execute(f"COPY ({query}) TO {literal} WITH (FORMAT binary)")
            return SERVER_FILE
        except asyncpg.PostgresError:
            # Not superuser (nor pg_write_server_files), or the server's disk is elsewhere.
            pass
    await conn.copy_from_query(query, output=path, format="binary")
    return CLIENT_FILE


async def _drop(options: Options, sections: Sequence[str], created_schema: bool) -> None:
    tables: set[str] = set()
    for section in sections:
        for source in (SERVER_FILE, CLIENT_FILE):
            for case in cases_of(section, ceiling_source=source):
                name = table_name(section, case.name)
                tables.update((name, f"{name}_warmup"))
        tables.add(f"{kind_of(section)}_base")
    conn = await asyncpg.connect(options.dsn)
    try:
        schema = quote(options.schema)
        for table in sorted(tables):
            await conn.execute(f"DROP TABLE IF EXISTS {schema}.{quote(table)}")
        if created_schema:
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema}")
    finally:
        await conn.close()


# -- results ----------------------------------------------------------------------------------


def _aggregate(
    options: Options,
    sections: Sequence[str],
    plan: Sequence[tuple[tuple[str, str], CaseSpec]],
    rounds: dict[tuple[str, str], list[dict[str, Any]]],
    failures: dict[tuple[str, str], str],
    server: dict[str, Any],
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    ceilings: dict[tuple[str, str], dict[str, Any]] = {}
    for section in sections:
        cases = cases_of(section, ceiling_source=server["ceiling_source"])
        rows: list[dict[str, Any]] = []
        skipped: list[dict[str, str]] = []
        # Ceilings first, so that every other case can be divided by its own.
        for case in sorted(cases, key=lambda c: not c.ceiling):
            key = (section, case.name)
            reason = missing_optional(case.name) if case.optional else None
            if reason or key in failures:
                skipped.append({"name": case.name, "reason": reason or failures[key]})
                continue
            outcomes = rounds[key]
            seconds = median([o["seconds"] for o in outcomes])
            count = outcomes[-1]["rows"]
            row: dict[str, Any] = {
                "name": case.name,
                "group": case.group,
                "ceiling": case.ceiling,
                "note": case.note,
                "rows": count,
                "seconds": seconds,
                "rows_per_s": count / seconds if seconds > 0 else 0.0,
                "peak_rss_mb": max(o["peak_rss_mb"] for o in outcomes),
                "start_rss_mb": median([o["start_rss_mb"] for o in outcomes]),
                "rows_in_table": outcomes[-1]["rows_in_table"],
                "rounds": [
                    {k: o[k] for k in ("seconds", "rows", "peak_rss_mb", "start_rss_mb")}
                    for o in outcomes
                ],
            }
            if "rows_changed" in outcomes[-1]:
                row["rows_changed"] = outcomes[-1]["rows_changed"]
            if outcomes[-1].get("sampled"):
                row["sampled"] = True
                row["extrapolated_seconds"] = options.rows / row["rows_per_s"]
            if case.ceiling:
                ceilings[(section, case.group)] = row
            reference = ceilings.get(
                ("narrow", "insert") if section == "stream" else (section, case.group)
            )
            row["ceiling_case"] = reference["name"] if reference else None
            row["ceiling_rows_per_s"] = reference["rows_per_s"] if reference else None
            row["x_ceiling"] = (
                row["rows_per_s"] / reference["rows_per_s"]
                if reference and reference["rows_per_s"]
                else None
            )
            row["x_ceiling_paired"] = _paired_ratio(row, reference)
            rows.append(row)
        order = [c.name for c in cases]
        rows.sort(key=lambda r: order.index(r["name"]))
        out.append(
            {
                "name": section,
                "title": _title(section, options.rows),
                "cases": rows,
                "skipped": skipped,
            }
        )
    return out


def _paired_ratio(row: dict[str, Any], reference: dict[str, Any] | None) -> float | None:
    """The median over rounds of the case's rate over its ceiling's rate in the same round.
    The machine's speed drifts (the wide ceiling ran at 494k and 750k rows/s on one day
    here); a case and its ceiling measured minutes apart in one round drift together, so
    their ratio is steadier than the ratio of two medians taken across rounds."""
    if reference is None or len(reference["rounds"]) != len(row["rounds"]):
        return None
    ratios = [
        (case["rows"] / case["seconds"]) / (ceiling["rows"] / ceiling["seconds"])
        for case, ceiling in zip(row["rounds"], reference["rounds"], strict=True)
        if case["seconds"] > 0 and ceiling["seconds"] > 0
    ]
    return median(ratios) if ratios else None


def _title(section: str, rows: int) -> str:
    if section == "narrow":
        return f"Narrow table users(id bigserial primary key, name text, email text): {rows:,} rows"
    if section == "wide":
        return (
            "Wide table (bigint key, int, float8, numeric(12,2), text, bool, timestamptz, date, "
            f"jsonb, uuid; 10% NULLs): {rows:,} rows"
        )
    if section.startswith("update_"):
        kind = section.removeprefix("update_")
        return (
            f"Update and upsert of {count_update_rows(rows):,} random keys (10%) of the "
            f"{rows:,}-row {kind} table; x ceiling: the server's own statement from a loaded table"
        )
    return (
        f"Streaming: write(mode='copy') of {rows * STREAM_FACTOR:,} rows from a generator vs "
        f"{rows:,} rows in one DataFrame (narrow table); x ceiling: the narrow table's"
    )


# -- where it ran -----------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    return {
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "ram_gb": round(psutil.virtual_memory().total / 1024**3, 1),
        "os": platform.platform(),
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def software() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in ("asyncpg", "pandas", "numpy", "pyarrow"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found
