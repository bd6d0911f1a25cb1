"""The stack's customer-managed KMS key: model artifacts, the image repository, the endpoint's
volumes, data capture and the alarm topic are encrypted with it."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.context import AwsContext, name_tag


@dataclass(frozen=True, kw_only=True)
class EncryptionArgs:
    context: AwsContext
    """Account and partition, for the key policy's principals."""
    deletion_window_days: int = 30
    """Days a scheduled key deletion can still be cancelled (7-30)."""

    def __post_init__(self) -> None:
        if not 7 <= self.deletion_window_days <= 30:
            raise ValueError(f"a KMS deletion window is 7-30 days, got {self.deletion_window_days}")


class Encryption(pulumi.ComponentResource):
    """A rotating KMS key whose policy lets the account's IAM policies grant its use and lets
    CloudWatch alarms publish to a topic encrypted with it."""

    key_arn: pulumi.Output[str]
    """ARN of the key."""
    key_id: pulumi.Output[str]

    def __init__(self, name: str, args: EncryptionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("xgboost-endpoint:security:Encryption", name, None, opts)
        ctx = args.context
        root = pulumi.Output.concat("arn:", ctx.partition, ":iam::", ctx.account_id, ":root")
        # In a key policy "Resource": "*" means "this key"; it cannot name the key's own ARN.
        policy = pulumi.Output.json_dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "AccountAdministersAndDelegatesThroughIam",
                        "Effect": "Allow",
                        "Principal": {"AWS": root},
                        "Action": "kms:*",
                        "Resource": "*",
                    },
                    {
                        "Sid": "CloudWatchAlarmsPublishToTheEncryptedTopic",
                        "Effect": "Allow",
                        "Principal": {"Service": "cloudwatch.amazonaws.com"},
                        "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                        "Resource": "*",
                        "Condition": {"StringEquals": {"aws:SourceAccount": ctx.account_id}},
                    },
                ],
            }
        )
        key = aws.kms.Key(
            f"{name}-key",
            description=f"{pulumi.get_project()}/{pulumi.get_stack()}: model, image, endpoint volumes",
            enable_key_rotation=True,
            deletion_window_in_days=args.deletion_window_days,
            policy=policy,
            tags=name_tag(f"{name}-key"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.key_arn = key.arn
        self.key_id = key.key_id
        self.register_outputs({"key_arn": self.key_arn, "key_id": self.key_id})
