"""Hostile clients over real sockets against a real server: each case found by sending it."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import requests
from container_helpers import csv_of

from tools.serving import ContainerStartError, RunningContainer, running_container

HEAD = b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"


def exchange(port: int, data: bytes, *, half_close: bool = True, timeout: float = 15.0) -> bytes:
    """Send ``data``, optionally half-close, and read until the server closes (or ``timeout``)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        reply = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return reply
            reply += chunk


def status_and_body(reply: bytes) -> tuple[int, bytes]:
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def test_body_shorter_than_its_content_length_then_half_close_is_400(
    server: RunningContainer, rows: npt.NDArray[np.float32]
) -> None:
    body = csv_of(rows[:1])
    reply = exchange(server.port, HEAD + f"Content-Length: {len(body) + 10}\r\n\r\n".encode() + body)
    status, answer = status_and_body(reply)
    assert status == 400, reply
    assert b"the body ended after" in answer
    assert "Traceback" not in server.logs()


@pytest.mark.parametrize(
    "chunks",
    [
        b"zz\r\n1,2\r\n0\r\n\r\n",  # a chunk size that is not hex
        b"400\r\n1,2,3\r\n",  # a chunk longer than what follows, then half-close
        b"5\r\n1,2,3\r\n",  # no final chunk
        b"5\r\n1,2,3XX0\r\n\r\n",  # a chunk without its CRLF
    ],
)
def test_malformed_or_truncated_chunked_body_is_400_without_a_traceback(
    server: RunningContainer, chunks: bytes
) -> None:
    reply = exchange(server.port, HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + chunks)
    status, _ = status_and_body(reply)
    assert status == 400, reply
    assert "Traceback" not in server.logs()


def test_corrupt_pickle_that_crashes_xgboost_stops_the_server_before_any_worker(
    tmp_path: Path, model_dirs: dict[str, Path]
) -> None:
    """Three bit flips in a pickled Booster's bytes: XGBoost's parser segfaults (or fails to
    allocate) in the check child; the master exits 3 with the reason and never forks a worker."""
    data = bytearray((model_dirs["pickle"] / "xgboost-model").read_bytes())
    for offset, bit in ((277, 7), (851, 5), (1459, 1)):
        data[offset] ^= 1 << bit
    (tmp_path / "xgboost-model").write_bytes(bytes(data))
    with (
        pytest.raises(ContainerStartError) as caught,
        running_container(tmp_path, workers=2, ready_timeout=60),
    ):
        pass
    message = str(caught.value)
    assert "exited with code 3" in message
    assert "serve: the model does not load:" in message
    assert "Booting worker" not in message


SEVEN_MB = 7 * 1024 * 1024


