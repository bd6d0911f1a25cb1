"""The pack as a whole: enforcement levels, configuration, unknown values, and the CLI entry point."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from policy_checks import failing
from policy_graphs import HAPPY_PACK_CONFIG, happy_graph, mutate, remove
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

from policies import sagemaker
from policies.catalog import ALL_POLICIES, policy_names
from policies.runner import run_pack
from policies.settings import PolicyConfigError

MAIN = Path(__file__).resolve().parents[2] / "policies" / "__main__.py"


def _open_method_graph():
    return mutate(happy_graph(), "api-invocations-post", lambda i: i.update(apiKeyRequired=False))


def test_mandatory_violation_fails_the_pack() -> None:
    report = run_pack(_open_method_graph(), HAPPY_PACK_CONFIG)
    assert not report.passed
    [violation] = report.mandatory_violations
    assert violation.policy == "apigateway-method-api-key"
    assert violation.urn is not None
    assert violation.urn.endswith("::api-invocations-post")


def test_advisory_level_reports_without_failing() -> None:
    config = {**HAPPY_PACK_CONFIG, "apigateway-method-api-key": "advisory"}
    report = run_pack(_open_method_graph(), config)
    assert report.passed
    assert report.result("apigateway-method-api-key").status == "warning"
    assert [v.level for v in report.violations] == [EnforcementLevel.ADVISORY]


def test_enforcement_level_in_an_object_entry_with_settings() -> None:
    config = {"sagemaker-endpoint-instance-quota": {"enforcementLevel": "advisory", "totalInstanceQuota": 2}}
    report = run_pack(happy_graph(), config)
    assert report.passed
    assert report.result("sagemaker-endpoint-instance-quota").status == "warning"


def test_disabled_policy_reports_nothing() -> None:
    config = {**HAPPY_PACK_CONFIG, "apigateway-method-api-key": "disabled"}
    report = run_pack(_open_method_graph(), config)
    assert report.passed
    assert report.result("apigateway-method-api-key").status == "disabled"
    assert report.violations == []


def test_all_key_sets_every_level_and_a_policy_entry_wins() -> None:
    config = {**HAPPY_PACK_CONFIG, "all": "advisory"}
    assert run_pack(_open_method_graph(), config).passed
    config["apigateway-method-api-key"] = "mandatory"
    assert not run_pack(_open_method_graph(), config).passed


def test_unknown_policy_name_in_config_is_refused() -> None:
    with pytest.raises(PolicyConfigError, match="unknown policies sagemaker-endpoint-quota"):
        run_pack(happy_graph(), {"sagemaker-endpoint-quota": {"totalInstanceQuota": 4}})


def test_unknown_setting_is_refused_with_the_known_keys() -> None:
    with pytest.raises(
        PolicyConfigError,
        match=r"unknown key.*totalQuota; known keys: endpointInstanceQuotas, totalInstanceQuota",
    ):
        run_pack(happy_graph(), {"sagemaker-endpoint-instance-quota": {"totalQuota": 4}})


def test_wrongly_typed_setting_is_refused() -> None:
    with pytest.raises(
        PolicyConfigError, match=r"'sagemaker-endpoint-instance-quota.totalInstanceQuota' must be integer"
    ):
        run_pack(happy_graph(), {"sagemaker-endpoint-instance-quota": {"totalInstanceQuota": "lots"}})


def test_bad_enforcement_level_is_refused() -> None:
    with pytest.raises(PolicyConfigError, match="enforcement level 'strict'; use one of advisory, mandatory"):
        run_pack(happy_graph(), {"ecr-repository-scan-on-push": "strict"})


def test_input_fed_by_another_resource_is_unknown_not_missing() -> None:
    # kmsKeyArn comes from the key's ARN, unknown in a preview: it is set, so no violation.
    assert "sagemaker-endpoint-config-kms-key" not in failing(run_pack(happy_graph(), HAPPY_PACK_CONFIG))
    # Without the key the same None input is simply missing.
    graph = remove(happy_graph(), "serving-key")
    assert "sagemaker-endpoint-config-kms-key" in failing(run_pack(graph, HAPPY_PACK_CONFIG))


def test_policy_reads_the_clis_unknown_value_proxies_without_error() -> None:
    props = unknown_checking_proxy(
        {
            "productionVariants": [{"variantName": "AllTraffic", "instanceType": "ml.c5.large"}],
            "kmsKeyArn": UNKNOWN_STRING_VALUE,
        }
    )
    options = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])
    args = ResourceValidationArgs(
        "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
        props,
        "urn:pulumi:prod::xgboost-endpoint::aws:sagemaker/endpointConfiguration:EndpointConfiguration::cfg",
        "cfg",
        options,
        None,
        {},
    )
    reported: list[str] = []
    sagemaker.kms_key.validate(args, lambda message, urn=None: reported.append(message))
    assert reported == []


def test_policies_are_named_service_thing_property_and_unique() -> None:
    names = policy_names()
    assert len(names) == len(set(names)) == 25
    for name in names:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+){2,}", name), name
    services = {name.split("-", 1)[0] for name in names}
    assert services == {
        "sagemaker",
        "ec2",
        "appautoscaling",
        "cloudwatch",
        "apigateway",
        "ecr",
        "iam",
        "s3",
        "sns",
    }


@pytest.mark.parametrize("policy", ALL_POLICIES, ids=lambda p: p.name)
def test_every_policy_is_mandatory_by_default_with_a_one_sentence_fix(
    policy: ResourceValidationPolicy | StackValidationPolicy,
) -> None:
    assert policy.enforcement_level is EnforcementLevel.MANDATORY
    assert policy.description.endswith(".")
    assert ". " not in policy.description.rstrip(".")  # one sentence
    assert ":" in policy.description  # "what must hold: how to fix"
    assert policy.config_schema is not None


def test_cli_entry_point_compiles_and_serves_every_policy() -> None:
    tree = ast.parse(MAIN.read_text(), filename=str(MAIN))
    compile(tree, str(MAIN), "exec")
    calls = [
        n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "PolicyPack"
    ]
    assert len(calls) == 1
    keywords = {k.arg: k.value for k in calls[0].keywords}
    assert "ALL_POLICIES" in ast.unparse(keywords["policies"])
    imports = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == "policies.catalog"]
    assert imports
    assert {a.name for a in imports[0].names} >= {"ALL_POLICIES"}
    # The repository root goes on sys.path before the pack's own imports (the CLI runs in policies/).
    source = MAIN.read_text()
    assert source.index("sys.path.insert(0") < source.index("from policies.catalog import")


def test_pack_requirements_pin_pulumi_and_pulumi_policy_like_the_project() -> None:
    root = MAIN.parents[1]
    pins = dict(
        line.split("==")
        for line in (root / "policies" / "requirements.txt").read_text().splitlines()
        if "==" in line
    )
    project = dict(
        line.split("==") for line in (root / "requirements.txt").read_text().splitlines() if "==" in line
    )
    assert pins == {"pulumi": project["pulumi"], "pulumi-policy": project["pulumi-policy"]}
