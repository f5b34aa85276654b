"""The write's target from the pool's cache of table descriptions: read once per pool (before
the transaction), then checked by each write's BEGIN batch, which also takes the write's turn
on its slice, so that a warm write spends no round trip on the catalog or on locks."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from ._catalog import TableInfo, describe_table
from ._catalog_cache import cached, forget, keep, still_valid_sql
from ._guards import round_trip
from ._locks import SLICE, lock_sql, slice_key
from ._progress import Stats
from ._request import WriteRequest
from ._target import check_target, data_columns
from .errors import SchemaMismatchError
from .key_range import KeyRange

if TYPE_CHECKING:
    import asyncpg
    from asyncpg.pool import Pool


async def known_target(
    pool: Pool,
    conn: asyncpg.Connection,
    request: WriteRequest,
    first: pd.DataFrame,
    stats: Stats,
    *,
    fresh: bool = False,
) -> tuple[TableInfo, tuple[str, ...]] | None:
    """The table and the data's columns, checked against each other; None when the table
    does not exist (the write then reads or creates it inside its transaction). A cached
    description that the data does not fit is read again once before the error is raised:
    the table may have gained the data's new column since."""
    columns = data_columns(request, first)
    info = None if fresh else cached(pool, request.schema, request.table)
    if info is None:
        async with round_trip(conn, request, "table lookup"):
            info = await describe_table(conn, request.table, schema=request.schema)
        if info is None:
            forget(pool, request.schema, request.table)
            return None
        keep(pool, request.schema, request.table, info)
        fresh = True
    try:
        check_target(request, info, columns)
    except SchemaMismatchError:
        if fresh:
            raise
        return await known_target(pool, conn, request, first, stats, fresh=True)
    stats.columns = columns
    stats.table = info.display
    return info, columns


def prelude(request: WriteRequest, info: TableInfo) -> list[str]:
    """What travels with BEGIN: the slice's turn (a replace of a KeyRange), then the table
    locked in the mode the write will need and its description checked."""
    statements = []
    if isinstance(request.replace, KeyRange):
        statements.append(lock_sql(SLICE, *slice_key(info, request.replace)))
    statements += still_valid_sql(info, mode=lock_mode(request))
    return statements


def lock_mode(request: WriteRequest) -> str:
    """The table lock the write takes at BEGIN. Taken weaker and raised later (ROW EXCLUSIVE,
    then TRUNCATE's ACCESS EXCLUSIVE), two writers holding the weaker one would deadlock
    waiting for each other; so a write that will TRUNCATE asks for all of it at once."""
    return "ACCESS EXCLUSIVE" if request.replace is True else "ROW EXCLUSIVE"
