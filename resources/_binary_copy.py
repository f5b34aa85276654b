"""A whole DataFrame chunk as one PostgreSQL binary COPY payload, without Python objects per value.

The plain path (:func:`._records.frame_to_values`, then asyncpg encoding each value) spends
about 4x the server's own ingest time on a wide table. Here every column is checked and encoded
with whole-column numpy / Arrow operations (:mod:`._binary_columns`) and pgpq frames the rows
(:mod:`._arrow_frame`), so encoding a chunk costs clearly less than the server needs to load it.

The type contract is that of :func:`._convert.convert_column`: the same values are accepted, the
same are refused with the same :class:`BadValueError`. A chunk with a column the fast path
cannot encode exactly gives ``None``, and the caller converts it the plain way.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterable, AsyncIterator, Sequence

import numpy as np
import pandas as pd

from ._arrow_frame import encode_columns
from ._binary_columns import encoder_for
from ._binary_fields import Column
from ._catalog import TableInfo

__all__ = ["copy_data", "copy_file", "encode_frame"]

# Signature, flags (no OIDs), header extension length: the binary COPY file header. This
# module is their one owner: encode_frame gives rows only, copy_data frames a stream of them.
_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_TRAILER = struct.pack(">h", -1)


def encode_frame(
    frame: pd.DataFrame,
    info: TableInfo,
    columns: Sequence[str],
    *,
    row_offset: int,
    not_null: Sequence[str] = (),
) -> memoryview | None:
    """The chunk's rows in binary COPY format (no header or trailer: :func:`copy_data` adds
    them around any number of chunks) for ``COPY ... (FORMAT binary)`` into ``columns``, or
    ``None`` when some column has no fast encoder for its (dtype, column type) pair: convert
    that chunk with ``frame_to_values`` instead.

    ``frame`` must have a 0..n-1 index; ``row_offset`` is the global row of its first row, for
    error messages; ``not_null`` names key columns that must not hold NULL.

    Raises:
        BadValueError: exactly where the type contract would raise it, converting the
            columns in order with :func:`._convert.convert_column`.

    Examples:
        payload = encode_frame(frame, info, columns, row_offset=offset)
        if payload is not None:
            await conn.copy_to_table(
                info.name, schema_name=info.schema, columns=list(columns),
                source=copy_data(pieces(payload)), format="binary",
            )
    """
    encoders = []
    for name in columns:
        encoder = encoder_for(frame[name], info.columns[name])
        if encoder is None:
            return None
        encoders.append(encoder)
    n = len(frame)
    made = (
        Column(
            series=frame[name],
            info=info.columns[name],
            na=np.asarray(frame[name].isna(), dtype=bool),
            table=info.display,
            row_offset=row_offset,
            not_null=name in not_null,
        )
        for name in columns
    )
    return encode_columns(n, zip(made, encoders, strict=True))


async def copy_data(rows: AsyncIterable[bytes | memoryview]) -> AsyncIterator[bytes | memoryview]:
    """A binary COPY stream: the header, every block of encoded rows, the trailer."""
    yield _HEADER
    async for block in rows:
        yield block
    yield _TRAILER


def copy_file(rows: bytes | memoryview) -> bytes:
    """One block of encoded rows as a whole binary COPY file, e.g. for ``COPY FROM`` a file."""
    return b"".join((_HEADER, rows, _TRAILER))
