"""Serial and identity columns loaded with explicit values: their sequences are moved past the
highest value written, as pg_restore does, so that a later INSERT that leaves the column to its
default does not draw a value the load already used."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import pandas as pd

from ._catalog import TableInfo
from ._locks import SEQUENCE

if TYPE_CHECKING:
    import asyncpg

    from ._modes import WriteMode


_SEQUENCE_SQL = """
SELECT has_sequence_privilege(s.seq, 'SELECT') AND has_sequence_privilege(s.seq, 'UPDATE')
           AS allowed,
       p.seqincrement AS increment, p.seqmax AS maxvalue
FROM (SELECT $1::regclass AS seq) s JOIN pg_sequence p ON p.seqrelid = s.seq
"""


def sequence_columns(info: TableInfo, columns: Sequence[str], mode: WriteMode) -> tuple[str, ...]:
    """The written columns whose default draws from a sequence; none for ``update``, which
    adds no rows."""
    if not mode.inserts:
        return ()
    return tuple(name for name in columns if info.columns[name].sequence)


def column_maxima(frame: pd.DataFrame, names: Sequence[str]) -> dict[str, int]:
    """The highest value of each column in ``frame`` (NULLs skipped), for columns that have
    one. Called after the chunk's conversion, so the values are integers the column took;
    compared as Python ints, exactly (an object column of ints read as float64 would round
    anything past 2**53)."""
    maxima = {}
    for name in names:
        values = frame[name].dropna()
        if values.empty:
            continue
        if pd.api.types.is_integer_dtype(values.dtype):
            maxima[name] = int(values.max())
        else:
            maxima[name] = max(int(v) for v in values.tolist())
    return maxima


def merge_maxima(into: dict[str, int], more: Mapping[str, int]) -> None:
    for name, value in more.items():
        into[name] = max(value, into.get(name, value))


async def advance_sequences(
    conn: asyncpg.Connection, info: TableInfo, maxima: Mapping[str, int]
) -> list[str]:
    """Move each column's sequence forward so that its next value is above the column's
    maximum; one line per column for the run's log, saying what was done.

    Only forwards: the next value is read from the sequence itself (a RESTART or
    ``setval(..., false)`` included), and a sequence already past the maximum is left alone.
    Never past the sequence's MAXVALUE: it then stops there, and the next default value
    fails rather than repeat one. The sequences are locked in name order, so that writers
    of the same table cannot deadlock on them."""
    targets = sorted(
        (column.sequence, name, maxima[name])
        for name, column in info.columns.items()
        if name in maxima and column.sequence is not None
    )
    lines = []
    for sequence, name, value in targets:
        where = f"sequence {sequence} of {info.display}.{name}"
        meta = await conn.fetchrow(_SEQUENCE_SQL, sequence)
        if meta is None or meta["increment"] < 0:
            continue  # a descending sequence draws below what was written, not into it
        if not meta["allowed"]:
            lines.append(
                f"{where} not advanced to {value}: the role lacks SELECT or UPDATE on it; "
                "a later INSERT without this column may draw a value already written"
            )
            continue
        await conn.execute(
            "SELECT pg_advisory_xact_lock($1, $2::regclass::oid::int)", SEQUENCE, sequence
        )
        # The sequence string comes from pg_get_serial_sequence: qualified and quoted.
        state = await conn.fetchrow(f"SELECT last_value, is_called FROM {sequence}")
        following = state["last_value"] + meta["increment"] * state["is_called"]
        if value < following:
            continue
        target = min(value, meta["maxvalue"])
        await conn.execute("SELECT setval($1::regclass, $2)", sequence, target)
        if target < value:
            lines.append(
                f"{where} stopped at its MAXVALUE {target}: values up to {value} were written; "
                "the next INSERT without this column will fail"
            )
        else:
            lines.append(f"{where} advanced to {value}")
    return lines
