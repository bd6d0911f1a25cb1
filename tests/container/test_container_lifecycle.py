"""Start-up, shutdown and packaging: what SageMaker and `docker build` rely on."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from container_helpers import csv_of, request

from tools.serving import ContainerStartError, free_port, running_container

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTAINER = REPO_ROOT / "container"


def _http_response(sock: socket.socket) -> bytes:
    reply = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return reply
        reply += chunk
        head, sep, body = reply.partition(b"\r\n\r\n")
        match = re.search(rb"content-length: (\d+)", head, re.IGNORECASE)
        if sep and match and len(body) >= int(match.group(1)):
            return reply


def test_sigterm_lets_the_in_flight_request_finish_then_exits(
    model_dirs: dict[str, Path], rows: npt.NDArray[np.float32]
) -> None:
    body = csv_of(rows[:200])
    half = len(body) // 2
    with running_container(model_dirs["json"], workers=1) as server:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        sock.sendall(
            b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nConnection: close\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[:half]
        )
        # The only worker accepts in order, so once a later ping is answered the request above
        # has been accepted and is in flight (its handler is waiting for the rest of the body).
        assert request(server.url, "GET", "/ping").status == 200
        server.process.send_signal(signal.SIGTERM)
        # The rest of the body follows while the server is shutting down.
        result: list[bytes] = []
        reader = threading.Thread(target=lambda: result.append(_http_response(sock)))
        reader.start()
        sock.sendall(body[half:])
        reader.join(timeout=30)
        sock.close()
        exit_code = server.process.wait(timeout=30)
    assert result, "no response to the in-flight request"
    assert result[0].startswith(b"HTTP/1.1 200"), result
    assert result[0].count(b"\n") > 200  # 200 records answered
    assert exit_code == 0


def test_missing_model_fails_fast_with_a_clear_message(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(ContainerStartError) as caught, running_container(tmp_path, ready_timeout=20):
        pass
    assert "must contain a file named xgboost-model" in str(caught.value)
    assert time.monotonic() - started < 10


def test_corrupt_model_stops_the_server_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "xgboost-model").write_bytes(b"\x80\x04garbage that is not a pickle")
    with (
        pytest.raises(ContainerStartError) as caught,
        running_container(tmp_path, workers=1, ready_timeout=20),
    ):
        pass
    message = str(caught.value)
    assert "exited with code" in message
    assert "corrupt pickle" in message


def test_bad_worker_setting_is_a_clear_configuration_error(model_dirs: dict[str, Path]) -> None:
    env = {"SAGEMAKER_MODEL_SERVER_WORKERS": "0"}
    with (
        pytest.raises(ContainerStartError, match="SAGEMAKER_MODEL_SERVER_WORKERS=0 must be at least 1"),
        running_container(model_dirs["json"], env=env, ready_timeout=20),
    ):
        pass


def test_unknown_output_selection_stops_the_server_with_the_valid_keys(model_dirs: dict[str, Path]) -> None:
    env = {"SAGEMAKER_INFERENCE_OUTPUT": "predicted_label,probabilites"}
    with (
        pytest.raises(ContainerStartError) as caught,
        running_container(model_dirs["json"], workers=1, env=env, ready_timeout=20),
    ):
        pass
    assert "unknown output(s) probabilites" in str(caught.value)
    assert "predicted_label, labels, probability, probabilities" in str(caught.value)


def _python_beside_config(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        env=env,
        cwd=CONTAINER,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_gunicorn_config_checks(model_dirs: dict[str, Path]) -> None:
    env = {**os.environ, "MODEL_DIR": str(model_dirs["json"]), "BIND_HOST": "127.0.0.1", "PORT": "8080"}
    result = _python_beside_config(["-m", "gunicorn", "--check-config", "--config", "gunicorn.conf.py"], env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_master_started_without_serve_checks_the_model_and_exits_3(tmp_path: Path) -> None:
    # Without `serve` nothing started the check early: on_starting runs it before any worker forks.
    (tmp_path / "xgboost-model").write_bytes(b"this is not a model")
    env = {**os.environ, "MODEL_DIR": str(tmp_path), "BIND_HOST": "127.0.0.1", "PORT": str(free_port())}
    result = _python_beside_config(["-m", "gunicorn", "--config", "gunicorn.conf.py"], env)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "serve: the model does not load:" in result.stderr
    assert "Booting worker" not in result.stderr


def _last_line_printed(script: str, env: dict[str, str]) -> str:
    """The last line ``python -c script`` prints, run beside gunicorn.conf.py."""
    result = _python_beside_config(["-c", script], env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_reading_the_gunicorn_config_forks_no_model_check(model_dirs: dict[str, Path]) -> None:
    # `serve` starts the check; `gunicorn --check-config`, a HUP or a test reading the file must not
    # leave a child loading the model behind them.
    script = (
        "import runpy; runpy.run_path('gunicorn.conf.py');"
        "from xgbserve import preflight; print(len(preflight._started))"
    )
    env = {**os.environ, "MODEL_DIR": str(model_dirs["json"]), "BIND_HOST": "127.0.0.1"}
    assert _last_line_printed(script, env) == "0"


def test_serve_limits_openmp_threads_before_xgboost_is_loaded(model_dirs: dict[str, Path]) -> None:
    # OpenMP reads OMP_NUM_THREADS once, when XGBoost loads it: serve must set it before it imports
    # XGBoost for the model check, or 5 workers on 2 cores each get a pool of 2 threads.
    script = (
        "import ctypes, runpy, gunicorn.app.wsgiapp as wsgiapp\n"
        "def report(prog):\n"
        "    gomp = next(line.split()[-1] for line in open('/proc/self/maps') if 'libgomp' in line)\n"
        "    print(ctypes.CDLL(gomp).omp_get_max_threads())\n"
        "wsgiapp.run = report\n"
        "try:\n"
        "    runpy.run_path('serve', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
    )
    env = {
        key: value for key, value in os.environ.items() if key not in ("OMP_NUM_THREADS", "XGBOOST_NTHREAD")
    }
    env |= {"MODEL_DIR": str(model_dirs["json"]), "SAGEMAKER_MODEL_SERVER_WORKERS": "5"}
    expected = max(1, (os.cpu_count() or 1) // 5)
    assert _last_line_printed(script, env) == str(expected)


def test_gunicorn_settings_follow_the_environment(model_dirs: dict[str, Path]) -> None:
    script = (
        "import runpy, json; c = runpy.run_path('gunicorn.conf.py');"
        "print(json.dumps({k: c[k] for k in ('workers', 'timeout', 'bind', 'worker_class',"
        " 'control_socket_disable', 'graceful_timeout')}))"
    )
    env = {
        **os.environ,
        "MODEL_DIR": str(model_dirs["json"]),
        "SAGEMAKER_MODEL_SERVER_WORKERS": "3",
        "SAGEMAKER_MODEL_SERVER_TIMEOUT": "17",
        "PORT": "9123",
        "BIND_HOST": "127.0.0.1",
    }
    config = json.loads(_last_line_printed(script, env))
    assert config["workers"] == 3
    assert config["timeout"] == 17
    assert config["bind"] == ["127.0.0.1:9123"]
    assert config["worker_class"] == "xgbserve.worker.HealthFirstWorker"
    assert config["control_socket_disable"] is True
    assert config["graceful_timeout"] < 30  # SageMaker kills 30 s after SIGTERM


def test_serve_is_an_executable_python_script() -> None:
    serve = CONTAINER / "serve"
    assert os.access(serve, os.X_OK)
    assert serve.read_text().startswith("#!/usr/bin/env python3\n")


def _pins() -> dict[str, str]:
    pins = {}
    for raw in (CONTAINER / "requirements.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"{line!r} is not pinned with =="
            pins[name.strip()] = version.strip()
    return pins


def test_installed_packages_match_the_image_requirements() -> None:
    pins = _pins()
    assert set(pins) == {"flask", "gunicorn", "numpy", "xgboost-cpu"}
    for name, version in pins.items():
        assert metadata.version(name) == version, name


def test_image_requirements_import() -> None:
    code = "import flask, gunicorn, numpy, xgboost; print(xgboost.__version__)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == _pins()["xgboost-cpu"]


def test_dockerfile_is_lint_clean_and_runs_serve_as_non_root() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run(
        [hadolint, str(CONTAINER / "Dockerfile")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout
    text = (CONTAINER / "Dockerfile").read_text()
    assert 'CMD ["serve"]' in text
    assert re.search(r"^USER 10001", text, re.MULTILINE)
    final_stage = text.rsplit("\nFROM ", 1)[1]
    assert "apt-get" not in final_stage
    assert "gcc" not in final_stage
