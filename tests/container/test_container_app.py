"""The Flask app in-process (create_app with an injected model): routes, statuses, headers, logs."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from container_helpers import csv_of, parse_csv_response
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import Client
from xgbserve import recordio
from xgbserve.app import create_app
from xgbserve.model import Model
from xgbserve.settings import Settings


def _settings(**env: str) -> Settings:
    return Settings.from_env({"MODEL_DIR": "/nonexistent", **env}, cpu_count=2)


@pytest.fixture(scope="module")
def app(model: Model) -> Flask:
    return create_app(model, _settings())


@pytest.fixture
def client(app: Flask) -> Iterator[FlaskClient]:
    with app.test_client() as test_client:
        yield test_client


def test_ping_is_200_with_empty_body_and_model_version(client: FlaskClient, model: Model) -> None:
    response = client.get("/ping")
    assert response.status_code == 200
    assert response.data == b""
    assert response.headers["X-Model-Version"] == model.version


def test_csv_batch_returns_probabilities_per_record(
    client: FlaskClient, rows: npt.NDArray[np.float32], expected: npt.NDArray[np.float32]
) -> None:
    response = client.post("/invocations", data=csv_of(rows[:300]), content_type="text/csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    np.testing.assert_array_equal(parse_csv_response(response.data), expected[:300])


def test_recordio_request_and_json_response(
    client: FlaskClient, rows: npt.NDArray[np.float32], expected: npt.NDArray[np.float32]
) -> None:
    response = client.post(
        "/invocations",
        data=recordio.write_dense_features(rows[:4]),
        headers={"Content-Type": "application/x-recordio-protobuf", "Accept": "application/json"},
    )
    assert response.status_code == 200
    np.testing.assert_allclose(response.get_json()["predictions"], expected[:4], rtol=1e-6)


def test_error_bodies_are_json_with_the_message(client: FlaskClient) -> None:
    response = client.post("/invocations", data=b"1,2,3", content_type="text/csv")
    assert response.status_code == 400
    assert response.mimetype == "application/json"
    assert response.get_json() == {"error": "record 1 has 3 features; the model expects 64", "status": 400}
    assert "X-Model-Version" in response.headers


def test_every_invocations_response_carries_the_version_in_custom_attributes(
    client: FlaskClient, model: Model, rows: npt.NDArray[np.float32]
) -> None:
    """SageMaker passes back only Content-Type and the custom attributes: the version rides there."""
    expected_attributes = f"model-version={model.version}"
    responses = {
        200: client.post("/invocations", data=csv_of(rows[:1]), content_type="text/csv"),
        400: client.post("/invocations", data=b"1,2,3", content_type="text/csv"),
        406: client.post(
            "/invocations", data=b"1", headers={"Content-Type": "text/csv", "Accept": "image/png"}
        ),
        415: client.post("/invocations", data=b"1", content_type="image/png"),
    }
    for status, response in responses.items():
        assert response.status_code == status
        assert response.headers["X-Amzn-SageMaker-Custom-Attributes"] == expected_attributes
        assert response.headers["X-Model-Version"] == model.version


def test_version_in_custom_attributes_on_413_and_500(model: Model, monkeypatch: pytest.MonkeyPatch) -> None:
    small = create_app(model, _settings(MAX_CONTENT_LENGTH="100"))
    with small.test_client() as client:
        too_large = client.post("/invocations", data=b"1," * 100, content_type="text/csv")
    assert too_large.status_code == 413
    assert too_large.headers["X-Amzn-SageMaker-Custom-Attributes"] == f"model-version={model.version}"

    def broken_predict(matrix: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        raise RuntimeError("boom")

    monkeypatch.setattr(model, "predict", broken_predict)
    broken = create_app(model, _settings())
    with broken.test_client() as client:
        failed = client.post("/invocations", data=",".join(["1"] * 64).encode(), content_type="text/csv")
    assert failed.status_code == 500
    assert failed.get_json() == {"error": "internal server error", "status": 500}
    assert failed.headers["X-Amzn-SageMaker-Custom-Attributes"] == f"model-version={model.version}"


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b"", {"Content-Type": "text/csv"}),
        (b"1,2,3", {"Content-Type": "text/csv"}),
        (b"1", {"Content-Type": "image/png"}),
        (b"1", {"Content-Type": "text/csv", "Accept": "image/png"}),
        (None, {"Content-Type": "text/csv"}),
        (None, {"Content-Type": "text/csv", "Accept": "application/json"}),
        (None, {"Content-Type": "text/csv", "Accept": "application/jsonlines"}),
        (None, {"Content-Type": "text/csv", "Accept": "application/x-recordio-protobuf"}),
    ],
)
def test_invocations_fast_path_answers_exactly_as_flask_does(
    app: Flask, rows: npt.NDArray[np.float32], body: bytes | None, headers: dict[str, str]
) -> None:
    """The middleware answers POST /invocations itself; Flask's route must give the same bytes."""
    data = csv_of(rows[:3]) if body is None else body
    fast = app.test_client().post("/invocations", data=data, headers=headers)
    flask_only = Client(app.wsgi_app.app).post("/invocations", data=data, headers=headers)  # type: ignore[attr-defined]
    assert fast.status == flask_only.status
    assert fast.headers.to_wsgi_list() == flask_only.headers.to_wsgi_list()
    assert fast.data == flask_only.data


