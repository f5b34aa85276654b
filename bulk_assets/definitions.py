"""The code location: wiring only. Datasets are discovered when Dagster loads it."""

from __future__ import annotations

from dagster import Definitions, definitions

from resources import PostgresBulkWriter

from .discovery import discover
from .factory import build_definitions
from .fetch import Fetcher


@definitions
def defs() -> Definitions:
    return build_definitions(
        discover(),
        # No DSN here: at run time the writer takes DATABASE_URL; without it, only local
        # development (BULK_ASSETS_EMBEDDED_POSTGRES=1, set by tasks.py) gets the embedded
        # server, anything else fails at resource set-up.
        resources={"writer": PostgresBulkWriter(), "fetcher": Fetcher()},
    )
