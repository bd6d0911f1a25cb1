"""The front door Lambda handler in isolation: moto for the happy path, Stubber for each error."""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
import requests
from botocore.exceptions import (
    ConnectTimeoutError,
    EndpointConnectionError,
    ParamValidationError,
    ReadTimeoutError,
)
from botocore.response import StreamingBody
from botocore.stub import Stubber
from moto import mock_aws

from .support import ENDPOINT_NAME, FakeContext, http_api_event, rest_event

CSV_ROW = ",".join(["0"] * 64)
CSV_ANSWER = "0.01,0.02,0.03,0.04,0.5,0.1,0.1,0.1,0.05,0.05\n"


@pytest.fixture
def stub(handler_module: ModuleType) -> Iterator[Stubber]:
    """botocore's Stubber on the handler's own module-level client."""
    with Stubber(handler_module.SAGEMAKER_RUNTIME) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def invoke_answer(body: bytes, content_type: str = "text/csv", **extra: str) -> dict[str, Any]:
    # A streaming body, as the real client returns one.
    return {
        "Body": StreamingBody(io.BytesIO(body), len(body)),
        "ContentType": content_type,
        "InvokedProductionVariant": "AllTraffic",
        **extra,
    }


def call(handler_module: ModuleType, event: dict[str, Any]) -> dict[str, Any]:
    return handler_module.handler(event, FakeContext())


def error_body(response: dict[str, Any]) -> dict[str, Any]:
    assert response["headers"]["Content-Type"] == "application/json"
    return json.loads(response["body"])


def log_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


# --- the happy path ---------------------------------------------------------------------------


def test_csv_request_is_forwarded_with_its_headers_and_the_answer_passes_through(handler_module, stub):
    stub.add_response(
        "invoke_endpoint",
        invoke_answer(CSV_ANSWER.encode(), CustomAttributes="model-version=abc123"),
        expected_params={
            "EndpointName": ENDPOINT_NAME,
            "Body": CSV_ROW.encode(),
            "ContentType": "text/csv",
            "Accept": "application/json",
            "CustomAttributes": "trace=on",
            "InferenceId": "req-1",
        },
    )
    event = rest_event(
        CSV_ROW,
        {
            "Content-Type": "text/csv",
            "Accept": "application/json",
            "X-Amzn-SageMaker-Custom-Attributes": "trace=on",
        },
        request_id="req-1",
    )

    response = call(handler_module, event)

    assert response["statusCode"] == 200
    assert response["body"] == CSV_ANSWER
    assert response["isBase64Encoded"] is False
    assert response["headers"]["Content-Type"] == "text/csv"
    assert response["headers"]["X-Request-Id"] == "req-1"
    assert response["headers"]["X-Invoked-Production-Variant"] == "AllTraffic"
    assert response["headers"]["X-Amzn-SageMaker-Custom-Attributes"] == "model-version=abc123"
    assert response["headers"]["X-Model-Version"] == "abc123"


def test_http_api_v2_event_with_lower_case_headers_is_forwarded(handler_module, stub):
    stub.add_response(
        "invoke_endpoint",
        invoke_answer(b'{"predictions": []}', "application/json"),
        expected_params={
            "EndpointName": ENDPOINT_NAME,
            "Body": b'{"features": [1, 2]}',
            "ContentType": "application/json",
            "Accept": "application/json",
            "InferenceId": "v2-req",
        },
    )
    event = http_api_event(
        '{"features": [1, 2]}',
        {"content-type": "application/json", "accept": "application/json"},
        request_id="v2-req",
    )

    response = call(handler_module, event)

    assert response["statusCode"] == 200
    assert response["body"] == '{"predictions": []}'
    assert response["headers"]["X-Request-Id"] == "v2-req"


def test_header_names_are_case_insensitive_in_rest_events(handler_module, stub):
    stub.add_response(
        "invoke_endpoint",
        invoke_answer(CSV_ANSWER.encode()),
        expected_params={
            "EndpointName": ENDPOINT_NAME,
            "Body": CSV_ROW.encode(),
            "ContentType": "text/csv; charset=utf-8",
            "Accept": "text/csv",
            "CustomAttributes": "a=b",
            "InferenceId": "mixed-case",
        },
    )
    event = rest_event(CSV_ROW, request_id="mixed-case")
    event["headers"] = {"CONTENT-TYPE": "text/csv; charset=utf-8", "accept": "text/csv"}
    event["multiValueHeaders"] = {
        "CONTENT-TYPE": ["text/csv; charset=utf-8"],
        "accept": ["text/csv"],
        "x-amzn-sagemaker-custom-attributes": ["a=b"],
    }

    assert call(handler_module, event)["statusCode"] == 200