def test_unknown_route_is_json_404_not_html(client: FlaskClient) -> None:
    response = client.get("/nope")
    assert response.status_code == 404
    assert response.mimetype == "application/json"
    assert "POST /invocations" in response.get_json()["error"]


def test_wrong_method_is_json_405(client: FlaskClient) -> None:
    response = client.get("/invocations")
    assert response.status_code == 405
    assert response.mimetype == "application/json"


def test_accept_is_checked_before_the_body_is_parsed(client: FlaskClient) -> None:
    response = client.post(
        "/invocations", data=b"garbage", headers={"Content-Type": "text/csv", "Accept": "image/png"}
    )
    assert response.status_code == 406


def test_declared_length_over_limit_is_413_before_reading(model: Model) -> None:
    small = create_app(model, _settings(MAX_CONTENT_LENGTH="100"))
    with small.test_client() as client:
        response = client.post("/invocations", data=b"1," * 100, content_type="text/csv")
    assert response.status_code == 413
    assert "limit is 100 bytes" in response.get_json()["error"]


def test_chunked_body_over_limit_is_413_not_cut_short(model: Model, rows: npt.NDArray[np.float32]) -> None:
    small = create_app(model, _settings(MAX_CONTENT_LENGTH="2000"))
    body = csv_of(rows[:20])
    assert len(body) > 2000
    with small.test_client() as client:
        response = client.post(
            "/invocations",
            input_stream=io.BytesIO(body),
            headers={"Content-Type": "text/csv", "Transfer-Encoding": "chunked"},
            environ_overrides={"wsgi.input_terminated": True},
        )
    assert response.status_code == 413
    assert "over the limit of 2000 bytes" in response.get_json()["error"]


