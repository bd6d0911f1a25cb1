"""The knee of a server with a known hard ceiling, found within 5%: with one Locust process and
with a Locust master and two workers on loopback. Real load, a few seconds each."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tools.capacity import cli
from tools.serving import free_port

from .conftest import REPO_ROOT, CeilingServer, StubServer

WORKERS = 20
SERVICE_SECONDS = 0.25
CEILING_RPS = WORKERS / SERVICE_SECONDS  # 80 req/s from 20 users on
# Past 20 users the throughput stays at the ceiling and latency grows with the queue (users x
# 12.5 ms on average). Planned steps 2, 14, 26, 38: 14 users is good but gives 56 req/s (70% of the
# ceiling); 38 (~475 ms on average) breaks the 450 ms objective, and 26 sits near it. The bisection
# between the last good and the first bad step lands on 20 users or more: on the ceiling. The
# objective leaves 200 ms above the service time for a loaded machine's scheduling noise.
RAMP = ["--start-users", "2", "--step-users", "12", "--max-users", "38", "--p99-ms", "450"]
SHORT = ["--step-seconds", "3", "--warmup-seconds", "1", "--max-seconds", "90", "--cpu-target", "100"]


def run(args: list[str], out_dir: Path, capsys: pytest.CaptureFixture[str]) -> tuple[dict, str]:
    payload = out_dir / "payload.csv"  # not the demo rows: importing XGBoost for them costs seconds
    payload.write_text("1,2,3\n")
    code = cli.main(
        [
            *args,
            *RAMP,
            *SHORT,
            "--payload",
            str(payload),
            "--instance-type",
            "ml.c5.xlarge",
            "--out",
            str(out_dir),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads((out_dir / cli.JSON_NAME).read_text()), out


@pytest.mark.parametrize("generators", [0, 2], ids=["one-process", "two-workers"])
def test_hard_ceiling_is_found_within_five_percent(
    generators: int, ceiling_server: CeilingServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    url = ceiling_server(workers=WORKERS, service_seconds=SERVICE_SECONDS)
    record, out = run(["--url", url, "--generators", str(generators)], tmp_path, capsys)
    planned = [step["users"] for step in record["steps"] if step["phase"] == "ramp"]
    assert planned[:2] == [2, 14]
    assert any(step["phase"] == "refine" for step in record["steps"]), out
    chosen = record["operating_point"]
    assert chosen["users"] >= WORKERS, out
    assert chosen["rps"] == pytest.approx(CEILING_RPS, rel=0.05), out
    assert record["operating_point_limit"] == "latency objective"
    assert record["generators"] == generators
    assert "(knee refinement)" in out
    if generators:
        assert "a Locust master and 2 worker(s) on this machine" in out
    # The busiest generator's CPU is there for every step, from each worker in the distributed case.
    assert all(step["generator_cpu_percent"] is not None for step in record["steps"])


def test_a_worker_started_apart_joins_a_master_bound_for_remote_workers(
    stub_server: StubServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    port = free_port()
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tools.capacity",
            "--worker",
            "--master-host",
            "127.0.0.1",
            "--master-port",
            str(port),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        payload = tmp_path / "payload.csv"
        payload.write_text("1,2,3\n")
        code = cli.main(
            [
                "--url",
                stub_server(),
                "--payload",
                str(payload),
                "--generators",
                "1",
                "--master-bind",
                "127.0.0.1",
                "--master-port",
                str(port),
                "--worker-wait-seconds",
                "30",
                "--max-users",
                "2",
                "--step-seconds",
                "0.5",
                "--warmup-seconds",
                "0.1",
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
        assert "a Locust master and 1 worker(s) connecting to 127.0.0.1" in out
        record = json.loads((tmp_path / cli.JSON_NAME).read_text())
        assert all(step["requests"] > 0 for step in record["steps"])
        assert worker.wait(timeout=30) == 0  # the master told it to quit
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
