"""The capacity command's errors and bounds: what a user sees, never a traceback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tools.capacity import cli
from tools.serving import free_port

from .conftest import REPO_ROOT, StubServer

# A short ramp: the engine is real Locust, so each step costs real seconds. The objective is loose
# unless a test is about latency: on a shared, loaded machine a stand-in's p99 can pass 100 ms.
QUICK = ["--start-users", "1", "--step-users", "1", "--max-users", "2", "--warmup-seconds", "0.2"]
LOOSE = ["--p99-ms", "5000"]


def closed_port_url() -> str:
    """A loopback URL nobody listens on: bind a port, then close it without listening."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/invocations"


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_unreachable_server_is_a_clear_error_and_exit_2(capsys):
    code, _, err = run(["--url", closed_port_url(), "--step-seconds", "1"], capsys)
    assert code == cli.EXIT_ERROR
    assert "cannot reach http://127.0.0.1:" in err
    assert "connection refused (is the server running on that port?)" in err


def test_unreachable_server_from_the_shell_prints_one_line_and_no_traceback():
    result = subprocess.run(
        [sys.executable, "-m", "tools.capacity", "--url", closed_port_url()],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("capacity: error: cannot reach")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://127.0.0.1/invocations", "is not an http(s) URL with a host"),
        ("127.0.0.1:8080/invocations", "is not an http(s) URL with a host"),
        ("http://127.0.0.1:8080", "has no path"),
    ],
)
def test_malformed_url_is_refused_before_any_load(url, message, capsys):
    code, _, err = run(["--url", url], capsys)
    assert code == cli.EXIT_ERROR
    assert message in err


def test_server_refusing_the_payload_stops_the_run_before_the_load_test(stub_server: StubServer, capsys):
    url = stub_server(status=415, body=b"unsupported content type: text/plain")
    code, out, err = run(["--url", url, "--payload", __file__, "--content-type", "text/plain"], capsys)
    assert code == cli.EXIT_ERROR
    assert "answered HTTP 415" in err
    assert "unsupported content type: text/plain" in err
    assert "users" not in out  # no ramp started


def test_instance_type_without_a_vcpu_figure_asks_for_a_scale_factor(capsys):
    code, _, err = run(["--url", closed_port_url(), "--instance-type", "ml.c5.huge"], capsys)
    assert code == cli.EXIT_ERROR
    assert "no vCPU figure for 'ml.c5.huge': give --scale" in err


def test_peak_below_base_load_is_refused(capsys):
    code, _, err = run(["--url", closed_port_url(), "--base-rps", "100", "--peak-rps", "10"], capsys)
    assert code == cli.EXIT_ERROR
    assert "peak load (10.0 req/s) is below the base load (100.0 req/s)" in err


def test_missing_payload_file_is_named(tmp_path: Path, capsys):
    code, _, err = run(["--url", closed_port_url(), "--payload", str(tmp_path / "nope.csv")], capsys)
    assert code == cli.EXIT_ERROR
    assert "cannot read --payload" in err
    assert "nope.csv" in err


def test_model_dir_without_a_model_says_how_to_make_one(tmp_path: Path, capsys):
    code, _, err = run(["--model-dir", str(tmp_path)], capsys)
    assert code == cli.EXIT_ERROR
    assert "has no xgboost-model" in err
    assert "python -m tools.demo_model --out" in err


def test_time_budget_too_short_for_one_step_is_refused(capsys):
    code, _, err = run(["--url", closed_port_url(), "--max-seconds", "5", "--step-seconds", "10"], capsys)
    assert code == cli.EXIT_ERROR
    assert "cannot fit one step" in err


def test_non_positive_ramp_setting_is_an_argument_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--url", "http://127.0.0.1:1/invocations", "--max-users", "0"])
    assert exit_info.value.code == 2
    assert "must be 1 or more" in capsys.readouterr().err


def test_server_failing_under_load_gives_no_capacity_but_saves_the_run(
    stub_server: StubServer, tmp_path: Path, capsys
):
    url = stub_server(fail_after=1)
    code, out, _ = run(["--url", url, "--out", str(tmp_path), "--step-seconds", "0.5", *QUICK], capsys)
    assert code == cli.EXIT_NO_CAPACITY
    assert "No step met the objective" in out
    assert "HTTP 503" in out
    record = json.loads((tmp_path / cli.JSON_NAME).read_text())
    (first,) = record["steps"]
    assert first["errors"] == first["requests"] > 0
    assert first["error_rate"] == 1.0
    assert set(first["error_kinds"]) == {"HTTP 503"}
    assert record["operating_point"] is None
    assert (tmp_path / cli.PNG_NAME).is_file()


