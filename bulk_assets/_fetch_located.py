"""Errors about a chunk's values, named by where the values came from: the file of many (a
glob, a folder) and, for Parquet, the row in the file (not among the rows a partition's
filter kept) and its row group."""

from __future__ import annotations

import pandas as pd

from ._fetch_errors import FetchError, Where
from ._fetch_parquet import row_group_of
from ._fetch_shape import Shape

__all__ = ["Located"]


class Located:
    """Applies ``shape`` to each raw chunk; its errors are rewritten to name the file the
    chunk came from (``current``, set by the reader of many files) and the row's source."""

    def __init__(self, shape: Shape, where: Where, current: list[Where]) -> None:
        self._shape = shape
        self._where = where
        self._current = current
        self._rows = 0  # rows handed to shape so far: its row numbers count these

    def __call__(self, frame: pd.DataFrame) -> pd.DataFrame:
        before = self._rows
        self._rows += len(frame)
        try:
            return self._shape(frame)
        except FetchError as exc:
            failure = self._renamed(exc, frame, before)
            if failure is exc:
                raise
        raise failure

    def _renamed(self, exc: FetchError, frame: pd.DataFrame, before: int) -> FetchError:
        where, location, row = self._where, exc.location, exc.row
        detail = str(exc).removeprefix(f"{where.format} from {where.location}: ")
        head = f"{where.format} from {where.location}"
        if self._current:
            location = self._current[0].location
            head += f", file {location}"
        if row is not None and 0 <= row - before < len(frame):
            source_row = int(frame.index[row - before])
            found = row_group_of(frame, source_row)
            if found is not None:
                file, group = found
                if file != where.location and not self._current:
                    head += f", file {file}"
                    location = file
                detail = detail.replace(
                    f"row {row:,}", f"row {source_row:,} (row group {group})", 1
                )
                row = source_row
        message = f"{head}: {detail}"
        if message == str(exc) and location == exc.location and row == exc.row:
            return exc
        return FetchError(
            message,
            location=location,
            format=exc.format,
            status=exc.status,
            line=exc.line,
            row=row,
            column=exc.column,
            transient=exc.transient,
        )
