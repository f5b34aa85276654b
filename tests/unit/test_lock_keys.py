"""Advisory lock keys: signed 32-bit, and the same in every process, so that writers in other
processes (Dagster runs each step in its own) wait for each other."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from resources import _locks
from resources._locks import key

PARTS: list[tuple[object, ...]] = [
    (),
    ("public.events",),
    (16384, "id", 1, 10_001),
    (16384, "occurred_at", "2026-03-01 00:00:00+00:00", "2026-03-02 00:00:00+00:00"),
    ("ünïcödé", None, 1.5),
]


@pytest.mark.parametrize("parts", PARTS)
def test_a_key_is_a_signed_32_bit_int(parts: tuple[object, ...]) -> None:
    value = key(*parts)
    assert isinstance(value, int)
    assert -(2**31) <= value < 2**31


def test_keys_are_the_same_in_another_process() -> None:
    """``hash()`` would differ between processes (PYTHONHASHSEED); the key must not."""
    # The module alone, not the package: a bare interpreter starts in a tenth of a second.
    code = (
        "import importlib.util, json, sys\n"
        "spec = importlib.util.spec_from_file_location('locks', sys.argv[1])\n"
        "locks = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(locks)\n"
        "print(json.dumps([locks.key(*p) for p in json.loads(sys.argv[2])]))"
    )
    parts = [list(p) for p in PARTS]
    out = subprocess.run(
        [sys.executable, "-c", code, _locks.__file__ or "", json.dumps(parts)],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345"},
    )
    assert json.loads(out.stdout) == [key(*p) for p in parts]


def test_keys_are_pinned() -> None:
    """A writer of another version of this package must take the same lock."""
    assert key("public.t") == 1757563847
    assert key(16384, "id", 1, 10001) == 2104110834


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (("s.t",), ("s.u",)),
        ((1, "id", 1, 11), (1, "id", 11, 21)),
        # The parts are joined with NUL: moving a boundary changes the key.
        (("ab", "c"), ("a", "bc")),
    ],
)
def test_different_parts_give_different_keys(a: tuple[object, ...], b: tuple[object, ...]) -> None:
    assert key(*a) != key(*b)


def test_each_kind_of_lock_has_its_own_space() -> None:
    spaces = [_locks.SEQUENCE, _locks.SLICE, _locks.CREATE]
    assert len(set(spaces)) == len(spaces)
    # pg_advisory_xact_lock(int4, int4): the space must fit a signed 32-bit int too.
    assert all(-(2**31) <= space < 2**31 for space in spaces)


def test_equal_bounds_of_other_types_share_a_key() -> None:
    """Writers of one slice must meet on one lock however their callers typed the bounds."""
    import datetime as dt

    midnight = dt.datetime(2024, 1, 1)
    utc = dt.datetime(2024, 1, 1, 12, tzinfo=dt.UTC)
    paris = utc.astimezone(dt.timezone(dt.timedelta(hours=1)))
    assert key(1, "d", dt.date(2024, 1, 1)) == key(1, "d", midnight)
    assert key(1, "t", utc) == key(1, "t", paris)
    assert key(1, "id", 5) == key(1, "id", 5.0)
    assert key(1, "id", 5) != key(1, "id", 6)
