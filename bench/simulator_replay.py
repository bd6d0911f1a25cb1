"""The simulator against the real container (used by bench_simulator): measure the local container's
capacity curve, run it at a fixed offered rate, and replay the same rate in the simulator with the
measured curve as the service model. Load comes from threads in this process, one keep-alive
connection each, on the same 2 cores as the server: both runs share that handicap."""

from __future__ import annotations

import http.client
import json
import math
import queue
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from lib.evaluate import REPO_ROOT
from stackcore import load_stack
from tools.serving import running_container
from tools.simulate import fast, service, traffic
from tools.simulate.inputs import SimulationInput
from tools.simulate.scenario import fleet_from_stack

MODEL_DIR = REPO_ROOT / "build" / "demo-model"
CURVE_USERS = (1, 2, 4, 8)
CURVE_SECONDS = 3.0
RUN_SECONDS = 15
RUN_FRACTION = 0.6
"""The fixed rate, as a share of the peak the curve measured."""


def _body() -> bytes:
    from tools.demo_model import digits_rows  # noqa: PLC0415 - imports xgboost and scikit-learn

    return (",".join(f"{v:g}" for v in digits_rows()[0]) + "\n").encode()


class _Client:
    def __init__(self, url: str, body: bytes) -> None:
        parts = urlsplit(url)
        self.connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
        self.body = body

    def invoke(self) -> bool:
        self.connection.request("POST", "/invocations", body=self.body, headers={"Content-Type": "text/csv"})
        response = self.connection.getresponse()
        response.read()
        return response.status == 200


def _closed_loop(url: str, body: bytes, users: int, seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def user() -> None:
        client = _Client(url, body)
        mine: list[float] = []
        while time.perf_counter() < stop:
            started = time.perf_counter()
            if client.invoke():
                mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=user) for _ in range(users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ordered = sorted(latencies)
    return {
        "users": users,
        "seconds": seconds,
        "requests": len(ordered),
        "rps": len(ordered) / seconds,
        "p50_ms": 1000 * ordered[len(ordered) // 2],
        "p99_ms": 1000 * ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)],
    }


def _open_loop(url: str, body: bytes, rate: float, seconds: int, senders: int = 32) -> tuple[float, float]:
    """Requests sent at fixed times (``rate`` a second); latency from the scheduled time."""
    due: queue.Queue[float | None] = queue.Queue()
    start = time.perf_counter() + 0.2
    for i in range(int(rate * seconds)):
        due.put(start + i / rate)
    for _ in range(senders):
        due.put(None)
    latencies: list[float] = []
    lock = threading.Lock()

    def sender() -> None:
        client = _Client(url, body)
        mine: list[float] = []
        while (when := due.get()) is not None:
            delay = when - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            if client.invoke():
                mine.append(time.perf_counter() - when)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=sender) for _ in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    ordered = sorted(latencies)
    return len(ordered) / elapsed, 1000 * ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


def measure(fractions: tuple[float, ...] = (RUN_FRACTION,)) -> list[dict[str, float]]:
    """Real and simulated throughput and p99 at fixed rates (``fractions`` of the curve's peak), the
    curve's peak and the service model fitted to it; one curve for every rate."""
    if not (MODEL_DIR / "xgboost-model").is_file():
        from tools.demo_model import main as train  # noqa: PLC0415

        train(["--out", str(MODEL_DIR)])
    body = _body()
    real: list[tuple[float, float]] = []
    with running_container(MODEL_DIR) as container:
        _closed_loop(container.url, body, 2, 1.0)  # warm-up
        steps = [_closed_loop(container.url, body, users, CURVE_SECONDS) for users in CURVE_USERS]
        peak = max(step["rps"] for step in steps)
        for fraction in fractions:
            real.append(_open_loop(container.url, body, fraction * peak, RUN_SECONDS))
    with tempfile.TemporaryDirectory() as tmp:
        capacity_file = Path(tmp) / "capacity.json"
        capacity_file.write_text(json.dumps({"steps": steps, "scaling": {"factor": 1.0}}))
        model = service.from_capacity_file(capacity_file)
    settings = load_stack(
        REPO_ROOT,
        "dev",
        {"modelUri": "s3://example-models/xgboost/model.tar.gz", "initialInstanceCount": "1"},
    )
    spec = fleet_from_stack(settings, front_door=False)
    results: list[dict[str, float]] = []
    for fraction, (real_rps, real_p99) in zip(fractions, real, strict=True):
        rate = fraction * peak
        run = SimulationInput(
            spec=spec,
            service=model,
            traffic=traffic.Traffic(name="fixed rate", rps=np.full(RUN_SECONDS, rate)),
            initial_credits=(600.0,),
        )
        outcome = fast.simulate(run)
        results.append(
            {
                "fraction": fraction,
                "peak_rps": peak,
                "rate": rate,
                "workers": float(model.workers),
                "scv": model.scv,
                "real_rps": real_rps,
                "real_p99_ms": real_p99,
                "simulated_rps": float(outcome.windows.served.sum()) / RUN_SECONDS,
                "simulated_p99_ms": float(outcome.summary()["p99_ms"] or math.nan),
                "p50_one_user_ms": statistics.median([steps[0]["p50_ms"]]),
            }
        )
    return results
