"""ECR policies: images are scanned on push and their tags cannot be overwritten."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from policies import props, settings
from policies.props import UNKNOWN

REPOSITORY = "aws:ecr/repository:Repository"

SCAN_ON_PUSH = "ecr-repository-scan-on-push"
_SCAN_SCHEMA = settings.schema()


def validate_scan_on_push(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != REPOSITORY:
        return
    settings.resolve(SCAN_ON_PUSH, _SCAN_SCHEMA, args.get_config())
    scan = props.flag(args.props, "imageScanningConfiguration", "scanOnPush")
    if scan is UNKNOWN or scan is True:
        return
    report_violation(
        f"ECR repository '{args.name}' does not scan images on push: set "
        "imageScanningConfiguration.scanOnPush=True so a vulnerable serving image is caught before it ships",
        None,
    )


scan_on_push = ResourceValidationPolicy(
    name=SCAN_ON_PUSH,
    description="ECR repositories must scan images on push: set imageScanningConfiguration.scanOnPush=True.",
    validate=validate_scan_on_push,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=_SCAN_SCHEMA,
)

TAG_IMMUTABILITY = "ecr-repository-tag-immutability"
_IMMUTABILITY_SCHEMA = settings.schema()


def validate_tag_immutability(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != REPOSITORY:
        return
    settings.resolve(TAG_IMMUTABILITY, _IMMUTABILITY_SCHEMA, args.get_config())
    mutability = props.text(args.props, "imageTagMutability")
    if mutability is UNKNOWN or mutability == "IMMUTABLE":
        return
    report_violation(
        f"ECR repository '{args.name}' has imageTagMutability={mutability or 'MUTABLE (default)'}: a pushed "
        "tag can be overwritten under a running endpoint; set imageTagMutability='IMMUTABLE'",
        None,
    )


tag_immutability = ResourceValidationPolicy(
    name=TAG_IMMUTABILITY,
    description="ECR repositories must have immutable tags: set imageTagMutability='IMMUTABLE'.",
    validate=validate_tag_immutability,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=_IMMUTABILITY_SCHEMA,
)

POLICIES = [scan_on_push, tag_immutability]
