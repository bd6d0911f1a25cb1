"""A pool thread sends its answer itself (xgbserve.worker): what the socket takes at once goes out,
the rest is left to the event loop in order, and output the loop has not sent yet keeps its place."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from xgbserve.worker import HealthFirstWorker, _Conn  # pyright: ignore[reportPrivateUsage]


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    server, client = socket.socketpair()
    server.setblocking(False)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    yield server, client
    server.close()
    client.close()


def _received(client: socket.socket, size: int) -> bytes:
    client.settimeout(5)
    data = b""
    while len(data) < size:
        data += client.recv(65536)
    return data


def test_a_small_answer_goes_out_whole_and_nothing_is_left(pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = pair
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n0.5\n"
    assert HealthFirstWorker._send_now(_Conn(sock=server, addr=None), answer) == b""  # pyright: ignore[reportPrivateUsage]
    assert _received(client, len(answer)) == answer


def test_what_the_socket_does_not_take_is_left_for_the_loop_in_order(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    server, client = pair
    answer = bytes(range(256)) * 8192  # 2 MiB against a 4 KiB send buffer
    rest = HealthFirstWorker._send_now(_Conn(sock=server, addr=None), answer)  # pyright: ignore[reportPrivateUsage]
    assert 0 < len(rest) < len(answer)
    sent = len(answer) - len(rest)
    assert _received(client, sent) == answer[:sent]
    assert answer[sent:] == rest


def test_output_the_loop_has_not_sent_keeps_its_place(pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = pair
    conn = _Conn(sock=server, addr=None, out=bytearray(b"HTTP/1.1 100 Continue\r\n\r\n"))
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n0.5\n"
    assert HealthFirstWorker._send_now(conn, answer) == answer  # pyright: ignore[reportPrivateUsage]
    client.setblocking(False)
    with pytest.raises(BlockingIOError):
        client.recv(100)


def test_a_closed_socket_leaves_the_answer_to_the_loop(pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = pair
    client.close()
    server.close()
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n0.5\n"
    assert HealthFirstWorker._send_now(_Conn(sock=server, addr=None), answer) == answer  # pyright: ignore[reportPrivateUsage]
