"""Names of a SageMaker endpoint's CloudWatch metrics, once: the alarms, the dashboard, the policy
pack, the capacity tool and the watcher all read the same namespaces and dimensions.

Source: "Monitor Amazon SageMaker AI with Amazon CloudWatch" (SageMaker developer guide): invocation
metrics are in ``AWS/SageMaker`` per ``EndpointName`` and ``VariantName``; instance metrics (CPU,
memory, disk) are in ``/aws/sagemaker/Endpoints`` with the same dimensions. ``ModelLatency`` is in
microseconds; ``CPUUtilization`` counts 100 per vCPU.
"""

from __future__ import annotations

VARIANT_NAME = "AllTraffic"
"""The one production variant every stack's endpoint serves (SageMaker's conventional name)."""

INVOCATION_NAMESPACE = "AWS/SageMaker"
"""Invocation metrics: Invocations, InvocationsPerInstance, ModelLatency, errors, concurrency."""
INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"
"""Per-instance resource metrics: CPUUtilization, MemoryUtilization, DiskUtilization."""
PER_VARIANT_NAMESPACES = (INVOCATION_NAMESPACE, INSTANCE_NAMESPACE)
"""Namespaces whose metrics exist only per endpoint AND variant: an alarm without VariantName there
matches no data and never fires."""

ENDPOINT_DIMENSION = "EndpointName"
VARIANT_DIMENSION = "VariantName"

INVOCATIONS = "Invocations"
INVOCATIONS_PER_INSTANCE = "InvocationsPerInstance"
MODEL_LATENCY = "ModelLatency"
OVERHEAD_LATENCY = "OverheadLatency"
INVOCATION_4XX_ERRORS = "Invocation4XXErrors"
INVOCATION_5XX_ERRORS = "Invocation5XXErrors"
CPU_UTILIZATION = "CPUUtilization"
MEMORY_UTILIZATION = "MemoryUtilization"

MICROSECONDS_PER_MILLISECOND = 1000
"""``ModelLatency`` and ``OverheadLatency`` are published in microseconds."""


def variant_dimensions(endpoint_name: str, variant_name: str = VARIANT_NAME) -> dict[str, str]:
    """The dimensions of every per-variant metric of an endpoint."""
    return {ENDPOINT_DIMENSION: endpoint_name, VARIANT_DIMENSION: variant_name}
