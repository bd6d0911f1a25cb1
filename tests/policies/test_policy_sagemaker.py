"""SageMaker policies: each passes the happy graph and fails, with a useful message, on one change."""

from __future__ import annotations

from typing import Any

import pytest
from policy_checks import failing, messages, run_policy
from policy_graphs import HAPPY_PACK_CONFIG, HAPPY_QUOTAS, happy_graph, mutate, relink, remove, rename_stack

from policies.runner import run_pack
from policies.settings import PolicyConfigError

ENDPOINT = "serving-endpoint"
CONFIG = "serving-config"
TARGET = "serving-scaling-target"


def _variant(change: dict[str, Any]):
    def apply(inputs: dict[str, Any]) -> None:
        inputs["productionVariants"][0].update(change)

    return apply


@pytest.mark.parametrize("stack", ["prod", "dev"])
def test_happy_graph_passes_every_policy(stack: str) -> None:
    report = run_pack(happy_graph(stack), HAPPY_PACK_CONFIG)
    assert failing(report) == {}
    assert report.passed


# sagemaker-endpoint-instance-quota


def test_blue_green_peak_within_quota_passes() -> None:
    assert messages(happy_graph(), "sagemaker-endpoint-instance-quota", HAPPY_QUOTAS) == []


def test_blue_green_peak_over_type_quota_names_the_increase() -> None:
    quotas = {"endpointInstanceQuotas": {"ml.c5.large": 11}, "totalInstanceQuota": 20}
    [message] = messages(happy_graph(), "sagemaker-endpoint-instance-quota", quotas)
    assert "'ml.c5.large for endpoint usage' of 11" in message
    assert "request an increase of 1 (to 12)" in message
    assert "variant 'AllTraffic' ml.c5.large max 6 -> peak 12 (blue/green update runs both fleets)" in message


def test_default_quotas_are_a_new_accounts() -> None:
    found = messages(happy_graph(), "sagemaker-endpoint-instance-quota")
    assert any("'ml.c5.large for endpoint usage' of 0" in m for m in found)
    assert any(
        "'Number of instances across active endpoints' of 2: request an increase of 10" in m for m in found
    )


def test_total_quota_is_checked_across_the_stack() -> None:
    quotas = {"endpointInstanceQuotas": {"ml.c5.large": 12}, "totalInstanceQuota": 10}
    [message] = messages(happy_graph(), "sagemaker-endpoint-instance-quota", quotas)
    assert "'Number of instances across active endpoints' of 10: request an increase of 2 (to 12)" in message


def test_rolling_update_needs_a_batch_not_a_second_fleet() -> None:
    def rolling(inputs: dict[str, Any]) -> None:
        inputs["deploymentConfig"] = {
            "rollingUpdatePolicy": {
                "maximumBatchSize": {"type": "CAPACITY_PERCENT", "value": 20.0},
                "waitIntervalInSeconds": 300.0,
            },
            "autoRollbackConfiguration": {"alarms": [{"alarmName": None}]},
        }

    graph = mutate(happy_graph(), ENDPOINT, rolling)
    # 6 + ceil(20% of 6) = 8 at the peak.
    assert (
        messages(
            graph,
            "sagemaker-endpoint-instance-quota",
            {"endpointInstanceQuotas": {"ml.c5.large": 8}, "totalInstanceQuota": 8},
        )
        == []
    )
    [message] = messages(
        graph,
        "sagemaker-endpoint-instance-quota",
        {"endpointInstanceQuotas": {"ml.c5.large": 7}, "totalInstanceQuota": 8},
    )
    assert "peak fleet of 8 instance(s)" in message
    assert "rolling update adds a 20% batch" in message


@pytest.mark.parametrize(("batch", "peak"), [(1, 7), (2, 8), (3, 9)])
def test_rolling_batch_by_instance_count_adds_that_many(batch: int, peak: int) -> None:
    def rolling(inputs: dict[str, Any]) -> None:
        inputs["deploymentConfig"] = {
            "rollingUpdatePolicy": {
                "maximumBatchSize": {"type": "INSTANCE_COUNT", "value": float(batch)},
                "waitIntervalInSeconds": 60.0,
            }
        }

    graph = mutate(happy_graph(), ENDPOINT, rolling)
    # The autoscaling maximum is 6: the batch comes on top of it.
    fits = {"endpointInstanceQuotas": {"ml.c5.large": peak}, "totalInstanceQuota": peak}
    assert messages(graph, "sagemaker-endpoint-instance-quota", fits) == []
    short = {"endpointInstanceQuotas": {"ml.c5.large": peak - 1}, "totalInstanceQuota": peak}
    [message] = messages(graph, "sagemaker-endpoint-instance-quota", short)
    assert f"peak fleet of {peak} instance(s)" in message


