"""The Kubernetes deployment as documented (docs/kubernetes.md): the Helm values parse and
match the chart's published schema, the code location loads with ``k8s_job_executor``, and
a dataset's ``dagster-k8s/config`` op tag reaches its op in the form ``dagster-k8s`` reads."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from conftest import REPO

from bulk_assets import Partition, build_asset, dataset

pytest.importorskip("dagster_k8s", reason="needs the k8s extra: pip install -e '.[k8s]'")

VALUES = REPO / "deploy" / "k8s" / "values.yaml"
REQUESTS = {"cpu": "2", "memory": "4Gi"}


def _values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load(VALUES.read_text())
    return values


def test_values_wire_the_secret_the_launcher_and_the_code_location() -> None:
    values = _values()
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "bulk_assets.k8s_definitions"]
    assert deployment["envSecrets"] == [{"name": "bulk-assets-db"}]
    launcher = values["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    assert launcher["config"]["k8sRunLauncher"]["envSecrets"] == [{"name": "bulk-assets-db"}]
    # No value carries the database URL: it comes from the secret only.
    assert "postgresql://" not in "\n".join(
        line for line in VALUES.read_text().splitlines() if not line.lstrip().startswith("#")
    )


def test_user_deployment_matches_the_charts_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    path = os.environ.get("DAGSTER_HELM_SCHEMA")
    if not path or not Path(path).is_file():
        pytest.skip(
            "set DAGSTER_HELM_SCHEMA to the chart's "
            "charts/dagster-user-deployments/values.schema.json"
        )
    schema = json.loads(Path(path).read_text())

    # Kubernetes types refer to kubernetesjsonschema.dev, not reached from here: they are
    # checked as the schema's own "type": "object" only.
    deployment_schema = {"$defs": _local(schema["$defs"]), "$ref": "#/$defs/UserDeployment"}
    validator = jsonschema.Draft202012Validator(deployment_schema)
    for deployment in _values()["dagster-user-deployments"]["deployments"]:
        errors = [
            f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(deployment)
        ]
        assert not errors, errors


def _local(node: Any) -> Any:
    """``node`` without ``$ref`` to other hosts."""
    if isinstance(node, dict):
        return {
            k: _local(v)
            for k, v in node.items()
            if not (k == "$ref" and str(v).startswith(("http://", "https://")))
        }
    if isinstance(node, list):
        return [_local(v) for v in node]
    return node


def test_k8s_code_location_loads_with_the_k8s_job_executor() -> None:
    from bulk_assets.k8s_definitions import defs

    definitions = defs()
    job = definitions.resolve_implicit_global_asset_job_def()
    assert job.executor_def.name == "k8s"


def test_a_datasets_k8s_config_tag_reaches_its_op() -> None:
    from dagster_k8s.job import get_user_defined_k8s_config

    def sized(part: Partition) -> pd.DataFrame:
        return pd.DataFrame({"n": range(part.start, part.end)})

    spec = dataset(
        table="sized",
        op_tags={"dagster-k8s/config": {"container_config": {"resources": {"requests": REQUESTS}}}},
    )(sized)
    tags = build_asset(spec).op.tags
    config = get_user_defined_k8s_config({k: str(v) for k, v in tags.items()})
    assert config.container_config["resources"]["requests"] == REQUESTS
