"""CloudWatch policies: every endpoint is watched by the alarm set, with dimensions that match, and
every log group is encrypted with a customer KMS key."""

from __future__ import annotations

from collections.abc import Mapping

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from policies import kms_keys, props, settings, topology
from policies.props import UNKNOWN
from stackcore import endpoint_metrics

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
_PER_VARIANT_NAMESPACES = endpoint_metrics.PER_VARIANT_NAMESPACES


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

LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
LOG_GROUP_KMS_KEY = "cloudwatch-log-group-kms-key"
_LOG_GROUP_SCHEMA = settings.schema()


def validate_log_group_kms_key(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != LOG_GROUP:
        return
    settings.resolve(LOG_GROUP_KMS_KEY, _LOG_GROUP_SCHEMA, args.get_config())
    key = props.text(args.props, "kmsKeyId")
    if key is UNKNOWN:
        return  # The stack key's ARN, known during the update.
    if isinstance(key, str) and key and not kms_keys.is_aws_managed(key):
        return
    problem = (
        f"names the AWS-managed key {key}" if key else "has no kmsKeyId, so CloudWatch Logs keeps its own key"
    )
    report_violation(
        f"log group '{args.name}' {problem}: set kmsKeyId to the stack's KMS key ARN, whose policy lets "
        "logs.<region>.amazonaws.com use it for this stack's log groups only",
        None,
    )


log_group_kms_key = ResourceValidationPolicy(
    name=LOG_GROUP_KMS_KEY,
    description=(
        "CloudWatch log groups must be encrypted with a customer KMS key: set kmsKeyId to the stack's key "
        "ARN."
    ),
    validate=validate_log_group_kms_key,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=_LOG_GROUP_SCHEMA,
)

POLICIES = [alarm_set, log_group_kms_key]
