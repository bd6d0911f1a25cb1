"""Subnet sizing, alarms, API Gateway, ECR and IAM policies: pass on the happy graph, fail on one change."""

from __future__ import annotations

import json
from typing import Any

from policy_checks import messages
from policy_graphs import happy_graph, mutate, mutate_type, relink, remove

from stackcore.fleet import addresses_needed_per_subnet, largest_prefix_holding

SUBNETS = "ec2-subnet-endpoint-addresses"


def _slash(prefix: int):
    def apply(inputs: dict[str, Any]) -> None:
        network = inputs["cidrBlock"].rsplit("/", 1)[0]
        inputs["cidrBlock"] = f"{network}/{prefix}"

    return apply


# ec2-subnet-endpoint-addresses


def test_slash_28_subnets_under_a_fleet_of_20_fail_with_the_size_to_use() -> None:
    graph = mutate_type(happy_graph(), "aws:ec2/subnet:Subnet", _slash(28))
    graph = mutate(graph, "serving-scaling-target", lambda i: i.update(maxCapacity=20.0))
    found = messages(graph, SUBNETS)
    assert len(found) == 3
    # 20 instances, doubled by blue/green, over 3 subnets: 14 per subnet, 2 IPs each, plus one
    # interface VPC endpoint ENI, 10% headroom and AWS's 5.
    needed = addresses_needed_per_subnet(40, 3, other_enis_per_subnet=1, headroom_percent=10)
    assert needed == 37
    assert largest_prefix_holding(needed) == 26
    assert found[0] == (
        f"subnet 'net-private-a' (10.0.0.0/28): a /28 has 16 addresses but each subnet needs {needed} "
        "(14 peak instance(s) of serving-endpoint x 2 IPs + 1 other ENI(s) + 10% headroom + 5 reserved "
        "by AWS). Fix: use /26 subnets or larger (subnetPrefixLength 26 or less)"
    )


def test_headroom_setting_changes_the_outcome() -> None:
    graph = mutate_type(happy_graph(), "aws:ec2/subnet:Subnet", _slash(28))
    # 6 at most, 12 during blue/green, 4 per subnet: 8 + 1 ENI = 9, +10% = 10, + 5 = 15 <= 16.
    assert messages(graph, SUBNETS) == []
    assert len(messages(graph, SUBNETS, {"headroomPercent": 100})) == 3


def test_lambda_in_the_subnet_takes_an_address() -> None:
    graph = mutate_type(happy_graph(), "aws:ec2/subnet:Subnet", _slash(28))
    # 4 instances per subnet: 8 + 1 VPC endpoint + 2 extra = 11, + 5 reserved = 16: exactly a /28.
    assert messages(graph, SUBNETS, {"headroomPercent": 0, "extraEnisPerSubnet": 2}) == []
    graph = mutate(
        graph, "api-handler", lambda i: i.update(vpcConfig={"subnetIds": [None], "securityGroupIds": [None]})
    )
    graph = relink(graph, "api-handler", "vpcConfig", "net-private-a", "net-endpoint-sg")
    [message] = messages(graph, SUBNETS, {"headroomPercent": 0, "extraEnisPerSubnet": 2})
    assert "subnet 'net-private-a'" in message
    assert "+ 2 other ENI(s)" in message


def test_unknown_cidr_is_not_judged() -> None:
    graph = mutate_type(happy_graph(), "aws:ec2/subnet:Subnet", lambda i: i.update(cidrBlock=None))
    graph = mutate(graph, "serving-scaling-target", lambda i: i.update(maxCapacity=500.0))
    assert messages(graph, SUBNETS) == []


# cloudwatch-endpoint-alarm-set


def test_missing_latency_alarm_fails() -> None:
    graph = remove(happy_graph(), "serving-modellatency-alarm")
    [message] = messages(graph, "cloudwatch-endpoint-alarm-set")
    assert "endpoint 'serving-endpoint' has no alarm on ModelLatency" in message


def test_alarm_without_variant_dimension_watches_nothing() -> None:
    graph = mutate(happy_graph(), "serving-modellatency-alarm", lambda i: i["dimensions"].pop("VariantName"))
    [message] = messages(graph, "cloudwatch-endpoint-alarm-set")
    assert (
        "alarm 'serving-modellatency-alarm' on endpoint 'serving-endpoint' has no VariantName dimension"
        in message
    )


def test_metric_math_alarm_counts_for_its_metrics() -> None:
    def math(inputs: dict[str, Any]) -> None:
        dims = inputs.pop("dimensions")
        for key in ("namespace", "metricName", "statistic", "period"):
            inputs.pop(key)
        inputs["metricQueries"] = [
            {
                "id": "errors",
                "metric": {
                    "namespace": "AWS/SageMaker",
                    "metricName": "Invocation5XXErrors",
                    "dimensions": dims,
                    "period": 60.0,
                    "stat": "Sum",
                },
            },
            {
                "id": "calls",
                "metric": {
                    "namespace": "AWS/SageMaker",
                    "metricName": "Invocations",
                    "dimensions": dims,
                    "period": 60.0,
                    "stat": "Sum",
                },
            },
            {"id": "rate", "expression": "100 * errors / calls", "returnData": True},
        ]

    graph = mutate(happy_graph(), "serving-invocation5xxerrors-alarm", math)
    graph = relink(graph, "serving-invocation5xxerrors-alarm", "metricQueries", "serving-endpoint")
    graph = relink(graph, "serving-invocation5xxerrors-alarm", "dimensions")
    assert messages(graph, "cloudwatch-endpoint-alarm-set") == []