def test_base64_encoded_binary_body_is_decoded_before_it_is_sent(handler_module, stub):
    payload = bytes(range(256)) * 4
    stub.add_response(
        "invoke_endpoint",
        invoke_answer(CSV_ANSWER.encode()),
        expected_params={
            "EndpointName": ENDPOINT_NAME,
            "Body": payload,
            "ContentType": "application/x-recordio-protobuf",
            "InferenceId": "b64",
        },
    )
    event = rest_event(
        payload, {"Content-Type": "application/x-recordio-protobuf"}, base64_body=True, request_id="b64"
    )

    assert call(handler_module, event)["statusCode"] == 200


@pytest.mark.parametrize(
    ("attributes", "version"),
    [("trace=on; model-version=9f8e7d", "9f8e7d"), ("Model-Version = v2 , x=y", "v2"), ("trace=on", None)],
)
def test_model_version_is_read_from_the_answers_custom_attributes(handler_module, stub, attributes, version):
    stub.add_response("invoke_endpoint", invoke_answer(CSV_ANSWER.encode(), CustomAttributes=attributes))

    response = call(handler_module, rest_event(CSV_ROW, {"Content-Type": "text/csv"}))

    assert response["headers"].get("X-Model-Version") == version
    assert response["headers"]["X-Amzn-SageMaker-Custom-Attributes"] == attributes


def test_binary_answer_is_base64_encoded_for_api_gateway(handler_module, stub):
    answer = b"\xce\xd7\x23\x0a\x00\xff\x80"
    stub.add_response("invoke_endpoint", invoke_answer(answer, "application/x-recordio-protobuf"))

    response = call(handler_module, rest_event(CSV_ROW, {"Content-Type": "text/csv"}))

    assert response["statusCode"] == 200
    assert response["isBase64Encoded"] is True
    assert base64.b64decode(response["body"]) == answer
    assert response["headers"]["Content-Type"] == "application/x-recordio-protobuf"


def test_request_without_content_type_lets_the_container_choose(handler_module, stub):
    stub.add_response(
        "invoke_endpoint",
        invoke_answer(CSV_ANSWER.encode()),
        expected_params={"EndpointName": ENDPOINT_NAME, "Body": CSV_ROW.encode(), "InferenceId": "bare"},
    )

    assert call(handler_module, rest_event(CSV_ROW, request_id="bare"))["statusCode"] == 200


def test_canned_moto_answer_comes_back_unchanged(handler_module):
    with mock_aws():
        queued = {
            "results": [
                {
                    "Body": "0.9,0.1\n",
                    "ContentType": "text/csv",
                    "InvokedProductionVariant": "blue",
                    "CustomAttributes": "model-version=1f2e",
                }
            ]
        }
        requests.post(
            "http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results", json=queued, timeout=5
        ).raise_for_status()

        response = call(handler_module, rest_event(CSV_ROW, {"Content-Type": "text/csv"}))

    assert response["statusCode"] == 200
    assert response["body"] == "0.9,0.1\n"
    assert response["headers"]["X-Invoked-Production-Variant"] == "blue"
    assert response["headers"]["X-Amzn-SageMaker-Custom-Attributes"] == "model-version=1f2e"


# --- refused before any call ------------------------------------------------------------------


def test_body_over_six_megabytes_is_413_before_any_call(handler_module, stub, invoke_calls):
    body = "1," * (3 * 1024 * 1024 + 1)

    response = call(handler_module, rest_event(body, {"Content-Type": "text/csv"}))

    assert response["statusCode"] == 413
    assert "at most 6291456 bytes" in error_body(response)["message"]
    assert invoke_calls == []


def test_body_of_exactly_six_megabytes_is_sent(handler_module, stub, invoke_calls):
    body = "1" * (6 * 1024 * 1024)
    stub.add_response("invoke_endpoint", invoke_answer(CSV_ANSWER.encode()))

    response = call(handler_module, rest_event(body, {"Content-Type": "text/csv"}))

    assert response["statusCode"] == 200
    assert len(invoke_calls) == 1


