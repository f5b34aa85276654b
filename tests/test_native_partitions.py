"""Replaces on PostgreSQL's own partitions (``native_partitions=True``): the slice's child is
emptied by TRUNCATE and loaded by COPY FREEZE (or made and ATTACHed on first load), leaving
no dead tuple; anything else falls back to DELETE + COPY with one run-log line saying why."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pandas as pd
import pytest
from _support import content_hash, q
from conftest import Db
from dagster import DagsterInstance, ResolutionContext, materialize
from dagster_shared.yaml_utils import parse_yaml_with_source_position

from bulk_assets import (
    DatasetsComponent,
    DatasetSpec,
    Fetcher,
    GeneratedSource,
    Partition,
    build_asset,
)
from bulk_assets.generators import users_frame
from resources import BadValueError, BulkWriteError, KeyRange, PostgresBulkWriter

SLICE = KeyRange("id", 1, 1_001)
FALLBACK = "native partitions not used"


def rows(lo: int, hi: int, label: str = "a") -> pd.DataFrame:
    return pd.DataFrame({"id": range(lo, hi), "label": [f"{label}{i}" for i in range(lo, hi)]})


def table_hash(db: Db, table: str) -> str:
    return content_hash(db.fetch(f"SELECT * FROM {table} ORDER BY 1, 2"))


def dead_tuples(db: Db, table: str) -> int:
    """Dead tuples of the table's partitions, as pgstattuple counts them (exact, unlike the
    statistics collector's n_dead_tup, which lags)."""
    db.execute("CREATE EXTENSION IF NOT EXISTS pgstattuple")
    return int(
        db.fetchval(
            "SELECT coalesce(sum((pgstattuple(relid)).dead_tuple_count), 0) "
            "FROM pg_partition_tree($1::regclass) WHERE isleaf",
            table,
        )
    )


def children(db: Db, table: str) -> list[tuple[str, str]]:
    return [
        (r["relname"], r["bound"])
        for r in db.fetch(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bound FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = $1::regclass "
            "ORDER BY c.relname",
            table,
        )
    ]


def write(writer: PostgresBulkWriter, schema: str, data: Any, key_range: KeyRange) -> Any:
    return writer.write(
        "items", data, schema=schema, create=True, replace=key_range, native_partitions=True
    )


@pytest.fixture
def ranged(db: Db, schema: str) -> str:
    """A range-partitioned table made by hand: two children, a unique index, a CHECK."""
    table = f"{q(schema)}.items"
    db.execute(
        f"CREATE TABLE {table} (id bigint NOT NULL, label text CHECK (label <> ''), "
        "note text DEFAULT 'n') PARTITION BY RANGE (id);"
        f"CREATE UNIQUE INDEX ON {table} (id);"
        f"CREATE TABLE {q(schema)}.items_a PARTITION OF {table} FOR VALUES FROM (1) TO (1001);"
        f"CREATE TABLE {q(schema)}.items_b PARTITION OF {table} FOR VALUES FROM (1001) TO (2001)"
    )
    return table


def test_create_makes_a_partitioned_parent_and_a_child_per_slice(
    writer: PostgresBulkWriter, db: Db, schema: str
) -> None:
    write(writer, schema, rows(1, 1_001), SLICE)
    write(writer, schema, rows(1_001, 2_001), KeyRange("id", 1_001, 2_001))
    table = f"{q(schema)}.items"
    assert db.fetchval("SELECT relkind::text FROM pg_class WHERE oid = $1::regclass", table) == "p"
    assert children(db, table) == [
        ("items_1", "FOR VALUES FROM ('1') TO ('1001')"),
        ("items_1001", "FOR VALUES FROM ('1001') TO ('2001')"),
    ]
    # The CHECK that let ATTACH skip its scan is gone: the partition constraint says it.
    assert (
        db.fetchval(
            "SELECT count(*) FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'c'",
            f"{q(schema)}.items_1",
        )
        == 0
    )
    assert db.fetchval(f"SELECT count(*) FROM {table}") == 2_000