def test_chunked_body_under_limit_is_read_whole(
    client: FlaskClient, rows: npt.NDArray[np.float32], expected: npt.NDArray[np.float32]
) -> None:
    response = client.post(
        "/invocations",
        input_stream=io.BytesIO(csv_of(rows[:20])),
        headers={"Content-Type": "text/csv", "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 200
    np.testing.assert_array_equal(parse_csv_response(response.data), expected[:20])


def test_selection_from_environment_shapes_the_response(model: Model, rows: npt.NDArray[np.float32]) -> None:
    selected = create_app(model, _settings(SAGEMAKER_INFERENCE_OUTPUT="predicted_label, probability"))
    with selected.test_client() as client:
        response = client.post(
            "/invocations",
            data=csv_of(rows[:2]),
            headers={"Content-Type": "text/csv", "Accept": "application/json"},
        )
    predictions = response.get_json()["predictions"]
    assert [p["predicted_label"] for p in predictions] == [0, 1]
    assert set(predictions[0]) == {"predicted_label", "probability"}


def test_default_accept_comes_from_the_environment(model: Model, rows: npt.NDArray[np.float32]) -> None:
    jsonish = create_app(model, _settings(SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT="application/json"))
    with jsonish.test_client() as client:
        response = client.post("/invocations", data=csv_of(rows[:1]), content_type="text/csv")
    assert response.mimetype == "application/json"


def test_access_log_is_one_json_line_with_latency_and_records(
    client: FlaskClient, rows: npt.NDArray[np.float32], capfd: pytest.CaptureFixture[str]
) -> None:
    capfd.readouterr()
    client.post("/invocations", data=csv_of(rows[:7]), content_type="text/csv")
    lines = capfd.readouterr().out.splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["path"] == "/invocations"
    assert entry["status"] == 200
    assert entry["records"] == 7
    assert entry["latency_ms"] > 0


def test_access_log_line_is_what_json_dumps_writes_for_any_client_string(
    client: FlaskClient, capfd: pytest.CaptureFixture[str]
) -> None:
    hostile = 'text/csv; x="\\\u00e9\x01' + "y" * 150
    capfd.readouterr()
    client.post("/invocations", data=b"1\n", headers={"Content-Type": hostile, "Accept": ""})
    client.get("/ping")
    lines = capfd.readouterr().out.splitlines()
    assert len(lines) == 2
    for line in lines:
        entry = json.loads(line)
        assert line == json.dumps(entry, separators=(",", ":"))
    first = json.loads(lines[0])
    assert first["content_type"] == hostile[:100]
    assert first["accept"] is None
    assert first["status"] == 400  # one feature where the model expects 64


def test_execution_parameters_for_batch_transform(client: FlaskClient) -> None:
    assert client.get("/execution-parameters").get_json() == {
        "MaxConcurrentTransforms": 5,
        "BatchStrategy": "MULTI_RECORD",
        "MaxPayloadInMB": 6,
    }


def test_settings_reject_a_bad_worker_count() -> None:
    with pytest.raises(ValueError, match="SAGEMAKER_MODEL_SERVER_WORKERS='many' is not an integer"):
        Settings.from_env({"SAGEMAKER_MODEL_SERVER_WORKERS": "many"})


@pytest.mark.parametrize(
    ("value", "message"),
    [("abc", "SERVER_THREADS='abc' is not an integer"), ("0", "SERVER_THREADS=0 must be at least 1")],
)
def test_settings_reject_a_bad_thread_count(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Settings.from_env({"SERVER_THREADS": value})


def test_settings_defaults_follow_the_contract() -> None:
    settings = Settings.from_env({}, cpu_count=2)
    assert settings.model_dir == Path("/opt/ml/model")
    assert (settings.port, settings.bind_host, settings.workers, settings.timeout) == (8080, "0.0.0.0", 5, 60)
    assert settings.max_content_length == 6 * 1024 * 1024


def test_ping_is_answered_while_a_predict_is_running(model: Model, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pings bypass parsing and prediction: a worker busy predicting still reports healthy."""
    predicting = threading.Event()
    release = threading.Event()
    original = model.predict

    def slow_predict(matrix: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        predicting.set()
        release.wait(timeout=10)
        return original(matrix)

    monkeypatch.setattr(model, "predict", slow_predict)
    busy_app = create_app(model, _settings())
    body = ",".join(["1"] * 64).encode()
    statuses: list[int] = []
    worker = threading.Thread(
        target=lambda: statuses.append(
            busy_app.test_client().post("/invocations", data=body, content_type="text/csv").status_code
        )
    )
    worker.start()
    try:
        assert predicting.wait(timeout=10)
        started = time.perf_counter()
        assert busy_app.test_client().get("/ping").status_code == 200
        assert time.perf_counter() - started < 1.0
    finally:
        release.set()
        worker.join(timeout=10)
    assert statuses == [200]
