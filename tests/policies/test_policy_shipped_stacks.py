"""The real program, evaluated under mocks: every shipped stack passes the pack with the quotas it
declares, and hand-broken stacks (built by mutating the recorded graph, because the program's own
validation refuses these settings up front) fail for the right reason."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from policy_checks import failing
from policy_graphs import mutate_type

from lib.evaluate import evaluate_stack
from lib.graph import ResourceGraph
from policies.runner import run_pack
from tools import plan

SUBNET = "aws:ec2/subnet:Subnet"
CONFIGURATION = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
TARGET = "aws:appautoscaling/target:Target"


@pytest.fixture(scope="module")
def graphs(demo_model_dir: Path) -> dict[str, ResourceGraph]:
    return {stack: evaluate_stack(stack) for stack in ("dev", "prod")}


def _run(graph: ResourceGraph):
    return run_pack(graph, plan.stack_pack_config(graph.stack))


def _all(type_token: str, change: Callable[[dict[str, Any]], None]):
    return lambda graph: mutate_type(graph, type_token, change)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_shipped_stack_passes_every_policy(graphs: dict[str, ResourceGraph], stack: str) -> None:
    report = _run(graphs[stack])
    assert failing(report) == {}
    assert report.passed
    # The checks saw the endpoint: its fleet, its scaling, its alarms and its subnets.
    assert report.result("sagemaker-endpoint-instance-quota").status == "passed"
    assert report.result("ec2-subnet-endpoint-addresses").status == "passed"


def test_prod_without_the_granted_quotas_fails_on_a_new_accounts(graphs: dict[str, ResourceGraph]) -> None:
    report = run_pack(graphs["prod"])
    [type_quota, total_quota] = failing(report)["sagemaker-endpoint-instance-quota"]
    assert "'ml.c5.xlarge for endpoint usage' of 0: request an increase of 12 (to 12)" in type_quota
    assert "'Number of instances across active endpoints' of 2" in total_quota


def test_slash_28_subnets_under_a_fleet_of_20_fail(graphs: dict[str, ResourceGraph]) -> None:
    def slash_28(inputs: dict[str, Any]) -> None:
        inputs["cidrBlock"] = inputs["cidrBlock"].rsplit("/", 1)[0] + "/28"

    graph = mutate_type(graphs["prod"], SUBNET, slash_28)
    graph = mutate_type(graph, TARGET, lambda i: i.update(maxCapacity=20.0))
    found = failing(_run(graph))
    subnet_messages = found["ec2-subnet-endpoint-addresses"]
    assert len(subnet_messages) == 3
    assert subnet_messages[0].startswith(
        "subnet 'network-private-1' (10.40.0.0/28): a /28 has 16 addresses but each subnet needs 42 "
        "(14 peak instance(s) of endpoint-endpoint x 2 IPs"
    )
    assert subnet_messages[0].endswith("Fix: use /26 subnets or larger (subnetPrefixLength 26 or less)")
    assert "sagemaker-endpoint-instance-quota" in found  # 40 at the peak of a blue/green update


def test_single_az_production_stack_fails(graphs: dict[str, ResourceGraph]) -> None:
    graph = mutate_type(graphs["prod"], SUBNET, lambda i: i.update(availabilityZone="eu-west-1a"))
    found = failing(_run(graph))
    assert list(found) == ["sagemaker-model-subnet-azs"]
    assert "subnets all in eu-west-1a" in found["sagemaker-model-subnet-azs"][0]


def test_burstable_instance_type_in_production_fails(graphs: dict[str, ResourceGraph]) -> None:
    def t2(inputs: dict[str, Any]) -> None:
        inputs["productionVariants"][0]["instanceType"] = "ml.t2.medium"

    found = failing(_run(mutate_type(graphs["prod"], CONFIGURATION, t2)))
    assert (
        "'AllTraffic': ml.t2.medium is burstable: it throttles"
        in found["sagemaker-variant-instance-type-burstable"][0]
    )
    assert (
        "Application Auto Scaling refuses burstable variants (RegisterScalableTarget)"
        in found["appautoscaling-target-burstable-variant"][0]
    )


def test_blue_green_update_beyond_the_quota_fails(graphs: dict[str, ResourceGraph]) -> None:
    graph = mutate_type(graphs["prod"], TARGET, lambda i: i.update(maxCapacity=7.0))
    found = failing(_run(graph))
    assert list(found) == ["sagemaker-endpoint-instance-quota"]
    assert (
        "'ml.c5.xlarge for endpoint usage' of 12: request an increase of 2 (to 14)"
        in found["sagemaker-endpoint-instance-quota"][0]
    )
    assert "blue/green update runs both fleets" in found["sagemaker-endpoint-instance-quota"][0]


def test_dev_with_autoscaling_on_its_burstable_type_fails(graphs: dict[str, ResourceGraph]) -> None:
    prod_target = graphs["prod"].of_type(TARGET)[0]
    dev = graphs["dev"]
    endpoint = dev.of_type("aws:sagemaker/endpoint:Endpoint")[0]
    target = type(prod_target)(
        type=TARGET,
        name="hand-written-scaling",
        urn=prod_target.urn.replace("prod", "dev"),
        custom=True,
        inputs={**prod_target.inputs, "resourceId": None},
        property_dependencies={"resourceId": (endpoint.urn,)},
        dependencies=(endpoint.urn,),
    )
    graph = type(dev)(project=dev.project, stack="dev", resources=(*dev.resources, target), config=dev.config)
    [message] = failing(_run(graph))["appautoscaling-target-burstable-variant"]
    assert (
        "'hand-written-scaling' autoscales endpoint 'endpoint-endpoint' variant 'AllTraffic': "
        "ml.t2.medium is burstable" in message
    )


def test_plan_of_prod_exits_0_and_shows_the_arithmetic() -> None:
    out = io.StringIO()
    assert plan.main(["--stack", "prod"], out=out) == 0
    text = out.getvalue()
    assert "aws:sagemaker/endpoint:Endpoint  endpoint-endpoint" in text
    assert "ml.c5.xlarge, min 3 / initial 3 / max 6, update blue-green, peak 12" in text
    assert "network-private-1: 10.40.0.0/24 in eu-west-1a, size 256" in text
    assert "PASSED: 0 mandatory violation(s)" in text


def test_plan_prints_the_programs_configuration_error_and_exits_2() -> None:
    out = io.StringIO()
    assert plan.main(["--stack", "prod", "--set", "azCount=1"], out=out) == 2
    text = out.getvalue()
    assert "stack 'prod' configuration error" in text
    assert "xgboost-endpoint:azCount" in text
