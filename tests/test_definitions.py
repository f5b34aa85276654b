"""The code location loads: every bundled dataset is an asset with its checks and schedules,
and the schedules pick the right partition."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from dagster import AssetKey, Definitions, build_schedule_context

from bulk_assets import discover
from bulk_assets.definitions import defs
from bulk_assets.generators import events_frame, users_frame


@pytest.fixture(scope="module")
def definitions() -> Definitions:
    return defs()


def test_definitions_load_every_bundled_dataset(definitions: Definitions) -> None:
    graph = definitions.get_repository_def().asset_graph
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == {
        "users",
        "events",
        "user_email_updates",
        "cities",
    }
    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert ("users", "row_count") in checks and ("events", "unique_keys") in checks
    assert ("cities", "not_null") in checks and ("user_email_updates", "not_null") in checks
    users = graph.get(AssetKey("users"))
    assert users.group_name == "examples"
    assert users.kinds == {"postgres", "pandas"}
    assert users.pools == {"postgres_writes"}
    assert users.partitions_def is not None
    assert len(users.partitions_def.get_partition_keys()) == 100


def test_user_email_updates_depends_on_users(definitions: Definitions) -> None:
    graph = definitions.get_repository_def().asset_graph
    assert graph.get(AssetKey("user_email_updates")).parent_keys == {AssetKey("users")}


def test_events_schedule_loads_the_day_that_ended(definitions: Definitions) -> None:
    schedule = definitions.get_schedule_def("events_schedule")
    tick = dt.datetime(2026, 3, 2, 0, 10, tzinfo=dt.UTC)
    with build_schedule_context(scheduled_execution_time=tick) as context:
        requests = schedule.evaluate_tick(context).run_requests
    assert requests is not None
    assert [r.partition_key for r in requests] == ["2026-03-01"]
    assert schedule.cron_schedule == "10 0 * * *"


def test_updates_follow_users_by_automation_condition(definitions: Definitions) -> None:
    graph = definitions.get_repository_def().asset_graph
    condition = graph.get(AssetKey("user_email_updates")).automation_condition
    assert condition is not None and condition.get_label() == "eager"
    assert "user_email_updates_schedule" not in {s.name for s in definitions.schedules or ()}


def test_the_environment_adds_nothing_unless_set(tmp_path: Path) -> None:
    assert discover({}, root=tmp_path) == []


def test_generators_are_deterministic() -> None:
    assert users_frame(5, 8).to_dict("list") == {
        "id": [5, 6, 7],
        "name": ["User 5", "User 6", "User 7"],
        "email": ["user5@example.com", "user6@example.com", "user7@example.com"],
    }
    day = dt.datetime(2026, 3, 29, tzinfo=dt.UTC)
    first = events_frame(day, day + dt.timedelta(days=1), rows=500)
    again = events_frame(day, day + dt.timedelta(days=1), rows=500)
    other = events_frame(day + dt.timedelta(days=1), day + dt.timedelta(days=2), rows=500)
    assert first.equals(again)
    assert not first["event_id"].isin(other["event_id"]).any()
    assert first["occurred_at"].between(day, day + dt.timedelta(days=1), inclusive="left").all()
    assert 0.05 < first["amount"].isna().mean() < 0.15
