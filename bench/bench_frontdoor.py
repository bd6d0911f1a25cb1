"""What the front door costs: latency it adds per request, and the handler's cold-start import.

Same process, same minute, as BENCHMARKS.md asks:

- one CSV record straight to the container's ``POST /invocations`` (the baseline) against the
  same record through the local path (API Gateway stand-in -> handler -> boto3 -> runtime
  stand-in -> container), sequentially, median and p99 of each run, median of the runs;
- importing ``lambda/handler.py`` (boto3 and its client: the Lambda init phase) in a fresh
  interpreter, against a bare interpreter start.

The local stand-ins are two extra loopback hops that AWS replaces with its own, so the added
latency is an upper bound on what the handler's code costs, not a prediction for AWS.

Run: ``MODEL_DIR=build/demo-model .venv/bin/python -m bench.bench_frontdoor [--runs 3]
[--requests 300]``; results go to ``bench/results/frontdoor.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.figures import figure, write_results
from tools.local import HANDLER_PATH, REPO_ROOT, handler_environment, sample_csv_row, serving_in_thread
from tools.local_gateway import GatewayServer, load_handler_module
from tools.local_runtime import RuntimeServer, RuntimeSettings
from tools.serving import running_container

MODULE = "bench.bench_frontdoor"

ENDPOINT_NAME = "xgboost-overhead"
API_KEY = "overhead"
_IMPORT_HANDLER = (
    "import importlib.util, sys\n"
    "spec = importlib.util.spec_from_file_location('handler', sys.argv[1])\n"
    "module = importlib.util.module_from_spec(spec)\n"
    "sys.modules['handler'] = module\n"
    "spec.loader.exec_module(module)\n"
)


def _latencies_ms(url: str, body: bytes, headers: dict[str, str], count: int) -> tuple[float, float]:
    samples: list[float] = []
    for _ in range(count):
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
            if response.status != 200:
                raise RuntimeError(f"{url} answered {response.status}")
        samples.append((time.perf_counter() - started) * 1000.0)
    samples.sort()
    return statistics.median(samples), samples[max(0, int(len(samples) * 0.99) - 1)]


def _seconds_to_run(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, check=True, cwd=REPO_ROOT)
    return time.perf_counter() - started


def measure_latency(model_dir: Path, runs: int, requests: int) -> list[dict[str, Any]]:
    row, _ = sample_csv_row()
    body = row.encode()
    direct: list[tuple[float, float]] = []
    through: list[tuple[float, float]] = []
    with running_container(model_dir, workers=2) as container:
        runtime = RuntimeServer(RuntimeSettings(container_url=container.url, endpoint_name=ENDPOINT_NAME))
        with serving_in_thread(runtime):
            os.environ.update(handler_environment(runtime.url, ENDPOINT_NAME))
            handler = load_handler_module(HANDLER_PATH, "frontdoor_handler_overhead")
            gateway = GatewayServer(handler.handler, API_KEY)
            # The handler prints a log line per request; here they would only drown the table.
            with serving_in_thread(gateway), contextlib.redirect_stdout(io.StringIO()):
                for _ in range(runs):
                    direct.append(
                        _latencies_ms(
                            f"{container.url}/invocations", body, {"Content-Type": "text/csv"}, requests
                        )
                    )
                    through.append(
                        _latencies_ms(
                            gateway.url, body, {"Content-Type": "text/csv", "x-api-key": API_KEY}, requests
                        )
                    )
    direct_median = statistics.median(run[0] for run in direct)
    through_median = statistics.median(run[0] for run in through)
    return [
        figure("1-record CSV straight to the container, median", direct_median, "ms"),
        figure("same, p99", statistics.median(run[1] for run in direct), "ms"),
        figure(
            "1-record CSV through the local front door, median",
            through_median,
            "ms",
            "straight to the container",
            direct_median,
        ),
        figure("same, p99", statistics.median(run[1] for run in through), "ms"),
        figure("latency the front door path adds, median", through_median - direct_median, "ms"),
    ]


def measure_cold_import(runs: int) -> list[dict[str, Any]]:
    env = {**os.environ, **handler_environment("http://127.0.0.1:9", ENDPOINT_NAME)}
    bare = [_seconds_to_run([sys.executable, "-c", "pass"], env) for _ in range(runs)]
    loaded = [
        _seconds_to_run([sys.executable, "-c", _IMPORT_HANDLER, str(HANDLER_PATH)], env) for _ in range(runs)
    ]
    bare_median = statistics.median(bare)
    return [
        figure("interpreter start, nothing imported", bare_median, "s"),
        figure(
            "interpreter start + import lambda/handler.py (boto3 client)",
            statistics.median(loaded),
            "s",
            "interpreter start",
            bare_median,
        ),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3, help="runs of each measurement (median taken)")
    parser.add_argument("--requests", type=int, default=300, help="sequential requests per latency run")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.requests < 10:
        parser.error("--runs must be at least 1 and --requests at least 10")
    model_dir = Path(os.environ.get("MODEL_DIR") or REPO_ROOT / "build" / "demo-model")
    if not (model_dir / "xgboost-model").is_file():
        parser.error(f"MODEL_DIR={model_dir} has no xgboost-model: run `make demo-model` first")
    figures = measure_latency(model_dir, args.runs, args.requests) + measure_cold_import(args.runs)
    results = write_results("frontdoor.json", figures, module=MODULE, argv=argv)
    for row in figures:
        ratio = f"  x{row['ratio']} {row['baseline']}" if row["ratio"] else ""
        print(f"{row['name']:<62} {row['value']:>9} {row['unit']}{ratio}")
    print(f"written to {results.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
