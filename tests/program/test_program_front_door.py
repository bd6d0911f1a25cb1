"""The API front door: POST /predict behind an API key, throttled, logged, calling one endpoint."""

from __future__ import annotations

import json

import pytest
from program_helpers import one, policy_statements

from components.front_door import FrontDoorArgs
from lib.evaluate import REPO_ROOT


def test_the_function_packages_exactly_the_handler(prod):
    function = one(prod, "aws:lambda/function:Function").inputs
    archive = function["code"]
    assert list(archive.assets) == ["handler.py"]
    assert archive.assets["handler.py"].path == str(REPO_ROOT / "lambda" / "handler.py")
    assert function["handler"] == "handler.handler"
    assert function["runtime"].startswith("python3.")


def test_the_function_calls_this_endpoint_in_time_and_traced(prod):
    function = one(prod, "aws:lambda/function:Function").inputs
    # The handler waits for the endpoint the function's 25 s less 3 s for connecting and answering.
    assert function["environment"] == {
        "variables": {
            "SAGEMAKER_ENDPOINT_NAME": "xgboost-endpoint-prod",
            "SAGEMAKER_READ_TIMEOUT_SECONDS": "22",
        }
    }
    assert function["timeout"] < 29
    assert function["tracingConfig"] == {"mode": "Active"}
    logs = prod.named("front-door-function-logs")
    assert function["loggingConfig"]["logGroup"] == logs.outputs["name"]
    assert logs.inputs["retentionInDays"] == 90


def test_the_function_may_invoke_only_this_endpoint_and_write_its_own_logs(prod):
    statements = {s["Sid"]: s for s in policy_statements(prod.named("front-door-function-policy"))}
    endpoint = one(prod, "aws:sagemaker/endpoint:Endpoint")
    assert statements["InvokeThisEndpoint"]["Action"] == "sagemaker:InvokeEndpoint"
    assert statements["InvokeThisEndpoint"]["Resource"] == endpoint.outputs["arn"]
    logs = prod.named("front-door-function-logs").outputs["arn"]
    assert statements["WriteOwnLogs"]["Resource"] == f"{logs}:*"
    assert set(statements) == {"InvokeThisEndpoint", "WriteOwnLogs", "SendTraces"}
    (trust,) = policy_statements(prod.named("front-door-function-role"), "assumeRolePolicy")
    assert trust["Principal"] == {"Service": "lambda.amazonaws.com"}


def test_post_predict_requires_an_api_key_and_proxies_to_the_function(prod):
    api = one(prod, "aws:apigateway/restApi:RestApi")
    assert api.inputs["endpointConfiguration"]["types"] == "REGIONAL"
    assert "application/x-recordio-protobuf" in api.inputs["binaryMediaTypes"]
    resource = one(prod, "aws:apigateway/resource:Resource")
    assert resource.inputs["pathPart"] == "predict"
    method = one(prod, "aws:apigateway/method:Method").inputs
    assert (method["httpMethod"], method["apiKeyRequired"]) == ("POST", True)
    integration = one(prod, "aws:apigateway/integration:Integration").inputs
    assert integration["type"] == "AWS_PROXY"
    assert integration["uri"] == prod.named("front-door-function").outputs["invokeArn"]
    assert integration["timeoutMilliseconds"] == 29000


def test_the_stage_logs_access_and_throttles(prod):
    stage = one(prod, "aws:apigateway/stage:Stage").inputs
    assert stage["xrayTracingEnabled"] is True
    assert stage["accessLogSettings"]["destinationArn"] == prod.named("front-door-access-logs").outputs["arn"]
    assert json.loads(stage["accessLogSettings"]["format"])["status"] == "$context.status"
    settings = one(prod, "aws:apigateway/methodSettings:MethodSettings").inputs
    assert settings["methodPath"] == "*/*"
    assert settings["settings"]["throttlingRateLimit"] == 500
    assert settings["settings"]["throttlingBurstLimit"] == 1000
    assert settings["settings"]["dataTraceEnabled"] is False


def test_the_usage_plan_limits_the_key(prod):
    plan = one(prod, "aws:apigateway/usagePlan:UsagePlan")
    assert plan.inputs["quotaSettings"] == {"limit": 5_000_000, "period": "DAY"}
    assert plan.inputs["throttleSettings"] == {"rateLimit": 500, "burstLimit": 1000}
    (stage,) = plan.inputs["apiStages"]
    assert stage == {"apiId": prod.named("front-door-api").outputs["id"], "stage": "v1"}
    link = one(prod, "aws:apigateway/usagePlanKey:UsagePlanKey").inputs
    assert link["keyId"] == prod.named("front-door-api-key").outputs["id"]
    assert link["usagePlanId"] == plan.outputs["id"]


def test_api_gateway_may_invoke_the_function_only_for_this_route(prod):
    permission = one(prod, "aws:lambda/permission:Permission").inputs
    api = prod.named("front-door-api").outputs
    assert permission["principal"] == "apigateway.amazonaws.com"
    assert permission["sourceArn"] == f"{api['executionArn']}/*/POST/predict"
    assert permission["function"] == prod.named("front-door-function").outputs["name"]


def test_a_redeployment_follows_any_change_to_the_route(prod):
    deployment = one(prod, "aws:apigateway/deployment:Deployment")
    triggered_by = set(deployment.property_dependencies["triggers"])
    for role in ("front-door-predict", "front-door-predict-post", "front-door-predict-integration"):
        assert prod.named(role).urn in triggered_by


def test_front_door_args_refuse_a_timeout_api_gateway_would_cut(tmp_path):
    with pytest.raises(ValueError, match="before API Gateway's 29 s timeout"):
        FrontDoorArgs(
            lambda_dir=tmp_path,
            endpoint_name="e",
            endpoint_arn="a",
            timeout_seconds=29,
            log_group_prefix="/p/s/",
            kms_key_arn="k",
            rate_limit=1,
            burst_limit=1,
            quota_per_day=1,
        )
