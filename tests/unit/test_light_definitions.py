"""Loading the code location imports none of the data libraries: each run worker and code
server loads it, and pandas, pyarrow, numpy and asyncpg cost 0.7 s of CPU to import, which
only a write or a fetch needs (BENCHMARKS.md, "Runs in Dagster")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEFERRED = ("pandas", "pyarrow", "numpy", "asyncpg", "simdjson")

# A fresh interpreter: the test process itself has imported all of them long ago.
_LOAD = """
import json, sys
import bulk_assets.definitions as code_location
definitions = code_location.defs()
keys = definitions.resolve_asset_graph().get_all_asset_keys()
assets = sorted(key.to_user_string() for key in keys)
print(json.dumps({"assets": assets, "modules": sorted({m.split(".")[0] for m in sys.modules})}))
"""


@pytest.fixture(scope="module")
def loaded() -> dict[str, list[str]]:
    out = subprocess.run(
        [sys.executable, "-c", _LOAD], cwd=ROOT, capture_output=True, text=True, check=True
    )
    result: dict[str, list[str]] = json.loads(out.stdout.splitlines()[-1])
    return result


def test_the_code_location_loads_its_datasets(loaded: dict[str, list[str]]) -> None:
    assert {"events", "users", "user_email_updates"} <= set(loaded["assets"])


@pytest.mark.parametrize("module", DEFERRED)
def test_loading_the_code_location_does_not_import(
    loaded: dict[str, list[str]], module: str
) -> None:
    assert module not in loaded["modules"]


def test_a_write_mode_imports_its_writer_when_asked() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from resources import WRITE_MODES; "
            "before = 'asyncpg' in sys.modules; writer = WRITE_MODES['upsert'].writer; "
            "print(before, writer.__name__, 'asyncpg' in sys.modules)",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == ["False", "UpsertWriter", "True"]
