"""What the target table looks like: columns, types, defaults, unique keys; and DDL for a table
created from a DataFrame's dtypes."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ._identifiers import check_identifier, column_list, qualified, quote_ident
from .errors import SchemaMismatchError

if TYPE_CHECKING:
    import asyncpg

    from ._modes import WriteMode

# Everything the writer reads about a table, as one JSON text: its name and kind, columns
# (domains resolve to their base type; arrays report their element type), and unique keys.
# A column's sequence is the one serial or identity owns, else the one its DEFAULT draws from
# (a sequence shared by several tables, or a serial column of a partition, which PostgreSQL 13
# to 16 do not report as owned). Unique keys are those an ON CONFLICT on exactly these columns
# can use: not partial, not on expressions, not deferrable. ``{oid}`` is the table's oid.
# The same text, hashed, is the description's fingerprint: a write re-computes it inside its
# transaction to learn whether a cached description still holds (``_catalog_cache``).
BODY_SQL = """
SELECT json_build_object(
  'schema', n.nspname, 'name', c.relname, 'relkind', c.relkind::text,
  'columns', (SELECT coalesce(json_agg(x ORDER BY x.attnum), '[]') FROM (
    SELECT a.attnum, a.attname AS name,
       format_type(a.atttypid, a.atttypmod) AS sql_type,
       CASE WHEN bt.typcategory = 'A' THEN 'array' ELSE bt.typname END AS base_type,
       CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END AS typmod,
       a.attnotnull OR (t.typtype = 'd' AND t.typnotnull) AS not_null,
       a.atthasdef OR a.attidentity <> '' OR (t.typtype = 'd' AND t.typdefault IS NOT NULL)
           AS has_default,
       a.attgenerated <> '' AS generated,
       a.attidentity = 'a' AS identity_always,
       coalesce(
           pg_get_serial_sequence(a.attrelid::regclass::text, a.attname),
           (SELECT d.refobjid::regclass::text
            FROM pg_attrdef ad
            JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid
                            AND d.refclassid = 'pg_class'::regclass
            JOIN pg_class sc ON sc.oid = d.refobjid AND sc.relkind = 'S'
            WHERE ad.adrelid = a.attrelid AND ad.adnum = a.attnum
            ORDER BY d.refobjid LIMIT 1)
       ) AS sequence
    FROM pg_attribute a
    JOIN pg_type t ON t.oid = a.atttypid
    JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
    WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) x),
  'keys', (SELECT coalesce(json_agg(k.cols ORDER BY k.cols), '[]') FROM (
    SELECT array_agg(a.attname::text ORDER BY a.attname) AS cols
    FROM pg_index i
    JOIN LATERAL unnest(i.indkey) AS k(attnum) ON true
    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
    WHERE i.indrelid = c.oid AND i.indisunique AND i.indimmediate
      AND i.indpred IS NULL AND i.indexprs IS NULL
    GROUP BY i.indexrelid) k)
)::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = {oid}
"""

# The name resolved by reading the catalog with the statement's own snapshot, as to_regclass
# would resolve it (the schema given, else the first schema of the search_path that has it).
# to_regclass answers from the backend's catalog cache, which can still hold "no such table"
# after another session's CREATE committed while this transaction waited for its turn.
# One statement, sent as COPY (...) TO STDOUT: a simple query, so one round trip even on a
# connection that has not prepared it (a prepared statement costs two there, Parse and then
# Bind/Execute) and behind a transaction pooler, where nothing stays prepared. The names go
# in as escaped literals (``_literal``), like every identifier this package quotes.
_DESCRIBE_SQL = f"""
SELECT r.oid, md5(r.body) AS fingerprint, r.body
FROM (SELECT rc.oid, ({BODY_SQL.format(oid="rc.oid")}) AS body
      FROM pg_class rc JOIN pg_namespace rn ON rn.oid = rc.relnamespace
      WHERE rc.relname = @table
        AND CASE WHEN @schema::text IS NULL THEN rn.nspname = ANY (current_schemas(true))
                 ELSE rn.nspname = @schema::text END
      ORDER BY array_position(current_schemas(true), rn.nspname::text)
      LIMIT 1) r
