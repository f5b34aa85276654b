"""Bundled datasets materialize in-process into a real PostgreSQL: exact counts, partition
re-runs that replace exactly their slice, backfills both ways, checks that catch tampering."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from dagster import AssetKey, DagsterInstance, ExecuteInProcessResult, materialize
from dagster_shared.error import SerializableErrorInfo

from bulk_assets import (
    ChunkPartitions,
    DatasetSpec,
    Fetcher,
    GeneratedSource,
    Partition,
    build_asset,
    dataset,
)
from bulk_assets.checks import check_not_null, check_row_counts, check_unique
from bulk_assets.definitions import defs
from bulk_assets.defs.examples import events, user_email_updates, users
from bulk_assets.defs.examples.events import ROWS_PER_DAY
from resources import KeyRange, PostgresBulkWriter

EXAMPLES = {s.name: s for s in (users.users, events.events, user_email_updates.user_email_updates)}
FIRST, SECOND, THIRD = "0000001-0010000", "0010001-0020000", "0020001-0030000"


@pytest.fixture
def resources(search_path_dsn: str) -> dict[str, Any]:
    return {"writer": PostgresBulkWriter(dsn=search_path_dsn), "fetcher": Fetcher()}


@pytest.fixture
def instance() -> DagsterInstance:
    return DagsterInstance.ephemeral()


def run(
    spec: DatasetSpec,
    resources: dict[str, Any],
    instance: DagsterInstance,
    *,
    partition_key: str | None = None,
    tags: dict[str, str] | None = None,
    raise_on_error: bool = True,
) -> ExecuteInProcessResult:
    return materialize(
        [build_asset(spec)],
        resources=resources,
        instance=instance,
        partition_key=partition_key,
        tags=tags,
        raise_on_error=raise_on_error,
    )


def table_hash(db: Any, schema: str, table: str, order: str, where: str = "TRUE") -> str:
    digest: str = db.fetchval(
        f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY {order}), '')) "
        f'FROM "{schema}"."{table}" t WHERE {where}'
    )
    return digest


def generator_of(spec: DatasetSpec) -> Callable[[Partition], pd.DataFrame]:
    """A bundled example's generator function, to build rows from directly."""
    assert isinstance(spec.source, GeneratedSource) and callable(spec.source.function)
    return spec.source.function


def step_failure(result: ExecuteInProcessResult) -> SerializableErrorInfo:
    """The error of the run's first step failure."""
    error = result.get_step_failure_events()[0].step_failure_data.error
    assert error is not None
    return error


def metadata(result: Any, node: str) -> dict[str, Any]:
    materialization = result.asset_materializations_for_node(node)[0]
    return {k: getattr(v, "value", v) for k, v in materialization.metadata.items()}


def test_users_partition_materializes_with_table_metadata(
    resources: dict[str, Any], instance: DagsterInstance, db: Any, schema: str
) -> None:
    result = run(EXAMPLES["users"], resources, instance, partition_key=SECOND)
    assert result.success
    ids = db.fetch(f'SELECT min(id), max(id), count(*) FROM "{schema}".users')[0]
    assert tuple(ids) == (10_001, 20_000, 10_000)
    meta = metadata(result, "users")
    assert meta["rows_written"] == 10_000
    assert meta["dagster/partition_row_count"] == 10_000
    # The whole table is not counted after a partition (a full scan); only with count_table.
    assert "dagster/row_count" not in meta
    definition = build_asset(EXAMPLES["users"]).metadata_by_key[AssetKey("users")]
    assert definition["dagster/table_name"] == "users"
    assert definition["dagster/storage_kind"] == "postgres"
    assert [c.name for c in meta["dagster/column_schema"].columns] == ["id", "name", "email"]
    assert meta["mode"] == "replace-partition" and meta["rows_per_second"] > 0
    assert "user10001@example.com" in meta["preview"]
    evaluations = result.get_asset_check_evaluations()
    assert {e.check_name for e in evaluations} == {"row_count", "unique_keys", "not_null"}
    assert all(e.passed for e in evaluations)
    # The checks ran in the materialization's own step, on the partition it wrote.
    steps = {e.step_key for e in result.all_events if e.step_key}
    assert steps == {"users"}
    row_count = next(e for e in evaluations if e.check_name == "row_count")
    assert row_count.metadata["partitions_checked"].value == 1
    assert all(e.passed for e in evaluations)
    # The load gave ids explicitly; the bigserial's sequence was moved past them.
    added = db.fetchval(
        f"INSERT INTO \"{schema}\".users (name, email) VALUES ('n', 'n@x') RETURNING id"
    )
    assert added == 20_001


