"""Hostile clients over real sockets against a real server: each case found by sending it."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
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
