"""The Locust load engine, run as a child process: ``python -m tools.capacity.engine``.

It reads one JSON plan on stdin (:class:`tools.capacity.load.Plan`), runs Locust as a library
(``Environment`` + ``LocalRunner`` + ``FastHttpUser``, users with no wait time), and writes one
JSON line per ramp step to stdout, then a ``done`` line with the reason it stopped.

It is a separate process because importing Locust monkey-patches the whole interpreter with
gevent: the command line and the test process stay unpatched, and the parent can bound the run
by killing this PID. Each step: spawn the users, let them warm up, then record every request
that completes in the window (Locust's ``request`` event gives exact latencies; its own stats
round to whole milliseconds, too coarse for a 2 ms p50).
"""

from __future__ import annotations

import base64
import json
import logging
import sys
import time
from collections import Counter
from dataclasses import asdict
from typing import Any
from urllib.parse import urlsplit

import gevent
from locust import FastHttpUser, constant, task
from locust.env import Environment
from locust.runners import LocalRunner

from tools.capacity.sizing import StepResult, step_from_latencies

# Users join at once: a step is a level of concurrency, not a ramp within the step. Locust warns
# above 100 users/s, so larger steps take a fraction of a second more.
_SPAWN_RATE = 100.0
_SPAWN_TIMEOUT_SECONDS = 10.0
# How often a step's window checks its clock and the request budget: a budget can be overshot by
# one tick's worth of requests.
_TICK_SECONDS = 0.05


class _Window:
    """Collects the requests that complete while it is open."""

    def __init__(self) -> None:
        self.open = False
        self.latencies_ms: list[float] = []
        self.error_kinds: Counter[str] = Counter()
        self.total_completed = 0

    def start(self) -> None:
        self.latencies_ms = []
        self.error_kinds = Counter()
        self.open = True

    def on_request(
        self,
        response_time: float,
        response: Any = None,
        exception: BaseException | None = None,
        **_: Any,
    ) -> None:
        self.total_completed += 1
        if not self.open:
            return
        self.latencies_ms.append(float(response_time))
        if exception is not None:
            self.error_kinds[_error_kind(response, exception)] += 1


def _error_kind(response: Any, exception: BaseException) -> str:
    status = getattr(response, "status_code", 0) or 0
    if status:
        return f"HTTP {status}"
    return type(exception).__name__


def _user_class(plan: dict[str, Any]) -> type[FastHttpUser]:
    parts = urlsplit(plan["url"])
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    payload = base64.b64decode(plan["payload_b64"])
    headers: dict[str, str] = dict(plan["headers"])
    timeout = float(plan["request_timeout_seconds"])

    class Invoker(FastHttpUser):
        host = f"{parts.scheme}://{parts.netloc}"
        wait_time = constant(0)
        network_timeout = timeout
        connection_timeout = timeout
        # Locust skips certificate checks by default; the API key must only go to the real host.
        insecure = False

        @task
        def invoke(self) -> None:
            # FastHttpUser counts any non-2xx status as a failure and reports it to the listener.
            # Its signature says str, its docstring and geventhttpclient take bytes (binary payloads).
            self.client.post(path, data=payload, headers=headers, name="invoke")  # pyright: ignore[reportArgumentType]

    return Invoker


def _emit(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def _spawn(runner: LocalRunner, users: int) -> None:
    runner.start(users, spawn_rate=_SPAWN_RATE)
    deadline = time.monotonic() + _SPAWN_TIMEOUT_SECONDS
    while runner.user_count != users and time.monotonic() < deadline:
        gevent.sleep(_TICK_SECONDS)


def run(plan: dict[str, Any]) -> tuple[str, bool]:
    """Run the ramp in ``plan``, emitting each step; return why it stopped, and whether Locust's
    own process went above 90% CPU (then the generator, not the server, may be the limit)."""
    user_counts: list[int] = [int(u) for u in plan["users"]]
    step_seconds = float(plan["step_seconds"])
    warmup_seconds = float(plan["warmup_seconds"])
    p99_objective_ms = float(plan["p99_ms"])
    max_seconds = float(plan["max_seconds"])
    max_requests = int(plan["max_requests"])

    window = _Window()
    env = Environment(user_classes=[_user_class(plan)])
    env.events.request.add_listener(window.on_request)
    runner = env.create_local_runner()
    started = time.monotonic()
    reason = f"reached the maximum of {user_counts[-1]} users"
    try:
        for users in user_counts:
            elapsed = time.monotonic() - started
            if elapsed + warmup_seconds + step_seconds > max_seconds:
                reason = f"time budget of {max_seconds:g} s would be exceeded by the {users}-user step"
                break
            _spawn(runner, users)
            gevent.sleep(warmup_seconds)
            window.start()
            opened = time.monotonic()
            budget_hit = False
            while time.monotonic() - opened < step_seconds:
                gevent.sleep(_TICK_SECONDS)
                if window.total_completed >= max_requests:
                    budget_hit = True
                    break
            window.open = False
            step: StepResult = step_from_latencies(
                users=users,
                seconds=time.monotonic() - opened,
                latencies_ms=window.latencies_ms,
                errors=sum(window.error_kinds.values()),
                error_kinds=window.error_kinds,
            )
            record = asdict(step)
            record["error_kinds"] = dict(step.error_kinds)
            _emit({"type": "step", **record})
            if not step.meets(p99_objective_ms):
                who = "1 user" if users == 1 else f"{users} users"
                reason = f"objective broken at {who}: {step.why_not(p99_objective_ms)}"
                break
            if budget_hit:
                reason = f"request budget of {max_requests} requests reached"
                break
    finally:
        runner.quit()
    return reason, runner.cpu_warning_emitted


def main() -> int:
    # Locust logs every spawn at INFO; only its warnings and errors reach the parent's stderr.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="locust: %(message)s")
    plan = json.load(sys.stdin)
    reason, generator_saturated = run(plan)
    _emit({"type": "done", "reason": reason, "generator_saturated": generator_saturated})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