def test_required_metrics_are_configurable() -> None:
    [message] = messages(
        happy_graph(), "cloudwatch-endpoint-alarm-set", {"requiredMetrics": ["CPUUtilization"]}
    )
    assert "has no alarm on CPUUtilization" in message


# apigateway-method-api-key and apigateway-api-usage-plan-throttle


def test_open_api_method_fails() -> None:
    graph = mutate(happy_graph(), "api-invocations-post", lambda i: i.update(apiKeyRequired=False))
    [message] = messages(graph, "apigateway-method-api-key")
    assert "API method 'api-invocations-post' (POST) has authorization=NONE and no API key" in message
    assert "set apiKeyRequired=True" in message


def test_method_with_iam_authorizer_passes() -> None:
    graph = mutate(
        happy_graph(),
        "api-invocations-post",
        lambda i: i.update(apiKeyRequired=False, authorization="AWS_IAM"),
    )
    assert messages(graph, "apigateway-method-api-key") == []


def test_api_without_usage_plan_fails() -> None:
    graph = remove(happy_graph(), "api-usage-plan")
    [message] = messages(graph, "apigateway-api-usage-plan-throttle")
    assert "REST API 'api' is in no usage plan" in message


def test_usage_plan_without_throttling_fails() -> None:
    graph = mutate(happy_graph(), "api-usage-plan", lambda i: i.pop("throttleSettings"))
    [message] = messages(graph, "apigateway-api-usage-plan-throttle")
    assert "usage plan(s) api-usage-plan of REST API 'api' set no throttling" in message


# ecr-repository-scan-on-push and ecr-repository-tag-immutability


def test_repository_without_scan_on_push_fails() -> None:
    graph = mutate(happy_graph(), "image-repo", lambda i: i.pop("imageScanningConfiguration"))
    [message] = messages(graph, "ecr-repository-scan-on-push")
    assert "ECR repository 'image-repo' does not scan images on push" in message


def test_repository_with_mutable_tags_fails() -> None:
    graph = mutate(happy_graph(), "image-repo", lambda i: i.pop("imageTagMutability"))
    [message] = messages(graph, "ecr-repository-tag-immutability")
    assert "has imageTagMutability=MUTABLE (default)" in message
    assert "set imageTagMutability='IMMUTABLE'" in message


# iam-lambda-role-wildcard-actions


def _document(*actions: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": list(actions), "Resource": "*"}],
        }
    )


def test_lambda_role_with_wildcard_action_fails() -> None:
    graph = mutate(happy_graph(), "api-handler-invoke", lambda i: i.update(policy=_document("sagemaker:*")))
    [message] = messages(graph, "iam-lambda-role-wildcard-actions")
    assert (
        "role policy 'api-handler-invoke' on Lambda role 'api-handler-role' allows wildcard action(s) "
        "sagemaker:*" in message
    )
    assert "sagemaker:InvokeEndpoint" in message


def test_wildcard_in_a_deny_statement_is_fine() -> None:
    document = json.dumps(
        {
            "Statement": [
                {"Effect": "Deny", "Action": "*", "Resource": "*"},
                {"Effect": "Allow", "Action": "sagemaker:InvokeEndpoint", "Resource": "*"},
            ]
        }
    )
    graph = mutate(happy_graph(), "api-handler-invoke", lambda i: i.update(policy=document))
    assert messages(graph, "iam-lambda-role-wildcard-actions") == []


def test_broad_managed_policy_on_lambda_role_fails() -> None:
    graph = mutate(
        happy_graph(),
        "api-handler-logs",
        lambda i: i.update(policyArn="arn:aws:iam::aws:policy/AmazonSageMakerFullAccess"),
    )
    [message] = messages(graph, "iam-lambda-role-wildcard-actions")
    assert "gives Lambda role 'api-handler-role' the managed policy AmazonSageMakerFullAccess" in message


def test_wildcards_on_roles_of_other_services_are_out_of_scope() -> None:
    graph = happy_graph()
    graph = relink(graph, "api-handler-invoke", "role", "serving-execution-role")
    graph = mutate(graph, "api-handler-invoke", lambda i: i.update(policy=_document("s3:*")))
    assert messages(graph, "iam-lambda-role-wildcard-actions") == []


def test_metric_math_alarm_without_variant_dimension_watches_nothing() -> None:
    def math(inputs: dict[str, Any]) -> None:
        inputs.pop("dimensions")
        inputs["metricQueries"] = [
            {
                "id": "errors",
                "metric": {
                    "namespace": "AWS/SageMaker",
                    "metricName": "Invocation5XXErrors",
                    "dimensions": {"EndpointName": None},
                },
            }
        ]

    graph = mutate(happy_graph(), "serving-invocation5xxerrors-alarm", math)
    graph = relink(graph, "serving-invocation5xxerrors-alarm", "metricQueries", "serving-endpoint")
    [message] = messages(graph, "cloudwatch-endpoint-alarm-set")
    assert "alarm 'serving-invocation5xxerrors-alarm'" in message
    assert "no VariantName dimension" in message
