"""What a fetched dataset declares against the table that already exists: a column the table
lacks, or a dtype whose values the column's type cannot take (the spec says int64, the table
has text), fails before anything is fetched or written, naming the table, the column, both
types and the statement that would reconcile them.

Each dtype family is one entry of :data:`DTYPE_FAMILIES`: the column types that take its
values unchanged (the writer's type contract), and the type to suggest for ``ALTER TABLE``.
A dtype outside every family (``string``, ``object``) is not checked here: text goes into
many types (uuid, jsonb, enums), and the writer judges each value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from resources import SchemaMismatchError, qualified, quote_ident

from .specs import DatasetSpec, FetchSource

if TYPE_CHECKING:
    from resources import PostgresBulkWriter

__all__ = ["DTYPE_FAMILIES", "DtypeFamily", "check_table"]

_INTEGERS = frozenset({"smallint", "integer", "bigint"})
_FLOATS = frozenset({"real", "double precision"})

# The table's columns, a domain read as its base type (format_type without the modifier, so
# numeric(12, 2) and varchar(20) compare as numeric and character varying).
_COLUMNS_SQL = """
SELECT a.attname AS name,
       format_type(a.atttypid, a.atttypmod) AS shown,
       format_type(coalesce(nullif(t.typbasetype, 0), a.atttypid), NULL) AS base,
       n.nspname AS schema
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
"""


@dataclass(frozen=True, slots=True)
class DtypeFamily:
    """Dtypes that go into the same column types."""

    name: str
    matches: Callable[[str], bool]
    #: Column types that take the values as they are.
    accepts: frozenset[str]
    #: The column type to suggest in ``ALTER TABLE ... TYPE``.
    suggest: str


def _dtype(predicate: Callable[[object], bool]) -> Callable[[str], bool]:
    def matches(dtype: str) -> bool:
        if dtype == "date":
            return False
        return bool(predicate(pd.api.types.pandas_dtype(dtype)))

    return matches


DTYPE_FAMILIES: tuple[DtypeFamily, ...] = (
    DtypeFamily("boolean", _dtype(pd.api.types.is_bool_dtype), frozenset({"boolean"}), "boolean"),
    DtypeFamily(
        "integer",
        _dtype(pd.api.types.is_integer_dtype),
        _INTEGERS | _FLOATS | {"numeric"},
        "bigint",
    ),
    DtypeFamily(
        "float",
        _dtype(pd.api.types.is_float_dtype),
        _FLOATS | {"numeric"},
        "double precision",
    ),
    DtypeFamily(
        "aware timestamp",
        _dtype(lambda d: isinstance(d, pd.DatetimeTZDtype)),
        frozenset({"timestamp with time zone"}),
        "timestamptz",
    ),
    DtypeFamily(
        "naive timestamp",
        _dtype(pd.api.types.is_datetime64_dtype),
        frozenset({"timestamp without time zone"}),
        "timestamp",
    ),
    DtypeFamily("date", lambda dtype: dtype == "date", frozenset({"date"}), "date"),
)


def family_of(dtype: str) -> DtypeFamily | None:
    return next((f for f in DTYPE_FAMILIES if f.matches(dtype)), None)


def check_table(writer: PostgresBulkWriter, spec: DatasetSpec) -> None:
    """Refuse a fetched dataset whose declared columns the existing table cannot take.

    Raises:
        SchemaMismatchError: naming table, column, both types and what to run.
    """
    source = spec.source
    if not isinstance(source, FetchSource) or not (source.dtypes or source.columns):
        return
    rows = writer.fetch(_COLUMNS_SQL, qualified(spec.schema_name, spec.table))
    if not rows:
        return  # no table yet: create makes it from the data, or the write says it is missing
    # Named with the schema the search_path found it in: the statement to run must hit it.
    schema = rows[0]["schema"]
    table = qualified(schema, spec.table)
    display = f"{schema}.{spec.table}"
    columns = {r["name"]: r for r in rows}
    wanted = list(source.columns or []) + [
        c for c in source.dtypes if c not in (source.columns or [])
    ]
    for column in wanted:
        dtype = source.dtypes.get(column)
        family = None if dtype is None else family_of(dtype)
        if column not in columns:
            add = f" {family.suggest}" if family is not None else " <type>"
            raise SchemaMismatchError(
                f"table {display}, column {column!r}: the dataset {spec.name} declares it"
                f"{f' ({dtype})' if dtype else ''}, the table has no such column; run ALTER "
                f"TABLE {table} ADD COLUMN {quote_ident(column)}{add}, or drop the table "
                "(create: true makes it again from the data)",
                table=display,
            )
        if family is None:
            continue
        row = columns[column]
        if row["base"] in family.accepts:
            continue
        name = quote_ident(column)
        raise SchemaMismatchError(
            f"table {display}, column {column!r}: the dataset {spec.name} declares dtype "
            f"{dtype} ({family.name}), the table's column is {row['shown']}; run ALTER TABLE "
            f"{table} ALTER COLUMN {name} TYPE {family.suggest} USING {name}::{family.suggest}, "
            "or drop the table (create: true makes it again from the data)",
            table=display,
        )
