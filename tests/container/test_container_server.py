"""The server as SageMaker runs it: a real Gunicorn subprocess on 127.0.0.1, over HTTP."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from container_helpers import csv_of, invoke, parse_csv_response, request
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from xgbserve import recordio
from xgbserve.decode import CONTENT_TYPES
from xgbserve.model import Model

from tools.serving import RunningContainer, running_container

SIX_MB = 6 * 1024 * 1024


def _libsvm_of(matrix: npt.NDArray[np.float32]) -> bytes:
    lines = []
    for row in matrix.tolist():
        pairs = " ".join(f"{i}:{v!r}" for i, v in enumerate(row) if v != 0)
        lines.append(f"0 {pairs}")
    return ("\n".join(lines) + "\n").encode()


def _body(matrix: npt.NDArray[np.float32], content_type: str) -> bytes:
    if content_type == "text/csv":
        return csv_of(matrix)
    if content_type == "text/libsvm":
        return _libsvm_of(matrix)
    if content_type == "application/json":
        return json.dumps({"instances": matrix.tolist()}).encode()
    if content_type == "application/jsonlines":
        return "".join(json.dumps(row) + "\n" for row in matrix.tolist()).encode()
    return recordio.write_dense_features(matrix)


def test_ping_is_200_despite_a_stray_file_in_the_model_dir(server: RunningContainer) -> None:
    response = request(server.url, "GET", "/ping")
    assert response.status == 200
    assert response.body == b""
    assert len(response.headers["x-model-version"]) == 16


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
def test_every_content_type_gives_the_models_predictions(
    server: RunningContainer, model: Model, content_type: str, rows: npt.NDArray[np.float32]
) -> None:
    matrix = rows[:20]
    # libsvm leaves zeros out, and an absent feature is a missing value: predict on that.
    sent = (
        np.where(matrix == 0, np.nan, matrix).astype(np.float32) if content_type == "text/libsvm" else matrix
    )
    response = invoke(server.url, _body(matrix, content_type), content_type)
    assert response.status == 200, response.body
    assert response.headers["content-type"].startswith("text/csv")
    np.testing.assert_array_equal(parse_csv_response(response.body), model.predict(sent))


@pytest.mark.parametrize(
    "accept", ["text/csv", "application/json", "application/jsonlines", "application/x-recordio-protobuf"]
)
def test_every_accept_type_is_answered_in_that_type(
    server: RunningContainer, accept: str, rows: npt.NDArray[np.float32], expected: npt.NDArray[np.float32]
) -> None:
    response = invoke(server.url, csv_of(rows[:3]), "text/csv", accept)
    assert response.status == 200
    assert response.headers["content-type"].startswith(accept)
    if accept == "application/json":
        got = np.array(response.json()["predictions"], dtype=np.float32)
    elif accept == "application/jsonlines":
        got = np.array([json.loads(line)["score"] for line in response.body.splitlines()], dtype=np.float32)
    elif accept == "application/x-recordio-protobuf":
        got = np.array([_label_score(response.body, a, b) for a, b in recordio.iter_payloads(response.body)])
    else:
        got = parse_csv_response(response.body)
    np.testing.assert_array_equal(got, expected[:3])


def _label_score(body: bytes, start: int, end: int) -> list[float]:
    payload = body[start:end]
    for number, _wire, a, b in recordio._fields(payload, 0, len(payload)):
        if number == 2:
            key, tensor = recordio._map_entry(payload, a, b)
            assert key == "score"
            return tensor.values.astype(np.float32).tolist()
    raise AssertionError("no label in record")


def test_json_features_shape_and_charset(server: RunningContainer, rows: npt.NDArray[np.float32]) -> None:
    body = json.dumps({"features": rows[0].tolist()}).encode()
    response = invoke(server.url, body, "application/json; charset=utf-8", "application/json")
    assert response.status == 200
    assert len(response.json()["predictions"]) == 1


def test_unsupported_content_type_is_415_json(server: RunningContainer) -> None:
    response = invoke(server.url, b"\x89PNG", "image/png")
    assert response.status == 415
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"].startswith("content type image/png is not supported")


def test_unsupported_accept_is_406_without_predicting(server: RunningContainer) -> None:
    response = invoke(server.url, b"not even csv", "text/csv", "image/png")
    assert response.status == 406
    assert "accept one of text/csv" in response.json()["error"]


def test_csv_with_wrong_feature_count_is_400(server: RunningContainer, rows: npt.NDArray[np.float32]) -> None:
    body = csv_of(rows[:2]) + b"1,2,3\n"
    response = invoke(server.url, body, "text/csv")
    assert response.status == 400
    assert response.json()["error"] == "record 3 has 3 features; the model expects 64"


def test_unparseable_csv_is_400_not_415(server: RunningContainer) -> None:
    body = ",".join(["1"] * 10 + ["abc"] + ["2"] * 53).encode()
    response = invoke(server.url, body, "text/csv")
    assert response.status == 400
    assert response.json()["error"] == "record 1, feature 11: 'abc' is not a number"


def test_empty_body_is_400(server: RunningContainer) -> None:
    response = invoke(server.url, b"", "text/csv")
    assert response.status == 400
    assert "empty" in response.json()["error"]


def test_body_over_6_mb_is_413_before_it_is_sent(server: RunningContainer) -> None:
    """Only the headers go out: the server must refuse on Content-Length alone."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
            + f"Content-Length: {SIX_MB + 1}\r\n\r\n".encode()
        )
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert b"application/json" in head
    assert b"send fewer records per request" in body


