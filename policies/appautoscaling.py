"""Application Auto Scaling policies: no scaling on burstable SageMaker variants."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, StackValidationArgs, StackValidationPolicy

from policies import settings, topology
from stackcore import rules

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

POLICIES = [burstable_variant]