@pytest.mark.parametrize("runs", [1, 2, 5])
def test_replace_is_idempotent_and_leaves_no_dead_tuples(
    writer: PostgresBulkWriter, db: Db, schema: str, ranged: str, runs: int
) -> None:
    write(writer, schema, rows(1_001, 2_001, "b"), KeyRange("id", 1_001, 2_001))
    hashes = set()
    for _ in range(runs):
        result = write(writer, schema, rows(1, 1_001), SLICE)
        assert result.rows == 1_000
        hashes.add(table_hash(db, ranged))
    assert len(hashes) == 1
    assert result.rows_deleted == (1_000 if runs > 1 else 0)
    assert dead_tuples(db, ranged) == 0
    db.execute(f"ANALYZE {ranged}")
    assert (
        db.fetchval("SELECT sum(n_dead_tup) FROM pg_stat_user_tables WHERE schemaname = $1", schema)
        == 0
    )
    # The other child kept its rows; defaults of the parent filled the column not given.
    assert db.fetchval(f"SELECT count(*) FROM {ranged} WHERE label LIKE 'b%'") == 1_000
    assert db.fetchval(f"SELECT count(DISTINCT note) FROM {ranged}") == 1


def test_the_parents_indexes_and_constraints_hold_on_the_child(
    writer: PostgresBulkWriter, db: Db, schema: str, ranged: str
) -> None:
    write(writer, schema, rows(1, 1_001), SLICE)
    before = table_hash(db, ranged)
    duplicate = pd.concat([rows(1, 500), rows(499, 500)])
    with pytest.raises(BulkWriteError, match="items"):
        write(writer, schema, duplicate, SLICE)
    empty_label = rows(1, 10).assign(label="")
    with pytest.raises(BulkWriteError, match="items"):
        write(writer, schema, empty_label, SLICE)
    assert table_hash(db, ranged) == before
    # A child made on first load gets the parent's unique index from ATTACH.
    write(writer, schema, rows(2_001, 2_101), KeyRange("id", 2_001, 2_101))
    index = db.fetchval(
        "SELECT count(*) FROM pg_index WHERE indrelid = $1::regclass AND indisunique",
        f"{q(schema)}.items_2001",
    )
    assert index == 1


def test_a_row_outside_the_slice_names_table_column_and_row_and_leaves_nothing(
    writer: PostgresBulkWriter, db: Db, schema: str, ranged: str
) -> None:
    write(writer, schema, rows(1, 1_001), SLICE)
    before = children(db, ranged), table_hash(db, ranged)
    with pytest.raises(BadValueError) as err:
        write(writer, schema, rows(2_001, 2_101), KeyRange("id", 2_001, 2_051))
    assert err.value.column == "id" and err.value.row == 50
    assert "items" in str(err.value)
    # The failed first load of 2001-2051 left no table and no child behind.
    assert (children(db, ranged), table_hash(db, ranged)) == before
    assert not db.fetchval("SELECT to_regclass($1)", f"{q(schema)}.items_2001")


def test_daily_time_partitions(writer: PostgresBulkWriter, db: Db, schema: str) -> None:
    day = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    window = KeyRange("at", day, day + dt.timedelta(days=1))
    frame = pd.DataFrame({"at": pd.date_range(day, periods=240, freq="6min"), "v": range(240)})
    for _ in range(2):
        writer.write(
            "events", frame, schema=schema, create=True, replace=window, native_partitions=True
        )
    table = f"{q(schema)}.events"
    assert [name for name, _ in children(db, table)] == ["events_20260101"]
    assert db.fetchval(f"SELECT count(*) FROM {table}") == 240
    assert dead_tuples(db, table) == 0


def test_an_empty_slice_empties_the_child(
    writer: PostgresBulkWriter, db: Db, schema: str, ranged: str
) -> None:
    write(writer, schema, rows(1, 1_001), SLICE)
    result = write(writer, schema, rows(1, 1), SLICE)
    assert result.rows_deleted == 1_000
    assert db.fetchval(f"SELECT count(*) FROM {ranged}") == 0


