"""The code location: wiring only."""

from __future__ import annotations

from dagster import Definitions

from resources import PostgresBulkWriter

from .assets import users, users_row_count

defs = Definitions(
    assets=[users],
    asset_checks=[users_row_count],
    # No DSN here: at run time the writer takes DATABASE_URL, else the embedded PostgreSQL.
    resources={"writer": PostgresBulkWriter()},
)
