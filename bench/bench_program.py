"""Benchmark: evaluate the Pulumi program's prod stack under mocks (BENCHMARKS.md, "The Pulumi
program and policies"; the policy pack's run on the same graph is in ``bench_policies.py``).

Figures, each median of ``--runs``:
- cold: a fresh interpreter that imports the program's dependencies and evaluates prod once,
  against a fresh interpreter that only imports ``pulumi`` and ``pulumi_aws`` (the floor);
- warm: evaluating prod again in the same process (what the second and later tests pay),
  against a one-resource program evaluated by the same ``evaluate_stack`` in the same process
  (the fixed cost of the mocks and the runtime).

Run: ``.venv/bin/python -m bench.bench_program [--runs N]``; results go to
``bench/results/program.json``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.figures import figure, write_results

MODULE = "bench.bench_program"

ROOT = Path(__file__).resolve().parent.parent
STACK = "prod"

_COLD_PROGRAM = "from lib.evaluate import evaluate_stack; evaluate_stack('prod')"
_COLD_FLOOR = "import pulumi, pulumi_aws, pulumi_aws.sagemaker, pulumi_aws.ec2"
_MINIMAL_PROGRAM = """
import pulumi_aws as aws

aws.s3.Bucket("one-bucket")
"""


def _median_seconds(action: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _fresh_interpreter(code: str) -> None:
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, timeout=300)


def _minimal_project(directory: Path) -> Path:
    (directory / "Pulumi.yaml").write_text("name: bench-minimal\nruntime: python\n")
    (directory / "Pulumi.bench.yaml").write_text("config:\n  aws:region: eu-west-1\n")
    (directory / "__main__.py").write_text(_MINIMAL_PROGRAM)
    return directory


def measure(runs: int) -> list[dict[str, Any]]:
    cold = _median_seconds(lambda: _fresh_interpreter(_COLD_PROGRAM), runs)
    floor = _median_seconds(lambda: _fresh_interpreter(_COLD_FLOOR), runs)

    from lib.evaluate import evaluate_stack  # noqa: PLC0415 - after the cold runs, which import it themselves

    graph = evaluate_stack(STACK)  # warms the imports
    warm = _median_seconds(lambda: evaluate_stack(STACK), runs)
    with tempfile.TemporaryDirectory() as tmp:
        project = _minimal_project(Path(tmp))
        evaluate_stack("bench", project_dir=project)
        minimal = _median_seconds(lambda: evaluate_stack("bench", project_dir=project), runs)
    resources = sum(1 for r in graph if r.custom)
    return [
        figure(
            "cold: fresh interpreter, imports + evaluate prod",
            cold,
            "s",
            "fresh interpreter importing pulumi_aws",
            floor,
        ),
        figure("warm: evaluate prod in the same process", warm, "s", "warm one-resource program", minimal),
        figure("warm: per cloud resource", warm / resources, "s"),
        figure("cloud resources in the prod graph", float(resources), "count"),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_program")
    parser.add_argument(
        "--runs", type=int, default=5, help="runs per figure; medians are reported (at least 3)"
    )
    args = parser.parse_args(argv)
    if args.runs < 3:
        parser.error("--runs must be at least 3: medians of fewer mean little")
    figures = measure(args.runs)
    results = write_results("program.json", figures, module=MODULE, argv=argv)
    width = max(len(f["name"]) for f in figures)
    print(f"{'figure':<{width}}  {'value':>9}  unit   ratio  baseline")
    for f in figures:
        ratio = f"{f['ratio']:.2f}" if f["ratio"] is not None else ""
        print(f"{f['name']:<{width}}  {f['value']:>9.4f}  {f['unit']:<5}  {ratio:>5}  {f['baseline'] or ''}")
    print(f"written to {results.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
