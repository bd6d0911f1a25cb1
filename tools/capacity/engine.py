"""The Locust load engine, run as a child process: ``python -m tools.capacity.engine``.

It reads one JSON plan on stdin (:class:`tools.capacity.load.Plan`), runs Locust as a library
(``Environment`` + a runner + ``FastHttpUser``, users with no wait time), and writes one JSON line
per step to stdout, then a ``done`` line with the reason it stopped. Which users each step runs is
:class:`tools.capacity.ramp.Ramp`'s decision: the planned steps, then a bisection of the knee.

With ``generators`` 0 the users run in this process (``LocalRunner``). With ``generators`` N it is
a Locust master: it starts N worker processes on loopback (``--worker``), or with ``master_bind``
waits for N workers started elsewhere with ``python -m tools.capacity --worker --master-host``;
the master sends each worker the plan, opens and closes every measurement window, and merges the
exact latencies the workers send back. Each worker reports its own CPU per window: a worker above
90% of a core is a saturated generator.

It is a separate process because importing Locust monkey-patches the whole interpreter with
gevent: the command line and the test process stay unpatched, and the parent can bound the run
by killing this PID. Each step: spawn the users, let them warm up, then record every request
that completes in the window (Locust's ``request`` event gives exact latencies; its own stats
round to whole milliseconds, too coarse for a 2 ms p50). With a ``server_pid`` it also measures
the server's process tree's CPU over each window.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, replace
from typing import Any, ClassVar, Protocol
from urllib.parse import urlsplit

import gevent
import psutil
from locust import FastHttpUser, constant, task
from locust.env import Environment
from locust.runners import LocalRunner, MasterRunner, WorkerRunner

from tools.capacity.cpu import CpuWindow
from tools.capacity.ramp import Ramp
from tools.capacity.sizing import StepResult, step_from_latencies

# Users join at once: a step is a level of concurrency, not a ramp within the step. Locust warns
# above 100 users/s, so larger steps take a fraction of a second more.
_SPAWN_RATE = 100.0
_SPAWN_TIMEOUT_SECONDS = 10.0
# How often a step's window checks its clock and the request budget: a budget can be overshot by
# one tick's worth of requests.
_TICK_SECONDS = 0.05
_WINDOW_RESULT_TIMEOUT_SECONDS = 15.0
DEFAULT_MASTER_PORT = 5557
"""Locust's own default master port."""

PLAN_MESSAGE = "capacity_plan"
WINDOW_OPEN = "capacity_window_open"
WINDOW_CLOSE = "capacity_window_close"
WINDOW_RESULT = "capacity_window_result"


class Invoker(FastHttpUser):
    """POSTs the plan's payload to its URL, back to back. Configured by :func:`configure_invoker`
    before any user starts: in a worker, from the plan the master sends."""

    abstract = False
    host = "http://127.0.0.1"
    wait_time = constant(0)
    # Locust skips certificate checks by default; the API key must only go to the real host.
    insecure = False
    path: ClassVar[str] = "/"
    payload: ClassVar[bytes] = b""
    headers: ClassVar[dict[str, str]] = {}

    @task
    def invoke(self) -> None:
        # FastHttpUser counts any non-2xx status as a failure and reports it to the listener.
        # Its signature says str, its docstring and geventhttpclient take bytes (binary payloads).
        self.client.post(self.path, data=self.payload, headers=self.headers, name="invoke")  # pyright: ignore[reportArgumentType]


def configure_invoker(plan: dict[str, Any]) -> None:
    parts = urlsplit(plan["url"])
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    timeout = float(plan["request_timeout_seconds"])
    Invoker.host = f"{parts.scheme}://{parts.netloc}"
    Invoker.path = path
    Invoker.payload = base64.b64decode(plan["payload_b64"])
    Invoker.headers = dict(plan["headers"])
    Invoker.network_timeout = timeout
    Invoker.connection_timeout = timeout


