"""The SageMaker endpoint: least-privilege role, model in the VPC, configuration, guardrails, scaling."""

from __future__ import annotations

import pytest
from program_helpers import as_list, one, policy_statements, wildcards

from components.endpoint import EndpointArgs
from lib.evaluate import evaluate_stack

# The only "*" resources the execution role may have: actions with no resource-level permissions.
ALLOWED_WILDCARDS = {
    "LogInToEcr": ["ecr:GetAuthorizationToken"],
    "DescribeTheNetwork": [
        "ec2:DescribeVpcs",
        "ec2:DescribeSubnets",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeDhcpOptions",
    ],
}


ROLLBACK_ALARMS = ("monitoring-model-latency", "monitoring-invocation-5xx-rate")


def routing(graph):
    deployment = one(graph, "aws:sagemaker/endpoint:Endpoint").inputs["deploymentConfig"]
    return deployment["blueGreenUpdatePolicy"]["trafficRoutingConfiguration"]


def statement(graph, sid):
    (found,) = [s for s in policy_statements(graph.named("endpoint-role-policy")) if s["Sid"] == sid]
    return found


def test_the_model_runs_in_the_private_subnets_isolated(prod):
    model = one(prod, "aws:sagemaker/model:Model")
    subnet_ids = sorted(s.outputs["id"] for s in prod.of_type("aws:ec2/subnet:Subnet"))
    assert sorted(model.inputs["vpcConfig"]["subnets"]) == subnet_ids
    assert model.inputs["vpcConfig"]["securityGroupIds"] == [prod.named("network-endpoint-sg").outputs["id"]]
    assert model.inputs["enableNetworkIsolation"] is True
    assert model.inputs["executionRoleArn"] == prod.named("endpoint-role").outputs["arn"]


def test_the_role_can_be_assumed_only_by_sagemaker_of_this_account(prod):
    (trust,) = policy_statements(prod.named("endpoint-role"), "assumeRolePolicy")
    assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_execution_role_names_specific_resources(stack, request):
    graph = request.getfixturevalue(stack)
    statements = policy_statements(graph.named("endpoint-role-policy"))
    assert wildcards(statements) == ALLOWED_WILDCARDS
    assert all(
        not a.endswith("*") or a == "kms:GenerateDataKey*" for s in statements for a in as_list(s["Action"])
    )
    repo = graph.named("serving-image-repo").outputs["arn"]
    assert statement(graph, "PullTheServingImage")["Resource"] == repo
    key = graph.named("encryption-key").outputs["arn"]
    assert statement(graph, "UseTheStackKey")["Resource"] == key
    logs = statement(graph, "WriteTheEndpointLogs")["Resource"]
    assert logs[0].endswith(f":log-group:/aws/sagemaker/Endpoints/xgboost-endpoint-{stack}")


def test_the_role_reads_exactly_the_model_object(dev, prod):
    upload = one(dev, "aws:s3/bucketObjectv2:BucketObjectv2")
    assert statement(dev, "ReadTheModelArtifact")["Resource"] == upload.outputs["arn"]
    own_model = "arn:aws:s3:::acme-ml-models-prod/xgboost-digits/2026-11-20/model.tar.gz"
    assert statement(prod, "ReadTheModelArtifact")["Resource"] == own_model


def test_the_role_may_describe_only_the_rollback_alarms(prod):
    alarms = [
        prod.named(n).outputs["arn"] for n in ("monitoring-model-latency", "monitoring-invocation-5xx-rate")
    ]
    assert statement(prod, "WatchTheRollbackAlarms") == {
        "Sid": "WatchTheRollbackAlarms",
        "Effect": "Allow",
        "Action": "cloudwatch:DescribeAlarms",
        "Resource": alarms,
    }


