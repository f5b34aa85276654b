"""Datasets from outside the defs folder, as before it existed: the files and folders in
``BULK_ASSETS_DATASETS`` (default: ``datasets/`` in the project root) and the modules in
``BULK_ASSETS_MODULES``. New datasets belong in the defs folder; this keeps deployments that
set those variables loading the same assets."""

from __future__ import annotations

from dagster import ComponentLoadContext, component_instance

from bulk_assets.component import DatasetsComponent
from bulk_assets.discovery import discover


@component_instance
def datasets_from_environment(context: ComponentLoadContext) -> DatasetsComponent:
    return DatasetsComponent(datasets=discover(root=context.project_root))