@pytest.mark.parametrize(
    ("setup", "key_range", "reason"),
    [
        (
            "CREATE TABLE {s}.items_d PARTITION OF {t} DEFAULT;"
            "INSERT INTO {t} VALUES (5000, 'old')",
            KeyRange("id", 4_001, 5_001),
            "the DEFAULT partition items_d holds rows of the slice",
        ),
        ("", KeyRange("id", 1, 2_001), "the slice's bounds straddle existing children"),
        ("", KeyRange("id", 500, 1_500), "the slice's bounds straddle existing children"),
    ],
)
def test_falls_back_to_delete_and_says_why(
    writer: PostgresBulkWriter,
    db: Db,
    schema: str,
    ranged: str,
    caplog: pytest.LogCaptureFixture,
    setup: str,
    key_range: KeyRange,
    reason: str,
) -> None:
    if setup:
        db.execute(setup.format(s=q(schema), t=ranged))
    write(writer, schema, rows(1, 2_001, "old"), KeyRange("id", 1, 2_001))
    caplog.clear()
    with caplog.at_level(logging.INFO):
        result = write(writer, schema, rows(key_range.start, key_range.end), key_range)
    lines = [r.getMessage() for r in caplog.records if FALLBACK in r.getMessage()]
    assert len(lines) == 1 and reason in lines[0]
    assert result.rows == key_range.end - key_range.start
    n = db.fetchval(
        f"SELECT count(*) FROM {ranged} WHERE id >= $1 AND id < $2 AND label NOT LIKE 'old%'",
        key_range.start,
        key_range.end,
    )
    assert n == key_range.end - key_range.start


