"""Drive the Locust engine (``tools.capacity.engine``) in a child process and collect its steps.

The child gets the plan on stdin and streams one JSON line per step; each step is handed to a
callback as it arrives, so the command prints progress live. The run is bounded twice: the
engine stops at its time and request budgets, and a watchdog kills the child (by its PID) if it
overruns the time budget by more than a grace period.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.capacity.sizing import StepResult

REPO_ROOT = Path(__file__).resolve().parents[2]
# Spawning, warm-up and Locust's own start and stop on top of the budget.
_WATCHDOG_GRACE_SECONDS = 30.0


class LoadEngineError(RuntimeError):
    """The load engine failed or overran its budget; the message says what it wrote."""


@dataclass(frozen=True, kw_only=True)
class Plan:
    """One ramp: where to send what, the concurrency steps, the objective and the budgets."""

    url: str
    payload: bytes
    headers: Mapping[str, str]
    users: Sequence[int]
    step_seconds: float
    warmup_seconds: float
    p99_ms: float
    max_seconds: float
    max_requests: int
    request_timeout_seconds: float = 60.0
    """SageMaker's own limit on an invocation (AWS-FACTS.md)."""
    cpu_target: float | None = None
    """A step whose server CPU (when measured) is above this percentage breaks a limit."""
    refine: bool = True
    """Bisect the users between the last good and the first bad step."""
    server_pid: int | None = None
    """The local server's root process, whose process tree's CPU each window measures."""
    generators: int = 0
    """0: the users run in the engine's process; N: a Locust master and N worker processes."""
    master_bind: str | None = None
    """With ``generators``: bind the master here and wait for N remote workers instead of starting them."""
    master_port: int | None = None
    worker_wait_seconds: float = 60.0

    def to_json(self) -> str:
        return json.dumps(
            {
                "url": self.url,
                "payload_b64": base64.b64encode(self.payload).decode("ascii"),
                "headers": dict(self.headers),
                "users": list(self.users),
                "step_seconds": self.step_seconds,
                "warmup_seconds": self.warmup_seconds,
                "p99_ms": self.p99_ms,
                "max_seconds": self.max_seconds,
                "max_requests": self.max_requests,
                "request_timeout_seconds": self.request_timeout_seconds,
                "cpu_target": self.cpu_target,
                "refine": self.refine,
                "server_pid": self.server_pid,
                "generators": self.generators,
                "master_bind": self.master_bind,
                "master_port": self.master_port,
                "worker_wait_seconds": self.worker_wait_seconds,
            }
        )


@dataclass(frozen=True, kw_only=True)
class RampOutcome:
    steps: list[StepResult] = field(default_factory=list)
    stop_reason: str = ""
    generator_saturated: bool = False
    """A load generator process went above 90% CPU in some step: the throughput may be its limit."""


def _step_from_record(record: Mapping[str, Any]) -> StepResult:
    return StepResult(
        users=int(record["users"]),
        seconds=float(record["seconds"]),
        requests=int(record["requests"]),
        errors=int(record["errors"]),
        p50_ms=record["p50_ms"],
        p95_ms=record["p95_ms"],
        p99_ms=record["p99_ms"],
        error_kinds={str(k): int(v) for k, v in record["error_kinds"].items()},
        server_cpu_percent=record.get("server_cpu_percent"),
        generator_cpu_percent=record.get("generator_cpu_percent"),
        phase=str(record.get("phase", "ramp")),
        started_at=record.get("started_at"),
        ended_at=record.get("ended_at"),
    )


def _kill_group(pid: int) -> None:
    """Kill the engine and the worker processes it started (its own process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def run_ramp(plan: Plan, on_step: Callable[[StepResult], None] | None = None) -> RampOutcome:
    """Run ``plan`` in a Locust child process; call ``on_step`` for each step as it completes."""
    steps: list[StepResult] = []
    stop_reason = ""
    generator_saturated = False
    engine_error = ""
    with tempfile.TemporaryFile() as stderr:
        child = subprocess.Popen(
            [sys.executable, "-m", "tools.capacity.engine"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            cwd=REPO_ROOT,
            text=True,
            # Its own process group: the engine's Locust workers go with it when it is stopped.
            start_new_session=True,
        )
        killed = threading.Event()

        def kill_overrun() -> None:
            if child.poll() is None:
                killed.set()
                _kill_group(child.pid)

        # Waiting for the workers to connect comes before the budget's clock starts.
        waiting = plan.worker_wait_seconds if plan.generators else 0.0
        watchdog = threading.Timer(plan.max_seconds + waiting + _WATCHDOG_GRACE_SECONDS, kill_overrun)
        watchdog.start()
        try:
            if child.stdin is None or child.stdout is None:
                raise LoadEngineError("the load engine's pipes did not open")
            child.stdin.write(plan.to_json())
            child.stdin.close()
            for line in child.stdout:
                record = json.loads(line)
                if record["type"] == "step":
                    step = _step_from_record(record)
                    steps.append(step)
                    if on_step is not None:
                        on_step(step)
                elif record["type"] == "error":
                    engine_error = str(record["message"])
                elif record["type"] == "done":
                    stop_reason = str(record["reason"])
                    generator_saturated = bool(record["generator_saturated"])
            returncode = child.wait()
        finally:
            watchdog.cancel()
            if child.poll() is None:
                _kill_group(child.pid)
                child.wait()
            # A worker the engine started and could not stop (it failed before connecting) goes too.
            _kill_group(child.pid)
        stderr.seek(0)
        errors = stderr.read().decode(errors="replace").strip()
    if killed.is_set():
        raise LoadEngineError(
            f"the load engine overran its {plan.max_seconds:g} s budget by {_WATCHDOG_GRACE_SECONDS:g} s "
            f"and was stopped after {len(steps)} step(s)"
        )
    if engine_error:
        raise LoadEngineError(f"the load engine stopped: {engine_error}")
    if returncode != 0 or not stop_reason:
        tail = "\n".join(errors.splitlines()[-20:])
        raise LoadEngineError(f"the load engine failed (exit code {returncode}):\n{tail}")
    return RampOutcome(steps=steps, stop_reason=stop_reason, generator_saturated=generator_saturated)
