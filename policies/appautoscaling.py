"""Application Auto Scaling policies: no scaling on burstable SageMaker variants."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, StackValidationArgs, StackValidationPolicy

from lib.fleet import is_burstable
from policies import settings, topology

BURSTABLE_VARIANT = "appautoscaling-target-burstable-variant"
_SCHEMA = settings.schema()


def validate_burstable_variant(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    settings.resolve(BURSTABLE_VARIANT, _SCHEMA, args.get_config())
    for endpoint in topology.endpoints(args.resources):
        for variant in endpoint.variants:
            if variant.instance_type is None or not is_burstable(variant.instance_type):
                continue
            for resource in (*variant.scaling_targets, *variant.scaling_policies):
                report_violation(
                    f"'{resource.name}' autoscales endpoint '{endpoint.name}' variant '{variant.name}' on "
                    f"burstable {variant.instance_type}: RegisterScalableTarget rejects burstable types; "
                    "remove the scaling, or use a non-burstable type such as ml.c5.large",
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

POLICIES = [burstable_variant]