@pytest.mark.parametrize("body", [None, ""])
def test_empty_body_is_400_before_any_call(handler_module, stub, invoke_calls, body):
    response = call(handler_module, rest_event(body, {"Content-Type": "text/csv"}))

    assert response["statusCode"] == 400
    assert error_body(response)["error"] == "EmptyBody"
    assert invoke_calls == []


def test_body_marked_base64_that_is_not_is_400(handler_module, stub, invoke_calls):
    event = rest_event("not base64 at all!", {"Content-Type": "text/csv"})
    event["isBase64Encoded"] = True

    response = call(handler_module, event)

    assert response["statusCode"] == 400
    assert "base64" in error_body(response)["message"]
    assert invoke_calls == []


def test_get_is_405_with_allow_header(handler_module, stub, invoke_calls):
    response = call(handler_module, http_api_event(None, method="GET"))

    assert response["statusCode"] == 405
    assert response["headers"]["Allow"] == "POST"
    assert invoke_calls == []


def test_custom_attributes_over_1024_characters_is_400(handler_module, stub, invoke_calls):
    headers = {"Content-Type": "text/csv", "X-Amzn-SageMaker-Custom-Attributes": "a" * 1025}

    response = call(handler_module, rest_event(CSV_ROW, headers))

    assert response["statusCode"] == 400
    assert "X-Amzn-SageMaker-Custom-Attributes" in error_body(response)["message"]
    assert invoke_calls == []


def test_event_that_is_not_from_api_gateway_is_400(handler_module, stub, invoke_calls):
    response = call(handler_module, {"body": CSV_ROW})

    assert response["statusCode"] == 400
    assert error_body(response)["error"] == "InvalidEvent"
    assert invoke_calls == []


def test_missing_endpoint_name_is_500_with_a_generic_message_and_a_log_naming_the_setting(
    handler_module, stub, invoke_calls, monkeypatch, caplog
):
    monkeypatch.delenv("SAGEMAKER_ENDPOINT_NAME")

    with caplog.at_level(logging.ERROR, logger="frontdoor"):
        response = call(handler_module, rest_event(CSV_ROW, {"Content-Type": "text/csv"}))

    assert response["statusCode"] == 500
    assert error_body(response)["message"] == "The API is not configured correctly."
    assert "SAGEMAKER_ENDPOINT_NAME" in caplog.text
    assert invoke_calls == []


# --- SageMaker's errors, mapped ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("original_status", "original_message", "client_message"),
    [
        (
            400,
            '{"error": "record 2 has 3 features; the model expects 64"}',
            "record 2 has 3 features; the model expects 64",
        ),
        (415, '{"message": "unsupported content type text/plain"}', "unsupported content type text/plain"),
        (406, "unsupported accept type image/png", "unsupported accept type image/png"),
    ],
)
def test_container_4xx_keeps_its_status_and_message(
    handler_module, stub, original_status, original_message, client_message
):
    stub.add_client_error(
        "invoke_endpoint",
        service_error_code="ModelError",
        service_message=f"Received client error ({original_status}) from primary with message ...",
        http_status_code=424,
        modeled_fields={
            "OriginalStatusCode": original_status,
            "OriginalMessage": original_message,
            "LogStreamArn": "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/x",
        },
    )

    response = call(handler_module, rest_event(CSV_ROW, {"Content-Type": "text/csv"}, request_id="r-4xx"))

    assert response["statusCode"] == original_status
    assert error_body(response) == {
        "error": "ModelRejectedRequest",
        "message": client_message,
        "requestId": "r-4xx",
    }


def test_container_5xx_is_502_without_the_containers_text(handler_module, stub):
    stub.add_client_error(
        "invoke_endpoint",
        service_error_code="ModelError",
        service_message="Received server error (500) from primary with message Traceback (most recent...",
        http_status_code=424,
        modeled_fields={
            "OriginalStatusCode": 500,
            "OriginalMessage": "Traceback (most recent call last): ...",
        },
    )

    response = call(handler_module, rest_event(CSV_ROW, {"Content-Type": "text/csv"}))

    assert response["statusCode"] == 502
    assert "Traceback" not in response["body"]
    assert error_body(response)["message"] == "The model failed to answer the request."
    assert error_body(response)["error"] == "ModelError"


