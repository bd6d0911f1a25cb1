"""``make local`` (``python -m tools.local``) as a user runs it: a subprocess, its printed banner,
the printed curl command, and a clean stop on SIGINT or SIGTERM."""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tools.local import DEFAULT_PORT, LocalSettings, LocalSettingsError

from .support import REPO_ROOT

START_DEADLINE_SECONDS = 60.0
STOP_DEADLINE_SECONDS = 40.0


@dataclass
class LocalRun:
    """A running ``python -m tools.local`` and the lines it has printed so far."""

    process: subprocess.Popen[str]
    lines: queue.Queue[str]
    seen: list[str]

    def next_line(self, deadline: float) -> str:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError("no output before the deadline; so far:\n" + "\n".join(self.seen))
        try:
            line = self.lines.get(timeout=remaining)
        except queue.Empty:
            raise AssertionError("no output before the deadline; so far:\n" + "\n".join(self.seen)) from None
        self.seen.append(line)
        return line

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            line = self.next_line(deadline)
            match = re.search(pattern, line)
            if match:
                return match


@dataclass(frozen=True)
class Banner:
    url: str
    api_key: str
    container_pid: int
    digit: int
    curl: str


def _pump(stream: Iterator[str], lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))


@pytest.fixture
def start_local(demo_model_dir: Path, tmp_path: Path) -> Iterator[object]:
    """Starts ``python -m tools.local`` on free ports; kills it at the end if a test did not stop it."""
    runs: list[LocalRun] = []

    def start(extra_env: Mapping[str, str] | None = None) -> LocalRun:
        env = {
            **os.environ,
            "MODEL_DIR": str(demo_model_dir),
            "PORT": "0",
            "LOCAL_LOG_DIR": str(tmp_path / "logs"),
            "SAGEMAKER_MODEL_SERVER_WORKERS": "2",
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("LOCAL_API_KEY", None)
        env.update(extra_env or {})
        process = subprocess.Popen(
            [sys.executable, "-m", "tools.local"],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines: queue.Queue[str] = queue.Queue()
        assert process.stdout is not None
        threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True).start()
        run = LocalRun(process, lines, [])
        runs.append(run)
        return run

    yield start
    for run in runs:
        if run.process.poll() is None:
            run.process.send_signal(signal.SIGTERM)
            try:
                run.process.wait(timeout=STOP_DEADLINE_SECONDS)
            except subprocess.TimeoutExpired:
                run.process.kill()
                run.process.wait()


def read_banner(run: LocalRun) -> Banner:
    deadline = time.monotonic() + START_DEADLINE_SECONDS
    fields: dict[str, str] = {}
    while "curl" not in fields:
        line = run.next_line(deadline)
        if match := re.match(r"^\s+URL:\s+(\S+)$", line):
            fields["url"] = match[1]
        elif match := re.match(r"^\s+API key:\s+(\S+)$", line):
            fields["key"] = match[1]
        elif match := re.match(r"^\s+container:\s+\S+ pid (\d+) ", line):
            fields["pid"] = match[1]
        elif match := re.search(r"a digits image of a (\d)", line):
            fields["digit"] = match[1]
        elif line.lstrip().startswith("curl "):
            fields["curl"] = line.strip()
    return Banner(
        url=fields["url"],
        api_key=fields["key"],
        container_pid=int(fields["pid"]),
        digit=int(fields["digit"]),
        curl=fields["curl"],
    )


def run_curl_command(command: str) -> tuple[int, bytes]:
    """Do what the printed curl command does (its -H headers, --data-binary body, URL) with urllib."""
    tokens = shlex.split(command)
    assert tokens[0] == "curl"
    headers: dict[str, str] = {}
    body = b""
    index = 1
    while index < len(tokens) - 1:
        option = tokens[index]
        if option == "-H":
            name, _, value = tokens[index + 1].partition(":")
            headers[name.strip()] = value.strip()
            index += 2
        elif option == "--data-binary":
            body = tokens[index + 1].encode()
            index += 2
        else:
            assert option.startswith("-"), f"unexpected argument {option!r} in {command}"
            index += 1
    return http_post(tokens[-1], body, headers)


def http_post(url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (children, grandchildren...), from /proc."""
    found: set[int] = set()
    pending = [pid]
    while pending:
        parent = pending.pop()
        for children in Path(f"/proc/{parent}/task").glob("*/children"):
            try:
                pids = {int(child) for child in children.read_text().split()}
            except OSError:  # the task ended while we looked
                continue
            pending.extend(pids - found)
            found |= pids
    return found


def pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize(
    ("stop_signal", "api_key"),
    [(signal.SIGINT, None), (signal.SIGTERM, "key-from-the-environment")],
    ids=["sigint-generated-key", "sigterm-key-from-env"],
)
def test_local_serves_the_printed_curl_and_stops_everything_on_a_signal(start_local, stop_signal, api_key):
    run = start_local({"LOCAL_API_KEY": api_key} if api_key else None)
    banner = read_banner(run)
    if api_key:
        assert banner.api_key == api_key
    assert banner.url.startswith("http://127.0.0.1:")

    status, body = run_curl_command(banner.curl)
    assert status == 200, body
    probabilities = [float(value) for value in body.decode().strip().split(",")]
    assert len(probabilities) == 10
    assert probabilities.index(max(probabilities)) == banner.digit
    log = json.loads(run.wait_for(r"^\{.*\"status\":200", timeout=10).string)
    assert log["endpoint"] == "xgboost-local"

    no_key_status, no_key_body = http_post(banner.url, b"1,2,3", {"Content-Type": "text/csv"})
    assert no_key_status == 401
    assert b"x-api-key" in no_key_body

    # Gunicorn forks its workers one after another: wait (bounded) until both are there.
    deadline = time.monotonic() + 20
    while len(processes := descendants(run.process.pid)) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert banner.container_pid in processes
    assert len(processes) >= 3  # the Gunicorn master and its two workers
    run.process.send_signal(stop_signal)
    assert run.process.wait(timeout=STOP_DEADLINE_SECONDS) == 0
    run.wait_for(rf"Stopped \({stop_signal.name}\)", timeout=5)
    for pid in processes:
        assert not pid_exists(pid), f"process {pid} outlived make local"


def test_container_that_dies_ends_the_run_with_a_message_and_exit_1(start_local):
    run = start_local()
    banner = read_banner(run)
    workers = descendants(banner.container_pid)
    assert workers  # /ping answered, so at least one worker is up

    os.kill(banner.container_pid, signal.SIGKILL)

    assert run.process.wait(timeout=STOP_DEADLINE_SECONDS) == 1
    message = run.wait_for(r"the container exited", timeout=5).string
    assert "container.log" in message
    # Orphaned Gunicorn workers notice their master is gone and leave on their own.
    deadline = time.monotonic() + 20
    while any(pid_exists(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(pid_exists(pid) for pid in workers)


def test_front_door_port_in_use_exits_2_naming_port_before_starting_the_container(start_local):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = start_local({"PORT": str(port)})

        assert run.process.wait(timeout=START_DEADLINE_SECONDS) == 2
    output = "\n".join([*run.seen, *iter_remaining(run)])
    assert f"PORT={port}: cannot listen" in output
    assert "choose another PORT" in output
    assert "container" not in output


def iter_remaining(run: LocalRun) -> list[str]:
    remaining: list[str] = []
    while True:
        try:
            remaining.append(run.lines.get(timeout=2))
        except queue.Empty:
            return remaining


def test_missing_model_exits_2_and_says_how_to_make_one(start_local, tmp_path):
    run = start_local({"MODEL_DIR": str(tmp_path / "empty")})

    assert run.process.wait(timeout=30) == 2
    message = run.wait_for(r"MODEL_DIR", timeout=5).string
    assert "make demo-model" in message


# --- settings, without a subprocess -----------------------------------------------------------


def test_settings_default_to_port_8080_free_internal_ports_and_a_fresh_key(demo_model_dir):
    first = LocalSettings.from_env({"MODEL_DIR": str(demo_model_dir)})
    second = LocalSettings.from_env({"MODEL_DIR": str(demo_model_dir)})

    assert first.port == DEFAULT_PORT == 8080
    assert first.runtime_port == first.container_port == 0
    assert len(first.api_key) >= 24
    assert first.api_key != second.api_key


@pytest.mark.parametrize(
    ("name", "value"), [("PORT", "eighty"), ("PORT", "70000"), ("LOCAL_RUNTIME_PORT", "-1")]
)
def test_port_that_is_not_a_port_is_refused_naming_the_setting(demo_model_dir, name, value):
    with pytest.raises(LocalSettingsError, match=f"{name}='{value}' is not a port"):
        LocalSettings.from_env({"MODEL_DIR": str(demo_model_dir), name: value})


def test_api_key_with_spaces_is_refused(demo_model_dir):
    with pytest.raises(LocalSettingsError, match="LOCAL_API_KEY"):
        LocalSettings.from_env({"MODEL_DIR": str(demo_model_dir), "LOCAL_API_KEY": "two words"})
