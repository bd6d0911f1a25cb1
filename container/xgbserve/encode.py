"""encode(predictions, accept, selection) -> response bytes, and choosing the response type.

Default output (no ``SAGEMAKER_INFERENCE_OUTPUT``): each record's prediction, i.e. the class
probabilities of a ``multi:softprob`` model or the single score of other objectives:

- ``text/csv``: one line per record, values separated by commas;
- ``application/json``: ``{"predictions": [[p0, p1, ...], ...]}`` (or ``[s, ...]`` for one score);
- ``application/jsonlines``: one ``{"score": ...}`` object per record;
- ``application/x-recordio-protobuf``: one Record per record, its ``label`` map holding ``score``.

With ``SAGEMAKER_INFERENCE_OUTPUT`` (e.g. ``predicted_label,probabilities``) each record is an
object with those keys, computed as SageMaker's built-in XGBoost container computes them; CSV
gives one column per key (lists as a quoted JSON array), JSON ``{"predictions": [{...}, ...]}``,
JSON lines one object a line, RecordIO one Record a record with a ``label`` tensor per key.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

import numpy as np
import numpy.typing as npt

from . import recordio
from .decode import CSV, JSON, JSONLINES, RECORDIO, parse_media_type
from .errors import ServingError

ACCEPT_TYPES = (CSV, JSON, JSONLINES, RECORDIO)
_WILDCARDS = {"text/*": CSV, "application/*": JSON}

# Selectable outputs, as SageMaker's built-in XGBoost container defines them.
PREDICTED_LABEL = "predicted_label"
LABELS = "labels"
PROBABILITY = "probability"
PROBABILITIES = "probabilities"
RAW_SCORE = "raw_score"
RAW_SCORES = "raw_scores"
PREDICTED_SCORE = "predicted_score"
SELECTABLE_KEYS = (
    PREDICTED_LABEL,
    LABELS,
    PROBABILITY,
    PROBABILITIES,
    RAW_SCORE,
    RAW_SCORES,
    PREDICTED_SCORE,
)
_REGRESSION = (PREDICTED_SCORE,)
_CLASSIFICATION = (PREDICTED_LABEL, LABELS, PROBABILITY, PROBABILITIES, RAW_SCORE, RAW_SCORES)
VALID_KEYS_BY_OBJECTIVE: dict[str, tuple[str, ...]] = {
    "reg:squarederror": _REGRESSION,
    "reg:logistic": _REGRESSION,
    "reg:gamma": _REGRESSION,
    "reg:tweedie": _REGRESSION,
    "binary:logistic": _CLASSIFICATION,
    "binary:logitraw": (PREDICTED_LABEL, LABELS, RAW_SCORE, RAW_SCORES),
    "binary:hinge": (PREDICTED_LABEL, LABELS, RAW_SCORE, RAW_SCORES),
    "multi:softmax": (PREDICTED_LABEL, LABELS, RAW_SCORE, RAW_SCORES),
    "multi:softprob": _CLASSIFICATION,
}
# Below this many values Python formatting beats the vectorised formatter's fixed numpy overhead.
_VECTORISED_MIN_VALUES = 512
# How close to a rounding tie the ninth digit may come before Python rounds it instead of numpy.
_TIE_MARGIN = 1e-4


def choose_accept(header: str | None, default: str) -> str:
    """The response type for an Accept header: the first supported type by preference, or 406."""
    if not header or not header.strip():
        return default
    candidates: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        media, params = parse_media_type(part)
        try:
            quality = float(params.get("q", "1"))
        except ValueError:
            quality = 0.0
        if quality > 0 and media:
            candidates.append((-quality, position, media))
    for _, _, media in sorted(candidates):
        if media == "*/*":
            return default
        resolved = _WILDCARDS.get(media, media)
        if resolved in ACCEPT_TYPES:
            return resolved
    raise ServingError(
        HTTPStatus.NOT_ACCEPTABLE,
        f"cannot answer in {header.strip()[:100]}: accept one of {', '.join(ACCEPT_TYPES)}",
    )


def check_selection(keys: Sequence[str], objective: str) -> list[str]:
    """Validate SAGEMAKER_INFERENCE_OUTPUT keys at start-up; returns warnings for keys the objective lacks.

    Unknown keys are a configuration error. Keys that exist but do not apply to the objective
    (``predicted_score`` on a classifier) are answered with null, as the built-in container does.
    """
    unknown = [key for key in keys if key not in SELECTABLE_KEYS]
    if unknown:
        raise ValueError(
            f"SAGEMAKER_INFERENCE_OUTPUT names unknown output(s) {', '.join(unknown)}: "
            f"use a comma-separated subset of {', '.join(SELECTABLE_KEYS)}"
        )
    if not keys:
        return []
    valid = VALID_KEYS_BY_OBJECTIVE.get(objective)
    if valid is None:
        raise ValueError(
            f"SAGEMAKER_INFERENCE_OUTPUT is not supported for objective {objective}: "
            f"unset it, or serve a model with one of {', '.join(VALID_KEYS_BY_OBJECTIVE)}"
        )
    return [
        f"output {key} does not apply to objective {objective} and will be null; valid: {', '.join(valid)}"
        for key in keys
        if key not in valid
    ]


# Number formatting -------------------------------------------------------------------------------


def _format_vectorised(values: npt.NDArray[np.float64], columns: int) -> bytes:
    """Finite values as CSV lines in 9-significant-digit scientific notation, in numpy.

    Nine significant digits round-trip every float32 exactly. Each value becomes a fixed 16-byte
    cell ``-d.dddddddde+XX,`` whose sign byte is dropped for non-negative values.
    """
    flat = values.ravel()
    negative = np.signbit(flat)
    magnitude = np.abs(flat)
    nonzero = magnitude > 0
    exponent = np.zeros(flat.size, dtype=np.int64)
    exponent[nonzero] = np.floor(np.log10(magnitude[nonzero])).astype(np.int64)
    mantissa = magnitude / np.power(10.0, exponent)
    # log10 can be off by one at exact powers of ten.
    high = mantissa >= 10.0
    low = nonzero & (mantissa < 1.0)
    exponent += high.astype(np.int64) - low.astype(np.int64)
    mantissa = np.where(high, mantissa / 10.0, np.where(low, mantissa * 10.0, mantissa))
    scaled = mantissa * 1e8
    digits = np.rint(scaled).astype(np.int64)
    # The division above is not exact: where the ninth digit's rounding is close to a tie, take
    # Python's correctly rounded digits instead, so every value is written exactly as "%.8e"
    # writes it (the small-batch path), whatever the batch size.
    near_tie = np.flatnonzero(np.abs(scaled - np.floor(scaled) - 0.5) < _TIE_MARGIN)
    for index in near_tie.tolist():
        text = "%.8e" % magnitude[index]  # noqa: UP031  ("d.dddddddde+XX", the cell's own layout)
        digits[index] = int(text[0] + text[2:10])
        exponent[index] = int(text[11:])
    carry = digits >= 1_000_000_000
    digits[carry] = 100_000_000
    exponent += carry

    cells = np.empty((flat.size, 16), dtype=np.uint8)
    cells[:, 0] = ord("-")
    cells[:, 1] = 48 + digits // 100_000_000
    cells[:, 2] = ord(".")
    for place in range(8):
        cells[:, 3 + place] = 48 + (digits // 10 ** (7 - place)) % 10
    cells[:, 11] = ord("e")
    cells[:, 12] = np.where(exponent < 0, ord("-"), ord("+"))
    magnitude_exp = np.abs(exponent)
    cells[:, 13] = 48 + magnitude_exp // 10
    cells[:, 14] = 48 + magnitude_exp % 10
    cells[:, 15] = ord(",")
    cells[columns - 1 :: columns, 15] = ord("\n")
    keep = np.ones((flat.size, 16), dtype=bool)
    keep[:, 0] = negative
    return cells[keep].tobytes()


def _format_python(values: npt.NDArray[np.float32]) -> bytes:
    """The same 9-significant-digit cells with Python's "%.8e" (nan/inf as "nan"/"inf", CSV only)."""
    rows, columns = values.shape
    line = ",".join(["%.8e"] * columns) + "\n"
    return ((line * rows) % tuple(values.ravel().tolist())).encode()