def test_blue_green_update_that_exceeds_the_quota_fails_when_max_grows() -> None:
    graph = mutate(happy_graph(), TARGET, lambda i: i.update(maxCapacity=7.0))
    type_quota, total_quota = messages(graph, "sagemaker-endpoint-instance-quota", HAPPY_QUOTAS)
    assert "peak fleet of 14 instance(s)" in type_quota
    assert "'ml.c5.large for endpoint usage' of 12: request an increase of 2 (to 14)" in type_quota
    assert "'Number of instances across active endpoints' of 12" in total_quota


def test_without_autoscaling_the_fixed_count_is_the_maximum() -> None:
    graph = remove(happy_graph(), TARGET, "serving-scaling-policy")
    quotas = {"endpointInstanceQuotas": {"ml.c5.large": 6}, "totalInstanceQuota": 6}
    assert messages(graph, "sagemaker-endpoint-instance-quota", quotas) == []


# sagemaker-model-subnet-azs (every stack)


@pytest.mark.parametrize("stack", ["prod", "dev"])
def test_single_subnet_model_fails_in_every_stack(stack: str) -> None:
    graph = mutate(happy_graph(stack), "serving-model", lambda i: i["vpcConfig"].update(subnets=[None]))
    graph = relink(graph, "serving-model", "vpcConfig", "net-private-a", "net-endpoint-sg")
    [message] = messages(graph, "sagemaker-model-subnet-azs")
    assert message == (
        "model 'serving-model' of endpoint 'serving-endpoint': 1 subnet(s); SageMaker needs at least two "
        "subnets in distinct Availability Zones, even for one instance. Fix: place it in two or more "
        "subnets in distinct Availability Zones (azCount: 2 or more)"
    )


def test_subnets_all_in_one_az_fail() -> None:
    graph = happy_graph("dev")
    for zone in "bc":
        graph = mutate(graph, f"net-private-{zone}", lambda i: i.update(availabilityZone="eu-west-1a"))
    [message] = messages(graph, "sagemaker-model-subnet-azs")
    assert "all in eu-west-1a" in message


# sagemaker-variant-instance-count-az (production)


def test_single_az_production_stack_fails() -> None:
    graph = happy_graph()
    for zone in "bc":
        graph = mutate(graph, f"net-private-{zone}", lambda i: i.update(availabilityZone="eu-west-1a"))
    report = run_pack(graph, HAPPY_PACK_CONFIG)
    assert not report.passed
    assert list(failing(report)) == ["sagemaker-model-subnet-azs"]


def test_production_variant_with_fewer_instances_than_azs_fails() -> None:
    graph = mutate(happy_graph(), CONFIG, _variant({"initialInstanceCount": 2.0}))
    [message] = messages(graph, "sagemaker-variant-instance-count-az")
    assert message == (
        "endpoint 'serving-endpoint' variant 'AllTraffic' (initial 2, minimum 3): production runs as few "
        "as 2 instance(s) over 3 Availability Zones, so a zone has none. Fix: keep at least 3 instances "
        "(the initial count and the autoscaling minimum)"
    )


def test_production_autoscaling_minimum_below_az_count_fails() -> None:
    graph = mutate(happy_graph(), TARGET, lambda i: i.update(minCapacity=1.0))
    [message] = messages(graph, "sagemaker-variant-instance-count-az")
    assert "(initial 3, minimum 1): production runs as few as 1 instance(s) over 3 Availability" in message


def test_instance_count_per_az_does_not_apply_to_dev() -> None:
    graph = mutate(happy_graph("dev"), CONFIG, _variant({"initialInstanceCount": 1.0}))
    result = run_policy(graph, "sagemaker-variant-instance-count-az")
    assert result.violations == ()
    assert result.not_applicable == ("not a production stack",)


# sagemaker-variant-instance-type-burstable (production)


