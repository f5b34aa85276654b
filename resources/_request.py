"""What one write asks for, checked before anything connects."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ._identifiers import check_identifier
from ._modes import WriteMode, write_mode
from .errors import SchemaMismatchError
from .key_range import KeyRange
from .write_result import Mode

Commit = Literal["write", "chunk"]


OnBadRows = Literal["fail", "quarantine"]


@dataclass(slots=True)
class WriteRequest:
    table: str
    data: Any
    mode: Mode
    key_columns: tuple[str, ...]
    columns: tuple[str, ...] | None
    chunk_size: int
    schema: str | None
    create: bool
    commit: Commit
    replace: bool | KeyRange
    retries: int
    round_trip_timeout: float | None
    on_bad_rows: OnBadRows = "fail"
    rejects_table: str | None = None

    def __post_init__(self) -> None:
        """Refuse what cannot work before anything connects."""
        mode = write_mode(self.mode)
        if self.commit not in ("write", "chunk"):
            raise ValueError(f"commit must be 'write' or 'chunk', got {self.commit!r}")
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, got {self.chunk_size}")
        if mode.needs_keys and not self.key_columns:
            raise SchemaMismatchError(
                f"mode={self.mode!r} needs key_columns to match rows of {self.display}",
                table=self.display,
            )
        if self.replace is not False and (self.commit == "chunk" or not mode.appends):
            raise ValueError(
                "replace empties the table (or the KeyRange) inside the write's one "
                "transaction: it needs commit='write' and an appending mode, got "
                f"commit={self.commit!r}, mode={self.mode!r}"
            )
        if self.on_bad_rows not in ("fail", "quarantine"):
            raise ValueError(
                f"on_bad_rows must be 'fail' or 'quarantine', got {self.on_bad_rows!r}"
            )
        if not isinstance(self.replace, bool | KeyRange):
            raise TypeError(
                f"replace must be True, False or a KeyRange, got {type(self.replace).__name__}"
            )
        # A name PostgreSQL would truncate could write another table: refused before
        # anything connects.
        check_identifier(self.table, what="table name")
        if self.schema is not None:
            check_identifier(self.schema, what="schema name")
        if self.rejects_table is not None:
            check_identifier(self.rejects_table, what="rejects_table")
        for column in (*self.key_columns, *(self.columns or ())):
            check_identifier(column, what="column name")
        if isinstance(self.replace, KeyRange):
            check_identifier(self.replace.column, what="KeyRange column")

    @property
    def write_mode(self) -> WriteMode:
        return write_mode(self.mode)

    @property
    def display(self) -> str:
        return self.table if self.schema is None else f"{self.schema}.{self.table}"
