"""Benchmark: the serving container against its baselines, side by side in one run (BENCHMARKS.md).

Figures (medians of --runs runs, each phase interleaved with its baseline so both see the same
machine load):

- single-record CSV req/s and p99 at 16 connections, vs a minimal Gunicorn + Flask app that
  returns a constant, with the same worker settings; and the server CPU (master and workers)
  each request cost, which other load on a shared machine disturbs less than req/s;
- 1,000-record CSV batches, records/s, vs in-process ``Booster.inplace_predict`` on the same rows
  with 1 and 2 threads;
- ``/ping`` p99 (a new connection each, like a health checker) while ``/invocations`` is saturated
  by a mix of single records and 1,000-record batches;
- cold start: process start to the first 200 on ``/ping``;
- memory: RSS and PSS of the master and all workers, at rest and under load.

Needs ``wrk`` (``apt-get install -y wrk``). Run: ``.venv/bin/python -m bench.bench_container``
(``--runs 3 --seconds 5`` by default, a few minutes in all; ``--compare-workers gthread,sync``
adds the worker-class comparison, both served at once and measured in alternation; ``--quick``
measures only the single-record figure, about a minute).
Results: ``bench/results/container.json`` (and ``container-workers.json``, ``container-quick.json``).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from bench.figures import figure, write_results
from tools.demo_model import digits_rows, train_demo_booster, write_model
from tools.serving import LOOPBACK, free_port, running_container

MODULE = "bench.bench_container"

CONNECTIONS = 16
BATCH_ROWS = 1000
# The server's own worker class (xgbserve.worker); the minimal app runs under it too, so that
# the comparison is of the apps under the same Gunicorn settings.
WORKER = "xgbserve.worker.HealthFirstWorker"
CONTAINER_DIR = Path(__file__).resolve().parent.parent / "container"

_MINIMAL_APP = """
from flask import Flask, Response

app = Flask(__name__)


@app.post("/invocations")
def invocations():
    return Response(b"0.5\\n", mimetype="text/csv")


@app.get("/ping")
def ping():
    return Response(b"")
