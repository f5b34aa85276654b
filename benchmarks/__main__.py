"""``python -m benchmarks``: how fast each way of loading rows into PostgreSQL is, next to
what the server itself manages; see ``--help``."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from ._files import render_files, run_files
from ._report import render_markdown, render_text
from ._run import SECTIONS, Options, run_benchmarks
from ._runs import CASES as RUNS_CASES
from ._runs_report import render_runs

# Not row sections, run only when named: `dg dev` and real runs (benchmarks/_runs.py), and
# files generated on disk (benchmarks/_files.py).
RUNS = "runs"
FILES = "files"

DEFAULT_ROWS = 1_000_000
# --quick: enough rows to exercise every case, few enough to finish in seconds.
QUICK_ROWS = 2_000


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=(
            "Time bulk loads into PostgreSQL: one row at a time, raw asyncpg, the "
            "project's writer, and the server's own COPY as the ceiling."
        ),
    )
    parser.add_argument(
        "--rows",
        type=int,
        help=f"rows per table (default {DEFAULT_ROWS:,}; --quick {QUICK_ROWS:,})",
    )
    parser.add_argument(
        "--repeat", type=int, help="rounds; the median counts (default 3; --quick 1)"
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: tiny tables, one round")
    parser.add_argument(
        "--only",
        action="append",
        choices=[*SECTIONS, FILES, RUNS],
        help=(
            "run only this section (repeatable); 'files' (CSV and Parquet against psql \\copy "
            "and the COPY ceiling, ~2 GB of files at 1M rows) and 'runs' (Dagster runs "
            "through dg dev, about 6 minutes) run only when named"
        ),
    )
    parser.add_argument(
        "--runs-case",
        action="append",
        choices=RUNS_CASES,
        help="with --only runs: run only this case (repeatable; default all)",
    )
    parser.add_argument("--json", type=Path, help="write every number to this file")
    parser.add_argument(
        "--markdown", type=Path, help="write the report as Markdown (BENCHMARKS.md)"
    )
    parser.add_argument(
        "--dsn", help="PostgreSQL URL; default: DATABASE_URL, else the embedded server"
    )
    parser.add_argument(
        "--schema", default="bulk_bench", help="schema of the tables (default bulk_bench)"
    )
    parser.add_argument(
        "--rtt",
        type=float,
        metavar="MS",
        help=(
            "instead of the sections: time 1,000-row writes of every mode and 200k-row loads "
            "through a proxy adding 0 and MS ms of round-trip time, and count round trips"
        ),
    )
    parser.add_argument(
        "--keep-tables", action="store_true", help="leave the last round's tables in place"
    )
    return parser.parse_args(argv)


def resolve_dsn(given: str | None) -> tuple[str, str]:
    """The DSN and where it came from, for the report (the DSN itself is never printed)."""
    if given:
        return given, "--dsn"
    from_env = os.environ.get("DATABASE_URL")
    if from_env:
        return from_env, "DATABASE_URL"
    from resources.embedded_postgres import EmbeddedPostgres

    server = EmbeddedPostgres.default()
    return server.ensure_running(), f"embedded PostgreSQL ({server.data_dir})"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    rows = args.rows or (QUICK_ROWS if args.quick else DEFAULT_ROWS)
    repeat = args.repeat or (1 if args.quick else 3)
    if rows < 1 or repeat < 1:
        print("--rows and --repeat must be at least 1", file=sys.stderr)
        return 2
    dsn, source = resolve_dsn(args.dsn)
    if args.rtt is not None:
        return _round_trips(args, dsn)
    only = args.only or list(SECTIONS)
    results: dict[str, object] = {}
    if RUNS in only:
        from ._runs import run_runs_benchmark

        def say(line: str) -> None:
            print(line, file=sys.stderr, flush=True)

        results[RUNS] = runs = run_runs_benchmark(
            dsn=dsn, repeat=args.repeat or 3, say=say, cases=args.runs_case or RUNS_CASES
        )
        print(render_runs(runs), end="")
        only = [s for s in only if s != RUNS]
    if FILES in only:
        results[FILES] = _files(args, dsn, rows, repeat)
        only = [s for s in only if s != FILES]
    if only:
        results.update(_rows(args, dsn, source, rows, repeat, only, argv))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def _files(args: argparse.Namespace, dsn: str, rows: int, repeat: int) -> dict[str, object]:
    """The files section: CSV and Parquet files loaded next to psql \\copy and the ceiling."""
    files = run_files(
        rows=rows,
        repeat=repeat,
        dsn=dsn,
        schema=args.schema,
        say=lambda line: print(line, file=sys.stderr, flush=True),
    )
    report = render_files(files)
    print(report)
    if args.markdown:
        args.markdown.with_suffix(".files.md").write_text(report)
    return files


def _rows(
    args: argparse.Namespace,
    dsn: str,
    source: str,
    rows: int,
    repeat: int,
    only: Sequence[str],
    argv: Sequence[str] | None,
) -> dict[str, object]:
    """The row sections: every case of each, ``repeat`` rounds."""
    shown = [a for a in (argv if argv is not None else sys.argv[1:])]
    if "--dsn" in shown:
        # Keep a password out of the report.
        shown[shown.index("--dsn") + 1 : shown.index("--dsn") + 2] = ["..."]
    options = Options(
        rows=rows,
        repeat=repeat,
        dsn=dsn,
        source=source,
        schema=args.schema,
        only=tuple(only),
        quick=args.quick,
        keep_tables=args.keep_tables,
        command=shlex.join(["python", "-m", "benchmarks", *shown]),
    )
    results = run_benchmarks(options)
    print(render_text(results), end="")
    if args.markdown:
        args.markdown.write_text(render_markdown(results))
    return results


def _round_trips(args: argparse.Namespace, dsn: str) -> int:
    from ._rtt import render_rtt, run_rtt

    if args.rtt <= 0:
        print("--rtt must be more than 0 ms", file=sys.stderr)
        return 2
    # 7 rounds: the ratio of one pair of 200k-row loads swings by 0.3 on a shared machine.
    results = run_rtt(dsn, args.schema, args.rtt, big=not args.quick, repeat=args.repeat or 7)
    print(render_rtt(results), end="")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
