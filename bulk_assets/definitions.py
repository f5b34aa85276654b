"""The code location: wiring only. The definitions live in the ``defs`` folder, loaded as
``dg`` loads them (``dg dev``, ``dg check defs``), so ``workspace.yaml`` and
``dagster dev -m bulk_assets.definitions`` see the same assets."""

from __future__ import annotations

from pathlib import Path

from dagster import Definitions, definitions, load_from_defs_folder

# Not exported by dagster: whether this load builds the definitions (a code server) or
# rebuilds them for a run (a run worker).
from dagster._core.definitions.definitions_load_context import (
    DefinitionsLoadContext,
    DefinitionsLoadType,
)

from bulk_assets.executor import one_step_in_process_executor

# A run worker builds the definitions twice: to load the job, then again for the run's asset
# selection, since Dagster 1.13 keeps one repository per job subset. That second build was
# 0.25 s of CPU in each run of a 100-run backfill. A rebuild for a run reads nothing that can
# change while the process lives, so the first one serves both; a code server still builds
# afresh on every load, so that reloading the location picks up edits.
_rebuilt: list[Definitions] = []


@definitions
def defs() -> Definitions:
    rebuilding = DefinitionsLoadContext.get().load_type is DefinitionsLoadType.RECONSTRUCTION
    if rebuilding and _rebuilt:
        return _rebuilt[0]
    # The executor is bound here, not in the defs folder, so that other code locations of
    # the same folder (k8s_definitions.py) can bind theirs.
    built = Definitions.merge(
        load_from_defs_folder(path_within_project=Path(__file__).parent),
        Definitions(executor=one_step_in_process_executor),
    )
    if rebuilding:
        _rebuilt.append(built)
    return built
