"""The write's target, inside its transaction: the table resolved (or created), checked
against the data, and the rows it replaces removed."""

from __future__ import annotations

import asyncpg
import pandas as pd

from ._catalog import (
    TableInfo,
    check_columns,
    check_key_columns,
    create_table_sql,
    describe_table,
)
from ._guards import round_trip
from ._identifiers import check_identifier, qualified, quote_ident
from ._locks import CREATE, SLICE, lock, slice_key
from ._native_partitions import NativeSlice, native_slice, partition_by_sql
from ._progress import Log, Stats
from ._request import WriteRequest
from .errors import SchemaMismatchError, TerminalWriteError
from .key_range import KeyRange


def data_columns(request: WriteRequest, first: pd.DataFrame) -> tuple[str, ...]:
    """The data's column names, checked before anything is sent."""
    columns = tuple(str(c) for c in first.columns)
    if len(set(columns)) != len(columns):
        dupes = sorted({c for c in columns if columns.count(c) > 1})
        raise SchemaMismatchError(
            f"data for {request.display} names columns more than once: {dupes}",
            table=request.display,
        )
    for column in columns:
        try:
            check_identifier(column, what="column name")
        except ValueError as exc:
            raise SchemaMismatchError(
                f"data for {request.display}: {exc}", table=request.display
            ) from None
    return columns


async def resolve_target(
    conn: asyncpg.Connection, request: WriteRequest, first: pd.DataFrame, stats: Stats
) -> tuple[TableInfo, tuple[str, ...]]:
    columns = data_columns(request, first)
    info = await describe_table(conn, request.table, schema=request.schema)
    if info is None and request.create:
        # First loads racing to create one table take turns (CREATE ... IF NOT EXISTS itself
        # races on the catalog's unique index); the later one then finds the table. The lock
        # names the schema the table would land in, however the request spells it.
        schema = request.schema or await conn.fetchval("SELECT current_schema()")
        await lock(conn, CREATE, schema, request.table)
        info = await describe_table(conn, request.table, schema=request.schema)
    if info is None:
        if not request.create:
            raise SchemaMismatchError(
                f"table {request.display} does not exist (pass create=True to create it from "
                "the data's dtypes)",
                table=request.display,
            )
        # CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the schema
        # exists: a loader with CREATE on its schema only must not need it.
        if request.schema is not None and not await conn.fetchval(
            "SELECT true FROM pg_namespace WHERE nspname = $1", request.schema
        ):
            # First loads of other tables into the same new schema take turns creating it.
            await lock(conn, CREATE, request.schema)
            if not await conn.fetchval(
                "SELECT true FROM pg_namespace WHERE nspname = $1", request.schema
            ):
                await conn.execute(f"CREATE SCHEMA {quote_ident(request.schema)}")
        sql = create_table_sql(
            first, request.table, schema=request.schema, key_columns=request.key_columns
        )
        if request.native_partitions and isinstance(request.replace, KeyRange):
            sql += partition_by_sql(request.replace)
        leading_key = request.key_columns[0] if request.key_columns else None
        if (
            isinstance(request.replace, KeyRange)
            and not request.native_partitions  # a partition is swapped whole, not DELETEd
            and request.replace.column in columns
            and request.replace.column != leading_key  # the primary key's index serves
        ):
            # Every replace of a slice DELETEs by this column: without an index each one scans
            # the whole table, so the 100th partition's load costs 100 times the first's.
            # Created with the table, in its transaction (and its round trip), before anyone
            # else can see it.
            sql += (
                f";\nCREATE INDEX ON {qualified(request.schema, request.table)} "
                f"({quote_ident(request.replace.column)})"
            )
        await conn.execute(sql)
        info = await describe_table(conn, request.table, schema=request.schema)
        assert info is not None, "a table created in this transaction is visible to it"
        stats.created = True
    check_target(request, info, columns)
    stats.columns = columns
    stats.table = info.display
    return info, columns


def check_target(request: WriteRequest, info: TableInfo, columns: tuple[str, ...]) -> None:
    """Whether the data's columns can go into ``info`` by the request's mode; one error
    listing every difference if not."""
    check_columns(info, columns, mode=request.write_mode, key_columns=request.key_columns)
    if isinstance(request.replace, KeyRange) and request.replace.column not in columns:
        raise SchemaMismatchError(
            f"replace={request.replace} for {request.display}: the data has no column "
            f"{request.replace.column!r}, so its rows cannot be checked against the range",
            table=request.display,
        )
    if request.write_mode.needs_keys:
        check_key_columns(info, columns, request.key_columns, mode=request.write_mode)


async def clear(
    conn: asyncpg.Connection,
    request: WriteRequest,
    stats: Stats,
    *,
    info: TableInfo | None = None,
    log: Log | None = None,
) -> NativeSlice | None:
    """Remove what the write replaces, inside its transaction.

    A whole table is TRUNCATEd: readers wait on its ACCESS EXCLUSIVE lock and then see the new
    rows, never a half-loaded table. A KeyRange is DELETEd: readers keep seeing the old slice
    until COMMIT, and writers of other ranges are not blocked (row locks only). With
    ``native_partitions``, a KeyRange that is one child of a range-partitioned table is that
    child TRUNCATEd (or a new one made): the rows then go there (see _native_partitions).

    ``info``: the table as the transaction's BEGIN batch checked it, with the slice's turn
    already taken there (``_target_cache.prelude``); else it is read and the turn taken here."""
    taken = info is not None
    async with round_trip(conn, request, "replace"):
        if info is None:
            info = await describe_table(conn, request.table, schema=request.schema)
        if info is None:
            raise SchemaMismatchError(
                f"table {request.display} does not exist, so it cannot be replaced",
                table=request.display,
            )
        if isinstance(request.replace, KeyRange):
            key_range = request.replace
            if key_range.column not in info.columns:
                raise SchemaMismatchError(
                    f"replace={key_range}: table {info.display} has no column {key_range.column!r}",
                    table=info.display,
                )
            # Two writers of one slice take turns: under READ COMMITTED a DELETE cannot see
            # rows that another writer of the slice commits after it began, so without the
            # turn both loads would survive. The DELETE runs after the wait, as a statement
            # of its own, so that its snapshot includes what the other writer committed.
            if not taken:
                await lock(conn, SLICE, *slice_key(info, key_range))
            if request.native_partitions:
                native = await native_slice(conn, request, info, key_range, stats, log)
                if native is not None:
                    stats.table = info.display
                    return native
            try:
                status = await conn.execute(
                    f"DELETE FROM {info.qualified} WHERE {key_range.where_sql()}",
                    key_range.start,
                    key_range.end,
                )
            except asyncpg.ForeignKeyViolationError as exc:
                # No row of the new data is at fault: the old rows cannot go.
                raise TerminalWriteError(
                    f"cannot replace {key_range} of {info.display}: rows of it are still "
                    f"referenced ({exc.detail or exc}); a replace deletes the slice's rows, "
                    "so the referencing rows must go first (or the foreign key be ON DELETE "
                    "CASCADE / SET NULL)",
                    table=info.display,
                ) from exc
            stats.deleted = int(status.rsplit(" ", 1)[-1])
        else:
            await conn.execute(f"TRUNCATE {info.qualified}")
    stats.table = info.display
    return None
