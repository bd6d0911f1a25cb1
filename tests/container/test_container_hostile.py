"""Hostile input, in-process: each case was found by sending it, and each is refused before the work.

A 6 MB body can become millions of records (3M label-only libsvm lines reached 4.6 GiB and a
472 MB answer after 172 s), a RecordIO body 200k tiny records (9 s); a pickled model can ask
the Booster to read another file. Every one of these gets a clear 4xx, or a clear refusal at
load, before any parsing, allocating or predicting.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import xgboost as xgb
from container_helpers import csv_of
from flask import Flask
from xgbserve import decode as decoding
from xgbserve import recordio
from xgbserve.app import RecordLimit, create_app
from xgbserve.errors import ServingError
from xgbserve.model import Model, ModelLoadError, load_booster_bytes
from xgbserve.settings import ConfigurationError, Settings

SIX_MB = 6 * 1024 * 1024


def _settings(**env: str) -> Settings:
    return Settings.from_env({"MODEL_DIR": "/nonexistent", **env}, cpu_count=2)


@pytest.fixture(scope="module")
def app(model: Model) -> Flask:
    return create_app(model, _settings())


def _tiny_recordio(count: int) -> bytes:
    """``count`` valid one-value sparse records: 28 bytes each, so 200k fit in 6 MB."""
    tensor = recordio._len_field(1, np.float32(1.0).tobytes()) + recordio._len_field(2, b"\x00")
    value = recordio._len_field(2, tensor)
    record = recordio._len_field(1, recordio._len_field(1, b"v") + recordio._len_field(2, value))
    return recordio.frame([record] * count)


def test_label_only_libsvm_of_six_megabytes_is_413_before_a_row_is_read(app: Flask) -> None:
    body = b"1\n" * (3 * 1024 * 1024)
    assert len(body) <= SIX_MB
    response = app.test_client().post("/invocations", data=body, content_type="text/libsvm")
    assert response.status_code == 413
    message = response.get_json()["error"]
    # The tightest limit speaks: here the answer (10 probabilities a record, at most 6 MiB).
    assert message.startswith("the body holds 3,145,728 lines; at most 39,321 records are taken per request")
    assert message.endswith("send fewer records per request")


def test_recordio_of_200k_tiny_records_is_413_from_its_headers(app: Flask) -> None:
    body = _tiny_recordio(200_000)
    assert len(body) < SIX_MB
    response = app.test_client().post(
        "/invocations", data=body, content_type="application/x-recordio-protobuf"
    )
    assert response.status_code == 413
    assert response.get_json()["error"].startswith("the body holds 200,000 records; at most 39,321 records")


def test_a_few_tiny_recordio_records_still_decode() -> None:
    matrix = decoding.decode(_tiny_recordio(3), decoding.RECORDIO, 4)
    assert matrix.shape == (3, 4)
    assert matrix[:, 0].tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize(
    ("content_type", "body", "unit"),
    [
        ("text/csv", b"1,2\n" * 11, "lines"),
        ("application/jsonlines", b"[1,2]\n" * 11, "lines"),
        ("application/json", b"[" + b"[1,2]," * 10 + b"[1,2]]", "records"),
        ("application/json", b'{"instances": [' + b"[1,2]," * 10 + b"[1,2]]}", "records"),
    ],
)
def test_every_format_counts_records_before_parsing(content_type: str, body: bytes, unit: str) -> None:
    seen: list[tuple[int, str]] = []

    def check(count: int, what: str) -> None:
        seen.append((count, what))
        RecordLimit(10, "at most 10 records").check(count, what)

    with pytest.raises(ServingError) as caught:
        decoding.decode(body, content_type, 2, check)
    assert caught.value.status == 413
    assert seen[0][0] >= 11
    assert seen[0][1] == unit


def test_matrix_limit_counts_features(model: Model, rows: npt.NDArray[np.float32]) -> None:
    # 64 features x 4 bytes = 256 bytes a record: 10 KiB is 40 records.
    app = create_app(model, _settings(SERVER_MAX_MATRIX_BYTES="10240"))
    client = app.test_client()
    assert client.post("/invocations", data=csv_of(rows[:40]), content_type="text/csv").status_code == 200
    response = client.post("/invocations", data=csv_of(rows[:41]), content_type="text/csv")
    assert response.status_code == 413
    assert "at most 40 records of 64 features (10,240 bytes decoded)" in response.get_json()["error"]


def test_answer_limit_refuses_before_predicting(
    model: Model, rows: npt.NDArray[np.float32], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(model, _settings(SERVER_MAX_RESPONSE_BYTES="2000"))
    predicted: list[int] = []
    original = Model.predict
    monkeypatch.setattr(Model, "predict", lambda self, matrix: predicted.append(1) or original(self, matrix))
    response = app.test_client().post("/invocations", data=csv_of(rows[:100]), content_type="text/csv")
    assert response.status_code == 413
    assert "for an answer in text/csv (at most 2,000 bytes)" in response.get_json()["error"]
    assert predicted == []
    # The bound depends on the answer type: RecordIO writes 4 bytes a value, not up to 16.
    small = app.test_client().post(
        "/invocations",
        data=csv_of(rows[:10]),
        content_type="text/csv",
        headers={"Accept": "application/x-recordio-protobuf"},
    )
    assert small.status_code == 200
    assert len(small.data) <= 2000


def test_limits_are_settings_with_clear_errors() -> None:
    settings = _settings(SERVER_MAX_RECORDS="5", SERVER_REQUEST_DEADLINE_SECONDS="0.5")
    assert (settings.max_records, settings.request_deadline) == (5, 0.5)
    assert _settings().max_records == 100_000
    with pytest.raises(ConfigurationError, match="SERVER_REQUEST_DEADLINE_SECONDS=-1 must be a positive"):
        _settings(SERVER_REQUEST_DEADLINE_SECONDS="-1")
    with pytest.raises(ConfigurationError, match="SERVER_READ_TIMEOUT_SECONDS='soon' is not a number"):
        _settings(SERVER_READ_TIMEOUT_SECONDS="soon")


# Pickled models -----------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_boosters_pickled_with_every_protocol_load(
    booster: xgb.Booster, protocol: int, rows: npt.NDArray[np.float32], expected: npt.NDArray[np.float32]
) -> None:
    loaded = load_booster_bytes(pickle.dumps(booster, protocol=protocol))
    model = Model.from_booster(loaded, "v")
    np.testing.assert_array_equal(model.predict(rows[:20]), expected[:20])


class _BoosterReadingAnotherFile:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[None, None, str]]:
        return (xgb.Booster, (None, None, self.path))


class _BoosterWithExtraState:
    def __init__(self, state: dict[str, object]) -> None:
        self.state = state

    def __reduce__(self) -> tuple[object, tuple[()], dict[str, object]]:
        return (xgb.Booster, (), self.state)


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_pickle_making_the_booster_read_another_file_is_refused(
    model_dirs: dict[str, Path], protocol: int
) -> None:
    # A real model file elsewhere on disk: if the Booster were called with model_file=, it would load.
    other = str(model_dirs["json"] / "xgboost-model")
    with pytest.raises(ModelLoadError, match="refusing to call Booster with arguments"):
        load_booster_bytes(pickle.dumps(_BoosterReadingAnotherFile(other), protocol=protocol))


def test_pickled_booster_with_unexpected_state_is_refused(booster: xgb.Booster) -> None:
    state = {**booster.__getstate__(), "predict": 1}
    with pytest.raises(ModelLoadError, match="unexpected state: predict"):
        load_booster_bytes(pickle.dumps(_BoosterWithExtraState(state), protocol=4))
