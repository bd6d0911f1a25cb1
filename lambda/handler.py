"""The API front door: forwards an API Gateway request to the SageMaker endpoint and back.

API Gateway (REST v1 or HTTP API v2 proxy integration) -> this Lambda -> ``InvokeEndpoint``.
The body goes through unchanged with its ``Content-Type``, ``Accept`` and SageMaker custom
attributes; every failure becomes a clear status with a JSON body, never a stack trace.

Only the standard library and boto3 (what the Lambda Python runtime provides), so a cold start
imports nothing heavy. ``handler`` is a thin shell over :func:`handle`, which tests call with
their own client and environment.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    ParamValidationError,
    ReadTimeoutError,
)

ENDPOINT_NAME_ENV = "SAGEMAKER_ENDPOINT_NAME"
READ_TIMEOUT_ENV = "SAGEMAKER_READ_TIMEOUT_SECONDS"

# InvokeEndpoint's Body limit (6 MB = 6,291,456 bytes in the botocore API model).
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
# CustomAttributes: at most 1,024 visible ASCII characters (botocore API model).
MAX_CUSTOM_ATTRIBUTES_CHARS = 1024
# Longest container error message passed on to a client; the rest is in the endpoint's logs.
MAX_CLIENT_MESSAGE_CHARS = 2000

# The time budget. API Gateway gives up after 29 s; a Lambda still waiting then is paid for and
# its answer is lost, so the connect and read timeouts must fit under the function's own timeout
# (the stack's lambdaTimeoutSeconds), or the client gets API Gateway's bare 502 instead of this
# handler's 504. The program passes the read timeout it derived from that setting.
API_GATEWAY_TIMEOUT_SECONDS = 29.0
CONNECT_TIMEOUT_SECONDS = 2.0
DEFAULT_READ_TIMEOUT_SECONDS = 20.0


def _read_timeout_seconds() -> float:
    """The read timeout from the environment; a value that would break the budget is not used."""
    configured = os.environ.get(READ_TIMEOUT_ENV, "")
    try:
        seconds = float(configured)
    except ValueError:
        return DEFAULT_READ_TIMEOUT_SECONDS
    if seconds > 0 and CONNECT_TIMEOUT_SECONDS + seconds < API_GATEWAY_TIMEOUT_SECONDS:
        return seconds
    return DEFAULT_READ_TIMEOUT_SECONDS


READ_TIMEOUT_SECONDS = _read_timeout_seconds()
# One call, never retried here: botocore's standard mode would retry a read timeout, which runs
# the same inference again on an endpoint already too slow to answer. A throttled or unavailable
# endpoint answers 429/503 with Retry-After, and the client decides when to try again.
MAX_ATTEMPTS = 1
WORST_CASE_SECONDS = CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS

CLIENT_CONFIG = Config(
    connect_timeout=CONNECT_TIMEOUT_SECONDS,
    read_timeout=READ_TIMEOUT_SECONDS,
    # total_max_attempts counts the first try; botocore's "max_attempts" key counts only the
    # retries (max_attempts=1 is two calls), an easy way to break the budget unnoticed.
    retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
)
# One client per execution environment, created during the init phase and reused by every
# request (its connection pool too). AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME points it elsewhere.
SAGEMAKER_RUNTIME = boto3.client("sagemaker-runtime", config=CLIENT_CONFIG)

# For what an operator must see beyond the per-request line: upstream failures with their
# detail (which the client never gets) and the handler's own bugs with their trace.
_ERROR_LOGGER = logging.getLogger("frontdoor")

CUSTOM_ATTRIBUTES_HEADER = "X-Amzn-SageMaker-Custom-Attributes"
REQUEST_ID_HEADER = "X-Request-Id"
INVOKED_VARIANT_HEADER = "X-Invoked-Production-Variant"
MODEL_VERSION_HEADER = "X-Model-Version"

_THROTTLING_CODES = frozenset(
    {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}
)
_UNAVAILABLE_CODES = frozenset({"ServiceUnavailable", "ModelNotReadyException"})
# InvokeEndpoint answers ValidationError "Endpoint <name> of account <id> not found." when the
# endpoint does not exist or cannot take traffic: the service is unavailable, not the request bad.
_ENDPOINT_UNAVAILABLE = re.compile(r"\bendpoint\b.*\b(not found|not in service|not inservice)", re.I)
# Media types whose bodies go back to API Gateway as text; anything else is base64-encoded.
_TEXT_MEDIA_TYPES = frozenset(
    {"application/json", "application/jsonlines", "application/x-ndjson", "application/xml"}
)


class FrontDoorError(Exception):
    """A request that ends in an error response: its status, a code and a client-safe message."""

    def __init__(
        self,
        status: HTTPStatus | int,
        code: str,
        message: str,
        *,
        retry_after: int | None = None,
        log_code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = int(status)
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.log_code = log_code or code
        """What the log line records: the upstream's own error code where the client gets a generic one."""


