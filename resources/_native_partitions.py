"""A partition replace on PostgreSQL's own partitions (``native_partitions=True``): the slice
is a child of a range-partitioned table, emptied by TRUNCATE and loaded by COPY ... FREEZE in
the write's one transaction, instead of DELETEd row by row.

Why TRUNCATE of the child rather than a swap (a new table loaded beside it, then DETACH of
the old child and ATTACH of the new one), measured on PostgreSQL 15 with 100,000-row
partitions of a 10M-row table (BENCHMARKS.md, "Native partitions"): both cost the same
(0.47 s and 0.43 s, within this machine's drift) and leave no dead tuple, but DETACH
without CONCURRENTLY takes ACCESS EXCLUSIVE on the *parent* (and CONCURRENTLY cannot run
in a transaction block): it queues behind the longest reader of any partition and holds
back every new one meanwhile (0.76 s there). TRUNCATE locks the child alone: readers of
other partitions whose plans prune while planning never wait; readers of this one (and
generic plans, which lock every partition on PostgreSQL up to 17, and whole-table scans)
wait for the COMMIT (0.32 s) and then see the new rows, never half. The child keeps its
grants and indexes (maintained by the COPY), the loader needs only TRUNCATE on it, and a
killed run leaves nothing behind: it is one transaction.

A slice without a child yet (first load) is loaded into a new table, ``LIKE`` the parent
with a CHECK constraint equal to the bounds, and ATTACHed before COMMIT: ATTACH takes only
SHARE UPDATE EXCLUSIVE on the parent (readers go on), and the CHECK lets it skip the scan
that proves the rows fit. ``CREATE TABLE ... PARTITION OF`` would take ACCESS EXCLUSIVE on
the parent for the whole load.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._identifiers import qualified, quote_ident
from ._locks import key as lock_key
from ._sequences import NOTICES_HEARD

if TYPE_CHECKING:
    import asyncpg

    from ._catalog import TableInfo
    from ._progress import Log, Stats
    from ._request import WriteRequest
    from .key_range import KeyRange

__all__ = ["NativeSlice", "native_slice", "partition_by_sql"]

# PostgreSQL truncates longer identifiers (NAMEDATALEN - 1).
_MAX_NAME = 63

# The partition key and the children, with for each child a table whose foreign key
# references it or the parent (TRUNCATE refuses those, SQLSTATE 0A000, where DELETE would
# check the references row by row): one round trip. No row: not partitioned; one row with a
# NULL oid: no child yet. The foreign keys are read once: pg_constraint has no index on the
# referenced table, and a scan per child cost 3 ms of 4.5 at 100 children.
_PLAN_SQL = """
WITH fk AS MATERIALIZED (SELECT conrelid, confrelid FROM pg_constraint WHERE contype = 'f')
SELECT p.partstrat::text AS strategy, p.partnatts AS columns, a.attname AS column_name,
       c.oid, n.nspname, c.relname, c.relkind::text AS relkind,
       pg_get_expr(c.relpartbound, c.oid) AS bound,
       (SELECT f.conrelid::regclass::text FROM fk f
        WHERE f.confrelid IN (p.partrelid, c.oid)
          AND f.conrelid NOT IN (p.partrelid, c.oid)
        LIMIT 1) AS referenced
