"""A short, bounded capacity run against the real local container serving the demo model."""

from __future__ import annotations

import json
import math
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
                "500",
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
    chosen = record["operating_point"]
    assert chosen["rps"] > 0
    assert chosen["errors"] == 0
    assert chosen["p99_ms"] <= 500
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
    assert (width, height) == (1210, 770)  # 11 x 7 inches at 110 dpi
    assert len(png) > 20_000  # a drawn chart, not an empty canvas
