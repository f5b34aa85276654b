"""The write modes and the dataset modes: each one object whose flags agree with each other,
and the typed names agree with the registries."""

from __future__ import annotations

from typing import get_args

import pytest

from bulk_assets.dataset_modes import DATASET_MODES, DatasetModeInfo
from bulk_assets.specs import DatasetMode
from resources import WRITE_MODES, KeyRange, Mode, WriteMode
from resources._append_writers import balanced_step
from resources._mode_writer import ModeWriter
from resources._modes import write_mode


def test_the_literals_name_the_registries_in_order() -> None:
    assert list(get_args(Mode)) == list(WRITE_MODES)
    assert list(get_args(DatasetMode)) == list(DATASET_MODES)


@pytest.mark.parametrize("name", list(WRITE_MODES))
def test_a_write_mode_is_consistent(name: str) -> None:
    mode = WRITE_MODES[name]
    assert mode.name == name and write_mode(name) is mode
    assert issubclass(mode.writer, ModeWriter)
    assert mode.summary
    # Staged modes match rows on keys, and so converge when run again.
    assert mode.needs_keys is mode.staged
    assert mode.rerun_safe is (not mode.appends)
    if mode.staged:
        assert not mode.appends and mode.binary_copy
    if mode.needs_unique_key:
        assert mode.staged and mode.inserts
    if not mode.inserts:
        assert mode.staged and not mode.needs_unique_key


@pytest.mark.parametrize(
    ("name", "appends", "inserts", "staged", "unique_key"),
    [
        ("copy", True, True, False, False),
        ("executemany", True, True, False, False),
        ("insert", True, True, False, False),
        ("update", False, False, True, False),
        ("upsert", False, True, True, True),
    ],
)
def test_what_each_write_mode_says_of_itself(
    name: str, appends: bool, inserts: bool, staged: bool, unique_key: bool
) -> None:
    mode = WRITE_MODES[name]
    assert (mode.appends, mode.inserts, mode.staged, mode.needs_unique_key) == (
        appends,
        inserts,
        staged,
        unique_key,
    )


@pytest.mark.parametrize("name", ["", "COPY", "copyy", "replace-partition", None, 3])
def test_an_unknown_mode_is_refused_with_the_choices(name: object) -> None:
    with pytest.raises(ValueError, match="mode must be one of copy, executemany, insert"):
        write_mode(name)  # type: ignore[arg-type]


def test_write_modes_are_frozen() -> None:
    mode: WriteMode = WRITE_MODES["copy"]
    with pytest.raises(AttributeError):
        mode.appends = False  # type: ignore[misc]


@pytest.mark.parametrize("name", list(DATASET_MODES))
def test_a_dataset_mode_is_consistent(name: str) -> None:
    info = DATASET_MODES[name]
    assert info.name == name
    assert info.needs_keys is info.write_mode.needs_keys
    assert info.rerun_safe is (info.replaces or info.write_mode.rerun_safe)
    if info.replaces:
        # A replace empties the slice in the write's transaction: only an append can do that.
        assert info.write_mode.appends


@pytest.mark.parametrize(
    ("name", "rerun_safe"),
    [
        ("replace-partition", True),
        ("copy", False),
        ("executemany", False),
        ("insert", False),
        ("update", True),
        ("upsert", True),
    ],
)
def test_which_dataset_modes_a_step_may_run_again(name: str, rerun_safe: bool) -> None:
    assert DATASET_MODES[name].rerun_safe is rerun_safe


def test_every_write_mode_is_a_dataset_mode_of_the_same_name() -> None:
    for name, mode in WRITE_MODES.items():
        assert DATASET_MODES[name].write_mode is mode
        assert not DATASET_MODES[name].replaces


@pytest.mark.parametrize(
    ("key_range", "replace"),
    [(None, True), (KeyRange("id", 1, 11), KeyRange("id", 1, 11))],
)
def test_a_replace_asks_the_writer_for_its_slice(
    key_range: KeyRange | None, replace: bool | KeyRange
) -> None:
    options = DATASET_MODES["replace-partition"].write_options(key_range, ["id"])
    assert options == {"mode": "copy", "replace": replace}


@pytest.mark.parametrize("name", list(WRITE_MODES))
def test_other_modes_pass_their_keys(name: str) -> None:
    info: DatasetModeInfo = DATASET_MODES[name]
    options = info.write_options(KeyRange("id", 1, 11), ["id", "day"])
    assert options == {"mode": name, "key_columns": ["id", "day"]}


@pytest.mark.parametrize(
    ("rows", "most", "step", "left"),
    [
        (50_000, 10_922, 10_000, 0),  # the default chunk of narrow rows: 5 equal statements
        (1_000, 10_922, 1_000, 0),
        (10_922, 10_922, 10_922, 0),
        (10_923, 10_922, 5_461, 1),
        (50_001, 10_922, 10_000, 1),
        (7, 3, 2, 1),
    ],
)
def test_multi_row_inserts_split_a_chunk_into_equal_statements(
    rows: int, most: int, step: int, left: int
) -> None:
    got = balanced_step(rows, most)
    assert got == step
    assert got <= most
    assert rows % got == left
    assert left < -(-rows // most)  # fewer rows left over than statements: one more at most
