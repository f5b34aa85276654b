"""What every mode's writer does for one write: begin, send chunks (as records, an encoded
chunk, or one stream of them), finish before COMMIT."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from ._catalog import TableInfo
from ._identifiers import column_list

# Pieces of an encoded chunk handed to the driver: big enough to keep the socket busy, small
# enough not to copy the payload again.
_PIECE = 1 << 20


# PostgreSQL's wire protocol numbers bind parameters with an int16: 32,767 per statement.
MAX_BIND_PARAMS = 32_767


# Bind parameters per multi-row INSERT. Measured on PostgreSQL 18 with asyncpg, 200k rows:
# narrow (2 columns) 489k rows/s at 2,000 parameters, 290k at 3,000 and up; wide (10
# columns) 92k at 2,000, 55k at 2,500 and up. Past ~2,000 a statement costs more than the
# round trips it saves.
INSERT_BIND_PARAMS = 2_000


@dataclass(frozen=True, slots=True)
class WriterOptions:
    """How one write uses its mode; each kind of writer reads the options that concern it."""

    #: The columns that identify a row (staged modes).
    key_columns: Sequence[str] = ()
    #: Staged modes: stage every chunk and apply them all in one statement at finish(), so
    #: the write locks its rows in key order whatever the chunk order, and concurrent writers
    #: of overlapping keys cannot deadlock. Off for per-chunk commits, which apply each chunk
    #: in its own transaction.
    apply_once: bool = False
    #: on_bad_rows="quarantine": rows the server refuses are set aside, the rest written.
    quarantine: bool = False
    #: COPY ... FREEZE: the table was emptied by TRUNCATE or created in this transaction, so
    #: its rows can be written already frozen and all-visible. Readers then set no hint bits
    #: (the first scan after a plain load dirties every page) and VACUUM has nothing to freeze.
    freeze: bool = False


@dataclass(slots=True)
class ModeWriter:
    info: TableInfo
    columns: Sequence[str]
    timeout: float | None
    options: WriterOptions = field(default_factory=WriterOptions)

    def setup_sql(self) -> list[str]:
        """Statements to run once per transaction before the first chunk, that need no
        answer: they can travel with BEGIN."""
        return []

    async def begin(self, conn: asyncpg.Connection) -> None:
        """Run once per transaction, before the first chunk (when BEGIN did not carry
        :meth:`setup_sql`)."""
        if statements := self.setup_sql():
            await conn.execute(";\n".join(statements), timeout=self.timeout)

    async def send(self, conn: asyncpg.Connection, records: list[tuple[Any, ...]]) -> int:
        raise NotImplementedError

    async def send_payload(self, conn: asyncpg.Connection, payload: bytes | memoryview) -> int:
        """Send a chunk already encoded for binary COPY (BINARY_COPY_MODES only)."""
        raise NotImplementedError

    @property
    def streams(self) -> bool:
        """Whether :meth:`send_stream` takes several encoded chunks in one COPY."""
        return False

    async def send_stream(
        self, conn: asyncpg.Connection, source: AsyncIterator[bytes | memoryview]
    ) -> int:
        """One COPY of a binary stream (header, rows of many chunks, trailer); the rows it
        wrote (staged: 0, applied at :meth:`finish`)."""
        raise NotImplementedError

    async def finish(self, conn: asyncpg.Connection) -> tuple[int, int] | None:
        """Run once after the last chunk, before COMMIT: (rows affected, duplicate keys
        resolved) by the work deferred until then, or None if nothing was deferred."""
        return None

    def insert_sql(self, rows: int = 1) -> str:
        width = len(self.columns)
        values = ", ".join(
            "(" + ", ".join(f"${r * width + c + 1}" for c in range(width)) + ")"
            for r in range(rows)
        )
        return f"INSERT INTO {self.info.qualified} ({column_list(self.columns)}) VALUES {values}"


async def pieces(payload: bytes | memoryview) -> AsyncIterator[memoryview]:
    view = memoryview(payload)
    for start in range(0, len(view), _PIECE):
        yield view[start : start + _PIECE]
