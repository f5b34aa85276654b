"""The seed's table, users(id bigserial, name, email), in 100 partitions of 10,000 ids."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bulk_assets import ChecksSpec, ChunkPartitions, Partition, dataset, datasets_component

# pandas and the generators are imported when a partition is generated, not when definitions
# load: every run worker loads every dataset, and importing pandas costs 0.6 s of CPU.
if TYPE_CHECKING:
    import pandas as pd

USERS_DDL = """
CREATE TABLE IF NOT EXISTS users (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    email text NOT NULL
)
"""


@dataset(
    table="users",
    group="examples",
    ddl=USERS_DDL,
    partitions=ChunkPartitions(column="id", size=10_000, count=100),
    # One run for a whole range, so `dagster asset materialize --partition-range` works.
    backfill="single-run",
    checks=ChecksSpec(unique=["id"], not_null=["name", "email"]),
)
def users(part: Partition) -> pd.DataFrame:
    """Synthetic users (id, name, email): each partition replaces its 10,000 ids by COPY in
    one transaction."""
    from bulk_assets.generators import users_frame

    return users_frame(part.start, part.end)


# Loads the dataset with the rest of the defs folder (a Pythonic component).
component = datasets_component(users)
