"""Keeping bad rows aside (``on_bad_rows="quarantine"``): a chunk that fails is bisected down
to the rows that fail, the rest load, and each rejected row is recorded with its error in a
rejects table, in the same transaction as the good rows.

Client-side rejects (a value the type contract refuses) are found by converting halves of the
frame; server-side ones (a constraint, a trigger, a value the server refuses) by sending halves
under a SAVEPOINT. A chunk of n rows with k bad ones costs about k * log2(n) extra attempts;
a clean chunk costs one SAVEPOINT and one RELEASE.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import numpy as np
import pandas as pd

from ._catalog import TableInfo
from ._identifiers import qualified
from ._locks import CREATE, lock
from ._retry import is_data_error
from ._txn import Savepoint
from .errors import BadValueError

__all__ = [
    "Rejected",
    "convert_keeping_good_rows",
    "located",
    "record_rejects",
    "rejects_table_name",
    "send_keeping_good_rows",
]

# PostgreSQL truncates identifiers to 63 bytes (NAMEDATALEN - 1).
_MAX_IDENTIFIER = 63
_SUFFIX = "__rejects"


@dataclass(frozen=True, slots=True)
class Rejected:
    row: int
    column: str | None
    error: str
    sqlstate: str | None
    values: dict[str, Any]

    @classmethod
    def from_error(cls, row: int, exc: asyncpg.PostgresError, values: dict[str, Any]) -> Rejected:
        """The row the server refused with ``exc``."""
        return cls(row, getattr(exc, "column_name", None), _message(exc), exc.sqlstate, values)


Records = list[tuple[Any, ...]]


def located(rejects: list[Rejected], locate: Callable[[int], str | None] | None) -> list[Rejected]:
    """``rejects`` with where each row came from, when the data can say, in front of the
    error: ``"orders.csv, line 7: invalid input syntax for type uuid ..."``."""
    if locate is None:
        return rejects
    out = []
    for reject in rejects:
        source = locate(reject.row)
        out.append(
            reject if not source else dataclasses.replace(reject, error=f"{source}: {reject.error}")
        )
    return out


def convert_keeping_good_rows(
    frame: pd.DataFrame, convert: Callable[[pd.DataFrame, int], Records], *, offset: int
) -> tuple[Records, list[int], list[Rejected]]:
    """Convert ``frame`` (rows ``offset``..); rows whose values the contract refuses are
    bisected out. Returns the good records, their global row numbers, and the rejects."""
    try:
        return convert(frame, offset), list(range(offset, offset + len(frame))), []
    except BadValueError as exc:
        if len(frame) == 1:
            values = {str(k): v for k, v in frame.iloc[0].items()}
            return [], [], [Rejected(offset, exc.column, exc.reason, None, values)]
    middle = len(frame) // 2
    head = convert_keeping_good_rows(frame.iloc[:middle], convert, offset=offset)
    tail = convert_keeping_good_rows(
        frame.iloc[middle:].reset_index(drop=True), convert, offset=offset + middle
    )
    return head[0] + tail[0], head[1] + tail[1], head[2] + tail[2]


async def send_keeping_good_rows(
    conn: asyncpg.Connection,
    send: Callable[[Records], Awaitable[int]],
    records: Records,
    positions: Sequence[int],
    columns: Sequence[str],
) -> tuple[int, list[Rejected]]:
    """Send ``records`` under a SAVEPOINT; when the server refuses a value or a constraint,
    roll back to it and send each half the same way, down to single rows, which are
    rejected. Returns the rows affected and the rejects."""
    if not records:
        return 0, []
    savepoint = Savepoint(conn)
    await savepoint.start()
    try:
        affected = await send(records)
    except asyncpg.PostgresError as exc:
        await savepoint.rollback()
        if not is_data_error(exc):
            raise
        if len(records) == 1:
            return 0, [
                Rejected.from_error(positions[0], exc, dict(zip(columns, records[0], strict=True)))
            ]
        middle = len(records) // 2
        head = await send_keeping_good_rows(
            conn, send, records[:middle], positions[:middle], columns
        )
        tail = await send_keeping_good_rows(
            conn, send, records[middle:], positions[middle:], columns
        )
        return head[0] + tail[0], head[1] + tail[1]
    await savepoint.commit()
    return affected, []


def rejects_table_name(table: str, configured: str | None) -> str:
    if configured:
        return configured
    base = table.encode()[: _MAX_IDENTIFIER - len(_SUFFIX)].decode(errors="ignore")
    return base + _SUFFIX


async def record_rejects(
    conn: asyncpg.Connection,
    info: TableInfo,
    rejects_table: str,
    rejects: Sequence[Rejected],
    *,
    timeout: float | None,
) -> str:
    """Insert ``rejects`` into the rejects table (created if missing, in the target's schema);
    returns its display name."""
    target = qualified(info.schema, rejects_table)
    # CREATE TABLE IF NOT EXISTS needs CREATE on the schema even when the table exists: a
    # loader given a rejects table made for it needs no more than INSERT.
    exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", target, timeout=timeout)
    if not exists:
        # Writers setting their first rejects aside at once take turns creating the table.
        await lock(conn, CREATE, info.schema, rejects_table)
        await _create_rejects_table(conn, target, timeout=timeout)
    await conn.executemany(
        f"INSERT INTO {target} (target_table, row_index, column_name, error, sqlstate, row_data) "
        "VALUES ($1, $2, $3, $4, $5, $6::jsonb)",
        [
            (info.display, r.row, r.column, r.error, r.sqlstate, _row_json(r.values))
            for r in rejects
        ],
        timeout=timeout,
    )
    return f"{info.schema}.{rejects_table}"


async def _create_rejects_table(
    conn: asyncpg.Connection, target: str, *, timeout: float | None
) -> None:
    await conn.execute(
        f"CREATE TABLE IF NOT EXISTS {target} ("
        "rejected_at timestamptz NOT NULL DEFAULT now(), "
        "target_table text NOT NULL, "
        "row_index bigint NOT NULL, "
        "column_name text, "
        "error text NOT NULL, "
        "sqlstate text, "
        "row_data jsonb)",
        timeout=timeout,
    )


def _message(exc: asyncpg.PostgresError) -> str:
    message = getattr(exc, "message", None) or str(exc)
    detail = getattr(exc, "detail", None)
    return f"{message} ({detail})" if detail else message


def _row_json(values: dict[str, Any]) -> str:
    return json.dumps({k: _jsonable(v) for k, v in values.items()}, default=str)


def _jsonable(value: Any) -> Any:
    """The row as it was given, kept readable: jsonb refuses NaN and the NUL character."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)  # NaN: pandas' missing value
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, str):
        return value.replace("\x00", "\\x00")
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