"""

_LUA = """
local f = io.open("{body}", "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "text/csv"
"""


@dataclass(frozen=True)
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not match:
        raise ValueError(f"unexpected wrk latency {text!r}")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def run_wrk(url: str, script: Path, seconds: float, connections: int) -> WrkResult:
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{round(seconds)}s",
            "--latency",
            "-s",
            str(script),
            f"{url}/invocations",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors_match = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = int(errors_match.group(1)) if errors_match else 0
    if socket_errors:
        errors += sum(int(g) for g in socket_errors.groups())
    return WrkResult(rps, p50, p99, errors)


def _proc_children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def memory_mb(master: int) -> tuple[float, float]:
    """(RSS, PSS) in MiB of the master and its workers; PSS shares common pages out fairly."""
    rss = pss = 0
    for pid in [master, *_proc_children(master)]:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
    return rss / 1024, pss / 1024


def cpu_seconds(master: int) -> float:
    """User + system CPU seconds used so far by the master and its workers."""
    total = 0
    for pid in [master, *_proc_children(master)]:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (stat fields 14 and 15)
    return total / os.sysconf("SC_CLK_TCK")


def cpu_per_request_us(url: str, pid: int, script: Path, seconds: float) -> tuple[WrkResult, float]:
    """A wrk run and the server's CPU microseconds per request during it.

    On a shared machine, req/s swings with whatever else runs; the CPU a request costs the
    server swings less, so it is the steadier figure for comparing two servers.
    """
    before = cpu_seconds(pid)
    result = run_wrk(url, script, seconds, CONNECTIONS)
    used = cpu_seconds(pid) - before
    requests = result.requests_per_second * round(seconds)
    return result, used / requests * 1e6 if requests else 0.0


def _wait_ping(url: str, deadline: float) -> None:
    parsed = url.removeprefix("http://").split(":")
    while time.monotonic() < deadline:
        connection = http.client.HTTPConnection(parsed[0], int(parsed[1]), timeout=1)
        try:
            connection.request("GET", "/ping")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            connection.close()
        time.sleep(0.01)
    raise RuntimeError(f"{url} did not answer /ping in time")


@contextlib.contextmanager
def minimal_app(workers: int, worker_class: str, threads: int) -> Iterator[tuple[str, int]]:
    """The baseline: Flask returning a constant under Gunicorn with the same worker settings."""
    with tempfile.TemporaryDirectory(prefix="minimal-app-") as tmp:
        Path(tmp, "minimal_app.py").write_text(_MINIMAL_APP)
        port = free_port()
        conf = Path(tmp, "conf.py")
        conf.write_text(
            f"bind = ['{LOOPBACK}:{port}']\nworkers = {workers}\nworker_class = '{worker_class}'\n"
            f"threads = {threads}\nkeepalive = 75\ncontrol_socket_disable = True\naccesslog = None\n"
            f"wsgi_app = 'minimal_app:app'\npythonpath = '{tmp},{CONTAINER_DIR}'\nloglevel = 'warning'\n"
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://{LOOPBACK}:{port}"
            _wait_ping(url, time.monotonic() + 30)
            yield url, process.pid
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def in_process_records_per_second(
    booster: xgb.Booster, rows: np.ndarray, nthread: int, seconds: float
) -> float:
    booster.set_param({"nthread": nthread})
    booster.inplace_predict(rows)
    count = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        booster.inplace_predict(rows)
        count += 1
    return count * rows.shape[0] / (time.perf_counter() - started)


def ping_latencies(url: str, stop: threading.Event, out: list[float], interval: float = 0.02) -> None:
    host, port = url.removeprefix("http://").split(":")
    while not stop.is_set():
        started = time.perf_counter()
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            connection.request("GET", "/ping")
            response = connection.getresponse()
            response.read()
            if response.status == 200:
                out.append((time.perf_counter() - started) * 1000)
            else:
                out.append(float("inf"))
        except OSError:
            out.append(float("inf"))
        finally:
            connection.close()
        stop.wait(interval)


def _collect_wrk(out: list[WrkResult], url: str, script: Path, seconds: float, connections: int) -> None:
    out.append(run_wrk(url, script, seconds, connections))


def ping_under_load(
    url: str, pid: int, single_lua: Path, batch_lua: Path, seconds: float
) -> tuple[list[float], float, tuple[float, float]]:
    """Ping latencies (ms) while 8 connections send single records and 8 send 1,000-record batches."""
    stop = threading.Event()
    samples: list[float] = []
    pinger = threading.Thread(target=ping_latencies, args=(url, stop, samples))
    results: list[WrkResult] = []
    loaders = [
        threading.Thread(target=_collect_wrk, args=(results, url, lua, seconds, 8))
        for lua in (single_lua, batch_lua)
    ]
    for thread in loaders:
        thread.start()
    time.sleep(0.5)  # let the load build before sampling pings
    pinger.start()
    memory = memory_mb(pid)
    for thread in loaders:
        thread.join()
    stop.set()
    pinger.join()
    return samples, sum(r.requests_per_second for r in results), memory


def _p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] if ordered else 0.0


def compare_worker_classes(
    classes: list[str], threads: int, runs: int, seconds: float, work: Path
) -> list[dict[str, Any]]:
    """All worker classes served at once and measured in alternation, so they share the machine's load."""
    model_dir = write_model(train_demo_booster(), work / "model", "json").parent
    rows = digits_rows()
    batch = np.ascontiguousarray(np.resize(rows, (BATCH_ROWS, rows.shape[1])))
    (work / "single.csv").write_bytes(",".join(f"{v:g}" for v in rows[0]).encode() + b"\n")
    (work / "batch.csv").write_bytes("".join(",".join(f"{v:g}" for v in r) + "\n" for r in batch).encode())
    single_lua, batch_lua = work / "single.lua", work / "batch.lua"
    single_lua.write_text(_LUA.format(body=work / "single.csv"))
    batch_lua.write_text(_LUA.format(body=work / "batch.csv"))
    workers = 2 * (os.cpu_count() or 1) + 1
    single: dict[str, list[WrkResult]] = {c: [] for c in classes}
    pings: dict[str, list[float]] = {c: [] for c in classes}
    with contextlib.ExitStack() as stack:
        servers = {
            c: stack.enter_context(
                running_container(
                    model_dir, workers=workers, env={"SERVER_WORKER_CLASS": c, "SERVER_THREADS": str(threads)}
                )
            )
            for c in classes
        }
        for c in classes:
            run_wrk(servers[c].url, single_lua, 1, CONNECTIONS)
        for _ in range(runs):
            for c in classes:
                single[c].append(run_wrk(servers[c].url, single_lua, seconds, CONNECTIONS))
                samples, _, _ = ping_under_load(
                    servers[c].url, servers[c].pid, single_lua, batch_lua, seconds
                )
                pings[c].extend(samples)
    med = statistics.median
    base = classes[0]
    figures: list[dict[str, Any]] = []
    for c in classes:
        figures.append(
            figure(
                f"{c}: single-record CSV req/s, {CONNECTIONS} conns",
                med(r.requests_per_second for r in single[c]),
                "req/s",
                f"{base} in the same runs",
                med(r.requests_per_second for r in single[base]),
            )
        )
        figures.append(figure(f"{c}: single-record CSV p99", med(r.p99_ms for r in single[c]), "ms"))
        figures.append(
            figure(
                f"{c}: /ping p99 while saturated",
                _p99(pings[c]),
                "ms",
                f"{base} in the same runs",
                _p99(pings[base]),
            )
        )
        figures.append(figure(f"{c}: /ping median while saturated", med(pings[c]), "ms"))
    return figures


def cold_start_seconds(model_dir: Path, env: dict[str, str]) -> float:
    port = free_port()
    child_env = {**os.environ, **env, "MODEL_DIR": str(model_dir), "PORT": str(port), "BIND_HOST": LOOPBACK}
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve().parent.parent / "container" / "serve")],
        env=child_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_ping(f"http://{LOOPBACK}:{port}", started + 30)
        return time.monotonic() - started
    finally:
        process.terminate()
        process.wait(timeout=30)


