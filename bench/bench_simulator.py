"""Benchmark: the fleet simulator's speed (BENCHMARKS.md reporting; issue 11's goal: 24 simulated
hours of a 20-instance fleet at 5,000 req/s in under 10 s on this machine).

Figures, medians of ``--runs`` runs in one process:
- the fast engine on 24 h of a 20-instance ml.c5.xlarge fleet at a flat 5,000 req/s;
- the same fleet over 24 h of diurnal traffic (1,000-5,000 req/s, autoscaled 20-40) with an AZ lost at
  the peak and a blue/green deployment, the harder case (queues form, the fleet changes);
- simulated requests per wall-clock second, fast engine against the SimPy reference on the same
  small scenario (two instances, two minutes): the baseline measured side by side;
- the real container against its replay (``bench/simulator_replay.py``): its capacity curve measured
  on 127.0.0.1, then Poisson arrivals at 60% of its peak (three runs, from a load generator in a
  process of its own), and the simulator fed the curve at the same rate; throughput and p99 of the
  simulation as ratios of the real runs' medians (goal: within 10% and 25%), the highest real p99 over
  the lowest (how far identical runs differ), and the service model fitted to the curve (workers,
  service-time SCV). ``--no-replay`` skips it;
  ``--replay-at F`` (repeatable) replays at other fractions of the peak, ``--replay-only`` runs only
  the replay and prints it without writing the results (a check by hand).

Run: ``.venv/bin/python -m bench.bench_simulator [--runs N]``; results go to
``bench/results/simulator.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from bench.figures import figure, write_results
from lib.evaluate import REPO_ROOT
from stackcore import load_stack
from tools.simulate import fast, reference, service, traffic
from tools.simulate.control import FailureEvent
from tools.simulate.inputs import SimulationInput
from tools.simulate.scenario import fleet_from_stack

MODULE = "bench.bench_simulator"
DAY_SECONDS = 86_400
FLEET = {
    "initialInstanceCount": "20",
    "minInstances": "20",
    "maxInstances": "40",
    "endpointInstanceQuotas": '{"ml.c5.xlarge": 80}',
    "totalInstanceQuota": "80",
    "invocationsPerInstanceTarget": "9000",
}
INSTANCE_RPS = 400.0
"""One ml.c5.xlarge at full CPU: 5,000 req/s over 20 instances is 62% of the fleet."""


def _run(rps: np.ndarray, failures: tuple[FailureEvent, ...] = (), stack: str = "prod") -> SimulationInput:
    overrides = (
        FLEET
        if stack == "prod"
        else {
            "initialInstanceCount": "2",
            "endpointInstanceQuotas": '{"ml.t2.medium": 4}',
            "totalInstanceQuota": "4",
            "modelUri": "s3://example-models/xgboost/model.tar.gz",
        }
    )
    settings = load_stack(REPO_ROOT, stack, overrides)
    spec = fleet_from_stack(settings)
    return SimulationInput(
        spec=spec,
        service=service.from_instance_rps(INSTANCE_RPS if stack == "prod" else 100.0, spec.vcpus),
        traffic=traffic.Traffic(name="bench", rps=rps),
        failures=failures,
        initial_credits=(600.0,),
    )


def _timed(run: SimulationInput, engine: Any) -> tuple[float, float]:
    started = time.perf_counter()
    outcome = engine.simulate(run)
    return time.perf_counter() - started, float(outcome.windows.offered.sum())


def measure(runs: int) -> list[dict[str, Any]]:
    flat = _run(np.full(DAY_SECONDS, 5000.0))
    diurnal = _run(
        traffic.preset("diurnal", base_rps=1000, peak_rps=5000).rps,
        (FailureEvent(kind="lose-az", minute=16 * 60), FailureEvent(kind="deploy", minute=10 * 60)),
    )
    small = _run(np.full(120, 140.0), stack="dev")
    flat_times, diurnal_times, fast_rates, reference_rates = [], [], [], []
    for _ in range(runs):
        flat_times.append(_timed(flat, fast)[0])
        diurnal_times.append(_timed(diurnal, fast)[0])
        seconds, requests = _timed(small, fast)
        fast_rates.append(requests / seconds)
        seconds, requests = _timed(small, reference)
        reference_rates.append(requests / seconds)
    flat_s = statistics.median(flat_times)
    diurnal_s = statistics.median(diurnal_times)
    fast_rate = statistics.median(fast_rates)
    reference_rate = statistics.median(reference_rates)
    return [
        figure("fast: 24 h, 20 instances, flat 5,000 req/s", flat_s, "s", "goal 10 s", 10.0),
        figure(
            "fast: 24 h diurnal 1,000-5,000 req/s, autoscaled, AZ lost, deploy",
            diurnal_s,
            "s",
            "goal 10 s",
            10.0,
        ),
        figure("fast: simulated requests per wall second (2 instances, 2 min)", fast_rate, "req/s"),
        figure(
            "reference (SimPy): simulated requests per wall second, same scenario",
            reference_rate,
            "req/s",
            "fast engine, same scenario",
            fast_rate,
        ),
    ]


def replay_figures(fractions: tuple[float, ...] | None) -> list[dict[str, Any]]:
    from bench import simulator_replay  # noqa: PLC0415 - starts a server: only when asked

    runs = simulator_replay.measure(fractions or (simulator_replay.RUN_FRACTION,))
    first = runs[0]
    figures = [
        figure("real container: peak of the measured curve", first["peak_rps"], "req/s"),
        figure("service model fitted to the curve: workers", first["workers"], "workers"),
        figure("service model fitted to the curve: service-time SCV", first["scv"], "scv"),
    ]
    for r in runs:
        # The bench's own rate keeps the figures' historical names; other rates say theirs.
        at = "" if r["fraction"] == simulator_replay.RUN_FRACTION else f" at {r['fraction']:.0%} of peak"
        figures += [
            figure(f"real container: fixed-rate run, served{at}", r["real_rps"], "req/s"),
            figure(
                f"simulated, same rate and curve: served{at}",
                r["simulated_rps"],
                "req/s",
                "real run",
                r["real_rps"],
            ),
            figure(f"real container: fixed-rate run, p99{at}", r["real_p99_ms"], "ms"),
            # The generator's own health: nothing failed, nothing waited for a connection, and how
            # late it sent its arrivals (large: the offered load was burstier than Poisson).
            figure(f"real container: failed requests, all runs{at}", r["real_failed"], "count"),
            figure(
                f"real container: requests that waited for a connection{at}",
                r["real_waited_for_connection"],
                "count",
            ),
            figure(
                f"real container: arrivals sent late, p99 (worst run){at}", r["real_sent_late_p99_ms"], "ms"
            ),
            # How far one real run is from the next: the noise any replay is judged against.
            figure(
                f"real container: highest p99 of {simulator_replay.REPEATS} identical runs{at}",
                r["real_p99_high_ms"],
                "ms",
                "lowest of them",
                r["real_p99_low_ms"],
            ),
            figure(
                f"simulated, same rate and curve: p99{at}",
                r["simulated_p99_ms"],
                "ms",
                "real run",
                r["real_p99_ms"],
            ),
        ]
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_simulator")
    parser.add_argument("--runs", type=int, default=3, help="runs; medians are reported (at least 3)")
    parser.add_argument("--no-replay", action="store_true", help="skip the real container's replay")
    parser.add_argument(
        "--replay-at",
        type=float,
        action="append",
        metavar="FRACTION",
        help="replay at this fraction of the curve's peak (repeatable; default 0.6)",
    )
    parser.add_argument(
        "--replay-only", action="store_true", help="only the replay, printed, not written (a check by hand)"
    )
    args = parser.parse_args(argv)
    if args.runs < 3:
        parser.error("--runs must be at least 3: medians of fewer mean little")
    fractions = tuple(args.replay_at) if args.replay_at else None
    if fractions and not all(0 < f < 1 for f in fractions):
        parser.error("--replay-at takes fractions of the peak between 0 and 1")
    if args.replay_only and args.no_replay:
        parser.error("--replay-only and --no-replay leave nothing to run")
    figures = [] if args.replay_only else measure(args.runs)
    if not args.no_replay:
        figures += replay_figures(fractions)
    if args.replay_only:
        for f in figures:
            ratio = "" if f["ratio"] is None else f"{f['ratio']:.4f}"
            print(f"{f['name']:<72} {f['value']:>12.3f} {f['unit']:<7} {ratio:>8}  {f['baseline'] or ''}")
        print(f"(load average {os.getloadavg()[0]:.2f}; not written)")
        return 0
    results = write_results("simulator.json", figures, module=MODULE, argv=argv)
    print(f"{'figure':<72} {'value':>12} {'unit':<6} {'ratio':>8}  baseline")
    for f in figures:
        ratio = "" if f["ratio"] is None else f"{f['ratio']:.4f}"
        print(f"{f['name']:<72} {f['value']:>12.3f} {f['unit']:<6} {ratio:>8}  {f['baseline'] or ''}")
    print(f"(medians of {args.runs} runs; written to {results})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
