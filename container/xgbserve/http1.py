"""HTTP/1.1 request framing for the worker's event loop: heads, bodies, chunked encoding, answers.

Pure functions over bytes, no sockets: the loop feeds what it has received and learns whether a
request head or body is complete, and a malformed one raises :class:`HttpError` with the status
and a message for the client. Strict on purpose (a server behind SageMaker's front end sees
well-formed requests; anything ambiguous is refused): one Content-Length, or chunked
Transfer-Encoding, never both; no obsolete line folding; no control characters in values.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from http import HTTPStatus

# Request line and headers together; a SageMaker request's head is a few hundred bytes.
MAX_HEAD_BYTES = 32 * 1024
MAX_HEADERS = 100
_TOKEN = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_BAD_VALUE_BYTES = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_CHUNK_SIZE = re.compile(rb"^([0-9A-Fa-f]{1,8})(;[^\r\n]*)?$")


class HttpError(Exception):
    """A request the server cannot frame: answered with ``status`` and ``message``, then closed."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class RequestHead:
    method: str
    target: str
    path: str
    query: str
    version: str
    headers: list[tuple[str, str]]
    content_length: int | None
    chunked: bool
    keep_alive: bool
    expect_continue: bool

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return None


def find_head_end(buf: bytes | bytearray, start: int = 0) -> int:
    """Index just past the blank line that ends a request head, or -1 if it has not arrived."""
    end = buf.find(b"\r\n\r\n", start)
    return -1 if end < 0 else end + 4


def parse_head(raw: bytes) -> RequestHead:  # noqa: PLR0912  (one pass over the header lines)
    """Parse a complete request head (request line, headers, ending blank line)."""
    lines = raw[:-4].split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not _TOKEN.match(parts[0]) or not parts[1]:
        raise HttpError(HTTPStatus.BAD_REQUEST, "the request line is not METHOD TARGET HTTP/1.1")
    method, target, version = (part.decode("latin-1") for part in parts)
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise HttpError(
            HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, f"{version[:20]} is not supported: use HTTP/1.1"
        )
    if len(lines) - 1 > MAX_HEADERS:
        raise HttpError(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, f"more than {MAX_HEADERS} header fields")
    headers: list[tuple[str, str]] = []
    lengths: set[str] = set()
    codings: list[str] = []
    connection: list[str] = []
    expect: str | None = None
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.match(name):
            raise HttpError(
                HTTPStatus.BAD_REQUEST, "a header line is not NAME: VALUE (no folding, no spaces)"
            )
        value = value.strip(b" \t")
        if _BAD_VALUE_BYTES.search(value):
            raise HttpError(HTTPStatus.BAD_REQUEST, "a header value holds a control character")
        key = name.decode("latin-1")
        text = value.decode("latin-1")
        headers.append((key, text))
        lowered = key.lower()
        if lowered == "content-length":
            lengths.add(text)
        elif lowered == "transfer-encoding":
            codings.extend(item.strip().lower() for item in text.split(",") if item.strip())
        elif lowered == "connection":
            connection.extend(item.strip().lower() for item in text.split(","))
        elif lowered == "expect":
            expect = text.lower()
    content_length: int | None = None
    if lengths:
        if len(lengths) > 1 or not next(iter(lengths)).isdigit() or len(next(iter(lengths))) > 15:
            raise HttpError(HTTPStatus.BAD_REQUEST, "Content-Length is not one whole number")
        content_length = int(next(iter(lengths)))
    chunked = False
    if codings:
        if codings != ["chunked"]:
            raise HttpError(HTTPStatus.NOT_IMPLEMENTED, "only Transfer-Encoding: chunked is supported")
        if content_length is not None:
            raise HttpError(
                HTTPStatus.BAD_REQUEST, "a request has Content-Length or chunked encoding, not both"
            )
        chunked = True
    keep_alive = "keep-alive" in connection if version == "HTTP/1.0" else "close" not in connection
    path, _, query = target.partition("?")
    return RequestHead(
        method=method,
        target=target,
        path=path,
        query=query,
        version=version,
        headers=headers,
        content_length=content_length,
        chunked=chunked,
        keep_alive=keep_alive,
        expect_continue=expect == "100-continue",
    )


@dataclass
class ChunkedReader:
    """Decodes a chunked body as its bytes arrive; ``feed`` returns how many bytes it consumed."""

    limit: int
    parts: list[bytes] = field(default_factory=list)
    size: int = 0
    done: bool = False
    _remaining: int = -1  # bytes of the current chunk still to read; -1: a size line is next
    _in_trailers: bool = False

    def feed(self, buf: bytes | bytearray, start: int) -> int:  # noqa: PLR0912  (one state machine)
        """Consume what it can of ``buf[start:]``; raise HttpError on a malformed body."""
        pos = start
        while not self.done:
            if self._in_trailers:
                end = buf.find(b"\r\n", pos)
                if end < 0:
                    self._check_line(len(buf) - pos)
                    return pos - start
                if end == pos:
                    self.done = True
                pos = end + 2
                continue
            if self._remaining < 0:
                end = buf.find(b"\r\n", pos)
                if end < 0:
                    self._check_line(len(buf) - pos)
                    return pos - start
                match = _CHUNK_SIZE.match(bytes(buf[pos:end]))
                if match is None:
                    raise HttpError(HTTPStatus.BAD_REQUEST, "the chunked body has a malformed chunk size")
                size = int(match.group(1), 16)
                pos = end + 2
                if size == 0:
                    self._in_trailers = True
                    continue
                if self.size + size > self.limit:
                    raise HttpError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "")
                self._remaining = size
            take = min(self._remaining, len(buf) - pos)
            if take:
                self.parts.append(bytes(buf[pos : pos + take]))
                self.size += take
                self._remaining -= take
                pos += take
            if self._remaining:
                return pos - start
            if len(buf) - pos < 2:
                return pos - start
            if buf[pos : pos + 2] != b"\r\n":
                raise HttpError(HTTPStatus.BAD_REQUEST, "a chunk of the chunked body does not end with CRLF")
            pos += 2
            self._remaining = -1
        return pos - start

    @staticmethod
    def _check_line(length: int) -> None:
        if length > 4096:
            raise HttpError(HTTPStatus.BAD_REQUEST, "a chunk size or trailer line is too long")

    def body(self) -> bytes:
        return b"".join(self.parts)


def status_line(status: int) -> str:
    return f"{status} {HTTPStatus(status).phrase}"


def encode_response(
    status: str,
    headers: list[tuple[str, str]],
    body: bytes,
    *,
    keep_alive: bool,
    version: str = "HTTP/1.1",
    head_only: bool = False,
) -> bytes:
    """A whole response: the status line, the app's headers plus framing, and the body."""
    lines = [f"HTTP/1.1 {status}"]
    has_length = False
    for name, value in headers:
        lowered = name.lower()
        if lowered in ("connection", "transfer-encoding", "keep-alive"):
            continue  # framing is the server's
        has_length = has_length or lowered == "content-length"
        lines.append(f"{name}: {value}")
    if not has_length:
        lines.append(f"Content-Length: {len(body)}")
    if not keep_alive:
        lines.append("Connection: close")
    elif version == "HTTP/1.0":
        lines.append("Connection: keep-alive")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + body


def json_error(status: HTTPStatus, message: str, **extra: object) -> bytes:
    """The JSON error body the app writes too: ``{"error": message, "status": N, ...}``."""
    return json.dumps({"error": message, "status": int(status), **extra}).encode()
