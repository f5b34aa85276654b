"""A run worker rebuilds the definitions once, however many times Dagster asks for them; a
code server builds them on every load, so that a reload sees edits."""

from __future__ import annotations

from dagster._core.definitions.definitions_load_context import (
    DefinitionsLoadContext,
    DefinitionsLoadType,
)

from bulk_assets.definitions import defs


def test_a_run_worker_rebuilds_the_definitions_once() -> None:
    rebuilding = DefinitionsLoadContext(load_type=DefinitionsLoadType.RECONSTRUCTION)
    with DefinitionsLoadContext.scoped(rebuilding):
        first, second = defs(), defs()
    assert first is second
    keys = {key.to_user_string() for key in first.resolve_asset_graph().get_all_asset_keys()}
    assert {"events", "users"} <= keys


def test_a_code_server_builds_them_on_every_load() -> None:
    building = DefinitionsLoadContext(load_type=DefinitionsLoadType.INITIALIZATION)
    with DefinitionsLoadContext.scoped(building):
        first, second = defs(), defs()
    assert first is not second
    assert first.resolve_asset_graph().get_all_asset_keys() == (
        second.resolve_asset_graph().get_all_asset_keys()
    )