def measure_single_record(
    runs: int, seconds: float, threads: int, work: Path, worker_class: str = WORKER
) -> list[dict[str, Any]]:
    """The headline figures: single-record req/s and p99 against the minimal app, alternated run
    by run, and cold start."""
    model_dir = write_model(train_demo_booster(), work / "model", "json").parent
    rows = digits_rows()
    (work / "single.csv").write_bytes(",".join(f"{v:g}" for v in rows[0]).encode() + b"\n")
    single_lua = work / "single.lua"
    single_lua.write_text(_LUA.format(body=work / "single.csv"))
    workers = 2 * (os.cpu_count() or 1) + 1
    ours: list[WrkResult] = []
    minimal: list[WrkResult] = []
    env = {"SERVER_WORKER_CLASS": worker_class, "SERVER_THREADS": str(threads)}
    ours_cpu: list[float] = []
    minimal_cpu: list[float] = []
    with (
        running_container(model_dir, workers=workers, env=env) as server,
        minimal_app(workers, worker_class, threads) as (minimal_url, minimal_pid),
    ):
        run_wrk(server.url, single_lua, 1, CONNECTIONS)
        run_wrk(minimal_url, single_lua, 1, CONNECTIONS)
        for _ in range(runs):
            result, cpu = cpu_per_request_us(server.url, server.pid, single_lua, seconds)
            ours.append(result)
            ours_cpu.append(cpu)
            result, cpu = cpu_per_request_us(minimal_url, minimal_pid, single_lua, seconds)
            minimal.append(result)
            minimal_cpu.append(cpu)
    cold = [cold_start_seconds(model_dir, env) for _ in range(runs)]
    med = statistics.median
    ratios = [o.requests_per_second / m.requests_per_second for o, m in zip(ours, minimal, strict=True)]
    short = worker_class.rsplit(".", 1)[-1]
    return [
        figure(
            f"single-record CSV p99 at {CONNECTIONS} conns ({short})",
            med(r.p99_ms for r in ours),
            "ms",
            "minimal app p99, same runs",
            med(r.p99_ms for r in minimal),
        ),
        figure("cold start to the first 200 on /ping", med(cold), "s"),
        figure(
            f"single-record CSV req/s, {CONNECTIONS} conns ({short} x{threads} threads)",
            med(r.requests_per_second for r in ours),
            "req/s",
            "minimal Flask app, same Gunicorn settings",
            med(r.requests_per_second for r in minimal),
        ),
        figure(
            "server CPU per single-record request",
            med(ours_cpu),
            "us",
            "minimal app, same runs",
            med(minimal_cpu),
        ),
        figure("lowest ratio of one run", min(ratios), "ratio"),
        figure("highest ratio of one run", max(ratios), "ratio"),
        figure("non-2xx or socket errors during the runs", float(sum(r.errors for r in ours)), "count"),
    ]


