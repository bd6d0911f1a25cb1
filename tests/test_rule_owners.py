"""Each guardrail is refused by one layer, the one ``stackcore.rules.OWNER`` names: a stack the
policy pack refuses is never a configuration error (the plan exits 1 with the pack's message), and
a stack the configuration refuses never reaches the pack (exit 2). Both carry the same finding."""

from __future__ import annotations

import inspect
import io
from pathlib import Path

import pytest

from stackcore import StackConfigError, load_stack, rules
from stackcore.rules import Owner
from tools import plan

REPO = Path(__file__).resolve().parent.parent


def test_every_guardrail_has_one_owner() -> None:
    guardrails = {
        name
        for name, function in inspect.getmembers(rules, inspect.isfunction)
        if function.__module__ == rules.__name__
        and "Finding" in str(inspect.signature(function).return_annotation)
    }
    assert guardrails | {"quota_shortfalls"} == set(rules.OWNER)


# Owned by the pack: the configuration accepts the stack, the plan's policies refuse it (exit 1).

PACK_OWNED = [
    pytest.param(
        "burstable_in_production",
        {
            "instanceType": "ml.t2.large",
            "autoscaling": "false",
            "endpointInstanceQuotas": '{"ml.t2.large": 6}',
            "totalInstanceQuota": "6",
        },
        "sagemaker-variant-instance-type-burstable",
        "endpoint configuration 'endpoint-config' variant 'AllTraffic': "
        + str(rules.burstable_in_production("ml.t2.large", production=True)),
        id="burstable-in-production",
    ),
    pytest.param(
        "zone_without_instance",
        {"minInstances": "2", "initialInstanceCount": "2"},
        "sagemaker-variant-instance-count-az",
        "endpoint 'endpoint-endpoint' variant 'AllTraffic' (initial 2, minimum 2): "
        + str(rules.zone_without_instance(2, 3, production=True)),
        id="zone-without-instance",
    ),
    pytest.param(
        "no_auto_rollback",
        {"autoRollback": "false"},
        "sagemaker-endpoint-deployment-rollback",
        "endpoint 'endpoint-endpoint': " + str(rules.no_auto_rollback(False, production=True)),
        id="no-auto-rollback",
    ),
]


@pytest.mark.parametrize(("rule", "overrides", "policy", "message"), PACK_OWNED)
def test_a_rule_the_pack_owns_is_a_policy_violation_not_a_config_error(
    rule: str, overrides: dict[str, str], policy: str, message: str
) -> None:
    assert rules.OWNER[rule] is Owner.PACK
    assert load_stack(REPO, "prod", overrides).stack == "prod"  # no configuration error
    out = io.StringIO()
    args = [item for key, value in overrides.items() for item in ("--set", f"{key}={value}")]
    assert plan.main(["--stack", "prod", *args], out=out) == plan.EXIT_VIOLATION
    text = out.getvalue()
    assert f"[FAILED] {policy} (mandatory)\n      - {message}\n" in text
    assert "FAILED: 1 mandatory violation(s)" in text


# Owned by the configuration: refused before any resource exists, under the key to change.

CONFIG_OWNED = [
    pytest.param(
        "burstable_autoscaled",
        "dev",
        {
            "autoscaling": "true",
            "maxInstances": "2",
            "endpointInstanceQuotas": '{"ml.t2.medium": 4}',
            "totalInstanceQuota": "4",
        },
        "autoscaling",
        str(rules.burstable_autoscaled("ml.t2.medium", autoscaling=True)),
        id="burstable-autoscaled",
    ),
    pytest.param(
        "arm_type_for_amd64_image",
        "prod",
        {"instanceType": "ml.c7g.xlarge", "endpointInstanceQuotas": '{"ml.c7g.xlarge": 12}'},
        "instanceType",
        str(rules.arm_type_for_amd64_image("ml.c7g.xlarge")),
        id="arm-type",
    ),
    pytest.param(
        "too_few_subnets",
        "dev",
        {"azCount": "1"},
        "azCount",
        str(rules.too_few_subnets(1)),
        id="one-subnet",
    ),
    pytest.param(
        "rolling_batch_out_of_range",
        "prod",
        {"updateMode": "rolling", "rollingBatchPercent": "60"},
        "rollingBatchPercent",
        str(rules.rolling_batch_out_of_range(60)),
        id="rolling-batch-60",
    ),
    pytest.param(
        "rolling_batch_of_one_instance",
        "dev",
        {"updateMode": "rolling"},
        "updateMode",
        str(rules.rolling_batch_of_one_instance(1)),
        id="rolling-one-instance",
    ),
    pytest.param(
        "subnet_too_small",
        "prod",
        {"subnetPrefixLength": "28"},
        "subnetPrefixLength",
        "a /28 has 16 addresses but each subnet needs 20",
        id="subnet-too-small",
    ),
    pytest.param(
        "concurrency_target_beyond_capacity",
        "prod",
        {"concurrencyPerInstanceTarget": "11"},
        "concurrencyPerInstanceTarget",
        str(rules.concurrency_target_beyond_capacity(11, 10)),
        id="concurrency-target-beyond-capacity",
    ),
    pytest.param(
        "quota_shortfalls",
        "prod",
        {"maxInstances": "8"},
        "endpointInstanceQuotas",
        "peak fleet of 16 instance(s) (xgboost-endpoint:instanceType=ml.c5.xlarge) exceeds the SageMaker "
        "quota 'ml.c5.xlarge for endpoint usage' of 12",
        id="quota",
    ),
]


@pytest.mark.usefixtures("demo_model_dir")  # dev packs the demo model
@pytest.mark.parametrize(("rule", "stack", "overrides", "key", "message"), CONFIG_OWNED)
def test_a_rule_the_configuration_owns_is_a_config_error(
    rule: str, stack: str, overrides: dict[str, str], key: str, message: str
) -> None:
    assert rules.OWNER[rule] is Owner.CONFIG
    with pytest.raises(StackConfigError) as caught:
        load_stack(REPO, stack, overrides)
    assert any(p.key == key and message in str(p) for p in caught.value.problems), caught.value
