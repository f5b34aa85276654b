"""The dg project: `dg check` and `dg list` see the datasets, a misspelled field fails with its
file and line, a scaffolded dataset loads and materializes as written, and relative paths
resolve against the defs.yaml whatever the working directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance, ResolutionContext, materialize
from dagster_shared.yaml_utils import parse_yaml_with_source_position

from bulk_assets import DatasetsComponent, DatasetSpecError, Fetcher, build_asset
from resources import PostgresBulkWriter

REPO = Path(__file__).resolve().parents[1]
DG = Path(sys.executable).parent / "dg"
# dg and the Component, the same on any server: CI runs them once.
pytestmark = [
    pytest.mark.skipif(not DG.exists(), reason="the dg CLI is not installed"),
    pytest.mark.once,
]


def dg(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VIRTUAL_ENV": str(Path(sys.executable).parents[1]), "NO_COLOR": "1"}
    # The package imported from the copy in cwd, before the installed checkout.
    env["PYTHONPATH"] = os.pathsep.join([str(cwd), env.get("PYTHONPATH", "")])
    env.pop("BULK_ASSETS_DATASETS", None)
    env.pop("BULK_ASSETS_MODULES", None)
    return subprocess.run(
        [str(DG), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=240
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project's dg files (pyproject.toml, the package), so that the tests
    scaffold and break datasets without touching the checkout."""
    root = tmp_path_factory.mktemp("project")
    shutil.copy(REPO / "pyproject.toml", root)
    shutil.copytree(
        REPO / "bulk_assets", root / "bulk_assets", ignore=shutil.ignore_patterns("__pycache__")
    )
    return root


def from_yaml(path: Path) -> DatasetsComponent:
    """The component of one defs.yaml, resolved as dg resolves it (templates, source
    positions), without a project around it."""
    tree = parse_yaml_with_source_position(path.read_text(), filename=str(path))
    model = DatasetsComponent.get_model_cls().model_validate(tree.value["attributes"])
    context = ResolutionContext.default(tree.source_position_tree).at_path("attributes")
    component: DatasetsComponent = DatasetsComponent.resolve_from_model(context, model)
    return component


def test_dg_check_and_list_see_every_dataset() -> None:
    checked = dg("check", "defs")
    assert checked.returncode == 0, checked.stderr
    listed = dg("list", "defs", "--json")
    assert listed.returncode == 0, listed.stderr
    assets = {a["asset_key"]: a for a in json.loads(listed.stdout)["assets"]}
    assert set(assets) == {"users", "events", "user_email_updates", "cities"}
    assert assets["cities"]["source"] == "bulk_assets/defs/examples/cities/defs.yaml:4"
    assert assets["cities"]["owners"] == [{"team": "data"}]
    assert {"postgres", "csv"} <= set(assets["cities"]["kinds"])
    components = dg("list", "components")
    assert "bulk_assets.DatasetsComponent" in components.stdout


def test_a_misspelled_field_fails_dg_check_yaml_with_file_and_line(project: Path) -> None:
    folder = project / "bulk_assets" / "defs" / "typo"
    folder.mkdir()
    (folder / "defs.yaml").write_text(
        textwrap.dedent(
            """
            type: bulk_assets.DatasetsComponent
            attributes:
              datasets:
                - name: typo
                  table: typo
                  source: {location: typo.csv}
                  key_colums: [id]
            """
        ).lstrip()
    )
    try:
        # By path: dg 1.13 checks only one defs.yaml per component type in a whole-project run.
        result = dg("check", "yaml", str(folder), cwd=project)
    finally:
        shutil.rmtree(folder)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert f"{folder / 'defs.yaml'}:7" in output
    assert "'key_colums' was unexpected" in output


def test_a_scaffolded_dataset_loads_and_materializes(
    project: Path,
    search_path_dsn: str,
    db: Any,
    schema: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scaffolded = dg("scaffold", "defs", "bulk_assets.DatasetsComponent", "my_orders", cwd=project)
    assert scaffolded.returncode == 0, scaffolded.stderr
    folder = project / "bulk_assets" / "defs" / "my_orders"
    assert (folder / "my_orders.csv").exists()
    assert dg("check", "defs", cwd=project).returncode == 0
    monkeypatch.chdir(tmp_path)  # loaded from elsewhere: the CSV is found beside the YAML
    component = from_yaml(folder / "defs.yaml")
    assert isinstance(component, DatasetsComponent)
    result = materialize(
        [build_asset(spec) for spec in component.datasets],
        resources={"writer": PostgresBulkWriter(dsn=search_path_dsn), "fetcher": Fetcher()},
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success
    rows = db.fetch(f'SELECT id, name FROM "{schema}".my_orders ORDER BY id')
    assert [tuple(r) for r in rows] == [(1, "first"), (2, "second"), (3, "third")]


def test_relative_locations_resolve_against_the_yaml_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "defs" / "prices"
    folder.mkdir(parents=True)
    (folder / "data").mkdir()
    (folder / "defs.yaml").write_text(
        textwrap.dedent(
            """
            type: bulk_assets.DatasetsComponent
            attributes:
              datasets:
                - name: prices
                  table: prices
                  source: {location: data/prices.csv}
                  partitions_def: {type: daily, column: at, start_date: "2026-01-01"}
                  op: {backfill_policy: {type: single_run}, pool: slow, tags: {team: a}}
                  automation_condition: "{{ dg.AutomationCondition.eager() }}"
            """
        ).lstrip()
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    component = from_yaml(folder / "defs.yaml")
    assert isinstance(component, DatasetsComponent)
    (spec,) = component.datasets
    assert spec.source.location == str(folder / "data" / "prices.csv")
    assert (spec.backfill, spec.pool, spec.op_tags) == ("single-run", "slow", {"team": "a"})
    assert spec.partitions.kind == "daily" and spec.partitions.column == "at"
    assert spec.automation_condition.get_label() == "eager"


def test_a_bad_dataset_names_its_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "defs.yaml"
    path.write_text(
        "type: bulk_assets.DatasetsComponent\nattributes:\n  datasets:\n"
        "    - {name: ok, table: ok, source: {location: a.csv}}\n"
        "    - {name: bad, table: t, mode: upsert, source: {location: a.csv}}\n"
    )
    with pytest.raises(Exception, match=r"defs.yaml:5.*needs key_columns") as caught:
        from_yaml(path)
    assert isinstance(caught.value, DatasetSpecError) or "DatasetSpecError" in str(caught.value)
