"""The Gunicorn worker: one event loop does all the network I/O; threads only run the app.

Why not Gunicorn's ``gthread``: its accept loop hands every new or kept-alive connection to the
thread pool at once, and a thread then reads the request from the socket. A ``/ping`` therefore
waited behind every queued connection (at 0.4 CPU and 256 clients, 4 of 69 pings missed
SageMaker's 2 s), and a client that sends half its headers, or a byte at a time, held a thread
until it finished or for ever. Here:

- The loop (this worker's main thread) reads every request head and body itself, without
  blocking, and answers ``GET /ping`` on the spot: a ping never waits for a thread, a parse or a
  predict, however many connections are open or queued.
- Every connection has a deadline: the head must arrive within ``SERVER_READ_TIMEOUT_SECONDS``
  of its first byte (of the connection, for a new one), then the body within as long again;
  otherwise 408 and close. Slow clients cost a socket and a buffer, never a thread.
- Only complete requests go to the thread pool. A request that has waited, or by the worker's
  recent pace would wait, longer than ``SERVER_REQUEST_DEADLINE_SECONDS`` for a thread is
  answered 503 at once with ``Retry-After`` (shed), counted in the access log.
- A body over the limit is answered 413 from its Content-Length at once, and the loop then
  reads and discards what the client still sends (bounded in bytes and time) before closing, so
  a client that writes its whole body before reading (Python's http.client, requests) gets the
  413 instead of a broken pipe. A short body (the client half-closes early) or a malformed
  chunked body is 400.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import queue
import selectors
import socket
import sys
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote_to_bytes

from gunicorn.workers.base import Worker

from . import http1
from .pace import PoolPace, retry_after_seconds
from .settings import Settings

# A request head may take this long to arrive once begun; so may its body, afterwards.
_SWEEP_INTERVAL_SECONDS = 0.25
# After refusing a body (413, or shedding a chunked one), read and discard at most this much, for
# at most this long, so the client reads the answer rather than a reset; then close.
DRAIN_MAX_BYTES = 64 * 1024 * 1024
DRAIN_MAX_SECONDS = 10.0
_RECV_BYTES = 256 * 1024
_ACCEPT_BATCH = 64

# Connection states.
_HEAD, _BODY, _BUSY, _DISCARD, _DRAIN = range(5)


@dataclass(eq=False)
class _Conn:
    sock: socket.socket
    addr: Any
    buf: bytearray = field(default_factory=bytearray)
    state: int = _HEAD
    deadline: float = 0.0
    head: http1.RequestHead | None = None
    head_started: float = 0.0
    chunked: http1.ChunkedReader | None = None
    discard_left: int = 0
    out: bytearray = field(default_factory=bytearray)
    close_after_write: bool = False
    eof: bool = False
    registered: int = 0


@dataclass
class _Job:
    conn: _Conn
    head: http1.RequestHead
    body: bytes
    arrived: float


def _ignore_write(data: bytes) -> None:
    """WSGI's legacy write(): the apps served here return their body instead."""
    del data


