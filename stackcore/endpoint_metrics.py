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
CONCURRENT_REQUESTS_PER_MODEL = "ConcurrentRequestsPerModel"
"""High-resolution: requests in a model container (queued inside it included), every 10 s."""
CPU_UTILIZATION = "CPUUtilization"
MEMORY_UTILIZATION = "MemoryUtilization"

HIGH_RESOLUTION_PERIOD_SECONDS = 10
"""``ConcurrentRequestsPerModel`` is emitted every 10 s (standard metrics: once a minute). CloudWatch
alarms take periods of 10, 20, 30 or a multiple of 60 s; 10 s follows every datapoint."""
STANDARD_PERIOD_SECONDS = 60

# Application Auto Scaling's predefined metric types for a SageMaker variant (botocore's
# application-autoscaling model, ``MetricType``; tests/program/test_program_scaling.py checks them).
INVOCATIONS_PER_INSTANCE_METRIC_TYPE = "SageMakerVariantInvocationsPerInstance"
"""Target tracking on ``InvocationsPerInstance``: per minute per instance."""
CONCURRENCY_METRIC_TYPE = "SageMakerVariantConcurrentRequestsPerModelHighResolution"
"""Target tracking on ``ConcurrentRequestsPerModel``: concurrent requests per model container."""
VARIANT_SCALING_METRIC_TYPES = (INVOCATIONS_PER_INSTANCE_METRIC_TYPE, CONCURRENCY_METRIC_TYPE)
"""The predefined metrics that scale an instance-backed production variant. (botocore lists more
SageMaker types: ``SageMakerVariantProvisionedConcurrencyUtilization`` is for serverless variants,
the ``SageMakerInferenceComponent*`` ones for inference components, neither of which this stack has.)"""

MICROSECONDS_PER_MILLISECOND = 1000
"""``ModelLatency`` and ``OverheadLatency`` are published in microseconds."""


def variant_dimensions(endpoint_name: str, variant_name: str = VARIANT_NAME) -> dict[str, str]:
    """The dimensions of every per-variant metric of an endpoint."""
    return {ENDPOINT_DIMENSION: endpoint_name, VARIANT_DIMENSION: variant_name}


# The serving container's own metric, made from its access log (container/xgbserve/app.py): every
# request shed under load (503, overloaded) writes one JSON line with ``"shed": true`` to stdout,
# which SageMaker sends to the endpoint's log group; a CloudWatch Logs metric filter counts them.
ENDPOINT_LOG_GROUP_PREFIX = "/aws/sagemaker/Endpoints/"
"""SageMaker writes an endpoint's container output to the log group ``<prefix><endpoint name>``."""
SERVING_NAMESPACE_PREFIX = "xgbserve/"
"""Namespace of the container's log-based metrics, followed by the endpoint name: a metric filter
cannot add a dimension the log line does not carry, so each endpoint gets its own namespace."""
SHED_REQUESTS = "ShedRequests"
"""Requests answered 503 because the instance was overloaded (one per shed access-log line)."""
SHED_FILTER_PATTERN = "{ $.shed IS TRUE }"
"""CloudWatch Logs JSON filter pattern matching the access-log lines with ``"shed": true`` (a
top-level JSON boolean, as tests/container/test_container_wire.py reads it from the real server)."""


def endpoint_log_group_name(endpoint_name: str) -> str:
    """The log group SageMaker writes the endpoint's container logs to."""
    return f"{ENDPOINT_LOG_GROUP_PREFIX}{endpoint_name}"


def serving_namespace(endpoint_name: str) -> str:
    """The CloudWatch namespace of the endpoint's log-based metrics (``ShedRequests``)."""
    return f"{SERVING_NAMESPACE_PREFIX}{endpoint_name}"
