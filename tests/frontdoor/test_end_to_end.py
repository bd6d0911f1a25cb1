"""The whole request path on 127.0.0.1: HTTP -> local API Gateway -> the real handler -> boto3
-> the local SageMaker runtime -> the real container (Gunicorn subprocess) and back."""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import xgboost as xgb

from tools.demo_model import MODEL_FILENAME, digits_rows
from tools.local import serving_in_thread
from tools.local_gateway import GatewayServer
from tools.local_runtime import RuntimeServer, RuntimeSettings
from tools.serving import RunningContainer, running_container

from .support import ENDPOINT_NAME, load_handler, recordio_protobuf

API_KEY = "e2e-test-key"
ROWS = digits_rows()[:3]


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> dict[str, object]:
        return json.loads(self.body)


def post(url: str, body: bytes, headers: Mapping[str, str], *, api_key: str | None = API_KEY) -> Reply:
    all_headers = dict(headers)
    if api_key is not None:
        all_headers["x-api-key"] = api_key
    request = urllib.request.Request(url, data=body, headers=all_headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Reply(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as error:
        return Reply(error.code, dict(error.headers), error.read())


@dataclass(frozen=True)
class Stack:
    container: RunningContainer
    runtime: RuntimeServer
    handler: ModuleType
    url: str


@contextlib.contextmanager
def local_stack(model_dir: Path, handler_name: str) -> Iterator[Stack]:
    """Container, runtime stand-in, a fresh copy of the handler pointed at it, and the gateway."""
    with running_container(model_dir, workers=2) as container:
        runtime = RuntimeServer(RuntimeSettings(container_url=container.url, endpoint_name=ENDPOINT_NAME))
        with serving_in_thread(runtime):
            handler = load_handler(handler_name, {"AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": runtime.url})
            gateway = GatewayServer(handler.handler, API_KEY)
            with serving_in_thread(gateway):
                yield Stack(container, runtime, handler, gateway.url)


@pytest.fixture(scope="module")
def stack(demo_model_dir: Path) -> Iterator[Stack]:
    with local_stack(demo_model_dir, "frontdoor_handler_e2e") as running:
        yield running


@pytest.fixture(scope="module")
def expected(demo_model_dir: Path) -> np.ndarray:
    """What the model itself says for ROWS, computed in-process."""
    booster = xgb.Booster()
    booster.load_model(bytearray((demo_model_dir / MODEL_FILENAME).read_bytes()))
    return booster.predict(xgb.DMatrix(ROWS))


def csv_body(rows: np.ndarray) -> bytes:
    return "\n".join(",".join(f"{value:g}" for value in row) for row in rows).encode()


def libsvm_body(rows: np.ndarray) -> bytes:
    # Every column written, zeros too: an absent libsvm column is "missing", not 0, to XGBoost.
    lines = [" ".join(f"{index}:{value:g}" for index, value in enumerate(row)) for row in rows]
    return "\n".join(f"0 {line}" for line in lines).encode()


PAYLOADS = {
    "text/csv": csv_body,
    "text/libsvm": libsvm_body,
    "application/json": lambda rows: json.dumps({"instances": rows.tolist()}).encode(),
    "application/jsonlines": lambda rows: "\n".join(json.dumps(row) for row in rows.tolist()).encode(),
    # A binary media type: the gateway hands it to the handler base64-encoded, as API Gateway does.
    "application/x-recordio-protobuf": lambda rows: recordio_protobuf(rows.tolist()),
}


def csv_probabilities(body: bytes) -> np.ndarray:
    return np.array([[float(value) for value in line.split(",")] for line in body.decode().splitlines()])


# --- valid requests ---------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", sorted(PAYLOADS))
def test_every_accepted_content_type_gets_the_models_probabilities(stack, expected, content_type):
    reply = post(stack.url, PAYLOADS[content_type](ROWS), {"Content-Type": content_type})

    assert reply.status == 200, reply.body
    assert reply.headers["Content-Type"].startswith("text/csv")
    np.testing.assert_allclose(csv_probabilities(reply.body), expected, rtol=1e-5)


def test_json_answer_when_json_is_accepted(stack, expected):
    reply = post(stack.url, csv_body(ROWS), {"Content-Type": "text/csv", "Accept": "application/json"})

    assert reply.status == 200
    np.testing.assert_allclose(np.array(reply.json()["predictions"]), expected, rtol=1e-5)


def test_binary_recordio_answer_arrives_as_bytes(stack):
    reply = post(
        stack.url, csv_body(ROWS), {"Content-Type": "text/csv", "Accept": "application/x-recordio-protobuf"}
    )

    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/x-recordio-protobuf"
    # RecordIO's magic number opens each record; base64 text from the handler would not.
    assert reply.body[:4] == bytes.fromhex("0a23d7ce")


def test_answer_carries_request_id_and_variant(stack):
    reply = post(stack.url, csv_body(ROWS[:1]), {"Content-Type": "text/csv"})

    assert reply.status == 200
    assert reply.headers["X-Request-Id"] == reply.headers["x-amzn-RequestId"]
    assert reply.headers["X-Invoked-Production-Variant"] == "AllTraffic"


# --- bad requests keep the container's status and message -------------------------------------


def test_csv_with_wrong_feature_count_is_400_naming_the_record(stack):
    reply = post(stack.url, b"1,2,3", {"Content-Type": "text/csv"})

    assert reply.status == 400
    body = reply.json()
    assert "record 1" in str(body["message"])
    assert "64" in str(body["message"])
    assert body["requestId"] == reply.headers["X-Request-Id"]


def test_unsupported_content_type_is_415(stack):
    reply = post(stack.url, b"hello", {"Content-Type": "text/plain"})

    assert reply.status == 415
    assert "text/plain" in str(reply.json()["message"])


def test_unsupported_accept_type_is_406(stack):
    reply = post(stack.url, csv_body(ROWS[:1]), {"Content-Type": "text/csv", "Accept": "image/png"})

    assert reply.status == 406
    assert "image/png" in str(reply.json()["message"])


def test_body_over_six_megabytes_is_413_from_the_handler(stack):
    reply = post(stack.url, b"1," * (3 * 1024 * 1024 + 1), {"Content-Type": "text/csv"})

    assert reply.status == 413
    assert reply.json()["error"] == "PayloadTooLarge"


def test_body_over_ten_megabytes_is_413_at_the_gateway(stack):
    reply = post(stack.url, b"1" * (10 * 1024 * 1024 + 1), {"Content-Type": "text/csv"})

    assert reply.status == 413
    assert reply.json() == {"message": "Request Too Long"}


def test_empty_body_is_400(stack):
    reply = post(stack.url, b"", {"Content-Type": "text/csv"})

    assert reply.status == 400
    assert reply.json()["error"] == "EmptyBody"


def test_missing_api_key_is_401_and_wrong_key_is_403(stack):
    missing = post(stack.url, csv_body(ROWS[:1]), {"Content-Type": "text/csv"}, api_key=None)
    wrong = post(stack.url, csv_body(ROWS[:1]), {"Content-Type": "text/csv"}, api_key="not-the-key")

    assert missing.status == 401
    assert "x-api-key" in str(missing.json()["message"])
    assert wrong.status == 403


def test_unknown_endpoint_name_is_503(stack, monkeypatch):
    monkeypatch.setenv("SAGEMAKER_ENDPOINT_NAME", "no-such-endpoint")

    reply = post(stack.url, csv_body(ROWS[:1]), {"Content-Type": "text/csv"})

    assert reply.status == 503
    assert reply.json()["error"] == "EndpointUnavailable"
    assert "000000000000" not in reply.body.decode()


# --- a dead container -------------------------------------------------------------------------


def test_dead_container_is_503_quickly_not_a_hang(demo_model_dir):
    with local_stack(demo_model_dir, "frontdoor_handler_dead_container") as running:
        assert post(running.url, csv_body(ROWS[:1]), {"Content-Type": "text/csv"}).status == 200
        running.container.stop()

        started = time.monotonic()
        reply = post(running.url, csv_body(ROWS[:1]), {"Content-Type": "text/csv"})
        elapsed = time.monotonic() - started

    assert reply.status == 503
    assert "Retry-After" in reply.headers
    assert elapsed < 5.0
