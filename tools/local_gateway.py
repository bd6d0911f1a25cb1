"""A local stand-in for the API Gateway REST API in front of the Lambda handler.

``POST /predict`` with an ``x-api-key`` header becomes a REST (v1) proxy event handed to the real
``lambda/handler.py`` ``handler(event, context)`` in this process; its proxy response becomes the
HTTP response. What API Gateway would do on the way is done here too: the API key check, the
10 MB payload limit, base64 for binary media types, and a 502 when the function fails or answers
with something that is not a proxy response.

One deliberate difference: API Gateway answers 403 both for a missing and for a wrong key; here
a missing key is 401, so the first mistake someone makes locally says what is missing.
"""

from __future__ import annotations

import base64
import hmac
import importlib.util
import json
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

LOOPBACK = "127.0.0.1"
PREDICT_PATH = "/predict"
STAGE = "local"
# API Gateway REST payload limit; bodies between 6 and 10 MB reach the handler, which says 413.
MAX_GATEWAY_PAYLOAD_BYTES = 10 * 1024 * 1024
# Lambda's synchronous response limit: a bigger proxy response fails the invocation.
MAX_LAMBDA_RESPONSE_BYTES = 6 * 1024 * 1024
INTEGRATION_TIMEOUT_MS = 29_000
# A refused request's body is still read up to this size (loopback: cheap), then dropped.
MAX_DRAIN_BYTES = 64 * 1024 * 1024
# The binaryMediaTypes the REST API declares: these bodies reach the function base64-encoded.
BINARY_MEDIA_TYPES = frozenset({"application/x-recordio-protobuf", "application/octet-stream"})

ProxyHandler = Callable[[dict[str, Any], Any], Mapping[str, Any]]


def load_handler_module(path: Path, module_name: str = "lambda_handler") -> ModuleType:
    """Load ``lambda/handler.py`` from its path (``lambda`` is a keyword: it cannot be imported)."""
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load a Python module from {path}")
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the class body runs.
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class LocalLambdaContext:
    """The attributes of the Lambda context object that handlers commonly read."""

    aws_request_id: str
    deadline: float
    function_name: str = "xgboost-endpoint-frontdoor-local"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = (
        "arn:aws:lambda:us-east-1:000000000000:function:xgboost-endpoint-frontdoor-local"
    )

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


class GatewayServer(ThreadingHTTPServer):
    """The stand-in's HTTP server; its handler reads ``proxy_handler`` and ``api_key``."""

    daemon_threads = True

    def __init__(
        self, proxy_handler: ProxyHandler, api_key: str, host: str = LOOPBACK, port: int = 0
    ) -> None:
        if not api_key:
            raise ValueError("the local API needs a non-empty API key")
        self.proxy_handler = proxy_handler
        self.api_key = api_key
        super().__init__((host, port), GatewayRequestHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}{PREDICT_PATH}"


def _is_binary(content_type: str | None) -> bool:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return media_type in BINARY_MEDIA_TYPES


def build_event(
    method: str,
    raw_path: str,
    headers: list[tuple[str, str]],
    body: bytes,
    *,
    request_id: str,
    source_ip: str,
    api_key: str,
) -> dict[str, Any]:
    """The REST (v1) proxy event API Gateway would send for this request."""
    parts = urlsplit(raw_path)
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in headers:
        single[name] = value
        multi.setdefault(name, []).append(value)
    query = parse_qs(parts.query, keep_blank_values=True)
    content_type = next((value for name, value in headers if name.lower() == "content-type"), None)
    binary = _is_binary(content_type)
    if not body:
        event_body: str | None = None
    elif binary:
        event_body = base64.b64encode(body).decode("ascii")
    else:
        # API Gateway hands text bodies on as UTF-8; bytes that are not become U+FFFD, as there.
        event_body = body.decode("utf-8", errors="replace")
    now = time.time()
    return {
        "resource": PREDICT_PATH,
        "path": parts.path,
        "httpMethod": method,
        "headers": single or None,
        "multiValueHeaders": multi or None,
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": PREDICT_PATH,
            "httpMethod": method,
            "path": f"/{STAGE}{parts.path}",
            "stage": STAGE,
            "requestId": request_id,
            "requestTimeEpoch": int(now * 1000),
            "protocol": "HTTP/1.1",
            "identity": {"sourceIp": source_ip, "apiKey": api_key, "userAgent": single.get("User-Agent")},
        },
        "body": event_body,
        "isBase64Encoded": binary and bool(body),
    }


@dataclass(frozen=True)
class HttpAnswer:
    """An HTTP response to write: status, headers (repeatable) and body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def _gateway_error(status: HTTPStatus, message: str, request_id: str) -> HttpAnswer:
    return HttpAnswer(
        int(status),
        [("Content-Type", "application/json"), ("x-amzn-RequestId", request_id)],
        json.dumps({"message": message}).encode(),
    )


def answer_from_proxy_response(response: object, request_id: str) -> HttpAnswer:
    """Turn the function's proxy response into HTTP, or 502 if it is not one (as API Gateway)."""
    try:
        return _proxy_answer(response, request_id)
    except (TypeError, ValueError, AttributeError):  # binascii.Error is a ValueError
        return _gateway_error(HTTPStatus.BAD_GATEWAY, "Internal server error", request_id)