def test_sagemaker_validation_error_is_400_with_its_message(handler_module, stub):
    stub.add_client_error(
        "invoke_endpoint",
        service_error_code="ValidationError",
        service_message="1 validation error detected: Value at 'contentType' failed to satisfy constraint",
        http_status_code=400,
    )

    response = call(handler_module, rest_event(CSV_ROW, {"Content-Type": "text/csv"}))

    assert response["statusCode"] == 400
    assert "contentType" in error_body(response)["message"]


def test_endpoint_not_found_is_503_and_does_not_reveal_the_account(handler_module, stub):
    stub.add_client_error(
        "invoke_endpoint",
        service_error_code="ValidationError",
        service_message=f"Endpoint {ENDPOINT_NAME} of account 123456789012 not found.",
        http_status_code=400,
    )

    response = call(handler_module, rest_event(CSV_ROW, {"Content-Type": "text/csv"}))

    assert response["statusCode"] == 503
    assert "123456789012" not in response["body"]
    assert error_body(response)["error"] == "EndpointUnavailable"


def test_throttling_is_429_with_retry_after(handler_module, stub):
    stub.add_client_error(
        "invoke_endpoint",
        service_error_code="ThrottlingException",
        service_message="Rate exceeded",
        http_status_code=400,
    )

    response = call(handler_module, rest_event(CSV_ROW, {"Content-Type": "text/csv"}))

    assert response["statusCode"] == 429
    assert int(response["headers"]["Retry-After"]) >= 1


@pytest.mark.parametrize(("code", "status"), [("ServiceUnavailable", 503), ("ModelNotReadyException", 429)])
def test_unavailable_endpoint_is_503_with_retry_after(handler_module, stub, code, status):
    stub.add_client_error(
        "invoke_endpoint", service_error_code=code, service_message="try later", http_status_code=status
    )

    response = call(handler_module, rest_event(CSV_ROW, {"Content-Type": "text/csv"}))

    assert response["statusCode"] == 503
    assert "Retry-After" in response["headers"]


@pytest.mark.parametrize(
    ("code", "status"),
    [("InternalFailure", 500), ("InternalDependencyException", 530), ("SomethingNew", 418)],
)
def test_other_sagemaker_errors_are_502_and_only_the_log_names_them(
    handler_module, stub, capsys, code, status
):
    stub.add_client_error(
        "invoke_endpoint", service_error_code=code, service_message="boom", http_status_code=status
    )

    response = call(handler_module, rest_event(CSV_ROW, {"Content-Type": "text/csv"}))

    assert response["statusCode"] == 502
    assert error_body(response)["error"] == "BadGateway"
    assert "boom" not in response["body"]
    assert code not in response["body"]
    [line] = log_lines(capsys)
    assert line["error"] == code


@pytest.mark.parametrize(
    "error",
    [
        ReadTimeoutError(endpoint_url="https://runtime.sagemaker.us-east-1.amazonaws.com"),
        ConnectTimeoutError(endpoint_url="https://runtime.sagemaker.us-east-1.amazonaws.com"),
    ],
)
def test_timeout_is_504(handler_module, monkeypatch, error):
    def time_out(**_: Any) -> None:
        raise error

    monkeypatch.setattr(handler_module.SAGEMAKER_RUNTIME, "invoke_endpoint", time_out)

    response = call(handler_module, rest_event(CSV_ROW, {"Content-Type": "text/csv"}))

    assert response["statusCode"] == 504
    assert error_body(response)["error"] == "Timeout"


def test_parameters_botocore_refuses_are_400(handler_module, monkeypatch):
    def refuse(**_: Any) -> None:
        raise ParamValidationError(report="Invalid type for parameter Accept")

    monkeypatch.setattr(handler_module.SAGEMAKER_RUNTIME, "invoke_endpoint", refuse)

    response = call(handler_module, rest_event(CSV_ROW, {"Content-Type": "text/csv"}))

    assert response["statusCode"] == 400
    assert error_body(response)["error"] == "ValidationError"


def test_http_api_event_without_request_context_is_400(handler_module, stub, invoke_calls):
    event = http_api_event(CSV_ROW, {"content-type": "text/csv"})
    event["requestContext"] = None

    response = call(handler_module, event)

    assert response["statusCode"] == 400
    assert invoke_calls == []


