"""Naming a refused row by where it came from: a file and its line, a Parquet row group.

A replayable source (a zero-argument callable) may return an iterator that is also a
:class:`RowLocator`; ``Fetcher.batches`` and ``Fetcher.frames`` do. When the write then fails
on a value, the writer asks it where the row came from, and the :class:`BadValueError` says so
next to the row's position in the write."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from .errors import BadValueError, BulkWriteError

__all__ = ["Opened", "RowLocator"]


@runtime_checkable
class RowLocator(Protocol):
    """An iterator of a write's data that knows where its rows came from."""

    def locate(self, row: int) -> str | None:
        """Where the ``row``-th row (0-based, as this iterator handed them out) came from, in
        words: ``"orders.csv, line 7"``, ``"s3://bucket/x.parquet, row group 2, row 70"``;
        None if it no longer knows (rows long handed out are forgotten)."""


class Opened:
    """A write's data, with the iterator it last opened at hand: each attempt (a retry reads
    from the start) opens a new one."""

    def __init__(self, data: Any) -> None:
        from ._sources import is_replayable  # pandas: not with the package's import

        self.locator: RowLocator | None = data if isinstance(data, RowLocator) else None
        self.data = data
        if is_replayable(data) and callable(data) and self.locator is None:
            self.data = self._opening(data)

    def _opening(self, open_: Any) -> Any:
        def opened() -> Any:
            out = open_()
            self.locator = out if isinstance(out, RowLocator) else None
            return out

        return opened

    def locate(self, row: int) -> str | None:
        """Where the write's ``row`` came from, if the data can say."""
        if self.locator is None:
            return None
        try:
            return self.locator.locate(row)
        except Exception:  # the error at hand matters more than where its row came from
            return None

    def name(self, exc: BulkWriteError) -> None:
        """Tell ``exc``, a bad value at a known row, where that row came from."""
        if isinstance(exc, BadValueError) and exc.row is not None and exc.source is None:
            source = self.locate(exc.row)
            if source:
                exc.add_source(source)
