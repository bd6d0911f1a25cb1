"""Fixtures for the capacity tool: small stand-in HTTP servers (the demo model is tests/conftest.py's).

The stand-ins (stdlib, in a thread, 127.0.0.1 on a port the OS picks) answer in ways the real
container never should (every request a 500, or slower than the objective), so the tool's
handling of a failing or slow target is tested against real sockets and the real Locust engine.
"""

from __future__ import annotations

import http.server
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


StubServer = Callable[..., str]


@pytest.fixture
def stub_server() -> Iterator[StubServer]:
    """Start a server answering every POST with ``status`` after ``delay`` seconds; returns its URL.

    With ``fail_after=n`` the first n requests get 200 and every later one 503 (a server that
    passes the tool's single preflight request, then fails under load).
    """
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(
        *, status: int = 200, delay: float = 0.0, body: bytes = b"0.5\n", fail_after: int | None = None
    ) -> str:
        served = iter(range(sys.maxsize))

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as Locust's client expects

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if delay:
                    time.sleep(delay)
                failing = fail_after is not None and next(served) >= fail_after
                self.send_response(503 if failing else status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/invocations"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


CeilingServer = Callable[..., str]


class BacklogServer(http.server.ThreadingHTTPServer):
    # socketserver's default backlog is 5: a step that opens 14 connections at once overflows it,
    # and the dropped SYNs come back after a 1 s retransmission, a latency the server never had.
    request_queue_size = 128


@pytest.fixture
def ceiling_server() -> Iterator[CeilingServer]:
    """Start a server with a known hard ceiling; returns its URL.

    ``workers`` requests are served at once, each taking ``service_seconds`` (a sleep, so the
    server costs no CPU and the ceiling holds on a busy machine); the rest queue. Its ceiling is
    ``workers / service_seconds`` req/s, reached at exactly ``workers`` concurrent users: one user
    more and a request in every ``workers + 1`` waits a whole service time."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(*, workers: int, service_seconds: float) -> str:
        slots = threading.Semaphore(workers)

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out as two writes: with Nagle's algorithm the body waits for the
            # client's delayed ACK (~40 ms), which would blur the known service time.
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with slots:
                    time.sleep(service_seconds)
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "4")
                self.end_headers()
                self.wfile.write(b"0.5\n")

            def log_message(self, format: str, *args: object) -> None:
                return

        server = BacklogServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/invocations"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
