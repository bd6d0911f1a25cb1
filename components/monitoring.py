"""Alarms, their topic and a dashboard for the endpoint and its front door.

Every alarm on an AWS metric names real dimensions (an alarm without them watches nothing); the
container's own ``ShedRequests`` (a log metric filter, see endpoint.py) has none and is kept apart
per endpoint by its namespace. Units follow
CloudWatch: ``ModelLatency`` is in MICROseconds, ``CPUUtilization`` counts 100 per core, API
Gateway's ``Latency`` is in milliseconds and its ``5XXError`` averages to a rate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.context import name_tag
from stackcore import endpoint_metrics
from stackcore.instance_types import instance_type as stackcore_instance_type

cw = aws.cloudwatch

SAGEMAKER = endpoint_metrics.INVOCATION_NAMESPACE
SAGEMAKER_INSTANCE = endpoint_metrics.INSTANCE_NAMESPACE
MINUTE = endpoint_metrics.STANDARD_PERIOD_SECONDS
HIGH_RESOLUTION = endpoint_metrics.HIGH_RESOLUTION_PERIOD_SECONDS
MICROSECONDS_PER_MILLISECOND = endpoint_metrics.MICROSECONDS_PER_MILLISECOND
CONCURRENCY_ALARM_PERIODS = 36
"""6 minutes of 10 s datapoints: the high-resolution policy starts a scale-out within about 30 s,
and a new instance must pass its health checks within about 4 minutes of starting (AWS-FACTS.md);
above the target after that, the new capacity has not come or is not enough."""
CONCURRENCY_ALARM_DATAPOINTS = 33
"""Of those 36, the breaching ones that fire it: a queue that drains for half a minute between
bursts is still a queue."""
SHED_ALARM_PERIODS = 5
"""Minutes the shed-requests alarm looks back over."""
SHED_ALARM_DATAPOINTS = 3
"""Of those, the minutes with any request shed that fire it: one burst shed for a minute is the
container protecting itself as designed; shedding in most minutes means the fleet is too small."""


def vcpus(instance_type: str) -> int:
    """vCPUs of a hosting instance type (CloudWatch counts CPUUtilization 100 per vCPU)."""
    return stackcore_instance_type(instance_type).vcpus


@dataclass(frozen=True, kw_only=True)
class MonitoringArgs:
    endpoint_name: str
    """Physical endpoint name (fixed, so the alarms can exist before the endpoint)."""
    variant_name: str
    """Production variant of the endpoint (a dimension of every SageMaker metric)."""
    instance_type: str
    """For the CPU threshold (100 per vCPU)."""
    kms_key_arn: pulumi.Input[str]
    """Encrypts the alarm topic."""
    alarm_emails: Sequence[str] = ()
    """E-mail subscriptions of the topic."""
    model_latency_p99_ms: int
    """p99 ModelLatency threshold in milliseconds (the alarm converts to microseconds)."""
    error_rate_percent: float
    """5XX share of invocations (and of API requests) that fires the alarm."""
    client_error_rate_percent: float
    """4XX share of invocations that fires the alarm."""
    cpu_percent: int
    """Of all cores together."""
    memory_percent: int
    """MemoryUtilization threshold."""
    invocations_per_instance_target: int
    """The autoscaling target (per minute per instance); sustained traffic above it is an alarm."""
    concurrency_per_instance_target: int | None = None
    """The concurrency target when the variant scales on ConcurrentRequestsPerModel: adds its alarm
    and draws the target on the dashboard. None when the stack does not follow concurrency."""
    autoscaling: bool
    """The variant is autoscaled: add the fleet-at-maximum alarm."""
    max_instances: int
    """Autoscaling maximum (or the fixed instance count)."""
    fleet_at_max_minutes: int
    """Minutes at the maximum before the fleet-at-maximum alarm fires."""
    function_name: pulumi.Input[str]
    """The front door's Lambda."""
    api_name: pulumi.Input[str]
    """The REST API's name (a dimension of API Gateway metrics)."""
    stage_name: pulumi.Input[str]
    """Its stage."""
    api_latency_p99_ms: int
    """p99 API latency threshold in milliseconds."""

    def __post_init__(self) -> None:
        vcpus(self.instance_type)
        if not 1 <= self.cpu_percent <= 100 or not 1 <= self.memory_percent <= 100:
            raise ValueError("utilisation thresholds are 1-100%")
        if min(self.model_latency_p99_ms, self.api_latency_p99_ms, self.fleet_at_max_minutes) <= 0:
            raise ValueError("latency and duration thresholds must be positive")
        if self.error_rate_percent <= 0 or self.client_error_rate_percent <= 0:
            raise ValueError("error-rate thresholds must be positive")
        if self.max_instances < 1 or self.invocations_per_instance_target < 1:
            raise ValueError("the fleet maximum and the scaling target must be positive")
        if self.concurrency_per_instance_target is not None and self.concurrency_per_instance_target < 1:
            raise ValueError("the concurrency target must be positive")


