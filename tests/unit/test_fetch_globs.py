"""Which paths a location's glob matches, and where its listing starts: pure logic."""

from __future__ import annotations

import pytest

from bulk_assets._fetch_files import _glob_regex, _prefix, has_glob


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("data/*.csv", "data/a.csv", True),
        ("data/*.csv", "data/sub/a.csv", False),  # * stays in one folder
        ("data/**/*.csv", "data/a.csv", True),
        ("data/**/*.csv", "data/y=2026/m=03/a.csv", True),
        ("data/part-?.csv", "data/part-1.csv", True),
        ("data/part-?.csv", "data/part-10.csv", False),
        ("data/part-[0-4].csv", "data/part-3.csv", True),
        ("data/part-[!0-4].csv", "data/part-7.csv", True),
        ("data/part-[!0-4].csv", "data/part-3.csv", False),
        ("data/a+b.csv*", "data/a+b.csv.gz", True),  # regex characters are literal
        ("bucket/x/*.parquet", "bucket/x/y.parquet", True),
    ],
)
def test_glob_matches(pattern: str, path: str, matches: bool) -> None:
    assert bool(_glob_regex(pattern).fullmatch(path)) is matches


@pytest.mark.parametrize(
    ("pattern", "prefix"),
    [
        ("/data/in/*.csv", "/data/in"),
        ("bucket/exports/2026-*/x.csv", "bucket/exports"),
        ("*.csv", "."),
    ],
)
def test_listing_starts_before_the_first_wildcard(pattern: str, prefix: str) -> None:
    assert has_glob(pattern) and _prefix(pattern) == prefix
