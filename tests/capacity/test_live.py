"""A short, bounded capacity run against the real local container serving the demo model."""

from __future__ import annotations

import json
import math
import os
import re
import struct
import time
from pathlib import Path

import pytest

from tools.capacity import cli
from tools.serving import running_container

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_short_run_against_the_local_container_finds_capacity_and_saves_both_files(
    demo_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    started = time.monotonic()
    with running_container(demo_model_dir, workers=2) as container:
        code = cli.main(
            [
                "--url",
                f"{container.url}/invocations",
                "--start-users",
                "1",
                "--step-users",
                "3",
                "--max-users",
                "4",
                "--step-seconds",
                "2",
                "--warmup-seconds",
                "0.5",
                "--max-seconds",
                "20",
                "--p99-ms",
                "5000",
                "--base-rps",
                "50",
                "--peak-rps",
                "400",
                "--instance-type",
                "ml.c5.xlarge",
                "--local-cpus",
                "2",
                "--out",
                str(tmp_path),
            ]
        )
    out = capsys.readouterr().out
    assert time.monotonic() - started < 40
    assert code == 0, out

    record = json.loads((tmp_path / cli.JSON_NAME).read_text())
    assert [step["users"] for step in record["steps"]] == [1, 4]
    assert all(step["requests"] > 0 and step["p99_ms"] > 0 for step in record["steps"])
    assert record["model_version"]  # the container's X-Model-Version header
    # The server's CPU at every step: the Gunicorn master found from the port, with its workers.
    assert record["server_cpu_source"] == f"process tree of PID {container.pid}"
    assert all(step["server_cpu_percent"] > 0 for step in record["steps"])
    assert all(step["generator_cpu_percent"] > 0 for step in record["steps"])
    assert record["cpu_target_percent"] == 80
    assert record["operating_point_limit"] in {"none reached", "cpu target", "saturation"}
    chosen = record["operating_point"]
    assert chosen["rps"] > 0
    assert chosen["errors"] == 0
    assert chosen["p99_ms"] <= 5000
    assert chosen["rps"] == max(step["rps"] for step in record["steps"] if step["meets_objective"])

    # ml.c5.xlarge has 4 vCPUs, the local server 2: one instance is twice the measurement.
    assert record["scaling"]["factor"] == 2.0
    fleet = record["fleet"]
    assert fleet["instance_rps"] == pytest.approx(2 * chosen["rps"])
    assert fleet["target_invocations_per_minute"] == math.floor(fleet["instance_rps"] * 0.5 * 60)
    settings = record["stack_settings"]
    assert settings["invocationsPerInstanceTarget"] == fleet["target_invocations_per_minute"]
    assert settings["minInstances"] >= 3  # survives the loss of one of three AZs
    assert settings["maxInstances"] >= settings["minInstances"]

    assert f"xgboost-endpoint:invocationsPerInstanceTarget: {fleet['target_invocations_per_minute']}" in out
    assert "pulumi config set --stack prod --type int minInstances" in out
    assert "This is a local estimate" in out

    png = (tmp_path / cli.PNG_NAME).read_bytes()
    assert png.startswith(PNG_SIGNATURE)
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk comes first
    assert (width, height) == (1210, 990)  # 11 x 9 inches at 110 dpi
    assert len(png) > 20_000  # a drawn chart, not an empty canvas


def test_model_dir_starts_the_container_and_two_locust_workers_measure_it(
    demo_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    code = cli.main(
        [
            "--model-dir",
            str(demo_model_dir),
            "--workers",
            "1",
            "--generators",
            "2",
            "--max-users",
            "2",
            "--step-users",
            "1",
            "--step-seconds",
            "1",
            "--warmup-seconds",
            "0.2",
            "--p99-ms",
            "5000",
            "--instance-type",
            "ml.c5.xlarge",
            "--out",
            str(tmp_path),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    match = re.search(r"started the local container \(pid (\d+)\)", out)
    assert match is not None, out
    pid = int(match.group(1))
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # stopped when the run ended
    assert "a Locust master and 2 worker(s) on this machine" in out
    record = json.loads((tmp_path / cli.JSON_NAME).read_text())
    assert [step["users"] for step in record["steps"]] == [1, 2]
    assert all(step["requests"] > 0 for step in record["steps"])
    # The started container's CPU, and each step's busiest worker.
    assert record["server_cpu_source"] == f"process tree of PID {pid}"
    assert all(step["server_cpu_percent"] > 0 for step in record["steps"])
    assert all(step["generator_cpu_percent"] is not None for step in record["steps"])
    # One worker is one CPU's worth of server: ml.c5.xlarge (4 vCPUs) is four times the measurement.
    assert record["scaling"]["factor"] == 4.0
    assert record["operating_point"]["rps"] > 0
    assert record["settings"]["workers"] == 1
