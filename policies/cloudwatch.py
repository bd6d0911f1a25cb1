"""CloudWatch policies: every endpoint is watched by the alarm set, with dimensions that match."""

from __future__ import annotations

from collections.abc import Mapping

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from policies import props, settings, topology

ALARM_SET = "cloudwatch-endpoint-alarm-set"
REQUIRED_METRICS = "requiredMetrics"
_SCHEMA = settings.schema(
    **{
        REQUIRED_METRICS: {
            "type": "array",
            "items": {"type": "string"},
            "default": ["Invocation5XXErrors", "ModelLatency"],
            "description": "Metrics each endpoint must have an alarm on (AWS/SageMaker or "
            "/aws/sagemaker/Endpoints).",
        }
    }
)
# AWS/SageMaker publishes invocation metrics per EndpointName AND VariantName: an alarm with only
# EndpointName matches no data and never fires.
_PER_VARIANT_NAMESPACES = ("AWS/SageMaker", "/aws/sagemaker/Endpoints")


def _metric_names(alarm: PolicyResource) -> list[str]:
    names: list[str] = []
    direct = props.text(alarm.props, "metricName")
    if isinstance(direct, str):
        names.append(direct)
    queries = props.items(alarm.props, "metricQueries")
    for query in queries if isinstance(queries, list) else []:
        name = props.text(query, "metric", "metricName")
        if isinstance(name, str):
            names.append(name)
    return names


def _missing_variant_dimension(alarm: PolicyResource) -> bool:
    """True when a per-variant SageMaker metric of the alarm (direct or in metric math) lacks VariantName."""
    metrics: list[object] = [alarm.props]
    queries = props.items(alarm.props, "metricQueries")
    metrics.extend(props.get(q, "metric") for q in (queries if isinstance(queries, list) else []))
    for metric in metrics:
        namespace = props.text(metric, "namespace")
        dimensions = props.mapping(metric, "dimensions")
        if (
            namespace in _PER_VARIANT_NAMESPACES
            and isinstance(dimensions, Mapping)
            and "VariantName" not in dimensions
        ):
            return True
    return False


def validate_alarm_set(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    config = settings.resolve(ALARM_SET, _SCHEMA, args.get_config())
    required: list[str] = config[REQUIRED_METRICS]
    for endpoint in topology.endpoints(args.resources):
        watched = {name for alarm in endpoint.alarms for name in _metric_names(alarm)}
        missing = [m for m in required if m not in watched]
        if missing:
            report_violation(
                f"endpoint '{endpoint.name}' has no alarm on {', '.join(missing)}: add a CloudWatch "
                "MetricAlarm per metric with dimensions EndpointName and VariantName taken from the "
                "endpoint",
                endpoint.resource.urn,
            )
        for alarm in endpoint.alarms:
            if _missing_variant_dimension(alarm):
                report_violation(
                    f"alarm '{alarm.name}' on endpoint '{endpoint.name}' has no VariantName dimension: "
                    "SageMaker publishes these metrics per variant, so it watches nothing; add VariantName",
                    alarm.urn,
                )


alarm_set = StackValidationPolicy(
    name=ALARM_SET,
    description=(
        "Every endpoint must have alarms on its error and latency metrics, per variant: add the missing "
        "MetricAlarms with EndpointName and VariantName dimensions."
    ),
    validate=validate_alarm_set,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=_SCHEMA,
)

POLICIES = [alarm_set]
