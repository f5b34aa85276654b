"""The code location on Kubernetes: the same datasets, each step in a pod of its own
(``k8s_job_executor``), sized by the dataset's ``dagster-k8s/config`` op tag. Needs the
``k8s`` extra; see docs/kubernetes.md."""

from __future__ import annotations

from dagster import Definitions, definitions
from dagster_k8s import k8s_job_executor

from resources import PostgresBulkWriter

from .discovery import discover
from .factory import build_definitions
from .fetch import Fetcher


@definitions
def defs() -> Definitions:
    return build_definitions(
        discover(),
        # DATABASE_URL comes from a Kubernetes secret, as an env var of every run and step pod.
        resources={"writer": PostgresBulkWriter(), "fetcher": Fetcher()},
        executor=k8s_job_executor,
    )
