"""The code location's executor: Dagster's default, except that a run of one step executes it
in the run worker itself instead of a step process of its own.

A dataset's materialization is one step (its checks run inside it), so most runs, a partition
from the UI, one run of a multi-run backfill, a single-run backfill, have one step. Under the
multiprocess executor that step waits for a second Python process to start and load the
definitions again, and the run for it to exit: 2.5 s of a 6.6 s one-partition run on this
project's machine (BENCHMARKS.md, "Runs in Dagster"). Runs of several steps (``users`` and
``user_email_updates`` together) keep one process per step, so that their steps still run
side by side. Either way the step honours the same pools, retries and run retries;
in the run config, ``execution: config: in_process:`` runs every step in process, and the
options under ``multiprocess:`` apply to runs of several steps."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from dagster import Executor, InitExecutorContext, executor, multi_or_in_process_executor
from dagster._core.executor.in_process import InProcessExecutor
from dagster._core.executor.multiprocess import MultiprocessExecutor

if TYPE_CHECKING:
    from dagster._core.events import DagsterEvent
    from dagster._core.execution.context.system import PlanOrchestrationContext
    from dagster._core.execution.plan.plan import ExecutionPlan
    from dagster._core.execution.retries import RetryMode
    from dagster._core.execution.step_dependency_config import StepDependencyConfig

__all__ = ["OneStepInProcessExecutor", "one_step_in_process_executor"]


class OneStepInProcessExecutor(Executor):
    """Runs a plan of one step in process, any other plan with ``multiprocess``."""

    def __init__(self, multiprocess: MultiprocessExecutor) -> None:
        self._multiprocess = multiprocess
        self._in_process = InProcessExecutor(
            retries=multiprocess.retries,
            marker_to_close=None,
            step_dependency_config=multiprocess.step_dependency_config,
        )

    @property
    def retries(self) -> RetryMode:
        return self._multiprocess.retries

    @property
    def step_dependency_config(self) -> StepDependencyConfig:
        return self._multiprocess.step_dependency_config

    def execute(
        self, plan_context: PlanOrchestrationContext, execution_plan: ExecutionPlan
    ) -> Iterator[DagsterEvent]:
        one_step = len(execution_plan.step_keys_to_execute) == 1
        chosen = self._in_process if one_step else self._multiprocess
        yield from chosen.execute(plan_context, execution_plan)


@executor(
    name="one_step_in_process",
    # The default executor's own schema and requirements: its run config stays valid.
    config_schema=multi_or_in_process_executor.config_schema.as_field(),
    requirements=multi_or_in_process_executor.get_requirements,
)
def one_step_in_process_executor(init_context: InitExecutorContext) -> Executor:
    """Dagster's default executor, with a one-step plan executed in the run worker."""
    chosen = multi_or_in_process_executor.executor_creation_fn(init_context)  # type: ignore[misc]
    if isinstance(chosen, MultiprocessExecutor):
        return OneStepInProcessExecutor(chosen)
    return chosen