@dataclass(frozen=True)
class ApiRequest:
    """What the front door needs from an API Gateway proxy event."""

    method: str
    headers: Mapping[str, str]
    """Header names lower-cased; repeated headers joined with ", "."""
    body: bytes
    request_id: str


@dataclass(frozen=True)
class ModelResponse:
    """A successful InvokeEndpoint answer."""

    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)


def request_id_of(event: Mapping[str, Any], context: Any) -> str:
    """API Gateway's request id (it is in the gateway's own logs too), else Lambda's, else new."""
    request_context = event.get("requestContext")
    if isinstance(request_context, Mapping):
        gateway_id = request_context.get("requestId")
        if isinstance(gateway_id, str) and gateway_id:
            return gateway_id
    lambda_id = getattr(context, "aws_request_id", None)
    if isinstance(lambda_id, str) and lambda_id:
        return lambda_id
    return str(uuid.uuid4())


def _lower_case_headers(event: Mapping[str, Any]) -> dict[str, str]:
    # REST (v1) events carry every value in multiValueHeaders and the last one in headers;
    # HTTP API (v2) events only have headers, already lower-case and comma-joined.
    headers: dict[str, str] = {}
    single = event.get("headers") or {}
    if isinstance(single, Mapping):
        for name, value in single.items():
            if isinstance(name, str) and isinstance(value, str):
                headers[name.lower()] = value
    multi = event.get("multiValueHeaders") or {}
    if isinstance(multi, Mapping):
        for name, values in multi.items():
            if isinstance(name, str) and isinstance(values, list) and values:
                headers[name.lower()] = ", ".join(str(value) for value in values)
    return headers


def parse_event(event: Mapping[str, Any], request_id: str) -> ApiRequest:
    """Read method, headers and body from a REST (v1) or HTTP API (v2) proxy event."""
    if event.get("version") == "2.0":
        request_context = event.get("requestContext")
        http = request_context.get("http") if isinstance(request_context, Mapping) else None
        method = http.get("method") if isinstance(http, Mapping) else None
    else:
        method = event.get("httpMethod")
    if not isinstance(method, str):
        raise FrontDoorError(
            HTTPStatus.BAD_REQUEST, "InvalidEvent", "The request is not an API Gateway proxy request."
        )
    raw_body = event.get("body")
    if raw_body is None:
        body = b""
    elif not isinstance(raw_body, str):
        raise FrontDoorError(HTTPStatus.BAD_REQUEST, "InvalidEvent", "The request body is not text.")
    elif event.get("isBase64Encoded"):
        try:
            body = base64.b64decode(raw_body, validate=True)
        except (binascii.Error, ValueError) as error:
            raise FrontDoorError(
                HTTPStatus.BAD_REQUEST, "InvalidBody", "The request body is marked base64 but is not."
            ) from error
    else:
        try:
            body = raw_body.encode("utf-8")
        except UnicodeEncodeError:
            # A JSON event can carry a lone surrogate (\ud800) that no UTF-8 byte sequence spells.
            raise FrontDoorError(
                HTTPStatus.BAD_REQUEST,
                "InvalidBody",
                "The request body is not valid Unicode text (it holds a lone surrogate): send UTF-8, "
                "or send binary payloads base64-encoded.",
            ) from None
    return ApiRequest(
        method=method.upper(), headers=_lower_case_headers(event), body=body, request_id=request_id
    )


