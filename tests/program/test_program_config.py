"""Bad settings fail the preview with a ConfigError naming the key and the fix, all at once."""

from __future__ import annotations

from typing import Any

import pytest

from config import ConfigError, endpoint_name, sagemaker_instance_types
from lib.evaluate import evaluate_stack


def config_error(stack: str, **overrides: Any) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        evaluate_stack(stack, config_overrides=overrides)
    return caught.value


def problem(error: ConfigError, key: str) -> str:
    matching = [str(p) for p in error.problems if p.key == key]
    assert matching, f"no problem reported for {key}: {error}"
    return matching[0]


def test_unknown_instance_type_is_refused_against_botocores_list():
    error = config_error("prod", instanceType="ml.c5.huge")
    assert error.keys == ("instanceType",)
    assert "'ml.c5.huge' is not a SageMaker hosting instance type" in str(error)
    assert "xgboost-endpoint:instanceType" in str(error)


def test_botocore_lists_the_types_the_stacks_use():
    assert {"ml.t2.medium", "ml.c5.xlarge", "ml.g4dn.xlarge"} <= sagemaker_instance_types()


def test_autoscaling_a_burstable_type_is_refused_in_dev_too():
    error = config_error(
        "dev",
        autoscaling=True,
        maxInstances=2,
        totalInstanceQuota=10,
        endpointInstanceQuotas={"ml.t2.medium": 10},
    )
    assert error.keys == ("autoscaling",)
    assert "Application Auto Scaling refuses burstable variants" in str(error)
    assert "turn autoscaling off (autoscaling: false)" in str(error)


def test_initial_count_outside_min_and_max_is_refused():
    error = config_error("prod", initialInstanceCount=7)
    assert "min 3 <= initial 7 <= max 6 does not hold" in problem(error, "initialInstanceCount")


def test_one_zone_is_refused_even_for_dev():
    error = config_error("dev", azCount=1)
    assert "needs at least two subnets in distinct Availability Zones" in problem(error, "azCount")


def test_subnets_too_small_for_the_blue_green_peak_name_the_prefix_to_use():
    # prod: 2 x 6 = 12 instances over 3 subnets -> 4 each -> 8 addresses + 5 endpoint ENIs = 13,
    # +10% headroom -> 15, + 5 reserved = 20 > 16 in a /28
    error = config_error("prod", subnetPrefixLength=28)
    message = problem(error, "subnetPrefixLength")
    assert "a /28 has 16 addresses but each subnet needs 20" in message
    assert "peak fleet 12 x 2 addresses over 3 subnets, 5 VPC endpoint ENIs, 10% headroom" in message
    assert "use /27 subnets or larger (subnetPrefixLength 27 or less)" in message


def test_rolling_update_needs_fewer_addresses_than_blue_green():
    # Rolling at 20%: 6 + 2 = 8 instances -> 3 per subnet -> 6 + 5 + 5 reserved = 16: a /28 holds it
    # without headroom, where blue/green (18) does not.
    tight = {"subnetPrefixLength": 28, "subnetHeadroomPercent": 0}
    assert config_error("prod", **tight).keys == ("subnetPrefixLength",)
    graph = evaluate_stack("prod", config_overrides={**tight, "updateMode": "rolling"})
    cidrs = sorted(r.inputs["cidrBlock"] for r in graph.of_type("aws:ec2/subnet:Subnet"))
    assert cidrs == ["10.40.0.0/28", "10.40.0.16/28", "10.40.0.32/28"]


def test_quota_shortfall_says_which_quota_to_raise_and_by_how_much():
    error = config_error("prod", maxInstances=8)
    per_type = problem(error, "endpointInstanceQuotas")
    assert "peak fleet of 16 instance(s)" in per_type
    assert "'ml.c5.xlarge for endpoint usage' of 12: request an increase of 4 (to 16)" in per_type
    total = problem(error, "totalInstanceQuota")
    assert "'Number of instances across active endpoints' of 14: request an increase of 2 (to 16)" in total


def test_default_quotas_of_a_new_account_refuse_prods_fleet():
    error = config_error("prod", endpointInstanceQuotas={"ml.t2.medium": 2}, totalInstanceQuota=2)
    assert set(error.keys) == {"endpointInstanceQuotas", "totalInstanceQuota"}
    assert "request an increase of 12 (to 12)" in problem(error, "endpointInstanceQuotas")


def test_every_problem_is_reported_together():
    error = config_error(
        "prod",
        instanceType="ml.t2.medium",
        lambdaTimeoutSeconds=29,
        rollingBatchPercent=60,
        updateMode="rolling",
        alarmEmails=["not-an-address"],
        logRetentionDays=10,
    )
    assert {
        "autoscaling",
        "lambdaTimeoutSeconds",
        "rollingBatchPercent",
        "alarmEmails",
        "logRetentionDays",
    } <= set(error.keys)
    assert str(error).startswith(f"{len(error.problems)} configuration problem(s):")
    assert "API Gateway gives up after 29 s" in problem(error, "lambdaTimeoutSeconds")
    assert "outside SageMaker's 5-50% of the variant" in problem(error, "rollingBatchPercent")


