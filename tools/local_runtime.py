"""A local stand-in for the SageMaker runtime API, in front of the serving container.

It answers ``POST /endpoints/{name}/invocations`` (what boto3's ``invoke_endpoint`` sends when
``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` points here) by forwarding the body, ``Content-Type``,
``Accept`` and custom attributes to the container's ``POST /invocations``, and answers the way
the real runtime does, so boto3 raises the same exceptions:

- a container 2xx comes back as 200 with its body, ``Content-Type`` and custom attributes, plus
  ``x-Amzn-Invoked-Production-Variant``; other container headers are dropped, as SageMaker does;
- a container 4xx or 5xx becomes a 424 ``ModelError`` carrying ``OriginalStatusCode`` and
  ``OriginalMessage`` (the container's body);
- a container that does not answer in time becomes a ``ModelError`` with status 0, as SageMaker
  reports a container timeout; a container that refuses connections becomes 503
  ``ServiceUnavailable`` (an endpoint with no healthy instance);
- another endpoint name is a 400 ``ValidationError`` "Endpoint ... not found".

Signatures are not checked (dummy keys work), but a request must be signed. Nothing more: this
stands in for the runtime on one machine, it is not a model of all its behaviour.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import unquote, urlsplit

LOOPBACK = "127.0.0.1"
LOCAL_ACCOUNT_ID = "000000000000"
DEFAULT_VARIANT = "AllTraffic"
# SageMaker waits 60 s for a container's answer to /invocations.
CONTAINER_TIMEOUT_SECONDS = 60.0
CUSTOM_ATTRIBUTES_HEADER = "X-Amzn-SageMaker-Custom-Attributes"
_INVOCATIONS_PATH = re.compile(r"^/endpoints/(?P<name>[^/]+)/invocations$")
# The request headers SageMaker hands on to the container.
_FORWARDED_HEADERS = ("Content-Type", "Accept", CUSTOM_ATTRIBUTES_HEADER)


@dataclass(frozen=True)
class RuntimeSettings:
    """What the stand-in serves: one endpoint backed by one container."""

    container_url: str
    endpoint_name: str
    variant_name: str = DEFAULT_VARIANT
    container_timeout: float = CONTAINER_TIMEOUT_SECONDS
    region: str = "us-east-1"


class RuntimeServer(ThreadingHTTPServer):
    """The stand-in's HTTP server; its handler reads ``settings``."""

    daemon_threads = True

    def __init__(self, settings: RuntimeSettings, host: str = LOOPBACK, port: int = 0) -> None:
        self.settings = settings
        super().__init__((host, port), RuntimeRequestHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes
    headers: Mapping[str, str]


def _error(status: HTTPStatus | int, code: str, message: str, **fields: Any) -> _Answer:
    body = json.dumps({"message": message, **fields}).encode()
    return _Answer(int(status), body, {"Content-Type": "application/json", "x-amzn-ErrorType": code})


def _model_error(settings: RuntimeSettings, original_status: int, original_body: bytes) -> _Answer:
    original = original_body.decode("utf-8", errors="replace")
    kind = "client" if 400 <= original_status < 500 else "server"
    log_group = f"/aws/sagemaker/Endpoints/{settings.endpoint_name}"
    return _error(
        HTTPStatus.FAILED_DEPENDENCY,
        "ModelError",
        f'Received {kind} error ({original_status}) from primary with message "{original}". '
        f"See the log group {log_group} for more information.",
        OriginalStatusCode=original_status,
        OriginalMessage=original,
        LogStreamArn=f"arn:aws:logs:{settings.region}:{LOCAL_ACCOUNT_ID}:log-group:{log_group}",
        ErrorCode=f"{kind.upper()}_ERROR_FROM_MODEL",
    )


def forward(settings: RuntimeSettings, body: bytes, headers: Mapping[str, str]) -> _Answer:
    """Send one invocation to the container and translate its answer as the runtime does."""
    target = urlsplit(settings.container_url)
    connection = http.client.HTTPConnection(
        target.hostname or LOOPBACK, target.port or 80, timeout=settings.container_timeout
    )
    try:
        connection.request("POST", "/invocations", body=body, headers=dict(headers))
        response = connection.getresponse()
        answer_body = response.read()
    except TimeoutError:
        return _model_error(
            settings,
            0,
            b"Your invocation timed out while waiting for a response from container primary.",
        )
    except (ConnectionError, socket.gaierror, http.client.HTTPException, OSError):
        return _error(
            HTTPStatus.SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "The endpoint has no instance that can take the request.",
        )
    finally:
        connection.close()
    if not 200 <= response.status < 300:
        return _model_error(settings, response.status, answer_body)
    answer_headers = {
        "Content-Type": response.getheader("Content-Type", "application/octet-stream"),
        "x-Amzn-Invoked-Production-Variant": settings.variant_name,
    }
    attributes = response.getheader(CUSTOM_ATTRIBUTES_HEADER)
    if attributes is not None:
        answer_headers[CUSTOM_ATTRIBUTES_HEADER] = attributes
    return _Answer(HTTPStatus.OK, answer_body, answer_headers)


class RuntimeRequestHandler(BaseHTTPRequestHandler):
    """``POST /endpoints/{name}/invocations`` -> the container's ``POST /invocations``."""

    protocol_version = "HTTP/1.1"
    # Headers and body leave in separate writes; with Nagle's algorithm on, the body then waits
    # for the client's delayed ACK (about 40 ms a request on Linux).
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        settings = cast(RuntimeServer, self.server).settings
        match = _INVOCATIONS_PATH.match(urlsplit(self.path).path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        if match is None:
            answer = _error(HTTPStatus.NOT_FOUND, "UnknownOperationException", "Unknown operation.")
        elif "Authorization" not in self.headers:
            answer = _error(
                HTTPStatus.FORBIDDEN, "MissingAuthenticationTokenException", "Missing Authentication Token"
            )
        elif unquote(match["name"]) != settings.endpoint_name:
            answer = _error(
                HTTPStatus.BAD_REQUEST,
                "ValidationError",
                f"Endpoint {unquote(match['name'])} of account {LOCAL_ACCOUNT_ID} not found.",
            )
        else:
            forwarded = {
                name: value for name in _FORWARDED_HEADERS if (value := self.headers.get(name)) is not None
            }
            answer = forward(settings, body, forwarded)
        self._send(answer)

    def _send(self, answer: _Answer) -> None:
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    def log_message(self, format: str, *args: Any) -> None:
        # The Lambda handler logs every request already; a second access log would only repeat it.
        return