FROM pg_partitioned_table p
LEFT JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]
LEFT JOIN pg_inherits i ON i.inhparent = p.partrelid
LEFT JOIN pg_class c ON c.oid = i.inhrelid
LEFT JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE p.partrelid = $1
ORDER BY c.oid
"""

# pg_get_expr renders one column's range bound as FROM (x) TO (y), each x a literal ('...',
# quotes doubled), a bare number, MINVALUE or MAXVALUE.
_BOUND = re.compile(r"^FOR VALUES FROM \((?P<lo>.*)\) TO \((?P<hi>.*)\)$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class NativeSlice:
    """Where a native replace writes: the slice's child, emptied or created in this
    transaction (so COPY may FREEZE), and what to run before COMMIT."""

    table: TableInfo
    #: For a new child: ATTACH it, then drop the CHECK that let ATTACH skip its scan; sent
    #: with COMMIT. The parent's description (its columns and keys, as cached and checked
    #: by the BEGIN batch) stays the same: children are not part of it.
    attach: tuple[str, ...] = ()


def partition_by_sql(key_range: KeyRange) -> str:
    """The clause that makes a created table the parent of range partitions on the slice's
    column."""
    return f" PARTITION BY RANGE ({quote_ident(key_range.column)})"


async def native_slice(
    conn: asyncpg.Connection,
    request: WriteRequest,
    info: TableInfo,
    key_range: KeyRange,
    stats: Stats,
    log: Log | None,
) -> NativeSlice | None:
    """Empty (or create) the child that holds exactly ``key_range``, under the slice's
    advisory lock; ``None`` after one run-log line saying why the replace falls back to
    DELETE + COPY."""
    plan = await _plan(conn, request, info, key_range, stats)
    if isinstance(plan, str):
        if log is not None:
            log.info(
                "%s: native partitions not used for %s (%s); replacing by DELETE + COPY",
                info.display,
                key_range,
                plan,
            )
        return None
    return plan


async def _plan(
    conn: asyncpg.Connection,
    request: WriteRequest,
    info: TableInfo,
    key_range: KeyRange,
    stats: Stats,
) -> NativeSlice | str:
    if request.on_bad_rows != "fail":
        return "on_bad_rows='quarantine' retries chunks in savepoints, where COPY FREEZE is refused"
    if not info.partitioned:
        return "the table is not partitioned"
    rows = await conn.fetch(_PLAN_SQL, info.oid)
    part = rows[0] if rows else None
    if part is None or part["strategy"] != "r" or part["columns"] != 1:
        return "the table is not partitioned BY RANGE on one column"
    if part["column_name"] != key_range.column:
        return f"the table is partitioned on {part['column_name'] or 'an expression'!s}"
    children = [r for r in rows if r["oid"] is not None]
    default = next((c for c in children if c["bound"] == "DEFAULT"), None)
    ranged = [c for c in children if c["bound"] != "DEFAULT"]
    sql_type = info.columns[key_range.column].sql_type
    bounds = [_parse_bound(c["bound"]) for c in ranged]
    if any(b is None for b in bounds):
        return "a child's bounds could not be read"
    exact, overlapping = await _compare(conn, sql_type, bounds, key_range)
    if exact is not None:
        child = ranged[exact]
        if child["relkind"] != "r":
            return f"the child {child['relname']} is itself partitioned"
        referenced = child["referenced"]
        if referenced is not None:
            return f"{referenced} references the table by a foreign key; TRUNCATE refuses that"
        target = dataclasses.replace(
            info,
            oid=child["oid"],
            schema=child["nspname"],
            name=child["relname"],
            partitioned=False,
        )
        stats.deleted = await _truncate(conn, target)
        return NativeSlice(target)
    if overlapping:
        return "the slice's bounds straddle existing children"
    if default is not None:
        # ATTACH takes ACCESS EXCLUSIVE on the DEFAULT partition. Two first loads of other
        # slices would each hold the ACCESS SHARE of the check below and wait for the
        # other's lock at ATTACH: a deadlock. The parent's SHARE UPDATE EXCLUSIVE, which
        # ATTACH takes anyway, makes them take turns before the check; readers and writers
        # of the rows (ROW EXCLUSIVE, as the BEGIN batch takes) do not wait for it.
        await conn.execute(f"LOCK TABLE ONLY {info.qualified} IN SHARE UPDATE EXCLUSIVE MODE")
    if default is not None and await conn.fetchval(
        f"SELECT EXISTS (SELECT FROM {qualified(default['nspname'], default['relname'])} "
        f"WHERE {key_range.where_sql()})",
        key_range.start,
        key_range.end,
    ):
        return f"the DEFAULT partition {default['relname']} holds rows of the slice"
    # A foreign key referencing the table does not stop a first load (ATTACH takes it), only
    # the TRUNCATE of later replaces, which then fall back.
    return await _new_child(conn, info, key_range, sql_type)


async def _truncate(conn: asyncpg.Connection, target: TableInfo) -> int:
    """Lock the child, count its rows, TRUNCATE it: one simple query, the count heard as a
    notice (the lock first, so that the count is what TRUNCATE removes), whatever the
    role's client_min_messages."""
    tag = "$bulk_count$"
    while tag in target.qualified:  # a quoted name could hold the block's quoting
        tag = f"{tag[:-1]}_$"
    heard: list[str] = []

    def listen(conn: object, message: asyncpg.PostgresLogMessage) -> None:
        heard.append(str(getattr(message, "message", "")))

    conn.add_log_listener(listen)
    try:
        await conn.execute(
            f"LOCK TABLE {target.qualified} IN ACCESS EXCLUSIVE MODE;\n"
            f"DO {tag} DECLARE n bigint; BEGIN {NOTICES_HEARD} "
            f"SELECT count(*) INTO n FROM {target.qualified}; "
            f"RAISE NOTICE 'bulk_assets rows %', n; END {tag};\n"
            f"TRUNCATE {target.qualified}"
        )
    finally:
        conn.remove_log_listener(listen)
    counts = [
        m.removeprefix("bulk_assets rows ") for m in heard if m.startswith("bulk_assets rows ")
    ]
    return int(counts[-1]) if counts else 0


