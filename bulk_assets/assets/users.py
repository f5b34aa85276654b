"""The users table: users(id bigserial, name, email), generated and loaded by binary COPY."""

# No `from __future__ import annotations`: Dagster reads the config and resource types from
# the function signature at definition time.

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetExecutionContext,
    Config,
    MaterializeResult,
    asset,
    asset_check,
)
from pydantic import Field

from resources import PostgresBulkWriter

from ..generators import users_chunks
from ..metadata import write_metadata

USERS_DDL = """
CREATE TABLE IF NOT EXISTS users (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    email text NOT NULL
)
"""


class UsersConfig(Config):
    rows: int = Field(default=100_000, description="How many users to generate.")
    chunk_size: int = Field(default=50_000, description="Rows per generated chunk.")


@asset(group_name="examples", kinds={"postgres", "pandas"})
def users(
    context: AssetExecutionContext, config: UsersConfig, writer: PostgresBulkWriter
) -> MaterializeResult:
    """Synthetic users (name, email) replacing the table's rows in one transaction by COPY."""
    writer.execute(USERS_DDL)
    result = writer.write(
        "users",
        lambda: users_chunks(config.rows, chunk_size=config.chunk_size),
        mode="copy",
        replace=True,
    )
    context.log.info(
        f"users: {result.rows:,} rows in {result.seconds:.2f} s "
        f"({result.rows_per_second:,.0f} rows/s)"
    )
    return MaterializeResult(metadata=write_metadata(result))


@asset_check(asset=users, description="The table holds as many rows as the last run produced.")
def users_row_count(
    context: AssetCheckExecutionContext, writer: PostgresBulkWriter
) -> AssetCheckResult:
    event = context.instance.get_latest_materialization_event(users.key)
    produced = None
    if event is not None and event.asset_materialization is not None:
        value = event.asset_materialization.metadata.get("dagster/row_count")
        produced = getattr(value, "value", None)
    in_table = writer.fetch("SELECT count(*) AS n FROM users")[0]["n"]
    return AssetCheckResult(
        passed=produced is not None and in_table == produced,
        metadata={"rows_in_table": in_table, "rows_produced": produced or 0},
    )
