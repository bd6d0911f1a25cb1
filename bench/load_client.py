"""A load generator for ``POST /invocations`` in a process of its own (used by simulator_replay).

One asyncio loop on raw keep-alive sockets, so its cost per request is small and it holds no lock
that the server's processes wait on; the closed-loop curve and the open-loop runs come from the same
code. Run as ``python -m bench.load_client --port P closed --users N --seconds S`` or ``... open
--rate R --seconds S --seed K``, the request body on stdin; it prints one JSON object.

Open loop: arrivals are a Poisson process at ``rate`` (exponential gaps from ``--seed``), as a
fleet's many independent callers are. A request's latency runs from when it was written to the
socket, not from its scheduled time: the loop's timers wake up to a millisecond late (epoll's
resolution), which is the generator's delay, not the server's. When no connection is free a request
waits for one, and its latency then runs from its scheduled time (that wait is queueing the server
caused); ``waited_for_connection`` counts those."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import sys
import time
from collections.abc import Sequence
from typing import Any

HOST = "127.0.0.1"


def percentile(ordered: Sequence[float], quantile: float) -> float:
    """The nearest-rank percentile of an ascending list."""
    return ordered[max(0, math.ceil(quantile * len(ordered)) - 1)]


def request_bytes(body: bytes) -> bytes:
    head = (
        f"POST /invocations HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: text/csv\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _invoke(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> bool:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return head[9:12] == b"200"


def _summary(latencies: list[float], seconds: float, failed: int) -> dict[str, Any]:
    ordered = sorted(latencies)
    if not ordered:
        return {"requests": 0, "failed": failed, "rps": 0.0}
    return {
        "requests": len(ordered),
        "failed": failed,
        "rps": len(ordered) / seconds,
        "p50_ms": 1000 * percentile(ordered, 0.50),
        "p99_ms": 1000 * percentile(ordered, 0.99),
        "mean_ms": 1000 * sum(ordered) / len(ordered),
    }


async def closed_loop(port: int, request: bytes, users: int, seconds: float) -> dict[str, Any]:
    """``users`` clients, each sending its next request when the last is answered."""
    latencies: list[float] = []
    failed = 0
    stop = time.perf_counter() + seconds

    async def user() -> None:
        nonlocal failed
        reader, writer = await asyncio.open_connection(HOST, port)
        while time.perf_counter() < stop:
            started = time.perf_counter()
            if await _invoke(reader, writer, request):
                latencies.append(time.perf_counter() - started)
            else:
                failed += 1
        writer.close()

    await asyncio.gather(*(user() for _ in range(users)))
    return {"users": users, "seconds": seconds, **_summary(latencies, seconds, failed)}


async def open_loop(
    port: int, request: bytes, rate: float, seconds: float, *, seed: int, connections: int
) -> dict[str, Any]:
    """Poisson arrivals at ``rate`` a second for ``seconds``; see the module docstring."""
    free: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(connections):
        free.put_nowait(await asyncio.open_connection(HOST, port))
    latencies: list[float] = []
    failed = 0
    waited = 0

    async def one(due: float) -> None:
        nonlocal failed, waited
        if free.empty():
            waited += 1
            reader, writer = await free.get()
            started = due
        else:
            reader, writer = free.get_nowait()
            started = time.perf_counter()
        ok = await _invoke(reader, writer, request)
        done = time.perf_counter()
        free.put_nowait((reader, writer))
        if ok:
            latencies.append(done - started)
        else:
            failed += 1

    arrivals = random.Random(seed)
    tasks: list[asyncio.Task[None]] = []
    start = time.perf_counter() + 0.1
    due = start
    while (due := due + arrivals.expovariate(rate)) < start + seconds:
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(due)))
    await asyncio.gather(*tasks)
    while not free.empty():
        free.get_nowait()[1].close()
    return {
        "rate": rate,
        "seconds": seconds,
        "offered": len(tasks),
        "waited_for_connection": waited,
        **_summary(latencies, seconds, failed),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load_client")
    parser.add_argument("--port", type=int, required=True)
    modes = parser.add_subparsers(dest="mode", required=True)
    closed = modes.add_parser("closed")
    closed.add_argument("--users", type=int, required=True)
    closed.add_argument("--seconds", type=float, required=True)
    opened = modes.add_parser("open")
    opened.add_argument("--rate", type=float, required=True)
    opened.add_argument("--seconds", type=float, required=True)
    opened.add_argument("--seed", type=int, default=1)
    opened.add_argument("--connections", type=int, default=128)
    args = parser.parse_args(argv)
    request = request_bytes(sys.stdin.buffer.read())
    if args.mode == "closed":
        result = asyncio.run(closed_loop(args.port, request, args.users, args.seconds))
    else:
        arrivals = open_loop(
            args.port, request, args.rate, args.seconds, seed=args.seed, connections=args.connections
        )
        result = asyncio.run(arrivals)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
