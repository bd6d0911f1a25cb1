"""The whole program for each shipped stack: resources, parents, dependencies and exports."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest
from program_helpers import one

from lib.evaluate import Secret, evaluate_stack
from lib.graph import ResourceGraph

COMPONENTS = {
    "xgboost-endpoint:security:Encryption": "encryption",
    "xgboost-endpoint:network:Network": "network",
    "xgboost-endpoint:storage:ModelArtifact": "model-artifact",
    "xgboost-endpoint:image:ServingImage": "serving-image",
    "xgboost-endpoint:api:FrontDoor": "front-door",
    "xgboost-endpoint:monitoring:Monitoring": "monitoring",
    "xgboost-endpoint:sagemaker:Endpoint": "endpoint",
}

# Resources that are given a physical name on purpose (see the comments where they are created).
NAMED_ON_PURPOSE = {"aws:sagemaker/endpoint:Endpoint", "aws:cloudwatch/dashboard:Dashboard"}
# The rollback alarms: their names are in the endpoint's ForceNew rollback configuration.
ALARMS_NAMED_ON_PURPOSE = {"monitoring-model-latency", "monitoring-invocation-5xx-rate"}
# The endpoint's log group: SageMaker writes to /aws/sagemaker/Endpoints/<endpoint name>.
LOG_GROUPS_NAMED_ON_PURPOSE = {"endpoint-logs"}


@pytest.fixture(params=["dev", "prod"])
def graph(request: pytest.FixtureRequest) -> ResourceGraph:
    return request.getfixturevalue(request.param)


def test_the_stack_holds_one_of_each_component(graph):
    (stack,) = [r for r in graph if r.type == "pulumi:pulumi:Stack"]
    components = {r.type: r.name for r in graph if not r.custom and r.parent == stack.urn}
    assert components == COMPONENTS


def test_every_cloud_resource_is_a_child_named_after_its_component(graph):
    for resource in graph:
        if not resource.custom:
            continue
        parent = graph.by_urn(resource.parent or "")
        assert parent.type in COMPONENTS, f"{resource.name} is not inside a component"
        assert resource.name.startswith(f"{parent.name}-"), resource.name


def test_physical_names_are_left_to_autonaming(graph):
    for resource in graph:
        named_on_purpose = (
            resource.type in NAMED_ON_PURPOSE
            or resource.name in ALARMS_NAMED_ON_PURPOSE | LOG_GROUPS_NAMED_ON_PURPOSE
        )
        if named_on_purpose or not resource.custom:
            continue
        assert "name" not in resource.inputs or resource.type in {
            # these inputs are not physical names of the resource itself
            "aws:ec2/vpcEndpoint:VpcEndpoint",
        }, f"{resource.name} sets a physical name"


def test_taggable_resources_carry_their_name_tag(graph):
    for resource in graph:
        if "tags" in resource.inputs and resource.type != "docker-build:index:Image":
            assert resource.inputs["tags"] == {"Name": resource.name}


def test_default_tags_come_from_the_stack_configuration(graph):
    tags = graph.config["aws:defaultTags"]["tags"]
    assert tags["project"] == "xgboost-endpoint"
    assert tags["environment"] == graph.stack


def test_exports_give_a_user_what_they_need(graph):
    exports = graph.exports
    endpoint = one(graph, "aws:sagemaker/endpoint:Endpoint")
    assert exports["endpointName"] == endpoint.outputs["name"] == f"xgboost-endpoint-{graph.stack}"
    stage = one(graph, "aws:apigateway/stage:Stage")
    assert exports["apiUrl"] == f"{stage.outputs['invokeUrl']}/predict"
    key = one(graph, "aws:apigateway/apiKey:ApiKey")
    assert exports["apiKeyId"] == key.outputs["id"]
    assert isinstance(exports["apiKeyValue"], Secret)
    assert exports["apiKeyValue"].value == key.outputs["value"]
    assert exports["alarmTopicArn"] == one(graph, "aws:sns/topic:Topic").outputs["arn"]
    assert exports["dashboardName"] == f"xgboost-endpoint-{graph.stack}"


def test_the_endpoint_comes_after_its_configuration_model_role_and_rollback_alarms(prod):
    endpoint = prod.named("endpoint-endpoint")
    config = prod.named("endpoint-config")
    model = prod.named("endpoint-model")
    assert prod.depends_on(endpoint, config)
    assert prod.depends_on(config, model)
    assert prod.depends_on(model, prod.named("endpoint-role-policy"))
    assert prod.depends_on(model, prod.named("serving-image-image"))
    # The rollback alarms are named by fixed strings, so the order comes through the role policy
    # that lets SageMaker describe them.
    policy = prod.named("endpoint-role-policy")
    assert prod.depends_on(endpoint, policy)
    assert prod.depends_on(policy, prod.named("monitoring-model-latency"))
    assert prod.depends_on(policy, prod.named("monitoring-invocation-5xx-rate"))
    # ...and the alarms do not depend on the endpoint: the fixed name breaks the cycle.
    assert not prod.depends_on(prod.named("monitoring-model-latency"), endpoint)


def test_the_scaling_target_waits_for_the_endpoint(prod):
    target = prod.named("endpoint-scaling-target")
    endpoint = prod.named("endpoint-endpoint")
    assert endpoint.urn in target.property_dependencies["resourceId"]
    assert prod.depends_on(prod.named("endpoint-scaling-policy"), target)


def test_a_resource_registers_only_after_what_it_depends_on(graph):
    order = {r.urn: index for index, r in enumerate(graph)}
    for resource in graph:
        for urn in resource.dependencies:
            assert order[urn] < order[resource.urn], f"{resource.name} registered before its dependency"


def _comparable(value: Any) -> Any:
    """Inputs with assets replaced by what identifies them (assets compare by identity)."""
    if isinstance(value, pulumi.FileAsset):
        return ("file", value.path)
    if isinstance(value, pulumi.AssetArchive):
        return ("archive", {k: _comparable(v) for k, v in value.assets.items()})
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return value


def test_evaluating_again_gives_the_same_graph(prod):
    again = evaluate_stack("prod")

    def shape(graph: ResourceGraph) -> dict[str, Any]:
        return {r.urn: (_comparable(dict(r.inputs)), r.parent, set(r.dependencies)) for r in graph}

    assert shape(again) == shape(prod)
    assert again.exports == prod.exports


def test_dev_is_small_and_unscaled_prod_is_scaled(dev, prod):
    assert not dev.of_type("aws:appautoscaling/target:Target")
    assert len(prod.of_type("aws:appautoscaling/target:Target")) == 1
    assert len(dev.of_type("aws:ec2/subnet:Subnet")) == 3
    assert len(prod.of_type("aws:ec2/subnet:Subnet")) == 3