def test_a_wrongly_typed_value_names_the_key_and_the_expected_type():
    error = config_error("prod", maxInstances="six", updateMode="big-bang")
    assert "set xgboost-endpoint:maxInstances to a whole number" in problem(error, "maxInstances")
    assert "'big-bang' is not one of blue-green, rolling" in problem(error, "updateMode")


def test_model_uri_must_be_an_s3_tarball():
    error = config_error("prod", modelUri="https://example.com/model.tar.gz")
    assert "is not an s3://bucket/key.tar.gz URI" in problem(error, "modelUri")


def test_missing_local_model_tells_how_to_make_one(tmp_path):
    error = config_error("dev", modelDir=str(tmp_path / "nothing-here"))
    assert "has no xgboost-model file" in problem(error, "modelDir")
    assert "run `make demo-model`" in problem(error, "modelDir")


def test_a_vpc_too_small_for_its_subnets_is_refused():
    error = config_error("dev", vpcCidr="10.41.0.0/27", subnetPrefixLength=27)
    assert "10.41.0.0/27 holds 1 /27 subnet(s), the stack needs 3" in problem(error, "vpcCidr")


def test_endpoint_name_is_a_valid_sagemaker_name_unique_per_stack():
    assert endpoint_name("xgboost-endpoint", "prod") == "xgboost-endpoint-prod"
    assert endpoint_name("xgboost_endpoint", "team.a/dev") == "xgboost-endpoint-team-a-dev"
    assert len(endpoint_name("p" * 40, "s" * 40)) == 63


@pytest.mark.parametrize(
    ("stack", "overrides", "key", "says"),
    [
        (
            "prod",
            {"availabilityZones": ["eu-west-1a", "west"]},
            "availabilityZones",
            "['west'] are not zone names",
        ),
        (
            "prod",
            {"availabilityZones": ["eu-west-1a", "eu-west-1a", "eu-west-1b"]},
            "availabilityZones",
            "a zone is listed twice",
        ),
        ("dev", {"vpcCidr": "10.41.0.1/16"}, "vpcCidr", "is not an IPv4 block"),
        ("dev", {"vpcCidr": "10.0.0.0/8"}, "vpcCidr", "is not an IPv4 block from /16 to /28"),
        ("dev", {"subnetPrefixLength": 29}, "subnetPrefixLength", "choose a prefix length from 16 to 28"),
        ("dev", {"subnetHeadroomPercent": -1}, "subnetHeadroomPercent", "use 0 or more"),
        ("dev", {"initialInstanceCount": 0}, "initialInstanceCount", "set at least 1"),
        (
            "prod",
            {"minInstances": 0, "initialInstanceCount": 3},
            "minInstances",
            "set minInstances to 1 or more",
        ),
        ("prod", {"invocationsPerInstanceTarget": 0}, "invocationsPerInstanceTarget", "derives it"),
        ("prod", {"scaleInCooldownSeconds": -5}, "scaleInCooldownSeconds", "use 0 or more seconds"),
        ("prod", {"trafficStepPercent": 0}, "trafficStepPercent", "choose 1-50"),
        (
            "prod",
            {"trafficStepPercent": 51},
            "trafficStepPercent",
            "51% is outside the 1-50% SageMaker allows for a CANARY step",
        ),
        (
            "prod",
            {"trafficRouting": "LINEAR", "trafficStepPercent": 5, "trafficWaitSeconds": 60},
            "trafficStepPercent",
            "5% is outside the 10-50% SageMaker allows for a LINEAR step. Fix: choose 10-50",
        ),
        (
            "prod",
            {"trafficRouting": "LINEAR", "trafficStepPercent": 60, "trafficWaitSeconds": 60},
            "trafficStepPercent",
            "choose 10-50",
        ),
        ("prod", {"trafficWaitSeconds": 4000}, "trafficWaitSeconds", "choose 0-3600"),
        ("prod", {"terminationWaitSeconds": -1}, "terminationWaitSeconds", "choose 0-3600"),
        (
            "prod",
            {"updateMode": "rolling", "rollingWaitSeconds": 3601},
            "rollingWaitSeconds",
            "choose 0-3600",
        ),
        ("dev", {"updateMode": "rolling"}, "updateMode", "with 1 instance a batch of one is 100%"),
        ("dev", {"maximumExecutionTimeoutSeconds": 60}, "maximumExecutionTimeoutSeconds", "choose 600-28800"),
        ("prod", {"dataCapturePercent": 101}, "dataCapturePercent", "choose 0 (off) to 100"),
        ("prod", {"cpuAlarmPercent": 0}, "cpuAlarmPercent", "choose 1-100"),
        ("prod", {"memoryAlarmPercent": 101}, "memoryAlarmPercent", "choose 1-100"),
        ("prod", {"modelLatencyP99Ms": 0}, "modelLatencyP99Ms", "use a positive figure"),
        ("prod", {"apiQuotaPerDay": -1}, "apiQuotaPerDay", "use a positive figure"),
        ("prod", {"lambdaMemoryMb": 64}, "lambdaMemoryMb", "choose 128-10240"),
        ("prod", {"logRetentionDays": 10}, "logRetentionDays", "choose one of [1, 3, 5, 7, 14, 30"),
        ("prod", {"environment": "staging"}, "environment", "choose one of dev, prod"),
        ("prod", {"autoscaling": "yes"}, "autoscaling", "set xgboost-endpoint:autoscaling to true or false"),
        ("prod", {"alarmEmails": "ops@example.com"}, "alarmEmails", "a list of e-mail addresses"),
        (
            "prod",
            {"endpointInstanceQuotas": {"ml.c5.xlarge": "twelve"}},
            "endpointInstanceQuotas",
            "the quota for ml.c5.xlarge must be a whole number",
        ),
    ],
)
def test_each_rule_names_its_setting_and_the_fix(stack, overrides, key, says):
    error = config_error(stack, **overrides)
    message = problem(error, key)
    assert says in message
    assert "Fix: " in message


