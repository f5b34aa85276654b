"""KeyRange: a non-empty half-open range of comparable bounds, and its predicate."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from resources import KeyRange

UTC = dt.UTC


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (1, 2),
        (-(2**63), 2**63 - 1),
        (dt.date(2026, 1, 1), dt.date(2026, 1, 2)),
        (dt.datetime(2026, 1, 1, tzinfo=UTC), dt.datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC)),
        ("a", "b"),
        (1.5, 1.6),
    ],
)
def test_a_range_of_ordered_bounds(start: Any, end: Any) -> None:
    key_range = KeyRange("k", start, end)
    assert (key_range.start, key_range.end) == (start, end)
    assert str(key_range) == f"k in [{start}, {end})"


@pytest.mark.parametrize(("start", "end"), [(5, 5), (6, 5), ("b", "a")])
def test_an_empty_range_is_refused(start: Any, end: Any) -> None:
    with pytest.raises(ValueError, match="is empty"):
        KeyRange("k", start, end)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (1, "2"),
        (None, 2),
        (dt.date(2026, 1, 1), dt.datetime(2026, 1, 2)),
        # Naive and aware datetimes do not compare: a range must not mix them.
        (dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 2, tzinfo=UTC)),
    ],
)
def test_bounds_that_do_not_compare_are_refused(start: Any, end: Any) -> None:
    with pytest.raises(ValueError, match="must be comparable") as caught:
        KeyRange("k", start, end)
    assert isinstance(caught.value.__cause__, TypeError)


def test_a_column_is_needed() -> None:
    with pytest.raises(ValueError, match="needs a column"):
        KeyRange("", 1, 2)


@pytest.mark.parametrize(
    ("column", "sql"),
    [
        ("id", '"id" >= $1 AND "id" < $2'),
        ('we"ird', '"we""ird" >= $1 AND "we""ird" < $2'),
    ],
)
def test_where_sql_quotes_the_column_and_binds_the_bounds(column: str, sql: str) -> None:
    assert KeyRange(column, 1, 2).where_sql() == sql


def test_key_ranges_are_values() -> None:
    assert KeyRange("id", 1, 11) == KeyRange("id", 1, 11)
    assert hash(KeyRange("id", 1, 11)) == hash(KeyRange("id", 1, 11))
    assert KeyRange("id", 1, 11) != KeyRange("id", 1, 12)