"""
_RELKINDS = {
    "v": "a view",
    "m": "a materialized view",
    "f": "a foreign table",
    "i": "an index",
    "S": "a sequence",
    "c": "a composite type",
    "I": "a partitioned index",
}

_INT_RANGES = {
    "int2": (-(2**15), 2**15 - 1),
    "int4": (-(2**31), 2**31 - 1),
    "int8": (-(2**63), 2**63 - 1),
}


@dataclass(frozen=True, slots=True)
class ColumnInfo:
    name: str
    sql_type: str
    base_type: str
    typmod: int
    not_null: bool
    has_default: bool
    generated: bool
    #: GENERATED ALWAYS AS IDENTITY: INSERT refuses explicit values, COPY would take them.
    identity_always: bool = False
    #: The sequence the column's default draws from (qualified and quoted as needed), if any.
    sequence: str | None = None

    @property
    def required(self) -> bool:
        """A value must be given: NOT NULL with nothing to fill it in."""
        return self.not_null and not self.has_default and not self.generated

    @property
    def max_chars(self) -> int | None:
        """The n of varchar(n) / char(n) (typmod n + 4); ``None`` for other types or no limit."""
        if self.base_type in ("varchar", "bpchar") and self.typmod >= 4:
            return self.typmod - 4
        return None

    @property
    def numeric_precision(self) -> int | None:
        """The p of numeric(p, s); ``None`` for unconstrained numeric and other types."""
        # numeric(p, s) stores typmod as ((p << 16) | (s & 0x7FF)) + 4; -1 means unconstrained.
        if self.base_type == "numeric" and self.typmod >= 4:
            return ((self.typmod - 4) >> 16) & 0xFFFF
        return None

    @property
    def numeric_scale(self) -> int | None:
        """The s of numeric(p, s); ``None`` for unconstrained numeric and other types.

        Negative since PostgreSQL 15 (``numeric(5, -2)`` rounds to hundreds): the scale is an
        11-bit two's complement field, -1000 to 1000.
        """
        if self.base_type == "numeric" and self.typmod >= 4:
            return (((self.typmod - 4) & 0x7FF) ^ 0x400) - 0x400
        return None

    @property
    def int_range(self) -> tuple[int, int] | None:
        """The lowest and highest value of smallint, integer and bigint; ``None`` otherwise."""
        return _INT_RANGES.get(self.base_type)


@dataclass(frozen=True, slots=True)
class TableInfo:
    oid: int
    schema: str
    name: str
    columns: dict[str, ColumnInfo]
    unique_keys: tuple[frozenset[str], ...]
    partitioned: bool = False
    #: md5 of the description as the server wrote it: a write checks it still holds.
    fingerprint: str = ""

    @property
    def qualified(self) -> str:
        return qualified(self.schema, self.name)

    @property
    def display(self) -> str:
        return f"{self.schema}.{self.name}"


async def describe_table(
    conn: asyncpg.Connection, table: str, *, schema: str | None
) -> TableInfo | None:
    """The table as the server sees it now, or ``None`` if it does not exist."""
    sql = _DESCRIBE_SQL.replace("@table", _literal(table)).replace("@schema", _literal(schema))
    received = bytearray()

    async def sink(data: bytes) -> None:
        received.extend(data)

    await conn.copy_from_query(sql, output=sink, format="csv")
    if not received:
        return None
    # One CSV row: the oid and the md5 never need quoting; the body (quoted, with its quotes
    # doubled) is the rest of the line. Not the csv module: its 128 KiB field limit is less
    # than the description of a table of 1,600 columns.
    oid, fingerprint, text = received.decode().removesuffix("\n").split(",", 2)
    if text.startswith('"'):
        text = text[1:-1].replace('""', '"')
    body = json.loads(text)
    if body["relkind"] not in ("r", "p"):
        kind = _RELKINDS.get(body["relkind"], f"a relation of kind {body['relkind']!r}")
        display = f"{body['schema']}.{body['name']}"
        raise SchemaMismatchError(
            f"{display} is {kind}, not a table: bulk writes need a table", table=display
        )
    columns = {}
    for column in body["columns"]:
        column.pop("attnum")
        columns[column["name"]] = ColumnInfo(**column)
    return TableInfo(
        oid=int(oid),
        schema=body["schema"],
        name=body["name"],
        columns=columns,
        unique_keys=tuple(frozenset(cols) for cols in body["keys"]),
        partitioned=body["relkind"] == "p",
        fingerprint=fingerprint,
    )


def _literal(value: str | None) -> str:
    """``value`` as an SQL string literal that means the same whatever
    standard_conforming_strings says (E'' with its backslashes and quotes doubled)."""
    if value is None:
        return "NULL"
    return "E'" + check_identifier(value).replace("\\", "\\\\").replace("'", "''") + "'"


def check_columns(
    info: TableInfo,
    data_columns: Sequence[str],
    *,
    mode: WriteMode,
    key_columns: Sequence[str] = (),
) -> None:
    """Raise one error listing every difference between the data and the table."""
    extra = [c for c in data_columns if c not in info.columns]
    generated = [c for c in data_columns if c in info.columns and info.columns[c].generated]
    # Every mode refuses what INSERT refuses, COPY included (which would take the values):
    # an update only matches on its key columns and writes the others.
    always = [
        c
        for c in data_columns
        if c in info.columns
        and info.columns[c].identity_always
        and not (not mode.inserts and c in key_columns)
    ]
    missing = (
        []
        if not mode.inserts
        else [c.name for c in info.columns.values() if c.required and c.name not in data_columns]
    )
    problems = []
    if extra:
        problems.append(f"columns not in the table: {extra}")
    if generated:
        problems.append(f"generated columns cannot be written: {generated}")
    if always:
        problems.append(
            f"GENERATED ALWAYS identity columns take no values from the data: {always} "
            "(leave them out, or ALTER the column to GENERATED BY DEFAULT)"
        )
    if missing:
        problems.append(f"NOT NULL columns without a default missing from the data: {missing}")
    if problems:
        raise SchemaMismatchError(
            f"data does not fit table {info.display}: {'; '.join(problems)} "
            f"(data columns: {list(data_columns)}; table columns: {list(info.columns)})",
            table=info.display,
        )


def check_key_columns(
    info: TableInfo, data_columns: Sequence[str], key_columns: Sequence[str], *, mode: WriteMode
) -> None:
    absent = [k for k in key_columns if k not in data_columns]
    if absent:
        raise SchemaMismatchError(
            f"key_columns {absent} are not in the data for {info.display} "
            f"(data columns: {list(data_columns)})",
            table=info.display,
        )
    if not mode.inserts and set(data_columns) == set(key_columns):
        raise SchemaMismatchError(
            f"mode={mode.name!r} on {info.display}: the data has only the key columns "
            f"{list(key_columns)}, so there is nothing to update",
            table=info.display,
        )
    if mode.needs_unique_key and frozenset(key_columns) not in info.unique_keys:
        raise SchemaMismatchError(
            f"mode={mode.name!r} on {info.display} needs a primary key or unique index on exactly "
            f"{list(key_columns)}; the table has "
            f"{[sorted(k) for k in info.unique_keys] or 'none'}",
            table=info.display,
        )


def _sql_type_for(series: pd.Series) -> str:
    dtype = series.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        return "timestamptz"
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_unsigned_integer_dtype(dtype):
        # The next signed type up holds every value; uint64 needs numeric(20).
        return {1: "smallint", 2: "integer", 4: "bigint"}.get(dtype.itemsize, "numeric(20, 0)")
    if pd.api.types.is_integer_dtype(dtype):
        return {1: "smallint", 2: "smallint", 4: "integer"}.get(dtype.itemsize, "bigint")
    if pd.api.types.is_float_dtype(dtype):
        return "real" if dtype.itemsize == 4 else "double precision"
    if pd.api.types.is_datetime64_dtype(dtype):
        return "timestamp"
    if pd.api.types.is_timedelta64_dtype(dtype):
        return "interval"
    if pd.api.types.is_string_dtype(dtype) and not pd.api.types.is_object_dtype(dtype):
        return "text"
    sample = series.dropna()
    value = sample.iloc[0] if len(sample) else None
    for kind, sql in _OBJECT_TYPES:
        if isinstance(value, kind):
            if sql == "timestamp" and getattr(value, "tzinfo", None) is not None:
                return "timestamptz"
            return sql
    return "text"


# Order matters: bool before int, datetime before date.
_OBJECT_TYPES: tuple[tuple[type | tuple[type, ...], str], ...] = (
    ((bool, np.bool_), "boolean"),
    ((int, np.integer), "bigint"),
    ((float, np.floating), "double precision"),
    (decimal.Decimal, "numeric"),
    ((dict, list), "jsonb"),
    (uuid.UUID, "uuid"),
    ((bytes, bytearray, memoryview), "bytea"),
    (dt.datetime, "timestamp"),
    (dt.date, "date"),
    (dt.time, "time"),
    (dt.timedelta, "interval"),
    (str, "text"),
)


def create_table_sql(
    frame: pd.DataFrame, table: str, *, schema: str | None, key_columns: Sequence[str]
) -> str:
    """``CREATE TABLE IF NOT EXISTS`` with a column per frame column, typed from its dtype (or,
    for object columns, from the first non-null value); key columns form the primary key."""
    defs = []
    for name in frame.columns:
        sql_type = _sql_type_for(frame[name])
        not_null = " NOT NULL" if name in key_columns else ""
        defs.append(f"{quote_ident(str(name))} {sql_type}{not_null}")
    if key_columns:
        defs.append(f"PRIMARY KEY ({column_list(key_columns)})")
    return f"CREATE TABLE IF NOT EXISTS {qualified(schema, table)} ({', '.join(defs)})"