def test_rerunning_a_partition_replaces_exactly_its_slice(
    resources: dict[str, Any], instance: DagsterInstance, db: Any, schema: str
) -> None:
    spec = EXAMPLES["users"]
    for key in (FIRST, THIRD):
        run(spec, resources, instance, partition_key=key)
    neighbours = table_hash(db, schema, "users", "id", "id NOT BETWEEN 10001 AND 20000")
    hashes = []
    for runs in (1, 2, 5):
        for _ in range(runs):
            run(spec, resources, instance, partition_key=SECOND)
        hashes.append(table_hash(db, schema, "users", "id"))
    assert hashes[0] == hashes[1] == hashes[2]
    assert table_hash(db, schema, "users", "id", "id NOT BETWEEN 10001 AND 20000") == neighbours
    assert db.fetchval(f'SELECT count(*) FROM "{schema}".users') == 30_000


def test_events_day_is_identical_on_rerun_and_neighbours_untouched(
    resources: dict[str, Any], instance: DagsterInstance, db: Any, schema: str
) -> None:
    spec = EXAMPLES["events"]
    run(spec, resources, instance, partition_key="2026-03-28")
    run(spec, resources, instance, partition_key="2026-03-30")
    day = "occurred_at >= '2026-03-29' AND occurred_at < '2026-03-30'"
    hashes = []
    for _ in range(3):
        result = run(spec, resources, instance, partition_key="2026-03-29")
        hashes.append(table_hash(db, schema, "events", "event_id", day))
    assert len(set(hashes)) == 1
    assert metadata(result, "events")["dagster/partition_row_count"] == ROWS_PER_DAY
    assert db.fetchval(f'SELECT count(*) FROM "{schema}".events') == 3 * ROWS_PER_DAY
    wide = db.fetch(
        f"SELECT count(*) FILTER (WHERE amount IS NULL) AS amounts, "
        f"count(*) FILTER (WHERE payload ? 'page') AS payloads, "
        f'count(DISTINCT occurred_at::date) AS days FROM "{schema}".events'
    )[0]
    assert 0 < wide["amounts"] < ROWS_PER_DAY and wide["payloads"] == 3 * ROWS_PER_DAY
    assert wide["days"] == 3


def small_users(table: str, backfill: str) -> DatasetSpec:
    ddl = EXAMPLES["users"].ddl
    assert ddl is not None
    return EXAMPLES["users"].model_copy(
        update={
            "name": table,
            "table": table,
            "partitions": ChunkPartitions(column="id", size=250, count=6),
            "backfill": backfill,
            "ddl": ddl.replace("users", table),
        }
    )