def test_burstable_type_in_production_fails() -> None:
    graph = mutate(happy_graph(), CONFIG, _variant({"instanceType": "ml.t2.medium"}))
    [message] = messages(graph, "sagemaker-variant-instance-type-burstable")
    assert message == (
        "endpoint configuration 'serving-config' variant 'AllTraffic': ml.t2.medium is burstable: it "
        "throttles to its CPU baseline when credits run out and cannot be autoscaled. Fix: use a "
        "non-burstable type in production, such as ml.c5.xlarge or ml.m5.large"
    )


def test_burstable_type_in_dev_passes() -> None:
    graph = mutate(happy_graph("dev"), CONFIG, _variant({"instanceType": "ml.t2.medium"}))
    assert messages(graph, "sagemaker-variant-instance-type-burstable") == []


def test_production_is_also_recognised_by_the_default_environment_tag() -> None:
    graph = rename_stack(mutate(happy_graph(), CONFIG, _variant({"instanceType": "ml.t2.large"})), "eu-live")
    assert messages(graph, "sagemaker-variant-instance-type-burstable") == []
    tagged = type(graph)(
        project=graph.project,
        stack=graph.stack,
        resources=graph.resources,
        config={"aws:defaultTags": {"tags": {"environment": "prod"}}},
    )
    assert len(messages(tagged, "sagemaker-variant-instance-type-burstable")) == 1


def test_the_environment_tag_wins_over_the_stack_name() -> None:
    # One meaning of production (stackcore.rules.stack_is_production): the tag when set, else the name.
    graph = mutate(happy_graph(), CONFIG, _variant({"instanceType": "ml.t2.large"}))
    tagged_dev = type(graph)(
        project=graph.project,
        stack=graph.stack,
        resources=graph.resources,
        config={"aws:defaultTags": {"tags": {"environment": "dev"}}},
    )
    assert graph.stack == "prod"
    assert len(messages(graph, "sagemaker-variant-instance-type-burstable")) == 1
    assert messages(tagged_dev, "sagemaker-variant-instance-type-burstable") == []



# sagemaker-endpoint-config-kms-key


def test_endpoint_configuration_without_kms_key_fails() -> None:
    graph = remove(happy_graph(), "serving-key")
    [message] = messages(graph, "sagemaker-endpoint-config-kms-key")
    assert "endpoint configuration 'serving-config' has no kmsKeyArn" in message
    assert "customer-managed KMS key" in message


def test_kms_key_on_nvme_instance_type_fails() -> None:
    graph = mutate(happy_graph(), CONFIG, _variant({"instanceType": "ml.m5d.large"}))
    [message] = messages(graph, "sagemaker-endpoint-config-kms-key")
    assert "sets kmsKeyArn but ml.m5d.large has local NVMe storage" in message
    assert "remove kmsKeyArn" in message


def test_nvme_instance_type_without_kms_key_passes() -> None:
    graph = remove(mutate(happy_graph(), CONFIG, _variant({"instanceType": "ml.g4dn.xlarge"})), "serving-key")
    assert messages(graph, "sagemaker-endpoint-config-kms-key") == []




# sagemaker-model-vpc-config and sagemaker-model-network-isolation


def test_model_outside_vpc_fails() -> None:
    graph = mutate(happy_graph(), "serving-model", lambda i: i.pop("vpcConfig"))
    graph = relink(graph, "serving-model", "vpcConfig")
    [message] = messages(graph, "sagemaker-model-vpc-config")
    assert "model 'serving-model' has no vpcConfig subnets" in message


def test_model_without_security_group_fails() -> None:
    graph = mutate(happy_graph(), "serving-model", lambda i: i["vpcConfig"].update(securityGroupIds=[]))
    [message] = messages(graph, "sagemaker-model-vpc-config")
    assert "without securityGroupIds" in message


def test_model_without_network_isolation_fails() -> None:
    graph = mutate(happy_graph(), "serving-model", lambda i: i.update(enableNetworkIsolation=False))
    [message] = messages(graph, "sagemaker-model-network-isolation")
    assert "model 'serving-model' has enableNetworkIsolation=False" in message
    unset = mutate(happy_graph(), "serving-model", lambda i: i.pop("enableNetworkIsolation"))
    assert (
        "model 'serving-model' does not set enableNetworkIsolation"
        in messages(unset, "sagemaker-model-network-isolation")[0]
    )
    assert "set enableNetworkIsolation=True" in message


