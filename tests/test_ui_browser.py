"""The UI in a real browser: headless Chromium, driven by Playwright, against ``dagster dev``
serving the project's code location. Through clicks: the asset graph shows the datasets, one
partition of ``users`` materializes, a backfill of three partitions completes, and the asset
page shows the row count, column schema and throughput the load reported.

Debian's Chromium is used as installed (``apt-get install chromium``); no browser is
downloaded."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from conftest import REPO, Db

# The browser against dagster-webserver, the same on any server: CI runs it once.
pytestmark = pytest.mark.once

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# users: 10,000 ids a partition.
SIZE = 10_000
ONE = "0000001-0010000"
BACKFILL = ["0010001-0020000", "0020001-0030000", "0030001-0040000"]
# Generous: `dagster dev` starts a code server and a daemon, on a machine shared with others.
START_WITHIN = 120
RUN_WITHIN = 120
CLICK_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: apt-get install -y chromium"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return CHROMIUM


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def webserver(tmp_path: Path, search_path_dsn: str) -> Iterator[str]:
    """``dagster dev`` on a free port, with a DAGSTER_HOME of its own (4 writes at once, as
    ``tasks.py ui`` sets) and DATABASE_URL on the test's schema; stopped afterwards."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("concurrency:\n  pools:\n    default_limit: 4\n")
    port = _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "DATABASE_URL": search_path_dsn}
    dagster = Path(sys.executable).with_name("dagster")
    argv = [
        str(dagster),
        "dev",
        "-m",
        "bulk_assets.definitions",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    log = tmp_path / "dagster-dev.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_WITHIN
        while True:
            try:
                with urllib.request.urlopen(f"{base}/server_info", timeout=5):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    message = f"dagster dev did not start:\n{log.read_text()[-3000:]}"
                    raise AssertionError(message) from None
                time.sleep(0.5)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _open(page: Any, url: str) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.goto(url, wait_until="networkidle")
    # The first visit offers a newsletter dialog; it covers the page until dismissed.
    skip = page.get_by_role("button", name="Skip")
    try:
        skip.wait_for(state="visible", timeout=3_000)
    except PlaywrightTimeout:  # no dialog this time
        return
    skip.click()


def _materialize(page: Any, base: str, keys: list[str]) -> None:
    """Asset page of users -> Materialize -> the partitions ``keys`` -> Launch."""
    _open(page, f"{base}/assets/users")
    page.locator("button", has_text="Materialize").first.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Select a partition or create one").click()
    for key in keys:
        search = page.locator("input:focus")
        search.fill(key)
        # A truncated label keeps a hidden copy of its text for measuring: click the visible one.
        page.get_by_text(key, exact=True).filter(visible=True).first.click()
    page.keyboard.press("Escape")
    dialog.get_by_text(f"{len(keys)} partition").first.wait_for()
    dialog.get_by_role("button", name=re.compile(r"^Launch")).click()


def _fetchval(db: Db, sql: str, *args: Any) -> Any:
    """``db.fetchval`` in a thread of its own: Playwright's sync API keeps an event loop
    running in this one, where ``asyncio.run`` refuses to start another."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(db.fetchval, sql, *args).result()


def _rows(db: Db, schema: str, lo: int, hi: int) -> int:
    try:
        count: int = _fetchval(
            db, f'SELECT count(*) FROM "{schema}".users WHERE id BETWEEN $1 AND $2', lo, hi
        )
    except asyncpg.UndefinedTableError:  # created by the first run
        return -1
    return count


def _wait_rows(db: Db, schema: str, lo: int, hi: int, expected: int) -> None:
    deadline = time.monotonic() + RUN_WITHIN
    while (got := _rows(db, schema, lo, hi)) != expected:
        assert time.monotonic() < deadline, f"ids {lo}..{hi}: {got} rows, expected {expected}"
        time.sleep(1)


def test_ui_materializes_and_backfills_users_by_clicks(
    chromium: Path, webserver: str, db: Db, schema: str, tmp_path: Path
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(CLICK_TIMEOUT_MS)

            _open(page, f"{webserver}/asset-groups")
            graph = page.locator("main, body").first
            for name in ("users", "events", "user_email_updates", "cities"):
                graph.get_by_text(name, exact=True).first.wait_for()
            page.screenshot(path=str(shots / "asset-graph.png"))

            _materialize(page, webserver, [ONE])
            _wait_rows(db, schema, 1, SIZE, SIZE)
            page.screenshot(path=str(shots / "one-partition-launched.png"))

            _materialize(page, webserver, BACKFILL)
            _wait_rows(db, schema, SIZE + 1, 4 * SIZE, 3 * SIZE)
            assert _fetchval(db, f'SELECT count(*) FROM "{schema}".users') == 4 * SIZE
            page.screenshot(path=str(shots / "backfill-launched.png"))

            _open(page, f"{webserver}/runs")
            page.get_by_text("Success").first.wait_for()
            page.screenshot(path=str(shots / "runs.png"))

            _open(page, f"{webserver}/assets/users")
            for key in ("dagster/partition_row_count", "rows_per_second"):
                page.get_by_text(key, exact=True).first.wait_for()
            # The column schema: the table's columns, as the load found them.
            page.get_by_text("email", exact=True).first.wait_for()
            page.screenshot(path=str(shots / "asset-page.png"), full_page=True)
        finally:
            browser.close()
        print(f"\nscreenshots: {sorted(p.name for p in shots.iterdir())} in {shots}")