def test_a_lambda_timeout_too_short_for_the_handler_is_refused():
    error = config_error("dev", lambdaTimeoutSeconds=4)
    assert "the handler needs 5 s at least" in problem(error, "lambdaTimeoutSeconds")
    assert "choose 5-28 seconds" in problem(error, "lambdaTimeoutSeconds")


def test_an_arm_instance_type_is_refused_for_the_amd64_image():
    error = config_error("prod", instanceType="ml.c6g.xlarge")
    assert "built for linux/amd64 only" in problem(error, "instanceType")


def test_a_linear_shift_the_provider_would_stop_waiting_for_is_refused():
    # 10 min provisioning + 10 steps x 600 s + 900 s termination = 125 min > the provider's 60
    error = config_error("prod", trafficRouting="LINEAR", trafficStepPercent=10)
    assert error.keys == ("trafficWaitSeconds",)
    message = problem(error, "trafficWaitSeconds")
    assert (
        "an endpoint update can take 125 min (10 min to provision the new fleet + 10 x trafficWaitSeconds "
        "600 s (LINEAR, trafficStepPercent 10%) + terminationWaitSeconds 900 s)" in message
    )
    assert "the provider waits at most 60 min for the endpoint (no timeout setting lengthens it)" in message
    assert "keep the worst case under 55 min" in message


def test_a_deployment_of_exactly_55_minutes_is_accepted_and_one_second_more_is_not():
    # CANARY: 10 min + one 1800 s wait + 900 s termination = 55 min
    graph = evaluate_stack("prod", config_overrides={"trafficWaitSeconds": 1800})
    assert graph.of_type("aws:sagemaker/endpoint:Endpoint")
    error = config_error("prod", trafficWaitSeconds=1801)
    assert "can take 56 min" in problem(error, "trafficWaitSeconds")


def test_a_rolling_update_counts_every_batch():
    # 20% of 6 instances -> batches of 2 -> 3 batches x (10 min + 1200 s) = 90 min
    error = config_error("prod", updateMode="rolling", rollingWaitSeconds=1200)
    message = problem(error, "rollingWaitSeconds")
    assert "can take 90 min (3 batch(es) of 2 of 6 instances (rollingBatchPercent 20%)" in message
    assert "shorten rollingWaitSeconds or raise rollingBatchPercent" in message


def test_any_step_size_is_accepted_when_all_traffic_moves_at_once():
    # ALL_AT_ONCE sends no step size, so trafficStepPercent does not matter.
    at_once = {"trafficRouting": "ALL_AT_ONCE", "trafficStepPercent": 0}
    graph = evaluate_stack("prod", config_overrides=at_once)
    assert graph.of_type("aws:sagemaker/endpoint:Endpoint")


def test_the_execution_timeout_must_exceed_the_deployments_waits():
    # prod: CANARY, one 600 s wait + 900 s termination wait = 1500 s
    error = config_error("prod", maximumExecutionTimeoutSeconds=1500)
    assert error.keys == ("maximumExecutionTimeoutSeconds",)
    message = problem(error, "maximumExecutionTimeoutSeconds")
    assert (
        "1500 s does not exceed the deployment's waits: 1 x trafficWaitSeconds 600 s "
        "+ terminationWaitSeconds 900 s = 1500 s, which SageMaker refuses" in message
    )
    assert "set maximumExecutionTimeoutSeconds above 1500 (and at most 28800)" in message
    assert evaluate_stack("prod", config_overrides={"maximumExecutionTimeoutSeconds": 1501}).resources


def test_linear_waits_count_once_per_step_against_the_execution_timeout():
    # LINEAR 20%: 5 steps x 300 s + 900 s = 2400 s
    error = config_error(
        "prod",
        trafficRouting="LINEAR",
        trafficStepPercent=20,
        trafficWaitSeconds=300,
        maximumExecutionTimeoutSeconds=2400,
    )
    assert "5 x trafficWaitSeconds 300 s" in problem(error, "maximumExecutionTimeoutSeconds")
