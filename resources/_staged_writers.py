"""The staged modes, ``update`` and ``upsert``: rows go by binary COPY into a temporary staging
table and are applied by one set-based statement, the last row winning where a key repeats,
in key order so that concurrent writers of overlapping keys never deadlock."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from ._binary_copy import copy_data
from ._identifiers import column_list, quote_ident
from ._mode_writer import ModeWriter, pieces
from ._quarantine import Rejected
from ._retry import is_data_error
from ._txn import Savepoint

# A table has at most 1,600 columns (MaxHeapAttributeNumber).
MAX_COLUMNS = 1_600


@dataclass(slots=True)
class StagedWriter(ModeWriter):
    stage: str = ""
    order: str = ""
    #: Global row number of each staged row, in staging order (quarantine only).
    positions: list[int] = field(default_factory=list)
    #: With quarantine, rows the apply refused, set aside one by one while the rest is
    #: applied, still in one statement in key order.
    rejected: list[Rejected] = field(default_factory=list)

    @property
    def key_columns(self) -> Sequence[str]:
        return self.options.key_columns

    @property
    def apply_once(self) -> bool:
        return self.options.apply_once

    def setup_sql(self) -> list[str]:
        # One stage per transaction, dropped at its end: the name can be the same every
        # time, so that the apply's statement is prepared once per connection, not per write.
        self.stage = "bulk_stage"
        # Same column types as the target (typmods and domains included), none of its
        # constraints; dropped at COMMIT or ROLLBACK.
        create = (
            f"CREATE TEMP TABLE {quote_ident(self.stage)} ON COMMIT DROP AS "
            f"SELECT {column_list(self.columns)} FROM {self.info.qualified} WITH NO DATA"
        )
        if len(self.columns) >= MAX_COLUMNS:
            # No room for an order column: a temp table filled only by COPY stores its rows
            # in insertion order, so their physical position orders them as well.
            self.order = "ctid"
            return [create]
        self.order = quote_ident(_unused_name("bulk_row_order", self.columns))
        return [
            create,
            f"ALTER TABLE {quote_ident(self.stage)} ADD COLUMN "
            f"{self.order} bigint GENERATED ALWAYS AS IDENTITY",
        ]

    async def send(self, conn: asyncpg.Connection, records: list[tuple[Any, ...]]) -> int:
        if not self.apply_once:
            await conn.execute(f"TRUNCATE {quote_ident(self.stage)}", timeout=self.timeout)
        await conn.copy_records_to_table(
            self.stage, columns=list(self.columns), records=records, timeout=self.timeout
        )
        if self.apply_once:
            return 0
        return await self._apply(conn)

    async def send_payload(self, conn: asyncpg.Connection, payload: bytes | memoryview) -> int:
        if not self.apply_once:
            await conn.execute(f"TRUNCATE {quote_ident(self.stage)}", timeout=self.timeout)
        await self.send_stream(conn, copy_data(pieces(payload)))
        if self.apply_once:
            return 0
        return await self._apply(conn)

    @property
    def streams(self) -> bool:
        return self.apply_once

    async def send_stream(
        self, conn: asyncpg.Connection, source: AsyncIterator[bytes | memoryview]
    ) -> int:
        await conn.copy_to_table(
            self.stage,
            columns=list(self.columns),
            source=source,
            format="binary",
            timeout=self.timeout,
        )
        return 0

    async def finish(self, conn: asyncpg.Connection) -> tuple[int, int] | None:
        if not self.apply_once:
            return None
        while True:
            # Under a savepoint: if the server refuses a row, the stage is still there to
            # find which one.
            savepoint = Savepoint(conn)
            await savepoint.start()
            try:
                counts = await conn.fetchrow(self.counted_apply_sql(), timeout=self.timeout)
            except asyncpg.PostgresError as exc:
                await savepoint.rollback()
                if not is_data_error(exc) or self.order == "ctid":
                    raise
                failing = await self._first_failing_row(conn)
                if failing is None or not self.options.quarantine:
                    exc.input_row = None if failing is None else failing[0] - 1
                    raise
                await self._set_aside(conn, *failing)
                continue
            # Left open rather than released: COMMIT ends it, a round trip sooner.
            return int(counts["affected"]), int(counts["duplicates"])

    async def _set_aside(
        self, conn: asyncpg.Connection, order: int, error: asyncpg.PostgresError
    ) -> None:
        """Move the staged row numbered ``order`` out of the stage into ``rejected``."""
        stage = quote_ident(self.stage)
        row = await conn.fetchrow(
            f"SELECT row_to_json(r)::text AS data, "
            f"(SELECT count(*) FROM {stage} WHERE {self.order} <= $1) AS rank "
            f"FROM (SELECT {column_list(self.columns)} FROM {stage} "
            f"WHERE {self.order} = $1) AS r",
            order,
            timeout=self.timeout,
        )
        await conn.execute(f"DELETE FROM {stage} WHERE {self.order} = $1", order)
        position = self.positions.pop(int(row["rank"]) - 1)
        self.rejected.append(Rejected.from_error(position, error, json.loads(row["data"])))

    async def _apply(self, conn: asyncpg.Connection, upto: int | None = None) -> int:
        status = await conn.execute(self.apply_sql(upto), timeout=self.timeout)
        return int(status.rsplit(" ", 1)[-1])

    async def _first_failing_row(
        self, conn: asyncpg.Connection
    ) -> tuple[int, asyncpg.PostgresError] | None:
        """Bisect on the staged rows that the apply uses (the last per key, numbered in
        input order): the smallest n such that applying rows 1..n fails names the row, in
        about log2(rows) applies, each rolled back and each in key order like the apply
        itself. Returns n and the server's error for it."""
        high = await conn.fetchval(
            f"SELECT max({self.order}) FROM {quote_ident(self.stage)}", timeout=self.timeout
        )
        low = 1
        error = None if high is None else await self._fails(conn, high)
        if high is None or error is None:
            return None
        while low < high:
            middle = (low + high) // 2
            if (failed := await self._fails(conn, middle)) is not None:
                high, error = middle, failed
            else:
                low = middle + 1
        return int(low), error

    async def _fails(self, conn: asyncpg.Connection, upto: int) -> asyncpg.PostgresError | None:
        probe = Savepoint(conn)
        await probe.start()
        try:
            await self._apply(conn, upto)
        except asyncpg.PostgresError as exc:
            if not is_data_error(exc):
                raise
            return exc
        finally:
            await probe.rollback()
        return None

    def latest_per_key(self, upto: int | None = None) -> str:
        """The last staged row of each key; with ``upto``, only those among the first
        ``upto`` rows staged."""
        keys = column_list(self.key_columns)
        order_output = "" if self.order == "ctid" else f", {self.order}"
        where = "" if upto is None else f" WHERE s.{self.order} <= {int(upto)}"
        # Rows were staged in input order, so the highest order number is the last row given.
        return (
            f"SELECT * FROM (SELECT DISTINCT ON ({keys}) {column_list(self.columns)}"
            f"{order_output} FROM {quote_ident(self.stage)} "
            f"ORDER BY {keys}, {self.order} DESC) AS s{where}"
        )

    def apply_sql(self, upto: int | None = None) -> str:
        return self.apply_from(f"({self.latest_per_key(upto)})")

    def counted_apply_sql(self) -> str:
        """The apply and its counts in one statement: rows affected, and staged rows that a
        later row of the same key overrode (one pass over the stage, not two)."""
        return (
            f"WITH bulk_latest AS MATERIALIZED ({self.latest_per_key()}), "
            f"bulk_applied AS ({self.apply_from('bulk_latest')} RETURNING 1) "
            "SELECT (SELECT count(*) FROM bulk_applied) AS affected, "
            f"(SELECT count(*) FROM {quote_ident(self.stage)}) "
            "- (SELECT count(*) FROM bulk_latest) AS duplicates"
        )

    def apply_from(self, source: str) -> str:
        """The statement applying the rows of ``source`` (a relation, aliased ``s``)."""
        raise NotImplementedError