def _proxy_answer(response: object, request_id: str) -> HttpAnswer:
    if not isinstance(response, Mapping):
        raise TypeError("not a proxy response")
    status = response.get("statusCode")
    body = response.get("body") or ""
    if not isinstance(status, int) or not 100 <= status <= 599 or not isinstance(body, str):
        raise TypeError("not a proxy response")
    # Lambda serialises the response as JSON; too big for it, and the invocation fails.
    if len(json.dumps(response)) > MAX_LAMBDA_RESPONSE_BYTES:
        raise ValueError("response over Lambda's limit")
    headers: list[tuple[str, str]] = [("x-amzn-RequestId", request_id)]
    multi = response.get("multiValueHeaders") or {}
    single = response.get("headers") or {}
    for name, values in multi.items():
        headers.extend((str(name), str(value)) for value in values)
    headers.extend((str(name), str(value)) for name, value in single.items() if name not in multi)
    if response.get("isBase64Encoded"):
        payload = base64.b64decode(body, validate=True)
    else:
        payload = body.encode("utf-8")
    return HttpAnswer(status, headers, payload)


class GatewayRequestHandler(BaseHTTPRequestHandler):
    """Checks the key and the size, then hands the request to the Lambda handler."""

    protocol_version = "HTTP/1.1"
    # Headers and body leave in separate writes; with Nagle's algorithm on, the body then waits
    # for the client's delayed ACK (about 40 ms a request on Linux).
    disable_nagle_algorithm = True

    @property
    def gateway(self) -> GatewayServer:
        return cast(GatewayServer, self.server)

    def _serve(self) -> None:
        request_id = str(uuid.uuid4())
        answer = self._answer(request_id)
        self.send_response(answer.status)
        for name, value in answer.headers:
            if name.lower() not in {"content-length", "connection", "transfer-encoding"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    def _refusal(self, request_id: str) -> HttpAnswer | None:
        """What the gateway answers itself, without calling the function; None to go on."""
        if urlsplit(self.path).path != PREDICT_PATH:
            return _gateway_error(HTTPStatus.NOT_FOUND, "Not Found", request_id)
        key = self.headers.get("x-api-key")
        if key is None:
            return _gateway_error(
                HTTPStatus.UNAUTHORIZED, "Missing API key: send it in the x-api-key header.", request_id
            )
        if not hmac.compare_digest(key.encode(), self.gateway.api_key.encode()):
            return _gateway_error(HTTPStatus.FORBIDDEN, "Forbidden", request_id)
        return self._size_refusal(request_id)

    def _size_refusal(self, request_id: str) -> HttpAnswer | None:
        if self.headers.get("Transfer-Encoding") is not None:
            return _gateway_error(
                HTTPStatus.LENGTH_REQUIRED, "Send the body with a Content-Length.", request_id
            )
        length = self._content_length()
        if length is None:
            return _gateway_error(HTTPStatus.BAD_REQUEST, "Invalid Content-Length.", request_id)
        if length > MAX_GATEWAY_PAYLOAD_BYTES:
            return _gateway_error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "Request Too Long", request_id)
        return None

    def _drain_body(self) -> None:
        # Read and dropped, so that a client still sending gets the answer, not a broken pipe;
        # past MAX_DRAIN_BYTES (or with no usable length) the connection is closed instead.
        length = self._content_length()
        if length is None or length > MAX_DRAIN_BYTES or "Transfer-Encoding" in self.headers:
            self.close_connection = True
            return
        while length > 0:
            chunk = self.rfile.read(min(length, 1024 * 1024))
            if not chunk:
                break
            length -= len(chunk)

    def _content_length(self) -> int | None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return None
        return length if length >= 0 else None

    def _answer(self, request_id: str) -> HttpAnswer:
        refusal = self._refusal(request_id)
        if refusal is not None:
            self._drain_body()
            return refusal
        length = self._content_length() or 0
        key = self.headers.get("x-api-key", "")
        body = self.rfile.read(length) if length > 0 else b""
        event = build_event(
            self.command,
            self.path,
            list(self.headers.items()),
            body,
            request_id=request_id,
            source_ip=self.client_address[0],
            api_key=key,
        )
        context = LocalLambdaContext(
            aws_request_id=str(uuid.uuid4()), deadline=time.monotonic() + INTEGRATION_TIMEOUT_MS / 1000
        )
        try:
            response = self.gateway.proxy_handler(event, context)
        except Exception:  # a failed invocation is a 502 at the gateway, as in AWS
            # The trace is for the developer at this terminal, never for the client.
            sys.stderr.write(f"request {request_id}: the Lambda handler raised\n{traceback.format_exc()}")
            return _gateway_error(HTTPStatus.BAD_GATEWAY, "Internal server error", request_id)
        return answer_from_proxy_response(response, request_id)

    def do_POST(self) -> None:
        self._serve()

    # Other methods reach the function too, which answers 405, as a catch-all route would.
    def do_GET(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        # The handler writes one JSON line per request; a second access log would only repeat it.
        return
