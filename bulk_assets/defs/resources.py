"""The resources every dataset uses, bound here in Python so that secrets stay out of YAML."""

from __future__ import annotations

from dagster import Definitions, definitions

from bulk_assets.fetch import Fetcher
from resources import PostgresBulkWriter


@definitions
def defs() -> Definitions:
    return Definitions(
        resources={
            # No DSN here: at run time the writer takes DATABASE_URL; without it, only local
            # development (BULK_ASSETS_EMBEDDED_POSTGRES=1, set by tasks.py) gets the embedded
            # server, anything else fails at resource set-up. For another server:
            # PostgresBulkWriter(dsn=EnvVar("WAREHOUSE_URL")).
            "writer": PostgresBulkWriter(),
            # A token for the exports: Fetcher(headers={"Authorization": EnvVar("EXPORT_TOKEN")}).
            "fetcher": Fetcher(),
        }
    )
