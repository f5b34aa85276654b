#!/usr/bin/env python3
"""Project commands that set themselves up: only Python >= 3.11 is needed beforehand.

Usage:
    python3 tasks.py ui [dg dev args...]         e.g. -p 3001 -h 0.0.0.0
    python3 tasks.py test [pytest args...]       e.g. -k copy -x
    python3 tasks.py lint [paths...]             ruff check, ruff format --check, mypy (tests too)
    python3 tasks.py pg [status|stop|dsn|reset]  the UI's embedded PostgreSQL
    python3 tasks.py bench [benchmark args...]   e.g. --rows 200000 --only narrow --json out.json

Every command first creates .venv (if missing) and runs `pip install -e '.[dev]'` into it
when pyproject.toml changed since the last install; `bench` adds the `bench` extra (the
other loaders it measures). `ui` uses DAGSTER_HOME=.dagster_home unless set, and starts the
shared embedded PostgreSQL unless DATABASE_URL is set; so does `bench` (unless --dsn is
given), which runs `python -m benchmarks` against it. `test` installs Azurite (the Azure
emulator of the az:// tests) into .venv/azurite with npm when npm is there. `ui` and `test` set
BULK_ASSETS_EMBEDDED_POSTGRES=1: only there may a writer without a DSN use the embedded server.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent
VENV = REPO / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
# Holds the sha256 of the pyproject.toml last installed: a changed file means re-install.
STAMP = VENV / ".bulk-assets-installed"


def step(message: str) -> None:
    # stderr: stdout belongs to the command, e.g. `psql "$(python3 tasks.py pg dsn --tcp)"`.
    print(f"==> {message}", file=sys.stderr, flush=True)


def shown(argv: list[str | Path]) -> str:
    parts = []
    for arg in argv:
        path = Path(arg)
        if path.is_absolute() and path.is_relative_to(REPO):
            arg = path.relative_to(REPO)
        parts.append(str(arg))
    return shlex.join(parts)


def run(argv: list[str | Path], *, env: dict[str, str] | None = None) -> None:
    """Run a set-up command (its output to stderr, like the banners); on failure exit with
    its exit code."""
    code = subprocess.call([str(a) for a in argv], cwd=REPO, env=env, stdout=sys.stderr)
    if code != 0:
        print(f"tasks.py: `{shown(argv)}` failed with exit code {code}", file=sys.stderr)
        raise SystemExit(code)


def replace_process(argv: list[str | Path], *, env: dict[str, str] | None = None) -> int:
    """Become the command (signals and exit code are its own); the caller returns its code."""
    step(shown(argv))
    args = [str(a) for a in argv]
    os.chdir(REPO)
    if os.name == "posix":
        # Python ignores SIGPIPE and SIGXFSZ and exec keeps that; the command should not
        # inherit it (subprocess restores them the same way).
        for name in ("SIGPIPE", "SIGXFSZ"):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
        os.execve(args[0], args, env if env is not None else os.environ)
    return subprocess.call(args, env=env)


def ensure_venv(extras: tuple[str, ...] = ("dev",)) -> None:
    if not PYTHON.exists():
        step(f"creating .venv with Python {sys.version.split()[0]} ({sys.executable})")
        code = subprocess.call([sys.executable, "-m", "venv", str(VENV)], stdout=sys.stderr)
        if code != 0:
            print(
                "tasks.py: could not create .venv; on Debian/Ubuntu install python3-venv",
                file=sys.stderr,
            )
            raise SystemExit(code)
    digest = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()
    try:
        stamp = STAMP.read_text().split()
    except FileNotFoundError:
        stamp = []
    # The stamp: the pyproject.toml digest installed, then the extras installed with it.
    if stamp[:1] == [digest] and set(extras) <= set(stamp[1:]):
        step(".venv is up to date with pyproject.toml")
        return
    wanted = sorted({*extras, *(stamp[1:] if stamp[:1] == [digest] else ())})
    target = f".[{','.join(wanted)}]"
    step(f"installing the project into .venv: pip install -e '{target}'")
    run(
        [PYTHON, "-m", "pip", "install", "--disable-pip-version-check", "-q", "-e", target],
    )
    # Written only after a successful install, so an interrupted one is retried.
    STAMP.write_text(" ".join([digest, *wanted]) + "\n")


# The writer falls back to the embedded PostgreSQL only when this is set: a deployment that
# lost DATABASE_URL must fail, not load into a throwaway server.
EMBEDDED_OPT_IN = {"BULK_ASSETS_EMBEDDED_POSTGRES": "1"}


def dagster_env() -> dict[str, str]:
    """The environment of `ui` and `pg`: DAGSTER_HOME=.dagster_home unless set, so that both
    name the same embedded server ($DAGSTER_HOME/embedded-postgres)."""
    env = dict(os.environ)
    # dagster requires an absolute DAGSTER_HOME.
    home = Path(env.get("DAGSTER_HOME") or REPO / ".dagster_home").expanduser().resolve()
    env["DAGSTER_HOME"] = str(home)
    return env


# Every dataset asset is in the concurrency pool "postgres_writes": a backfill of 100
# partitions then keeps at most 4 writers (4 x the writer's pool_size of 4 connections) busy.
WRITE_POOL_LIMIT = 4
# The run queue is drained every second rather than Dagster's 5: a run from the Materialize
# button waited 2.5 s on average (up to 5) before it started, a third of a one-partition run
# (BENCHMARKS.md, "Runs in Dagster"). Each pass is a few queries of the local run storage.
# op_granularity_run_buffer lets 8 more runs start (their process start and definitions load,
# 1.3 s of CPU each) while 4 write, and up to 12 runs are in flight: a 100-run backfill took
# 225 s (last run) where 4 in flight took 380 s and 8 with a buffer of 4 took 271 s.
INSTANCE_CONFIG = f"""\
# Written by `python3 tasks.py ui` when missing; edit freely, it is not overwritten.
concurrency:
  pools:
    default_limit: {WRITE_POOL_LIMIT}
    op_granularity_run_buffer: {2 * WRITE_POOL_LIMIT}
  runs:
    max_concurrent_runs: {3 * WRITE_POOL_LIMIT}
