"""The pure rules behind the security policies: IAM action matching, wildcard resources, CIDR
blocks open to the world, AWS-managed keys."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from policies import iam_documents
from policies.cidrs import open_to_the_world
from policies.kms_keys import is_aws_managed


@pytest.mark.parametrize(
    ("pattern", "action", "expected"),
    [
        ("s3:Get*", "s3:GetObject", True),
        ("S3:getobject", "s3:GetObject", True),
        ("*", "kms:Decrypt", True),
        ("kms:*", "kms:Decrypt", True),
        ("kms:GenerateDataKey*", "kms:GenerateDataKeyWithoutPlaintext", True),
        ("s3:?etObject", "s3:GetObject", True),
        ("s3:GetBucket*", "s3:GetObject", False),
        ("s3:GetObject", "s3:GetObjectVersion", False),
        ("sagemaker:Invoke[a]*", "sagemaker:InvokeEndpoint", False),
    ],
)
def test_action_patterns_match_like_iam(pattern: str, action: str, expected: bool) -> None:
    assert iam_documents.matches(pattern, action) is expected


@pytest.mark.parametrize(
    ("resource", "service", "expected"),
    [
        ("*", "s3", True),
        ("arn:aws:s3:::*", "s3", True),
        ("arn:aws:s3:::models-*/x", "s3", True),
        ("arn:aws:s3:::models/*", "s3", False),
        ("arn:aws:s3:::models/model.tar.gz", "s3", False),
        ("arn:aws:kms:eu-west-1:123456789012:key/*", "kms", True),
        ("arn:aws:kms:*:123456789012:key/abc", "kms", True),
        ("arn:*:kms:eu-west-1:123456789012:key/abc", "kms", True),
        ("arn:aws:sagemaker:eu-west-1:123456789012:endpoint/serving", "sagemaker", False),
        ("arn:aws:sagemaker:eu-west-1:123456789012:endpoint/serving-?", "sagemaker", True),
        ("arn:aws:logs:eu-west-1:123456789012:log-group:x:*", "kms", False),
    ],
)
def test_wildcard_resources(resource: str, service: str, expected: bool) -> None:
    assert iam_documents.is_wildcard_resource(resource, service) is expected


def test_documents_may_be_json_or_objects_with_single_statements_and_strings() -> None:
    as_json = '{"Statement": {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}}'
    as_object = {"Statement": [{"Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": ["*"]}]}
    assert iam_documents.wildcard_grants(as_json) == iam_documents.wildcard_grants(as_object)
    [grant] = iam_documents.wildcard_grants(as_json) or []
    assert (grant.statement, grant.actions, grant.resources) == ("statement #0", ("kms:Decrypt",), ("*",))


def test_unreadable_documents_and_unknown_values_are_not_judged() -> None:
    assert iam_documents.wildcard_grants("{not json") is None
    unknown = object()
    document = {"Statement": [{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": [unknown]}]}
    assert iam_documents.wildcard_grants(document) == []


@pytest.mark.parametrize(
    ("blocks", "open_ones"),
    [
        (["0.0.0.0/0"], ["0.0.0.0/0"]),
        (["::/0"], ["::/0"]),
        (["0::0/0"], ["0::0/0"]),
        (["10.1.2.3/0"], ["10.1.2.3/0"]),
        (["0.0.0.0/1", "128.0.0.0/1"], ["0.0.0.0/1", "128.0.0.0/1"]),
        (["::ffff:0:0/96"], ["::ffff:0:0/96"]),
        (["10.0.0.0/8", "0.0.0.0/1"], []),
        (["10.40.0.0/16", "fd00::/8"], []),
        (["not-a-cidr"], []),
    ],
)
def test_blocks_open_to_the_world(blocks: list[str], open_ones: list[str]) -> None:
    assert open_to_the_world(blocks) == open_ones


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("alias/aws/sns", True),
        ("alias/AWS/s3", True),
        ("arn:aws:kms:eu-west-1:123456789012:alias/aws/logs", True),
        ("arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", False),
        ("alias/xgboost-endpoint", False),
        ("1234abcd-12ab-34cd-56ef-1234567890ab", False),
    ],
)
def test_aws_managed_keys(key: str, expected: bool) -> None:
    assert is_aws_managed(key) is expected


@pytest.mark.parametrize("module", ["iam_documents", "cidrs", "kms_keys"])
def test_the_rule_modules_import_no_pulumi(module: str) -> None:
    source = Path(__file__).resolve().parents[2] / "policies" / f"{module}.py"
    tree = ast.parse(source.read_text())
    imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    imported += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert not [
        name for name in imported if name.split(".")[0].startswith("pulumi") or name.startswith("policies")
    ]
