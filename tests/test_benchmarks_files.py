"""The benchmark's files section end to end on small files: every case loads every row of its
file, and the ratios are derived from the cases' own timings. No assertion about speed."""

from __future__ import annotations

import pytest

from benchmarks._files import MEMORY_SCALE, render_files, run_files

# The benchmark's smoke runs, the same on any server: CI runs them once.
pytestmark = pytest.mark.once

ROWS = 2_000


@pytest.mark.timeout(300)
def test_every_file_case_loads_every_row(dsn: str, schema: str) -> None:
    lines: list[str] = []
    files = run_files(rows=ROWS, repeat=1, dsn=dsn, schema=schema, say=lines.append)
    cases = files["cases"]
    for name, case in cases.items():
        want = ROWS * MEMORY_SCALE if name == "csv_wide_big_ours" else ROWS
        assert case["rows"] == want, name
        assert case["seconds"] > 0 and case["peak_rss_mb"] > 0
    ratios = files["ratios"]
    wide = cases["csv_wide_psql"]["seconds"] / cases["csv_wide_ours"]["seconds"]
    assert ratios["csv_wide_vs_psql"] == pytest.approx(wide)
    # One round: its own ratio is the ratio of the medians.
    assert files["rounds"]["csv_wide_vs_psql"] == [pytest.approx(wide)]
    report = render_files(files)
    assert "| csv_wide_ours | 2,000 |" in report
    assert any(line.startswith("files round 1/1 parquet_wide_ours") for line in lines)