def test_another_partition_key_or_a_plain_table_fall_back(
    writer: PostgresBulkWriter, db: Db, schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    db.execute(
        f"CREATE TABLE {q(schema)}.items (id bigint, label text) PARTITION BY RANGE (label);"
        f"CREATE TABLE {q(schema)}.items_all PARTITION OF {q(schema)}.items "
        "FOR VALUES FROM (MINVALUE) TO (MAXVALUE)"
    )
    with caplog.at_level(logging.INFO):
        write(writer, schema, rows(1, 101), KeyRange("id", 1, 101))
        write(writer, schema, rows(1, 101), KeyRange("id", 1, 101))
    assert "the table is partitioned on label" in caplog.text
    assert db.fetchval(f"SELECT count(*) FROM {q(schema)}.items") == 100
    db.execute(f"DROP TABLE {q(schema)}.items; CREATE TABLE {q(schema)}.items (id int, label text)")
    caplog.clear()
    with caplog.at_level(logging.INFO):
        write(writer, schema, rows(1, 101), KeyRange("id", 1, 101))
    assert "the table is not partitioned" in caplog.text


async def _probe(dsn: str, sql: str, *, lock_timeout: str) -> float:
    """Seconds ``sql`` took, or raise LockNotAvailableError after ``lock_timeout``."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"SET lock_timeout = '{lock_timeout}'")
        started = time.perf_counter()
        await conn.fetchval(sql)
        return time.perf_counter() - started
    finally:
        await conn.close()


def test_readers_of_other_partitions_never_wait(
    writer: PostgresBulkWriter, db: Db, dsn: str, schema: str, ranged: str
) -> None:
    write(writer, schema, rows(1, 2_001), KeyRange("id", 1, 2_001))
    loading = threading.Event()

    def slow() -> Iterator[pd.DataFrame]:
        for lo in range(1, 1_001, 250):
            yield rows(lo, lo + 250, "new")
            loading.set()
            time.sleep(0.5)

    thread = threading.Thread(target=write, args=(writer, schema, slow, SLICE))
    thread.start()
    try:
        assert loading.wait(30)
        other = asyncio.run(
            _probe(dsn, f"SELECT count(*) FROM {ranged} WHERE id >= 1001", lock_timeout="1s")
        )
        assert other < 1.0
        # Readers of the slice wait for the COMMIT: they never see it half loaded.
        with pytest.raises(asyncpg.LockNotAvailableError):
            asyncio.run(
                _probe(dsn, f"SELECT count(*) FROM {ranged} WHERE id < 1001", lock_timeout="200ms")
            )
    finally:
        thread.join(60)
    assert db.fetchval(f"SELECT count(*) FROM {ranged} WHERE label LIKE 'new%'") == 1_000


def test_concurrent_replaces_of_one_partition_take_turns(
    dsn: str, db: Db, schema: str, ranged: str
) -> None:
    errors: list[BaseException] = []

    def run(label: str) -> None:
        try:
            with PostgresBulkWriter(dsn=dsn) as w:
                for _ in range(3):
                    write(w, schema, rows(1, 1_001, label), SLICE)
        except BaseException as exc:  # collected, asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(label,)) for label in ("x", "y")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    labels = db.fetch(f"SELECT left(label, 1) AS l, count(*) AS n FROM {ranged} GROUP BY 1")
    assert len(labels) == 1 and labels[0]["n"] == 1_000


def native_users(part: Partition) -> pd.DataFrame:
    """Generated rows of one partition, for the YAML dataset below."""
    return users_frame(part.start, part.end)


def test_a_yaml_dataset_with_native_partitions_materializes_idempotently(
    tmp_path: Path, search_path_dsn: str, db: Db, schema: str
) -> None:
    path = tmp_path / "defs.yaml"
    path.write_text(
        textwrap.dedent(
            """
            type: bulk_assets.DatasetsComponent
            attributes:
              datasets:
                - name: native_users
                  table: native_users
                  create: true
                  native_partitions: true
                  source: {function: "test_native_partitions:native_users"}
                  partitions_def: {type: chunks, column: id, size: 1000, count: 3}
            """
        ).lstrip()
    )
    tree = parse_yaml_with_source_position(path.read_text(), filename=str(path))
    model = DatasetsComponent.get_model_cls().model_validate(tree.value["attributes"])
    context = ResolutionContext.default(tree.source_position_tree).at_path("attributes")
    component = DatasetsComponent.resolve_from_model(context, model)
    (spec,) = component.datasets
    assert spec.native_partitions
    resources = {"writer": PostgresBulkWriter(dsn=search_path_dsn), "fetcher": Fetcher()}
    instance = DagsterInstance.ephemeral()
    hashes = []
    for key in ("0001-1000", "1001-2000", "0001-1000", "1001-2000"):
        result = materialize(
            [build_asset(spec)], resources=resources, instance=instance, partition_key=key
        )
        assert result.success
        hashes.append(table_hash(db, f"{q(schema)}.native_users"))
    assert hashes[1] == hashes[3]
    assert [name for name, _ in children(db, f"{q(schema)}.native_users")] == [
        "native_users_1",
        "native_users_1001",
    ]
    assert dead_tuples(db, f"{q(schema)}.native_users") == 0


def test_native_partitions_needs_a_partitioned_replace() -> None:
    with pytest.raises(ValueError, match="native_partitions replaces one partition"):
        DatasetSpec(
            name="plain",
            table="plain",
            source=GeneratedSource(function=native_users),
            native_partitions=True,
        )


def test_a_referenced_table_loads_natively_then_replaces_by_delete(
    writer: PostgresBulkWriter, db: Db, schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    """TRUNCATE refuses a table a foreign key references; a first load needs none."""
    table = f"{q(schema)}.items"
    db.execute(
        f"CREATE TABLE {table} (id bigint, label text, PRIMARY KEY (id)) PARTITION BY RANGE (id);"
        f"CREATE TABLE {q(schema)}.refs (id bigint REFERENCES {table} (id))"
    )
    write(writer, schema, rows(1, 1_001), SLICE)
    assert [name for name, _ in children(db, table)] == ["items_1"]
    with caplog.at_level(logging.INFO):
        result = write(writer, schema, rows(1, 1_001, "b"), SLICE)
    assert "refs references the table by a foreign key" in caplog.text
    assert result.rows_deleted == 1_000
    assert db.fetchval(f"SELECT count(*) FROM {table} WHERE label LIKE 'b%'") == 1_000


def test_writers_of_other_partitions_never_deadlock(dsn: str, db: Db, schema: str) -> None:
    """Replaces of two children and first loads of two new ones, all at once, beside a
    DEFAULT partition: each BEGIN holds ROW EXCLUSIVE on the parent, each TRUNCATE its own
    child, and the first loads' ATTACH (SHARE UPDATE EXCLUSIVE on the parent, ACCESS
    EXCLUSIVE on the DEFAULT partition) take turns. A deadlock would show as a second
    attempt: the server breaks it by failing one writer, which the write then retries."""
    table = f"{q(schema)}.items"
    db.execute(
        f"CREATE TABLE {table} (id bigint NOT NULL, label text) PARTITION BY RANGE (id);"
        f"CREATE TABLE {q(schema)}.items_a PARTITION OF {table} FOR VALUES FROM (1) TO (1001);"
        f"CREATE TABLE {q(schema)}.items_b PARTITION OF {table} FOR VALUES FROM (1001) TO (2001);"
        f"CREATE TABLE {q(schema)}.items_d PARTITION OF {table} DEFAULT"
    )
    for lo in (1, 1_001):
        db.execute(f"INSERT INTO {table} SELECT g, 'old' FROM generate_series({lo}, {lo + 999}) g")
    attempts: dict[int, int] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def slow(lo: int) -> Iterator[pd.DataFrame]:
        # The transactions overlap: each holds its locks while the others take theirs.
        yield rows(lo, lo + 500, "new")
        time.sleep(1.5)
        yield rows(lo + 500, lo + 1_000, "new")

    def run(lo: int) -> None:
        try:
            with PostgresBulkWriter(dsn=dsn) as w:
                start.wait(30)
                result = write(w, schema, lambda: slow(lo), KeyRange("id", lo, lo + 1_000))
                attempts[lo] = result.attempts
        except BaseException as exc:  # collected, asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(lo,)) for lo in (1, 1_001, 2_001, 3_001)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    assert attempts == {1: 1, 1_001: 1, 2_001: 1, 3_001: 1}
    assert db.fetchval(f"SELECT count(*) FROM {table} WHERE label LIKE 'new%'") == 4_000
    assert db.fetchval(f"SELECT count(*) FROM {table}") == 4_000
    assert [name for name, _ in children(db, table)] == [
        "items_2001",
        "items_3001",
        "items_a",
        "items_b",
        "items_d",
    ]


def test_counts_and_sequence_lines_reach_a_session_that_hides_notices(
    dsn: str, db: Db, schema: str, ranged: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The native path hears the rows TRUNCATE removed, and the writer hears how it moved a
    sequence, as notices: a role or database with client_min_messages above notice still
    gets both."""
    db.execute(f"CREATE TABLE {q(schema)}.serials (id bigserial PRIMARY KEY, name text)")
    sep = "&" if "?" in dsn else "?"
    # asyncpg passes unknown DSN query parameters on as server settings, as a role's would.
    with PostgresBulkWriter(dsn=f"{dsn}{sep}client_min_messages=warning") as quiet:
        assert quiet.fetch("SHOW client_min_messages")[0]["client_min_messages"] == "warning"
        write(quiet, schema, rows(1, 1_001), SLICE)
        result = write(quiet, schema, rows(1, 501, "b"), SLICE)
        with caplog.at_level(logging.INFO, logger="resources.postgres_bulk_writer"):
            quiet.write(
                "serials", pd.DataFrame({"id": [41, 42], "name": ["a", "b"]}), schema=schema
            )
        assert quiet.fetch("SHOW client_min_messages")[0]["client_min_messages"] == "warning"
    assert result.rows_deleted == 1_000
    assert db.fetchval(f"SELECT count(*) FROM {ranged}") == 500
    assert any("advanced to 42" in r.getMessage() for r in caplog.records)