async def _compare(
    conn: asyncpg.Connection,
    sql_type: str,
    bounds: list[tuple[str | None, str | None] | None],
    key_range: KeyRange,
) -> tuple[int | None, bool]:
    """Which child has exactly the slice's bounds, and whether any other overlaps it. The
    server compares, in the column's type: a bound's text as it renders it, cast back."""
    if not bounds:
        return None, False
    los = [b[0] if b else None for b in bounds]
    his = [b[1] if b else None for b in bounds]
    rows = await conn.fetch(
        f"SELECT b.lo::{sql_type} = $3::{sql_type} AND b.hi::{sql_type} = $4::{sql_type} "
        f"AS exact, (b.lo IS NULL OR b.lo::{sql_type} < $4::{sql_type}) AND "
        f"(b.hi IS NULL OR b.hi::{sql_type} > $3::{sql_type}) AS overlaps "
        "FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS b(lo, hi, i) ORDER BY b.i",
        los,
        his,
        key_range.start,
        key_range.end,
    )
    exact = next((i for i, r in enumerate(rows) if r["exact"]), None)
    return exact, any(r["overlaps"] for r in rows)


def _parse_bound(bound: str) -> tuple[str | None, str | None] | None:
    """(lower, upper) as text, ``None`` for MINVALUE / MAXVALUE; ``None`` if unreadable
    (a multi-column key never gets here)."""
    match = _BOUND.match(bound)
    if match is None:
        return None
    try:
        return _literal(match["lo"]), _literal(match["hi"])
    except ValueError:
        return None


def _literal(text: str) -> str | None:
    if text in ("MINVALUE", "MAXVALUE"):
        return None
    inner = text[1:-1]
    if len(text) >= 2 and text[0] == text[-1] == "'" and "'" not in inner.replace("''", ""):
        return inner.replace("''", "'")
    if re.fullmatch(r"-?[0-9.eE+]+", text):
        return text
    raise ValueError(f"not one literal: {text!r}")


async def _new_child(
    conn: asyncpg.Connection, info: TableInfo, key_range: KeyRange, sql_type: str
) -> NativeSlice:
    """A table shaped like the parent, with the bounds as a CHECK, to be loaded and then
    ATTACHed. Its indexes are made by ATTACH (the parent's), after the load: one sort each
    instead of maintaining them row by row."""
    name = await _child_name(conn, info, key_range)
    target = dataclasses.replace(info, name=name, partitioned=False)
    # The bounds as literals the server quoted (DDL takes no bound parameters).
    lo, hi = await conn.fetchrow(
        f"SELECT format('%L', $1::{sql_type}) AS lo, format('%L', $2::{sql_type}) AS hi",
        key_range.start,
        key_range.end,
    )
    column = quote_ident(key_range.column)
    check = quote_ident(f"{name[:50]}_bounds")
    await conn.execute(
        f"CREATE TABLE {target.qualified} (LIKE {info.qualified} INCLUDING DEFAULTS "
        "INCLUDING CONSTRAINTS INCLUDING GENERATED INCLUDING STORAGE INCLUDING COMPRESSION);"
        f"ALTER TABLE {target.qualified} ADD CONSTRAINT {check} "
        f"CHECK ({column} >= {lo}::{sql_type} AND {column} < {hi}::{sql_type})"
    )
    oid = await conn.fetchval("SELECT $1::regclass::oid", target.qualified)
    attach = (
        f"ALTER TABLE {info.qualified} ATTACH PARTITION {target.qualified} "
        f"FOR VALUES FROM ({lo}) TO ({hi})",
        # The partition constraint now says the same: the CHECK would only be evaluated
        # again for every row of every later load.
        f"ALTER TABLE {target.qualified} DROP CONSTRAINT {check}",
    )
    return NativeSlice(dataclasses.replace(target, oid=oid), attach)


async def _child_name(conn: asyncpg.Connection, info: TableInfo, key_range: KeyRange) -> str:
    """``<parent>_<start>`` (``events_20260101``, ``users_1``), shortened to fit 63 bytes,
    with a hash of the bounds if that name is taken."""
    label = _label(key_range.start)
    name = _fit(info.name, label)
    taken = await conn.fetchval(
        "SELECT true FROM pg_class WHERE relnamespace = $1::regnamespace AND relname = $2",
        quote_ident(info.schema),
        name,
    )
    if taken:
        digest = f"{lock_key(key_range.start, key_range.end) & 0xFFFFFFFF:08x}"
        name = _fit(info.name, f"{label}_{digest}")
    return name


def _label(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.strftime("%Y%m%d" if value.time() == dt.time() else "%Y%m%d_%H%M")
    if isinstance(value, dt.date):
        return value.strftime("%Y%m%d")
    return re.sub(r"[^0-9A-Za-z]+", "_", str(value)).strip("_")[:24] or "p"


def _fit(parent: str, label: str) -> str:
    room = _MAX_NAME - len(label.encode()) - 1
    head = parent.encode()[:room].decode(errors="ignore")
    return f"{head}_{label}"
