"""Quoting of SQL identifiers: the one place where names become SQL text."""

from __future__ import annotations

from collections.abc import Iterable


def quote_ident(name: str) -> str:
    """Quote ``name`` as a PostgreSQL identifier, whatever it contains."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"an identifier must be a non-empty str, got {name!r}")
    if "\x00" in name:
        raise ValueError(f"an identifier cannot contain a NUL byte: {name!r}")
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str | None, table: str) -> str:
    """``"schema"."table"``, or ``"table"`` when no schema is given."""
    if schema is None:
        return quote_ident(table)
    return f"{quote_ident(schema)}.{quote_ident(table)}"


def column_list(columns: Iterable[str]) -> str:
    return ", ".join(quote_ident(c) for c in columns)
