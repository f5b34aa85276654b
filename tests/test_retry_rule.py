"""One retry rule: ``retryable`` on the error says whether running the unit again can help,
and both the writer's own retries and a Dagster step's retry read it. A statement that outran
statement_timeout runs once, in the writer and in the step."""

from __future__ import annotations

from typing import Any, get_args

import pandas as pd
import pytest
from _support import q
from dagster import DagsterEventType, DagsterInstance, materialize

from bulk_assets import Fetcher, build_asset, dataset
from bulk_assets.dataset_modes import DATASET_MODES
from bulk_assets.specs import DatasetMode
from resources import WRITE_MODES, Mode, PostgresBulkWriter, WriteTimeoutError


def test_the_mode_literals_are_the_registries() -> None:
    assert list(get_args(Mode)) == list(WRITE_MODES)
    assert list(get_args(DatasetMode)) == list(DATASET_MODES)


def slow_table(db: Any, schema: str) -> None:
    """A table whose every insert sleeps 0.2 s: any statement outruns a 50 ms limit."""
    db.execute(f"CREATE TABLE {q(schema)}.slow (id bigint, label text)")
    db.execute(
        f"CREATE FUNCTION {q(schema)}.nap() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN PERFORM pg_sleep(0.2); RETURN NEW; END $$"
    )
    db.execute(
        f"CREATE TRIGGER nap BEFORE INSERT ON {q(schema)}.slow "
        f"FOR EACH ROW EXECUTE FUNCTION {q(schema)}.nap()"
    )


def test_a_statement_timeout_runs_once_in_the_writer(dsn: str, db: Any, schema: str) -> None:
    slow_table(db, schema)
    calls = []

    def source() -> pd.DataFrame:  # replayable: the writer could run it again
        calls.append(1)
        return pd.DataFrame({"id": [1, 2], "label": ["a", "b"]})

    with (
        PostgresBulkWriter(dsn=dsn, statement_timeout=0.05, retries=3) as writer,
        pytest.raises(WriteTimeoutError) as caught,
    ):
        writer.write("slow", source, schema=schema)
    assert caught.value.limit == "statement_timeout"
    assert caught.value.retryable is False
    assert calls == [1]


def rows(part: Any) -> pd.DataFrame:
    return pd.DataFrame({"id": [1, 2], "label": ["a", "b"]})


slow = dataset(table="slow", step_retries=2, step_retry_wait=0.1)(rows)


def test_a_statement_timeout_is_not_retried_by_the_step(
    search_path_dsn: str, db: Any, schema: str
) -> None:
    """The dataset replaces its table, so a transient failure would retry the step; a
    statement timeout is not transient enough to: the run fails after one attempt."""
    slow_table(db, schema)
    result = materialize(
        [build_asset(slow)],
        resources={
            "writer": PostgresBulkWriter(dsn=search_path_dsn, statement_timeout=0.05),
            "fetcher": Fetcher(),
        },
        instance=DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert not result.success
    events = [e.event_type for e in result.all_events]
    assert DagsterEventType.STEP_RESTARTED not in events
    assert DagsterEventType.STEP_UP_FOR_RETRY not in events
    failure = next(e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE)
    assert "statement_timeout" in str(failure.event_specific_data)
