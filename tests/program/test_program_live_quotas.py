"""The optional live quota check reads Service Quotas (tested with botocore's Stubber)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

import config
from lib.evaluate import evaluate_stack
from stackcore.fleet import QuotaTable, UpdateMode, VariantFleet

ACCOUNT_QUOTAS = [
    {"QuotaName": "ml.c5.xlarge for endpoint usage", "QuotaCode": "L-1", "Value": 8.0},
    {"QuotaName": "ml.t2.medium for endpoint usage", "QuotaCode": "L-2", "Value": 2.0},
    {"QuotaName": "ml.c5.xlarge for training job usage", "QuotaCode": "L-3", "Value": 50.0},
]
TOTAL = {"QuotaName": "Number of instances across active endpoints", "QuotaCode": "L-4", "Value": 20.0}


def stubbed_client(pages: list[list[dict[str, Any]]]) -> Any:
    client = boto3.client(
        "service-quotas", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    stubber = Stubber(client)
    for index, quotas in enumerate(pages):
        expected = {"ServiceCode": "sagemaker"}
        if index:
            expected["NextToken"] = f"page-{index}"
        response: dict[str, Any] = {"Quotas": quotas}
        if index < len(pages) - 1:
            response["NextToken"] = f"page-{index + 1}"
        stubber.add_response("list_service_quotas", response, expected)
    stubber.activate()
    return client


DECLARED = QuotaTable(per_instance_type={"ml.c5.xlarge": 12}, total_instances=14)


def prod_fleet(mode: UpdateMode = UpdateMode.BLUE_GREEN) -> VariantFleet:
    return VariantFleet(resource_name="prod", instance_type="ml.c5.xlarge", max_instances=6, update_mode=mode)


def test_live_quotas_are_read_across_pages_and_only_endpoint_ones_count():
    live = config.read_live_quotas(stubbed_client([ACCOUNT_QUOTAS, [TOTAL]]))
    assert live.per_instance_type == {"ml.c5.xlarge": 8, "ml.t2.medium": 2}
    assert live.total_instances == 20


def test_a_declared_quota_the_account_does_not_have_is_refused():
    problems = config.live_quota_problems(prod_fleet(), DECLARED, stubbed_client([[*ACCOUNT_QUOTAS, TOTAL]]))
    assert [p.key for p in problems] == ["endpointInstanceQuotas"]
    message = str(problems[0])
    assert "the account's live quota: peak fleet of 12 instance(s)" in message
    assert "'ml.c5.xlarge for endpoint usage' of 8: request an increase of 4 (to 12)" in message
    assert "(the stack declares 12)" in message


def test_a_fleet_within_the_live_quotas_passes():
    rolling = prod_fleet(UpdateMode.ROLLING)  # 6 + 2 = 8 at the peak
    assert config.live_quota_problems(rolling, DECLARED, stubbed_client([[*ACCOUNT_QUOTAS, TOTAL]])) == []


def test_unreadable_quotas_say_which_permission_is_missing():
    client = boto3.client(
        "service-quotas", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    stubber = Stubber(client)
    stubber.add_client_error(
        "list_service_quotas",
        service_error_code="AccessDeniedException",
        service_message="not authorized",
        http_status_code=403,
    )
    stubber.activate()
    (problem,) = config.live_quota_problems(prod_fleet(), DECLARED, client)
    assert problem.key == "checkLiveQuotas"
    assert "AccessDeniedException" in problem.problem
    assert "servicequotas:ListServiceQuotas" in problem.fix


@pytest.fixture
def quota_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Regions the program asked for a Service Quotas client in (answered by the stub)."""
    calls: list[str] = []

    def fake_client(region: str) -> Any:
        calls.append(region)
        return stubbed_client([[*ACCOUNT_QUOTAS, TOTAL]])

    monkeypatch.setattr(config, "_service_quotas_client", fake_client)
    return calls


def test_with_the_check_on_a_preview_fails_on_the_live_quota(quota_calls):
    with pytest.raises(config.ConfigError, match="the account's live quota") as caught:
        evaluate_stack("prod", config_overrides={"checkLiveQuotas": True})
    assert caught.value.keys == ("endpointInstanceQuotas",)
    assert quota_calls == ["eu-west-1"]


def test_the_check_is_off_by_default(quota_calls, prod):
    assert prod.config["xgboost-endpoint:checkLiveQuotas"] is False
    evaluate_stack("prod")
    assert quota_calls == []
