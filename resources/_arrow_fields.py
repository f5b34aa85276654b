"""One Arrow column of a batch, with what the shared encoders and the type contract need of it,
and the way back to pandas for the plain path."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ._binary_fields import Column
from ._catalog import ColumnInfo
from .errors import BadValueError

__all__ = ["NULLABLE_DTYPES", "ArrowColumn", "numbers", "to_frame"]

# Integer and bool columns as pandas' nullable dtypes: an int64 with NULLs is not turned into
# float64, a bool with NULLs into object, and every chunk has the same dtype whether or not it
# happens to hold a NULL.
NULLABLE_DTYPES: dict[pa.DataType, object] = {
    pa.int8(): pd.Int8Dtype(),
    pa.int16(): pd.Int16Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.uint8(): pd.UInt8Dtype(),
    pa.uint16(): pd.UInt16Dtype(),
    pa.uint32(): pd.UInt32Dtype(),
    pa.uint64(): pd.UInt64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}
# Arrow types to the pandas dtypes that keep their values exactly: strings stay Arrow-backed too.
_PANDAS_TYPES: dict[pa.DataType, object] = {
    **NULLABLE_DTYPES,
    pa.string(): pd.StringDtype("pyarrow"),
    pa.large_string(): pd.StringDtype("pyarrow"),
}


def to_frame(batch: pa.RecordBatch) -> pd.DataFrame:
    """The batch as a DataFrame the plain path judges exactly as the Arrow values: integers
    and booleans keep their type around NULLs, dates stay dates."""
    return batch.to_pandas(types_mapper=_PANDAS_TYPES.get)


@dataclass(frozen=True, slots=True)
class ArrowColumn:
    arr: pa.Array
    info: ColumnInfo
    na: np.ndarray
    table: str
    row_offset: int
    not_null: bool

    def as_column(self) -> Column:
        """The pandas view the shared encoders and ``convert_column`` take."""
        series = pd.Series(self.arr.to_pandas(types_mapper=_PANDAS_TYPES.get))
        return Column(
            series=series,
            info=self.info,
            na=self.na,
            table=self.table,
            row_offset=self.row_offset,
            not_null=self.not_null,
        )

    def with_arr(self, arr: pa.Array) -> ArrowColumn:
        """The same column seen as another Arrow type (timestamps as int64)."""
        return ArrowColumn(arr, self.info, self.na, self.table, self.row_offset, self.not_null)

    def refuse(self) -> NoReturn:
        self.as_column().refuse()

    def bad(self, position: int, reason: str) -> BadValueError:
        return BadValueError(
            f"{reason} (column type {self.info.sql_type})",
            table=self.table,
            column=self.info.name,
            row=self.row_offset + position,
        )


def numbers(col: ArrowColumn, fill: object, dtype: type | str) -> np.ndarray:
    filled = pc.fill_null(col.arr, fill) if col.na.any() else col.arr
    return np.asarray(filled.to_numpy(zero_copy_only=False), dtype=dtype)
