"""Blue/green deployment bounds and waiting arithmetic, written once.

The stack core's validation and the ``sagemaker-endpoint-deployment-rollback`` policy both use
these, so a step size or an execution timeout is judged the
same at preview time and under CrossGuard. Routing types are SageMaker's
``TrafficRoutingConfig.Type`` strings.
"""

from __future__ import annotations

import enum
import math


class TrafficRouting(enum.StrEnum):
    """Blue/green traffic shifting (SageMaker ``TrafficRoutingConfig.Type``)."""

    ALL_AT_ONCE = "ALL_AT_ONCE"
    CANARY = "CANARY"
    LINEAR = "LINEAR"


ALL_AT_ONCE = TrafficRouting.ALL_AT_ONCE.value
CANARY = TrafficRouting.CANARY.value
LINEAR = TrafficRouting.LINEAR.value

TRAFFIC_STEP_PERCENT: dict[str, tuple[int, int]] = {CANARY: (1, 50), LINEAR: (10, 50)}
"""The step sizes (``CAPACITY_PERCENT``) SageMaker accepts: a canary is at most half the fleet,
a linear step 10-50%. ALL_AT_ONCE takes no step size."""

MAXIMUM_EXECUTION_TIMEOUT_SECONDS = (600, 28800)
"""``MaximumExecutionTimeoutInSeconds`` bounds (BlueGreenUpdatePolicy and RollingUpdatePolicy), as
botocore's sagemaker model gives them (tests/test_stack_refusals.py checks it)."""

WAIT_SECONDS = (0, 3600)
"""``WaitIntervalInSeconds`` (traffic routing, rolling) and ``TerminationWaitInSeconds`` bounds."""

ROLLING_BATCH_PERCENT = (5, 50)
"""``MaximumBatchSize`` as ``CAPACITY_PERCENT`` of the variant: SageMaker takes 5-50%."""


def step_percent_problem(routing: str, step_percent: int) -> str | None:
    """What is wrong with a traffic step size for this routing type, or None."""
    bounds = TRAFFIC_STEP_PERCENT.get(routing)
    if bounds is None or bounds[0] <= step_percent <= bounds[1]:
        return None
    low, high = bounds
    return f"{step_percent}% is outside the {low}-{high}% SageMaker allows for a {routing} step"


def traffic_shift_waits(routing: str, step_percent: int) -> int:
    """Wait intervals of a traffic shift: one for ALL_AT_ONCE (its baking period) and CANARY (after
    the canary), one per step for LINEAR."""
    if routing == LINEAR:
        if step_percent < 1:
            raise ValueError(f"a linear step is a positive percentage, got {step_percent}")
        return math.ceil(100 / step_percent)
    return 1


def blue_green_wait_seconds(
    routing: str, step_percent: int, wait_seconds: int, termination_wait_seconds: int
) -> int:
    """Seconds a blue/green deployment spends waiting: every traffic wait plus the termination wait.
    SageMaker requires ``MaximumExecutionTimeoutInSeconds`` to exceed it."""
    return traffic_shift_waits(routing, step_percent) * wait_seconds + termination_wait_seconds
