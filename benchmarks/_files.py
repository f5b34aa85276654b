"""The ``files`` section: a file into an existing table, the project's way (``Fetcher.batches``
and the writer, no dtypes given) next to ``psql \\copy`` of the same file into the same table,
and Parquet next to the server's binary COPY ceiling for the same rows. Every case runs in a
fresh process (its peak RSS is its own) with the table truncated before it; cases alternate
within a round and the median of the rounds counts."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pyarrow.parquet as pq

from ._files_data import NARROW_DDL, WIDE_DDL, write_csv, write_parquet
from ._measure import CaseFailed, Isolated, median, peak_rss_mb

#: The memory case reads a file this many times longer than the others (10M rows at 1M).
MEMORY_SCALE = 10
_TABLES = {"wide": WIDE_DDL, "narrow": NARROW_DDL}
# Run in the first round only: the 10x file takes ten times a round, pgloader ~2 min a run.
_ONCE = frozenset({"csv_wide_big_ours", "csv_wide_pgloader"})


@dataclass(frozen=True, slots=True)
class FileCase:
    name: str
    how: str  # ours | psql | ceiling | pgloader
    path: str
    table: str
    dsn: str
    schema: str


def run_files(
    *, rows: int, repeat: int, dsn: str, schema: str, say: Callable[[str], None]
) -> dict[str, Any]:
    """Generate the files, run every case ``repeat`` times, return medians and ratios."""
    data_dir = Path(tempfile.mkdtemp(prefix="bulk-assets-files-"))
    try:
        say(f"files: writing {rows:,}-row CSV and Parquet files in {data_dir}")
        wide_csv, narrow_csv = data_dir / "wide.csv", data_dir / "narrow.csv"
        parquet, big_csv = data_dir / "wide.parquet", data_dir / "wide_big.csv"
        write_csv(wide_csv, rows, wide=True)
        write_csv(narrow_csv, rows, wide=False)
        write_parquet(parquet, rows)
        write_csv(big_csv, rows * MEMORY_SCALE, wide=True)
        ceiling_file = data_dir / "wide.pgcopy"
        asyncio.run(_prepare(dsn, schema, parquet, ceiling_file))
        pgloader = shutil.which("pgloader")

        def case(name: str, how: str, path: Path, table: str) -> FileCase:
            return FileCase(name, how, str(path), f"files_{table}", dsn, schema)

        plan = [
            case("csv_wide_ours", "ours", wide_csv, "wide"),
            case("csv_wide_psql", "psql", wide_csv, "wide"),
            case("csv_narrow_ours", "ours", narrow_csv, "narrow"),
            case("csv_narrow_psql", "psql", narrow_csv, "narrow"),
            case("parquet_wide_ours", "ours", parquet, "wide"),
            case("parquet_wide_ceiling", "ceiling", ceiling_file, "wide"),
            case("csv_wide_big_ours", "ours", big_csv, "wide"),
        ]
        if pgloader:
            plan.append(case("csv_wide_pgloader", "pgloader", wide_csv, "wide"))
        sizes = {c.name: os.path.getsize(c.path) for c in plan}
        outcomes: dict[str, list[dict[str, Any]]] = {c.name: [] for c in plan}
        failed: dict[str, str] = {}
        isolated = Isolated()
        for number in range(1, repeat + 1):
            for spec in plan:
                if number > 1 and spec.name in _ONCE:
                    continue
                asyncio.run(_truncate(dsn, schema, spec.table))
                try:
                    outcome = isolated.run(run_file_case, spec)
                except CaseFailed as exc:
                    if spec.how != "pgloader":
                        raise
                    # Another tool failing (pgloader 3.6 speaks no SCRAM, nor Unix-socket
                    # URLs) is a finding to report, not a failure of the benchmark.
                    failed[spec.name] = str(exc).strip().splitlines()[-1][:300]
                    say(f"files round {number}/{repeat} {spec.name}: failed: {failed[spec.name]}")
                    del outcomes[spec.name]
                    continue
                outcomes[spec.name].append(outcome)
                say(
                    f"files round {number}/{repeat} {spec.name:<22} {outcome['rows']:>11,} rows "
                    f"{outcome['seconds']:8.3f} s peak {outcome['peak_rss_mb']:7.0f} MB "
                    f"load {outcome['load']}"
                )
        cases = {
            name: {
                "seconds": median([o["seconds"] for o in runs]),
                "rows": runs[0]["rows"],
                "rows_per_s": runs[0]["rows"] / median([o["seconds"] for o in runs]),
                "peak_rss_mb": max(o["peak_rss_mb"] for o in runs),
                "file_mb": sizes[name] / 2**20,
                "loads": [o["load"] for o in runs],
            }
            for name, runs in outcomes.items()
        }

        def ratio(faster: str, slower: str) -> float:
            return float(cases[slower]["seconds"] / cases[faster]["seconds"])

        def per_round(faster: str, slower: str) -> list[float]:
            """Each round's own ratio: its two cases ran one after the other, so a machine
            that slows down between rounds moves both."""
            pairs = zip(outcomes[faster], outcomes[slower], strict=False)
            return [float(s["seconds"] / f["seconds"]) for f, s in pairs]

        pairs = {
            "csv_wide_vs_psql": ("csv_wide_ours", "csv_wide_psql"),
            "csv_narrow_vs_psql": ("csv_narrow_ours", "csv_narrow_psql"),
            "parquet_vs_ceiling": ("parquet_wide_ours", "parquet_wide_ceiling"),
        }
        ratios = {
            **{key: ratio(*pair) for key, pair in pairs.items()},
            "memory_big_vs_small": float(
                cases["csv_wide_big_ours"]["peak_rss_mb"] / cases["csv_wide_ours"]["peak_rss_mb"]
            ),
        }
        rounds = {key: per_round(*pair) for key, pair in pairs.items()}
        return {
            "rows": rows,
            "repeat": repeat,
            "cases": cases,
            "ratios": ratios,
            "rounds": rounds,
            "failed": failed,
        }
    finally:
        asyncio.run(_drop(dsn, schema))
        shutil.rmtree(data_dir, ignore_errors=True)


async def _prepare(dsn: str, schema: str, parquet: Path, ceiling_file: Path) -> None:
    """The tables, and the ceiling's binary COPY file: the Parquet rows encoded once, untimed."""
    from resources._arrow_copy import encode_batch
    from resources._binary_copy import copy_file
    from resources._catalog import describe_table

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        for name, ddl in _TABLES.items():
            await conn.execute(f'DROP TABLE IF EXISTS "{schema}".files_{name}')
            await conn.execute(f'CREATE TABLE "{schema}".files_{name} {ddl}')
        info = await describe_table(conn, "files_wide", schema=schema)
        assert info is not None
        with ceiling_file.open("wb") as out:
            offset = 0
            header = copy_file(b"")[:-2]
            out.write(header)
            for batch in pq.ParquetFile(parquet).iter_batches(batch_size=50_000):
                payload = encode_batch(batch, info, batch.schema.names, row_offset=offset)
                assert payload is not None, "every column of the wide table has an Arrow encoder"
                out.write(payload)
                offset += batch.num_rows
            out.write(copy_file(b"")[-2:])
    finally:
        await conn.close()


