"""Wildcard resources in IAM documents, open ingress, VPC endpoint policies, S3 public access and
customer KMS keys on buckets, topics and log groups: pass on the happy graph, fail on one change."""

from __future__ import annotations

import json
from typing import Any

import pytest
from policy_checks import messages
from policy_graphs import BUCKET_ARN, KEY_ARN, GraphBuilder, happy_graph, mutate, relink, remove

from lib.graph import RecordedResource, ResourceGraph

WILDCARD_RESOURCE = "iam-policy-data-action-wildcard-resource"
OPEN_INGRESS = "ec2-security-group-open-ingress"
ENDPOINT_POLICY = "ec2-vpc-endpoint-policy"
PUBLIC_ACCESS = "s3-bucket-public-access-block"
BUCKET_KMS = "s3-bucket-kms-key"
TOPIC_KMS = "sns-topic-kms-key"
LOG_GROUP_KMS = "cloudwatch-log-group-kms-key"
NEW_POLICIES = (
    WILDCARD_RESOURCE,
    OPEN_INGRESS,
    ENDPOINT_POLICY,
    PUBLIC_ACCESS,
    BUCKET_KMS,
    TOPIC_KMS,
    LOG_GROUP_KMS,
)


def _add(graph: ResourceGraph, resource: RecordedResource) -> ResourceGraph:
    return type(graph)(
        project=graph.project, stack=graph.stack, resources=(*graph.resources, resource), config=graph.config
    )


def _new(
    graph: ResourceGraph, type_token: str, name: str, inputs: dict[str, Any], **deps: str
) -> ResourceGraph:
    """``graph`` plus one resource whose inputs ``deps`` come from the named resources."""
    builder = GraphBuilder(graph.stack)
    links = {key: [graph.named(source)] for key, source in deps.items()}
    return _add(graph, builder.add(type_token, name, inputs, deps=links))


def _document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _with_invoke_policy(statement: dict[str, Any]) -> ResourceGraph:
    return mutate(happy_graph(), "api-handler-invoke", lambda i: i.update(policy=_document(statement)))


@pytest.mark.parametrize("name", NEW_POLICIES)
def test_the_happy_graph_passes(name: str) -> None:
    assert messages(happy_graph(), name) == []


# iam-policy-data-action-wildcard-resource


def test_lambda_allowed_to_invoke_every_endpoint_fails() -> None:
    graph = _with_invoke_policy({"Effect": "Allow", "Action": "sagemaker:InvokeEndpoint", "Resource": "*"})
    [message] = messages(graph, WILDCARD_RESOURCE)
    assert message.startswith(
        "statement #0 of policy 'api-handler-invoke' allows sagemaker:InvokeEndpoint on *, which names no "
        "single resource: list the exact ARNs (the endpoint's ARN for sagemaker:InvokeEndpoint"
    )


def test_execution_role_with_s3_star_on_star_fails() -> None:
    graph = happy_graph()
    graph = relink(graph, "api-handler-invoke", "role", "serving-execution-role")
    graph = mutate(
        graph,
        "api-handler-invoke",
        lambda i: i.update(
            policy=_document({"Sid": "Data", "Effect": "Allow", "Action": "s3:*", "Resource": "*"})
        ),
    )
    [message] = messages(graph, WILDCARD_RESOURCE)
    assert "statement 'Data' of policy 'api-handler-invoke' allows s3:* on *" in message


@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("s3:Get*", "arn:aws:s3:::*/*"),
        ("s3:PutObject", "arn:aws:s3:::artifact-*/*"),
        ("kms:Decrypt", "arn:aws:kms:eu-west-1:123456789012:key/*"),
        ("kms:*", "*"),
        ("*", "*"),
        ("sagemaker:*", "arn:aws:sagemaker:eu-west-1:123456789012:endpoint/*"),
        ("SageMaker:invoke*", "arn:aws:sagemaker:*:123456789012:endpoint/serving"),
        (["logs:PutLogEvents", "kms:GenerateDataKey"], ["arn:aws:logs:eu-west-1:1:log-group:x:*", "*"]),
    ],
)
def test_data_actions_on_wildcard_resources_fail(action: Any, resource: Any) -> None:
    graph = _with_invoke_policy({"Effect": "Allow", "Action": action, "Resource": resource})
    [message] = messages(graph, WILDCARD_RESOURCE)
    assert "which names no single resource" in message


