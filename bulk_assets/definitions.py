"""The code location: wiring only. The definitions live in the ``defs`` folder, loaded as
``dg`` loads them (``dg dev``, ``dg check defs``), so ``workspace.yaml`` and
``dagster dev -m bulk_assets.definitions`` see the same assets."""

from __future__ import annotations

from pathlib import Path

from dagster import Definitions, definitions, load_from_defs_folder


@definitions
def defs() -> Definitions:
    return load_from_defs_folder(path_within_project=Path(__file__).parent)
