"""Bounds the AWS APIs put on the figures a stack sets, from botocore's service models where they
give one (``tests/test_stack_refusals.py`` checks them against the installed botocore).

Integers the models leave unbounded are Java ``int`` (32-bit) in every AWS API this stack calls.
"""

from __future__ import annotations

from stackcore import keys

INT32_MAX = 2**31 - 1

ENDPOINT_NAME_MAX = 63
"""SageMaker ``EndpointName``: ``^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}``."""

API_GATEWAY_INTEGRATION_TIMEOUT_SECONDS = 29
"""A REST API's default integration timeout (API Gateway quotas page)."""

LAMBDA_HANDLER_RESERVED_SECONDS = 3
"""What the handler's read timeout leaves of the function's timeout: its 2 s connect timeout and
1 s to map the answer and log it, so a slow endpoint gets the handler's 504, not a bare 502."""

MIN_LAMBDA_TIMEOUT_SECONDS = LAMBDA_HANDLER_RESERVED_SECONDS + 2
"""The shortest Lambda timeout that leaves the handler 2 s to wait for the endpoint."""

LAMBDA_MEMORY_MB = (128, 10240)
"""Lambda ``MemorySize`` for a function on Lambda's own fleet. botocore's model allows up to 32768
for functions on Lambda Managed Instances, which this stack does not use."""

CLOUDWATCH_EVALUATION_MINUTES_MAX = 1440
"""CloudWatch alarms evaluate at most one day of data (EvaluationPeriods x Period <= 86,400 s)."""

UPPER_BOUNDS: dict[str, tuple[int, str]] = {
    keys.INITIAL_INSTANCE_COUNT: (INT32_MAX, "SageMaker CreateEndpointConfig (InitialInstanceCount)"),
    keys.MIN_INSTANCES: (INT32_MAX, "Application Auto Scaling RegisterScalableTarget (MinCapacity)"),
    keys.MAX_INSTANCES: (INT32_MAX, "Application Auto Scaling RegisterScalableTarget (MaxCapacity)"),
    keys.INVOCATIONS_PER_INSTANCE_TARGET: (INT32_MAX, "a target-tracking TargetValue kept to a 32-bit count"),
    keys.CONCURRENCY_PER_INSTANCE_TARGET: (
        INT32_MAX,
        "a target-tracking TargetValue kept to a 32-bit count",
    ),
    keys.MAX_CONCURRENCY_PER_INSTANCE: (INT32_MAX, "a 32-bit count, like every figure the stack sets"),
    keys.SCALE_IN_COOLDOWN_SECONDS: (
        INT32_MAX,
        "Application Auto Scaling PutScalingPolicy (ScaleInCooldown)",
    ),
    keys.SCALE_OUT_COOLDOWN_SECONDS: (
        INT32_MAX,
        "Application Auto Scaling PutScalingPolicy (ScaleOutCooldown)",
    ),
    keys.TOTAL_INSTANCE_QUOTA: (INT32_MAX, "Service Quotas"),
    keys.API_RATE_LIMIT: (INT32_MAX, "API Gateway throttling (rateLimit)"),
    keys.API_BURST_LIMIT: (INT32_MAX, "API Gateway throttling (burstLimit)"),
    keys.API_QUOTA_PER_DAY: (INT32_MAX, "API Gateway CreateUsagePlan (quota limit)"),
    keys.SUBNET_HEADROOM_PERCENT: (1000, "a subnet (headroom above 1000% cannot fit any subnet)"),
    keys.MODEL_LATENCY_P99_MS: (60_000, "SageMaker (an invocation answers within 60 s)"),
    keys.API_LATENCY_P99_MS: (
        API_GATEWAY_INTEGRATION_TIMEOUT_SECONDS * 1000,
        "API Gateway (29 s integration timeout)",
    ),
    keys.FLEET_AT_MAX_MINUTES: (
        CLOUDWATCH_EVALUATION_MINUTES_MAX,
        "CloudWatch PutMetricAlarm (one day of data)",
    ),
    keys.ERROR_RATE_PERCENT: (100, "a percentage"),
    keys.CLIENT_ERROR_RATE_PERCENT: (100, "a percentage"),
}
"""Key -> (largest value, the API or fact that sets it). Lower bounds are each key's own rule."""
