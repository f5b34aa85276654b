"""Transaction-level advisory locks that make concurrent writers take turns where the table's
own locks would let them both through.

Each kind of lock has a first key of its own (the second identifies the object), constants
chosen so that they do not meet an application's (pg_class oid, object oid) convention. All
are ``pg_advisory_xact_lock``: released at COMMIT or ROLLBACK, or when the backend ends, so a
crashed writer never leaves one behind, and subject to the session's ``lock_timeout``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncpg

    from ._catalog import TableInfo
    from .key_range import KeyRange

# Sequences advanced past explicit values (second key: the sequence's oid).
SEQUENCE = 0x5E0A_DB17
# A slice being replaced (second key: a hash of table oid, column and bounds).
SLICE = 0x5E0A_DB18
# A table (or schema) being created (second key: a hash of its qualified name).
CREATE = 0x5E0A_DB19


def key(*parts: Any) -> int:
    """A signed 32-bit key for ``parts``, the same in every process and for equal values of
    other types (a date and its midnight, an instant in any time zone, 5 and 5.0). Two objects
    that share a key only wait for each other when they need not: never a wrong result."""
    text = "\x00".join(_canonical(p) for p in parts)
    digest = hashlib.blake2b(text.encode(), digest_size=4)
    return int.from_bytes(digest.digest(), "big", signed=True)


def _canonical(value: Any) -> str:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return str(value.isoformat())
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time()).isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


async def lock(conn: asyncpg.Connection, space: int, *parts: Any) -> None:
    """Wait for the lock on ``parts`` in ``space``, held until the transaction ends."""
    await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", space, key(*parts))


def slice_key(info: TableInfo, key_range: KeyRange) -> tuple[Any, ...]:
    """What identifies a slice for its SLICE lock: the table's oid (however the writers spell
    its name), the column and the bounds."""
    return (info.oid, key_range.column, key_range.start, key_range.end)


def lock_sql(space: int, *parts: Any) -> str:
    """The lock as a statement for a batch: both keys are integers made here."""
    return f"SELECT pg_advisory_xact_lock({int(space)}, {int(key(*parts))})"