class UpdateWriter(StagedWriter):
    def apply_from(self, source: str) -> str:
        values = [c for c in self.columns if c not in self.key_columns]
        assignments = ", ".join(f"{quote_ident(c)} = s.{quote_ident(c)}" for c in values)
        match = " AND ".join(f"t.{quote_ident(k)} = s.{quote_ident(k)}" for k in self.key_columns)
        return (
            f"UPDATE {self.info.qualified} AS t SET {assignments} FROM {source} AS s WHERE {match}"
        )


class UpsertWriter(StagedWriter):
    def apply_from(self, source: str) -> str:
        keys = column_list(self.key_columns)
        values = [c for c in self.columns if c not in self.key_columns]
        action = (
            "DO UPDATE SET "
            + ", ".join(f"{quote_ident(c)} = EXCLUDED.{quote_ident(c)}" for c in values)
            if values
            else "DO NOTHING"
        )
        # Rows go in key order, so concurrent upserts of overlapping keys take their row locks
        # in the same order and do not deadlock each other.
        return (
            f"INSERT INTO {self.info.qualified} ({column_list(self.columns)}) "
            f"SELECT {column_list(self.columns)} FROM {source} AS s "
            f"ORDER BY {keys} ON CONFLICT ({keys}) {action}"
        )


def _unused_name(base: str, taken: Sequence[str]) -> str:
    name, n = base, 0
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    return name
