"""The code location loads, and the users asset materializes into a real table."""

from __future__ import annotations

import pytest
from dagster import DagsterInstance, materialize

from bulk_assets.assets import users, users_row_count
from bulk_assets.definitions import defs
from bulk_assets.generators import users_chunks, users_frame
from resources import PostgresBulkWriter


def test_definitions_load() -> None:
    repo = defs.get_repository_def()
    assert {k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()} >= {"users"}
    assert {k.name for k in repo.asset_graph.asset_check_keys} == {"users_row_count"}


def test_users_generator_is_deterministic_and_chunked() -> None:
    chunks = list(users_chunks(25, chunk_size=10, start=5))
    assert [len(c) for c in chunks] == [10, 10, 5]
    assert chunks[0].iloc[0].to_dict() == {"name": "User 5", "email": "user5@example.com"}
    assert chunks[-1].iloc[-1]["email"] == "user29@example.com"
    assert users_frame(5, 15).equals(chunks[0].reset_index(drop=True))


@pytest.mark.parametrize("rows", [1, 12_345])
def test_users_materializes_by_copy_and_replaces(search_path_dsn: str, db, schema, rows) -> None:
    """Materializing twice replaces the rows (no duplicates); ids come from bigserial."""
    writer = PostgresBulkWriter(dsn=search_path_dsn, chunk_size=5_000)
    instance = DagsterInstance.ephemeral()
    config = {"ops": {"users": {"config": {"rows": rows, "chunk_size": 5_000}}}}
    for _ in range(2):
        result = materialize(
            [users, users_row_count],
            resources={"writer": writer},
            run_config=config,
            instance=instance,
        )
        assert result.success
    materialization = result.asset_materializations_for_node("users")[0]
    assert materialization.metadata["dagster/row_count"].value == rows
    assert materialization.metadata["mode"].value == "copy"
    assert materialization.metadata["table"].value == f"{schema}.users"
    checks = result.get_asset_check_evaluations()
    assert checks and all(c.passed for c in checks)
    stored = db.fetch(f'SELECT name, email, id FROM "{schema}".users ORDER BY id')
    assert len(stored) == rows
    assert stored[0]["name"] == "User 0" and stored[-1]["email"] == f"user{rows - 1}@example.com"
    assert stored[0]["id"] == rows + 1  # the second run's ids follow the first run's
