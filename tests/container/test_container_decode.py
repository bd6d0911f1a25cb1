"""decode(): every content type, the vectorised CSV parser against the exact one, and fuzzing."""

from __future__ import annotations

import json
import math
from http import HTTPStatus

import numpy as np
import numpy.typing as npt
import pytest
from container_helpers import csv_of
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from xgbserve import decode as d
from xgbserve import recordio
from xgbserve.errors import ServingError

F = 64


def _error(body: bytes, content_type: str, num_features: int = F) -> ServingError:
    with pytest.raises(ServingError) as caught:
        d.decode(body, content_type, num_features)
    return caught.value


def test_csv_batch_decodes_to_the_rows(rows: npt.NDArray[np.float32]) -> None:
    out = d.decode(csv_of(rows[:500]), d.CSV, F)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, rows[:500])


def test_csv_single_record_without_trailing_newline(rows: npt.NDArray[np.float32]) -> None:
    body = csv_of(rows[:1]).rstrip(b"\n")
    np.testing.assert_array_equal(d.decode(body, d.CSV, F), rows[:1])


def test_csv_crlf_and_blank_lines_are_accepted(rows: npt.NDArray[np.float32]) -> None:
    body = csv_of(rows[:3]).replace(b"\n", b"\r\n\r\n")
    np.testing.assert_array_equal(d.decode(body, d.CSV, F), rows[:3])


def test_csv_empty_fields_are_missing_values() -> None:
    out = d.decode(b"1,,3\n,5,", d.CSV, 3)
    assert math.isnan(out[0, 1])
    assert math.isnan(out[1, 0])
    assert math.isnan(out[1, 2])
    assert out[0, 0] == 1
    assert out[1, 1] == 5


def test_csv_fields_padded_with_whitespace_read_as_their_numbers() -> None:
    out = d.decode(b" 1 ,\t2.5, -3e1 \n4, \t ,6\n", d.CSV, 3)
    np.testing.assert_array_equal(out[0], [1.0, 2.5, -30.0])
    assert out[1, 0] == 4
    assert math.isnan(out[1, 1])
    assert out[1, 2] == 6


def test_csv_with_wrong_feature_count_names_the_record() -> None:
    error = _error(b"1,2,3\n4,5\n", d.CSV, 3)
    assert error.status == HTTPStatus.BAD_REQUEST
    assert error.message == "record 2 has 2 features; the model expects 3"


def test_csv_with_text_names_record_and_feature() -> None:
    error = _error(b"1,2,3\n4,five,6\n", d.CSV, 3)
    assert error.status == HTTPStatus.BAD_REQUEST
    assert error.message == "record 2, feature 2: 'five' is not a number"


def test_csv_header_row_is_rejected_with_reason(rows: npt.NDArray[np.float32]) -> None:
    header = ",".join(f"pixel{i}" for i in range(F)).encode() + b"\n"
    error = _error(header + csv_of(rows[:100]), d.CSV)
    assert error.message == "record 1, feature 1: 'pixel0' is not a number"


def test_empty_body_is_400() -> None:
    for content_type in d.CONTENT_TYPES:
        error = _error(b"  \n", content_type)
        assert error.status == HTTPStatus.BAD_REQUEST
        assert "empty" in error.message


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("text/csv", d.CSV),
        ("text/csv; charset=utf-8", d.CSV),
        ("Text/CSV;Charset=UTF-8", d.CSV),
        ("text/x-libsvm", d.LIBSVM),
        ("application/jsonlines", d.JSONLINES),
        ("application/x-recordio-protobuf", d.RECORDIO),
    ],
)
def test_content_type_header_is_canonicalised(header: str, expected: str) -> None:
    assert d.content_type_of(header) == expected


@pytest.mark.parametrize("header", ["image/png", "", None, "text/csv; charset=utf-16"])
def test_unsupported_content_type_is_415(header: str | None) -> None:
    with pytest.raises(ServingError) as caught:
        d.content_type_of(header)
    assert caught.value.status == HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    assert "not supported" in caught.value.message