# Headers passed on to InvokeEndpoint (and from there to the container's HTTP request).
FORWARDED_HEADERS = ("content-type", "accept", CUSTOM_ATTRIBUTES_HEADER.lower())
# Control characters, CR and LF above all: in a forwarded value they would end the header line
# and start another one (header injection); botocore refuses them with an error of its own.
# Lone surrogates too: no byte sequence spells them, so they cannot be sent at all.
_CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0a-\x1f\x7f\ud800-\udfff]")


def validate(request: ApiRequest) -> None:
    """Refuse what SageMaker would refuse, before spending a call on it."""
    for name in FORWARDED_HEADERS:
        value = request.headers.get(name)
        if value is not None and _CONTROL_CHARACTERS.search(value):
            raise FrontDoorError(
                HTTPStatus.BAD_REQUEST,
                "InvalidHeader",
                f"The {name} header holds a control character (such as CR or LF) or a lone surrogate: "
                "send a single-line text value.",
            )
    if request.method != "POST":
        raise FrontDoorError(HTTPStatus.METHOD_NOT_ALLOWED, "MethodNotAllowed", "Send the payload with POST.")
    if not request.body:
        raise FrontDoorError(
            HTTPStatus.BAD_REQUEST,
            "EmptyBody",
            "The request body is empty: send the records to predict "
            "(e.g. CSV rows with Content-Type text/csv).",
        )
    if len(request.body) > MAX_PAYLOAD_BYTES:
        raise FrontDoorError(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            "PayloadTooLarge",
            f"The request body is {len(request.body)} bytes; the endpoint accepts at most "
            f"{MAX_PAYLOAD_BYTES} bytes (6 MB). Split it into smaller batches.",
        )
    attributes = request.headers.get(CUSTOM_ATTRIBUTES_HEADER.lower())
    if attributes is not None and (len(attributes) > MAX_CUSTOM_ATTRIBUTES_CHARS or not attributes.isascii()):
        raise FrontDoorError(
            HTTPStatus.BAD_REQUEST,
            "InvalidCustomAttributes",
            f"{CUSTOM_ATTRIBUTES_HEADER} must be ASCII and at most {MAX_CUSTOM_ATTRIBUTES_CHARS} characters.",
        )


def _container_message(original: object, status: int) -> str:
    # The container answers errors as JSON with a message (CONTRACT.md); plain text is passed
    # as it is. Either way it was written for the client: it says which record and why.
    text = original if isinstance(original, str) else ""
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, Mapping):
        for key in ("message", "error"):
            value = parsed.get(key)
            if isinstance(value, str) and value:
                text = value
                break
    text = text.strip()
    if not text:
        return f"The model rejected the request ({status})."
    return text[:MAX_CLIENT_MESSAGE_CHARS]


# What the container asks an overloaded client to wait, when its 503 body does not say.
DEFAULT_OVERLOADED_RETRY_AFTER_SECONDS = 1


def _container_retry_after(original: object) -> int:
    """The ``retry_after`` seconds in the container's 503 JSON body (SageMaker hands the
    container's body over as OriginalMessage, but none of its headers)."""
    try:
        parsed = json.loads(original) if isinstance(original, str) else None
    except ValueError:
        parsed = None
    value = parsed.get("retry_after") if isinstance(parsed, Mapping) else None
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= 60:
        return value
    return DEFAULT_OVERLOADED_RETRY_AFTER_SECONDS


def _model_error(response: Mapping[str, Any]) -> FrontDoorError:
    # The container's own 4xx is the client's problem and keeps its status and message; its
    # 503 means the instance shed the request (overloaded, answered at once): the client may
    # retry after a pause. Any other 5xx (or no answer at all: OriginalStatusCode 0) is ours,
    # and its text stays in the logs. The labels differ: a dashboard counting ModelError counts
    # our failures only.
    original_status = response.get("OriginalStatusCode")
    if original_status == HTTPStatus.SERVICE_UNAVAILABLE:
        return FrontDoorError(
            HTTPStatus.SERVICE_UNAVAILABLE,
            "Overloaded",
            "The model is overloaded and did not take the request: retry after a pause.",
            retry_after=_container_retry_after(response.get("OriginalMessage")),
        )
    if isinstance(original_status, int) and 400 <= original_status < 500:
        return FrontDoorError(
            original_status,
            "ModelRejectedRequest",
            _container_message(response.get("OriginalMessage"), original_status),
            retry_after=1 if original_status == HTTPStatus.TOO_MANY_REQUESTS else None,
        )
    return FrontDoorError(HTTPStatus.BAD_GATEWAY, "ModelError", "The model failed to answer the request.")


