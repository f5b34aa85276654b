"""Quoting of SQL identifiers: the one place where names become SQL text."""

from __future__ import annotations

from collections.abc import Iterable

# PostgreSQL keeps the first NAMEDATALEN - 1 = 63 bytes of an identifier and drops the rest
# with only a NOTICE: two longer names sharing their first 63 bytes name the same table.
MAX_IDENTIFIER_BYTES = 63


def check_identifier(name: object, *, what: str = "identifier") -> str:
    """``name`` if PostgreSQL would keep it exactly as given; else a ValueError naming it."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"{what} must be a non-empty str, got {name!r}")
    if "\x00" in name:
        raise ValueError(f"{what} cannot contain a NUL byte: {name!r}")
    size = len(name.encode())
    if size > MAX_IDENTIFIER_BYTES:
        raise ValueError(
            f"{what} {name!r} is {size} bytes long; PostgreSQL keeps only the first "
            f"{MAX_IDENTIFIER_BYTES} bytes of a name, so it would silently refer to "
            f"{name.encode()[:MAX_IDENTIFIER_BYTES].decode(errors='ignore')!r}, which another "
            "name may share: use a shorter name"
        )
    return name


def quote_ident(name: str) -> str:
    """Quote ``name`` as a PostgreSQL identifier, whatever it contains."""
    return '"' + check_identifier(name).replace('"', '""') + '"'


def qualified(schema: str | None, table: str) -> str:
    """``"schema"."table"``, or ``"table"`` when no schema is given."""
    if schema is None:
        return quote_ident(table)
    return f"{quote_ident(schema)}.{quote_ident(table)}"


def column_list(columns: Iterable[str]) -> str:
    return ", ".join(quote_ident(c) for c in columns)
