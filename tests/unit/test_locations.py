"""Location templates: only {partition_key}, {start} and {end}, filled without str.format."""

from __future__ import annotations

import datetime as dt

import pytest

from bulk_assets._location import fill, parse


@pytest.mark.parametrize(
    ("template", "parts"),
    [
        ("/d/x.csv", [("/d/x.csv", None, "")]),
        ("/d/{partition_key}.csv", [("/d/", "partition_key", ""), (".csv", None, "")]),
        ("{start:%Y/%m}", [("", "start", "%Y/%m")]),
        ("a{{b}}c", [("a{", None, ""), ("b}", None, ""), ("c", None, "")]),
        ("", []),
    ],
)
def test_parse(template: str, parts: list[tuple[str, str | None, str]]) -> None:
    assert parse(template) == parts


@pytest.mark.parametrize(
    ("template", "says"),
    [
        ("/d/{start.__class__}", "is not one of"),
        ("/d/{end[0]}", "is not one of"),
        ("/d/{}", "is not one of"),
        ("/d/{0}", "is not one of"),
        ("/d/{day}", "is not one of"),
        ("/d/{start!r}", "conversions"),
        ("/d/{start:{end}}", "may not hold fields"),
        ("/d/{start", "literal brace"),
        ("/d/start}", "literal brace"),
    ],
)
def test_parse_refuses(template: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse(template)


@pytest.mark.parametrize(
    ("template", "values", "filled"),
    [
        ("/d/{partition_key}.csv", {"partition_key": "2026-03-01"}, "/d/2026-03-01.csv"),
        ("/d/{start:%Y/%m/%d}.csv", {"start": dt.date(2026, 3, 1)}, "/d/2026/03/01.csv"),
        ("/d/{start:07d}-{end:07d}", {"start": 11, "end": 21}, "/d/0000011-0000021"),
        ("/d/{{literal}}/{end}", {"end": 5}, "/d/{literal}/5"),
        ("/d/x.csv", {}, "/d/x.csv"),
    ],
)
def test_fill(template: str, values: dict[str, object], filled: str) -> None:
    assert fill(template, values) == filled