def test_enis_are_created_only_in_the_stacks_subnets_and_vpc(prod):
    subnets = sorted(s.outputs["arn"] for s in prod.of_type("aws:ec2/subnet:Subnet"))
    attach = statement(prod, "AttachInstancesToTheSubnets")["Resource"]
    assert sorted(attach[:-1]) == subnets
    assert attach[-1] == prod.named("network-endpoint-sg").outputs["arn"]
    manage = statement(prod, "ManageTheEndpointEnis")
    assert manage["Condition"] == {"ArnEquals": {"ec2:Vpc": prod.named("network-vpc").outputs["arn"]}}


def test_data_capture_writes_only_under_its_prefix(prod, dev):
    bucket = prod.named("model-artifact-bucket").outputs["arn"]
    assert statement(prod, "WriteDataCapture")["Resource"] == f"{bucket}/data-capture/*"
    assert "WriteDataCapture" not in {s["Sid"] for s in policy_statements(dev.named("endpoint-role-policy"))}


def test_the_configuration_carries_type_count_model_key_and_capture(prod):
    config = one(prod, "aws:sagemaker/endpointConfiguration:EndpointConfiguration")
    (variant,) = config.inputs["productionVariants"]
    model = one(prod, "aws:sagemaker/model:Model")
    assert variant == {
        "variantName": "AllTraffic",
        "modelName": model.outputs["name"],
        "instanceType": "ml.c5.xlarge",
        "initialInstanceCount": 3,
        "initialVariantWeight": 1.0,
        "routingConfigs": [{"routingStrategy": "LEAST_OUTSTANDING_REQUESTS"}],
    }
    key = prod.named("encryption-key").outputs["arn"]
    assert config.inputs["kmsKeyArn"] == key
    capture = config.inputs["dataCaptureConfig"]
    assert capture["initialSamplingPercentage"] == 5
    assert capture["kmsKeyId"] == key
    assert capture["destinationS3Uri"].endswith("/data-capture")
    # auto-named and replaced create-before-delete: the endpoint moves to the new configuration
    # before the old one is deleted (terraform-provider-aws #21811, #40048)
    assert "name" not in config.inputs
    assert config.delete_before_replace is False


def test_replaced_configurations_and_models_stay_in_the_account(prod, dev):
    # After a SageMaker auto-rollback the provider still reports success, and deleting the "old"
    # configuration or model would delete what the endpoint serves (terraform-provider-aws #48997).
    for graph in (prod, dev):
        for type_token in (
            "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
            "aws:sagemaker/model:Model",
        ):
            assert one(graph, type_token).retain_on_delete is True
    # ...and only those: everything else is deleted with the stack as usual.
    retained = {r.type for r in prod if r.retain_on_delete}
    assert retained == {
        "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
        "aws:sagemaker/model:Model",
    }


def test_nvme_instance_types_get_no_kms_key():
    graph = evaluate_stack(
        "prod",
        config_overrides={"instanceType": "ml.m5d.xlarge", "endpointInstanceQuotas": {"ml.m5d.xlarge": 12}},
    )
    config = one(graph, "aws:sagemaker/endpointConfiguration:EndpointConfiguration")
    assert "kmsKeyArn" not in config.inputs
    assert config.inputs["productionVariants"][0]["instanceType"] == "ml.m5d.xlarge"


def test_prod_deploys_blue_green_canary_with_rollback_on_the_alarms(prod):
    endpoint = one(prod, "aws:sagemaker/endpoint:Endpoint")
    deployment = endpoint.inputs["deploymentConfig"]
    policy = deployment["blueGreenUpdatePolicy"]
    assert policy["trafficRoutingConfiguration"] == {
        "type": "CANARY",
        "waitIntervalInSeconds": 600,
        "canarySize": {"type": "CAPACITY_PERCENT", "value": 10},
    }
    assert policy["terminationWaitInSeconds"] == 900
    assert policy["maximumExecutionTimeoutInSeconds"] == 7200
    rollback = [a["alarmName"] for a in deployment["autoRollbackConfiguration"]["alarms"]]
    assert rollback == ["xgboost-endpoint-prod-rollback-latency", "xgboost-endpoint-prod-rollback-5xx"]
    names = [
        prod.named(n).outputs["name"] for n in ("monitoring-model-latency", "monitoring-invocation-5xx-rate")
    ]
    assert rollback == names


