"""evaluate_stack: the configuration the CLI would give, realistic mocks, many runs per process."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from program_helpers import one

from config import ConfigError
from lib.evaluate import Secret, evaluate_stack, load_stack_config
from stackcore import StackConfigError

PROGRAM = """
import pulumi
import pulumi_aws as aws

cfg = pulumi.Config()
bucket = aws.s3.Bucket("data", tags={"Name": cfg.require("label")})
pulumi.export("label", cfg.require("label"))
pulumi.export("size", cfg.require_int("size"))
pulumi.export("token", pulumi.Output.secret("s3cr3t"))
pulumi.export("bucket", bucket.bucket)
"""


@pytest.fixture
def tiny_project(tmp_path: Path) -> Path:
    (tmp_path / "Pulumi.yaml").write_text(
        "name: tiny\nruntime: python\nconfig:\n"
        "  label:\n    type: string\n    default: from-defaults\n"
        "  size:\n    type: integer\n    default: 1\n"
    )
    (tmp_path / "Pulumi.test.yaml").write_text("config:\n  aws:region: eu-central-1\n  tiny:size: 2\n")
    (tmp_path / "__main__.py").write_text(PROGRAM)
    return tmp_path


def test_defaults_then_stack_file_then_overrides(tiny_project):
    _, values = load_stack_config("test", tiny_project, {"label": "overridden"})
    assert values == {"tiny:label": "overridden", "tiny:size": 2, "aws:region": "eu-central-1"}
    graph = evaluate_stack("test", project_dir=tiny_project, config_overrides={"tiny:size": 3})
    assert graph.exports["label"] == "from-defaults"
    assert graph.exports["size"] == 3
    assert graph.config["tiny:size"] == 3


def test_secret_exports_are_marked_and_autonames_look_like_pulumis(tiny_project):
    graph = evaluate_stack("test", project_dir=tiny_project)
    assert graph.exports["token"] == Secret("s3cr3t")
    assert "s3cr3t" not in repr(graph.exports["token"])
    assert re.fullmatch(r"data-[0-9a-f]{7}", graph.exports["bucket"])
    bucket = graph.named("data")
    assert bucket.outputs["arn"] == f"arn:aws:s3:::{graph.exports['bucket']}"
    assert bucket.parent == graph.resources[0].urn


def test_a_missing_stack_file_is_named(tiny_project):
    with pytest.raises(StackConfigError, match=r"no stack file Pulumi\.staging\.yaml"):
        evaluate_stack("staging", project_dir=tiny_project)


def test_a_configuration_error_leaves_the_runtime_usable(prod):
    with pytest.raises(ConfigError):
        evaluate_stack("prod", config_overrides={"maxInstances": 0})
    again = evaluate_stack("prod")
    assert len(again.resources) == len(prod.resources)


def test_mocked_arns_follow_awss_formats(prod):
    account, region = "123456789012", "eu-west-1"
    assert re.fullmatch(
        rf"arn:aws:iam::{account}:role/endpoint-role-[0-9a-f]{{7}}",
        prod.named("endpoint-role").outputs["arn"],
    )
    assert one(prod, "aws:sagemaker/endpoint:Endpoint").outputs["arn"] == (
        f"arn:aws:sagemaker:{region}:{account}:endpoint/xgboost-endpoint-prod"
    )
    function_arn = prod.named("front-door-function").outputs["arn"]
    assert prod.named("front-door-function").outputs["invokeArn"] == (
        f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{function_arn}/invocations"
    )
    assert re.fullmatch(r"vpc-[0-9a-f]{17}", prod.named("network-vpc").outputs["id"])
