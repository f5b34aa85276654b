"""How a dataset writes its rows: each mode one object, derived from the writer's own modes,
that says what the writer is asked for and whether a step may run the load again."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from resources import WRITE_MODES, KeyRange, WriteMode

__all__ = ["DATASET_MODES", "DatasetModeInfo"]


@dataclass(frozen=True, slots=True)
class DatasetModeInfo:
    name: str
    write_mode: WriteMode
    #: Each run replaces its partition's slice (or the whole table): a re-run converges.
    replaces: bool = False

    @property
    def needs_keys(self) -> bool:
        return self.write_mode.needs_keys

    @property
    def rerun_safe(self) -> bool:
        """Running a load again after a failure whose outcome is unknown adds nothing twice,
        so a Dagster step may retry it."""
        return self.replaces or self.write_mode.rerun_safe

    def write_options(self, key_range: KeyRange | None, key_columns: list[str]) -> dict[str, Any]:
        """The writer's keyword arguments for one partition (``key_range``: its slice)."""
        if self.replaces:
            replace: bool | KeyRange = key_range if key_range is not None else True
            return {"mode": self.write_mode.name, "replace": replace}
        return {"mode": self.write_mode.name, "key_columns": key_columns}


DATASET_MODES: dict[str, DatasetModeInfo] = {
    "replace-partition": DatasetModeInfo("replace-partition", WRITE_MODES["copy"], replaces=True),
    **{name: DatasetModeInfo(name, mode) for name, mode in WRITE_MODES.items()},
}
