"""How a variant scales and how SageMaker spreads requests over its instances: the choices a stack
makes (``scalingMetric``, ``routingStrategy``) and the AWS values each choice means, once.

- ``invocations``: one target-tracking policy on ``SageMakerVariantInvocationsPerInstance``
  (per minute per instance; one datapoint a minute, so a scale-out starts after about 3 minutes
  of breaching datapoints).
- ``concurrency``: one policy on ``SageMakerVariantConcurrentRequestsPerModelHighResolution``
  (concurrent requests per model container, queued ones included, every 10 s: a scale-out
  starts within about 30 s; scale-in stays as slow as with a standard metric).
- ``both``: the two policies on one scalable target. Application Auto Scaling then scales out
  when any policy asks and in only when every policy allows it.

Routing (SageMaker ``ProductionVariantRoutingConfig.RoutingStrategy``): ``RANDOM`` is SageMaker's
default; ``LEAST_OUTSTANDING_REQUESTS`` sends each request to the instance with the fewest in
flight, so a slow or starved instance stops collecting a queue. botocore lists two more
strategies (``PREFIX_AWARE``, ``KV_AWARE``) for LLM inference components; this stack offers the
two that apply to one-container XGBoost variants.
"""

from __future__ import annotations

import enum

from stackcore import endpoint_metrics


class ScalingMetric(enum.StrEnum):
    """What target tracking follows (the ``scalingMetric`` key)."""

    INVOCATIONS = "invocations"
    CONCURRENCY = "concurrency"
    BOTH = "both"


class RoutingStrategy(enum.StrEnum):
    """SageMaker ``RoutingStrategy`` values this stack offers (the ``routingStrategy`` key)."""

    LEAST_OUTSTANDING_REQUESTS = "LEAST_OUTSTANDING_REQUESTS"
    RANDOM = "RANDOM"


def follows_invocations(metric: ScalingMetric) -> bool:
    return metric in (ScalingMetric.INVOCATIONS, ScalingMetric.BOTH)


def follows_concurrency(metric: ScalingMetric) -> bool:
    return metric in (ScalingMetric.CONCURRENCY, ScalingMetric.BOTH)


def predefined_metric_types(metric: ScalingMetric) -> tuple[str, ...]:
    """The Application Auto Scaling predefined metric types of the policies ``metric`` means."""
    types: list[str] = []
    if follows_invocations(metric):
        types.append(endpoint_metrics.INVOCATIONS_PER_INSTANCE_METRIC_TYPE)
    if follows_concurrency(metric):
        types.append(endpoint_metrics.CONCURRENCY_METRIC_TYPE)
    return tuple(types)