class HealthFirstWorker(Worker):
    """See the module docstring. Set as ``worker_class`` in gunicorn.conf.py."""

    def init_process(self) -> None:
        self.settings = Settings.from_env()
        self.selector = selectors.DefaultSelector()
        self.conns: set[_Conn] = set()
        # (job, response, keep-alive, whether the app ran: a request shed in the pool is no
        # measure of the pool's pace)
        self.done: queue.SimpleQueue[tuple[_Job, bytes, bool, bool]] = queue.SimpleQueue()
        self.wake_read, self.wake_write = os.pipe()
        os.set_blocking(self.wake_read, False)
        os.set_blocking(self.wake_write, False)
        self.pool = ThreadPoolExecutor(max_workers=self.cfg.threads, thread_name_prefix="app")
        self.pace = PoolPace()  # the pool's backlog and pace (used by the loop only)
        self.accepting = False
        self.shutdown_deadline = 0.0
        self.next_sweep = 0.0
        super().init_process()

    # The app's hooks (xgbserve.app): the version for /ping, the access log, the shed answer.
    @property
    def serving(self) -> Any:
        extensions = getattr(self.wsgi, "extensions", None)
        return extensions.get("xgbserve") if isinstance(extensions, dict) else None

    def run(self) -> None:  # noqa: PLR0912  (the event loop, with its shutdown)
        self.serving_hooks = self.serving
        self.server_address = self.sockets[0].getsockname()[:2] if self.sockets else ("localhost", 0)
        self.selector.register(self.wake_read, selectors.EVENT_READ, None)
        self._set_accepting(True)
        while self.alive or self._draining():
            self.notify()
            now = time.monotonic()
            if not self.alive and not self.shutdown_deadline:
                self._begin_shutdown(now)
            if self.shutdown_deadline and now > self.shutdown_deadline:
                break
            try:
                events = self.selector.select(timeout=_SWEEP_INTERVAL_SECONDS)
            except OSError as error:
                if error.errno != errno.EINTR:
                    raise
                events = []
            for key, mask in events:
                if key.data is None:
                    self._finish_jobs()
                elif key.data == "listener":
                    self._accept(key.fileobj)  # type: ignore[arg-type]
                else:
                    conn: _Conn = key.data
                    if mask & selectors.EVENT_WRITE:
                        self._write(conn)
                    if mask & selectors.EVENT_READ and conn in self.conns:
                        self._read(conn)
            now = time.monotonic()
            if now >= self.next_sweep:
                self.next_sweep = now + _SWEEP_INTERVAL_SECONDS
                self._sweep(now)
                if self.ppid != os.getppid():
                    self.log.info("Parent changed, shutting down: %s", self)
                    break
        for conn in list(self.conns):
            self._close(conn)
        self.pool.shutdown(wait=False)
        self.selector.close()

    # Shutdown ---------------------------------------------------------------------------------

    def _begin_shutdown(self, now: float) -> None:
        self.shutdown_deadline = now + self.cfg.graceful_timeout
        self._set_accepting(False)
        for conn in list(self.conns):
            if conn.state == _HEAD and not conn.buf and not conn.out:
                self._close(conn)

    def _draining(self) -> bool:
        return bool(self.conns) or self.pace.in_pool > 0

    # Accepting --------------------------------------------------------------------------------

    def _set_accepting(self, accepting: bool) -> None:
        if accepting == self.accepting:
            return
        for listener in self.sockets:
            if accepting:
                listener.setblocking(False)
                self.selector.register(listener, selectors.EVENT_READ, "listener")
            else:
                self.selector.unregister(listener)
        self.accepting = accepting

    def _accept(self, listener: socket.socket) -> None:
        # Everything waiting, up to a bound: a /ping queued behind a burst of new connections is
        # reached sooner than one accept per loop turn would reach it.
        for _ in range(_ACCEPT_BATCH):
            try:
                sock, addr = listener.accept()
            except OSError as error:
                if error.errno in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                    return
                raise
            sock.setblocking(False)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Conn(sock=sock, addr=addr, deadline=time.monotonic() + self.settings.read_timeout)
            self.conns.add(conn)
            self._interest(conn)
            if len(self.conns) >= self.cfg.worker_connections:
                self._set_accepting(False)
                return

    # Reading ----------------------------------------------------------------------------------

    def _read(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(_RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        if not data:
            conn.eof = True
            self._on_eof(conn)
            return
        if conn.state in (_DISCARD, _DRAIN):
            self._discard(conn, data)
            return
        conn.buf += data
        self._advance(conn)

    def _on_eof(self, conn: _Conn) -> None:
        if conn.state == _BODY and conn.head is not None:
            got = conn.chunked.size if conn.chunked is not None else len(conn.buf)
            if conn.chunked is not None:
                message = "the chunked body ended before its last chunk: send the whole body"
            else:
                message = (
                    f"the body ended after {got:,} of the {conn.head.content_length or 0:,} bytes its "
                    "Content-Length announced: send the whole body"
                )
            self._refuse(conn, HTTPStatus.BAD_REQUEST, message, drain=False)
        elif conn.state == _HEAD and conn.buf.strip():
            self._refuse(
                conn, HTTPStatus.BAD_REQUEST, "the request ended before its headers did", drain=False
            )
        elif conn.state == _BUSY or conn.out:
            self._interest(conn)  # answer what is in flight, then close
        else:
            self._close(conn)

    def _advance(self, conn: _Conn) -> None:
        """Frame as many requests as ``conn.buf`` holds; hand complete ones on."""
        while conn in self.conns and conn.state in (_HEAD, _BODY) and not conn.close_after_write:
            if conn.state == _HEAD and not self._read_head(conn):
                return
            if conn.state == _BODY and not self._read_body(conn):
                return

    def _read_head(self, conn: _Conn) -> bool:  # noqa: PLR0911  (each outcome of a head)
        # Blank lines before a request are allowed (RFC 9112 2.2).
        while conn.buf[:2] == b"\r\n":
            del conn.buf[:2]
        if not conn.buf:
            return False
        if not conn.head_started:
            conn.head_started = time.monotonic()
            conn.deadline = conn.head_started + self.settings.read_timeout
        end = http1.find_head_end(conn.buf)
        if end < 0:
            if len(conn.buf) > http1.MAX_HEAD_BYTES:
                self._refuse(
                    conn, HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "the request head is too large"
                )
            return False
        raw = bytes(conn.buf[:end])
        del conn.buf[:end]
        try:
            head = http1.parse_head(raw)
        except http1.HttpError as error:
            self._refuse(conn, error.status, error.message, drain=False)
            return False
        conn.head = head
        if head.path == "/ping" and head.method in ("GET", "HEAD") and self.serving_hooks is not None:
            self._answer_ping(conn, head)
            return True
        limit = self.settings.max_content_length
        if head.content_length is not None and head.content_length > limit:
            message = (
                f"the body is {head.content_length} bytes; the limit is {limit} bytes (6 MB): "
                "send fewer records per request"
            )
            self._refuse(conn, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, message, discard=head.content_length)
            return False
        wait = self.pace.expected_wait(time.monotonic())
        if wait > self.settings.request_deadline:
            self._shed(conn, head, wait)
            return conn.state == _HEAD
        conn.state = _BODY
        conn.deadline = time.monotonic() + self.settings.read_timeout
        conn.chunked = http1.ChunkedReader(limit) if head.chunked else None
        if head.expect_continue and (head.chunked or head.content_length):
            self._send(conn, b"HTTP/1.1 100 Continue\r\n\r\n")
        return True

    def _read_body(self, conn: _Conn) -> bool:
        head = conn.head
        assert head is not None
        if conn.chunked is not None:
            try:
                used = conn.chunked.feed(conn.buf, 0)
            except http1.HttpError as error:
                if error.status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE:
                    limit = self.settings.max_content_length
                    message = (
                        f"the body is over the limit of {limit} bytes (6 MB): send fewer records per request"
                    )
                    self._refuse(conn, error.status, message, discard=DRAIN_MAX_BYTES)
                else:
                    self._refuse(conn, error.status, error.message, drain=False)
                return False
            del conn.buf[:used]
            if not conn.chunked.done:
                return False
            body = conn.chunked.body()
        else:
            length = head.content_length or 0
            if len(conn.buf) < length:
                return False
            body = bytes(conn.buf[:length])
            del conn.buf[:length]
        self._dispatch(conn, head, body)
        return False

    def _discard(self, conn: _Conn, data: bytes) -> None:
        if conn.state == _DISCARD:
            conn.discard_left -= len(data)
            if conn.discard_left <= 0:
                # The refused body is consumed: the connection can carry the next request.
                extra = data[len(data) + conn.discard_left :] if conn.discard_left < 0 else b""
                conn.state = _HEAD
                conn.head = None
                conn.head_started = 0.0
                conn.deadline = time.monotonic() + self.cfg.keepalive
                conn.buf += extra
                self._interest(conn)
                self._advance(conn)
            return
        conn.discard_left -= len(data)
        if conn.discard_left <= 0:
            self._close(conn)

    # Answers from the loop --------------------------------------------------------------------

    def _answer_ping(self, conn: _Conn, head: http1.RequestHead) -> None:
        started = time.perf_counter()
        keep_alive = head.keep_alive and self.alive
        hooks = self.serving_hooks
        response = http1.encode_response(
            "200 OK",
            list(hooks.ping_headers),
            b"",
            keep_alive=keep_alive,
            version=head.version,
            head_only=True,
        )
        self._finish_request(conn, keep_alive)
        self._send(conn, response)
        hooks.log_request(head.method, head.path, 200, started, content_type=None, accept=None)

    def _shed(self, conn: _Conn, head: http1.RequestHead, wait: float) -> None:
        """503 at once; the body that follows (if any) is read and dropped."""
        started = time.perf_counter()
        retry_after = retry_after_seconds(wait)
        answer = self._shed_answer(retry_after, wait)
        if head.chunked:
            self._answer_then(conn, answer, head, keep_alive=False, discard=DRAIN_MAX_BYTES)
        else:
            keep_alive = head.keep_alive and self.alive
            self._answer_then(conn, answer, head, keep_alive=keep_alive, discard=head.content_length or 0)
        self._log_shed(head, started)

    def _shed_answer(self, retry_after: int, wait: float) -> tuple[str, list[tuple[str, str]], bytes]:
        hooks = self.serving_hooks
        if hooks is not None:
            return hooks.shed_answer(retry_after, wait, self.settings.request_deadline)
        body = http1.json_error(HTTPStatus.SERVICE_UNAVAILABLE, "overloaded", retry_after=retry_after)
        headers = [("Content-Type", "application/json"), ("Retry-After", str(retry_after))]
        return http1.status_line(503), headers, body

    def _log_shed(self, head: http1.RequestHead, started: float) -> None:
        if self.serving_hooks is not None:
            self.serving_hooks.log_request(
                head.method,
                head.path,
                503,
                started,
                content_type=head.header("content-type"),
                accept=head.header("accept"),
                bytes_in=head.content_length or 0,
                shed=True,
            )

    def _refuse(
        self,
        conn: _Conn,
        status: HTTPStatus,
        message: str,
        *,
        drain: bool = True,
        discard: int = 0,
    ) -> None:
        """Answer an error from the loop and close; with ``discard``, read and drop that many bytes
        first (bounded) so the client can finish sending and read the answer."""
        body = http1.json_error(status, message)
        headers = [("Content-Type", "application/json")]
        if self.serving_hooks is not None:
            headers.extend(self.serving_hooks.version_headers)
        response = http1.encode_response(http1.status_line(status), headers, body, keep_alive=False)
        conn.head = None
        conn.buf.clear()
        if drain and discard > 0:
            conn.state = _DRAIN
            conn.discard_left = min(discard, DRAIN_MAX_BYTES)
            conn.deadline = time.monotonic() + DRAIN_MAX_SECONDS
            self._send(conn, response)
            self._interest(conn)
        else:
            conn.state = _HEAD
            conn.close_after_write = True
            self._send(conn, response)
        if self.serving_hooks is not None and status != HTTPStatus.REQUEST_TIMEOUT:
            self.serving_hooks.log_request(
                "-", "-", int(status), time.perf_counter(), content_type=None, accept=None
            )

    def _answer_then(
        self,
        conn: _Conn,
        answer: tuple[str, list[tuple[str, str]], bytes],
        head: http1.RequestHead,
        *,
        keep_alive: bool,
        discard: int,
    ) -> None:
        status, headers, body = answer
        head_only = head.method == "HEAD"
        response = http1.encode_response(
            status, headers, body, keep_alive=keep_alive, version=head.version, head_only=head_only
        )
        conn.head = None
        conn.head_started = 0.0
        # Bytes of the refused body already received count against what is to be dropped.
        already = min(len(conn.buf), discard)
        del conn.buf[:already]
        remaining = discard - already
        if remaining > 0:
            conn.state = _DISCARD if keep_alive else _DRAIN
            conn.discard_left = min(remaining, DRAIN_MAX_BYTES)
            conn.deadline = time.monotonic() + DRAIN_MAX_SECONDS
        else:
            conn.state = _HEAD
            conn.deadline = time.monotonic() + self.cfg.keepalive
            conn.close_after_write = not keep_alive
        self._send(conn, response)
        self._interest(conn)

    def _finish_request(self, conn: _Conn, keep_alive: bool) -> None:
        conn.state = _HEAD
        conn.head = None
        conn.head_started = 0.0
        conn.chunked = None
        conn.deadline = time.monotonic() + self.cfg.keepalive
        conn.close_after_write = not keep_alive

    # The thread pool ------------------------------------------------------------------------------

    def _dispatch(self, conn: _Conn, head: http1.RequestHead, body: bytes) -> None:
        conn.state = _BUSY
        conn.deadline = float("inf")
        self._interest(conn)
        job = _Job(conn=conn, head=head, body=body, arrived=time.monotonic())
        self.pace.submitted(job.arrived)
        self.pool.submit(self._run_job, job)

    def _run_job(self, job: _Job) -> None:
        """In a pool thread: shed if the request waited past the deadline, else run the app."""
        keep_alive = job.head.keep_alive
        waited = time.monotonic() - job.arrived
        served = waited <= self.settings.request_deadline
        try:
            if not served:
                started = time.perf_counter()
                status, headers, body = self._shed_answer(retry_after_seconds(waited), waited)
                self._log_shed(job.head, started)
            else:
                status, headers, body = self._call_app(job)
            response = http1.encode_response(
                status,
                headers,
                body,
                keep_alive=keep_alive,
                version=job.head.version,
                head_only=job.head.method == "HEAD",
            )
        except Exception:
            self.log.exception("Error handling request %s %s", job.head.method, job.head.path)
            body = http1.json_error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal server error")
            response = http1.encode_response(
                http1.status_line(500), [("Content-Type", "application/json")], body, keep_alive=False
            )
            keep_alive = False
        self.done.put((job, self._send_now(job.conn, response), keep_alive, served))
        with contextlib.suppress(BlockingIOError):
            os.write(self.wake_write, b"\0")

    @staticmethod
    def _send_now(conn: _Conn, response: bytes) -> bytes:
        """In a pool thread: send what the socket takes at once and return the rest for the loop.

        The client has its answer without waiting for the loop to be scheduled (a thread hand-off
        less on every request's path). Safe because a busy connection is the pool's alone: the loop
        neither reads it nor adds to its output until the job is done; when output the loop queued
        earlier is still unsent (a ``100 Continue``, the rest of an earlier answer), everything goes
        through the loop, in order."""
        if conn.out:
            return response
        try:
            sent = conn.sock.send(response)
        except OSError:
            return response  # would block, or the socket is gone: the loop finds out and copes
        return response[sent:] if sent < len(response) else b""

    def _call_app(self, job: _Job) -> tuple[str, list[tuple[str, str]], bytes]:
        captured: list[Any] = []

        def start_response(status: str, headers: Iterable[tuple[str, str]], exc_info: Any = None) -> Any:
            del exc_info
            captured[:] = [status, list(headers)]
            return _ignore_write

        result: Iterable[bytes] = self.wsgi(self._environ(job), start_response)
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status, headers = captured
        return status, headers, body

    def _environ(self, job: _Job) -> dict[str, Any]:
        head = job.head
        host, port = self.server_address
        environ: dict[str, Any] = {
            "REQUEST_METHOD": head.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_bytes(head.path).decode("latin-1"),
            "QUERY_STRING": head.query,
            "RAW_URI": head.target,
            "SERVER_NAME": str(host),
            "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": head.version,
            "REMOTE_ADDR": str(job.conn.addr[0]) if isinstance(job.conn.addr, tuple) else "",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(job.body),
            "wsgi.input_terminated": True,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "CONTENT_LENGTH": str(len(job.body)),
        }
        for name, value in head.headers:
            key = name.upper().replace("-", "_")
            if key == "CONTENT_TYPE":
                environ["CONTENT_TYPE"] = value
            elif key in ("CONTENT_LENGTH", "TRANSFER_ENCODING"):
                continue  # the body is whole and de-chunked
            elif "_" in name:
                continue  # HTTP_X_A could be X-A or X_A: drop the ambiguous spelling, as Gunicorn does
            else:
                wsgi_key = "HTTP_" + key
                environ[wsgi_key] = f"{environ[wsgi_key]},{value}" if wsgi_key in environ else value
        return environ

    def _finish_jobs(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self.wake_read, 4096):
                pass
        now = time.monotonic()
        while True:
            try:
                job, response, keep_alive, served = self.done.get_nowait()
            except queue.Empty:
                break
            self.pace.completed(now, served=served)
            conn = job.conn
            if conn not in self.conns:
                continue
            self._finish_request(conn, keep_alive and self.alive and not conn.eof)
            self._send(conn, response)
            if conn in self.conns and conn.state == _HEAD and not conn.close_after_write:
                self._advance(conn)  # a pipelined request may be buffered already

    # Writing and closing --------------------------------------------------------------------------

    def _send(self, conn: _Conn, data: bytes) -> None:
        conn.out += data
        self._write(conn)

    def _write(self, conn: _Conn) -> None:
        if conn.out:
            try:
                sent = conn.sock.send(conn.out)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                self._close(conn)
                return
            del conn.out[:sent]
            if conn.out:
                conn.deadline = max(conn.deadline, time.monotonic() + self.settings.read_timeout)
        if not conn.out and conn.close_after_write:
            self._close(conn, graceful=True)
            return
        if not conn.out and conn.eof and conn.state == _HEAD:
            self._close(conn)
            return
        self._interest(conn)

    def _interest(self, conn: _Conn) -> None:
        mask = 0
        if conn.state != _BUSY and not conn.eof and not conn.close_after_write:
            mask |= selectors.EVENT_READ
        if conn.out:
            mask |= selectors.EVENT_WRITE
        if mask == conn.registered:
            return
        if conn.registered and mask:
            self.selector.modify(conn.sock, mask, conn)
        elif mask:
            self.selector.register(conn.sock, mask, conn)
        else:
            self.selector.unregister(conn.sock)
        conn.registered = mask

    def _close(self, conn: _Conn, graceful: bool = False) -> None:
        if conn not in self.conns:
            return
        self.conns.discard(conn)
        if conn.registered:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self.selector.unregister(conn.sock)
            conn.registered = 0
        with contextlib.suppress(OSError):
            if graceful:
                conn.sock.shutdown(socket.SHUT_WR)
        with contextlib.suppress(OSError):
            conn.sock.close()
        if self.alive and not self.accepting and len(self.conns) < self.cfg.worker_connections:
            self._set_accepting(True)

    def _sweep(self, now: float) -> None:
        """Deadlines: 408 for a stalled head or body, close for idle or drained-out connections."""
        for conn in list(self.conns):
            if conn.deadline > now or conn.state == _BUSY:
                continue
            if conn.state in (_DISCARD, _DRAIN) or conn.out or conn.close_after_write:
                self._close(conn)
            elif conn.state == _BODY or (conn.state == _HEAD and conn.buf):
                self._refuse(
                    conn,
                    HTTPStatus.REQUEST_TIMEOUT,
                    f"the request did not arrive within {self.settings.read_timeout:g} s: send it at once",
                    drain=False,
                )
                conn.deadline = now + 1.0  # then close, whether or not the client reads it
            else:
                self._close(conn)