def test_vectorised_csv_matches_exact_parser_on_varied_numbers() -> None:
    rng = np.random.default_rng(7)
    values = (rng.standard_normal((300, 8)) * 10.0 ** rng.integers(-4, 6, (300, 8))).astype(np.float32)
    # Shortest float32 reprs, scientific and positional, signs, and integers.
    lines = []
    for row in values:
        cells = [
            np.format_float_positional(v) if i % 2 else np.format_float_scientific(v)
            for i, v in enumerate(row)
        ]
        cells[3] = "+" + cells[3].lstrip("+") if not cells[3].startswith("-") else cells[3]
        cells[5] = str(int(row[5]))
        lines.append(",".join(cells))
    body = "\n".join(lines).encode()
    fast = d._parse_csv_vectorised(body, 8)
    assert fast is not None, "plain decimal CSV should take the vectorised path"
    np.testing.assert_array_equal(fast, d._parse_csv_lines(body, 8))
    np.testing.assert_array_equal(fast[:, :5], values[:, :5])


def test_libsvm_indices_are_zero_based_and_absent_features_missing() -> None:
    out = d.decode(b"1 0:1.5 2:3\n0 1:-2\n", d.LIBSVM, 3)
    assert out[0, 0] == 1.5
    assert out[0, 2] == 3
    assert math.isnan(out[0, 1])
    assert out[1, 1] == -2
    assert math.isnan(out[1, 0])


def test_libsvm_without_label_column_is_accepted() -> None:
    np.testing.assert_array_equal(d.decode(b"0:1 1:2 2:3", d.LIBSVM, 3), [[1, 2, 3]])


def test_libsvm_index_out_of_range_is_400() -> None:
    error = _error(b"0 0:1 64:2\n", d.LIBSVM)
    assert error.message.startswith("record 1: feature index 64 is out of range")


def test_libsvm_malformed_pair_is_400() -> None:
    assert _error(b"0 0:1 x:y\n", d.LIBSVM).message == "record 1: 'x:y' is not index:value"


@pytest.mark.parametrize(
    "document",
    [
        [[1, 2, 3], [4, 5, 6]],
        {"instances": [[1, 2, 3], [4, 5, 6]]},
        {"instances": [{"features": [1, 2, 3]}, {"features": [4, 5, 6]}]},
    ],
)
def test_json_shapes_decode_to_the_same_rows(document: object) -> None:
    out = d.decode(json.dumps(document).encode(), d.JSON, 3)
    np.testing.assert_array_equal(out, [[1, 2, 3], [4, 5, 6]])


@pytest.mark.parametrize("document", [[1, 2, 3], {"features": [1, 2, 3]}])
def test_json_single_record_shapes(document: object) -> None:
    np.testing.assert_array_equal(d.decode(json.dumps(document).encode(), d.JSON, 3), [[1, 2, 3]])


def test_json_null_is_missing() -> None:
    out = d.decode(b"[[1, null, 3]]", d.JSON, 3)
    assert math.isnan(out[0, 1])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[[1, 2]]", "record 1 has 2 features; the model expects 3"),
        (b'[[1, 2, "x"]]', 'record 1, feature 3: "x" is not a number'),
        (b"[[1, 2, true]]", "record 1, feature 3: true is not a number"),
        (b"{", "the body is not valid JSON: Expecting property name enclosed in double quotes"),
        (b'{"rows": []}', "a JSON object must have an 'instances' list or a 'features' list"),
        (b'"text"', "the JSON body must be a list of records or an object with 'instances' or 'features'"),
        (b"[]", "the request holds no records"),
        (b"[[1, 2, " + b"9" * 400 + b"]]", "record 1, feature 3: the number is out of range"),
        (b"[[1, 2, " + b"9" * 5000 + b"]]", "the body holds a number too long to read"),
    ],
)
def test_json_errors_say_what_is_wrong(body: bytes, message: str) -> None:
    error = _error(body, d.JSON, 3)
    assert error.status == HTTPStatus.BAD_REQUEST
    assert error.message == message


def test_jsonlines_records_and_errors() -> None:
    out = d.decode(b'[1,2,3]\n{"features":[4,5,6]}\n', d.JSONLINES, 3)
    np.testing.assert_array_equal(out, [[1, 2, 3], [4, 5, 6]])
    assert _error(b"[1,2,3]\n[1,2\n", d.JSONLINES, 3).message.startswith("record 2 is not valid JSON")


