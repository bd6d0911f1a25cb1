"""The worker's request framing as pure functions: what it accepts, and what it refuses and why."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from xgbserve import http1


def _head(text: bytes) -> http1.RequestHead:
    return http1.parse_head(text + b"\r\n\r\n")


def test_a_plain_request_head() -> None:
    head = _head(b"POST /invocations?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\nAccept: text/csv")
    assert (head.method, head.path, head.query, head.content_length, head.chunked) == (
        "POST",
        "/invocations",
        "x=1",
        12,
        False,
    )
    assert head.keep_alive
    assert head.header("accept") == "text/csv"


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GET /ping", HTTPStatus.BAD_REQUEST),
        (b"GET /ping HTTP/2.0", HTTPStatus.HTTP_VERSION_NOT_SUPPORTED),
        (b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked", HTTPStatus.BAD_REQUEST),
        (b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4", HTTPStatus.BAD_REQUEST),
        (b"POST / HTTP/1.1\r\nContent-Length: -3", HTTPStatus.BAD_REQUEST),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked", HTTPStatus.NOT_IMPLEMENTED),
        (b"GET / HTTP/1.1\r\nX-A: 1\r\n folded", HTTPStatus.BAD_REQUEST),
        (b"GET / HTTP/1.1\r\nX A: 1", HTTPStatus.BAD_REQUEST),
        (b"GET / HTTP/1.1\r\nX-A: a\x00b", HTTPStatus.BAD_REQUEST),
    ],
)
def test_ambiguous_or_malformed_heads_are_refused(raw: bytes, status: HTTPStatus) -> None:
    with pytest.raises(http1.HttpError) as caught:
        _head(raw)
    assert caught.value.status == status
    assert caught.value.message


def test_http_1_0_closes_unless_asked_and_1_1_keeps_unless_asked() -> None:
    assert not _head(b"GET /ping HTTP/1.0").keep_alive
    assert _head(b"GET /ping HTTP/1.0\r\nConnection: keep-alive").keep_alive
    assert not _head(b"GET /ping HTTP/1.1\r\nConnection: close").keep_alive


@settings(max_examples=100, deadline=None)
@given(
    chunks=st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=8),
    cut=st.integers(min_value=1, max_value=7),
)
def test_fuzz_chunked_bodies_decode_whatever_the_pieces_they_arrive_in(chunks: list[bytes], cut: int) -> None:
    wire = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks) + b"0\r\n\r\n"
    reader = http1.ChunkedReader(limit=10_000)
    buf = bytearray()
    for start in range(0, len(wire), cut):
        buf += wire[start : start + cut]
        del buf[: reader.feed(buf, 0)]
    assert reader.done
    assert reader.body() == b"".join(chunks)
    assert not buf


def test_chunked_body_over_the_limit_is_413_before_it_is_buffered() -> None:
    with pytest.raises(http1.HttpError) as caught:
        http1.ChunkedReader(limit=10).feed(b"ff\r\n", 0)
    assert caught.value.status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
