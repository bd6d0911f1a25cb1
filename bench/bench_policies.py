"""Benchmark: evaluate the prod stack's program under mocks, then run the whole policy pack on its
graph, in one process (BENCHMARKS.md, "The Pulumi program and policies").

The first evaluation pays for importing pulumi_aws's service modules; later ones show what a
test or a plan pays once the process is warm. The pack's time is reported against the
evaluation it follows (same process, same minute), so the ratio survives a noisy machine.

Run: ``.venv/bin/python -m bench.bench_policies [--runs N]``; results go to
``bench/results/policies.json``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from typing import Any

from bench.figures import figure, write_results

MODULE = "bench.bench_policies"

STACK = "prod"


def measure(runs: int) -> list[dict[str, Any]]:
    started = time.perf_counter()
    from lib.evaluate import evaluate_stack  # noqa: PLC0415 - the import is part of the cold figure
    from policies.runner import run_pack  # noqa: PLC0415
    from tools.plan import stack_pack_config  # noqa: PLC0415

    pack_config = stack_pack_config(STACK)
    graph = evaluate_stack(STACK)
    report = run_pack(graph, pack_config)
    cold = time.perf_counter() - started
    if not report.passed:
        raise SystemExit(f"the {STACK} stack fails its policies; fix that before benchmarking")

    evaluations: list[float] = []
    packs: list[float] = []
    for _ in range(runs):
        t0 = time.perf_counter()
        graph = evaluate_stack(STACK)
        t1 = time.perf_counter()
        run_pack(graph, pack_config)
        t2 = time.perf_counter()
        evaluations.append(t1 - t0)
        packs.append(t2 - t1)
    evaluation = statistics.median(evaluations)
    pack = statistics.median(packs)
    total = statistics.median(e + p for e, p in zip(evaluations, packs, strict=True))
    return [
        figure("cold: imports + evaluate prod + run pack", cold, "s"),
        figure("warm: evaluate prod under mocks", evaluation, "s"),
        figure("warm: run the whole pack on the graph", pack, "s", "warm evaluation", evaluation),
        figure("warm: evaluate + pack", total, "s", "cold run", cold),
        figure("resources in the prod graph", float(len(graph.resources)), "count"),
        figure("policies run", float(len(report.results)), "count"),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_policies")
    parser.add_argument("--runs", type=int, default=5, help="warm runs; medians are reported (at least 3)")
    args = parser.parse_args(argv)
    if args.runs < 3:
        parser.error("--runs must be at least 3: medians of fewer mean little")
    figures = measure(args.runs)
    results = write_results("policies.json", figures, module=MODULE, argv=argv)
    print(f"{'figure':<45} {'value':>10} {'unit':<6} {'ratio':>8}  baseline")
    for f in figures:
        ratio = "" if f["ratio"] is None else f"{f['ratio']:.3f}"
        print(f"{f['name']:<45} {f['value']:>10.3f} {f['unit']:<6} {ratio:>8}  {f['baseline'] or ''}")
    print(f"(medians of {args.runs} warm runs; written to {results})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
