"""The command: outputs, exit codes and clean errors (exit 2 with a message, never a traceback)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from lib.evaluate import REPO_ROOT
from tests.simulate.conftest import MODEL_URI
from tools.simulate.cli import EXIT_FAILED_OVER_LIMIT, EXIT_INPUT, EXIT_OK, main
from tools.simulate.constants import ConstantError, with_overrides

SEED_ARGS = [
    "--stack",
    "dev",
    "--set",
    "initialInstanceCount=2",
    "--set",
    'endpointInstanceQuotas={"ml.t2.medium": 4}',
    "--set",
    "totalInstanceQuota=4",
    "--set",
    f"modelUri={MODEL_URI}",
]


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    out = io.StringIO()
    code = main(args, out=out)
    return code, out.getvalue(), capsys.readouterr().err


def test_writes_json_and_png_with_the_documented_fields(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(
        [
            *SEED_ARGS,
            "--traffic",
            "step",
            "--minutes",
            "6",
            "--instance-rps",
            "300",
            "--lose-instance",
            "3",
            "--out",
            str(tmp_path),
        ],
        capsys,
    )
    assert code == EXIT_OK
    record = json.loads((tmp_path / "simulation.json").read_text())
    requests = record["summary"]["requests"]
    assert requests["offered"] == pytest.approx(requests["served"] + requests["failed"])
    assert set(requests["failures_by_reason"]) == {"timeout", "shed", "throttled"}
    assert record["summary"]["cost_usd"] > 0
    assert "minutes_over_latency_objective" in record["summary"]
    entry = record["timeline"][0]
    assert set(entry) >= {
        "t_seconds",
        "instances_in_service",
        "instances_pending",
        "offered_rps",
        "served_rps",
        "failed_rps",
        "p99_ms",
        "cpu_percent",
        "cpu_credit_balance",
    }
    assert [e["t_seconds"] for e in record["timeline"][:3]] == [0, 10, 20]
    assert (tmp_path / "simulation.png").stat().st_size > 10_000
    assert "instance 1 stops answering" in out or "stops answering" in out


def test_max_failed_percent_exceeded_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        [
            *SEED_ARGS,
            "--traffic",
            "step",
            "--minutes",
            "4",
            "--base-rps",
            "100",
            "--peak-rps",
            "2000",
            "--instance-rps",
            "300",
            "--max-failed-percent",
            "1",
            "--out",
            str(tmp_path),
        ],
        capsys,
    )
    assert code == EXIT_FAILED_OVER_LIMIT
    assert "over --max-failed-percent 1" in out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--traffic", "tsunami", "--instance-rps", "100"], "neither a preset"),
        (["--traffic", "step"], "give --instance-rps"),
        (["--traffic", "step", "--instance-rps", "100", "--set-constant", "launch_s=fast"], "not a number"),
        (
            ["--traffic", "step", "--instance-rps", "100", "--set-constant", "warp=1"],
            "unknown constant 'warp'",
        ),
        (["--traffic", "step", "--instance-rps", "100", "--routing", "ROUND_ROBIN"], "routing 'ROUND_ROBIN'"),
        (["--traffic", "step", "--instance-rps", "100", "--set", "instanceType=ml.t9.huge"], "instanceType"),
        (["--traffic", "step", "--capacity", "missing.json"], "cannot read capacity file"),
        (
            ["--traffic", "step", "--minutes", "30", "--instance-rps", "100", "--lose-az", "60"],
            "--lose-az 60 is at or after the end of the 30-minute run",
        ),
        (
            ["--traffic", "step", "--minutes", "30", "--instance-rps", "100", "--deploy", "30"],
            "--deploy 30 is at or after the end of the 30-minute run",
        ),
    ],
)
def test_bad_input_is_a_message_and_exit_2(
    extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run([*SEED_ARGS, *extra, "--out", str(tmp_path)], capsys)
    assert code == EXIT_INPUT
    assert message in err
    assert "Traceback" not in err


def test_a_malformed_option_exits_2_with_usage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*SEED_ARGS, "--traffic", "step", "--instance-rps", "-3", "--out", str(tmp_path)])
    assert exit_info.value.code == EXIT_INPUT
    assert "argument --instance-rps: must be positive, got -3" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("minute,rps\n0,10\n5,abc\n", "line 3"),
        ("0,10\n0,20\n", "is not after"),
        ("0,10,5\n", "expected 'minute,rps'"),
        ("0,-4\n", "finite and >= 0"),
        ("", "no 'minute,rps' rows"),
    ],
)
def test_bad_traffic_csv_is_a_message_and_exit_2(
    content: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_file = tmp_path / "traffic.csv"
    csv_file.write_text(content)
    code, _, err = _run(
        [*SEED_ARGS, "--traffic", str(csv_file), "--instance-rps", "100", "--out", str(tmp_path)], capsys
    )
    assert code == EXIT_INPUT
    assert message in err


def test_a_traffic_csv_drives_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv_file = tmp_path / "traffic.csv"
    csv_file.write_text("minute,rps\n0,50\n2,150\n")
    code, _, _ = _run(
        [*SEED_ARGS, "--traffic", str(csv_file), "--instance-rps", "300", "--out", str(tmp_path)], capsys
    )
    assert code == EXIT_OK
    record = json.loads((tmp_path / "simulation.json").read_text())
    assert record["summary"]["requests"]["offered"] == pytest.approx(50 * 120 + 150 * 60)


def test_constants_come_from_a_json_file_then_the_command_line(tmp_path: Path) -> None:
    path = tmp_path / "constants.json"
    path.write_text(json.dumps({"launch_s": 300, "termination_s": 60}))
    constants = with_overrides(["launch_s=200"], path)
    assert constants["launch_s"] == 200
    assert constants["termination_s"] == 60
    assert constants.overridden() == {"launch_s": 200.0, "termination_s": 60.0}
    path.write_text("[1, 2]")
    with pytest.raises(ConstantError, match="JSON object"):
        with_overrides([], path)


def test_a_reader_that_quits_early_keeps_the_verdict_and_prints_no_traceback(tmp_path: Path) -> None:
    # `make simulate ... | head -1` in a pull-request job: the gate's exit code must survive the pipe.
    command = [
        sys.executable,
        "-m",
        "tools.simulate",
        *SEED_ARGS,
        *("--traffic", "step", "--minutes", "4", "--base-rps", "100", "--peak-rps", "2000"),
        *("--instance-rps", "300", "--max-failed-percent", "1", "--out", str(tmp_path)),
    ]
    with subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as run:
        assert run.stdout is not None
        assert run.stderr is not None
        run.stdout.close()  # before the command prints anything: it prints only once it has simulated
        errors = run.stderr.read().decode()
        code = run.wait(timeout=120)
    assert code == EXIT_FAILED_OVER_LIMIT
    assert "Traceback" not in errors
    assert "BrokenPipeError" not in errors
    assert (tmp_path / "simulation.json").is_file()


def test_a_capacity_file_sets_the_service_model_in_the_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    steps = [
        {
            "users": u,
            "requests": 3000,
            "errors": 0,
            "rps": 100.0 * min(u, 2),
            "p50_ms": 10.0 * u,
            "p99_ms": 60.0 * u,
        }
        for u in (1, 2, 4, 8)
    ]
    capacity = tmp_path / "capacity.json"
    capacity.write_text(json.dumps({"steps": steps, "scaling": {"factor": 1.0}}))
    code, _, _ = _run(
        [
            *SEED_ARGS,
            "--traffic",
            "step",
            "--minutes",
            "4",
            "--capacity",
            str(capacity),
            "--out",
            str(tmp_path),
        ],
        capsys,
    )
    assert code == EXIT_OK
    model = json.loads((tmp_path / "simulation.json").read_text())["service_model"]
    assert model["workers"] == 2
    assert model["instance_rps"] == pytest.approx(200.0)
    assert model["service_time_scv"] > 1.0
    assert "queueing step(s)" in model["description"]