class Monitoring(pulumi.ComponentResource):
    """The alarm topic, the alarms and the dashboard."""

    topic_arn: pulumi.Output[str]
    dashboard_name: pulumi.Output[str]
    alarm_names: pulumi.Output[list[str]]
    rollback_alarm_names: list[str]
    """Alarms that roll a deployment back: model latency and 5XX rate. Fixed names (see below)."""
    rollback_alarm_arns: list[pulumi.Output[str]]

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("xgboost-endpoint:monitoring:Monitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        topic = aws.sns.Topic(
            f"{name}-topic", kms_master_key_id=args.kms_key_arn, tags=name_tag(f"{name}-topic"), opts=child
        )
        for index, email in enumerate(args.alarm_emails):
            aws.sns.TopicSubscription(
                f"{name}-email-{index + 1}", topic=topic.arn, protocol="email", endpoint=email, opts=child
            )
        self._topic = topic
        self._name = name

        variant = endpoint_metrics.variant_dimensions(args.endpoint_name, args.variant_name)
        lambda_dims: Mapping[str, pulumi.Input[str]] = {"FunctionName": args.function_name}
        api_dims: Mapping[str, pulumi.Input[str]] = {"ApiName": args.api_name, "Stage": args.stage_name}

        # The rollback alarms have FIXED names derived from the endpoint's: the provider marks the
        # endpoint's auto_rollback_configuration ForceNew, so any change to the alarm list (an
        # alarm replaced under a new autoname) would replace the endpoint, and its fixed name
        # rules out create-before-delete: an outage. The alarm set must never change when an
        # alarm resource is replaced.
        latency = self._alarm(
            "model-latency",
            f"p99 ModelLatency of {args.endpoint_name} above {args.model_latency_p99_ms} ms "
            "(rolls deployments back)",
            alarm_name=rollback_alarm_name(args.endpoint_name, "latency"),
            metric_name="ModelLatency",
            namespace=SAGEMAKER,
            dimensions=variant,
            extended_statistic="p99",
            threshold=args.model_latency_p99_ms * MICROSECONDS_PER_MILLISECOND,
            periods=3,
        )
        server_errors = self._rate_alarm(
            "invocation-5xx-rate",
            f"5XX share of {args.endpoint_name} invocations above "
            f"{args.error_rate_percent}% (rolls deployments back)",
            alarm_name=rollback_alarm_name(args.endpoint_name, "5xx"),
            errors="Invocation5XXErrors",
            dimensions=variant,
            threshold=args.error_rate_percent,
        )
        alarms = [latency, server_errors]
        alarms.append(
            self._rate_alarm(
                "invocation-4xx-rate",
                f"4XX share of {args.endpoint_name} invocations above "
                f"{args.client_error_rate_percent}%: clients send what the model cannot read",
                errors="Invocation4XXErrors",
                dimensions=variant,
                threshold=args.client_error_rate_percent,
                periods=5,
            )
        )
        alarms.append(
            self._alarm(
                "cpu",
                f"CPU of {args.endpoint_name} above {args.cpu_percent}% of its "
                f"{vcpus(args.instance_type)} cores",
                metric_name="CPUUtilization",
                namespace=SAGEMAKER_INSTANCE,
                dimensions=variant,
                statistic="Average",
                threshold=args.cpu_percent * vcpus(args.instance_type),
                periods=5,
            )
        )
        alarms.append(
            self._alarm(
                "memory",
                f"memory of {args.endpoint_name} above {args.memory_percent}%",
                metric_name="MemoryUtilization",
                namespace=SAGEMAKER_INSTANCE,
                dimensions=variant,
                statistic="Average",
                threshold=args.memory_percent,
                periods=5,
            )
        )
        alarms.append(
            self._alarm(
                "invocations-per-instance",
                f"invocations per instance above {args.invocations_per_instance_target}/min for 10 minutes: "
                + (
                    "autoscaling is not keeping up (at its maximum, or cooling down)"
                    if args.autoscaling
                    else "more traffic than the fixed fleet was sized for; add instances"
                ),
                metric_name="InvocationsPerInstance",
                namespace=SAGEMAKER,
                dimensions=variant,
                statistic="Sum",
                threshold=args.invocations_per_instance_target,
                periods=10,
            )
        )
        if args.concurrency_per_instance_target is not None:
            alarms.append(
                self._alarm(
                    "concurrency-per-model",
                    f"requests in flight per instance above {args.concurrency_per_instance_target} in "
                    f"{CONCURRENCY_ALARM_DATAPOINTS} of the last {CONCURRENCY_ALARM_PERIODS} 10 s "
                    "datapoints: requests queue and "
                    + (
                        "autoscaling is not keeping up (at its maximum, or instances not starting)"
                        if args.autoscaling
                        else "the fixed fleet is too small; add instances"
                    ),
                    metric_name=endpoint_metrics.CONCURRENT_REQUESTS_PER_MODEL,
                    namespace=SAGEMAKER,
                    dimensions=variant,
                    statistic="Average",
                    threshold=args.concurrency_per_instance_target,
                    period=HIGH_RESOLUTION,
                    periods=CONCURRENCY_ALARM_PERIODS,
                    datapoints=CONCURRENCY_ALARM_DATAPOINTS,
                )
            )
        alarms.append(
            self._alarm(
                "shed-requests",
                f"{args.endpoint_name} shed requests (503, overloaded) in {SHED_ALARM_DATAPOINTS} of "
                f"the last {SHED_ALARM_PERIODS} minutes: its instances cannot keep up; "
                + (
                    "autoscaling is not adding capacity fast enough (at its maximum, or cooling down)"
                    if args.autoscaling
                    else "add instances"
                ),
                metric_name=endpoint_metrics.SHED_REQUESTS,
                namespace=endpoint_metrics.serving_namespace(args.endpoint_name),
                statistic="Sum",
                threshold=0,
                periods=SHED_ALARM_PERIODS,
                datapoints=SHED_ALARM_DATAPOINTS,
            )
        )
        if args.autoscaling:
            alarms.append(self._fleet_at_max_alarm(args, variant))
        alarms.append(
            self._alarm(
                "lambda-errors",
                "the front door's Lambda fails",
                metric_name="Errors",
                namespace="AWS/Lambda",
                dimensions=lambda_dims,
                statistic="Sum",
                threshold=0,
                periods=5,
                datapoints=3,
            )
        )
        alarms.append(
            self._alarm(
                "lambda-throttles",
                "the front door's Lambda is throttled",
                metric_name="Throttles",
                namespace="AWS/Lambda",
                dimensions=lambda_dims,
                statistic="Sum",
                threshold=0,
                periods=5,
                datapoints=3,
            )
        )
        alarms.append(
            self._alarm(
                "api-5xx",
                f"API 5XX share above {args.error_rate_percent}%",
                metric_name="5XXError",
                namespace="AWS/ApiGateway",
                dimensions=api_dims,
                statistic="Average",
                threshold=args.error_rate_percent / 100,
                periods=5,
                datapoints=3,
            )
        )
        alarms.append(
            self._alarm(
                "api-latency",
                f"p99 API latency above {args.api_latency_p99_ms} ms",
                metric_name="Latency",
                namespace="AWS/ApiGateway",
                dimensions=api_dims,
                extended_statistic="p99",
                threshold=args.api_latency_p99_ms,
                periods=5,
            )
        )

        dashboard = cw.Dashboard(
            f"{name}-dashboard",
            # Dashboards have no autonaming; the name carries project and stack to stay unique.
            dashboard_name=f"{pulumi.get_project()}-{pulumi.get_stack()}",
            dashboard_body=_dashboard_body(args, [a.arn for a in alarms]),
            opts=child,
        )

        self.topic_arn = topic.arn
        self.dashboard_name = dashboard.dashboard_name
        self.alarm_names = pulumi.Output.all(*[a.name for a in alarms])
        self.rollback_alarm_names = [
            rollback_alarm_name(args.endpoint_name, "latency"),
            rollback_alarm_name(args.endpoint_name, "5xx"),
        ]
        self.rollback_alarm_arns = [latency.arn, server_errors.arn]
        self.register_outputs(
            {
                "topic_arn": self.topic_arn,
                "dashboard_name": self.dashboard_name,
                "alarm_names": self.alarm_names,
                "rollback_alarm_names": self.rollback_alarm_names,
                "rollback_alarm_arns": self.rollback_alarm_arns,
            }
        )

    def _alarm(
        self,
        role: str,
        description: str,
        *,
        periods: int,
        datapoints: int | None = None,
        alarm_name: str | None = None,
        period: int = MINUTE,
        **metric: Any,
    ) -> cw.MetricAlarm:
        """A single-metric alarm (one-minute periods unless the metric is high-resolution) that tells
        the topic when it fires and clears."""
        return cw.MetricAlarm(
            f"{self._name}-{role}",
            name=alarm_name,
            alarm_description=description,
            comparison_operator="GreaterThanThreshold",
            period=period,
            evaluation_periods=periods,
            datapoints_to_alarm=datapoints or periods,
            # No traffic is not a failure of the endpoint.
            treat_missing_data="notBreaching",
            alarm_actions=[self._topic.arn],
            ok_actions=[self._topic.arn],
            tags=name_tag(f"{self._name}-{role}"),
            opts=_alarm_options(self, alarm_name),
            **metric,
        )

    def _math_alarm(
        self,
        role: str,
        description: str,
        *,
        queries: list[cw.MetricAlarmMetricQueryArgs],
        threshold: float,
        periods: int,
        comparison: str = "GreaterThanThreshold",
        alarm_name: str | None = None,
    ) -> cw.MetricAlarm:
        return cw.MetricAlarm(
            f"{self._name}-{role}",
            name=alarm_name,
            alarm_description=description,
            comparison_operator=comparison,
            threshold=threshold,
            evaluation_periods=periods,
            datapoints_to_alarm=periods,
            treat_missing_data="notBreaching",
            metric_queries=queries,
            alarm_actions=[self._topic.arn],
            ok_actions=[self._topic.arn],
            tags=name_tag(f"{self._name}-{role}"),
            opts=_alarm_options(self, alarm_name),
        )

    def _rate_alarm(
        self,
        role: str,
        description: str,
        *,
        errors: str,
        dimensions: Mapping[str, str],
        threshold: float,
        periods: int = 3,
        alarm_name: str | None = None,
    ) -> cw.MetricAlarm:
        """Percentage of invocations that failed (metric math over the two counts)."""
        return self._math_alarm(
            role,
            description,
            alarm_name=alarm_name,
            queries=[
                _query("errors", errors, SAGEMAKER, dimensions),
                _query("invocations", "Invocations", SAGEMAKER, dimensions),
                cw.MetricAlarmMetricQueryArgs(
                    id="rate",
                    expression="IF(invocations > 0, 100 * errors / invocations, 0)",
                    label=f"{errors} %",
                    return_data=True,
                ),
            ],
            threshold=threshold,
            periods=periods,
        )

    def _fleet_at_max_alarm(self, args: MonitoringArgs, variant: Mapping[str, str]) -> cw.MetricAlarm:
        # SageMaker publishes no instance count; Invocations / InvocationsPerInstance is one.
        return self._math_alarm(
            "fleet-at-max",
            f"{args.endpoint_name} has run at its autoscaling maximum of {args.max_instances} instances for "
            f"{args.fleet_at_max_minutes} minutes: raise maxInstances (and the quotas) or the scaling target",
            queries=[
                _query("invocations", "Invocations", SAGEMAKER, variant),
                _query("per_instance", "InvocationsPerInstance", SAGEMAKER, variant),
                cw.MetricAlarmMetricQueryArgs(
                    id="instances",
                    expression="IF(per_instance > 0, invocations / per_instance, 0)",
                    label="instances in service",
                    return_data=True,
                ),
            ],
            threshold=args.max_instances,
            comparison="GreaterThanOrEqualToThreshold",
            periods=args.fleet_at_max_minutes,
        )


