"""Data that reads better knowing the target table: a file reader that parses each column as
the table's column type (``Fetcher.batches``), as ``psql \\copy`` does."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from asyncpg.pool import Pool

    from ._catalog import ColumnInfo
    from ._request import WriteRequest

__all__ = ["TableTypedSource", "with_table_types"]


@runtime_checkable
class TableTypedSource(Protocol):
    """A source that takes the table's column types (name -> PostgreSQL base type such as
    ``int8``, ``bool``, ``timestamptz``, ``numeric``, or ``numeric(12,2)`` with precision and
    scale; empty when the table does not exist yet) and returns the data to write, preferably
    a zero-argument callable (replayable)."""

    def with_table_types(self, types: Mapping[str, str]) -> Any: ...


async def with_table_types(pool: Pool, request: WriteRequest) -> WriteRequest:
    """``request`` with its data told the table's column types, if it wants them: from the
    pool's cached description, else one catalog lookup before the write (kept, so that the
    write itself reads none). The write's BEGIN batch checks the description either way."""
    source = request.data
    if not isinstance(source, TableTypedSource):
        return request
    # Imported here, by the write: the package exports TableTypedSource, and loading the
    # definitions must not import asyncpg and pandas with it.
    from ._catalog import describe_table
    from ._catalog_cache import cached, keep
    from ._guards import connection, round_trip

    info = cached(pool, request.schema, request.table)
    if info is None:
        async with connection(pool, request) as conn, round_trip(conn, request, "table lookup"):
            info = await describe_table(conn, request.table, schema=request.schema)
        if info is not None:
            keep(pool, request.schema, request.table, info)
    types = {} if info is None else {name: _type_name(c) for name, c in info.columns.items()}
    return dataclasses.replace(request, data=source.with_table_types(types))


def _type_name(column: ColumnInfo) -> str:
    """The base type; ``numeric(p,s)`` with precision and scale when the column has them
    (a reader can then parse the values as exact decimals of that scale)."""
    scale = column.numeric_scale
    if scale is None or scale < 0:
        return column.base_type
    return f"numeric({column.numeric_precision},{scale})"
