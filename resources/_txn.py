"""Transactions and savepoints as plain SQL, so that statements which need no answer travel
with BEGIN and with COMMIT instead of costing a round trip each.

asyncpg's ``Connection.transaction()`` sends BEGIN on its own and refuses to nest inside a
transaction it did not start, so the write's transaction and its savepoints are both here.
Only text this package made goes into the batches: ``SET LOCAL`` of integers, lock keys,
quoted identifiers; values from the data stay bound parameters of their own statements.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncpg

# READ COMMITTED whatever the role's default: a replace's DELETE and a creator's second
# catalog lookup run after waiting their turn, and must see what the writer before them
# committed (under REPEATABLE READ both copies of a slice would survive).
BEGIN = "BEGIN ISOLATION LEVEL READ COMMITTED"

_savepoints = itertools.count(1)


class Transaction:
    """One transaction: ``start`` sends BEGIN with ``prelude`` in one simple query, ``commit``
    sends the statements given before COMMIT with it."""

    def __init__(self, conn: asyncpg.Connection, prelude: Sequence[str] = ()) -> None:
        self._conn = conn
        self._prelude = tuple(s for s in prelude if s)
        #: Statements sent with COMMIT, ahead of it (a failing one leaves COMMIT unsent).
        self.before_commit: list[str] = []
        #: Hear the notices of the statements sent with COMMIT.
        self.notice_listeners: list[Callable[[Any, Any], None]] = []
        #: Run once COMMIT is through (reports of what the statements before it did).
        self.after_commit: list[Callable[[], None]] = []

    async def start(self) -> None:
        await self._conn.execute(";\n".join((BEGIN, *self._prelude)))

    async def commit(self) -> None:
        for listener in self.notice_listeners:
            self._conn.add_log_listener(listener)
        try:
            await self._conn.execute(";\n".join((*self.before_commit, "COMMIT")))
        finally:
            for listener in self.notice_listeners:
                self._conn.remove_log_listener(listener)

    async def rollback(self) -> None:
        # Outside a transaction (BEGIN itself failed) the server only warns.
        await self._conn.execute("ROLLBACK")


class Savepoint:
    """A savepoint inside the write's transaction, with the interface of asyncpg's nested
    ``Transaction``: ``start``, ``commit`` (RELEASE), ``rollback`` (ROLLBACK TO)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn
        self._name = f"bulk_savepoint_{next(_savepoints)}"

    async def start(self) -> None:
        await self._conn.execute(f"SAVEPOINT {self._name}")

    async def commit(self) -> None:
        await self._conn.execute(f"RELEASE SAVEPOINT {self._name}")

    async def rollback(self) -> None:
        await self._conn.execute(f"ROLLBACK TO SAVEPOINT {self._name}")
