"""Alarms with real dimensions and units, their encrypted topic, and the dashboard."""

from __future__ import annotations

import json

import pytest
from program_helpers import one

from components.monitoring import SHED_ALARM_DATAPOINTS, SHED_ALARM_PERIODS, vcpus
from stackcore import endpoint_metrics

ENDPOINT_DIMENSIONS = {"EndpointName": "xgboost-endpoint-prod", "VariantName": "AllTraffic"}


def alarm(graph, role):
    return graph.named(f"monitoring-{role}").inputs


def metric_dimensions(inputs):
    """Every dimension set the alarm reads, whether one metric or metric math."""
    if "metricQueries" in inputs:
        return [q["metric"]["dimensions"] for q in inputs["metricQueries"] if "metric" in q]
    return [inputs["dimensions"]]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_alarm_watches_real_dimensions_and_tells_the_topic(stack, request):
    graph = request.getfixturevalue(stack)
    topic = one(graph, "aws:sns/topic:Topic").outputs["arn"]
    alarms = graph.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    assert len(alarms) >= 10
    for resource in alarms:
        if resource.inputs.get("namespace", "").startswith(endpoint_metrics.SERVING_NAMESPACE_PREFIX):
            # A log metric filter's metric: no dimensions, this endpoint's own namespace.
            assert resource.inputs["namespace"] == f"xgbserve/xgboost-endpoint-{stack}", resource.name
            assert "dimensions" not in resource.inputs, resource.name
            assert resource.inputs["alarmActions"] == [topic]
            continue
        dimension_sets = metric_dimensions(resource.inputs)
        assert dimension_sets, resource.name
        assert all(d and all(v for v in d.values()) for d in dimension_sets), resource.name
        assert resource.inputs["alarmActions"] == [topic]
        assert resource.inputs["okActions"] == [topic]


def test_the_topic_is_encrypted_and_mails_the_on_call(prod):
    topic = one(prod, "aws:sns/topic:Topic")
    assert topic.inputs["kmsMasterKeyId"] == prod.named("encryption-key").outputs["arn"]
    subscription = one(prod, "aws:sns/topicSubscription:TopicSubscription")
    assert (subscription.inputs["protocol"], subscription.inputs["endpoint"]) == (
        "email",
        "ml-oncall@example.com",
    )


def test_the_key_lets_cloudwatch_publish_to_the_encrypted_topic(prod):
    statements = json.loads(prod.named("encryption-key").inputs["policy"])["Statement"]
    (cloudwatch,) = [s for s in statements if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}]
    assert cloudwatch["Action"] == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert prod.named("encryption-key").inputs["enableKeyRotation"] is True


