"""Table descriptions kept for the life of a pool, and the check that lets a write trust one.

Reading a table's description costs a round trip (two on a connection that has not prepared
the query); a Dagster run writes the same table partition after partition. The description
is kept per pool and each write checks it inside its transaction, in the round trip that
carries BEGIN: the table is locked against DDL (ROW EXCLUSIVE, what the write's own DELETE,
COPY or INSERT takes anyway, so that no ALTER can slip in before the data goes), then the
server hashes the description afresh and refuses the transaction if the hash differs. A write
then reads the description again and starts over, before anything of its data was sent.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import asyncpg

from ._catalog import BODY_SQL, TableInfo
from .errors import BulkWriteError

if TYPE_CHECKING:
    from asyncpg.pool import Pool

# asyncpg maps an SQLSTATE it does not know to a fatal error, so the check raises a standard
# one: 55000, object_not_in_prerequisite_state. Nothing else in the BEGIN batch raises it.
_STALE_SQLSTATE = "55000"
_MD5 = re.compile(r"[0-9a-f]{32}")

Key = tuple[str | None, str]
# Per pool (asyncpg's Pool takes no weak references): emptied when its session closes.
_caches: dict[int, dict[Key, TableInfo]] = {}


def cached(pool: Pool, schema: str | None, table: str) -> TableInfo | None:
    return _caches.get(id(pool), {}).get((schema, table))


def keep(pool: Pool, schema: str | None, table: str, info: TableInfo) -> None:
    _caches.setdefault(id(pool), {})[(schema, table)] = info


def forget(pool: Pool, schema: str | None, table: str) -> None:
    _caches.get(id(pool), {}).pop((schema, table), None)


def discard(pool: Pool | None) -> None:
    """The pool is closing: its descriptions go with it."""
    if pool is not None:
        _caches.pop(id(pool), None)


def still_valid_sql(info: TableInfo, *, mode: str = "ROW EXCLUSIVE") -> list[str]:
    """Statements for the BEGIN batch that lock the table in ``mode`` and then fail unless
    ``info`` still describes it. Everything in them is the server's own output (oid, md5),
    a quoted identifier or a lock mode of this package's."""
    if not _MD5.fullmatch(info.fingerprint):
        raise ValueError(f"not a fingerprint: {info.fingerprint!r}")
    body = BODY_SQL.format(oid=f"{int(info.oid)}::oid")
    return [
        f"LOCK TABLE ONLY {info.qualified} IN {mode} MODE",
        "DO $bulk_assets$ BEGIN "
        f"IF (SELECT md5(({body}))) IS DISTINCT FROM '{info.fingerprint}' THEN "
        "RAISE EXCEPTION 'the table changed since the writer read its columns' "
        f"USING ERRCODE = '{_STALE_SQLSTATE}'; END IF; END $bulk_assets$",
    ]


def is_stale(exc: BaseException) -> bool:
    """Whether ``exc`` is the check refusing a cached description."""
    cause = exc.__cause__ if isinstance(exc, BulkWriteError) else exc
    # Exactly this class: lock_timeout's LockNotAvailableError (55P03) is a subclass.
    return type(cause) is asyncpg.ObjectNotInPrerequisiteStateError