class _Window:
    """Collects the requests that complete while it is open, and this process's CPU meanwhile."""

    def __init__(self) -> None:
        self.open = False
        self.latencies_ms: list[float] = []
        self.error_kinds: Counter[str] = Counter()
        self.total_completed = 0
        self._cpu = CpuWindow(os.getpid(), tree=False, cpus=1.0)

    def start(self) -> None:
        self.latencies_ms = []
        self.error_kinds = Counter()
        self._cpu.start()
        self.open = True

    def close(self) -> float | None:
        """Close the window; this process's CPU over it, in percent of one core."""
        self.open = False
        return self._cpu.stop()

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


def _emit(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


class _Measured:
    """One window's raw figures, from one process or merged from every worker."""

    def __init__(self) -> None:
        self.latencies_ms: list[float] = []
        self.error_kinds: Counter[str] = Counter()
        self.generator_cpu: list[float] = []
        self.rate: float | None = None
        """Requests per second summed over the workers, each over its own window: a window
        message that reaches a busy worker late then skews nothing."""


class Generator(Protocol):
    def spawn(self, users: int) -> None: ...
    def open_window(self) -> None: ...
    def completed(self) -> int: ...
    def close_window(self) -> _Measured: ...
    def quit(self) -> None: ...


def _wait_for_users(runner: LocalRunner | MasterRunner, users: int) -> None:
    runner.start(users, spawn_rate=_SPAWN_RATE)
    deadline = time.monotonic() + _SPAWN_TIMEOUT_SECONDS
    while runner.user_count != users and time.monotonic() < deadline:
        gevent.sleep(_TICK_SECONDS)


class LocalGenerator:
    """The users run in this process."""

    def __init__(self, plan: dict[str, Any]) -> None:
        configure_invoker(plan)
        self.window = _Window()
        self.env = Environment(user_classes=[Invoker])
        self.env.events.request.add_listener(self.window.on_request)
        self.runner = self.env.create_local_runner()

    def spawn(self, users: int) -> None:
        _wait_for_users(self.runner, users)

    def open_window(self) -> None:
        self.window.start()

    def completed(self) -> int:
        return self.window.total_completed

    def close_window(self) -> _Measured:
        cpu = self.window.close()
        measured = _Measured()
        measured.latencies_ms = self.window.latencies_ms
        measured.error_kinds = self.window.error_kinds
        measured.generator_cpu = [cpu] if cpu is not None else []
        return measured

    def quit(self) -> None:
        self.runner.quit()


class DistributedGenerator:
    """A Locust master: the users run in ``count`` worker processes, here or on other machines."""

    def __init__(self, plan: dict[str, Any]) -> None:
        configure_invoker(plan)
        self.count = int(plan["generators"])
        bind = plan.get("master_bind")
        port = int(plan.get("master_port") or 0) or (DEFAULT_MASTER_PORT if bind else _free_port())
        self.env = Environment(user_classes=[Invoker], host=Invoker.host)
        self.runner = self.env.create_master_runner(
            master_bind_host=bind or "127.0.0.1", master_bind_port=port
        )
        self.results: dict[int, list[dict[str, Any]]] = {}
        self.window_seq = 0
        self.runner.register_message(WINDOW_RESULT, self._on_result)
        self.workers: list[subprocess.Popen[bytes]] = []
        if not bind:
            self.workers = [
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "tools.capacity.engine",
                        "--worker",
                        "--master-host",
                        "127.0.0.1",
                        "--master-port",
                        str(port),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=sys.stderr,
                )
                for _ in range(self.count)
            ]
        try:
            self._await_workers(float(plan.get("worker_wait_seconds", 60.0)), bind, port)
        except RuntimeError:
            self.quit()
            raise
        worker_plan = {key: plan[key] for key in ("url", "payload_b64", "headers", "request_timeout_seconds")}
        self.runner.send_message(PLAN_MESSAGE, worker_plan)

    def _await_workers(self, wait_seconds: float, bind: str | None, port: int) -> None:
        deadline = time.monotonic() + wait_seconds
        while len(self.runner.clients.ready) < self.count:
            if time.monotonic() > deadline:
                where = f"{bind}:{port}" if bind else f"127.0.0.1:{port}"
                raise RuntimeError(
                    f"{len(self.runner.clients.ready)} of {self.count} Locust workers connected to {where} "
                    f"within {wait_seconds:g} s"
                )
            if any(worker.poll() is not None for worker in self.workers):
                raise RuntimeError("a Locust worker process exited before it connected")
            gevent.sleep(_TICK_SECONDS)

    def _on_result(self, environment: Environment, msg: Any, **_: Any) -> None:
        data = msg.data
        self.results.setdefault(int(data["seq"]), []).append(data)

    def spawn(self, users: int) -> None:
        _wait_for_users(self.runner, users)

    def open_window(self) -> None:
        self.window_seq += 1
        self.runner.send_message(WINDOW_OPEN, {"seq": self.window_seq})

    def completed(self) -> int:
        # Workers report their counts to the master every few seconds: the request budget is
        # checked against that, so it can be overshot by a few seconds' worth of requests.
        return int(self.env.stats.total.num_requests)

    def close_window(self) -> _Measured:
        seq = self.window_seq
        self.runner.send_message(WINDOW_CLOSE, {"seq": seq})
        deadline = time.monotonic() + _WINDOW_RESULT_TIMEOUT_SECONDS
        while len(self.results.get(seq, [])) < self.count and time.monotonic() < deadline:
            gevent.sleep(_TICK_SECONDS / 5)
        measured = _Measured()
        measured.rate = 0.0
        for result in self.results.pop(seq, []):
            if float(result["seconds"]) > 0:
                measured.rate += len(result["latencies_ms"]) / float(result["seconds"])
            measured.latencies_ms.extend(float(x) for x in result["latencies_ms"])
            measured.error_kinds.update({str(k): int(v) for k, v in result["error_kinds"].items()})
            if result.get("cpu") is not None:
                measured.generator_cpu.append(float(result["cpu"]))
        return measured

    def quit(self) -> None:
        self.runner.quit()
        for worker in self.workers:
            try:
                worker.wait(timeout=10)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_worker(master_host: str, master_port: int) -> int:
    """A Locust worker: runs the users the master gives it, and answers its windows."""
    window = _Window()
    env = Environment(user_classes=[Invoker])
    env.events.request.add_listener(window.on_request)
    runner: WorkerRunner = env.create_worker_runner(master_host, master_port)

    def on_plan(environment: Environment, msg: Any, **_: Any) -> None:
        configure_invoker(msg.data)

    opened = [time.monotonic()]

    def on_open(environment: Environment, msg: Any, **_: Any) -> None:
        window.start()
        opened[0] = time.monotonic()

    def on_close(environment: Environment, msg: Any, **_: Any) -> None:
        cpu = window.close()
        runner.send_message(
            WINDOW_RESULT,
            {
                "seq": msg.data["seq"],
                "seconds": time.monotonic() - opened[0],
                "latencies_ms": window.latencies_ms,
                "error_kinds": dict(window.error_kinds),
                "cpu": cpu,
            },
        )

    runner.register_message(PLAN_MESSAGE, on_plan)
    runner.register_message(WINDOW_OPEN, on_open)
    runner.register_message(WINDOW_CLOSE, on_close)
    runner.greenlet.join()
    return 0


