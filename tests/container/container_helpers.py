"""Helpers shared by the container tests (a plain module: pytest adds this directory to sys.path)."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt


def csv_of(matrix: npt.NDArray[np.float32]) -> bytes:
    """Rows as CSV the way a client writes them (shortest repr, one record a line)."""
    return "".join(",".join(repr(v) for v in row) + "\n" for row in matrix.tolist()).encode()


def parse_csv_response(body: bytes) -> npt.NDArray[np.float32]:
    return np.array(
        [[float(v) for v in line.split(",")] for line in body.decode().splitlines()], dtype=np.float32
    )


@dataclass(frozen=True)
class HttpResult:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    url: str,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> HttpResult:
    """One HTTP request with the standard library (no redirects, no retries, any status returned)."""
    parsed = urlsplit(url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return HttpResult(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()


def invoke(url: str, body: bytes, content_type: str, accept: str | None = None) -> HttpResult:
    headers = {"Content-Type": content_type}
    if accept is not None:
        headers["Accept"] = accept
    return request(url, "POST", "/invocations", body=body, headers=headers)