def rollback_alarm_name(endpoint_name: str, kind: str) -> str:
    """The fixed physical name of a rollback alarm: ``<endpoint>-rollback-<kind>``."""
    return f"{endpoint_name}-rollback-{kind}"


def _alarm_options(parent: pulumi.Resource, alarm_name: str | None) -> pulumi.ResourceOptions:
    # PutMetricAlarm creates OR overwrites the alarm of that name: a create-before-delete
    # replacement of a fixed-name alarm would overwrite it, then delete it. Delete first.
    return pulumi.ResourceOptions(parent=parent, delete_before_replace=alarm_name is not None)


def _query(
    query_id: str, metric_name: str, namespace: str, dimensions: Mapping[str, str]
) -> cw.MetricAlarmMetricQueryArgs:
    return cw.MetricAlarmMetricQueryArgs(
        id=query_id,
        metric=cw.MetricAlarmMetricQueryMetricArgs(
            metric_name=metric_name,
            namespace=namespace,
            period=MINUTE,
            stat="Sum",
            dimensions=dict(dimensions),
        ),
        return_data=False,
    )


def _dashboard_body(args: MonitoringArgs, alarm_arns: list[pulumi.Output[str]]) -> pulumi.Output[str]:
    region = aws.get_region_output().region
    endpoint = ["EndpointName", args.endpoint_name, "VariantName", args.variant_name]

    def widget(title: str, metrics: list[list[Any]], x: int, y: int, **extra: Any) -> dict[str, Any]:
        return {
            "type": "metric",
            "x": x,
            "y": y,
            "width": 12,
            "height": 6,
            "properties": {
                "title": title,
                "region": region,
                "view": "timeSeries",
                "period": MINUTE,
                "metrics": metrics,
                **extra,
            },
        }

    widgets = [
        widget(
            "Invocations and errors",
            [
                [SAGEMAKER, "Invocations", *endpoint, {"stat": "Sum"}],
                [SAGEMAKER, "Invocation4XXErrors", *endpoint, {"stat": "Sum"}],
                [SAGEMAKER, "Invocation5XXErrors", *endpoint, {"stat": "Sum"}],
            ],
            0,
            0,
        ),
        widget(
            "Model latency (microseconds)",
            [
                [SAGEMAKER, "ModelLatency", *endpoint, {"stat": "p50"}],
                [SAGEMAKER, "ModelLatency", *endpoint, {"stat": "p99"}],
                [SAGEMAKER, "OverheadLatency", *endpoint, {"stat": "p99"}],
            ],
            12,
            0,
        ),
        widget(
            "Invocations per instance (per minute) vs scaling target",
            [
                [SAGEMAKER, "InvocationsPerInstance", *endpoint, {"stat": "Sum"}],
            ],
            0,
            6,
            annotations={
                "horizontal": [{"label": "scaling target", "value": args.invocations_per_instance_target}]
            },
        ),
        widget(
            "Requests in flight per instance (10 s, high resolution)"
            + (" vs scaling target" if args.concurrency_per_instance_target is not None else ""),
            [
                [
                    SAGEMAKER,
                    endpoint_metrics.CONCURRENT_REQUESTS_PER_MODEL,
                    *endpoint,
                    {"stat": "Average", "period": HIGH_RESOLUTION},
                ],
                [
                    SAGEMAKER,
                    endpoint_metrics.CONCURRENT_REQUESTS_PER_MODEL,
                    *endpoint,
                    {"stat": "Maximum", "period": HIGH_RESOLUTION},
                ],
            ],
            12,
            6,
            **(
                {
                    "annotations": {
                        "horizontal": [
                            {"label": "scaling target", "value": args.concurrency_per_instance_target}
                        ]
                    }
                }
                if args.concurrency_per_instance_target is not None
                else {}
            ),
        ),
        widget(
            "CPU (100 per core) and memory (%)",
            [
                [SAGEMAKER_INSTANCE, "CPUUtilization", *endpoint, {"stat": "Average"}],
                [SAGEMAKER_INSTANCE, "MemoryUtilization", *endpoint, {"stat": "Average"}],
            ],
            0,
            12,
        ),
        widget(
            "Front door",
            [
                [
                    "AWS/ApiGateway",
                    "Count",
                    "ApiName",
                    args.api_name,
                    "Stage",
                    args.stage_name,
                    {"stat": "Sum"},
                ],
                [
                    "AWS/ApiGateway",
                    "5XXError",
                    "ApiName",
                    args.api_name,
                    "Stage",
                    args.stage_name,
                    {"stat": "Sum"},
                ],
                ["AWS/Lambda", "Errors", "FunctionName", args.function_name, {"stat": "Sum"}],
                ["AWS/Lambda", "Throttles", "FunctionName", args.function_name, {"stat": "Sum"}],
            ],
            12,
            12,
        ),
        widget(
            "Requests shed (503, overloaded)",
            [
                [
                    endpoint_metrics.serving_namespace(args.endpoint_name),
                    endpoint_metrics.SHED_REQUESTS,
                    {"stat": "Sum"},
                ],
            ],
            12,
            18,
        ),
        {
            "type": "alarm",
            "x": 0,
            "y": 18,
            "width": 12,
            "height": 6,
            "properties": {"title": "Alarms", "alarms": alarm_arns},
        },
    ]
    return pulumi.Output.json_dumps({"widgets": widgets})