def test_single_run_range_and_multi_run_backfills_give_the_same_table(
    resources: dict[str, Any], instance: DagsterInstance, db: Any, schema: str
) -> None:
    single, multi = small_users("u_single", "single-run"), small_users("u_multi", "multi-run")
    partitions_def = build_asset(single).partitions_def
    assert partitions_def is not None
    keys = partitions_def.get_partition_keys()
    result = run(
        single,
        resources,
        instance,
        tags={
            "dagster/asset_partition_range_start": keys[1],
            "dagster/asset_partition_range_end": keys[4],
        },
    )
    assert result.success
    assert set(metadata(result, "u_single")["rows_by_partition"]) == set(keys[1:5])
    for key in keys[1:5]:
        run(multi, resources, instance, partition_key=key)
    assert db.fetchval(f'SELECT count(*) FROM "{schema}".u_single') == 1_000
    assert table_hash(db, schema, "u_single", "id") == table_hash(db, schema, "u_multi", "id")
    # The range run's checks saw each of its four slices.
    evaluations = result.get_asset_check_evaluations()
    assert evaluations and all(e.passed for e in evaluations)
    row_count = next(e for e in evaluations if e.check_name == "row_count")
    assert row_count.metadata["partitions_checked"].value == 4


def test_update_dataset_changes_only_matched_rows(
    resources: dict[str, Any], instance: DagsterInstance, db: Any, schema: str
) -> None:
    run(EXAMPLES["users"], resources, instance, partition_key=FIRST)
    result = run(EXAMPLES["user_email_updates"], resources, instance)
    meta = metadata(result, "user_email_updates")
    assert meta["rows_written"] == 10_000 and meta["rows_affected"] == 1_000
    emails = db.fetch(
        f"SELECT count(*) FILTER (WHERE email LIKE '%@example.org') AS moved, count(*) AS n "
        f'FROM "{schema}".users'
    )[0]
    assert (emails["moved"], emails["n"]) == (1_000, 10_000)
    assert db.fetchval(f'SELECT email FROM "{schema}".users WHERE id = 20') == "user20@example.org"
    assert db.fetchval(f'SELECT email FROM "{schema}".users WHERE id = 21') == "user21@example.com"


def test_cities_fetched_from_the_shipped_csv(
    resources: dict[str, Any], instance: DagsterInstance, db: Any, schema: str
) -> None:
    result = materialize([defs().get_assets_def("cities")], resources=resources, instance=instance)
    rows = len(pd.read_csv(Path(users.__file__).parent / "cities" / "cities.csv"))
    assert rows > 0 and metadata(result, "cities")["dagster/row_count"] == rows
    assert db.fetchval(f'SELECT count(DISTINCT city_id) FROM "{schema}".cities') == rows


def test_checks_fail_on_a_table_tampered_with(
    resources: dict[str, Any], instance: DagsterInstance, db: Any, schema: str
) -> None:
    spec = EXAMPLES["users"]
    result = run(spec, resources, instance, partition_key=FIRST)
    assert all(e.passed for e in result.get_asset_check_evaluations())
    writer = resources["writer"]
    db.execute(f'DELETE FROM "{schema}".users WHERE id = 17')
    tampered = check_row_counts(spec, writer, {FIRST: 10_000})
    assert not tampered.passed
    assert tampered.metadata["mismatched"].value == {FIRST: {"written": 10_000, "in_table": 9_999}}


def test_unique_and_not_null_checks_read_the_table(
    resources: dict[str, Any], db: Any, schema: str
) -> None:
    db.execute(f'CREATE TABLE "{schema}".loose (k int, v text)')
    db.execute(f"INSERT INTO \"{schema}\".loose VALUES (1, 'a'), (2, NULL), (2, 'b')")

    @dataset(table="loose", key_columns=["k"], mode="upsert")
    def loose() -> pd.DataFrame:
        return pd.DataFrame({"k": [1], "v": ["a"]})

    spec = loose.model_copy(update={"checks": loose.checks.model_copy(update={"not_null": ["v"]})})
    unique = check_unique(spec, resources["writer"])
    nulls = check_not_null(spec, resources["writer"])
    assert not unique.passed and unique.metadata["duplicated_keys"].value == 1
    assert not nulls.passed and nulls.metadata["null_counts"].value == {"v": 1}
    # Scoped to slices, a check reads only those: key 1's slice is clean, key 2's is not.
    writer = resources["writer"]
    assert check_unique(spec, writer, [KeyRange("k", 1, 2)]).passed
    assert not check_unique(spec, writer, [KeyRange("k", 1, 2), KeyRange("k", 2, 3)]).passed
    assert check_not_null(spec, writer, [KeyRange("k", 1, 2)]).passed
    db.execute(f'DELETE FROM "{schema}".loose WHERE v IS NULL')
    assert check_unique(spec, resources["writer"]).passed
    assert check_not_null(spec, resources["writer"]).passed


