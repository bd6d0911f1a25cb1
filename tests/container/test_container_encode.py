"""encode() and Accept negotiation, without HTTP."""

from __future__ import annotations

import json
from http import HTTPStatus

import numpy as np
import pytest
from container_helpers import parse_csv_response
from hypothesis import given, settings
from hypothesis import strategies as st
from xgbserve import encode as e
from xgbserve import recordio
from xgbserve.errors import ServingError

PROBS = np.array([[0.1, 0.7, 0.2], [0.6, 0.3, 0.1]], dtype=np.float32)


def _label_records(body: bytes) -> list[dict[str, list[float]]]:
    """Decode a RecordIO response's label maps (reusing the reader: label is field 2, same layout)."""
    out = []
    for start, end in recordio.iter_payloads(body):
        payload = body[start:end]
        labels = {}
        for number, _wire, a, b in recordio._fields(payload, 0, len(payload)):
            if number == 2:
                key, tensor = recordio._map_entry(payload, a, b)
                labels[key] = tensor.values.tolist()
        out.append(labels)
    return out


def test_default_csv_is_one_line_of_probabilities_per_record() -> None:
    body = e.encode(PROBS, e.CSV)
    # Nine significant digits: float32's 0.1 is 0.100000001..., and is written so (exactly).
    assert body == (
        b"1.00000001e-01,6.99999988e-01,2.00000003e-01\n6.00000024e-01,3.00000012e-01,1.00000001e-01\n"
    )
    np.testing.assert_array_equal(parse_csv_response(body), PROBS)


def test_default_json_is_predictions_list_of_lists() -> None:
    document = json.loads(e.encode(PROBS, e.JSON))
    assert list(document) == ["predictions"]
    np.testing.assert_array_equal(np.array(document["predictions"], dtype=np.float32), PROBS)


def test_default_jsonlines_is_one_score_object_per_record() -> None:
    lines = e.encode(PROBS, e.JSONLINES).decode().splitlines()
    records = [json.loads(line) for line in lines]
    assert [list(record) for record in records] == [["score"], ["score"]]
    np.testing.assert_array_equal(np.array([r["score"] for r in records], dtype=np.float32), PROBS)


def test_default_recordio_has_one_record_per_prediction_with_score_label() -> None:
    records = _label_records(e.encode(PROBS, e.RECORDIO))
    assert len(records) == 2
    np.testing.assert_array_equal(np.array(records[1]["score"], dtype=np.float32), PROBS[1])


def test_single_score_objective_json_is_flat_list() -> None:
    scores = np.array([0.25, 0.75], dtype=np.float32)
    assert json.loads(e.encode(scores, e.JSON)) == {"predictions": [0.25, 0.75]}
    assert e.encode(scores, e.CSV) == b"2.50000000e-01\n7.50000000e-01\n"


def test_large_outputs_round_trip_float32_exactly() -> None:
    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.ones(10), 500).astype(np.float32)
    np.testing.assert_array_equal(parse_csv_response(e.encode(probs, e.CSV)), probs)
    decoded = np.array(json.loads(e.encode(probs, e.JSON))["predictions"], dtype=np.float32)
    np.testing.assert_array_equal(decoded, probs)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=1, max_size=40))
def test_fuzz_vectorised_formatter_round_trips_any_float32(values: list[float]) -> None:
    matrix = np.array(values, dtype=np.float32).reshape(-1, 1)
    text = e._format_vectorised(matrix.astype(np.float64), 1)
    np.testing.assert_array_equal(parse_csv_response(text), matrix)


def test_selected_outputs_follow_builtin_container_semantics() -> None:
    keys = ("predicted_label", "probability", "probabilities", "labels", "raw_score", "raw_scores")
    body = e.encode(PROBS, e.JSON, selection=keys, objective="multi:softprob", num_class=3)
    first = json.loads(body)["predictions"][0]
    assert first["predicted_label"] == 1
    assert first["probability"] == pytest.approx(0.7)
    assert first["probabilities"] == pytest.approx([0.1, 0.7, 0.2])
    assert first["labels"] == [0, 1, 2]
    assert first["raw_score"] == pytest.approx(0.7)
    assert first["raw_scores"] == pytest.approx([0.1, 0.7, 0.2])


def test_selected_csv_has_one_column_per_key_in_order() -> None:
    body = e.encode(PROBS, e.CSV, selection=("predicted_label", "probability"), objective="multi:softprob")
    lines = body.decode().splitlines()
    assert lines[0].split(",")[0] == "1"
    assert float(lines[0].split(",")[1]) == pytest.approx(0.7)
    assert lines[1].split(",")[0] == "0"


