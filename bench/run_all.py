"""Run every benchmark in bench/: each ``bench/bench_*.py`` module's ``main()``, one after another.

``make bench`` calls ``python -m bench.run_all``. A benchmark that fails is reported and the
others still run; the exit status is non-zero if any failed.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import time
import traceback
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


def benchmark_modules() -> list[str]:
    return sorted(f"bench.{path.stem}" for path in BENCH_DIR.glob("bench_*.py"))


def run(module_name: str) -> int:
    module = importlib.import_module(module_name)
    entry = getattr(module, "main", None)
    if entry is None:
        print(f"{module_name}: no main(); skipped as a failure", file=sys.stderr)
        return 1
    # Benchmarks take main(argv=None); pass no arguments so they use their defaults, not ours.
    result = entry([]) if inspect.signature(entry).parameters else entry()
    return int(result or 0)


def main() -> int:
    failures: list[str] = []
    for name in benchmark_modules():
        print(f"\n=== {name} ===", flush=True)
        started = time.perf_counter()
        try:
            code = run(name)
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
        except Exception:
            traceback.print_exc()
            code = 1
        outcome = "ok" if code == 0 else f"FAILED ({code})"
        print(f"=== {name}: {outcome} in {time.perf_counter() - started:.0f} s")
        if code != 0:
            failures.append(name)
    if failures:
        print(f"\nfailed: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
