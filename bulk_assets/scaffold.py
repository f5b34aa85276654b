"""``dg scaffold defs bulk_assets.DatasetsComponent NAME``: a starter dataset that loads and
materializes as it is, a small CSV beside its ``defs.yaml``."""

from __future__ import annotations

import re

from dagster import Scaffolder, ScaffoldRequest, scaffold_component

__all__ = ["DatasetScaffolder"]

STARTER_CSV = """\
id,name,amount,created_on
1,first,10.50,2026-01-01
2,second,7.25,2026-01-02
3,third,,2026-01-03
"""


class DatasetScaffolder(Scaffolder):
    """Writes ``NAME/NAME.csv`` and a ``defs.yaml`` loading it into the table ``NAME``
    (created from the data, replaced on each run)."""

    def scaffold(self, request: ScaffoldRequest) -> None:
        name = starter_name(request.target_path.name)
        request.target_path.mkdir(parents=True, exist_ok=True)
        (request.target_path / f"{name}.csv").write_text(STARTER_CSV, encoding="utf-8")
        scaffold_component(
            request,
            {
                "datasets": [
                    {
                        "name": name,
                        "table": name,
                        "description": f"{name}.csv, beside this file, replaced on each run.",
                        "create": True,
                        # Relative to this file's folder, whatever the working directory.
                        "source": {
                            "location": f"{name}.csv",
                            "dtypes": {"id": "int64", "amount": "float64", "created_on": "date"},
                        },
                        "checks": {"unique": ["id"], "not_null": ["name"]},
                    }
                ]
            },
        )


def starter_name(folder: str) -> str:
    """An asset and table name from the folder's: letters, digits and underscores."""
    name = re.sub(r"[^0-9A-Za-z_]", "_", folder).strip("_").lower() or "dataset"
    return f"d_{name}" if name[0].isdigit() else name