def test_selected_list_in_csv_is_a_quoted_json_array() -> None:
    body = e.encode(
        PROBS[:1], e.CSV, selection=("predicted_label", "probabilities"), objective="multi:softprob"
    )
    label, quoted = body.decode().strip().split(",", 1)
    assert label == "1"
    assert quoted.startswith('"[')
    assert json.loads(quoted.strip('"')) == pytest.approx([0.1, 0.7, 0.2])


def test_selected_jsonlines_is_one_object_per_record() -> None:
    body = e.encode(PROBS, e.JSONLINES, selection=("predicted_label",), objective="multi:softprob")
    assert body == b'{"predicted_label":1}\n{"predicted_label":0}\n'


def test_selected_recordio_has_one_record_per_prediction() -> None:
    body = e.encode(
        PROBS, e.RECORDIO, selection=("predicted_label", "probabilities"), objective="multi:softprob"
    )
    records = _label_records(body)
    assert [r["predicted_label"] for r in records] == [[1.0], [0.0]]
    assert records[1]["probabilities"] == pytest.approx([0.6, 0.3, 0.1])


def test_binary_logistic_selection() -> None:
    scores = np.array([0.2, 0.9], dtype=np.float32)
    body = e.encode(
        scores, e.JSON, selection=("predicted_label", "probabilities"), objective="binary:logistic"
    )
    predictions = json.loads(body)["predictions"]
    assert predictions[0]["predicted_label"] == 0
    assert predictions[1]["predicted_label"] == 1
    assert predictions[1]["probabilities"] == pytest.approx([0.1, 0.9])


def test_key_not_valid_for_objective_is_null_with_a_warning() -> None:
    warnings = e.check_selection(("predicted_label", "predicted_score"), "multi:softprob")
    assert warnings
    assert "predicted_score" in warnings[0]
    body = e.encode(PROBS[:1], e.JSON, selection=("predicted_score",), objective="multi:softprob")
    assert json.loads(body) == {"predictions": [{"predicted_score": None}]}


def test_unknown_selection_key_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="unknown output\\(s\\) probabilites"):
        e.check_selection(("probabilites",), "multi:softprob")


@pytest.mark.parametrize(
    ("header", "chosen"),
    [
        (None, "text/csv"),
        ("*/*", "text/csv"),
        ("application/json", "application/json"),
        ("application/json; charset=utf-8", "application/json"),
        ("image/png, application/jsonlines;q=0.5", "application/jsonlines"),
        ("text/csv;q=0.2, application/json", "application/json"),
        ("text/*", "text/csv"),
    ],
)
def test_accept_negotiation(header: str | None, chosen: str) -> None:
    assert e.choose_accept(header, "text/csv") == chosen


def test_unsupported_accept_is_406_listing_what_is_supported() -> None:
    with pytest.raises(ServingError) as caught:
        e.choose_accept("image/png", "text/csv")
    assert caught.value.status == HTTPStatus.NOT_ACCEPTABLE
    assert "application/json" in caught.value.message


def test_non_finite_scores_are_null_in_json() -> None:
    scores = np.array([np.nan, 1.0], dtype=np.float32)
    assert json.loads(e.encode(scores, e.JSON)) == {"predictions": [None, 1.0]}


# The same prediction, the same bytes, whatever the batch size (issue 10, item 7) -------------------


def test_a_record_is_written_the_same_alone_and_in_a_large_batch() -> None:
    """Below 512 values Python formats, above numpy: a record's line must not depend on which."""
    rng = np.random.default_rng(7)
    batch = rng.random((200, 10)).astype(np.float32)  # 2,000 values: the numpy formatter
    batch[3] = [0.6369617, 1e-05, 0.1, 1.0, 0.0, 3.4028235e38, 1.4e-45, 0.99999994, 5e-08, 0.5]
    alone = [e.encode(batch[i : i + 1], e.CSV) for i in range(batch.shape[0])]
    together = e.encode(batch, e.CSV)
    assert together == b"".join(alone)
    assert alone[3].startswith(b"6.36961699e-01,9.99999975e-06,1.00000001e-01,1.00000000e+00,0.00000000e+00,")
    np.testing.assert_array_equal(np.loadtxt(together.splitlines(), delimiter=",", dtype=np.float32), batch)
    # JSON writes its numbers the same way: record 3's list, alone and inside the batch.
    row = e.encode(batch[3:4], e.JSON).removeprefix(b'{"predictions":[').removesuffix(b"]}")
    assert row.startswith(b"[6.36961699e-01,")
    assert b"," + row + b"," in e.encode(batch, e.JSON)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.floats(width=32, allow_nan=False, allow_infinity=False, allow_subnormal=True),
        min_size=1,
        max_size=64,
    )
)
def test_fuzz_both_formatters_write_the_same_bytes(values: list[float]) -> None:
    column = np.array(values, dtype=np.float32).reshape(-1, 1)
    assert e._format_vectorised(column.astype(np.float64), 1) == e._format_python(column)
