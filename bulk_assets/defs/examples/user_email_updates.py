"""A transactional batch UPDATE of users' emails."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dagster import AutomationCondition

from bulk_assets import ChecksSpec, dataset, datasets_component

# pandas is imported when the update runs, not when definitions load: every run worker loads
# every dataset, and importing pandas costs 0.6 s of CPU.
if TYPE_CHECKING:
    import pandas as pd

# Every 10th of the first 100,000 users: 10,000 rows, one UPDATE ... FROM a staging table.
_IDS = range(10, 100_001, 10)


@dataset(
    table="users",
    group="examples",
    mode="update",
    key_columns=["id"],
    deps=["users"],
    # Runs after users loads a partition (any one: eager alone would wait for all 100 to
    # exist), once the automation sensor is on.
    automation_condition=AutomationCondition.eager().without(
        ~AutomationCondition.any_deps_missing()
    ),
    checks=ChecksSpec(unique=["id"], not_null=["email"]),
)
def user_email_updates() -> pd.DataFrame:
    """Moves every 10th of the first 100,000 users to an example.org address, in one
    transaction: all of them or none."""
    import numpy as np
    import pandas as pd

    ids = np.array(_IDS, dtype=np.int64)
    return pd.DataFrame({"id": ids, "email": [f"user{i}@example.org" for i in ids]})


# Loads the dataset with the rest of the defs folder (a Pythonic component).
component = datasets_component(user_email_updates)
