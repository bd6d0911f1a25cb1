"""``python -m tools.watch`` against moto: the endpoint, its subnets and its metrics read every
tick, the API calls and metric dimensions pinned, a timeline JSON and a PNG written."""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from tools.watch import cli
from tools.watch.watcher import Clients

REGION = "eu-west-1"
ENDPOINT = "xgboost-endpoint-prod"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def aws() -> Iterator[list[str]]:
    """A moto account: the endpoint in two subnets and its metrics of two minutes ago; yields the subnets."""
    # Module-wide (moto's EC2 backend takes seconds to build); the readings change nothing in it.
    with pytest.MonkeyPatch.context() as monkeypatch, mock_aws():
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
        }.items():
            monkeypatch.setenv(name, value)
        ec2 = boto3.client("ec2", region_name=REGION)
        vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.40.{i}.0/24", AvailabilityZone=f"{REGION}{zone}")[
                "Subnet"
            ]["SubnetId"]
            for i, zone in ((1, "a"), (2, "b"))
        ]
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        sagemaker.create_model(
            ModelName="model-1",
            ExecutionRoleArn="arn:aws:iam::123456789012:role/sagemaker",
            PrimaryContainer={"Image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/xgb:1"},
            VpcConfig={"SecurityGroupIds": ["sg-12345678"], "Subnets": subnets},
        )
        sagemaker.create_endpoint_config(
            EndpointConfigName="config-1",
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": "model-1",
                    "InitialInstanceCount": 2,
                    "InstanceType": "ml.c5.xlarge",
                }
            ],
        )
        sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="config-1")
        cloudwatch = boto3.client("cloudwatch", region_name=REGION)
        dimensions = [
            {"Name": "EndpointName", "Value": ENDPOINT},
            {"Name": "VariantName", "Value": "AllTraffic"},
        ]
        stamp = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=2)
        for namespace, name, value in (
            ("/aws/sagemaker/Endpoints", "CPUUtilization", 240.0),
            ("/aws/sagemaker/Endpoints", "MemoryUtilization", 31.0),
            ("AWS/SageMaker", "InvocationsPerInstance", 6000.0),
            ("AWS/SageMaker", "ModelLatency", 2500.0),
            ("AWS/SageMaker", "Invocation5XXErrors", 0.0),
        ):
            cloudwatch.put_metric_data(
                Namespace=namespace,
                MetricData=[
                    {"MetricName": name, "Dimensions": dimensions, "Timestamp": stamp, "Value": value}
                ],
            )
        yield subnets


def recording_clients(calls: list[tuple[str, dict[str, Any]]]) -> Clients:
    clients = cli.default_clients(REGION)

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        calls.append((model.name, params))

    for client in (clients.sagemaker, clients.ec2, clients.cloudwatch):
        client.meta.events.register("provide-client-params", record)
    return clients


def watch_args(tmp_path: Path, *extra: str) -> argparse.Namespace:
    return cli.build_parser().parse_args(
        [
            "--endpoint-name",
            ENDPOINT,
            "--region",
            REGION,
            "--instance-type",
            "ml.c5.xlarge",
            "--out",
            str(tmp_path),
            *extra,
        ]
    )


