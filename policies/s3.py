"""S3 policies: every bucket blocks public access completely and is encrypted with a customer KMS key."""

from __future__ import annotations

from collections.abc import Sequence

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from policies import kms_keys, props, settings, topology
from policies.props import UNKNOWN

BUCKET_TYPES = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
ACCOUNT_PUBLIC_ACCESS_BLOCK = "aws:s3/accountPublicAccessBlock:AccountPublicAccessBlock"
ENCRYPTION_TYPES = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
)
PUBLIC_ACCESS_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")


def buckets(resources: Sequence[PolicyResource]) -> list[PolicyResource]:
    return [r for r in resources if r.resource_type in BUCKET_TYPES]


def attached_to(
    bucket: PolicyResource, resources: Sequence[PolicyResource], type_token: str
) -> list[PolicyResource]:
    """Resources of ``type_token`` whose ``bucket`` input is this bucket (its id, or its known name)."""
    name = props.text(bucket.props, "bucket")
    found: list[PolicyResource] = []
    for resource in topology.of_type(resources, type_token):
        linked = any(d.urn == bucket.urn for d in resource.property_dependencies.get("bucket", []))
        named = isinstance(name, str) and props.text(resource.props, "bucket") == name
        if linked or named:
            found.append(resource)
    return found


PUBLIC_ACCESS = "s3-bucket-public-access-block"
_PUBLIC_ACCESS_SCHEMA = settings.schema()


def _flags_off(block: PolicyResource) -> list[str]:
    """The flags not set to true (unknown flags are not judged)."""
    return [f for f in PUBLIC_ACCESS_FLAGS if props.flag(block.props, f) not in (True, UNKNOWN)]


def validate_public_access(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    settings.resolve(PUBLIC_ACCESS, _PUBLIC_ACCESS_SCHEMA, args.get_config())
    account_blocks = topology.of_type(args.resources, ACCOUNT_PUBLIC_ACCESS_BLOCK)
    account_wide = any(not _flags_off(b) for b in account_blocks)
    for bucket in buckets(args.resources):
        blocks = attached_to(bucket, args.resources, PUBLIC_ACCESS_BLOCK)
        if not blocks:
            if not account_wide:
                report_violation(
                    f"bucket '{bucket.name}' has no public access block: add an "
                    f"aws.s3.BucketPublicAccessBlock for it with {', '.join(PUBLIC_ACCESS_FLAGS)} all True",
                    bucket.urn,
                )
            continue
        for block in blocks:
            off = _flags_off(block)
            if off:
                report_violation(
                    f"public access block '{block.name}' of bucket '{bucket.name}' leaves {', '.join(off)} "
                    "off: a bucket policy or ACL could make the model or captured requests public; set all "
                    "four flags to True",
                    block.urn,
                )


public_access = StackValidationPolicy(
    name=PUBLIC_ACCESS,
    description=(
        "Every bucket must have a public access block with all four flags on: add a BucketPublicAccessBlock "
        "with blockPublicAcls, blockPublicPolicy, ignorePublicAcls and restrictPublicBuckets True."
    ),
    validate=validate_public_access,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=_PUBLIC_ACCESS_SCHEMA,
)


KMS_KEY = "s3-bucket-kms-key"
_KMS_KEY_SCHEMA = settings.schema()


def _default_encryptions(bucket: PolicyResource, resources: Sequence[PolicyResource]) -> list[object]:
    """Every ``applyServerSideEncryptionByDefault`` that applies to the bucket (inline or separate)."""
    found: list[object] = []
    inline = props.get(
        bucket.props, "serverSideEncryptionConfiguration", "rule", "applyServerSideEncryptionByDefault"
    )
    if inline is not None:
        found.append(inline)
    for type_token in ENCRYPTION_TYPES:
        for configuration in attached_to(bucket, resources, type_token):
            rules = props.items(configuration.props, "rules")
            if rules is UNKNOWN:
                found.append(UNKNOWN)
            for rule in rules if isinstance(rules, list) else []:
                default = props.get(rule, "applyServerSideEncryptionByDefault")
                if default is not None:
                    found.append(default)
    return found


def _customer_key_problem(default: object) -> str | None:
    """Why a default encryption is not a customer KMS key; None when it is, or when not known yet."""
    if default is UNKNOWN:
        return None
    algorithm = props.text(default, "sseAlgorithm")
    key = props.text(default, "kmsMasterKeyId")
    if algorithm is UNKNOWN or key is UNKNOWN:
        return None
    algorithm = algorithm if isinstance(algorithm, str) else None
    key = key if isinstance(key, str) else None
    if algorithm not in KMS_ALGORITHMS:
        return f"encrypts with {algorithm or 'no algorithm'}, not aws:kms"
    if not key:
        return "uses aws:kms without a key id, i.e. the AWS-managed key alias/aws/s3"
    if kms_keys.is_aws_managed(key):
        return f"uses the AWS-managed key {key}"
    return None


def validate_kms_key(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    settings.resolve(KMS_KEY, _KMS_KEY_SCHEMA, args.get_config())
    for bucket in buckets(args.resources):
        defaults = _default_encryptions(bucket, args.resources)
        if not defaults:
            report_violation(
                f"bucket '{bucket.name}' has no server-side encryption configuration, so S3 encrypts it with "
                "its own SSE-S3 keys: add an aws.s3.BucketServerSideEncryptionConfiguration with "
                "sseAlgorithm 'aws:kms' and the stack's KMS key as kmsMasterKeyId",
                bucket.urn,
            )
            continue
        for default in defaults:
            problem = _customer_key_problem(default)
            if problem:
                report_violation(
                    f"bucket '{bucket.name}' {problem}: set sseAlgorithm 'aws:kms' and the stack's KMS key "
                    "as kmsMasterKeyId, so its key policy decides who reads the objects",
                    bucket.urn,
                )


kms_key = StackValidationPolicy(
    name=KMS_KEY,
    description=(
        "Every bucket must be encrypted by default with a customer KMS key: add a server-side encryption "
        "configuration with sseAlgorithm 'aws:kms' and the stack's key."
    ),
    validate=validate_kms_key,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=_KMS_KEY_SCHEMA,
)

POLICIES = [public_access, kms_key]