def test_base64_body_in_http_api_event_is_decoded(handler_module, stub):
    payload = b"\x00\x01binary\xff"
    stub.add_response(
        "invoke_endpoint",
        invoke_answer(CSV_ANSWER.encode()),
        expected_params={
            "EndpointName": ENDPOINT_NAME,
            "Body": payload,
            "ContentType": "application/octet-stream",
            "InferenceId": "v2-b64",
        },
    )
    event = http_api_event(
        base64.b64encode(payload).decode(),
        {"content-type": "application/octet-stream"},
        base64_body=True,
        request_id="v2-b64",
    )

    assert call(handler_module, event)["statusCode"] == 200


def test_unreachable_runtime_is_502(handler_module, monkeypatch, capsys):
    def unreachable(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://runtime.sagemaker.us-east-1.amazonaws.com")

    monkeypatch.setattr(handler_module.SAGEMAKER_RUNTIME, "invoke_endpoint", unreachable)

    response = call(handler_module, rest_event(CSV_ROW, {"Content-Type": "text/csv"}))

    assert response["statusCode"] == 502
    assert error_body(response)["error"] == "BadGateway"
    assert log_lines(capsys)[0]["error"] == "EndpointConnectionError"


def test_bug_in_the_front_door_is_500_without_a_stack_trace(handler_module, monkeypatch, caplog):
    def broken(**_: Any) -> None:
        raise KeyError("secret internal detail")

    monkeypatch.setattr(handler_module.SAGEMAKER_RUNTIME, "invoke_endpoint", broken)

    with caplog.at_level(logging.ERROR, logger="frontdoor"):
        response = call(handler_module, rest_event(CSV_ROW, {"Content-Type": "text/csv"}))

    assert response["statusCode"] == 500
    assert "secret internal detail" not in response["body"]
    assert "Traceback" not in response["body"]
    assert "secret internal detail" in caplog.text


# --- request id and the log line --------------------------------------------------------------


def test_error_carries_the_request_id_in_header_body_and_log(handler_module, stub, capsys):
    response = call(handler_module, rest_event("", {"Content-Type": "text/csv"}, request_id="rid-42"))

    assert response["headers"]["X-Request-Id"] == "rid-42"
    assert error_body(response)["requestId"] == "rid-42"
    [line] = log_lines(capsys)
    assert line["requestId"] == "rid-42"
    assert line["error"] == "EmptyBody"


def test_request_id_falls_back_to_the_lambda_request_id(handler_module, stub):
    event = rest_event("", {"Content-Type": "text/csv"})
    del event["requestContext"]

    response = call(handler_module, event)

    assert response["headers"]["X-Request-Id"] == FakeContext().aws_request_id


def test_one_structured_log_line_per_request(handler_module, stub, capsys):
    stub.add_response("invoke_endpoint", invoke_answer(CSV_ANSWER.encode()))

    call(handler_module, rest_event(CSV_ROW, {"Content-Type": "text/csv"}, request_id="logged"))

    [line] = log_lines(capsys)
    assert line["requestId"] == "logged"
    assert line["endpoint"] == ENDPOINT_NAME
    assert line["status"] == 200
    assert line["payloadBytes"] == len(CSV_ROW)
    assert line["responseBytes"] == len(CSV_ANSWER)
    assert line["error"] is None
    assert line["latencyMs"] >= 0


# --- the time budget --------------------------------------------------------------------------


def test_one_call_without_retries_fits_under_the_lambda_and_api_gateway_timeouts(handler_module):
    config = handler_module.SAGEMAKER_RUNTIME.meta.config
    # A retried read timeout would run the same inference twice on an endpoint already too slow.
    assert config.retries == {"mode": "standard", "total_max_attempts": 1}
    worst = config.connect_timeout + config.read_timeout
    assert worst == handler_module.WORST_CASE_SECONDS
    assert worst < 29  # API Gateway's integration timeout
    assert worst <= 25 - 3  # the stack's default lambdaTimeoutSeconds, less what the handler keeps


@pytest.mark.parametrize(
    ("configured", "expected"),
    [("22", 22.0), ("5.5", 5.5), ("", 20.0), ("soon", 20.0), ("0", 20.0), ("27", 20.0)],
)
def test_read_timeout_comes_from_the_environment_within_the_budget(
    handler_module, monkeypatch, configured, expected
):
    monkeypatch.setenv(handler_module.READ_TIMEOUT_ENV, configured)
    assert handler_module._read_timeout_seconds() == expected
