"""Serial and identity columns loaded with explicit values: their sequences are moved past the
highest value written, as pg_restore does, so that a later INSERT that leaves the column to its
default does not draw a value the load already used."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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
    targets = _targets(info, maxima)
    lines = []
    for sequence, name, value in targets:
        where = f"sequence {sequence} of {info.display}.{name}"
        meta = await conn.fetchrow(_SEQUENCE_SQL, sequence)
        if meta is None or meta["increment"] < 0:
            continue  # a descending sequence draws below what was written, not into it
        if not meta["allowed"]:
            lines.append(_line(where, value, "denied"))
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
        lines.append(_line(where, value, str(target)))
    return lines


def _targets(info: TableInfo, maxima: Mapping[str, int]) -> list[tuple[str, str, int]]:
    """(sequence, column, highest value written), in sequence name order: writers of the same
    table lock them in this order, so that they cannot deadlock on them."""
    return sorted(
        (column.sequence, name, maxima[name])
        for name, column in info.columns.items()
        if name in maxima and column.sequence is not None
    )


# What the folded advance reports per sequence, by its position in the statement:
# "bulk_assets sequence 2 denied" or "bulk_assets sequence 2 <value it was set to>".
_NOTICE = re.compile(r"bulk_assets sequence (\d+) (denied|-?\d+)")
#: The first statement of a DO block that reports by notices: they reach the client even
#: where the role or database sets client_min_messages above notice (for the rest of the
#: transaction only, as SET LOCAL would).
NOTICES_HEARD = "PERFORM set_config('client_min_messages', 'notice', true);"
# A sequence name goes into the statement as a literal: one that would need escaping (and
# any with a dollar sign, which could end the block's quoting) takes the statement-by-
# statement path instead.
_UNSAFE = re.compile(r"['\\$]")


@dataclass(frozen=True, slots=True)
class FoldedAdvance:
    """The advance as one statement that needs no answer, sent ahead of COMMIT; what it did
    comes back as notices, read by :meth:`lines` once COMMIT is through."""

    display: str
    targets: tuple[tuple[str, str, int], ...]
    notices: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, info: TableInfo, maxima: Mapping[str, int]) -> FoldedAdvance | None:
        targets = _targets(info, maxima)
        if not targets or any(_UNSAFE.search(sequence) for sequence, _, _ in targets):
            return None
        return cls(info.display, tuple(targets))

    def sql(self) -> str:
        # The same steps as advance_sequences, in the same order (sequences in name order,
        # each locked before it is read); the names are the server's own quoted output of
        # pg_get_serial_sequence, the values Python ints.
        names = ", ".join(f"'{sequence}'" for sequence, _, _ in self.targets)
        values = ", ".join(str(int(value)) for _, _, value in self.targets)
        return (
            "DO $bulk_assets$ DECLARE "
            f"seqs text[] := ARRAY[{names}]; vals numeric[] := ARRAY[{values}]; "
            "meta record; state record; following numeric; target numeric; "
            f"BEGIN {NOTICES_HEARD} FOR i IN 1 .. array_length(seqs, 1) LOOP "
            "SELECT has_sequence_privilege(seqs[i]::regclass, 'SELECT') "
            "AND has_sequence_privilege(seqs[i]::regclass, 'UPDATE') AS allowed, "
            "p.seqincrement AS increment, p.seqmax AS maxvalue INTO meta "
            "FROM pg_sequence p WHERE p.seqrelid = seqs[i]::regclass; "
            "CONTINUE WHEN NOT FOUND OR meta.increment < 0; "
            "IF NOT meta.allowed THEN RAISE NOTICE 'bulk_assets sequence % denied', i; "
            "CONTINUE; END IF; "
            f"PERFORM pg_advisory_xact_lock({SEQUENCE}, seqs[i]::regclass::oid::int); "
            "EXECUTE format('SELECT last_value, is_called FROM %s', seqs[i]) INTO state; "
            "following := state.last_value + meta.increment * state.is_called::int; "
            "CONTINUE WHEN vals[i] < following; "
            "target := least(vals[i], meta.maxvalue); "
            "PERFORM setval(seqs[i]::regclass, target::bigint); "
            "RAISE NOTICE 'bulk_assets sequence % %', i, target; "
            "END LOOP; END $bulk_assets$"
        )

    def heard(self, conn: object, message: asyncpg.PostgresLogMessage) -> None:
        self.notices.append(str(getattr(message, "message", "")))

    def lines(self) -> list[str]:
        lines = []
        for notice in self.notices:
            match = _NOTICE.fullmatch(notice)
            if match is None:
                continue
            sequence, name, value = self.targets[int(match.group(1)) - 1]
            lines.append(_line(f"sequence {sequence} of {self.display}.{name}", value, match[2]))
        return lines


def _line(where: str, value: int, outcome: str) -> str:
    if outcome == "denied":
        return (
            f"{where} not advanced to {value}: the role lacks SELECT or UPDATE on it; "
            "a later INSERT without this column may draw a value already written"
        )
    if int(outcome) < value:
        return (
            f"{where} stopped at its MAXVALUE {outcome}: values up to {value} were written; "
            "the next INSERT without this column will fail"
        )
    return f"{where} advanced to {value}"
