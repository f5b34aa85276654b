"""A wide table of events in daily partitions bound to ``occurred_at``."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from bulk_assets import ChecksSpec, Partition, TimePartitions, dataset, datasets_component

# pandas and the generators are imported when a partition is generated, not when definitions
# load: every run worker loads every dataset, and importing pandas costs 0.6 s of CPU.
if TYPE_CHECKING:
    import pandas as pd

EVENTS_DDL = """
CREATE TABLE IF NOT EXISTS events (
    event_id uuid PRIMARY KEY,
    occurred_at timestamptz NOT NULL,
    user_id bigint NOT NULL,
    kind text NOT NULL,
    amount numeric(12, 2),
    score double precision,
    is_test boolean NOT NULL,
    payload jsonb,
    session_id integer,
    note text
);
-- Each partition deletes its day by this column before loading it again.
CREATE INDEX IF NOT EXISTS events_occurred_at_idx ON events (occurred_at);
"""

# 5,000 rows a day keeps a year's backfill (1.8M rows) to a couple of minutes here.
ROWS_PER_DAY = 5_000


@dataset(
    table="events",
    group="examples",
    ddl=EVENTS_DDL,
    partitions=TimePartitions(kind="daily", column="occurred_at", start=dt.date(2026, 1, 1)),
    # Just after midnight UTC, load the day that ended.
    schedule="10 0 * * *",
    checks=ChecksSpec(unique=["event_id"], not_null=["occurred_at", "user_id", "kind"]),
)
def events(part: Partition) -> pd.DataFrame:
    """Synthetic events (uuid, timestamptz, numeric, float, bool, jsonb, NULLs): each day is
    generated from its date, so a re-run writes identical rows."""
    from bulk_assets.generators import events_frame

    return events_frame(part.start, part.end, rows=ROWS_PER_DAY)


# Loads the dataset with the rest of the defs folder (a Pythonic component).
component = datasets_component(events)