def test_server_slower_than_the_objective_stops_the_ramp_at_the_first_step(
    stub_server: StubServer, tmp_path: Path, capsys
):
    url = stub_server(delay=0.03)
    code, out, _ = run(
        ["--url", url, "--p99-ms", "10", "--out", str(tmp_path), "--step-seconds", "0.5", *QUICK], capsys
    )
    assert code == cli.EXIT_NO_CAPACITY
    assert "No step met the objective" in out
    record = json.loads((tmp_path / cli.JSON_NAME).read_text())
    assert [step["users"] for step in record["steps"]] == [1]  # ramp stopped early
    assert record["steps"][0]["p99_ms"] > 10
    assert record["stop_reason"].startswith("objective broken at 1 user: p99")
    assert record["objective_broken"] is True
    assert record["operating_point"] is None
    assert record["stack_settings"] is None
    assert (tmp_path / cli.PNG_NAME).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_request_budget_ends_the_ramp_early(stub_server: StubServer, tmp_path: Path, capsys):
    url = stub_server()
    code, out, _ = run(
        [
            "--url",
            url,
            "--max-requests",
            "100",
            "--step-seconds",
            "20",
            "--out",
            str(tmp_path),
            *QUICK,
            *LOOSE,
        ],
        capsys,
    )
    assert code == 0
    assert "stopped: request budget of 100 requests reached" in out
    assert "the server may sustain more than this: raise --max-users" in out
    record = json.loads((tmp_path / cli.JSON_NAME).read_text())
    (only,) = record["steps"]
    assert only["seconds"] < 20  # the window closed at the budget, not at the end of the step


def test_time_budget_ends_the_ramp_before_a_step_that_would_overrun(
    stub_server: StubServer, tmp_path: Path, capsys
):
    url = stub_server()
    args = [
        "--url",
        url,
        "--step-seconds",
        "1",
        "--max-seconds",
        "1.5",
        "--out",
        str(tmp_path),
        *QUICK,
        *LOOSE,
    ]
    code, out, _ = run(args, capsys)
    assert code == 0
    assert "stopped: time budget of 1.5 s would be exceeded by the 2-user step" in out
    record = json.loads((tmp_path / cli.JSON_NAME).read_text())
    assert [step["users"] for step in record["steps"]] == [1]


def test_a_master_address_without_generators_is_refused_before_any_load(capsys):
    code, _, err = run(["--url", closed_port_url(), "--master-bind", "0.0.0.0"], capsys)
    assert code == cli.EXIT_ERROR
    assert "--master-bind and --master-port set up a Locust master: give --generators N" in err


def test_a_server_pid_that_does_not_exist_is_refused_before_any_load(capsys):
    code, _, err = run(["--url", closed_port_url(), "--server-pid", str(2**22 + 1)], capsys)
    assert code == cli.EXIT_ERROR
    assert f"--server-pid {2**22 + 1}: no such process" in err


def test_workers_that_never_connect_are_a_clear_error(stub_server: StubServer, tmp_path: Path, capsys):
    payload = tmp_path / "payload.csv"
    payload.write_text("1,2,3\n")
    args = [
        "--url",
        stub_server(),
        "--payload",
        str(payload),
        "--generators",
        "2",
        "--master-bind",
        "127.0.0.1",
    ]
    code, _, err = run([*args, "--master-port", str(free_port()), "--worker-wait-seconds", "1"], capsys)
    assert code == cli.EXIT_ERROR
    assert "0 of 2 Locust workers connected to 127.0.0.1:" in err
    assert "within 1 s" in err


@pytest.mark.parametrize("value", ["nan", "inf", "two"])
def test_a_step_length_that_is_not_a_finite_number_is_a_usage_error(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.build_parser().parse_args(["--url", "http://127.0.0.1:8080/invocations", "--step-seconds", value])
    assert exit_info.value.code == 2
    assert "--step-seconds: must be" in capsys.readouterr().err
