"""What the simulator needs of a stack, read only through the stack core (:mod:`stackcore`).

:func:`fleet_from_stack` turns validated :class:`stackcore.StackSettings` into a :class:`FleetSpec`:
instance type and vCPUs, counts, Availability Zones, autoscaling, update mode and timings, quotas,
the latency objective, the scaling metric, the concurrency target and the routing strategy; the
simulator's options may override the last three.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from stackcore import StackSettings
from stackcore.burstable import BurstableCredits, burstable_credits
from stackcore.fleet import UpdateMode, rolling_batch_instances
from stackcore.instance_types import instance_type
from tools.simulate.constants import PRICE_PER_HOUR_USD


class Routing(enum.StrEnum):
    """SageMaker's ``RoutingStrategy`` for a production variant."""

    LEAST_OUTSTANDING_REQUESTS = "LEAST_OUTSTANDING_REQUESTS"
    RANDOM = "RANDOM"


class ScalingMetric(enum.StrEnum):
    INVOCATIONS = "invocations"
    CONCURRENCY = "concurrency"
    BOTH = "both"


class SimulationInputError(ValueError):
    """Input the simulator cannot use; the message says what to change (exit code 2)."""


@dataclass(frozen=True, kw_only=True)
class FleetSpec:
    """One production variant as the simulator plays it."""

    stack: str
    instance_type: str
    vcpus: int
    burstable: BurstableCredits | None
    initial_instances: int
    autoscaling: bool
    min_instances: int
    max_instances: int
    invocations_target_per_minute: float
    concurrency_target: float
    """Target of the high-resolution concurrency metric (outstanding requests per instance); 0 = unset."""
    scaling_metric: ScalingMetric
    scale_in_cooldown_s: float
    scale_out_cooldown_s: float
    routing: Routing
    az_count: int
    update_mode: UpdateMode
    traffic_routing: str
    traffic_step_percent: int
    traffic_wait_s: float
    termination_wait_s: float
    rolling_batch_percent: int
    rolling_wait_s: float
    quota_instances: int
    """Most instances of this type that may run at once: min(type quota, account-wide quota)."""
    latency_objective_ms: float
    price_per_hour_usd: float | None
    front_door: bool
    """Requests come through API Gateway and the Lambda (29 s, throttles), else straight to SageMaker."""
    lambda_timeout_s: float

    def rolling_batch(self, fleet: int) -> int:
        return rolling_batch_instances(max(1, fleet), self.rolling_batch_percent)


def fleet_from_stack(
    settings: StackSettings,
    *,
    routing: str | None = None,
    scaling_metric: str | None = None,
    concurrency_target: float | None = None,
    front_door: bool = True,
    price_per_hour_usd: float | None = None,
) -> FleetSpec:
    """The fleet a stack declares. Options given here win over the stack's own values."""
    kind = instance_type(settings.instance_type)
    routing_name = routing or settings.routing_strategy.value
    metric_name = scaling_metric or settings.scaling_metric.value
    try:
        chosen_routing = Routing(str(routing_name).upper())
    except ValueError:
        raise SimulationInputError(
            f"routing {routing_name!r} is not one of {', '.join(r.value for r in Routing)}"
        ) from None
    try:
        chosen_metric = ScalingMetric(str(metric_name).lower())
    except ValueError:
        raise SimulationInputError(
            f"scaling metric {metric_name!r} is not one of {', '.join(m.value for m in ScalingMetric)}"
        ) from None
    target = (
        float(settings.concurrency_per_instance_target) if concurrency_target is None else concurrency_target
    )
    if chosen_metric is not ScalingMetric.INVOCATIONS and settings.autoscaling and target <= 0:
        raise SimulationInputError(
            f"scaling on {chosen_metric.value} needs a concurrency target: set the stack's "
            "concurrencyPerInstanceTarget or pass --concurrency-target"
        )
    burstable = burstable_credits(settings.instance_type)
    if kind.burstable and burstable is None:
        raise SimulationInputError(f"no CPU-credit figures for {settings.instance_type}")
    quota = min(settings.quotas.for_type(settings.instance_type), settings.quotas.total_instances)
    return FleetSpec(
        stack=settings.stack,
        instance_type=settings.instance_type,
        vcpus=kind.vcpus,
        burstable=burstable,
        initial_instances=settings.initial_instance_count,
        autoscaling=settings.autoscaling,
        min_instances=settings.fleet_min,
        max_instances=settings.fleet_max,
        invocations_target_per_minute=float(settings.invocations_per_instance_target),
        concurrency_target=float(target),
        scaling_metric=chosen_metric,
        scale_in_cooldown_s=float(settings.scale_in_cooldown_seconds),
        scale_out_cooldown_s=float(settings.scale_out_cooldown_seconds),
        routing=chosen_routing,
        az_count=settings.subnet_count,
        update_mode=settings.update_mode,
        traffic_routing=settings.traffic_routing.value,
        traffic_step_percent=settings.traffic_step_percent,
        traffic_wait_s=float(settings.traffic_wait_seconds),
        termination_wait_s=float(settings.termination_wait_seconds),
        rolling_batch_percent=settings.rolling_batch_percent,
        rolling_wait_s=float(settings.rolling_wait_seconds),
        quota_instances=quota,
        latency_objective_ms=float(settings.model_latency_p99_ms),
        price_per_hour_usd=price_per_hour_usd
        if price_per_hour_usd is not None
        else PRICE_PER_HOUR_USD.get(settings.instance_type),
        front_door=front_door,
        lambda_timeout_s=float(settings.lambda_timeout_seconds),
    )


def client_timeout_s(spec: FleetSpec, sagemaker_timeout_s: float, api_gateway_timeout_s: float) -> float:
    """How long a caller waits: the front door's limit (API Gateway, the Lambda) or SageMaker's."""
    if not spec.front_door:
        return sagemaker_timeout_s
    return min(sagemaker_timeout_s, api_gateway_timeout_s, spec.lambda_timeout_s)


def whole_seconds(value: float) -> int:
    return max(1, math.ceil(value))
