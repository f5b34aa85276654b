"""A writer with no database fails at resource set-up, before any write, naming the missing
setting; the embedded PostgreSQL stands in only when local development asks for it."""

from __future__ import annotations

import pandas as pd
import pytest
from dagster import DagsterInstance, build_init_resource_context, materialize
from dagster._core.errors import DagsterResourceFunctionError

from bulk_assets import Fetcher, build_asset, dataset
from resources import NoDatabaseError, PostgresBulkWriter

OPT_IN = "BULK_ASSETS_EMBEDDED_POSTGRES"
bodies_run: list[str] = []


@pytest.fixture
def no_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv(OPT_IN, raising=False)


def rows() -> pd.DataFrame:
    bodies_run.append("rows")
    return pd.DataFrame({"id": [1]})


def test_run_without_database_fails_at_setup_before_any_write(no_database: None) -> None:
    spec = dataset(table="t", ddl="SELECT 1")(rows)
    bodies_run.clear()
    with pytest.raises(DagsterResourceFunctionError) as caught:
        materialize(
            [build_asset(spec)],
            resources={"writer": PostgresBulkWriter(), "fetcher": Fetcher()},
            instance=DagsterInstance.ephemeral(),
        )
    error = caught.value.__cause__
    assert isinstance(error, NoDatabaseError)
    assert not error.retryable
    for setting in ("`dsn`", "DATABASE_URL", f"{OPT_IN}=1", "embedded=True"):
        assert setting in str(error)
    assert bodies_run == []


def test_resolve_dsn_refuses_outside_dagster_too(no_database: None) -> None:
    with pytest.raises(NoDatabaseError, match="DATABASE_URL"):
        PostgresBulkWriter().resolve_dsn()


@pytest.mark.parametrize("value", ["1", "true"])
def test_environment_opts_in(
    no_database: None, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(OPT_IN, value)
    PostgresBulkWriter().setup_for_execution(build_init_resource_context())


def test_field_opts_in(no_database: None) -> None:
    PostgresBulkWriter(embedded=True).setup_for_execution(build_init_resource_context())


@pytest.mark.parametrize("value", ["0", ""])
def test_other_values_do_not_opt_in(
    no_database: None, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(OPT_IN, value)
    with pytest.raises(NoDatabaseError):
        PostgresBulkWriter().setup_for_execution(build_init_resource_context())


def test_a_dsn_needs_no_opt_in(no_database: None, monkeypatch: pytest.MonkeyPatch) -> None:
    PostgresBulkWriter(dsn="postgresql://u@h/db").setup_for_execution(build_init_resource_context())
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h/db")
    assert PostgresBulkWriter().resolve_dsn() == "postgresql://u@h/db"