# sagemaker-endpoint-autoscaling-policy


def test_endpoint_without_autoscaling_fails() -> None:
    graph = remove(happy_graph(), TARGET, "serving-scaling-policy")
    [message] = messages(graph, "sagemaker-endpoint-autoscaling-policy")
    assert (
        "endpoint 'serving-endpoint' variant 'AllTraffic' (ml.c5.large) has no autoscaling target" in message
    )


def test_scalable_target_without_policy_fails() -> None:
    graph = remove(happy_graph(), "serving-scaling-policy")
    [message] = messages(graph, "sagemaker-endpoint-autoscaling-policy")
    assert "has a scalable target but no scaling policy" in message


def test_burstable_variant_needs_no_autoscaling() -> None:
    graph = remove(
        mutate(happy_graph("dev"), CONFIG, _variant({"instanceType": "ml.t2.medium"})),
        TARGET,
        "serving-scaling-policy",
    )
    assert messages(graph, "sagemaker-endpoint-autoscaling-policy") == []


# appautoscaling-target-burstable-variant (every stack)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_autoscaling_a_burstable_variant_fails_in_every_stack(stack: str) -> None:
    graph = mutate(happy_graph(stack), CONFIG, _variant({"instanceType": "ml.t2.medium"}))
    found = messages(graph, "appautoscaling-target-burstable-variant")
    assert len(found) == 2  # the target and the policy
    assert "'serving-scaling-target' autoscales endpoint 'serving-endpoint' variant 'AllTraffic'" in found[0]
    assert found[0].endswith(
        ": ml.t2.medium is burstable and Application Auto Scaling refuses burstable variants "
        "(RegisterScalableTarget). Fix: turn autoscaling off (autoscaling: false) or use a non-burstable "
        "type such as ml.c5.xlarge"
    )


# sagemaker-endpoint-deployment-rollback (production)


def test_production_endpoint_without_deployment_config_fails() -> None:
    graph = mutate(happy_graph(), ENDPOINT, lambda i: i.pop("deploymentConfig"))
    found = messages(graph, "sagemaker-endpoint-deployment-rollback")
    assert any("endpoint 'serving-endpoint' has no update policy" in m for m in found)
    assert any("would not roll back on the latency and error alarms" in m for m in found)


def test_production_blue_green_without_rollback_alarms_fails() -> None:
    graph = mutate(happy_graph(), ENDPOINT, lambda i: i["deploymentConfig"].pop("autoRollbackConfiguration"))
    [message] = messages(graph, "sagemaker-endpoint-deployment-rollback")
    assert message == (
        "endpoint 'serving-endpoint': a production update would not roll back on the latency and error "
        "alarms. Fix: set autoRollback: true (deploymentConfig.autoRollbackConfiguration with the alarms)"
    )


def test_rolling_update_in_production_fails_unless_allowed_by_config() -> None:
    def rolling(inputs: dict[str, Any]) -> None:
        inputs["deploymentConfig"].pop("blueGreenUpdatePolicy")
        inputs["deploymentConfig"]["rollingUpdatePolicy"] = {
            "maximumBatchSize": {"type": "CAPACITY_PERCENT", "value": 20.0},
            "waitIntervalInSeconds": 60.0,
        }

    graph = mutate(happy_graph(), ENDPOINT, rolling)
    [message] = messages(graph, "sagemaker-endpoint-deployment-rollback")
    assert "has a rolling update in its deploymentConfig: set a blue-green update policy" in message
    assert "'allowedUpdateModes'" in message
    allowed = {"allowedUpdateModes": ["blue-green", "rolling"]}
    assert messages(graph, "sagemaker-endpoint-deployment-rollback", allowed) == []


def test_unknown_update_mode_in_config_is_refused() -> None:
    with pytest.raises(PolicyConfigError, match="must be one of blue-green, rolling, got 'canary'"):
        messages(happy_graph(), "sagemaker-endpoint-deployment-rollback", {"allowedUpdateModes": ["canary"]})


ROLLBACK = "sagemaker-endpoint-deployment-rollback"