run_queue:
  dequeue_interval_seconds: 1
"""
# What earlier versions wrote: a file still holding exactly one of these is brought up to
# date; an edited one is the user's.
_EARLIER_INSTANCE_CONFIGS = (
    f"""\
# Written by `python3 tasks.py ui` when missing; edit freely, it is not overwritten.
concurrency:
  pools:
    default_limit: {WRITE_POOL_LIMIT}
  runs:
    max_concurrent_runs: 8
""",
    f"""\
# Written by `python3 tasks.py ui` when missing; edit freely, it is not overwritten.
concurrency:
  pools:
    default_limit: {WRITE_POOL_LIMIT}
    op_granularity_run_buffer: {WRITE_POOL_LIMIT}
  runs:
    max_concurrent_runs: 8
run_queue:
  dequeue_interval_seconds: 1
""",
)


def ui(args: list[str]) -> int:
    env = dagster_env()
    home = Path(env["DAGSTER_HOME"])
    config = home / "dagster.yaml"
    if not config.exists() or config.read_text().strip() in (
        "",
        *(c.strip() for c in _EARLIER_INSTANCE_CONFIGS),
    ):
        step(f"writing {shown([config])}: at most {WRITE_POOL_LIMIT} writes at once")
        home.mkdir(parents=True, exist_ok=True)
        config.write_text(INSTANCE_CONFIG)
    if env.get("DATABASE_URL"):
        step("DATABASE_URL is set: not starting the embedded PostgreSQL")
    else:
        env.update(EMBEDDED_OPT_IN)
        start: list[str | Path] = [PYTHON, "-m", "resources.embedded_postgres", "start"]
        step(shown(start))
        run(start, env=env)
    # dg dev loads the project from pyproject.toml's [tool.dg] (the same code location as
    # workspace.yaml); VIRTUAL_ENV tells dg which environment is the project's.
    env["VIRTUAL_ENV"] = str(VENV)
    return replace_process([BIN / "dg", "dev", *args], env=env)


def pg(args: list[str]) -> int:
    """The UI's embedded PostgreSQL: status, start, stop, dsn [--tcp], reset."""
    return replace_process(
        [PYTHON, "-m", "resources.embedded_postgres", *(args or ["status"])], env=dagster_env()
    )