def test_each_reading_asks_for_the_endpoint_its_subnets_and_its_metrics_by_endpoint_and_variant(
    aws: list[str], tmp_path: Path
):
    calls: list[tuple[str, dict[str, Any]]] = []
    out = io.StringIO()
    naps: list[float] = []
    cli.watch(
        watch_args(tmp_path, "--every", "15", "--max-readings", "2"),
        recording_clients(calls),
        out,
        sleep=naps.append,
    )
    operations = [name for name, _ in calls]
    # The subnets are found once from the endpoint's model; then each reading makes three calls.
    assert operations == [
        "DescribeEndpoint",
        "DescribeEndpointConfig",
        "DescribeModel",
        *["DescribeEndpoint", "DescribeSubnets", "GetMetricData"] * 2,
    ]
    assert naps == [15.0]
    params = dict(calls)
    assert params["DescribeEndpoint"] == {"EndpointName": ENDPOINT}
    assert params["DescribeSubnets"] == {"SubnetIds": aws}
    queries = params["GetMetricData"]["MetricDataQueries"]
    stats = {
        (q["MetricStat"]["Metric"]["Namespace"], q["MetricStat"]["Metric"]["MetricName"]) for q in queries
    }
    assert stats == {
        ("/aws/sagemaker/Endpoints", "CPUUtilization"),
        ("/aws/sagemaker/Endpoints", "MemoryUtilization"),
        ("AWS/SageMaker", "InvocationsPerInstance"),
        ("AWS/SageMaker", "ModelLatency"),
        ("AWS/SageMaker", "Invocation5XXErrors"),
    }
    for q in queries:
        assert q["MetricStat"]["Metric"]["Dimensions"] == [
            {"Name": "EndpointName", "Value": ENDPOINT},
            {"Name": "VariantName", "Value": "AllTraffic"},
        ]

    record = json.loads((tmp_path / cli.JSON_NAME).read_text())
    assert record["subnet_ids"] == aws
    first, second = record["readings"]
    assert first["status"] == "InService"
    assert (first["current_instances"], first["desired_instances"]) == (2, 2)
    assert set(first["free_addresses"]) == set(aws)
    assert all(count == 251 for count in first["free_addresses"].values())  # a /24 less AWS's 5
    assert first["metrics"]["cpu"] == 240.0
    assert first["metrics"]["model_latency"] == 2500.0
    assert second["at"] >= first["at"]
    lines = out.getvalue().splitlines()
    assert "InService instances 2/2" in lines[1]
    assert "CPU 240% (60% of 4 vCPUs)" in lines[1]
    assert "model latency 2.5 ms" in lines[1]
    assert "stopped (2 readings taken)" in lines[-1]
    png = (tmp_path / cli.PNG_NAME).read_bytes()
    assert png.startswith(PNG_SIGNATURE)
    assert len(png) > 20_000


def test_watch_stops_when_the_watched_process_exits(aws: list[str], tmp_path: Path):
    # Reaped in a thread: a zombie still answers kill(pid, 0).
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(2.5)"])
    threading.Thread(target=child.wait, daemon=True).start()
    out = io.StringIO()
    cli.watch(
        watch_args(tmp_path, "--every", "1", "--until-pid", str(child.pid)),
        cli.default_clients(REGION),
        out,
    )
    assert f"stopped (process {child.pid} exited)" in out.getvalue()
    readings = json.loads((tmp_path / cli.JSON_NAME).read_text())["readings"]
    assert 1 <= len(readings) <= 10


def test_command_line_reads_the_endpoint_name_and_region_from_the_stack(
    aws: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    code = cli.main(["--stack", "prod", "--every", "1", "--max-readings", "1", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"watch: endpoint {ENDPOINT} (AllTraffic) in {REGION}" in out
    assert json.loads((tmp_path / cli.JSON_NAME).read_text())["vcpus_per_instance"] > 0


def test_an_endpoint_that_does_not_exist_is_one_clear_line(
    aws: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    code = cli.main(
        ["--endpoint-name", "nope", "--region", REGION, "--max-readings", "1", "--out", str(tmp_path)]
    )
    assert code == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("watch: error: cannot read endpoint nope")
    assert "Traceback" not in err


class ThrottledOnce:
    """CloudWatch that refuses the first GetMetricData as AWS does when a caller goes too fast."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.refused = False

    def get_metric_data(self, **params: Any) -> Any:
        if not self.refused:
            self.refused = True
            raise ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "GetMetricData")
        return self.real.get_metric_data(**params)


def test_a_throttled_reading_is_reported_and_the_watch_goes_on_to_its_timeline(
    aws: list[str], tmp_path: Path
):
    real = cli.default_clients(REGION)
    clients = Clients(sagemaker=real.sagemaker, ec2=real.ec2, cloudwatch=ThrottledOnce(real.cloudwatch))
    out = io.StringIO()
    cli.watch(
        watch_args(tmp_path, "--every", "15", "--max-readings", "2"), clients, out, sleep=lambda _: None
    )
    assert "watch: reading 1 failed: An error occurred (Throttling)" in out.getvalue()
    assert len(json.loads((tmp_path / cli.JSON_NAME).read_text())["readings"]) == 2
    assert (tmp_path / cli.PNG_NAME).read_bytes().startswith(PNG_SIGNATURE)


@pytest.mark.parametrize("every", ["0", "0.5", "-1"])
def test_an_interval_under_a_second_is_refused(every: str, capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as exit_info:
        cli.build_parser().parse_args(["--every", every])
    assert exit_info.value.code == 2
    assert f"must be at least 1 s, got {every}" in capsys.readouterr().err


def test_a_missing_stack_is_named_rather_than_an_aws_error(capsys: pytest.CaptureFixture[str]):
    assert cli.main(["--stack", "nosuch", "--max-readings", "1"]) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert "no stack file Pulumi.nosuch.yaml" in err
    assert "or give --endpoint-name and --region" in err