def measure(runs: int, seconds: float, worker_class: str, threads: int, work: Path) -> list[dict[str, Any]]:
    booster = train_demo_booster()
    model_dir = write_model(booster, work / "model", "json").parent
    rows = digits_rows()
    batch = np.ascontiguousarray(np.resize(rows, (BATCH_ROWS, rows.shape[1])))
    single_body = work / "single.csv"
    single_body.write_bytes(",".join(f"{v:g}" for v in rows[0]).encode() + b"\n")
    batch_body = work / "batch.csv"
    batch_body.write_bytes("".join(",".join(f"{v:g}" for v in r) + "\n" for r in batch).encode())
    single_lua = work / "single.lua"
    single_lua.write_text(_LUA.format(body=single_body))
    batch_lua = work / "batch.lua"
    batch_lua.write_text(_LUA.format(body=batch_body))

    cores = os.cpu_count() or 1
    workers = 2 * cores + 1
    env = {"SERVER_WORKER_CLASS": worker_class, "SERVER_THREADS": str(threads)}
    label = f"{worker_class}" + (f" x{threads} threads" if worker_class == "gthread" else "")
    ours_single: list[WrkResult] = []
    minimal_single: list[WrkResult] = []
    ours_cpu: list[float] = []
    minimal_cpu: list[float] = []
    ours_batch: list[WrkResult] = []
    inproc_1: list[float] = []
    inproc_2: list[float] = []
    ping_ms: list[float] = []
    load_during_ping: list[float] = []
    rest_mem: list[tuple[float, float]] = []
    load_mem: list[tuple[float, float]] = []
    with running_container(model_dir, workers=workers, env=env) as server:
        # Warm every worker (first request pays lazy imports and allocations).
        run_wrk(server.url, single_lua, 1, CONNECTIONS)
        run_wrk(server.url, batch_lua, 1, 4)
        rest_mem.append(memory_mb(server.pid))
        with minimal_app(workers, worker_class, threads) as (minimal_url, minimal_pid):
            run_wrk(minimal_url, single_lua, 1, CONNECTIONS)
            for _ in range(runs):
                result, cpu = cpu_per_request_us(server.url, server.pid, single_lua, seconds)
                ours_single.append(result)
                ours_cpu.append(cpu)
                result, cpu = cpu_per_request_us(minimal_url, minimal_pid, single_lua, seconds)
                minimal_single.append(result)
                minimal_cpu.append(cpu)
        for _ in range(runs):
            ours_batch.append(run_wrk(server.url, batch_lua, seconds, 4))
            inproc_1.append(in_process_records_per_second(booster, batch, 1, seconds / 2))
            inproc_2.append(in_process_records_per_second(booster, batch, 2, seconds / 2))
        for _ in range(runs):
            samples, throughput, memory = ping_under_load(
                server.url, server.pid, single_lua, batch_lua, seconds
            )
            ping_ms.extend(samples)
            load_during_ping.append(throughput)
            load_mem.append(memory)
    cold = [cold_start_seconds(model_dir, env) for _ in range(runs)]

    med = statistics.median
    ours_rps = med(r.requests_per_second for r in ours_single)
    minimal_rps = med(r.requests_per_second for r in minimal_single)
    batch_rps = med(r.requests_per_second for r in ours_batch) * BATCH_ROWS
    in1, in2 = med(inproc_1), med(inproc_2)
    p99_ping = _p99(ping_ms)
    errors = sum(r.errors for r in ours_single + ours_batch)
    return [
        figure(
            f"single-record CSV req/s, {CONNECTIONS} conns ({label})",
            ours_rps,
            "req/s",
            "minimal Flask app, same Gunicorn settings",
            minimal_rps,
        ),
        figure(
            "single-record CSV p99",
            med(r.p99_ms for r in ours_single),
            "ms",
            "minimal app p99",
            med(r.p99_ms for r in minimal_single),
        ),
        figure("minimal Flask app req/s (baseline)", minimal_rps, "req/s"),
        figure(
            "server CPU per single-record request",
            med(ours_cpu),
            "us",
            "minimal app, same runs",
            med(minimal_cpu),
        ),
        figure(
            "1,000-record CSV batches", batch_rps, "records/s", "in-process inplace_predict, 1 thread", in1
        ),
        figure(
            "1,000-record CSV batches vs 2 threads",
            batch_rps,
            "records/s",
            "in-process inplace_predict, 2 threads",
            in2,
        ),
        figure("in-process inplace_predict, 1 thread", in1, "records/s"),
        figure("in-process inplace_predict, 2 threads", in2, "records/s"),
        figure("/ping p99 while /invocations is saturated", p99_ping, "ms"),
        figure("/ping median while /invocations is saturated", med(ping_ms) if ping_ms else 0.0, "ms"),
        figure("/ping samples under load", float(len(ping_ms)), "count"),
        figure("invocations req/s during the ping test", med(load_during_ping), "req/s"),
        figure("cold start to first 200 on /ping", med(cold), "s"),
        figure("memory at rest, RSS all processes", med(m[0] for m in rest_mem), "MiB"),
        figure("memory at rest, PSS all processes", med(m[1] for m in rest_mem), "MiB"),
        figure("memory under load, RSS all processes", max(m[0] for m in load_mem), "MiB"),
        figure("memory under load, PSS all processes", max(m[1] for m in load_mem), "MiB"),
        figure("non-2xx or socket errors during the runs", float(errors), "count"),
    ]


