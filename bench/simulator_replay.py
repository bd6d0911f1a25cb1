"""The simulator against the real container (used by bench_simulator): measure the local
container's capacity curve, run it at fixed offered rates, and replay the same rates in the simulator
with the measured curve as the service model.

Load comes from ``bench.load_client``, an asyncio process of its own (the same code for the curve
and the runs), not from threads of this process: Python sender threads on the same 2 cores put their
own GIL hand-offs into the measured tail. Each rate is run ``REPEATS`` times, interleaved with the
other rates, because one run's p99 is not a property of the server here: identical back-to-back runs
differ by far more than the 25% the simulator is asked to match (see docs/simulator.md); the spread
of the real runs is reported beside the simulated figure."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

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
REPEATS = 3
RUN_FRACTION = 0.6
"""The fixed rate, as a share of the peak the curve measured."""
CLIENT_TIMEOUT_SECONDS = 120


def _body() -> bytes:
    from tools.demo_model import digits_rows  # noqa: PLC0415 - imports xgboost and scikit-learn

    return (",".join(f"{v:g}" for v in digits_rows()[0]) + "\n").encode()


def _client(port: int, body: bytes, *args: str) -> dict[str, Any]:
    """One run of bench.load_client against 127.0.0.1:port."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.load_client", "--port", str(port), *args],
        input=body,
        capture_output=True,
        check=True,
        cwd=REPO_ROOT,
        timeout=CLIENT_TIMEOUT_SECONDS,
    )
    return json.loads(done.stdout)


def _closed_loop(port: int, body: bytes, users: int, seconds: float) -> dict[str, Any]:
    return _client(port, body, "closed", "--users", str(users), "--seconds", str(seconds))


def _open_loop(port: int, body: bytes, rate: float, seconds: int, seed: int) -> dict[str, Any]:
    rate_text = f"{rate:.3f}"
    return _client(port, body, "open", "--rate", rate_text, "--seconds", str(seconds), "--seed", str(seed))


def measure(fractions: tuple[float, ...] = (RUN_FRACTION,)) -> list[dict[str, float]]:
    """Real and simulated throughput and p99 at fixed rates (``fractions`` of the curve's peak), the
    curve's peak and the service model fitted to it; one curve for every rate. Real figures are the
    medians of ``REPEATS`` runs, with the lowest and highest p99."""
    if not (MODEL_DIR / "xgboost-model").is_file():
        from tools.demo_model import main as train  # noqa: PLC0415

        train(["--out", str(MODEL_DIR)])
    body = _body()
    real: dict[float, list[dict[str, Any]]] = {fraction: [] for fraction in fractions}
    with running_container(MODEL_DIR) as container:
        _closed_loop(container.port, body, 2, 1.0)  # warm-up
        steps = [_closed_loop(container.port, body, users, CURVE_SECONDS) for users in CURVE_USERS]
        peak = max(step["rps"] for step in steps)
        for repeat in range(REPEATS):
            for fraction in fractions:
                run = _open_loop(container.port, body, fraction * peak, RUN_SECONDS, repeat + 1)
                real[fraction].append(run)
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
    for fraction, runs in real.items():
        rate = fraction * peak
        run = SimulationInput(
            spec=spec,
            service=model,
            traffic=traffic.Traffic(name="fixed rate", rps=np.full(RUN_SECONDS, rate)),
            initial_credits=(600.0,),
        )
        outcome = fast.simulate(run)
        p99s = [r["p99_ms"] for r in runs if r["requests"]]
        results.append(
            {
                "fraction": fraction,
                "peak_rps": peak,
                "rate": rate,
                "workers": float(model.workers),
                "scv": model.scv,
                "real_rps": statistics.median(r["rps"] for r in runs),
                "real_p99_ms": statistics.median(p99s) if p99s else math.nan,
                "real_p99_low_ms": min(p99s, default=math.nan),
                "real_p99_high_ms": max(p99s, default=math.nan),
                "real_failed": float(sum(r["failed"] for r in runs)),
                "real_waited_for_connection": float(sum(r["waited_for_connection"] for r in runs)),
                "real_sent_late_p99_ms": max(r["sent_late_p99_ms"] for r in runs),
                "simulated_rps": float(outcome.windows.served.sum()) / RUN_SECONDS,
                "simulated_p99_ms": float(outcome.summary()["p99_ms"] or math.nan),
            }
        )
    return results