async def _truncate(dsn: str, schema: str, table: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'TRUNCATE "{schema}".{table}')
        await conn.execute("CHECKPOINT")  # each case starts with no dirty buffers of another
    finally:
        await conn.close()


async def _drop(dsn: str, schema: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for name in _TABLES:
            await conn.execute(f'DROP TABLE IF EXISTS "{schema}".files_{name}')
    finally:
        await conn.close()


# What `Fetcher.batches` and `PostgresBulkWriter.write` import on first use.
_LOAD_IMPORTS = (
    "bulk_assets.fetch",
    "bulk_assets._fetch_arrow_read",
    "bulk_assets._fetch_arrow_csv",
    "bulk_assets._fetch_parquet",
    "bulk_assets._fetch_many",
    "resources",
    "resources._session",
    "resources._engine",
    "pyarrow.dataset",
)


def run_file_case(spec: FileCase) -> dict[str, Any]:
    """One load, in its own process: seconds, rows, peak RSS, the machine's load meanwhile.
    What a load imports is imported before the clock starts, for every case alike: Dagster
    (~1 s), and the data libraries the fetch and the writer import on first use (pandas,
    pyarrow's readers, asyncpg: ~0.5 s, a quarter of a 1M-row load, which `psql` and the
    ceiling never pay). A run worker pays them once per process, not per load."""
    import importlib

    for module in _LOAD_IMPORTS:
        importlib.import_module(module)
    started = time.perf_counter()
    if spec.how == "ours":
        rows = _ours(spec)
    elif spec.how == "psql":
        rows = _psql(spec)
    elif spec.how == "pgloader":
        rows = _pgloader(spec)
    else:
        rows = asyncio.run(_ceiling(spec))
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rows": rows,
        "peak_rss_mb": peak_rss_mb(),
        "load": round(os.getloadavg()[0], 2),
    }