def test_the_key_lets_cloudwatch_logs_encrypt_this_stacks_log_groups_only(prod):
    statements = json.loads(prod.named("encryption-key").inputs["policy"])["Statement"]
    (logs,) = [s for s in statements if s["Principal"] == {"Service": "logs.eu-west-1.amazonaws.com"}]
    assert logs["Sid"] == "CloudWatchLogsEncryptsTheStackLogGroups"
    assert logs["Condition"] == {
        "ArnLike": {
            "kms:EncryptionContext:aws:logs:arn": [
                "arn:aws:logs:eu-west-1:123456789012:log-group:/xgboost-endpoint/prod/*",
                "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/sagemaker/Endpoints/xgboost-endpoint-prod",
            ]
        }
    }
    assert set(logs["Action"]) <= {
        "kms:Encrypt*",
        "kms:Decrypt*",
        "kms:ReEncrypt*",
        "kms:GenerateDataKey*",
        "kms:Describe*",
    }
    assert [s["Sid"] for s in statements] == [
        "AccountAdministersAndDelegatesThroughIam",
        "CloudWatchAlarmsPublishToTheEncryptedTopic",
        "CloudWatchLogsEncryptsTheStackLogGroups",
    ]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_log_group_is_encrypted_with_the_stack_key_under_the_allowed_prefix(stack, request):
    graph = request.getfixturevalue(stack)
    key = graph.named("encryption-key").outputs["arn"]
    groups = graph.of_type("aws:cloudwatch/logGroup:LogGroup")
    assert len(groups) == 3
    for group in groups:
        assert group.inputs["kmsKeyId"] == key, group.name
        if group.name == "endpoint-logs":
            # SageMaker's name for the endpoint's log group; the key policy names it exactly.
            assert group.outputs["name"] == f"/aws/sagemaker/Endpoints/xgboost-endpoint-{stack}"
        else:
            assert group.outputs["name"].startswith(f"/xgboost-endpoint/{stack}/front-door-"), group.name


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_stack_creates_the_endpoints_log_group_before_the_endpoint(stack, request):
    graph = request.getfixturevalue(stack)
    group = graph.named("endpoint-logs")
    assert group.inputs["name"] == f"/aws/sagemaker/Endpoints/xgboost-endpoint-{stack}"
    assert group.inputs["kmsKeyId"] == graph.named("encryption-key").outputs["arn"]
    # logRetentionDays of each stack (Pulumi.<stack>.yaml), the same as the front door's groups.
    function_logs = graph.named("front-door-function-logs")
    assert group.inputs["retentionInDays"] == function_logs.inputs["retentionInDays"]
    assert group.inputs["retentionInDays"] == {"dev": 7, "prod": 90}[stack]
    endpoint = graph.named("endpoint-endpoint")
    assert graph.depends_on(endpoint, group)
    # The group SageMaker writes to is the one named after this endpoint.
    assert endpoint.outputs["name"] == group.inputs["name"].rsplit("/", 1)[1]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_shed_access_log_lines_become_a_metric(stack, request):
    graph = request.getfixturevalue(stack)
    (metric_filter,) = graph.of_type("aws:cloudwatch/logMetricFilter:LogMetricFilter")
    assert metric_filter.name == "endpoint-shed-requests"
    assert metric_filter.inputs["logGroupName"] == graph.named("endpoint-logs").outputs["name"]
    assert metric_filter.inputs["pattern"] == "{ $.shed IS TRUE }"
    assert metric_filter.inputs["metricTransformation"] == {
        "name": "ShedRequests",
        "namespace": f"xgbserve/xgboost-endpoint-{stack}",
        "value": "1",
        "defaultValue": "0",
        "unit": "Count",
    }


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_any_shed_in_most_of_five_minutes_is_an_alarm(stack, request):
    graph = request.getfixturevalue(stack)
    shed = alarm(graph, "shed-requests")
    assert (shed["metricName"], shed["namespace"]) == ("ShedRequests", f"xgbserve/xgboost-endpoint-{stack}")
    assert (shed["statistic"], shed["comparisonOperator"], shed["threshold"]) == (
        "Sum",
        "GreaterThanThreshold",
        0,
    )
    assert (shed["period"], shed["evaluationPeriods"], shed["datapointsToAlarm"]) == (
        60,
        SHED_ALARM_PERIODS,
        SHED_ALARM_DATAPOINTS,
    )
    assert (SHED_ALARM_PERIODS, SHED_ALARM_DATAPOINTS) == (5, 3)
    assert shed["treatMissingData"] == "notBreaching"
    advice = {"dev": "add instances", "prod": "autoscaling is not adding capacity"}[stack]
    assert advice in shed["alarmDescription"]


def test_model_latency_threshold_is_in_microseconds(prod):
    latency = alarm(prod, "model-latency")
    assert latency["metricName"] == "ModelLatency"
    assert latency["extendedStatistic"] == "p99"
    assert latency["threshold"] == 100 * 1000  # modelLatencyP99Ms 100 -> microseconds
    assert latency["dimensions"] == ENDPOINT_DIMENSIONS


@pytest.mark.parametrize(
    ("role", "metric", "threshold"),
    [
        ("invocation-5xx-rate", "Invocation5XXErrors", 1.0),
        ("invocation-4xx-rate", "Invocation4XXErrors", 10.0),
    ],
)
def test_error_rates_are_metric_math_over_the_invocations(prod, role, metric, threshold):
    inputs = alarm(prod, role)
    queries = {q["id"]: q for q in inputs["metricQueries"]}
    assert queries["errors"]["metric"]["metricName"] == metric
    assert queries["invocations"]["metric"]["metricName"] == "Invocations"
    assert queries["rate"]["expression"] == "IF(invocations > 0, 100 * errors / invocations, 0)"
    assert [q["id"] for q in inputs["metricQueries"] if q["returnData"]] == ["rate"]
    assert inputs["threshold"] == threshold


def test_cpu_threshold_counts_100_per_core(prod, dev):
    assert alarm(prod, "cpu")["threshold"] == 80 * vcpus("ml.c5.xlarge") == 320
    assert alarm(dev, "cpu")["threshold"] == 80 * vcpus("ml.t2.medium") == 160
    assert alarm(prod, "cpu")["namespace"] == "/aws/sagemaker/Endpoints"
    assert alarm(prod, "memory")["metricName"] == "MemoryUtilization"


def test_unknown_instance_types_are_refused_rather_than_guessed():
    with pytest.raises(ValueError, match=r"'ml\.p4d\.metal' is not a SageMaker hosting instance type"):
        vcpus("ml.p4d.metal")


def test_rare_hosting_types_get_their_cpu_threshold():
    # Sizes the old per-size table lacked: the program died with "no vCPU count known".
    rare = ("ml.m4.10xlarge", "ml.inf1.6xlarge", "ml.p6e-gb200.36xlarge")
    assert [vcpus(t) for t in rare] == [40, 24, 144]


