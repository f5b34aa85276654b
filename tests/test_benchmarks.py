"""The benchmark command end to end in --quick mode: every case runs, its numbers are derived
from its own timings, and the tables hold what each case wrote. No assertion about speed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks._run import _paired_ratio

# The benchmark's smoke runs, the same on any server: CI runs them once.
pytestmark = pytest.mark.once

REPO = Path(__file__).resolve().parents[1]
QUICK_ROWS = 2_000
UPDATED = QUICK_ROWS // 10
APPEND = [
    "one_at_a_time",
    "raw_executemany",
    "raw_multirow_insert",
    "raw_executemany_from_frame",
    "raw_multirow_insert_from_frame",
    "raw_copy_records",
    "raw_copy_records_from_frame",
    "ours_copy",
    "ours_executemany",
    "ours_insert",
]
UPDATE = [
    "server_update_from_staging",
    "server_upsert_from_staging",
    "ours_update",
    "ours_upsert",
    "raw_executemany_update",
    "raw_executemany_upsert",
]
OPTIONAL = {"pandas_to_sql_multi", "adbc_ingest"}


def test_quick_run_reports_every_case_from_its_own_timings(
    dsn: str, db: Any, schema: str, tmp_path: Path
) -> None:
    out, markdown = tmp_path / "bench.json", tmp_path / "BENCHMARKS.md"
    command = [sys.executable, "-m", "benchmarks", "--quick", "--dsn", dsn, "--schema", schema]
    command += ["--keep-tables", "--json", str(out), "--markdown", str(markdown)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-4000:]
    results = json.loads(out.read_text())

    assert results["benchmark"]["rows"] == QUICK_ROWS
    assert results["benchmark"]["repeat"] == 1
    sections = {s["name"]: s for s in results["sections"]}
    assert list(sections) == ["narrow", "wide", "update_narrow", "update_wide", "stream"]
    ceiling = (
        "server_copy_from_file"
        if results["server"]["ceiling_source"] == "server_file"
        else "copy_from_stdin_file"
    )
    expected = {
        "narrow": [ceiling, *APPEND],
        "wide": [ceiling, *APPEND],
        "update_narrow": UPDATE,
        "update_wide": UPDATE,
        "stream": ["ours_copy_frame_1x", "ours_copy_generator_10x"],
    }
    for name, section in sections.items():
        names = [c["name"] for c in section["cases"]]
        optional = [n for n in names if n in OPTIONAL]
        assert [n for n in names if n not in OPTIONAL] == expected[name]
        # An optional case either ran or says why not.
        skipped = {s["name"]: s["reason"] for s in section["skipped"]}
        if name in ("narrow", "wide"):
            assert set(optional) | set(skipped) == OPTIONAL
            assert all(skipped.values())

    for name, section in sections.items():
        by_name = {c["name"]: c for c in section["cases"]}
        for case in section["cases"]:
            assert case["seconds"] > 0 and case["rows_per_s"] > 0, case
            assert case["rows_per_s"] == pytest.approx(case["rows"] / case["seconds"])
            assert case["peak_rss_mb"] > 0
            reference = sections["narrow"] if name == "stream" else section
            own = {c["name"]: c for c in reference["cases"]}[case["ceiling_case"]]
            assert own["ceiling"] and (name == "stream" or own["group"] == case["group"])
            assert case["x_ceiling"] == pytest.approx(case["rows_per_s"] / own["rows_per_s"])
            # One round: the paired ratio is that round's ratio, the same number.
            assert case["x_ceiling_paired"] == pytest.approx(case["x_ceiling"])
            count = db.fetchval(f'SELECT count(*) FROM "{schema}"."{name}_{case["name"]}"')
            assert count == case["rows_in_table"]
        if name in ("narrow", "wide"):
            assert all(c["rows"] == c["rows_in_table"] == QUICK_ROWS for c in section["cases"])
            assert by_name["one_at_a_time"]["sampled"] is True
        elif name == "stream":
            assert by_name["ours_copy_frame_1x"]["rows_in_table"] == QUICK_ROWS
            assert by_name["ours_copy_generator_10x"]["rows_in_table"] == 10 * QUICK_ROWS
        else:
            for case in section["cases"]:
                assert case["rows"] == UPDATED and case["rows_changed"] == UPDATED, case
                assert case["rows_in_table"] == QUICK_ROWS

    text = markdown.read_text()
    assert results["machine"]["cpu"] in text
    assert results["server"]["version"] in text
    assert all(name in text for names in expected.values() for name in names)


def test_paired_ratio_divides_within_each_round_then_takes_the_median() -> None:
    """A wide update run of this project's machine: the ceiling's rounds took 0.846, 0.691
    and 0.645 s, the writer's 0.904, 0.908 and 0.690 s. Round by round the writer ran at
    0.936, 0.761 and 0.935 of its ceiling; the two medians alone would say 0.764."""
    ceiling = {"rounds": [{"rows": 100_000, "seconds": s} for s in (0.846, 0.691, 0.645)]}
    case = {"rounds": [{"rows": 100_000, "seconds": s} for s in (0.904, 0.908, 0.690)]}
    assert _paired_ratio(case, ceiling) == pytest.approx(0.645 / 0.690)
    assert _paired_ratio(case, None) is None
    assert _paired_ratio({"rounds": case["rounds"][:2]}, ceiling) is None


def test_quick_native_section_replaces_one_partition_three_ways(
    dsn: str, db: Any, schema: str, tmp_path: Path
) -> None:
    out, markdown = tmp_path / "native.json", tmp_path / "BENCHMARKS.md"
    command = [sys.executable, "-m", "benchmarks", "--quick", "--only", "native", "--dsn", dsn]
    command += ["--schema", schema, "--json", str(out), "--markdown", str(markdown)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-4000:]
    native = json.loads(out.read_text())["native"]
    assert (native["rows"], native["partitions"], native["partition_rows"]) == (2_000, 100, 20)
    cases = {c["name"]: c for c in native["cases"]}
    assert list(cases) == ["truncate_copy_freeze", "swap_detach_attach", "delete_copy"]
    for case in cases.values():
        assert len(case["rounds"]) == native["replaces"] == 10
        assert case["seconds"] > 0 and case["rows_in_slice"] == 20
        assert case["x_empty_load"] > 0
        assert set(case["other_reader_wait_seconds"]) == {"custom", "generic"}
    assert cases["truncate_copy_freeze"]["dead_tuples"] == 0
    assert cases["swap_detach_attach"]["dead_tuples"] == 0
    assert "## Native partitions" in markdown.read_text()
    # The section drops its tables.
    assert db.fetchval(f"SELECT to_regclass('{schema}.native_parts')") is None