def error_from_client_error(error: ClientError) -> FrontDoorError:
    """Map an InvokeEndpoint error to what the API client sees."""
    response: Mapping[str, Any] = error.response
    details: Mapping[str, Any] = response.get("Error", {})
    code = str(details.get("Code", "Unknown"))
    message = str(details.get("Message", ""))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code == "ModelError":
        return _model_error(response)
    if code in _THROTTLING_CODES or (
        status == HTTPStatus.TOO_MANY_REQUESTS and code not in _UNAVAILABLE_CODES
    ):
        return FrontDoorError(
            HTTPStatus.TOO_MANY_REQUESTS,
            "Throttled",
            "Too many requests: retry after a pause.",
            retry_after=1,
        )
    if code in _UNAVAILABLE_CODES:
        return FrontDoorError(
            HTTPStatus.SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "The model endpoint is temporarily unavailable: retry shortly.",
            retry_after=5,
        )
    if code == "ValidationError":
        if _ENDPOINT_UNAVAILABLE.search(message):
            # The message names the account: it goes to the log, not to the client.
            return FrontDoorError(
                HTTPStatus.SERVICE_UNAVAILABLE,
                "EndpointUnavailable",
                "The model endpoint is not available.",
            )
        return FrontDoorError(HTTPStatus.BAD_REQUEST, "ValidationError", message or "The request is invalid.")
    return FrontDoorError(
        HTTPStatus.BAD_GATEWAY,
        "BadGateway",
        "The model endpoint failed to answer the request.",
        log_code=code,
    )


def model_version_of(custom_attributes: str) -> str | None:
    """The ``model-version=<v>`` pair in the response's custom attributes, if the model sent one.

    SageMaker hands back no container header but ``Content-Type`` and the custom attributes, so
    a container's ``X-Model-Version`` reaches a client only if it is also written there.
    """
    for pair in re.split(r"[;,]", custom_attributes):
        name, separator, value = pair.partition("=")
        if separator and name.strip().lower() == "model-version" and value.strip():
            return value.strip()
    return None


def invoke(client: Any, endpoint_name: str, request: ApiRequest) -> ModelResponse:
    """Call InvokeEndpoint with the request's body and headers; raise FrontDoorError on failure."""
    params: dict[str, Any] = {
        "EndpointName": endpoint_name,
        "Body": request.body,
        # Data capture records carry the same id as the API's logs.
        "InferenceId": request.request_id[:64],
    }
    for header, param in (
        ("content-type", "ContentType"),
        ("accept", "Accept"),
        (CUSTOM_ATTRIBUTES_HEADER.lower(), "CustomAttributes"),
    ):
        value = request.headers.get(header)
        if value:
            params[param] = value
    try:
        answer = client.invoke_endpoint(**params)
    except ClientError as error:
        raise error_from_client_error(error) from error
    except (ReadTimeoutError, ConnectTimeoutError) as error:
        raise FrontDoorError(
            HTTPStatus.GATEWAY_TIMEOUT, "Timeout", "The model endpoint did not answer in time."
        ) from error
    except ParamValidationError as error:
        raise FrontDoorError(HTTPStatus.BAD_REQUEST, "ValidationError", "The request is invalid.") from error
    except BotoCoreError as error:
        raise FrontDoorError(
            HTTPStatus.BAD_GATEWAY,
            "BadGateway",
            "The model endpoint could not be reached.",
            log_code=type(error).__name__,
        ) from error
    headers: dict[str, str] = {}
    variant = answer.get("InvokedProductionVariant")
    if variant:
        headers[INVOKED_VARIANT_HEADER] = str(variant)
    attributes = answer.get("CustomAttributes")
    if attributes:
        headers[CUSTOM_ATTRIBUTES_HEADER] = str(attributes)
        version = model_version_of(str(attributes))
        if version:
            headers[MODEL_VERSION_HEADER] = version
    return ModelResponse(
        body=answer["Body"].read(),
        content_type=str(answer.get("ContentType") or "application/octet-stream"),
        headers=headers,
    )


