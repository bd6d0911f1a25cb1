"""A deployed endpoint's metrics for the capacity tool: the GetMetricData call pinned with
botocore's Stubber (namespaces, metric names, EndpointName and VariantName), and the CPU it gives
each step."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import boto3
import pytest
from botocore.stub import ANY, Stubber

from tools.capacity import cli, cloudwatch

from .conftest import StubServer

ENDPOINT = "xgboost-endpoint-prod"
DIMENSIONS = [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": "AllTraffic"}]


def query(query_id: str, namespace: str, name: str, stat: str) -> dict:
    return {
        "Id": query_id,
        "Label": name,
        "MetricStat": {
            "Metric": {"Namespace": namespace, "MetricName": name, "Dimensions": DIMENSIONS},
            "Period": 60,
            "Stat": stat,
        },
        "ReturnData": True,
    }


# Written out, not built with the module's own code: this is what AWS must be asked.
EXPECTED_QUERIES = [
    query("cpu", "/aws/sagemaker/Endpoints", "CPUUtilization", "Average"),
    query("memory", "/aws/sagemaker/Endpoints", "MemoryUtilization", "Average"),
    query("invocations_per_instance", "AWS/SageMaker", "InvocationsPerInstance", "Sum"),
    query("model_latency", "AWS/SageMaker", "ModelLatency", "Average"),
    query("errors_5xx", "AWS/SageMaker", "Invocation5XXErrors", "Sum"),
]


def minute(offset: int, base: dt.datetime) -> dt.datetime:
    return base.replace(second=0, microsecond=0) + dt.timedelta(minutes=offset)


def response(base: dt.datetime, minutes: range, cpu: float) -> dict:
    stamps = [minute(m, base) for m in minutes]
    values = {"cpu": cpu, "memory": 31.0, "invocations_per_instance": 6000.0, "model_latency": 2500.0}
    values["errors_5xx"] = 0.0
    return {
        "MetricDataResults": [
            {
                "Id": key,
                "Label": key,
                "Timestamps": stamps,
                "Values": [value] * len(stamps),
                "StatusCode": "Complete",
            }
            for key, value in values.items()
        ]
    }


def test_get_metric_data_asks_for_both_namespaces_per_endpoint_and_variant():
    client = boto3.client(
        "cloudwatch", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    start = dt.datetime(2026, 12, 1, 10, 0, 20, tzinfo=dt.UTC)
    end = dt.datetime(2026, 12, 1, 10, 2, 5, tzinfo=dt.UTC)
    with Stubber(client) as stub:
        stub.add_response(
            "get_metric_data",
            response(start, range(3), cpu=300.0),
            {
                "MetricDataQueries": EXPECTED_QUERIES,
                "StartTime": dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC),
                "EndTime": dt.datetime(2026, 12, 1, 10, 3, tzinfo=dt.UTC),
                "ScanBy": "TimestampAscending",
            },
        )
        metrics = cloudwatch.read_metrics(client, ENDPOINT, start.timestamp(), end.timestamp())
        stub.assert_no_pending_responses()
    figures = cloudwatch.step_figures(metrics, start.timestamp(), end.timestamp(), vcpus=4)
    assert figures["cpu_utilization"] == 300.0
    assert figures["server_cpu_percent"] == 75.0  # CPUUtilization counts 100 per vCPU
    assert figures["model_latency_ms"] == 2.5  # ModelLatency is in microseconds
    assert figures["memory_utilization"] == 31.0
    assert metrics.to_record()["metrics"]["cpu"]["namespace"] == "/aws/sagemaker/Endpoints"


def test_metrics_not_yet_published_are_waited_for_then_read_again():
    client = boto3.client(
        "cloudwatch", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    start = dt.datetime(2026, 12, 1, 10, 0, 20, tzinfo=dt.UTC)
    end = dt.datetime(2026, 12, 1, 10, 1, 30, tzinfo=dt.UTC)
    naps: list[float] = []
    with Stubber(client) as stub:
        stub.add_response(
            "get_metric_data", response(start, range(1), cpu=100.0), None
        )  # last minute missing
        stub.add_response("get_metric_data", response(start, range(2), cpu=100.0), None)
        metrics = cloudwatch.wait_for_metrics(
            client,
            ENDPOINT,
            start.timestamp(),
            end.timestamp(),
            wait_seconds=60,
            sleep=naps.append,
            clock=lambda: 0.0,
        )
        stub.assert_no_pending_responses()
    assert naps == [15.0]
    assert metrics.covers(end.timestamp() - 1)


def test_capacity_run_with_an_endpoint_name_takes_each_steps_cpu_from_cloudwatch(
    stub_server: StubServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
):
    client = boto3.client(
        "cloudwatch", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    now = dt.datetime.now(dt.UTC)
    stub = Stubber(client)
    # ml.c5.xlarge has 4 vCPUs: CPUUtilization 240 is 60% of the instance.
    expected = {
        "MetricDataQueries": EXPECTED_QUERIES,
        "StartTime": ANY,
        "EndTime": ANY,
        "ScanBy": "TimestampAscending",
    }
    stub.add_response("get_metric_data", response(now, range(-2, 3), cpu=240.0), expected)
    stub.activate()
    monkeypatch.setattr(cli, "cloudwatch_client", lambda region: client)
    payload = tmp_path / "payload.csv"
    payload.write_text("1,2,3\n")
    code = cli.main(
        [
            "--url",
            stub_server(),
            "--payload",
            str(payload),
            "--endpoint-name",
            ENDPOINT,
            "--metrics-wait-seconds",
            "0",
            "--instance-type",
            "ml.c5.xlarge",
            "--max-users",
            "1",
            "--step-seconds",
            "0.5",
            "--warmup-seconds",
            "0.1",
            "--p99-ms",
            "5000",
            "--out",
            str(tmp_path),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    stub.assert_no_pending_responses()
    record = json.loads((tmp_path / cli.JSON_NAME).read_text())
    (step,) = record["steps"]
    assert step["server_cpu_percent"] == 60.0
    assert step["cloudwatch"]["model_latency_ms"] == 2.5
    assert record["cloudwatch"]["endpoint_name"] == ENDPOINT
    assert record["server_cpu_source"] == f"CloudWatch CPUUtilization of endpoint {ENDPOINT} / its vCPUs"
    assert record["operating_point"]["server_cpu_percent"] == 60.0
    assert "server CPU 60% <= 80%" in out
