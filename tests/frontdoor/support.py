"""Helpers for the front door tests: the Lambda handler loaded by path, API Gateway events.

``lambda`` is a Python keyword, so ``lambda/handler.py`` cannot be imported by name; it is
loaded from its path, as the Lambda runtime does. moto is imported first: its botocore hook is
installed for clients created afterwards, including the handler's module-level client.
"""

from __future__ import annotations

import base64
import importlib.util
import os
import struct
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

import moto  # noqa: F401  (imported for its side effect: see the module docstring)

REPO_ROOT = Path(__file__).resolve().parents[2]
HANDLER_PATH = REPO_ROOT / "lambda" / "handler.py"
ENDPOINT_NAME = "xgboost-test-endpoint"

# What the Lambda runtime provides; dummy keys are enough for moto, the Stubber and a local server.
LAMBDA_LIKE_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


def load_handler(module_name: str, extra_env: Mapping[str, str] | None = None) -> ModuleType:
    """A fresh copy of lambda/handler.py, its client built under the Lambda-like environment."""
    env = {**LAMBDA_LIKE_ENV, **(extra_env or {})}
    removed = ["AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"]
    spec = importlib.util.spec_from_file_location(module_name, HANDLER_PATH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the class body runs.
    sys.modules[module_name] = module
    with mock.patch.dict(os.environ, env):
        for name in removed:
            if name not in env:
                os.environ.pop(name, None)
        spec.loader.exec_module(module)
    return module


@dataclass
class FakeContext:
    """The part of the Lambda context object the handler reads."""

    aws_request_id: str = "lambda-request-id-0001"
    function_name: str = "frontdoor"


def rest_event(
    body: str | bytes | None,
    headers: Mapping[str, str] | None = None,
    *,
    method: str = "POST",
    request_id: str | None = None,
    base64_body: bool = False,
) -> dict[str, Any]:
    """An API Gateway REST (v1) proxy event, as the gateway builds it."""
    header_map = dict(headers or {})
    if isinstance(body, bytes):
        text_body: str | None = base64.b64encode(body).decode("ascii") if base64_body else body.decode()
    else:
        text_body = base64.b64encode(body.encode()).decode("ascii") if base64_body and body else body
    return {
        "resource": "/predict",
        "path": "/predict",
        "httpMethod": method,
        "headers": header_map or None,
        "multiValueHeaders": {name: [value] for name, value in header_map.items()} or None,
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/predict",
            "httpMethod": method,
            "path": "/prod/predict",
            "stage": "prod",
            "requestId": request_id or str(uuid.uuid4()),
            "identity": {"sourceIp": "203.0.113.7", "apiKey": "test-key"},
        },
        "body": text_body,
        "isBase64Encoded": base64_body,
    }


def http_api_event(
    body: str | None,
    headers: Mapping[str, str] | None = None,
    *,
    method: str = "POST",
    request_id: str | None = None,
    base64_body: bool = False,
) -> dict[str, Any]:
    """An API Gateway HTTP API (v2) proxy event: lower-case header names."""
    return {
        "version": "2.0",
        "routeKey": f"{method} /predict",
        "rawPath": "/predict",
        "rawQueryString": "",
        "headers": {name.lower(): value for name, value in (headers or {}).items()},
        "requestContext": {
            "http": {"method": method, "path": "/predict", "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7"},
            "requestId": request_id or str(uuid.uuid4()),
            "routeKey": f"{method} /predict",
            "stage": "$default",
        },
        "body": body,
        "isBase64Encoded": base64_body,
    }


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _length_delimited(field_number: int, payload: bytes) -> bytes:
    return _varint(field_number << 3 | 2) + _varint(len(payload)) + payload


def recordio_protobuf(rows: list[list[float]]) -> bytes:
    """Dense rows as SageMaker's RecordIO-protobuf, written from the format's definition.

    Independent of container/ on purpose: it checks the server against the format, not against
    its own encoder. Each record is a ``Record`` whose ``features["values"]`` is a Float32Tensor,
    framed by RecordIO (magic, length, data padded to 4 bytes).
    """
    magic = 0xCED7230A
    out = bytearray()
    for row in rows:
        tensor = _length_delimited(1, struct.pack(f"<{len(row)}f", *row))  # Float32Tensor.values
        value = _length_delimited(2, tensor)  # Value.float32_tensor
        entry = _length_delimited(1, b"values") + _length_delimited(2, value)  # map entry
        record = _length_delimited(1, entry)  # Record.features
        out += struct.pack("<II", magic, len(record)) + record + b"\0" * (-len(record) % 4)
    return bytes(out)
