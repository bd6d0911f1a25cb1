"""A deployed endpoint's CloudWatch metrics for a time window, one GetMetricData call per read.

The capacity tool reads them after a load test against a deployed endpoint (the server's CPU at
each step); ``tools.watch`` reads them every few seconds beside a test. Names, namespaces and
dimensions are :mod:`stackcore.endpoint_metrics`'s: instance metrics (CPU, memory) are in
``/aws/sagemaker/Endpoints``, invocation metrics in ``AWS/SageMaker``, both per ``EndpointName``
and ``VariantName``. SageMaker publishes them per minute, a minute or two late.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from stackcore import endpoint_metrics as em

PERIOD_SECONDS = 60
"""SageMaker endpoint metrics are published at one-minute resolution."""


@dataclass(frozen=True, kw_only=True)
class MetricSpec:
    query_id: str
    namespace: str
    name: str
    stat: str
    unit_note: str


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(
        query_id="cpu",
        namespace=em.INSTANCE_NAMESPACE,
        name=em.CPU_UTILIZATION,
        stat="Average",
        unit_note="percent, 100 per vCPU, averaged over instances",
    ),
    MetricSpec(
        query_id="memory",
        namespace=em.INSTANCE_NAMESPACE,
        name=em.MEMORY_UTILIZATION,
        stat="Average",
        unit_note="percent of memory, averaged over instances",
    ),
    MetricSpec(
        query_id="invocations_per_instance",
        namespace=em.INVOCATION_NAMESPACE,
        name=em.INVOCATIONS_PER_INSTANCE,
        stat="Sum",
        unit_note="invocations per instance per minute",
    ),
    MetricSpec(
        query_id="model_latency",
        namespace=em.INVOCATION_NAMESPACE,
        name=em.MODEL_LATENCY,
        stat="Average",
        unit_note="microseconds",
    ),
    MetricSpec(
        query_id="errors_5xx",
        namespace=em.INVOCATION_NAMESPACE,
        name=em.INVOCATION_5XX_ERRORS,
        stat="Sum",
        unit_note="5XX responses per minute",
    ),
)


def metric_queries(
    endpoint_name: str, variant_name: str = em.VARIANT_NAME, period: int = PERIOD_SECONDS
) -> list[dict[str, Any]]:
    """GetMetricData's ``MetricDataQueries`` for every metric of :data:`METRICS`."""
    dimensions = [
        {"Name": name, "Value": value}
        for name, value in em.variant_dimensions(endpoint_name, variant_name).items()
    ]
    return [
        {
            "Id": spec.query_id,
            "Label": spec.name,
            "MetricStat": {
                "Metric": {"Namespace": spec.namespace, "MetricName": spec.name, "Dimensions": dimensions},
                "Period": period,
                "Stat": spec.stat,
            },
            "ReturnData": True,
        }
        for spec in METRICS
    ]


@dataclass(frozen=True, kw_only=True)
class EndpointMetrics:
    """Per-minute datapoints (Unix seconds of the minute's start, value) by query id, oldest first."""

    endpoint_name: str
    variant_name: str
    series: Mapping[str, list[tuple[float, float]]] = field(default_factory=dict)

    def latest(self, query_id: str) -> float | None:
        points = self.series.get(query_id, [])
        return points[-1][1] if points else None

    def mean_over(self, query_id: str, start: float, end: float) -> float | None:
        """Mean of the datapoints whose minute overlaps ``[start, end]`` (None without any)."""
        values = [
            value
            for stamp, value in self.series.get(query_id, [])
            if stamp < end and stamp + PERIOD_SECONDS > start
        ]
        return sum(values) / len(values) if values else None

    def covers(self, moment: float) -> bool:
        """True once the CPU datapoint for the minute holding ``moment`` has been published."""
        return any(stamp <= moment < stamp + PERIOD_SECONDS for stamp, _ in self.series.get("cpu", []))

    def to_record(self) -> dict[str, Any]:
        specs = {spec.query_id: spec for spec in METRICS}
        return {
            "endpoint_name": self.endpoint_name,
            "variant_name": self.variant_name,
            "period_seconds": PERIOD_SECONDS,
            "metrics": {
                query_id: {
                    "namespace": specs[query_id].namespace,
                    "metric": specs[query_id].name,
                    "stat": specs[query_id].stat,
                    "unit": specs[query_id].unit_note,
                    "timestamps": [stamp for stamp, _ in points],
                    "values": [value for _, value in points],
                }
                for query_id, points in self.series.items()
            },
        }