def _print(figures: list[dict[str, Any]]) -> None:
    print(f"{'figure':<58} {'value':>12} {'unit':<9} {'ratio':>7}  baseline")
    for f in figures:
        ratio = "" if f["ratio"] is None else f"{f['ratio']:.3f}"
        print(f"{f['name']:<58} {f['value']:>12.2f} {f['unit']:<9} {ratio:>7}  {f['baseline'] or ''}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_container")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure; medians are reported (>= 3)")
    parser.add_argument("--seconds", type=int, default=5, help="length of each wrk run (whole seconds)")
    parser.add_argument("--threads", type=int, default=8, help="threads per gthread worker")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="only single-record req/s against the minimal app (about a minute; results in "
        "container-quick.json)",
    )
    parser.add_argument(
        "--compare-workers",
        default="",
        help="e.g. gthread,sync: also serve these worker classes side by side and compare them "
        "(results in container-workers.json)",
    )
    args = parser.parse_args(argv)
    if args.runs < 3:
        parser.error("--runs must be at least 3: medians of fewer mean little")
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get update && apt-get install -y wrk", file=sys.stderr)
        return 2
    if args.quick:
        with tempfile.TemporaryDirectory(prefix="bench-container-") as tmp:
            figures = measure_single_record(args.runs, args.seconds, args.threads, Path(tmp))
        write_results("container-quick.json", figures, module=MODULE, argv=argv)
        print(
            f"\nsingle record (medians of {args.runs} x {args.seconds} s; bench/results/container-quick.json)"
        )
        _print(figures)
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-container-") as tmp:
        figures = measure(args.runs, args.seconds, WORKER, args.threads, Path(tmp))
    write_results("container.json", figures, module=MODULE, argv=argv)
    print(f"\nserving container (medians of {args.runs} x {args.seconds} s; bench/results/container.json)")
    _print(figures)
    if args.compare_workers:
        with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
            classes = args.compare_workers.split(",")
            figures = compare_worker_classes(classes, args.threads, args.runs, args.seconds, Path(tmp))
        write_results("container-workers.json", figures, module=MODULE, argv=argv)
        print(f"\nworker classes side by side (medians of {args.runs}; bench/results/container-workers.json)")
        _print(figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
