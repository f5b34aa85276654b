"""The code location: wiring only. The definitions live in the ``defs`` folder, loaded as
``dg`` loads them (``dg dev``, ``dg check defs``), so ``workspace.yaml`` and
``dagster dev -m bulk_assets.definitions`` see the same assets."""

from __future__ import annotations

from pathlib import Path

from dagster import Definitions, definitions, load_from_defs_folder

from bulk_assets.executor import one_step_in_process_executor


@definitions
def defs() -> Definitions:
    # The executor is bound here, not in the defs folder, so that other code locations of
    # the same folder (k8s_definitions.py) can bind theirs.
    return Definitions.merge(
        load_from_defs_folder(path_within_project=Path(__file__).parent),
        Definitions(executor=one_step_in_process_executor),
    )