def read_metrics(
    client: Any,
    endpoint_name: str,
    start: float,
    end: float,
    *,
    variant_name: str = em.VARIANT_NAME,
) -> EndpointMetrics:
    """The endpoint's metrics from ``start`` to ``end`` (Unix seconds), widened to whole minutes."""
    start_minute = dt.datetime.fromtimestamp(start - start % PERIOD_SECONDS, dt.UTC)
    end_minute = dt.datetime.fromtimestamp(end - end % PERIOD_SECONDS + PERIOD_SECONDS, dt.UTC)
    series: dict[str, list[tuple[float, float]]] = {spec.query_id: [] for spec in METRICS}
    request: dict[str, Any] = {
        "MetricDataQueries": metric_queries(endpoint_name, variant_name),
        "StartTime": start_minute,
        "EndTime": end_minute,
        "ScanBy": "TimestampAscending",
    }
    while True:
        response = client.get_metric_data(**request)
        for result in response.get("MetricDataResults", []):
            points = series.setdefault(str(result["Id"]), [])
            points.extend(
                (stamp.timestamp(), float(value))
                for stamp, value in zip(result.get("Timestamps", []), result.get("Values", []), strict=True)
            )
        token = response.get("NextToken")
        if not token:
            break
        request["NextToken"] = token
    return EndpointMetrics(
        endpoint_name=endpoint_name,
        variant_name=variant_name,
        series={key: sorted(points) for key, points in series.items()},
    )


def wait_for_metrics(
    client: Any,
    endpoint_name: str,
    start: float,
    end: float,
    *,
    wait_seconds: float,
    poll_seconds: float = 15.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> EndpointMetrics:
    """Read the window's metrics, re-reading until the last minute's CPU is published or
    ``wait_seconds`` pass (SageMaker publishes a minute or two late)."""
    deadline = clock() + wait_seconds
    metrics = read_metrics(client, endpoint_name, start, end)
    while not metrics.covers(end - 1) and clock() + poll_seconds <= deadline:
        sleep(poll_seconds)
        metrics = read_metrics(client, endpoint_name, start, end)
    return metrics


def step_figures(metrics: EndpointMetrics, start: float, end: float, vcpus: int) -> dict[str, float | None]:
    """One step's window in CloudWatch's words: CPU as a share of the instance's vCPUs, memory,
    invocations per instance per minute, mean model latency (ms), 5XX errors."""
    cpu = metrics.mean_over("cpu", start, end)
    latency_us = metrics.mean_over("model_latency", start, end)
    return {
        "server_cpu_percent": None if cpu is None else cpu / vcpus,
        "cpu_utilization": cpu,
        "memory_utilization": metrics.mean_over("memory", start, end),
        "invocations_per_instance": metrics.mean_over("invocations_per_instance", start, end),
        "model_latency_ms": None if latency_us is None else latency_us / em.MICROSECONDS_PER_MILLISECOND,
        "invocation_5xx_errors": metrics.mean_over("errors_5xx", start, end),
    }


def window_of(steps: Sequence[Any]) -> tuple[float, float] | None:
    """The span of the steps' measurement windows (None when no step carries its times)."""
    starts = [step.started_at for step in steps if step.started_at is not None]
    ends = [step.ended_at for step in steps if step.ended_at is not None]
    if not starts or not ends:
        return None
    return min(starts), max(ends)
