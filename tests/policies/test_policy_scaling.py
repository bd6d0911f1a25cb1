"""The scaling rules of the pack: either metric counts as the variant autoscaling, a policy on a
metric that is not a variant's does not, a concurrency target past the measured capacity is
refused, and burstable variants stay unscaled whatever the metric. Each passes a graph and fails
one change, with the message a user sees."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest
from policy_checks import messages
from policy_graphs import happy_graph, mutate

from lib.evaluate import evaluate_stack
from lib.graph import ResourceGraph
from policies.runner import run_pack
from tools import plan

AUTOSCALING = "sagemaker-endpoint-autoscaling-policy"
CAPACITY = "appautoscaling-policy-concurrency-capacity"
BURSTABLE = "appautoscaling-target-burstable-variant"
POLICY = "serving-scaling-policy"
CONCURRENCY = "SageMakerVariantConcurrentRequestsPerModelHighResolution"


def _track(metric_type: str, target: float):
    def apply(inputs: dict) -> None:
        tracking = inputs["targetTrackingScalingPolicyConfiguration"]
        tracking["predefinedMetricSpecification"]["predefinedMetricType"] = metric_type
        tracking["targetValue"] = target

    return apply


def with_concurrency_policy(graph: ResourceGraph, target: float) -> ResourceGraph:
    """The happy graph plus a second policy on the same target, on high-resolution concurrency."""
    invocations = graph.named(POLICY)
    inputs = copy.deepcopy(dict(invocations.inputs))
    inputs["targetTrackingScalingPolicyConfiguration"] = {
        "targetValue": target,
        "predefinedMetricSpecification": {"predefinedMetricType": CONCURRENCY},
    }
    name = "serving-concurrency-scaling-policy"
    second = replace(invocations, name=name, urn=invocations.urn.replace(POLICY, name), inputs=inputs)
    return replace(graph, resources=(*graph.resources, second))


# sagemaker-endpoint-autoscaling-policy: either metric counts


@pytest.mark.parametrize("metric_type", ["SageMakerVariantInvocationsPerInstance", CONCURRENCY])
def test_a_policy_on_either_metric_counts_as_autoscaling(metric_type: str) -> None:
    graph = mutate(happy_graph(), POLICY, _track(metric_type, 5.0))
    assert messages(graph, AUTOSCALING) == []


def test_both_policies_on_one_target_count_as_autoscaling() -> None:
    assert messages(with_concurrency_policy(happy_graph(), 5.0), AUTOSCALING) == []


def test_a_policy_on_a_metric_of_no_variant_fails() -> None:
    graph = mutate(happy_graph(), POLICY, _track("SageMakerInferenceComponentInvocationsPerCopy", 5.0))
    assert messages(graph, AUTOSCALING) == [
        "scaling policy 'serving-scaling-policy' on endpoint 'serving-endpoint' variant 'AllTraffic' "
        "(ml.c5.large): it tracks SageMakerInferenceComponentInvocationsPerCopy, which measures no "
        "instance-backed endpoint variant, so it never scales one. Fix: track "
        "SageMakerVariantInvocationsPerInstance or SageMakerVariantConcurrentRequestsPerModelHighResolution "
        "(either counts)"
    ]


# appautoscaling-policy-concurrency-capacity


def test_a_concurrency_target_within_the_measured_capacity_passes() -> None:
    graph = with_concurrency_policy(happy_graph(), 10.0)
    assert messages(graph, CAPACITY, {"maxConcurrencyPerInstance": 10}) == []
    # not measured: nothing to judge
    assert messages(with_concurrency_policy(happy_graph(), 400.0), CAPACITY) == []


def test_a_concurrency_target_one_instance_cannot_hold_fails() -> None:
    graph = with_concurrency_policy(happy_graph(), 12.5)
    assert messages(graph, CAPACITY, {"maxConcurrencyPerInstance": 10}) == [
        f"scaling policy 'serving-concurrency-scaling-policy' on {CONCURRENCY} (targetValue): a target of "
        "12.5 concurrent requests per instance is more than the 10 one instance was measured to hold "
        "within the latency objective. Fix: set the target (concurrencyPerInstanceTarget) to 10 or less: "
        "make capacity derives it, and maxConcurrencyPerInstance beside it"
    ]


def test_the_capacity_rule_ignores_invocation_targets() -> None:
    # 600 invocations a minute is not 600 requests in flight
    assert messages(happy_graph(), CAPACITY, {"maxConcurrencyPerInstance": 10}) == []


# appautoscaling-target-burstable-variant: whatever the metric


def test_both_policies_on_a_burstable_variant_fail() -> None:
    graph = with_concurrency_policy(happy_graph("dev", instance_type="ml.t2.medium"), 5.0)
    found = messages(graph, BURSTABLE)
    assert len(found) == 3  # the target and both policies
    concurrency = "'serving-concurrency-scaling-policy' autoscales endpoint 'serving-endpoint'"
    assert any(concurrency in m for m in found)


# the shipped stack, through the plan's pack config


def test_prod_passes_with_both_policies_and_its_measured_capacity() -> None:
    pack_config = plan.stack_pack_config("prod")
    assert pack_config[CAPACITY] == {"maxConcurrencyPerInstance": 10}
    graph = evaluate_stack("prod")
    report = run_pack(graph, pack_config)
    for name in (AUTOSCALING, CAPACITY, BURSTABLE):
        assert report.result(name).violations == (), name
    # the same stack with a target past its measurement: refused by its config, and by the pack
    too_high = mutate(graph, "endpoint-concurrency-scaling-policy", _track(CONCURRENCY, 11.0))
    assert len(run_pack(too_high, pack_config).result(CAPACITY).violations) == 1