# Azurite, the Azure Blob Storage emulator the az:// tests run (npm, not PyPI): installed
# into .venv once; about 360 MB and 25 s.
AZURITE = "azurite@^3.37.0"
AZURITE_PREFIX = VENV / "azurite"


def ensure_azurite() -> None:
    if (AZURITE_PREFIX / "node_modules" / ".bin" / "azurite-blob").exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        step("no npm: the Azure Blob Storage tests skip (install Node.js and npm to run them)")
        return
    argv: list[str | Path] = [
        npm,
        "install",
        "--prefix",
        AZURITE_PREFIX,
        "--no-audit",
        "--no-fund",
        AZURITE,
    ]
    step(f"installing Azurite into .venv/azurite: {shown(argv)}")
    # The suite runs without it (the Azure tests skip, and say why; under CI they fail).
    code = subprocess.call([str(a) for a in argv], cwd=REPO, stdout=sys.stderr)
    if code != 0:
        step(f"npm could not install Azurite (exit code {code}): the Azure Blob Storage tests skip")


def test(args: list[str]) -> int:
    ensure_azurite()
    return replace_process([PYTHON, "-m", "pytest", *args], env={**os.environ, **EMBEDDED_OPT_IN})


def bench(args: list[str]) -> int:
    env = dagster_env()
    if env.get("DATABASE_URL") or any(a == "--dsn" or a.startswith("--dsn=") for a in args):
        step("DATABASE_URL or --dsn is set: not starting the embedded PostgreSQL")
    elif not any(a in ("-h", "--help") for a in args):
        start: list[str | Path] = [PYTHON, "-m", "resources.embedded_postgres", "start"]
        step(shown(start))
        run(start, env=env)
    return replace_process([PYTHON, "-m", "benchmarks", *args], env=env)


def lint(args: list[str]) -> int:
    checks: list[list[str | Path]] = [
        [BIN / "ruff", "check", *args],
        [BIN / "ruff", "format", "--check", *args],
        # Without paths mypy checks what pyproject.toml lists: the packages and the tests.
        [BIN / "mypy", *args],
    ]
    failed = 0
    for argv in checks:
        step(shown(argv))
        code = subprocess.call([str(a) for a in argv], cwd=REPO)
        failed = failed or code
    if failed:
        print("tasks.py: lint failed", file=sys.stderr)
    return failed


COMMANDS = {"ui": ui, "test": test, "lint": lint, "pg": pg, "bench": bench}


def main(argv: list[str]) -> int:
    # pyproject's floor is for the venv; this file runs under whatever python3 the user has.
    if sys.version_info < (3, 11):  # noqa: UP036
        print(f"tasks.py needs Python >= 3.11, this is {sys.version.split()[0]}", file=sys.stderr)
        return 2
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(__doc__)
        return 0 if argv else 2
    command = COMMANDS.get(argv[0])
    if command is None:
        print(
            f"tasks.py: unknown command {argv[0]!r}; one of: {', '.join(COMMANDS)}", file=sys.stderr
        )
        return 2
    # The comparison's other loaders (ADBC, pandas.to_sql over psycopg): only the benchmark
    # needs them.
    ensure_venv(("dev", "bench") if argv[0] == "bench" else ("dev",))
    return command(argv[1:])


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
