"""Where the stack runs (account, region, partition) and the tags every resource adds.

The provider's default tags (``aws:defaultTags`` in the stack configuration) carry the project,
environment and owner; a resource adds only its ``Name``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True, kw_only=True)
class AwsContext:
    """The account, region and partition, looked up once and handed to the components that
    build ARNs (IAM documents must name specific ARNs)."""

    account_id: pulumi.Output[str]
    region: pulumi.Output[str]
    partition: pulumi.Output[str]

    @staticmethod
    def lookup() -> AwsContext:
        return AwsContext(
            account_id=aws.get_caller_identity_output().account_id,
            region=aws.get_region_output().region,
            partition=aws.get_partition_output().partition,
        )

    def arn(self, service: str, resource: pulumi.Input[str], *, regional: bool = True) -> pulumi.Output[str]:
        """``arn:<partition>:<service>:<region>:<account>:<resource>`` for this account."""
        region: pulumi.Input[str] = self.region if regional else ""
        return pulumi.Output.concat(
            "arn:", self.partition, ":", service, ":", region, ":", self.account_id, ":", resource
        )


def name_tag(name: str) -> dict[str, str]:
    """The one tag a resource sets itself; the rest come from the provider's default tags."""
    return {"Name": name}


def log_group_prefix() -> str:
    """``/<project>/<stack>/``: every log group the stack creates is named under it, so the key
    policy can let CloudWatch Logs use the stack's key for this stack's log groups only."""
    return f"/{pulumi.get_project()}/{pulumi.get_stack()}/"
