"""Every policy of the pack, in one list: ``__main__.py`` serves it, the runner runs it."""

from __future__ import annotations

from pulumi_policy import ResourceValidationPolicy, StackValidationPolicy

from policies import apigateway, appautoscaling, cloudwatch, ec2, ecr, iam, s3, sagemaker, sns

PACK_NAME = "xgboost-endpoint-guardrails"

ALL_POLICIES: list[ResourceValidationPolicy | StackValidationPolicy] = [
    *sagemaker.POLICIES,
    *ec2.POLICIES,
    *appautoscaling.POLICIES,
    *cloudwatch.POLICIES,
    *apigateway.POLICIES,
    *ecr.POLICIES,
    *iam.POLICIES,
    *s3.POLICIES,
    *sns.POLICIES,
]


def policy_names() -> list[str]:
    return [p.name for p in ALL_POLICIES]