def test_recordio_dense_records_decode(rows: npt.NDArray[np.float32]) -> None:
    body = recordio.write_dense_features(rows[:5])
    np.testing.assert_array_equal(d.decode(body, d.RECORDIO, F), rows[:5])


def test_recordio_with_wrong_width_is_400(rows: npt.NDArray[np.float32]) -> None:
    body = recordio.write_dense_features(rows[:2, :10])
    assert _error(body, d.RECORDIO).message == "record 1 has 10 features; the model expects 64"


def test_recordio_bad_magic_is_400() -> None:
    error = _error(b"\x00" * 16, d.RECORDIO)
    assert error.message.startswith("the body is not valid RecordIO-protobuf: record 1: bad RecordIO magic")


def _assert_clean_outcome(body: bytes, content_type: str, num_features: int) -> None:
    refused: ServingError | None = None
    try:
        out = d.decode(body, content_type, num_features)
    except ServingError as error:
        refused = error
    if refused is not None:
        assert 400 <= refused.status < 500
        assert refused.message
        assert "Traceback" not in refused.message
    else:
        assert out.shape[1] == num_features
        assert out.shape[0] >= 1


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(max_size=400), content_type=st.sampled_from(d.CONTENT_TYPES), width=st.integers(1, 5))
def test_fuzz_any_bytes_decode_or_give_a_4xx(body: bytes, content_type: str, width: int) -> None:
    _assert_clean_outcome(body, content_type, width)


_csv_alphabet = st.sampled_from(list(b"0123456789.,-+eE\n \tnai"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.lists(_csv_alphabet, min_size=1, max_size=300).map(bytes),
    width=st.integers(1, 4),
)
def test_fuzz_csv_like_bytes_agree_between_parsers(body: bytes, width: int) -> None:
    """Near-CSV bytes through the vectorised parser: it either declines or agrees exactly."""
    body = body.strip(b"\n")
    fast = d._parse_csv_vectorised(body, width)
    if fast is None:
        _assert_clean_outcome(body, d.CSV, width)
        return
    np.testing.assert_array_equal(fast, d._parse_csv_lines(body, width))


@settings(max_examples=150, deadline=None)
@given(
    values=st.lists(
        st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=3, max_size=3),
        min_size=1,
        max_size=20,
    )
)
def test_fuzz_both_csv_parsers_read_float32_reprs_exactly(values: list[list[float]]) -> None:
    matrix = np.array(values, dtype=np.float32)
    body = "\n".join(",".join(str(np.float32(v)) for v in row) for row in values).encode()
    np.testing.assert_array_equal(d._parse_csv_lines(body, 3), matrix)
    fast = d._parse_csv_vectorised(body, 3)
    if fast is not None:  # it declines over 15 significant digits or exponents past 10**22
        np.testing.assert_array_equal(fast, matrix)


@settings(max_examples=150, deadline=None)
@given(body=st.binary(max_size=200))
def test_fuzz_recordio_payload_after_valid_header(body: bytes) -> None:
    framed = recordio.frame([body])
    _assert_clean_outcome(framed, d.RECORDIO, 3)


def test_large_csv_is_parsed_in_row_aligned_pieces_with_the_same_result(
    rows: npt.NDArray[np.float32],
) -> None:
    body = csv_of(rows).replace(b",0.0,", b",,").strip(b"\n")  # some missing values too
    whole = d._parse_csv_lines(body, F)
    pieces = d._parse_csv_chunked(body, F, chunk_bytes=4096)
    assert pieces is not None
    np.testing.assert_array_equal(pieces, whole)
    assert np.isnan(whole).any()


def test_recordio_sparse_key_beyond_64_bits_is_400() -> None:
    # Float32Tensor{values: [1.0], keys: [2**69]} inside Value, map entry "values", Record.features.
    key = bytes([0xFF] * 9 + [0x40])
    tensor = b"\x0a\x04" + np.float32(1).tobytes() + b"\x12" + bytes([len(key)]) + key
    value = b"\x12" + bytes([len(tensor)]) + tensor
    entry = b"\x0a\x06values" + b"\x12" + bytes([len(value)]) + value
    record = b"\x0a" + bytes([len(entry)]) + entry
    error = _error(recordio.frame([record]), d.RECORDIO)
    assert error.status == HTTPStatus.BAD_REQUEST
    assert "varint larger than 64 bits" in error.message
