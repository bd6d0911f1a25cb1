"""Events no API Gateway sends on a good day, and a container that sheds load: never a 500 or 502."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from botocore.stub import Stubber

from tools.local import serving_in_thread
from tools.local_gateway import GatewayServer
from tools.local_runtime import RuntimeServer, RuntimeSettings
from tools.serving import running_container

from .support import ENDPOINT_NAME, FakeContext, load_handler, rest_event

CSV_ROW = ",".join(["0"] * 64)


@pytest.fixture
def stub(handler_module: ModuleType) -> Iterator[Stubber]:
    with Stubber(handler_module.SAGEMAKER_RUNTIME) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def _call(handler_module: ModuleType, event: object) -> dict[str, Any]:
    return handler_module.handler(event, FakeContext())


def _error(response: dict[str, Any]) -> dict[str, Any]:
    assert response["headers"]["Content-Type"] == "application/json"
    body = json.loads(response["body"])
    assert set(body) == {"error", "message", "requestId"}
    return body


@pytest.mark.parametrize("event", [["a", "list"], "a string", 42, None])
def test_an_event_that_is_not_an_object_is_400(handler_module: ModuleType, event: object) -> None:
    response = _call(handler_module, event)
    assert response["statusCode"] == 400
    assert _error(response)["error"] == "InvalidEvent"


def test_a_body_with_a_lone_surrogate_is_400(handler_module: ModuleType) -> None:
    response = _call(handler_module, rest_event("1,2\ud800", {"Content-Type": "text/csv"}))
    assert response["statusCode"] == 400
    body = _error(response)
    assert body["error"] == "InvalidBody"
    assert "lone surrogate" in body["message"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Content-Type", "text/csv\r\nX-Injected: 1"),
        ("Accept", "text/csv\nX-Injected: 1"),
        ("X-Amzn-SageMaker-Custom-Attributes", "a=1\r\nb=2"),
        ("Accept", "text/csv\ud800"),
    ],
)
def test_a_forwarded_header_with_cr_lf_is_400_and_never_sent(
    handler_module: ModuleType, stub: Stubber, name: str, value: str
) -> None:
    # The Stubber has no response queued: a call to InvokeEndpoint would fail the test.
    headers = {"Content-Type": "text/csv", name: value}
    response = _call(handler_module, rest_event(CSV_ROW, headers))
    assert response["statusCode"] == 400
    body = _error(response)
    assert body["error"] == "InvalidHeader"
    assert name.lower() in body["message"]


@pytest.mark.parametrize(
    ("message", "retry_after"), [('{"error": "overloaded", "retry_after": 3}', "3"), ("", "1")]
)
def test_a_container_503_is_a_503_with_retry_after(
    handler_module: ModuleType, stub: Stubber, message: str, retry_after: str
) -> None:
    stub.add_client_error(
        "invoke_endpoint",
        service_error_code="ModelError",
        service_message="Received server error (503) from primary with message ...",
        http_status_code=424,
        modeled_fields={"OriginalStatusCode": 503, "OriginalMessage": message},
    )
    response = _call(handler_module, rest_event(CSV_ROW, {"Content-Type": "text/csv"}))
    assert response["statusCode"] == 503
    assert response["headers"]["Retry-After"] == retry_after
    assert _error(response)["error"] == "Overloaded"


def test_a_shedding_container_reaches_the_api_client_as_503_with_retry_after(demo_model_dir: Path) -> None:
    """End to end: HTTP -> local API Gateway -> the real handler -> boto3 -> the local SageMaker
    runtime -> the real container, whose deadline (1 ns) makes it shed every request."""
    env = {"SERVER_REQUEST_DEADLINE_SECONDS": "0.000000001", "SERVER_THREADS": "1"}
    with running_container(demo_model_dir, workers=1, env=env) as container:
        direct = urllib.request.Request(
            f"{container.url}/invocations", data=CSV_ROW.encode(), headers={"Content-Type": "text/csv"}
        )
        with pytest.raises(urllib.error.HTTPError) as shed:
            urllib.request.urlopen(direct, timeout=30)
        assert shed.value.code == 503
        retry_after = shed.value.headers["Retry-After"]
        assert json.loads(shed.value.read())["retry_after"] == int(retry_after)
        runtime = RuntimeServer(RuntimeSettings(container_url=container.url, endpoint_name=ENDPOINT_NAME))
        with serving_in_thread(runtime):
            handler = load_handler(
                "frontdoor_handler_shedding", {"AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": runtime.url}
            )
            gateway = GatewayServer(handler.handler, "shed-key")
            with serving_in_thread(gateway):
                request = urllib.request.Request(
                    gateway.url,
                    data=CSV_ROW.encode(),
                    headers={"Content-Type": "text/csv", "x-api-key": "shed-key"},
                    method="POST",
                )
                with pytest.raises(urllib.error.HTTPError) as caught:
                    urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == 503
    assert caught.value.headers["Retry-After"] == retry_after
    assert json.loads(caught.value.read())["error"] == "Overloaded"