def _routing(change: dict[str, Any]):
    def apply(inputs: dict[str, Any]) -> None:
        inputs["deploymentConfig"]["blueGreenUpdatePolicy"]["trafficRoutingConfiguration"].update(change)

    return apply


def test_production_canary_larger_than_half_the_fleet_fails() -> None:
    canary = {"canarySize": {"type": "CAPACITY_PERCENT", "value": 60.0}}
    [message] = messages(mutate(happy_graph(), ENDPOINT, _routing(canary)), ROLLBACK)
    assert message == (
        "endpoint 'serving-endpoint' shifts traffic in steps of 60% is outside the 1-50% SageMaker allows "
        "for a CANARY step: set canarySize.value to 1-50"
    )


def test_production_linear_steps_under_ten_percent_fail() -> None:
    linear = {
        "type": "LINEAR",
        "canarySize": None,
        "linearStepSize": {"type": "CAPACITY_PERCENT", "value": 5.0},
    }
    [message] = messages(mutate(happy_graph(), ENDPOINT, _routing(linear)), ROLLBACK)
    assert "5% is outside the 10-50% SageMaker allows for a LINEAR step" in message
    assert "set linearStepSize.value to 10-50" in message


def test_production_execution_timeout_within_the_waits_fails() -> None:
    # happy graph: one 300 s canary wait + 600 s termination wait = 900 s
    def timeout(seconds: float):
        def apply(inputs: dict[str, Any]) -> None:
            inputs["deploymentConfig"]["blueGreenUpdatePolicy"]["maximumExecutionTimeoutInSeconds"] = seconds

        return apply

    [message] = messages(mutate(happy_graph(), ENDPOINT, timeout(900.0)), ROLLBACK)
    assert "has maximumExecutionTimeoutInSeconds 900, which does not exceed its traffic" in message
    assert "termination waits (900 s) as SageMaker requires: raise it above 900 or wait less" in message
    assert messages(mutate(happy_graph(), ENDPOINT, timeout(901.0)), ROLLBACK) == []


def test_dev_endpoint_without_rollback_passes() -> None:
    graph = mutate(happy_graph("dev"), ENDPOINT, lambda i: i.pop("deploymentConfig"))
    assert messages(graph, "sagemaker-endpoint-deployment-rollback") == []


# Links through fixed names (known strings) when a program names the endpoint itself.


def _fixed_names(graph):
    """The endpoint, its configuration and model named explicitly; scaling and alarms refer to the
    endpoint by that name (a string), with no dependency on it."""
    graph = mutate(graph, ENDPOINT, lambda i: i.update(name="xgb-prod", endpointConfigName="xgb-prod-config"))
    graph = relink(graph, ENDPOINT, "endpointConfigName")
    graph = mutate(graph, CONFIG, lambda i: i.update(name="xgb-prod-config"))
    graph = mutate(graph, CONFIG, _variant({"modelName": "xgb-prod-model"}))
    graph = relink(graph, CONFIG, "productionVariants")
    graph = mutate(graph, "serving-model", lambda i: i.update(name="xgb-prod-model"))
    for name in (TARGET, "serving-scaling-policy"):
        graph = mutate(graph, name, lambda i: i.update(resourceId="endpoint/xgb-prod/variant/AllTraffic"))
        graph = relink(graph, name, "resourceId")
    for alarm in ("serving-invocation5xxerrors-alarm", "serving-modellatency-alarm"):
        graph = mutate(graph, alarm, lambda i: i["dimensions"].update(EndpointName="xgb-prod"))
        graph = relink(graph, alarm, "dimensions")
    return graph


def test_fixed_names_link_scaling_alarms_configuration_and_model() -> None:
    graph = _fixed_names(happy_graph())
    report = run_pack(graph, HAPPY_PACK_CONFIG)
    assert failing(report) == {}
    # The links were made: the fleet was counted from the scaling target's maximum.
    [type_quota, _] = messages(graph, "sagemaker-endpoint-instance-quota")
    assert "max 6 -> peak 12" in type_quota


def test_alarms_naming_another_endpoint_do_not_count() -> None:
    graph = _fixed_names(happy_graph())
    graph = mutate(
        graph, "serving-modellatency-alarm", lambda i: i["dimensions"].update(EndpointName="xgb-dev")
    )
    [message] = messages(graph, "cloudwatch-endpoint-alarm-set")
    assert "has no alarm on ModelLatency" in message
