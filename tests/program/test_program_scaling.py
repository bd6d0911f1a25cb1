"""Autoscaling and routing as the program registers them, for every scalingMetric and both routing
strategies: the policies' metric types, targets, cooldowns and resource ids, the routing config,
and botocore's enums accepting every value the program emits."""

from __future__ import annotations

import botocore.session
import pytest
from program_helpers import one

from lib.evaluate import evaluate_stack
from lib.graph import ResourceGraph

POLICY = "aws:appautoscaling/policy:Policy"
TARGET = "aws:appautoscaling/target:Target"
CONFIGURATION = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
PROD_RESOURCE_ID = "endpoint/xgboost-endpoint-prod/variant/AllTraffic"

INVOCATIONS = {
    "targetValue": 12000.0,
    "predefinedMetricSpecification": {"predefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
    "scaleInCooldown": 300,
    "scaleOutCooldown": 60,
}
CONCURRENCY = {
    "targetValue": 2.0,
    "predefinedMetricSpecification": {
        "predefinedMetricType": "SageMakerVariantConcurrentRequestsPerModelHighResolution"
    },
    "scaleInCooldown": 300,
    "scaleOutCooldown": 60,
}


@pytest.fixture(scope="module")
def invocations_only() -> ResourceGraph:
    overrides = {"scalingMetric": "invocations", "routingStrategy": "RANDOM"}
    return evaluate_stack("prod", config_overrides=overrides)


@pytest.fixture(scope="module")
def concurrency_only() -> ResourceGraph:
    return evaluate_stack("prod", config_overrides={"scalingMetric": "concurrency"})


def policies(graph: ResourceGraph) -> dict[str, dict[str, object]]:
    """Logical name -> target-tracking configuration of every scaling policy."""
    return {p.name: p.inputs["targetTrackingScalingPolicyConfiguration"] for p in graph.of_type(POLICY)}


def routing_configs(graph: ResourceGraph) -> list[dict[str, str]]:
    (variant,) = one(graph, CONFIGURATION).inputs["productionVariants"]
    return variant["routingConfigs"]


def test_prod_tracks_both_metrics_on_one_scalable_target(prod):
    target = one(prod, TARGET)
    assert target.inputs["resourceId"] == PROD_RESOURCE_ID
    assert target.inputs["serviceNamespace"] == "sagemaker"
    assert target.inputs["scalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert (target.inputs["minCapacity"], target.inputs["maxCapacity"]) == (3, 6)
    assert target.delete_before_replace is True
    assert policies(prod) == {
        "endpoint-scaling-policy": INVOCATIONS,
        "endpoint-concurrency-scaling-policy": CONCURRENCY,
    }
    for policy in prod.of_type(POLICY):
        assert policy.inputs["policyType"] == "TargetTrackingScaling"
        assert policy.inputs["resourceId"] == PROD_RESOURCE_ID
        assert policy.inputs["serviceNamespace"] == "sagemaker"
        assert policy.inputs["scalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
        # resourceLabel is for ALBRequestCountPerTarget only (botocore's model): never set here
        assert "resourceLabel" not in policy.inputs["targetTrackingScalingPolicyConfiguration"][
            "predefinedMetricSpecification"
        ]


def test_invocations_alone_is_one_policy_on_invocations_per_instance(invocations_only):
    assert policies(invocations_only) == {"endpoint-scaling-policy": INVOCATIONS}
    assert one(invocations_only, POLICY).inputs["resourceId"] == PROD_RESOURCE_ID


def test_concurrency_alone_is_one_policy_on_the_high_resolution_metric(concurrency_only):
    assert policies(concurrency_only) == {"endpoint-concurrency-scaling-policy": CONCURRENCY}
    assert one(concurrency_only, POLICY).inputs["resourceId"] == PROD_RESOURCE_ID


def test_the_variant_routes_as_the_stack_says(prod, invocations_only, dev):
    assert routing_configs(prod) == [{"routingStrategy": "LEAST_OUTSTANDING_REQUESTS"}]
    assert routing_configs(invocations_only) == [{"routingStrategy": "RANDOM"}]
    assert routing_configs(dev) == [{"routingStrategy": "LEAST_OUTSTANDING_REQUESTS"}]


def test_a_variant_without_autoscaling_gets_no_target_and_no_policy(dev):
    assert dev.of_type(TARGET) == []
    assert dev.of_type(POLICY) == []


def test_botocore_accepts_every_value_the_program_emits(prod, invocations_only, concurrency_only):
    session = botocore.session.get_session()
    autoscaling = session.get_service_model("application-autoscaling")
    metric_types = set(autoscaling.shape_for("MetricType").enum)
    policy_types = set(autoscaling.shape_for("PolicyType").enum)
    namespaces = set(autoscaling.shape_for("ServiceNamespace").enum)
    dimensions = set(autoscaling.shape_for("ScalableDimension").enum)
    strategies = set(session.get_service_model("sagemaker").shape_for("RoutingStrategy").enum)
    for graph in (prod, invocations_only, concurrency_only):
        for policy in graph.of_type(POLICY):
            configuration = policy.inputs["targetTrackingScalingPolicyConfiguration"]
            assert configuration["predefinedMetricSpecification"]["predefinedMetricType"] in metric_types
            assert policy.inputs["policyType"] in policy_types
            assert policy.inputs["serviceNamespace"] in namespaces
            assert policy.inputs["scalableDimension"] in dimensions
        for routing in routing_configs(graph):
            assert routing["routingStrategy"] in strategies


def test_the_concurrency_alarm_exists_only_where_concurrency_is_followed(
    prod, concurrency_only, invocations_only, dev
):
    def has_alarm(graph: ResourceGraph) -> bool:
        return any(a.name == "monitoring-concurrency-per-model" for a in graph.of_type(ALARM))

    assert has_alarm(prod)
    assert has_alarm(concurrency_only)
    assert not has_alarm(invocations_only)
    assert not has_alarm(dev)  # not autoscaled: no concurrency target to watch
