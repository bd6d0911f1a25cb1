"""scalingMetric, concurrencyPerInstanceTarget, maxConcurrencyPerInstance and routingStrategy:
parsed and judged by the stack core (no Pulumi), each refusal naming the key and the fix."""

from __future__ import annotations

import pytest

from lib.evaluate import REPO_ROOT
from stackcore import StackConfigError, load_stack, rules
from stackcore.scaling import RoutingStrategy, ScalingMetric, predefined_metric_types


def refusal(stack: str, **overrides: str) -> StackConfigError:
    with pytest.raises(StackConfigError) as caught:
        load_stack(REPO_ROOT, stack, overrides)
    return caught.value


def test_prod_scales_on_both_metrics_and_routes_to_the_least_busy_instance():
    prod = load_stack(REPO_ROOT, "prod")
    assert prod.scaling_metric is ScalingMetric.BOTH
    assert prod.routing_strategy is RoutingStrategy.LEAST_OUTSTANDING_REQUESTS
    assert (prod.concurrency_per_instance_target, prod.max_concurrency_per_instance) == (2, 10)


def test_dev_keeps_the_default_metric_and_routes_like_prod():
    dev = load_stack(REPO_ROOT, "dev")
    assert (dev.autoscaling, dev.scaling_metric) == (False, ScalingMetric.INVOCATIONS)
    assert dev.routing_strategy is RoutingStrategy.LEAST_OUTSTANDING_REQUESTS


def test_a_scaling_metric_outside_the_three_is_refused_naming_them():
    error = refusal("prod", scalingMetric="latency")
    assert [str(p) for p in error.problems] == [
        "xgboost-endpoint:scalingMetric: 'latency' is not one of invocations, concurrency, both. "
        "Fix: choose one of invocations, concurrency, both"
    ]


def test_a_routing_strategy_outside_the_two_is_refused_naming_them():
    error = refusal("prod", routingStrategy="PREFIX_AWARE")
    assert [str(p) for p in error.problems] == [
        "xgboost-endpoint:routingStrategy: 'PREFIX_AWARE' is not one of LEAST_OUTSTANDING_REQUESTS, "
        "RANDOM. Fix: choose one of LEAST_OUTSTANDING_REQUESTS, RANDOM"
    ]


@pytest.mark.parametrize("metric", ["concurrency", "both"])
def test_a_concurrency_target_below_one_is_refused_when_it_is_followed(metric: str):
    error = refusal("prod", scalingMetric=metric, concurrencyPerInstanceTarget="0")
    assert [str(p) for p in error.problems] == [
        f"xgboost-endpoint:concurrencyPerInstanceTarget: 0: scalingMetric {metric} needs a target of 1 "
        "or more concurrent requests per instance. Fix: set it to the in-flight requests measured at the "
        "invocations target's throughput (make capacity derives it)"
    ]


def test_the_concurrency_target_is_not_judged_when_only_invocations_are_followed():
    overrides = {"scalingMetric": "invocations", "concurrencyPerInstanceTarget": "0"}
    settings = load_stack(REPO_ROOT, "prod", overrides)
    assert settings.scaling_metric is ScalingMetric.INVOCATIONS


def test_a_concurrency_target_one_instance_cannot_hold_is_refused():
    error = refusal("prod", concurrencyPerInstanceTarget="11")
    assert [str(p) for p in error.problems] == [
        "xgboost-endpoint:concurrencyPerInstanceTarget: a target of 11 concurrent requests per instance is "
        "more than the 10 one instance was measured to hold within the latency objective. Fix: set the "
        "target (concurrencyPerInstanceTarget) to 10 or less: make capacity derives it, and "
        "maxConcurrencyPerInstance beside it"
    ]


def test_a_target_at_the_measured_capacity_or_without_a_measurement_is_accepted():
    at_capacity = load_stack(REPO_ROOT, "prod", {"concurrencyPerInstanceTarget": "10"})
    assert at_capacity.concurrency_per_instance_target == 10
    unmeasured = {"concurrencyPerInstanceTarget": "40", "maxConcurrencyPerInstance": "0"}
    assert load_stack(REPO_ROOT, "prod", unmeasured).concurrency_per_instance_target == 40


def test_bounds_of_the_concurrency_figures():
    error = refusal("prod", maxConcurrencyPerInstance="-1")
    assert [str(p) for p in error.problems] == [
        "xgboost-endpoint:maxConcurrencyPerInstance: -1 requests. Fix: use 0 (not measured) or the "
        "in-flight requests make capacity measured"
    ]
    error = refusal("prod", concurrencyPerInstanceTarget=str(2**31), maxConcurrencyPerInstance="0")
    assert [str(p) for p in error.problems] == [
        "xgboost-endpoint:concurrencyPerInstanceTarget: 2147483648 is more than a target-tracking "
        "TargetValue kept to a 32-bit count takes (2147483647). Fix: choose at most 2147483647"
    ]


@pytest.mark.parametrize("metric", ["invocations", "concurrency", "both"])
def test_any_scaling_metric_on_a_burstable_type_is_refused(metric: str):
    error = refusal(
        "dev",
        autoscaling="true",
        maxInstances="2",
        scalingMetric=metric,
        totalInstanceQuota="10",
        endpointInstanceQuotas='{"ml.t2.medium": 10}',
    )
    assert error.keys == ("autoscaling",)
    assert "Application Auto Scaling refuses burstable variants" in str(error)


def test_each_metric_means_its_predefined_metric_types():
    assert predefined_metric_types(ScalingMetric.INVOCATIONS) == ("SageMakerVariantInvocationsPerInstance",)
    assert predefined_metric_types(ScalingMetric.CONCURRENCY) == (
        "SageMakerVariantConcurrentRequestsPerModelHighResolution",
    )
    assert predefined_metric_types(ScalingMetric.BOTH) == (
        "SageMakerVariantInvocationsPerInstance",
        "SageMakerVariantConcurrentRequestsPerModelHighResolution",
    )


def test_either_metric_counts_as_the_variant_autoscaling_and_nothing_else_does():
    for metric_type in predefined_metric_types(ScalingMetric.BOTH):
        assert rules.is_variant_scaling_metric(metric_type)
        assert rules.metric_not_for_a_variant(metric_type) is None
    finding = rules.metric_not_for_a_variant("SageMakerInferenceComponentInvocationsPerCopy")
    assert str(finding) == (
        "it tracks SageMakerInferenceComponentInvocationsPerCopy, which measures no instance-backed "
        "endpoint variant, so it never scales one. Fix: track SageMakerVariantInvocationsPerInstance or "
        "SageMakerVariantConcurrentRequestsPerModelHighResolution (either counts)"
    )


def test_botocore_knows_every_metric_type_and_routing_strategy_the_stack_can_set():
    import botocore.session  # noqa: PLC0415

    session = botocore.session.get_session()
    metric_types = session.get_service_model("application-autoscaling").shape_for("MetricType").enum
    assert set(predefined_metric_types(ScalingMetric.BOTH)) <= set(metric_types)
    strategies = session.get_service_model("sagemaker").shape_for("RoutingStrategy").enum
    assert {s.value for s in RoutingStrategy} <= set(strategies)