def csv_lines(values: npt.NDArray[np.float32]) -> bytes:
    """Rows of ``values`` (2-D) as CSV lines, each ending with a newline.

    Every number is written the same way whatever the batch size: 9 significant digits in
    scientific notation (``6.36961699e-01``), which round-trips every float32 exactly. Small
    batches are formatted by Python, large ones by numpy (faster past a few hundred values);
    a property test holds the two to the same bytes. (Before, small batches used float32's
    shortest repr, ``0.6369617``, so one record answered alone and the same record in a batch
    of 60 were written differently.)
    """
    if values.size >= _VECTORISED_MIN_VALUES and np.isfinite(values).all():
        return _format_vectorised(values.astype(np.float64), values.shape[1])
    return _format_python(values)


def _as_matrix(predictions: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    return predictions.reshape(predictions.shape[0], -1)


# Default output ------------------------------------------------------------------------------------


def _json_default(predictions: npt.NDArray[np.float32]) -> bytes:
    matrix = _as_matrix(predictions)
    if not np.isfinite(matrix).all():
        cleaned: Any = [[None if not math.isfinite(v) else v for v in row] for row in matrix.tolist()]
        rows = cleaned if predictions.ndim > 1 else [row[0] for row in cleaned]
        return json.dumps({"predictions": rows}, separators=(",", ":")).encode()
    body = csv_lines(matrix)[:-1]  # finite numbers are valid JSON numbers as formatted
    if predictions.ndim > 1:
        return b'{"predictions":[[' + body.replace(b"\n", b"],[") + b"]]}"
    return b'{"predictions":[' + body.replace(b"\n", b",") + b"]}"


def _jsonlines_default(predictions: npt.NDArray[np.float32]) -> bytes:
    matrix = _as_matrix(predictions)
    if not np.isfinite(matrix).all():
        return _jsonlines([{"score": _plain(row, predictions.ndim > 1)} for row in matrix])
    body = csv_lines(matrix)[:-1]
    if predictions.ndim > 1:
        return b'{"score":[' + body.replace(b"\n", b']}\n{"score":[') + b"]}\n"
    return b'{"score":' + body.replace(b"\n", b'}\n{"score":') + b"}\n"


def _recordio_default(predictions: npt.NDArray[np.float32]) -> bytes:
    matrix = _as_matrix(predictions)
    return recordio.frame([recordio.encode_record({"score": row}, field=2) for row in matrix])


def _plain(row: npt.NDArray[np.float32], as_list: bool) -> Any:
    values = [v if math.isfinite(v) else None for v in row.tolist()]
    return values if as_list else values[0]


def _jsonlines(items: Sequence[object]) -> bytes:
    return "".join(json.dumps(item, separators=(",", ":")) + "\n" for item in items).encode()


# Selected output -----------------------------------------------------------------------------------


def _selected_columns(
    predictions: npt.NDArray[np.float32], keys: Sequence[str], objective: str, num_class: int
) -> dict[str, Any]:
    """Per key, a vector (one value a record), a matrix (one list a record), or None (null)."""
    valid = VALID_KEYS_BY_OBJECTIVE.get(objective, ())
    multi_prob = objective == "multi:softprob"
    vector = predictions.reshape(-1) if not multi_prob else predictions
    columns: dict[str, Any] = {}
    for key in keys:
        if key not in valid:
            columns[key] = None
        elif key == PREDICTED_LABEL:
            if multi_prob:
                columns[key] = np.argmax(predictions, axis=1).astype(np.float32)
            elif objective == "binary:logistic":
                columns[key] = (vector > 0.5).astype(np.float32)
            elif objective == "binary:logitraw":
                columns[key] = (vector > 0).astype(np.float32)
            else:  # binary:hinge and multi:softmax already predict the label
                columns[key] = vector.astype(np.float32)
        elif key == LABELS:
            count = 2 if objective.startswith("binary:") else num_class
            columns[key] = np.tile(np.arange(count, dtype=np.float32), (predictions.shape[0], 1))
        elif key in (PROBABILITY, RAW_SCORE):
            columns[key] = np.max(predictions, axis=1) if multi_prob else vector
        elif key in (PROBABILITIES, RAW_SCORES):
            columns[key] = predictions if multi_prob else np.stack([1.0 - vector, vector], axis=1)
        else:  # PREDICTED_SCORE
            columns[key] = vector
    return columns


_INTEGER_KEYS = frozenset({PREDICTED_LABEL, LABELS})


def _cell(column: Any, index: int, key: str) -> Any:
    if column is None:
        return None
    value = column[index]
    if np.ndim(value) == 0:
        number = float(value)
        if not math.isfinite(number):
            return None
        return int(number) if key in _INTEGER_KEYS else number
    items = [v if math.isfinite(v) else None for v in np.asarray(value, dtype=np.float64).tolist()]
    return [int(v) for v in items if v is not None] if key in _INTEGER_KEYS else items


def _selected_records(columns: dict[str, Any], count: int) -> list[dict[str, Any]]:
    return [{key: _cell(column, i, key) for key, column in columns.items()} for i in range(count)]


def _csv_field(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return '"' + json.dumps(value) + '"'
    return repr(value) if isinstance(value, float) else str(value)


def _encode_selected(records: list[dict[str, Any]], keys: Sequence[str], accept: str) -> bytes:
    if accept == CSV:
        return "".join(",".join(_csv_field(r[key]) for key in keys) + "\n" for r in records).encode()
    if accept == JSON:
        return json.dumps({"predictions": records}, separators=(",", ":")).encode()
    if accept == JSONLINES:
        return _jsonlines(records)
    payloads = [
        recordio.encode_record(
            {
                key: np.atleast_1d(np.asarray([] if value is None else value, dtype=np.float32))
                for key, value in record.items()
            },
            field=2,
        )
        for record in records
    ]
    return recordio.frame(payloads)


# The longest a number can be written: a float32 as CSV/JSON ("-1.17549435e-38," is 16 bytes,
# either formatter), and a float64 in a selected output ("-2.2250738585072014e-308," 25 bytes).
_MAX_DEFAULT_VALUE_BYTES = 16
_MAX_SELECTED_VALUE_BYTES = 26
# Per record: JSON brackets, a JSON lines key, or a RecordIO header, padding and protobuf tags.
_RECORD_OVERHEAD_BYTES = {CSV: 0, JSON: 4, JSONLINES: 12, RECORDIO: 48}
_SELECTED_KEY_OVERHEAD_BYTES = 16
_LIST_KEYS = frozenset({LABELS, PROBABILITIES, RAW_SCORES})


def answer_bytes_per_record(accept: str, selection: Sequence[str], objective: str, num_class: int) -> int:
    """An upper bound on one record's share of the answer, known before anything is predicted."""
    overhead = _RECORD_OVERHEAD_BYTES.get(accept, max(_RECORD_OVERHEAD_BYTES.values()))
    if not selection:
        width = num_class if objective == "multi:softprob" and num_class > 0 else 1
        per_value = _MAX_DEFAULT_VALUE_BYTES if accept != RECORDIO else 4
        return width * per_value + overhead
    classes = max(num_class, 2)
    total = overhead
    for key in selection:
        values = classes if key in _LIST_KEYS else 1
        total += values * _MAX_SELECTED_VALUE_BYTES + len(key) + _SELECTED_KEY_OVERHEAD_BYTES
    return total


def encode(
    predictions: npt.NDArray[np.float32],
    accept: str,
    *,
    selection: Sequence[str] = (),
    objective: str = "",
    num_class: int = 0,
) -> bytes:
    """Response body for ``predictions`` (one entry or row per record) in canonical type ``accept``."""
    if selection:
        columns = _selected_columns(predictions, selection, objective, num_class)
        return _encode_selected(_selected_records(columns, predictions.shape[0]), selection, accept)
    if accept == CSV:
        return csv_lines(_as_matrix(predictions))
    if accept == JSON:
        return _json_default(predictions)
    if accept == JSONLINES:
        return _jsonlines_default(predictions)
    if accept == RECORDIO:
        return _recordio_default(predictions)
    raise ServingError(HTTPStatus.NOT_ACCEPTABLE, f"cannot answer in {accept}")
