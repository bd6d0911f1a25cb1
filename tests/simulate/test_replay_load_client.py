"""The replay benchmark's load generator (bench/load_client.py) against a small keep-alive server on
127.0.0.1: it counts what it sends, reads every answer whole, and an open-loop request that finds
no free connection is timed from its scheduled time."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from bench import load_client


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    delay_seconds = 0.0
    behaviour = "keep-alive"  # or "close" (Connection: close after each answer), "cut" (answer cut short)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        time.sleep(self.delay_seconds)
        status = 200 if self.path == "/invocations" else 404
        body = b"0.5\n" * 3
        self.send_response(status)
        self.send_header("Content-Length", str(len(body) * (10 if self.behaviour == "cut" else 1)))
        if self.behaviour == "close":
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        if self.behaviour == "cut":
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        del format, args


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    _Handler.delay_seconds = 0.0
    _Handler.behaviour = "keep-alive"


def _run(coroutine: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    """Run on a loop of its own: ``asyncio.run`` would leave this thread without a current loop,
    which later tests (Pulumi's mocks) expect ``get_event_loop`` to give them."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()


def _port(httpd: ThreadingHTTPServer) -> int:
    return int(httpd.server_address[1])


def test_the_closed_loop_answers_every_request_and_times_them(server: ThreadingHTTPServer) -> None:
    request = load_client.request_bytes(b"1,2,3\n")
    result = _run(load_client.closed_loop(_port(server), request, users=2, seconds=0.3))
    assert result["users"] == 2
    assert result["requests"] > 10
    assert result["failed"] == 0
    assert 0 < result["p50_ms"] <= result["p99_ms"]


def test_the_open_loop_sends_poisson_arrivals_at_the_rate(server: ThreadingHTTPServer) -> None:
    request = load_client.request_bytes(b"1,2,3\n")
    result = _run(load_client.open_loop(_port(server), request, 200.0, 1.0, seed=7, connections=8))
    # 200 a second for a second: a Poisson count of mean 200 (sd 14).
    assert 140 <= result["offered"] <= 260
    assert result["requests"] + result["failed"] == result["offered"]
    assert result["failed"] == 0


def test_a_server_that_closes_after_each_answer_still_gets_every_request(
    server: ThreadingHTTPServer,
) -> None:
    _Handler.behaviour = "close"
    request = load_client.request_bytes(b"1,2,3\n")
    closed = _run(load_client.closed_loop(_port(server), request, users=2, seconds=0.2))
    opened = _run(load_client.open_loop(_port(server), request, 100.0, 0.3, seed=5, connections=2))
    assert closed["requests"] > 5
    assert closed["failed"] == 0
    assert opened["requests"] == opened["offered"] > 0


def test_an_answer_cut_short_is_a_failed_request_not_a_crash(server: ThreadingHTTPServer) -> None:
    _Handler.behaviour = "cut"
    request = load_client.request_bytes(b"1,2,3\n")
    result = _run(load_client.open_loop(_port(server), request, 100.0, 0.3, seed=2, connections=2))
    assert result["failed"] == result["offered"] > 0
    assert result["requests"] == 0


def test_a_request_waiting_for_a_connection_is_timed_from_its_schedule(server: ThreadingHTTPServer) -> None:
    _Handler.delay_seconds = 0.02
    request = load_client.request_bytes(b"1,2,3\n")
    # One connection, 20 ms a request, 100 arrivals a second: most wait, and their wait counts.
    result = _run(load_client.open_loop(_port(server), request, 100.0, 0.3, seed=1, connections=1))
    assert result["waited_for_connection"] > 0
    assert result["p99_ms"] > 2 * 20


def test_an_answer_that_is_not_200_is_counted_as_failed(server: ThreadingHTTPServer) -> None:
    wrong_path = load_client.request_bytes(b"1,2,3\n").replace(b"/invocations", b"/elsewhere", 1)
    result = _run(load_client.closed_loop(_port(server), wrong_path, users=1, seconds=0.2))
    assert result["failed"] > 0
    assert result["requests"] == 0
