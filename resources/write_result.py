"""What a bulk write reports back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Mode", "WriteResult"]

Mode = Literal["copy", "executemany", "insert", "update", "upsert"]


@dataclass(frozen=True, slots=True)
class WriteResult:
    """The outcome of one ``write``.

    Attributes:
        table: the target, schema-qualified (``public.users``).
        mode: the write mode used.
        rows: rows written, duplicates within a batch included, rows set aside excluded.
        rows_affected: rows the server reports changed (``UPDATE n`` / ``INSERT 0 n``).
        chunks: chunks sent.
        seconds: wall time of the write, retries included.
        duplicates_resolved: rows dropped because a later row in the same batch had the same
            key (update / upsert: last row wins).
        rows_deleted: rows a ``replace=KeyRange(...)`` removed before loading.
        rows_rejected: rows set aside by ``on_bad_rows="quarantine"``.
        rejects_table: where those rows went (``schema.table__rejects``), if any did.
        attempts: 1, plus one per retry after a transient error.
        created: whether the table was created by this write.
        columns: the columns written, in order.
    """

    table: str
    mode: Mode
    rows: int
    rows_affected: int
    chunks: int
    seconds: float
    duplicates_resolved: int = 0
    rows_deleted: int = 0
    rows_rejected: int = 0
    rejects_table: str | None = None
    attempts: int = 1
    created: bool = False
    columns: tuple[str, ...] = field(default=())

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0