def _server_cpu(pid: int) -> CpuWindow | None:
    """The server's CPU meter; None if it is already gone (its steps then say so: no CPU)."""
    try:
        return CpuWindow(pid)
    except psutil.NoSuchProcess:
        return None


def _step(
    *,
    users: int,
    measured: _Measured,
    window_seconds: float,
    server_cpu: float | None,
    phase: str,
    opened_at: float,
) -> StepResult:
    """One window's figures as a step. With workers, the throughput is the sum of each worker's over
    its own window (``measured.rate``), so the step's seconds are set to match it."""
    seconds = len(measured.latencies_ms) / measured.rate if measured.rate else window_seconds
    return replace(
        step_from_latencies(
            users=users,
            seconds=seconds,
            latencies_ms=measured.latencies_ms,
            errors=sum(measured.error_kinds.values()),
            error_kinds=measured.error_kinds,
        ),
        server_cpu_percent=server_cpu,
        generator_cpu_percent=max(measured.generator_cpu, default=None),
        phase=phase,
        started_at=opened_at,
        ended_at=opened_at + window_seconds,
    )


def run(plan: dict[str, Any]) -> tuple[str, bool]:
    """Run the ramp in ``plan``, emitting each step; return why it stopped, and whether any load
    generator process went above 90% CPU (then the generator, not the server, may be the limit)."""
    step_seconds = float(plan["step_seconds"])
    warmup_seconds = float(plan["warmup_seconds"])
    max_seconds = float(plan["max_seconds"])
    max_requests = int(plan["max_requests"])
    cpu_target = plan.get("cpu_target")
    ramp = Ramp(
        [int(u) for u in plan["users"]],
        p99_objective_ms=float(plan["p99_ms"]),
        cpu_target_percent=None if cpu_target is None else float(cpu_target),
        refine=bool(plan.get("refine", True)),
    )
    server_pid = plan.get("server_pid")
    server_cpu = _server_cpu(int(server_pid)) if server_pid else None
    generator: Generator = (
        DistributedGenerator(plan) if int(plan.get("generators", 0)) else LocalGenerator(plan)
    )
    # The budget counts from here: waiting for remote workers to connect is not load.
    started = time.monotonic()
    reason = ""
    saturated = False
    try:
        while (users := ramp.next_users()) is not None:
            elapsed = time.monotonic() - started
            if elapsed + warmup_seconds + step_seconds > max_seconds:
                reason = f"time budget of {max_seconds:g} s would be exceeded by the {users}-user step"
                if ramp.phase() == "refine":
                    ramp.record_refinement_reason()
                    reason = f"{ramp.stop_reason} (time budget of {max_seconds:g} s)"
                break
            phase = ramp.phase()
            generator.spawn(users)
            gevent.sleep(warmup_seconds)
            generator.open_window()
            if server_cpu is not None:
                server_cpu.start()
            opened, opened_at = time.monotonic(), time.time()
            budget_hit = False
            while time.monotonic() - opened < step_seconds:
                gevent.sleep(_TICK_SECONDS)
                if generator.completed() >= max_requests:
                    budget_hit = True
                    break
            measured = generator.close_window()
            step = _step(
                users=users,
                measured=measured,
                window_seconds=time.monotonic() - opened,
                server_cpu=server_cpu.stop() if server_cpu is not None else None,
                phase=phase,
                opened_at=opened_at,
            )
            saturated = saturated or step.generator_saturated
            record = asdict(step)
            record["error_kinds"] = dict(step.error_kinds)
            _emit({"type": "step", **record})
            ramp.record(step)
            if budget_hit:
                reason = f"request budget of {max_requests} requests reached"
                break
        reason = reason or ramp.stop_reason
    finally:
        generator.quit()
    return reason, saturated


def main(argv: list[str] | None = None) -> int:
    # Locust logs every spawn at INFO; only its warnings and errors reach the parent's stderr.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="locust: %(message)s")
    parser = argparse.ArgumentParser(prog="python -m tools.capacity.engine")
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--master-host", default="127.0.0.1")
    parser.add_argument("--master-port", type=int, default=DEFAULT_MASTER_PORT)
    args = parser.parse_args(argv)
    if args.worker:
        return run_worker(args.master_host, args.master_port)
    plan = json.load(sys.stdin)
    try:
        reason, generator_saturated = run(plan)
    except RuntimeError as error:
        _emit({"type": "error", "message": str(error)})
        return 1
    _emit({"type": "done", "reason": reason, "generator_saturated": generator_saturated})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
