"""Serial and identity columns loaded with explicit values: their sequences are moved past the
highest value written, as pg_restore does, so that a later INSERT that leaves the column to its
default does not draw a value the load already used."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import pandas as pd

from ._catalog import TableInfo

if TYPE_CHECKING:
    import asyncpg

# Advisory locks of this module are keyed (pg_class's oid, the sequence's oid): two writers
# that both check and set one sequence take turns, so the lower value never lands last.
_PG_CLASS_OID = 1259

# setval only forwards: never below what nextval has already handed out (last_value), nor for
# a descending sequence. A role that may insert but not setval leaves the sequence alone.
_ADVANCE_SQL = """
SELECT CASE
    WHEN NOT has_sequence_privilege(s.seq, 'UPDATE')
      OR NOT has_sequence_privilege(s.seq, 'USAGE, SELECT') THEN 'no privilege'
    WHEN p.seqincrement > 0 AND $2 > coalesce(pg_sequence_last_value(s.seq), p.seqstart - 1)
      THEN 'set ' || setval(s.seq, $2)
END
FROM (SELECT $1::regclass AS seq) s JOIN pg_sequence p ON p.seqrelid = s.seq
"""


def sequence_columns(info: TableInfo, columns: Sequence[str], mode: str) -> tuple[str, ...]:
    """The written columns whose default draws from a sequence; none for ``update``, which
    adds no rows."""
    if mode == "update":
        return ()
    return tuple(name for name in columns if info.columns[name].sequence)


def column_maxima(frame: pd.DataFrame, names: Sequence[str]) -> dict[str, int]:
    """The highest value of each column in ``frame`` (NULLs skipped), for columns that have
    one. Called after the chunk's conversion, so the values are integers the column took."""
    maxima = {}
    for name in names:
        value = pd.to_numeric(frame[name], errors="coerce").max()
        if value is not None and not pd.isna(value) and math.isfinite(float(value)):
            maxima[name] = int(value)
    return maxima


def merge_maxima(into: dict[str, int], more: Mapping[str, int]) -> None:
    for name, value in more.items():
        into[name] = max(value, into.get(name, value))


async def advance_sequences(
    conn: asyncpg.Connection, info: TableInfo, maxima: Mapping[str, int]
) -> list[str]:
    """Move each column's sequence to its maximum where it is behind; one line per column
    for the run's log, saying what was done."""
    lines = []
    for name, value in maxima.items():
        sequence = info.columns[name].sequence
        if sequence is None:
            continue
        await conn.execute(
            "SELECT pg_advisory_xact_lock($1, $2::regclass::oid::int)", _PG_CLASS_OID, sequence
        )
        outcome = await conn.fetchval(_ADVANCE_SQL, sequence, value)
        if outcome == "no privilege":
            lines.append(
                f"sequence {sequence} of {info.display}.{name} not advanced to {value}: the "
                "role lacks UPDATE or USAGE on it; a later INSERT without this column may "
                "draw a value already written"
            )
        elif outcome is not None:
            lines.append(f"sequence {sequence} of {info.display}.{name} advanced to {value}")
    return lines
