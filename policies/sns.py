"""SNS policies: topics are encrypted with a customer KMS key."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from policies import kms_keys, props, settings
from policies.props import UNKNOWN

TOPIC = "aws:sns/topic:Topic"

KMS_KEY = "sns-topic-kms-key"
_SCHEMA = settings.schema()


def validate_kms_key(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != TOPIC:
        return
    settings.resolve(KMS_KEY, _SCHEMA, args.get_config())
    key = props.text(args.props, "kmsMasterKeyId")
    if key is UNKNOWN:
        return  # The stack key's ARN, known during the update.
    if not isinstance(key, str) or not key:
        problem = "is not encrypted"
    elif kms_keys.is_aws_managed(key):
        problem = f"is encrypted with the AWS-managed key {key}, whose policy no one can narrow"
    else:
        return
    report_violation(
        f"SNS topic '{args.name}' {problem}: set kmsMasterKeyId to the stack's KMS key, whose policy lets "
        "cloudwatch.amazonaws.com use kms:Decrypt and kms:GenerateDataKey* so alarms still publish",
        None,
    )


kms_key = ResourceValidationPolicy(
    name=KMS_KEY,
    description=(
        "SNS topics must be encrypted with a customer KMS key: set kmsMasterKeyId to the stack's key, not "
        "alias/aws/sns."
    ),
    validate=validate_kms_key,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=_SCHEMA,
)

POLICIES = [kms_key]