def test_a_failing_partition_leaves_its_slice_as_it_was(
    resources: dict[str, Any], instance: DagsterInstance, db: Any, schema: str
) -> None:
    run(EXAMPLES["users"], resources, instance, partition_key=FIRST)
    before = table_hash(db, schema, "users", "id")

    @dataset(table="users", partitions=ChunkPartitions(column="id", size=10_000, count=100))
    def broken(part: Partition) -> Iterator[pd.DataFrame]:
        yield pd.DataFrame({"id": [part.start], "name": ["n"], "email": ["e"]})
        raise RuntimeError("the upstream API went away after the first chunk")

    result = run(broken, resources, instance, partition_key=FIRST, raise_on_error=False)
    assert not result.success
    failure = step_failure(result)
    assert "the upstream API went away" in failure.to_string()
    assert table_hash(db, schema, "users", "id") == before


def test_time_partitions_need_aware_rows_in_their_window(
    resources: dict[str, Any], instance: DagsterInstance, schema: str
) -> None:
    spec = EXAMPLES["events"]
    early = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    @dataset(table="events", ddl=spec.ddl, partitions=spec.partitions)
    def shifted(part: Partition) -> pd.DataFrame:
        frame = generator_of(EXAMPLES["events"])(part)
        frame.loc[0, "occurred_at"] = pd.Timestamp(early)
        return frame

    result = run(shifted, resources, instance, partition_key="2026-03-01", raise_on_error=False)
    assert not result.success
    text = step_failure(result).to_string()
    assert "outside the range being replaced" in text and "occurred_at" in text


def test_quarantined_rows_are_reported_and_the_counts_still_check(
    resources: dict[str, Any], instance: DagsterInstance, db: Any, schema: str
) -> None:
    @dataset(
        table="users",
        ddl=EXAMPLES["users"].ddl,
        partitions=EXAMPLES["users"].partitions,
        on_bad_rows="quarantine",
    )
    def users_with_a_bad_row(part: Partition) -> pd.DataFrame:
        frame = generator_of(EXAMPLES["users"])(part)
        frame.loc[3, "email"] = None  # NOT NULL
        return frame

    result = run(users_with_a_bad_row, resources, instance, partition_key=FIRST)
    meta = metadata(result, "users_with_a_bad_row")
    assert (meta["rows_written"], meta["rows_rejected"]) == (9_999, 1)
    assert meta["rejects_table"] == f"{schema}.users__rejects"
    assert db.fetchval(f'SELECT row_index FROM "{schema}".users__rejects') == 3
    assert all(e.passed for e in result.get_asset_check_evaluations())


def test_a_failing_check_is_blocking(
    resources: dict[str, Any], instance: DagsterInstance, db: Any, schema: str
) -> None:
    """A NULL where the dataset declares none: the load commits, and the inline blocking
    check fails the materialization's step, so nothing downstream runs on it."""

    @dataset(table="gaps", create=True, checks={"not_null": ["v"]})
    def gaps() -> pd.DataFrame:
        return pd.DataFrame({"k": [1, 2], "v": ["a", None]})

    result = run(gaps, resources, instance, raise_on_error=False)
    assert not result.success
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert evaluations["row_count"].passed
    assert not evaluations["not_null"].passed
    assert evaluations["not_null"].metadata["null_counts"].value == {"v": 1}
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "blocking asset check failed" in str(failure.event_specific_data)
