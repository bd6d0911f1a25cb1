"""A load generator for ``POST /invocations`` in a process of its own (used by simulator_replay).

One asyncio loop on raw keep-alive sockets, so its cost per request is small and it holds no lock
that the server's processes wait on; the closed-loop curve and the open-loop runs come from the same
code. Run as ``python -m bench.load_client --port P closed --users N --seconds S`` or ``... open
--rate R --seconds S --seed K``, the request body on stdin; it prints one JSON object.

Open loop: arrivals are a Poisson process at ``rate`` (exponential gaps from ``--seed``), as a
fleet's many independent callers are. A request's latency runs from when it was written to the
socket, not from its scheduled time: the loop's timers wake up to a millisecond late (epoll's
resolution), which is the generator's delay, not the server's (``sent_late_p99_ms`` and
``sent_late_max_ms`` say how late). When no connection is free a request waits for one, in turn,
and its latency then runs from its scheduled time (that wait is queueing the server caused);
``waited_for_connection`` counts those. A reset, a close mid-answer or an answer without a
``Content-Length`` is a failed request, and the connection is replaced, as it is after
``Connection: close``."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections.abc import Sequence
from typing import Any

from tools.capacity.sizing import percentile_ms

HOST = "127.0.0.1"


def request_bytes(body: bytes) -> bytes:
    head = (
        f"POST /invocations HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: text/csv\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]
_BROKEN = (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError)
"""What a reset, a close mid-answer or an answer this client cannot frame raise."""


async def _invoke(connection: Connection, request: bytes) -> tuple[bool, bool]:
    """Send one request and read its answer whole: (answered 200, the connection can carry the next)."""
    reader, writer = connection
    try:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length: int | None = None
        close = False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            key = name.strip().lower()
            if key == b"content-length":
                length = int(value)
            elif key == b"connection":
                close = value.strip().lower() == b"close"
        if length is None:
            return False, False  # the body cannot be framed: nothing more can be read here
        await reader.readexactly(length)
    except _BROKEN:
        return False, False
    return head[9:12] == b"200", not close


async def _renewed(port: int, connection: Connection, usable: bool) -> Connection | None:
    """The connection, or a new one when the server closed it or said it would; None when none opens."""
    if usable:
        return connection
    connection[1].close()
    try:
        return await asyncio.open_connection(HOST, port)
    except OSError:
        return None


def _summary(latencies: list[float], seconds: float, failed: int) -> dict[str, Any]:
    ordered = sorted(latencies)
    if not ordered:
        return {"requests": 0, "failed": failed, "rps": 0.0}
    return {
        "requests": len(ordered),
        "failed": failed,
        "rps": len(ordered) / seconds,
        "p50_ms": 1000 * percentile_ms(ordered, 0.50),
        "p99_ms": 1000 * percentile_ms(ordered, 0.99),
        "mean_ms": 1000 * sum(ordered) / len(ordered),
    }


async def closed_loop(port: int, request: bytes, users: int, seconds: float) -> dict[str, Any]:
    """``users`` clients, each sending its next request when the last is answered."""
    latencies: list[float] = []
    failed = 0
    stop = time.perf_counter() + seconds

    async def user() -> None:
        nonlocal failed
        connection: Connection | None = await asyncio.open_connection(HOST, port)
        while connection is not None and time.perf_counter() < stop:
            started = time.perf_counter()
            ok, usable = await _invoke(connection, request)
            if ok:
                latencies.append(time.perf_counter() - started)
            else:
                failed += 1
            connection = await _renewed(port, connection, usable)
        if connection is not None:
            connection[1].close()

    await asyncio.gather(*(user() for _ in range(users)))
    return {"users": users, "seconds": seconds, **_summary(latencies, seconds, failed)}


async def open_loop(
    port: int, request: bytes, rate: float, seconds: float, *, seed: int, connections: int
) -> dict[str, Any]:
    """Poisson arrivals at ``rate`` a second for ``seconds``; see the module docstring."""
    free: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        free.put_nowait(await asyncio.open_connection(HOST, port))
    latencies: list[float] = []
    failed = 0
    waited = 0
    waiting = 0

    async def one(due: float) -> None:
        nonlocal failed, waited, waiting
        # Requests already waiting for a connection go first: a newcomer must not take the one just
        # freed ahead of them, or the wait the server caused would be hidden.
        if waiting or free.empty():
            waited += 1
            waiting += 1
            try:
                connection = await free.get()
            finally:
                waiting -= 1
            started = due
        else:
            connection = free.get_nowait()
            started = time.perf_counter()
        ok, usable = await _invoke(connection, request)
        done = time.perf_counter()
        if ok:
            latencies.append(done - started)
        else:
            failed += 1
        renewed = await _renewed(port, connection, usable)
        if renewed is not None:
            free.put_nowait(renewed)

    arrivals = random.Random(seed)
    tasks: list[asyncio.Task[None]] = []
    late: list[float] = []
    start = time.perf_counter() + 0.1
    due = start
    while (due := due + arrivals.expovariate(rate)) < start + seconds:
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        late.append(time.perf_counter() - due)
        tasks.append(asyncio.ensure_future(one(due)))
    await asyncio.gather(*tasks)
    while not free.empty():
        free.get_nowait()[1].close()
    late.sort()
    return {
        "rate": rate,
        "seconds": seconds,
        "offered": len(tasks),
        "waited_for_connection": waited,
        # How late the generator sent its arrivals (its timers, its own CPU): large values mean the
        # offered load was burstier than Poisson.
        "sent_late_p99_ms": 1000 * percentile_ms(late, 0.99) if late else 0.0,
        "sent_late_max_ms": 1000 * late[-1] if late else 0.0,
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
