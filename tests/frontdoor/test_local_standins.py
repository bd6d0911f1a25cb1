"""The local stand-ins on their own: the SageMaker runtime in front of a scripted container, and
the API Gateway in front of scripted handlers. No model, no Gunicorn: fast and exact."""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tools.local import serving_in_thread
from tools.local_gateway import GatewayServer
from tools.local_runtime import RuntimeServer, RuntimeSettings

from .support import ENDPOINT_NAME

ContainerScript = Callable[[BaseHTTPRequestHandler, bytes], tuple[int, dict[str, str], bytes]]


class ScriptedContainer(ThreadingHTTPServer):
    """Answers POST /invocations with whatever ``script`` says; records what it received."""

    daemon_threads = True

    def __init__(self, script: ContainerScript) -> None:
        self.script = script
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.release = threading.Event()
        super().__init__(("127.0.0.1", 0), _ScriptedHandler)


class _ScriptedHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        container = self.server
        assert isinstance(container, ScriptedContainer)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        container.received.append((dict(self.headers.items()), body))
        status, headers, answer = container.script(self, body)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def servers() -> Iterator[contextlib.ExitStack]:
    """Everything a test starts, served from threads and closed at its end."""
    with contextlib.ExitStack() as stack:
        yield stack


@pytest.fixture
def runtime_for(servers) -> Callable[..., tuple[Any, ScriptedContainer]]:
    """A runtime stand-in in front of a scripted container, and a boto3 client pointed at it."""

    def start(script: ContainerScript, *, container_timeout: float = 60.0) -> tuple[Any, ScriptedContainer]:
        container = ScriptedContainer(script)
        servers.enter_context(serving_in_thread(container))
        # Registered after the server, so it runs first: a hanging script lets go before shutdown.
        servers.callback(container.release.set)
        host, port = container.server_address[:2]
        runtime = RuntimeServer(
            RuntimeSettings(
                container_url=f"http://{host!s}:{port}",
                endpoint_name=ENDPOINT_NAME,
                container_timeout=container_timeout,
            )
        )
        servers.enter_context(serving_in_thread(runtime))
        client = boto3.client(
            "sagemaker-runtime",
            endpoint_url=runtime.url,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
            config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
        )
        return client, container

    return start


def answer(status: int, body: bytes, **headers: str) -> ContainerScript:
    return lambda _handler, _body: (status, dict(headers), body)


# --- the SageMaker runtime stand-in -----------------------------------------------------------


def test_runtime_forwards_body_and_headers_and_returns_what_sagemaker_returns(runtime_for):
    client, container = runtime_for(
        answer(
            200,
            b"0.1,0.9\n",
            **{
                "Content-Type": "text/csv",
                "X-Model-Version": "abc",
                "X-Amzn-SageMaker-Custom-Attributes": "model-version=abc",
            },
        )
    )

    result = client.invoke_endpoint(
        EndpointName=ENDPOINT_NAME,
        Body=b"1,2,3",
        ContentType="text/csv",
        Accept="text/csv",
        CustomAttributes="trace=on",
    )

    assert result["Body"].read() == b"0.1,0.9\n"
    assert result["ContentType"] == "text/csv"
    assert result["InvokedProductionVariant"] == "AllTraffic"
    assert result["CustomAttributes"] == "model-version=abc"
    # SageMaker passes no other container header back, and neither does the stand-in.
    assert "x-model-version" not in result["ResponseMetadata"]["HTTPHeaders"]
    [(headers, body)] = container.received
    assert body == b"1,2,3"
    assert headers["Content-Type"] == "text/csv"
    assert headers["Accept"] == "text/csv"
    assert headers["X-Amzn-SageMaker-Custom-Attributes"] == "trace=on"


def test_container_4xx_becomes_a_model_error_with_the_original_status_and_message(runtime_for):
    client, _ = runtime_for(answer(415, b'{"error": "unsupported content type text/plain"}'))

    with pytest.raises(ClientError) as raised:
        client.invoke_endpoint(EndpointName=ENDPOINT_NAME, Body=b"x", ContentType="text/plain")

    response = raised.value.response
    assert response["Error"]["Code"] == "ModelError"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert response["OriginalStatusCode"] == 415
    assert response["OriginalMessage"] == '{"error": "unsupported content type text/plain"}'
    assert "Received client error (415)" in response["Error"]["Message"]


def test_container_that_does_not_answer_in_time_is_a_model_error_with_status_0(runtime_for):
    def hang(handler: BaseHTTPRequestHandler, _body: bytes) -> tuple[int, dict[str, str], bytes]:
        server = handler.server
        assert isinstance(server, ScriptedContainer)
        server.release.wait(timeout=10)
        return 200, {}, b""

    client, _ = runtime_for(hang, container_timeout=0.3)

    with pytest.raises(ClientError) as raised:
        client.invoke_endpoint(EndpointName=ENDPOINT_NAME, Body=b"1", ContentType="text/csv")

    assert raised.value.response["Error"]["Code"] == "ModelError"
    assert raised.value.response["OriginalStatusCode"] == 0
    assert "timed out" in raised.value.response["OriginalMessage"]