def test_not_action_and_not_resource_count_as_wildcards() -> None:
    not_action = _with_invoke_policy({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})
    [message] = messages(not_action, WILDCARD_RESOURCE)
    assert "allows NotAction ['iam:*'] on *" in message
    not_resource = _with_invoke_policy(
        {"Effect": "Allow", "Action": "kms:Decrypt", "NotResource": "arn:aws:kms:eu-west-1:1:key/other"}
    )
    [message] = messages(not_resource, WILDCARD_RESOURCE)
    assert "allows kms:Decrypt on NotResource ['arn:aws:kms:eu-west-1:1:key/other']" in message


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{BUCKET_ARN}/models/*"},
        {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": KEY_ARN},
        {
            "Effect": "Allow",
            "Action": ["xray:PutTraceSegments", "ecr:GetAuthorizationToken"],
            "Resource": "*",
        },
        {"Effect": "Allow", "Action": "s3:GetBucketLocation", "Resource": "*"},
        {"Effect": "Deny", "Action": "s3:*", "Resource": "*"},
        {"Effect": "Allow", "NotAction": ["s3:*", "kms:*", "sagemaker:*"], "Resource": "*"},
    ],
    ids=[
        "object-prefix",
        "named-key",
        "no-resource-level-actions",
        "not-a-data-action",
        "deny",
        "not-action-of-all",
    ],
)
def test_named_resources_and_non_data_actions_pass(statement: dict[str, Any]) -> None:
    assert messages(_with_invoke_policy(statement), WILDCARD_RESOURCE) == []


def test_a_managed_policy_and_a_role_inline_policy_are_checked_too() -> None:
    document = _document({"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["*"]})
    graph = _new(happy_graph(), "aws:iam/policy:Policy", "broad-read", {"policy": document})
    graph = mutate(
        graph,
        "serving-execution-role",
        lambda i: i.update(
            inlinePolicies=[
                {
                    "name": "x",
                    "policy": {"Statement": {"Effect": "Allow", "Action": "kms:*", "Resource": "*"}},
                }
            ]
        ),
    )
    found = messages(graph, WILDCARD_RESOURCE)
    assert len(found) == 2
    assert "of inline policy #0 of role 'serving-execution-role' allows kms:* on *" in found[0]
    assert "of managed policy 'broad-read' allows s3:GetObject on *" in found[1]


def test_a_document_only_known_during_the_update_is_not_judged() -> None:
    graph = mutate(happy_graph(), "api-handler-invoke", lambda i: i.update(policy=None))
    graph = relink(graph, "api-handler-invoke", "policy", "serving-endpoint")
    assert messages(graph, WILDCARD_RESOURCE) == []


# ec2-security-group-open-ingress


def test_security_group_open_to_the_world_fails() -> None:
    graph = mutate(happy_graph(), "net-vpce-sg", lambda i: i["ingress"][0].update(cidrBlocks=["0.0.0.0/0"]))
    [message] = messages(graph, OPEN_INGRESS)
    assert message == (
        "ingress rule #0 (tcp 443) of 'net-vpce-sg' admits 0.0.0.0/0, the whole internet: allow only the "
        "VPC's CIDR block, a prefix list or a source security group"
    )


@pytest.mark.parametrize(
    ("type_token", "inputs", "shown"),
    [
        (
            "aws:ec2/securityGroupRule:SecurityGroupRule",
            {
                "type": "ingress",
                "protocol": "tcp",
                "fromPort": 22.0,
                "toPort": 22.0,
                "ipv6CidrBlocks": ["::/0"],
            },
            "rule (tcp 22) of 'extra-rule' admits ::/0",
        ),
        (
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
            {"ipProtocol": "-1", "cidrIpv4": "0.0.0.0/0"},
            "rule (all ports) of 'extra-rule' admits 0.0.0.0/0",
        ),
        (
            "aws:ec2/securityGroup:SecurityGroup",
            {
                "ingress": [
                    {
                        "protocol": "tcp",
                        "fromPort": 0.0,
                        "toPort": 65535.0,
                        "cidrBlocks": ["0.0.0.0/1", "128.0.0.0/1"],
                    }
                ]
            },
            "ingress rule #0 (tcp 0-65535) of 'extra-rule' admits 0.0.0.0/1, 128.0.0.0/1",
        ),
        (
            "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
            {
                "ingress": [
                    {"protocol": "-1", "fromPort": 0.0, "toPort": 0.0, "ipv6CidrBlocks": ["::ffff:0:0/96"]}
                ]
            },
            "ingress rule #0 (all ports) of 'extra-rule' admits ::ffff:0:0/96",
        ),
    ],
    ids=["rule-resource-ipv6", "vpc-ingress-rule", "two-halves", "ipv4-mapped"],
)
def test_every_way_of_opening_ingress_to_the_world_fails(
    type_token: str, inputs: dict[str, Any], shown: str
) -> None:
    graph = _new(happy_graph(), type_token, "extra-rule", inputs)
    [message] = messages(graph, OPEN_INGRESS)
    assert message.startswith(shown)


def test_open_egress_and_private_ingress_pass() -> None:
    egress = _new(
        happy_graph(),
        "aws:ec2/securityGroupRule:SecurityGroupRule",
        "egress-rule",
        {
            "type": "egress",
            "protocol": "tcp",
            "fromPort": 443.0,
            "toPort": 443.0,
            "cidrBlocks": ["0.0.0.0/0"],
        },
    )
    assert messages(egress, OPEN_INGRESS) == []
    office = _new(
        happy_graph(),
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        "office",
        {"ipProtocol": "tcp", "fromPort": 443.0, "toPort": 443.0, "cidrIpv4": "10.0.0.0/8"},
    )
    assert messages(office, OPEN_INGRESS) == []


# ec2-vpc-endpoint-policy


def test_gateway_endpoint_without_a_policy_fails() -> None:
    graph = mutate(happy_graph(), "net-s3", lambda i: i.pop("policy"))
    [message] = messages(graph, ENDPOINT_POLICY)
    assert message.startswith(
        "VPC endpoint 'net-s3' (com.amazonaws.eu-west-1.s3) has no endpoint policy, so AWS applies the "
        "default one, which lets any principal do anything to any resource through it: set policy"
    )


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"},
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sagemaker:*", "Resource": "*"},
        {"Effect": "Allow", "Principal": "*", "NotAction": "iam:*", "NotResource": "arn:aws:s3:::x"},
    ],
    ids=["default-policy", "service-star", "not-action"],
)
def test_interface_endpoint_with_a_full_access_policy_fails(statement: dict[str, Any]) -> None:
    graph = mutate(happy_graph(), "net-sagemaker-runtime", lambda i: i.update(policy=_document(statement)))
    [message] = messages(graph, ENDPOINT_POLICY)
    assert (
        "VPC endpoint 'net-sagemaker-runtime' (com.amazonaws.eu-west-1.sagemaker.runtime) has a policy whose"
        in message
    )
    assert "lets any principal do anything to any resource, like the default policy" in message


def test_a_separate_endpoint_policy_resource_counts() -> None:
    graph = mutate(happy_graph(), "net-s3", lambda i: i.pop("policy"))
    document = _document(
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"{BUCKET_ARN}/*"}
    )
    attached = _new(
        graph,
        "aws:ec2/vpcEndpointPolicy:VpcEndpointPolicy",
        "net-s3-policy",
        {"vpcEndpointId": None, "policy": document},
        vpcEndpointId="net-s3",
    )
    assert messages(attached, ENDPOINT_POLICY) == []
    wide = mutate(
        attached,
        "net-s3-policy",
        lambda i: i.update(
            policy=_document({"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"})
        ),
    )
    [message] = messages(wide, ENDPOINT_POLICY)
    assert "VPC endpoint 'net-s3'" in message


def test_gateway_load_balancer_endpoints_take_no_policy() -> None:
    graph = mutate(
        happy_graph(), "net-s3", lambda i: (i.pop("policy"), i.update(vpcEndpointType="GatewayLoadBalancer"))
    )
    assert messages(graph, ENDPOINT_POLICY) == []


# s3-bucket-public-access-block


def test_bucket_without_a_public_access_block_fails() -> None:
    [message] = messages(remove(happy_graph(), "artifact-public-access"), PUBLIC_ACCESS)
    assert message == (
        "bucket 'artifact-bucket' has no public access block: add an aws.s3.BucketPublicAccessBlock for it "
        "with blockPublicAcls, blockPublicPolicy, ignorePublicAcls, restrictPublicBuckets all True"
    )


def test_public_access_block_with_a_flag_off_fails() -> None:
    graph = mutate(
        happy_graph(),
        "artifact-public-access",
        lambda i: (i.update(blockPublicPolicy=False), i.pop("ignorePublicAcls")),
    )
    [message] = messages(graph, PUBLIC_ACCESS)
    assert message.startswith(
        "public access block 'artifact-public-access' of bucket 'artifact-bucket' leaves blockPublicPolicy, "
        "ignorePublicAcls off"
    )
    assert "set all four flags to True" in message


def test_a_block_for_another_bucket_does_not_count_but_an_account_wide_one_does() -> None:
    graph = _new(happy_graph(), "aws:s3/bucket:Bucket", "second-bucket", {})
    [message] = messages(graph, PUBLIC_ACCESS)
    assert message.startswith("bucket 'second-bucket' has no public access block")
    account = _new(
        graph,
        "aws:s3/accountPublicAccessBlock:AccountPublicAccessBlock",
        "account-block",
        dict.fromkeys(
            ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"), True
        ),
    )
    assert messages(account, PUBLIC_ACCESS) == []


# s3-bucket-kms-key


def test_bucket_without_an_encryption_configuration_fails() -> None:
    [message] = messages(remove(happy_graph(), "artifact-encryption"), BUCKET_KMS)
    assert message.startswith(
        "bucket 'artifact-bucket' has no server-side encryption configuration, so S3 encrypts it with its "
        "own SSE-S3 keys: add an aws.s3.BucketServerSideEncryptionConfiguration"
    )


@pytest.mark.parametrize(
    ("default", "problem"),
    [
        ({"sseAlgorithm": "AES256"}, "encrypts with AES256, not aws:kms"),
        ({"sseAlgorithm": "aws:kms"}, "uses aws:kms without a key id, i.e. the AWS-managed key alias/aws/s3"),
        (
            {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": "alias/aws/s3"},
            "uses the AWS-managed key alias/aws/s3",
        ),
    ],
)
def test_bucket_without_a_customer_key_fails(default: dict[str, Any], problem: str) -> None:
    graph = mutate(
        happy_graph(),
        "artifact-encryption",
        lambda i: i["rules"][0].update(applyServerSideEncryptionByDefault=default),
    )
    [message] = messages(graph, BUCKET_KMS)
    assert message == (
        f"bucket 'artifact-bucket' {problem}: set sseAlgorithm 'aws:kms' and the stack's KMS key as "
        "kmsMasterKeyId, so its key policy decides who reads the objects"
    )


def test_inline_bucket_encryption_with_a_customer_key_passes() -> None:
    graph = remove(happy_graph(), "artifact-encryption")
    rule = {
        "rule": {
            "applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms:dsse", "kmsMasterKeyId": KEY_ARN}
        }
    }
    graph = mutate(graph, "artifact-bucket", lambda i: i.update(serverSideEncryptionConfiguration=rule))
    assert messages(graph, BUCKET_KMS) == []


# sns-topic-kms-key


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        (
            "alias/aws/sns",
            "is encrypted with the AWS-managed key alias/aws/sns, whose policy no one can narrow",
        ),
        (
            "arn:aws:kms:eu-west-1:123456789012:alias/aws/sns",
            "is encrypted with the AWS-managed key arn:aws:kms:eu-west-1:123456789012:alias/aws/sns",
        ),
    ],
)
def test_topic_with_the_aws_managed_key_fails(key: str, problem: str) -> None:
    graph = mutate(happy_graph(), "alarm-topic", lambda i: i.update(kmsMasterKeyId=key))
    [message] = messages(graph, TOPIC_KMS)
    assert message.startswith(f"SNS topic 'alarm-topic' {problem}")
    assert "cloudwatch.amazonaws.com use kms:Decrypt and kms:GenerateDataKey*" in message


def test_unencrypted_topic_fails() -> None:
    graph = relink(
        mutate(happy_graph(), "alarm-topic", lambda i: i.pop("kmsMasterKeyId")),
        "alarm-topic",
        "kmsMasterKeyId",
    )
    [message] = messages(graph, TOPIC_KMS)
    assert message.startswith(
        "SNS topic 'alarm-topic' is not encrypted: set kmsMasterKeyId to the stack's KMS key"
    )


# cloudwatch-log-group-kms-key


def test_log_group_without_a_key_fails() -> None:
    graph = relink(
        mutate(happy_graph(), "api-handler-logs-group", lambda i: i.pop("kmsKeyId")),
        "api-handler-logs-group",
        "kmsKeyId",
    )
    [message] = messages(graph, LOG_GROUP_KMS)
    assert message == (
        "log group 'api-handler-logs-group' has no kmsKeyId, so CloudWatch Logs keeps its own key: set "
        "kmsKeyId to the stack's KMS key ARN, whose policy lets logs.<region>.amazonaws.com use it for this "
        "stack's log groups only"
    )


def test_log_group_with_a_named_customer_key_passes() -> None:
    graph = mutate(happy_graph(), "api-handler-logs-group", lambda i: i.update(kmsKeyId=KEY_ARN))
    assert messages(graph, LOG_GROUP_KMS) == []