def _is_text(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type.startswith("text/") or media_type in _TEXT_MEDIA_TYPES or media_type.endswith("+json")


def success_response(answer: ModelResponse, request_id: str) -> dict[str, Any]:
    """The proxy response for a model answer: text as it is, anything else base64."""
    headers = {"Content-Type": answer.content_type, REQUEST_ID_HEADER: request_id, **answer.headers}
    if _is_text(answer.content_type):
        try:
            text = answer.body.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            return {"statusCode": 200, "headers": headers, "body": text, "isBase64Encoded": False}
    return {
        "statusCode": 200,
        "headers": headers,
        "body": base64.b64encode(answer.body).decode("ascii"),
        "isBase64Encoded": True,
    }


def error_response(error: FrontDoorError, request_id: str) -> dict[str, Any]:
    """The proxy response for an error: JSON with the code, message and request id."""
    headers = {"Content-Type": "application/json", REQUEST_ID_HEADER: request_id}
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    if error.status == HTTPStatus.METHOD_NOT_ALLOWED:
        headers["Allow"] = "POST"
    body = {"error": error.code, "message": error.message, "requestId": request_id}
    return {
        "statusCode": error.status,
        "headers": headers,
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def log_line(
    *,
    request_id: str,
    endpoint: str | None,
    status: int,
    latency_ms: float,
    payload_bytes: int,
    response_bytes: int,
    error: str | None,
) -> str:
    """The one structured line written per request."""
    return json.dumps(
        {
            "requestId": request_id,
            "endpoint": endpoint,
            "status": status,
            "latencyMs": round(latency_ms, 2),
            "payloadBytes": payload_bytes,
            "responseBytes": response_bytes,
            "error": error,
        },
        separators=(",", ":"),
    )


def handle(event: object, context: Any, *, client: Any, environ: Mapping[str, str]) -> dict[str, Any]:
    """Serve one API Gateway proxy event: validate, invoke, map the answer; log one line."""
    started = time.perf_counter()
    request_id = request_id_of(event if isinstance(event, Mapping) else {}, context)
    endpoint_name = environ.get(ENDPOINT_NAME_ENV) or None
    payload_bytes = 0
    error_code: str | None = None
    try:
        if not isinstance(event, Mapping):
            # A JSON list, string or number: a test invocation or a misrouted trigger.
            raise FrontDoorError(
                HTTPStatus.BAD_REQUEST,
                "InvalidEvent",
                "The request is not an API Gateway proxy request (the event is not a JSON object).",
            )
        request = parse_event(event, request_id)
        payload_bytes = len(request.body)
        validate(request)
        if endpoint_name is None:
            # The deployment's fault, not the caller's and not the model's: 500, and the log
            # names the missing setting. The client learns only that the server is misconfigured.
            _ERROR_LOGGER.error("request %s: %s is not set on the function", request_id, ENDPOINT_NAME_ENV)
            raise FrontDoorError(
                HTTPStatus.INTERNAL_SERVER_ERROR, "ConfigurationError", "The API is not configured correctly."
            )
        response = success_response(invoke(client, endpoint_name, request), request_id)
    except FrontDoorError as error:
        error_code = error.log_code
        if error.__cause__ is not None and error.status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            _ERROR_LOGGER.warning("request %s: %s: %s", request_id, error.log_code, error.__cause__)
        response = error_response(error, request_id)
    except Exception:
        # A bug here must still answer the client (500, not the upstream's 502) without a trace.
        _ERROR_LOGGER.exception("request %s: unexpected error in the front door", request_id)
        error_code = "InternalError"
        response = error_response(
            FrontDoorError(HTTPStatus.INTERNAL_SERVER_ERROR, error_code, "Internal error."), request_id
        )
    # Printed, not sent through `logging`: the Lambda runtime prefixes logging records with level,
    # time and id, and CloudWatch Logs Insights discovers fields only in a line that is pure JSON.
    print(
        log_line(
            request_id=request_id,
            endpoint=endpoint_name,
            status=response["statusCode"],
            latency_ms=(time.perf_counter() - started) * 1000.0,
            payload_bytes=payload_bytes,
            response_bytes=len(response["body"]),
            error=error_code,
        ),
        flush=True,
    )
    return response


def handler(event: Any, context: Any) -> dict[str, Any]:
    """The Lambda entry point."""
    return handle(event, context, client=SAGEMAKER_RUNTIME, environ=os.environ)