def test_container_that_refuses_connections_is_service_unavailable(runtime_for):
    client, container = runtime_for(answer(200, b""))
    container.shutdown()
    container.server_close()

    with pytest.raises(ClientError) as raised:
        client.invoke_endpoint(EndpointName=ENDPOINT_NAME, Body=b"1", ContentType="text/csv")

    assert raised.value.response["Error"]["Code"] == "ServiceUnavailable"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503


def test_unknown_endpoint_name_is_not_found(runtime_for):
    client, container = runtime_for(answer(200, b""))

    with pytest.raises(ClientError) as raised:
        client.invoke_endpoint(EndpointName="other-endpoint", Body=b"1", ContentType="text/csv")

    assert raised.value.response["Error"]["Code"] == "ValidationError"
    assert "Endpoint other-endpoint of account" in raised.value.response["Error"]["Message"]
    assert container.received == []


def test_unsigned_request_is_refused(runtime_for):
    client, container = runtime_for(answer(200, b""))
    url = f"{client.meta.endpoint_url}/endpoints/{ENDPOINT_NAME}/invocations"

    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(urllib.request.Request(url, data=b"1", method="POST"), timeout=5)

    assert raised.value.code == 403
    assert container.received == []


# --- the API Gateway stand-in -----------------------------------------------------------------


@pytest.fixture
def gateway_for(servers) -> Callable[[Callable[[dict[str, Any], Any], Any]], str]:
    def start(handler: Callable[[dict[str, Any], Any], Any]) -> str:
        gateway = GatewayServer(handler, "the-key")
        servers.enter_context(serving_in_thread(gateway))
        return gateway.url

    return start


def send(url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, Message, bytes]:
    request = urllib.request.Request(
        url, data=body, headers={"x-api-key": "the-key", **headers}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_gateway_builds_a_rest_proxy_event_and_base64s_binary_media_types(gateway_for):
    events: list[dict[str, Any]] = []

    def record(event: dict[str, Any], context: Any) -> dict[str, Any]:
        events.append(event)
        assert context.get_remaining_time_in_millis() > 0
        return {"statusCode": 200, "headers": {"Content-Type": "text/plain"}, "body": "ok"}

    url = gateway_for(record)
    binary = b"\xce\xd7\x23\x0a\xff"

    status, _, body = send(f"{url}?trace=1", binary, {"Content-Type": "application/x-recordio-protobuf"})

    assert (status, body) == (200, b"ok")
    [event] = events
    assert event["httpMethod"] == "POST"
    assert event["path"] == "/predict"
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == binary
    assert event["queryStringParameters"] == {"trace": "1"}
    assert event["multiValueHeaders"]["Content-Type"] == ["application/x-recordio-protobuf"]
    assert event["requestContext"]["identity"]["apiKey"] == "the-key"


def test_gateway_passes_text_bodies_as_text(gateway_for):
    events: list[dict[str, Any]] = []

    def record(event: dict[str, Any], _context: Any) -> dict[str, Any]:
        events.append(event)
        return {"statusCode": 204, "body": ""}

    send(gateway_for(record), b"1,2,3", {"Content-Type": "text/csv"})

    assert events[0]["body"] == "1,2,3"
    assert events[0]["isBase64Encoded"] is False


def test_gateway_decodes_base64_responses_and_repeats_multi_value_headers(gateway_for):
    def binary(_event: dict[str, Any], _context: Any) -> dict[str, Any]:
        return {
            "statusCode": 200,
            "headers": {"Content-Type": "application/octet-stream"},
            "multiValueHeaders": {"X-Trace": ["a", "b"]},
            "body": base64.b64encode(b"\x00\xff").decode(),
            "isBase64Encoded": True,
        }

    status, headers, body = send(gateway_for(binary), b"1", {"Content-Type": "text/csv"})

    assert (status, body) == (200, b"\x00\xff")
    assert headers.get_all("X-Trace") == ["a", "b"]


@pytest.mark.parametrize(
    "handler_result",
    [
        pytest.param(RuntimeError("handler bug with a secret"), id="raises"),
        pytest.param({"body": "no status"}, id="no-status-code"),
        pytest.param("not a dict", id="not-a-mapping"),
        pytest.param({"statusCode": 200, "body": "%%%", "isBase64Encoded": True}, id="bad-base64"),
        pytest.param({"statusCode": 200, "body": "", "multiValueHeaders": ["x"]}, id="bad-headers"),
        pytest.param({"statusCode": 200, "body": "x" * (6 * 1024 * 1024 + 1)}, id="over-6-mb"),
    ],
)
def test_gateway_answers_502_when_the_function_fails_without_its_details(gateway_for, capsys, handler_result):
    def broken(_event: dict[str, Any], _context: Any) -> Any:
        if isinstance(handler_result, Exception):
            raise handler_result
        return handler_result

    status, _, body = send(gateway_for(broken), b"1", {"Content-Type": "text/csv"})

    assert status == 502
    assert json.loads(body) == {"message": "Internal server error"}


def test_gateway_unknown_path_is_404_without_calling_the_function(gateway_for):
    calls: list[dict[str, Any]] = []
    url = gateway_for(lambda event, _context: calls.append(event))

    status, _, _ = send(url.replace("/predict", "/other"), b"1", {"Content-Type": "text/csv"})

    assert status == 404
    assert calls == []
