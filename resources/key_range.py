"""The slice of a table that one partition owns, for an atomic partition replace."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._identifiers import quote_ident

__all__ = ["KeyRange"]


@dataclass(frozen=True, slots=True)
class KeyRange:
    """Rows whose ``column`` lies in the half-open range [``start``, ``end``).

    ``write(..., replace=KeyRange("id", 1, 10_001))`` deletes exactly those rows and loads the
    new ones in one transaction; every new row must fall inside the range, so that running the
    same partition again replaces what it wrote before and nothing else. Bounds are bound
    parameters, typed as the column: ints for integer keys, aware datetimes for
    ``timestamptz``, dates for ``date``.
    """

    column: str
    start: Any
    end: Any

    def __post_init__(self) -> None:
        if not self.column:
            raise ValueError("KeyRange needs a column name")
        try:
            empty = not self.start < self.end
        except TypeError as exc:
            raise ValueError(
                f"KeyRange bounds must be comparable, got {self.start!r} and {self.end!r}"
            ) from exc
        if empty:
            raise ValueError(
                f"KeyRange on {self.column!r} is empty: start {self.start!r} is not before "
                f"end {self.end!r}"
            )

    def where_sql(self) -> str:
        """The range as a predicate on ``$1`` (start) and ``$2`` (end)."""
        column = quote_ident(self.column)
        return f"{column} >= $1 AND {column} < $2"

    def __str__(self) -> str:
        return f"{self.column} in [{self.start}, {self.end})"
