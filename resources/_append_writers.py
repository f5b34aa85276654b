"""The appending modes: binary COPY, a pipelined prepared INSERT (executemany), and multi-row
INSERT statements."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from ._binary_copy import copy_data
from ._mode_writer import INSERT_BIND_PARAMS, ModeWriter, pieces


@dataclass(slots=True)
class CopyWriter(ModeWriter):
    async def send(self, conn: asyncpg.Connection, records: list[tuple[Any, ...]]) -> int:
        await conn.copy_records_to_table(
            self.info.name,
            schema_name=self.info.schema,
            columns=list(self.columns),
            records=records,
            timeout=self.timeout,
        )
        return len(records)

    async def send_payload(self, conn: asyncpg.Connection, payload: bytes | memoryview) -> int:
        return await self.send_stream(conn, copy_data(pieces(payload)))

    @property
    def streams(self) -> bool:
        return True

    async def send_stream(
        self, conn: asyncpg.Connection, source: AsyncIterator[bytes | memoryview]
    ) -> int:
        status = await conn.copy_to_table(
            self.info.name,
            schema_name=self.info.schema,
            columns=list(self.columns),
            source=source,
            format="binary",
            freeze=self.options.freeze or None,
            timeout=self.timeout,
        )
        return int(status.rsplit(" ", 1)[-1])


class ExecutemanyWriter(ModeWriter):
    async def send(self, conn: asyncpg.Connection, records: list[tuple[Any, ...]]) -> int:
        await conn.executemany(self.insert_sql(), records, timeout=self.timeout)
        return len(records)


@dataclass(slots=True)
class InsertWriter(ModeWriter):
    _sql: dict[int, str] = field(default_factory=dict)
    #: Rows of the chunk before the statement in flight: bind parameter $n of a failing
    #: statement is row batch_start + (n - 1) // width of the chunk.
    batch_start: int = 0

    @property
    def rows_per_statement(self) -> int:
        return max(1, INSERT_BIND_PARAMS // max(1, len(self.columns)))

    async def send(self, conn: asyncpg.Connection, records: list[tuple[Any, ...]]) -> int:
        step = self.rows_per_statement
        for start in range(0, len(records), step):
            self.batch_start = start
            batch = records[start : start + step]
            args = [value for row in batch for value in row]
            sql = self._sql.get(len(batch)) or self._sql.setdefault(
                len(batch), self.insert_sql(len(batch))
            )
            await conn.execute(sql, *args, timeout=self.timeout)
        return len(records)