def test_seven_megabytes_get_a_413_that_http_client_can_read(server: RunningContainer) -> None:
    """http.client writes the whole body before it reads: the server drains it, then answers."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request(
            "POST", "/invocations", body=b"1," * (SEVEN_MB // 2), headers={"Content-Type": "text/csv"}
        )
        response = connection.getresponse()
        assert response.status == 413
        assert b"send fewer records per request" in response.read()
    finally:
        connection.close()


def test_seven_megabytes_get_a_413_that_requests_can_read(server: RunningContainer) -> None:
    response = requests.post(
        f"{server.url}/invocations",
        data=b"1," * (SEVEN_MB // 2),
        headers={"Content-Type": "text/csv"},
        timeout=30,
    )
    assert response.status_code == 413
    assert response.json()["status"] == 413


def test_pipelined_requests_on_one_connection_are_answered_in_order(
    server: RunningContainer, rows: npt.NDArray[np.float32]
) -> None:
    body = csv_of(rows[:2])
    invocation = HEAD + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
    ping = b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"
    last = b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    reply = exchange(server.port, ping + invocation + ping + last, half_close=False)
    assert reply.count(b"HTTP/1.1 ") == 4
    assert reply.count(b"HTTP/1.1 200 OK\r\n") == 4
    first, second, *_ = reply.split(b"HTTP/1.1 200 OK\r\n")[1:]
    assert first.endswith(b"\r\n\r\n")  # the ping: no body
    assert second.split(b"\r\n\r\n", 1)[1].count(b"\n") == 2  # two CSV lines, between the pings


def test_expect_100_continue_is_honoured(server: RunningContainer, rows: npt.NDArray[np.float32]) -> None:
    body = csv_of(rows[:1])
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as sock:
        sock.sendall(HEAD + f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n".encode())
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")


@pytest.fixture(scope="module")
def impatient_server(model_dirs: dict[str, Path]) -> Iterator[RunningContainer]:
    """One worker, one-second read deadlines: slow and stalled clients against few resources."""
    env = {"SERVER_READ_TIMEOUT_SECONDS": "1"}
    with running_container(model_dirs["json"], workers=1, env=env) as running:
        yield running


def _ping_seconds(port: int) -> float:
    started = time.monotonic()
    reply = exchange(port, b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeout=2.0)
    assert reply.startswith(b"HTTP/1.1 200"), reply
    return time.monotonic() - started


def test_slow_and_stalled_clients_hold_no_thread_and_pings_stay_fast(
    impatient_server: RunningContainer, rows: npt.NDArray[np.float32]
) -> None:
    """16 connections sending a byte at a time and 256 that stall mid-head: every ping within
    2 s, an ordinary request still served, and the stalled ones answered 408 and closed."""
    port = impatient_server.port
    stalled = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(256)]
    for sock in stalled:
        sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-")
    stop = threading.Event()
    request = HEAD + b"Content-Length: 4\r\n\r\n1,2\n"

    def dribble() -> None:
        # At a byte every 0.05 s the request takes longer than the 1 s deadline: the server
        # answers 408 and closes, and the next byte meets a closed socket. That is the point.
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock, contextlib.suppress(OSError):
            for byte in request:
                if stop.is_set():
                    return
                sock.sendall(bytes([byte]))
                time.sleep(0.05)

    dribblers = [threading.Thread(target=dribble, daemon=True) for _ in range(16)]
    for thread in dribblers:
        thread.start()
    try:
        pings = [_ping_seconds(port) for _ in range(5)]
        assert max(pings) < 2.0, pings
        body = csv_of(rows[:1])
        answer = exchange(
            port, HEAD + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body
        )
        assert answer.startswith(b"HTTP/1.1 200")
        # Past the one-second deadline, every stalled connection gets its 408 and is closed.
        for sock in stalled[:8]:
            sock.settimeout(5)
            reply = sock.recv(65536)
            assert reply.startswith(b"HTTP/1.1 408"), reply
            assert b"did not arrive within 1 s" in reply
    finally:
        stop.set()
        for sock in stalled:
            sock.close()
        for thread in dribblers:
            thread.join(timeout=10)


@pytest.fixture(scope="module")
def overloaded_server(model_dirs: dict[str, Path]) -> Iterator[RunningContainer]:
    """One worker, one thread, a 0.1 s deadline: 24 clients with 1,500-record batches overload it."""
    env = {"SERVER_THREADS": "1", "SERVER_REQUEST_DEADLINE_SECONDS": "0.1"}
    with running_container(model_dirs["json"], workers=1, env=env) as running:
        yield running


def test_overload_is_shed_at_once_with_retry_after_while_pings_are_answered(
    overloaded_server: RunningContainer, rows: npt.NDArray[np.float32]
) -> None:
    port = overloaded_server.port
    batch = csv_of(rows[:1500])
    answers: list[tuple[int, dict[str, str], bytes]] = []
    lock = threading.Lock()

    def client() -> None:
        for _ in range(4):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            try:
                connection.request("POST", "/invocations", body=batch, headers={"Content-Type": "text/csv"})
                response = connection.getresponse()
                with lock:
                    answers.append((response.status, dict(response.getheaders()), response.read()))
            finally:
                connection.close()

    clients = [threading.Thread(target=client) for _ in range(24)]
    for thread in clients:
        thread.start()
    pings = []
    while any(thread.is_alive() for thread in clients) and len(pings) < 20:
        pings.append(_ping_seconds(port))
        time.sleep(0.05)
    for thread in clients:
        thread.join(timeout=120)
    statuses = sorted({status for status, _, _ in answers})
    assert statuses == [200, 503], statuses
    shed = [(headers, body) for status, headers, body in answers if status == 503]
    headers, body = shed[0]
    assert int(headers["Retry-After"]) >= 1
    document = json.loads(body)
    assert document["overloaded"] is True
    assert document["retry_after"] == int(headers["Retry-After"])
    assert "the instance is overloaded" in document["error"]
    assert max(pings) < 2.0, pings
    log = [json.loads(line) for line in overloaded_server.logs().splitlines() if line.startswith("{")]
    assert sum(1 for entry in log if entry.get("shed") is True and entry["status"] == 503) == len(shed)


def test_a_burst_after_an_idle_spell_is_served_not_shed(
    server: RunningContainer, rows: npt.NDArray[np.float32]
) -> None:
    """The pace that predicts a wait counts busy time only: an idle spell longer than the 2 s
    deadline, then 16 requests at once, must not look like one 2 s completion (it once shed them)."""
    body = csv_of(rows[:1])

    def post() -> int:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        try:
            connection.request("POST", "/invocations", body=body, headers={"Content-Type": "text/csv"})
            return connection.getresponse().status
        finally:
            connection.close()

    assert post() == 200
    time.sleep(2.5)
    statuses: list[int] = []
    threads = [threading.Thread(target=lambda: statuses.extend(post() for _ in range(3))) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert statuses == [200] * 48
