"""The code location on Kubernetes: the same datasets, each step in a pod of its own
(``k8s_job_executor``), sized by the dataset's ``dagster-k8s/config`` op tag. Needs the
``k8s`` extra; see docs/kubernetes.md."""

from __future__ import annotations

from pathlib import Path

from dagster import Definitions, definitions, load_from_defs_folder
from dagster_k8s import k8s_job_executor


@definitions
def defs() -> Definitions:
    # The defs folder as bulk_assets.definitions loads it (datasets and their resources:
    # DATABASE_URL comes from a Kubernetes secret, as an env var of every run and step pod),
    # with every step in a pod of its own.
    return Definitions.merge(
        load_from_defs_folder(path_within_project=Path(__file__).parent),
        Definitions(executor=k8s_job_executor),
    )
