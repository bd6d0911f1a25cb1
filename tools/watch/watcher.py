"""One reading of a deployed endpoint: status, instance counts, free subnet addresses, metrics."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from stackcore import endpoint_metrics as em
from tools.capacity import cloudwatch

METRIC_LOOKBACK_SECONDS = 10 * 60
"""How far back each reading asks CloudWatch: the latest published minute is usually 1-3 minutes old."""


class WatchError(RuntimeError):
    """The endpoint or its subnets cannot be read; the message says which and why."""


@dataclass(frozen=True, kw_only=True)
class Clients:
    sagemaker: Any
    ec2: Any
    cloudwatch: Any


@dataclass(frozen=True, kw_only=True)
class Reading:
    """What the endpoint looked like at ``at`` (Unix seconds)."""

    at: float
    status: str
    current_instances: int | None
    desired_instances: int | None
    free_addresses: dict[str, int]
    """Subnet id -> AvailableIpAddressCount."""
    metrics: dict[str, float | None] = field(default_factory=dict)
    """The latest published value of each metric (``tools.capacity.cloudwatch.METRICS`` ids)."""
    failure_reason: str | None = None

    def to_record(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "at_iso": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.at)),
            "status": self.status,
            "current_instances": self.current_instances,
            "desired_instances": self.desired_instances,
            "free_addresses": dict(self.free_addresses),
            "metrics": dict(self.metrics),
            "failure_reason": self.failure_reason,
        }


def endpoint_subnets(clients: Clients, endpoint_name: str, variant_name: str = em.VARIANT_NAME) -> list[str]:
    """The subnets the endpoint's model runs in: endpoint -> endpoint config -> model -> VpcConfig."""
    try:
        endpoint = clients.sagemaker.describe_endpoint(EndpointName=endpoint_name)
        config = clients.sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
        variants = config.get("ProductionVariants", [])
        variant = next(
            (v for v in variants if v["VariantName"] == variant_name), variants[0] if variants else None
        )
        if variant is None:
            raise WatchError(f"endpoint config {endpoint['EndpointConfigName']} has no production variant")
        model = clients.sagemaker.describe_model(ModelName=variant["ModelName"])
    except ClientError as error:
        raise WatchError(f"cannot read endpoint {endpoint_name}: {error}") from None
    # Empty for an endpoint outside a VPC: it takes no addresses from any subnet.
    return list(model.get("VpcConfig", {}).get("Subnets", []))


def read_once(
    clients: Clients,
    endpoint_name: str,
    subnet_ids: Sequence[str],
    *,
    variant_name: str = em.VARIANT_NAME,
    now: float | None = None,
) -> Reading:
    """One reading: DescribeEndpoint, DescribeSubnets and GetMetricData, once each."""
    at = time.time() if now is None else now
    try:
        endpoint = clients.sagemaker.describe_endpoint(EndpointName=endpoint_name)
    except ClientError as error:
        raise WatchError(f"cannot describe endpoint {endpoint_name}: {error}") from None
    variant = next(
        (v for v in endpoint.get("ProductionVariants", []) if v.get("VariantName") == variant_name), {}
    )
    free: dict[str, int] = {}
    if subnet_ids:
        try:
            subnets = clients.ec2.describe_subnets(SubnetIds=list(subnet_ids))["Subnets"]
        except ClientError as error:
            raise WatchError(f"cannot describe subnets {', '.join(subnet_ids)}: {error}") from None
        free = {subnet["SubnetId"]: int(subnet["AvailableIpAddressCount"]) for subnet in subnets}
    metrics = cloudwatch.read_metrics(
        clients.cloudwatch, endpoint_name, at - METRIC_LOOKBACK_SECONDS, at, variant_name=variant_name
    )
    latest = {spec.query_id: metrics.latest(spec.query_id) for spec in cloudwatch.METRICS}
    return Reading(
        at=at,
        status=str(endpoint.get("EndpointStatus", "Unknown")),
        current_instances=variant.get("CurrentInstanceCount"),
        desired_instances=variant.get("DesiredInstanceCount"),
        free_addresses=free,
        metrics=latest,
        failure_reason=endpoint.get("FailureReason"),
    )


def reading_line(reading: Reading, vcpus: int | None) -> str:
    """One reading as the live terminal line."""

    def figure(value: float | None, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    cpu = reading.metrics.get("cpu")
    cpu_text = figure(cpu, ".0f") + "%"
    if cpu is not None and vcpus:
        cpu_text += f" ({cpu / vcpus:.0f}% of {vcpus} vCPUs)"
    latency = reading.metrics.get("model_latency")
    latency_ms = None if latency is None else latency / em.MICROSECONDS_PER_MILLISECOND
    subnets = ", ".join(f"{subnet} {count}" for subnet, count in sorted(reading.free_addresses.items()))
    return (
        f"{time.strftime('%H:%M:%S', time.gmtime(reading.at))} {reading.status} "
        f"instances {reading.current_instances}/{reading.desired_instances} | "
        f"free addresses {subnets or '-'} | "
        f"CPU {cpu_text} mem {figure(reading.metrics.get('memory'), '.0f')}% | "
        f"{figure(reading.metrics.get('invocations_per_instance'), ',.0f')} inv/instance/min | "
        f"model latency {figure(latency_ms, '.1f')} ms"
        f" | 5XX {figure(reading.metrics.get('errors_5xx'), '.0f')}"
        + (f" | {reading.failure_reason}" if reading.failure_reason else "")
    )
