"""The write modes: each one object that says everything about itself. The rest of the code
asks the mode (``request.write_mode.staged``) instead of testing names; adding a mode means
its writer class and one entry here."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from ._mode_writer import ModeWriter

__all__ = ["WRITE_MODES", "WriteMode", "write_mode"]


@dataclass(frozen=True, slots=True)
class WriteMode:
    """One way of writing rows."""

    name: str
    #: Its writer class as ``"module:Class"`` within this package, imported on first use:
    #: the writers need asyncpg, pandas and pyarrow (0.7 s of CPU to import), which loading
    #: the definitions, in every run worker and code server, does not.
    writer_class: str
    #: One line for docs and errors.
    summary: str
    #: Running it again adds its rows again. Such a write is never sent again after a COMMIT
    #: whose outcome is unknown, and never retried by a Dagster step.
    appends: bool = True
    #: Inserts rows: NOT NULL columns without a default must be given, serial and identity
    #: columns written with values move their sequences. ``update`` only changes rows.
    inserts: bool = True
    #: Rows go to a staging table and are matched on ``key_columns`` when applied.
    staged: bool = False
    #: Needs a unique index on exactly ``key_columns`` (ON CONFLICT needs one to arbitrate).
    needs_unique_key: bool = False
    #: Rows travel as binary COPY (into the table or the stage): chunks are encoded whole
    #: columns at a time.
    binary_copy: bool = False

    @property
    def writer(self) -> type[ModeWriter]:
        module, _, name = self.writer_class.partition(":")
        return cast(
            "type[ModeWriter]", getattr(importlib.import_module(f".{module}", __package__), name)
        )

    @property
    def needs_keys(self) -> bool:
        return self.staged

    @property
    def rerun_safe(self) -> bool:
        """Running the same write twice leaves the table as running it once."""
        return not self.appends


WRITE_MODES: dict[str, WriteMode] = {
    mode.name: mode
    for mode in (
        WriteMode(
            "copy", "_append_writers:CopyWriter", "binary COPY ... FROM STDIN", binary_copy=True
        ),
        WriteMode(
            "executemany", "_append_writers:ExecutemanyWriter", "one prepared INSERT, pipelined"
        ),
        WriteMode("insert", "_append_writers:InsertWriter", "multi-row INSERT ... VALUES"),
        WriteMode(
            "update",
            "_staged_writers:UpdateWriter",
            "staged, then one UPDATE ... FROM matched on key_columns",
            appends=False,
            inserts=False,
            staged=True,
            binary_copy=True,
        ),
        WriteMode(
            "upsert",
            "_staged_writers:UpsertWriter",
            "staged, then one INSERT ... ON CONFLICT (key_columns) DO UPDATE",
            appends=False,
            staged=True,
            needs_unique_key=True,
            binary_copy=True,
        ),
    )
}


def write_mode(name: str) -> WriteMode:
    try:
        return WRITE_MODES[name]
    except (KeyError, TypeError):
        raise ValueError(f"mode must be one of {', '.join(WRITE_MODES)}; got {name!r}") from None
