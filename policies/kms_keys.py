"""Which KMS key references are customer keys. Pure facts, no Pulumi.

An AWS-managed key (``alias/aws/sns``, ``alias/aws/s3``, ...) is shared by every resource of the
service in the account: its key policy cannot be changed, so access to the data cannot be
narrowed to this stack, and its use is not separately audited.
"""

from __future__ import annotations

AWS_MANAGED_ALIAS_PREFIX = "alias/aws/"


def is_aws_managed(key: str) -> bool:
    """True for an AWS-managed key's alias, by name (``alias/aws/sns``) or ARN (``...:alias/aws/sns``)."""
    name = key.strip().split(":", 5)[-1] if key.startswith("arn:") else key.strip()
    return name.lower().startswith(AWS_MANAGED_ALIAS_PREFIX)