def test_the_rollback_alarm_list_is_fixed_strings_not_autonamed_outputs(prod):
    # The provider replaces the endpoint when auto_rollback_configuration changes: the alarm list
    # must not depend on any resource's output, so replacing an alarm cannot change it.
    endpoint = one(prod, "aws:sagemaker/endpoint:Endpoint")
    assert not endpoint.property_dependencies.get("deploymentConfig")
    for role in ("model-latency", "invocation-5xx-rate"):
        alarm = prod.named(f"monitoring-{role}")
        assert alarm.inputs["name"].startswith("xgboost-endpoint-prod-rollback-")
        # PutMetricAlarm overwrites a same-name alarm: a fixed-name alarm is deleted before it is replaced
        assert alarm.delete_before_replace is True


def test_dev_replaces_its_single_instance_all_at_once_without_waiting(dev):
    deployment = one(dev, "aws:sagemaker/endpoint:Endpoint").inputs["deploymentConfig"]
    policy = deployment["blueGreenUpdatePolicy"]
    assert policy["trafficRoutingConfiguration"] == {"type": "ALL_AT_ONCE", "waitIntervalInSeconds": 60}
    assert policy["terminationWaitInSeconds"] == 0
    assert policy["maximumExecutionTimeoutInSeconds"] == 1800
    assert len(deployment["autoRollbackConfiguration"]["alarms"]) == 2


def test_rolling_updates_go_in_batches_and_roll_back_at_once():
    graph = evaluate_stack("prod", config_overrides={"updateMode": "rolling", "rollingBatchPercent": 34})
    deployment = one(graph, "aws:sagemaker/endpoint:Endpoint").inputs["deploymentConfig"]
    assert "blueGreenUpdatePolicy" not in deployment
    assert deployment["rollingUpdatePolicy"] == {
        "maximumBatchSize": {"type": "CAPACITY_PERCENT", "value": 34},
        "rollbackMaximumBatchSize": {"type": "CAPACITY_PERCENT", "value": 100},
        "waitIntervalInSeconds": 300,
        "maximumExecutionTimeoutInSeconds": 7200,
    }


def test_linear_shifting_and_all_at_once_are_offered():
    # 4 steps x 300 s keep the update under the provider's 60 min wait
    shifting = {"trafficRouting": "LINEAR", "trafficStepPercent": 25, "trafficWaitSeconds": 300}
    linear = evaluate_stack("prod", config_overrides=shifting)
    assert routing(linear)["linearStepSize"] == {"type": "CAPACITY_PERCENT", "value": 25}
    at_once = evaluate_stack("prod", config_overrides={"trafficRouting": "ALL_AT_ONCE"})
    assert routing(at_once) == {"type": "ALL_AT_ONCE", "waitIntervalInSeconds": 600}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_endpoint_claims_no_timeout_the_provider_would_ignore(stack, request):
    # The provider waits a fixed 60 min for the endpoint (no Timeouts block): a custom timeout
    # would only pretend otherwise. config.validate keeps deployments under that instead.
    endpoint = one(request.getfixturevalue(stack), "aws:sagemaker/endpoint:Endpoint")
    assert endpoint.custom_timeouts == {}
    assert endpoint.inputs["name"] == f"xgboost-endpoint-{stack}"


def test_endpoint_args_refuse_autoscaling_a_burstable_type():
    with pytest.raises(ValueError, match="Application Auto Scaling refuses burstable variants"):
        EndpointArgs(
            context=None,  # type: ignore[arg-type]  # never reached: the check comes first
            endpoint_name="e",
            instance_type="ml.t2.medium",
            initial_instance_count=1,
            autoscaling=True,
            max_instances=2,
            image_uri="i",
            repository_arn="r",
            model_data_url="s3://b/k",
            model_object_arn="a",
            kms_key_arn="k",
            subnet_ids=["s"],
            subnet_arns=["s"],
            security_group_id="g",
            security_group_arn="g",
            vpc_arn="v",
        )