def test_every_response_carries_the_model_version(server: RunningContainer) -> None:
    version = request(server.url, "GET", "/ping").headers["x-model-version"]
    assert invoke(server.url, b"x", "image/png").headers["x-model-version"] == version
    assert request(server.url, "GET", "/nothing-here").headers["x-model-version"] == version


def test_invocations_carry_the_version_in_sagemaker_custom_attributes(
    server: RunningContainer, rows: npt.NDArray[np.float32]
) -> None:
    version = request(server.url, "GET", "/ping").headers["x-model-version"]
    for response in (invoke(server.url, csv_of(rows[:1]), "text/csv"), invoke(server.url, b"x", "image/png")):
        assert response.headers["x-amzn-sagemaker-custom-attributes"] == f"model-version={version}"


def test_access_log_has_one_json_line_per_request(
    server: RunningContainer, rows: npt.NDArray[np.float32]
) -> None:
    invoke(server.url, csv_of(rows[:5]), "text/csv")
    entries = [json.loads(line) for line in server.logs().splitlines() if line.startswith("{")]
    matching = [e for e in entries if e["path"] == "/invocations" and e["records"] == 5]
    assert matching
    assert {"latency_ms", "status", "model_version", "pid"} <= set(matching[-1])


_content_types = st.sampled_from([*CONTENT_TYPES, "text/csv; charset=latin-1", "application/octet-stream"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(min_size=1, max_size=300), content_type=_content_types)
def test_fuzz_no_body_gets_a_5xx_or_kills_a_worker(
    server: RunningContainer, body: bytes, content_type: str
) -> None:
    workers = server.worker_pids()
    response = invoke(server.url, body, content_type)
    assert response.status < 500, response.body
    assert server.worker_pids() == workers


@pytest.mark.parametrize("fmt", ["pickle", "ubj"])
def test_pickle_and_ubj_models_serve_the_same_predictions_as_json(
    fmt: str, model_dirs: dict[str, Path], rows: npt.NDArray[np.float32], expected: npt.NDArray[np.float32]
) -> None:
    with running_container(model_dirs[fmt], workers=1) as running:
        response = invoke(running.url, csv_of(rows[:50]), "text/csv")
    assert response.status == 200
    np.testing.assert_array_equal(parse_csv_response(response.body), expected[:50])