def _ours(spec: FileCase) -> int:
    from bulk_assets.fetch import Fetcher
    from resources import PostgresBulkWriter

    with PostgresBulkWriter(dsn=spec.dsn) as writer:
        result = writer.write(spec.table, Fetcher().batches(spec.path), schema=spec.schema)
    return result.rows


def _psql(spec: FileCase) -> int:
    """``psql \\copy``: psql reads the file and streams it as CSV COPY data."""
    command = f"\\copy \"{spec.schema}\".{spec.table} FROM '{spec.path}' (FORMAT csv, HEADER)"
    out = subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", spec.dsn, "-c", command],
        check=True,
        capture_output=True,
        text=True,
    )
    del out
    return _count(spec)


def _pgloader(spec: FileCase) -> int:
    """pgloader's CSV loader into the existing table (its own parallel COPY)."""
    command = (
        f"LOAD CSV FROM '{spec.path}' WITH ENCODING utf-8 HAVING FIELDS "
        f"({', '.join(_columns(spec))}) INTO {spec.dsn}?{spec.schema}.{spec.table} "
        f"({', '.join(_columns(spec))}) WITH skip header = 1, fields optionally enclosed by "
        "'\"', fields terminated by ',';"
    )
    with tempfile.NamedTemporaryFile("w", suffix=".load", delete=False) as script:
        script.write(command)
    try:
        done = subprocess.run(["pgloader", "--quiet", script.name], capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise RuntimeError(f"pgloader exited {done.returncode}: {' / '.join(tail)}")
    finally:
        os.unlink(script.name)
    return _count(spec)


def _columns(spec: FileCase) -> list[str]:
    with Path(spec.path).open() as file:
        header = file.readline().strip()
    return [name.strip('"') for name in header.split(",")]


async def _ceiling(spec: FileCase) -> int:
    """The server's binary COPY of rows encoded beforehand: what no client can beat."""
    conn = await asyncpg.connect(spec.dsn)
    try:
        with open(spec.path, "rb") as source:
            status = await conn.copy_to_table(
                spec.table, schema_name=spec.schema, source=source, format="binary"
            )
    finally:
        await conn.close()
    return int(status.rsplit(" ", 1)[-1])


def _count(spec: FileCase) -> int:
    async def count() -> int:
        conn = await asyncpg.connect(spec.dsn)
        try:
            return int(await conn.fetchval(f'SELECT count(*) FROM "{spec.schema}".{spec.table}'))
        finally:
            await conn.close()

    return asyncio.run(count())


def render_files(files: dict[str, Any]) -> str:
    """The section as Markdown: a row per case, then the ratios against their targets."""
    lines = [
        f"## Files ({files['rows']:,} rows; median of {files['repeat']})",
        "",
        "| case | rows | file MB | seconds | rows/s | peak RSS MB | load (1 min) |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, case in files["cases"].items():
        lines.append(
            f"| {name} | {case['rows']:,} | {case['file_mb']:.0f} | {case['seconds']:.2f} | "
            f"{case['rows_per_s']:,.0f} | {case['peak_rss_mb']:.0f} | "
            f"{', '.join(str(x) for x in case['loads'])} |"
        )
    r = files["ratios"]

    def rounds(key: str) -> str:
        each = files.get("rounds", {}).get(key, [])
        if len(each) < 2:
            return ""
        listed = ", ".join(f"{x:.2f}" for x in each)
        return f"; per round {listed}, median {median(each):.2f}x"

    lines += [
        "",
        f"- wide CSV, ours vs `psql \\copy`: {r['csv_wide_vs_psql']:.2f}x"
        f"{rounds('csv_wide_vs_psql')} (target >= 1.5x)",
        f"- integers and short text, ours vs `psql \\copy`: {r['csv_narrow_vs_psql']:.2f}x"
        f"{rounds('csv_narrow_vs_psql')} (target >= 1.0x)",
        f"- Parquet, ours vs binary COPY ceiling: {r['parquet_vs_ceiling']:.2f}x"
        f"{rounds('parquet_vs_ceiling')} (target >= 0.9x)",
        f"- peak RSS, {MEMORY_SCALE}x rows vs 1x: {r['memory_big_vs_small']:.2f}x (target <= 1.2x)",
        *(f"- {name} failed: {why}" for name, why in files.get("failed", {}).items()),
        "",
    ]
    return "\n".join(lines)
