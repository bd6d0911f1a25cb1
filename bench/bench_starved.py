"""The server on a CPU-starved instance: health, shedding and throughput at 0.4 CPU.

An ``ml.t2.medium`` out of CPU credits runs at its baseline, 20% of each of its 2 vCPUs: 0.4 CPU.
This puts the server (``container/serve``, default settings: 5 workers) in a cgroup-v1 CPU quota
of 0.4 CPU, offers it far more single-record ``POST /invocations`` than it can serve from 64,
256 and 1,024 concurrent clients, and pings it every 0.25 s with SageMaker's 2 s timeout.

Per level: pings answered within 2 s (SageMaker takes an instance out of service when they are
not), ping p99, requests served per second, shed (503) per second, p99 of served requests. Then
the served throughput against what the quota allows: the same server without a quota, under the
same load (the same number of clients, in the same run), serves so many requests per CPU-second
it uses; x 0.4 CPU is what a perfect server would serve in the quota. Both servers run at once and
each throttled level is bracketed by two unthrottled runs of half its length, so the allowance is
measured around the level it judges: this machine's speed drifts by 10-20% over minutes, and
measuring all unthrottled levels first put that drift into the ratio. (Also reported, as the
issue first put it: unthrottled req/s x 0.4; on this machine the unthrottled server uses both
cores, so that figure is not the quota's allowance.)

Clients and pinger are separate processes outside the cgroup: the load generator's own event
loop must not delay the pings it times. A client that is shed waits its ``Retry-After`` before
its next request, as the 503 asks (and as the front door tells API clients); without that a
closed loop of 1,024 clients spins on cheap 503s instead of modelling load.

``python -m bench.bench_starved [--quick]``: 60 s per level (``--quick``: 10 s, the seconds per
level are in the results), results in ``bench/results/starved.json``. Needs root and a writable
``/sys/fs/cgroup/cpu``; elsewhere it says so and measures nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import socket
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import psutil

from bench.figures import figure, write_results
from tools.serving import REPO_ROOT, RunningContainer, running_container

CGROUP_ROOT = Path("/sys/fs/cgroup/cpu")
PERIOD_US = 100_000
QUOTA_CPUS = 0.4
PING_INTERVAL_SECONDS = 0.25
PING_TIMEOUT_SECONDS = 2.0
LEVELS = (64, 256, 1024)
MODULE = "bench.bench_starved"
MODEL_DIR = REPO_ROOT / "build" / "demo-model"


# The cgroup --------------------------------------------------------------------------------------


def cgroup_unavailable() -> str | None:
    """Why the quota cannot be set here, or None."""
    if os.geteuid() != 0:
        return "not root"
    if not (CGROUP_ROOT / "cpu.cfs_quota_us").exists():
        return f"no cgroup-v1 CPU controller at {CGROUP_ROOT}"
    return None


@contextlib.contextmanager
def cpu_quota(cpus: float) -> Iterator[Path]:
    """A child cgroup limited to ``cpus`` CPUs; removed (after its processes are gone) on exit."""
    group = CGROUP_ROOT / f"bench-starved-{os.getpid()}"
    group.mkdir()
    try:
        (group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
        (group / "cpu.cfs_quota_us").write_text(str(round(cpus * PERIOD_US)))
        yield group
    finally:
        deadline = time.monotonic() + 30
        while (group / "cgroup.procs").read_text().strip() and time.monotonic() < deadline:
            time.sleep(0.1)
        group.rmdir()


def _join_cgroup(group: Path) -> None:
    (group / "cgroup.procs").write_text(str(os.getpid()))


def throttled_seconds(group: Path) -> float:
    for line in (group / "cpu.stat").read_text().splitlines():
        name, _, value = line.partition(" ")
        if name == "throttled_time":
            return int(value) / 1e9
    return 0.0


def server_cpu_seconds(pid: int) -> float:
    """CPU time of the master and its workers so far."""
    total = 0.0
    try:
        master = psutil.Process(pid)
        for process in [master, *master.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                total += times.user + times.system
    except psutil.Error:
        pass
    return total


# Load: clients and pinger, each in its own process ----------------------------------------------


@dataclass
class LoadResult:
    served_latencies: list[float] = field(default_factory=list)
    shed: int = 0
    other: dict[str, int] = field(default_factory=dict)
    errors: int = 0


def _request(body: bytes) -> bytes:
    return (
        b"POST /invocations HTTP/1.1\r\nHost: bench\r\nContent-Type: text/csv\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, body


async def _client(port: int, request: bytes, stop_at: float, result: LoadResult) -> None:
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    while time.monotonic() < stop_at:
        try:
            if writer is None or reader is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            started = time.monotonic()
            writer.write(request)
            status, headers, _ = await asyncio.wait_for(_read_response(reader), timeout=60)
            elapsed = time.monotonic() - started
            counted = time.monotonic() <= stop_at  # answers after the window are not counted
            if status == 200:
                if counted:
                    result.served_latencies.append(elapsed)
            elif status == 503:
                result.shed += counted
                await asyncio.sleep(float(headers.get("retry-after", "1")))
            else:
                result.other[str(status)] = result.other.get(str(status), 0) + 1
            if headers.get("connection", "").lower() == "close":
                writer.close()
                reader = writer = None
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
            result.errors += 1
            if writer is not None:
                writer.close()
            reader = writer = None
            await asyncio.sleep(0.1)
    if writer is not None:
        writer.close()


def load_process(plan: tuple[int, int, float, bytes], go: Any, out: Connection) -> None:
    """(port, clients, seconds, body): closed-loop clients from ``go`` on; sends a LoadResult back."""
    port, clients, seconds, body = plan
    request = _request(body)
    result = LoadResult()

    async def main() -> None:
        go.wait()
        stop_at = time.monotonic() + seconds
        await asyncio.gather(*(_client(port, request, stop_at, result) for _ in range(clients)))

    asyncio.run(main())
    out.send(asdict(result))
    out.close()


def ping_process(port: int, seconds: float, go: Any, out: Connection) -> None:
    """A new connection and ``GET /ping`` every 0.25 s with a 2 s timeout; latencies (None: missed)."""
    latencies: list[float | None] = []
    # The health checker is not on the instance: on this shared machine the pinger must not wait
    # for a core behind the load generator and other processes, or it times itself, not the server.
    with contextlib.suppress(OSError):
        os.nice(-10)
    go.wait()
    stop_at = time.monotonic() + seconds
    while time.monotonic() < stop_at:
        started = time.monotonic()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=PING_TIMEOUT_SECONDS) as sock:
                sock.sendall(b"GET /ping HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                reply = b""
                while b"\r\n\r\n" not in reply:
                    sock.settimeout(max(0.001, PING_TIMEOUT_SECONDS - (time.monotonic() - started)))
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    reply += chunk
            elapsed = time.monotonic() - started
            ok = reply.startswith(b"HTTP/1.1 200") and elapsed <= PING_TIMEOUT_SECONDS
            latencies.append(elapsed if ok else None)
        except OSError:
            latencies.append(None)
        time.sleep(max(0.0, PING_INTERVAL_SECONDS - (time.monotonic() - started)))
    out.send(latencies)
    out.close()


# One level ---------------------------------------------------------------------------------------


def _percentile(values: Sequence[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def single_record_csv() -> bytes:
    from tools.demo_model import digits_rows  # noqa: PLC0415  (the parent only: it imports XGBoost)

    return ",".join(repr(float(v)) for v in digits_rows()[0]).encode() + b"\n"


def run_level(server: RunningContainer, clients: int, seconds: float, body: bytes) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    load_out, load_in = context.Pipe(duplex=False)
    ping_out, ping_in = context.Pipe(duplex=False)
    go = context.Event()
    loader = context.Process(target=load_process, args=((server.port, clients, seconds, body), go, load_in))
    pinger = context.Process(target=ping_process, args=(server.port, seconds, go, ping_in))
    loader.start()
    pinger.start()
    time.sleep(3.0)  # both processes import and wait on ``go``; the server sits idle meanwhile
    cpu_before = server_cpu_seconds(server.pid)
    go.set()
    time.sleep(seconds)
    cpu = server_cpu_seconds(server.pid) - cpu_before  # over the window, not the clients' wind-down
    pings: list[float | None] = ping_out.recv()
    load = LoadResult(**load_out.recv())
    elapsed = seconds
    loader.join()
    pinger.join()
    answered = [p for p in pings if p is not None]
    served = len(load.served_latencies)
    return {
        "clients": clients,
        "seconds": elapsed,
        "pings": len(pings),
        "pings_missed": len(pings) - len(answered),
        "ping_p50_ms": round(statistics.median(answered) * 1000, 1) if answered else None,
        "ping_p99_ms": round(_percentile(answered, 0.99) * 1000, 1) if answered else None,
        "ping_max_ms": round(max(answered) * 1000, 1) if answered else None,
        "served_per_second": round(served / elapsed, 1),
        "shed_per_second": round(load.shed / elapsed, 1),
        "served_p50_ms": round(statistics.median(load.served_latencies) * 1000, 1) if served else None,
        "served_p99_ms": round(_percentile(load.served_latencies, 0.99) * 1000, 1) if served else None,
        "other_statuses": load.other,
        "client_errors": load.errors,
        "server_cpu_seconds": round(cpu, 2),
        "served_per_cpu_second": round(served / cpu, 1) if cpu else None,
    }


def _merged(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """Two unthrottled runs of the same clients as one: rates and CPU over both windows."""
    seconds = first["seconds"] + second["seconds"]
    served = first["served_per_second"] * first["seconds"] + second["served_per_second"] * second["seconds"]
    cpu = first["server_cpu_seconds"] + second["server_cpu_seconds"]
    return {
        "clients": first["clients"],
        "seconds": seconds,
        "served_per_second": round(served / seconds, 1),
        "server_cpu_seconds": round(cpu, 2),
        "served_per_cpu_second": round(served / cpu, 1) if cpu else None,
        "served_per_cpu_second_halves": [first["served_per_cpu_second"], second["served_per_cpu_second"]],
    }


@contextlib.contextmanager
def _server(group: Path | None) -> Iterator[RunningContainer]:
    preexec = (lambda: _join_cgroup(group)) if group is not None else None
    env = {"PYTHONDONTWRITEBYTECODE": "1"}
    with running_container(MODEL_DIR, env=env, ready_timeout=120, preexec=preexec) as server:
        yield server


def measure(seconds: float, levels: Sequence[int]) -> dict[str, Any]:
    unavailable = cgroup_unavailable()
    if unavailable:
        print(f"bench_starved: cannot set a CPU quota here ({unavailable}): nothing measured")
        return {"skipped": unavailable}
    body = single_record_csv()
    unthrottled: dict[int, dict[str, Any]] = {}
    results: list[dict[str, Any]] = []
    # Both servers run at once, and each throttled level is bracketed by two unthrottled halves
    # of its length: the allowance is measured around the level it judges, not minutes before it
    # (this machine's speed drifts by more than the 10% the goal leaves between them).
    with cpu_quota(QUOTA_CPUS) as group, _server(None) as free, _server(group) as starved:
        run_level(free, levels[0], min(5.0, seconds), body)  # warm up
        run_level(starved, levels[0], min(5.0, seconds), body)
        for clients in levels:
            before = run_level(free, clients, seconds / 2, body)
            throttled_before = throttled_seconds(group)
            level = run_level(starved, clients, seconds, body)
            level["throttled_seconds"] = round(throttled_seconds(group) - throttled_before, 1)
            after = run_level(free, clients, seconds / 2, body)
            unthrottled[clients] = _merged(before, after)
            print("unthrottled:", json.dumps(unthrottled[clients]), flush=True)
            print(json.dumps(level), flush=True)
            results.append(level)
    for level in results:
        baseline = unthrottled[level["clients"]]
        allowed = (baseline["served_per_cpu_second"] or 0.0) * QUOTA_CPUS
        level["quota_allows_per_second"] = round(allowed, 1)
        level["unthrottled_served_per_second"] = baseline["served_per_second"]
        level["unthrottled_served_per_cpu_second"] = baseline["served_per_cpu_second"]
        level["served_vs_quota_allowance"] = (
            round(level["served_per_second"] / allowed, 3) if allowed else None
        )
        level["served_vs_unthrottled_x_0_4"] = (
            round(level["served_per_second"] / (baseline["served_per_second"] * QUOTA_CPUS), 3)
            if baseline["served_per_second"]
            else None
        )
    return {
        "quota_cpus": QUOTA_CPUS,
        "seconds_per_level": seconds,
        "unthrottled": list(unthrottled.values()),
        "levels": results,
        "goals": {
            "no_missed_ping_at_1024": any(r["clients"] == 1024 and r["pings_missed"] == 0 for r in results),
            "ping_p99_under_250_ms": all((r["ping_p99_ms"] or 1e9) < 250 for r in results),
            "served_at_least_90_percent_of_quota": all(
                (r["served_vs_quota_allowance"] or 0) >= 0.9 for r in results
            ),
        },
    }


def _print(report: dict[str, Any]) -> None:
    if "levels" not in report:
        return
    for u in report["unthrottled"]:
        print(
            f"unthrottled, {u['clients']} clients: {u['served_per_second']} req/s on "
            f"{u['server_cpu_seconds']} CPU-s = {u['served_per_cpu_second']} req per CPU-s"
        )
    print(
        "clients | pings missed | ping p99 ms | served/s | 0.4 CPU allows | shed/s | served p99 ms "
        "| vs quota | vs unthr.x0.4"
    )
    for r in report["levels"]:
        print(
            f"{r['clients']:7} | {r['pings_missed']:4} of {r['pings']:4} | {r['ping_p99_ms']:11} | "
            f"{r['served_per_second']:8} | {r['quota_allows_per_second']:14} | {r['shed_per_second']:6} | "
            f"{r['served_p99_ms']:13} | {r['served_vs_quota_allowance']:8} | "
            f"{r['served_vs_unthrottled_x_0_4']}"
        )
    print("goals:", report["goals"])


def figures_of(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The report as figures for bench/results (bench.figures): per level, against the quota."""
    if "levels" not in report:
        return [figure(f"skipped: {report.get('skipped')}", 0.0, "none")]
    figures = [figure("seconds per level", report["seconds_per_level"], "s")]
    for level in report["levels"]:
        clients = level["clients"]
        figures += [
            figure(
                f"{clients} clients unthrottled: served per CPU-second",
                level["unthrottled_served_per_cpu_second"] or 0.0,
                "req/CPU-s",
            ),
            figure(
                f"{clients} clients unthrottled: served/s", level["unthrottled_served_per_second"], "req/s"
            ),
            figure(
                f"{clients} clients at 0.4 CPU: pings missed (2 s)",
                level["pings_missed"],
                f"of {level['pings']}",
            ),
            figure(f"{clients} clients at 0.4 CPU: ping p99", level["ping_p99_ms"] or 0.0, "ms"),
            figure(
                f"{clients} clients at 0.4 CPU: served/s",
                level["served_per_second"],
                "req/s",
                "what 0.4 CPU allows (the same clients unthrottled: req per CPU-s x 0.4)",
                level["quota_allows_per_second"],
            ),
            figure(
                f"{clients} clients at 0.4 CPU: served/s vs unthrottled req/s x 0.4",
                level["served_per_second"],
                "req/s",
                "unthrottled served/s x 0.4, same clients, same run",
                level["unthrottled_served_per_second"] * QUOTA_CPUS,
            ),
            figure(f"{clients} clients at 0.4 CPU: shed/s", level["shed_per_second"], "req/s"),
            figure(f"{clients} clients at 0.4 CPU: served p99", level["served_p99_ms"] or 0.0, "ms"),
        ]
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The server at 0.4 CPU: pings, shedding, throughput.")
    parser.add_argument("--quick", action="store_true", help="10 s per level instead of 60 s")
    parser.add_argument("--levels", default=",".join(map(str, LEVELS)), help="client counts, comma-separated")
    args = parser.parse_args(argv)
    seconds = 10.0 if args.quick else 60.0
    levels = [int(level) for level in args.levels.split(",")]
    report = measure(seconds, levels)
    _print(report)
    path = write_results("starved.json", figures_of(report), module=MODULE, argv=argv)
    print(f"results: {path.relative_to(REPO_ROOT)} (per level: {json.dumps(report.get('goals'))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