def test_traffic_above_the_scaling_target_is_an_alarm(prod):
    inputs = alarm(prod, "invocations-per-instance")
    assert (inputs["metricName"], inputs["statistic"], inputs["period"]) == (
        "InvocationsPerInstance",
        "Sum",
        60,
    )
    assert inputs["threshold"] == 12000
    assert "autoscaling is not keeping up" in inputs["alarmDescription"]


def test_requests_queueing_above_the_concurrency_target_is_a_high_resolution_alarm(prod):
    inputs = alarm(prod, "concurrency-per-model")
    assert (inputs["namespace"], inputs["metricName"], inputs["statistic"]) == (
        "AWS/SageMaker",
        "ConcurrentRequestsPerModel",
        "Average",
    )
    assert inputs["dimensions"] == ENDPOINT_DIMENSIONS
    # The metric comes every 10 s; PutMetricAlarm takes 10, 20, 30 or a multiple of 60.
    assert inputs["period"] == 10
    assert (inputs["evaluationPeriods"], inputs["datapointsToAlarm"]) == (36, 33)
    assert inputs["threshold"] == 2
    assert "autoscaling is not keeping up" in inputs["alarmDescription"]


def test_the_dashboard_shows_invocations_and_concurrency_against_their_targets(prod):
    body = json.loads(one(prod, "aws:cloudwatch/dashboard:Dashboard").inputs["dashboardBody"])
    by_title = {w["properties"]["title"]: w["properties"] for w in body["widgets"] if w["type"] == "metric"}
    invocations = by_title["Invocations per instance (per minute) vs scaling target"]
    assert invocations["annotations"]["horizontal"][0]["value"] == 12000
    concurrency = by_title["Requests in flight per instance (10 s, high resolution) vs scaling target"]
    assert concurrency["annotations"]["horizontal"][0]["value"] == 2
    assert [row[1] for row in concurrency["metrics"]] == ["ConcurrentRequestsPerModel"] * 2
    assert all(row[-1]["period"] == 10 for row in concurrency["metrics"])
    placed = [(w["x"], w["y"]) for w in body["widgets"]]
    assert len(placed) == len(set(placed)), "two widgets in one place"


def test_a_fixed_fleet_is_told_to_add_instances(dev):
    assert "add instances" in alarm(dev, "invocations-per-instance")["alarmDescription"]


def test_a_fleet_stuck_at_its_maximum_is_an_alarm_only_when_autoscaled(prod, dev):
    inputs = alarm(prod, "fleet-at-max")
    assert inputs["comparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert inputs["threshold"] == 6
    assert inputs["evaluationPeriods"] == 30
    instances = next(q for q in inputs["metricQueries"] if q["returnData"])
    assert instances["expression"] == "IF(per_instance > 0, invocations / per_instance, 0)"
    assert not [
        r for r in dev.of_type("aws:cloudwatch/metricAlarm:MetricAlarm") if r.name.endswith("fleet-at-max")
    ]


def test_front_door_alarms_watch_this_function_and_stage(prod):
    function = prod.named("front-door-function").outputs["name"]
    for role in ("lambda-errors", "lambda-throttles"):
        assert alarm(prod, role)["dimensions"] == {"FunctionName": function}
    api = prod.named("front-door-api").outputs["name"]
    for role in ("api-5xx", "api-latency"):
        assert alarm(prod, role)["dimensions"] == {"ApiName": api, "Stage": "v1"}
    assert alarm(prod, "api-latency")["threshold"] == 1000  # API Gateway counts milliseconds
    assert alarm(prod, "api-5xx")["threshold"] == pytest.approx(0.01)  # 5XXError averages to a rate


def test_the_dashboard_shows_the_endpoint_and_every_alarm(prod):
    dashboard = one(prod, "aws:cloudwatch/dashboard:Dashboard")
    body = json.loads(dashboard.inputs["dashboardBody"])
    metric_rows = [
        row for w in body["widgets"] if w["type"] == "metric" for row in w["properties"]["metrics"]
    ]
    assert [
        "AWS/SageMaker",
        "ModelLatency",
        "EndpointName",
        "xgboost-endpoint-prod",
        "VariantName",
        "AllTraffic",
        {"stat": "p99"},
    ] in metric_rows
    assert ["xgbserve/xgboost-endpoint-prod", "ShedRequests", {"stat": "Sum"}] in metric_rows
    (alarm_widget,) = [w for w in body["widgets"] if w["type"] == "alarm"]
    alarm_arns = {r.outputs["arn"] for r in prod.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    assert set(alarm_widget["properties"]["alarms"]) == alarm_arns
