"""Application Auto Scaling policies: no scaling on burstable SageMaker variants, and no
concurrency target past what one instance was measured to hold."""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from policies import props, settings, topology
from stackcore import endpoint_metrics, rules

BURSTABLE_VARIANT = "appautoscaling-target-burstable-variant"
_SCHEMA = settings.schema()


def validate_burstable_variant(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    settings.resolve(BURSTABLE_VARIANT, _SCHEMA, args.get_config())
    for endpoint in topology.endpoints(args.resources):
        for variant in endpoint.variants:
            if variant.instance_type is None:
                continue
            finding = rules.burstable_autoscaled(variant.instance_type, autoscaling=True)
            if finding is None:
                continue
            for resource in (*variant.scaling_targets, *variant.scaling_policies):
                report_violation(
                    f"'{resource.name}' autoscales endpoint '{endpoint.name}' variant '{variant.name}': "
                    f"{finding}",
                    resource.urn,
                )


burstable_variant = StackValidationPolicy(
    name=BURSTABLE_VARIANT,
    description=(
        "Burstable (ml.t*) endpoint variants cannot be autoscaled: drop their scaling target and policy, or "
        "use a non-burstable instance type."
    ),
    validate=validate_burstable_variant,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=_SCHEMA,
)

CONCURRENCY_CAPACITY = "appautoscaling-policy-concurrency-capacity"
MAX_CONCURRENCY_PER_INSTANCE = "maxConcurrencyPerInstance"
_CONCURRENCY_SCHEMA = settings.schema(
    **{
        MAX_CONCURRENCY_PER_INSTANCE: {
            "type": "integer",
            "minimum": 0,
            "default": 0,
            "description": (
                "Requests in flight one instance holds within the latency objective, as make capacity "
                "measured it (the stack's maxConcurrencyPerInstance); 0: not measured, nothing judged."
            ),
        }
    }
)


def validate_concurrency_capacity(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != topology.SCALING_POLICY:
        return
    config = settings.resolve(CONCURRENCY_CAPACITY, _CONCURRENCY_SCHEMA, args.get_config())
    tracking = props.get(args.props, "targetTrackingScalingPolicyConfiguration")
    metric_type = props.text(tracking, "predefinedMetricSpecification", "predefinedMetricType")
    if metric_type != endpoint_metrics.CONCURRENCY_METRIC_TYPE:
        return
    target = props.number(tracking, "targetValue")
    if not isinstance(target, float):
        return  # not known before the update
    capacity = config[MAX_CONCURRENCY_PER_INSTANCE]
    finding = rules.concurrency_target_beyond_capacity(target, capacity)
    if finding is None:
        return
    # The pack's figure comes from its config ('maxConcurrencyPerInstance', the stack's through make plan).
    report_violation(f"scaling policy '{args.name}' on {metric_type} (targetValue): {finding}", None)


concurrency_capacity = ResourceValidationPolicy(
    name=CONCURRENCY_CAPACITY,
    description=(
        "A target-tracking policy on high-resolution concurrency must not target more requests in flight "
        "than one instance was measured to hold: lower its targetValue."
    ),
    validate=validate_concurrency_capacity,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=_CONCURRENCY_SCHEMA,
)

POLICIES = [burstable_variant, concurrency_capacity]
