"""The stack's customer-managed KMS key: model artifacts, the image repository, the endpoint's
volumes, data capture, the alarm topic and the stack's log groups are encrypted with it."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.context import AwsContext, name_tag


@dataclass(frozen=True, kw_only=True)
class EncryptionArgs:
    context: AwsContext
    """Account, region and partition, for the key policy's principals and conditions."""
    log_group_prefix: str
    """Name prefix of the stack's log groups (``/<project>/<stack>/``): CloudWatch Logs may use the
    key for log groups under it, and for the endpoint's log group, only."""
    endpoint_log_group: str
    """The endpoint's log group (``/aws/sagemaker/Endpoints/<endpoint name>``): SageMaker fixes its
    name, so it cannot be under the prefix."""
    deletion_window_days: int = 30
    """Days a scheduled key deletion can still be cancelled (7-30)."""

    def __post_init__(self) -> None:
        if not 7 <= self.deletion_window_days <= 30:
            raise ValueError(f"a KMS deletion window is 7-30 days, got {self.deletion_window_days}")
        if not (self.log_group_prefix.startswith("/") and self.log_group_prefix.endswith("/")):
            raise ValueError(f"a log group prefix is a path, /.../, got {self.log_group_prefix!r}")
        if not self.endpoint_log_group.startswith("/") or "*" in self.endpoint_log_group:
            raise ValueError(f"the endpoint's log group is one exact name, got {self.endpoint_log_group!r}")


class Encryption(pulumi.ComponentResource):
    """A rotating KMS key whose policy lets the account's IAM policies grant its use, lets
    CloudWatch alarms publish to a topic encrypted with it, and lets CloudWatch Logs encrypt the
    stack's log groups."""

    key_arn: pulumi.Output[str]
    """ARN of the key."""
    key_id: pulumi.Output[str]

    def __init__(self, name: str, args: EncryptionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("xgboost-endpoint:security:Encryption", name, None, opts)
        ctx = args.context
        root = pulumi.Output.concat("arn:", ctx.partition, ":iam::", ctx.account_id, ":root")
        # The stack's log groups only: their names are autonamed under the prefix, and the ARN in
        # the encryption context CloudWatch Logs sends is the log group's. The endpoint's log group
        # is named by SageMaker, so it is listed by its exact name.
        stack_log_groups = [
            ctx.arn("logs", f"log-group:{args.log_group_prefix}*"),
            ctx.arn("logs", f"log-group:{args.endpoint_log_group}"),
        ]
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
                    {
                        "Sid": "CloudWatchLogsEncryptsTheStackLogGroups",
                        "Effect": "Allow",
                        "Principal": {"Service": pulumi.Output.concat("logs.", ctx.region, ".amazonaws.com")},
                        # The action families AWS documents for encrypting log data with KMS; the
                        # condition keeps every one of them to this stack's log groups.
                        "Action": [
                            "kms:Encrypt*",
                            "kms:Decrypt*",
                            "kms:ReEncrypt*",
                            "kms:GenerateDataKey*",
                            "kms:Describe*",
                        ],
                        "Resource": "*",
                        "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": stack_log_groups}},
                    },
                ],
            }
        )
        key = aws.kms.Key(
            f"{name}-key",
            description=f"{pulumi.get_project()}/{pulumi.get_stack()}: model, image, volumes, alarms, logs",
            enable_key_rotation=True,
            deletion_window_in_days=args.deletion_window_days,
            policy=policy,
            tags=name_tag(f"{name}-key"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.key_arn = key.arn
        self.key_id = key.key_id
        self.register_outputs({"key_arn": self.key_arn, "key_id": self.key_id})
