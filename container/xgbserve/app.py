"""The WSGI layer: ``create_app(model=None)`` wires decode -> predict -> encode to the SageMaker routes.

``/ping`` and the access log live in a small WSGI middleware in front of Flask, so a health
check costs a few microseconds of Python and never touches request parsing.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from . import decode as decoding
from . import encode as encoding
from .batching import CoalescingPredictor
from .errors import ServingError
from .model import Model
from .settings import XGBOOST_NTHREAD, Settings, xgboost_threads

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger(__name__)

MODEL_VERSION_HEADER = "X-Model-Version"
# SageMaker's InvokeEndpoint hands a caller no container header but Content-Type and this one (as
# CustomAttributes), so the version travels here too; the front door turns it back into
# X-Model-Version.
CUSTOM_ATTRIBUTES_HEADER = "X-Amzn-SageMaker-Custom-Attributes"


def custom_attributes_of(version: str) -> str:
    return f"model-version={version}"


_RECORDS_KEY = "xgbserve.records"


def _error_response(status: HTTPStatus, message: str, version: str) -> Response:
    body = json.dumps({"error": message, "status": int(status)})
    response = Response(body, status=int(status), mimetype="application/json")
    response.headers[MODEL_VERSION_HEADER] = version
    response.headers[CUSTOM_ATTRIBUTES_HEADER] = custom_attributes_of(version)
    return response


class ServingMiddleware:
    """Answers GET /ping directly and writes one JSON access-log line per request."""

    def __init__(self, app: WSGIApplication, version: str) -> None:
        self.app = app
        self.version = version
        self.pid = os.getpid()
        self._ping_headers = [("Content-Length", "0"), (MODEL_VERSION_HEADER, version)]

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        status_holder: list[str] = []

        def recording_start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
            status_holder.append(status)
            return start_response(status, headers, exc_info)

        path = environ.get("PATH_INFO", "")
        if path == "/ping" and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            # The model is loaded before a worker takes requests, so a live worker is healthy.
            recording_start_response("200 OK", list(self._ping_headers))
            body: Iterable[bytes] = [b""]
        else:
            body = self.app(environ, recording_start_response)
        self._log(environ, status_holder, started)
        return body

    def _log(self, environ: WSGIEnvironment, status: list[str], started: float) -> None:
        entry = {
            "ts": round(time.time(), 3),
            "method": environ.get("REQUEST_METHOD"),
            "path": environ.get("PATH_INFO"),
            "status": int(status[0].split(" ", 1)[0]) if status else 0,
            "latency_ms": round((time.perf_counter() - started) * 1000, 3),
            "records": environ.get(_RECORDS_KEY, 0),
            "bytes_in": int(environ.get("CONTENT_LENGTH") or 0),
            # Client-chosen strings, cut short so that a line stays one atomic write.
            "content_type": (environ.get("CONTENT_TYPE") or "")[:100] or None,
            "accept": (environ.get("HTTP_ACCEPT") or "")[:100] or None,
            "model_version": self.version,
            "pid": self.pid,
        }
        write_access_log(json.dumps(entry, separators=(",", ":")))


def write_access_log(line: str) -> None:
    """One access-log line to stdout in a single write(2).

    Not through ``logging``: a LogRecord, a formatter and a handler lock per request cost as much
    as parsing a one-record request. A single write of a line shorter than PIPE_BUF is never
    interleaved with another worker's or thread's line.
    """
    os.write(_STDOUT_FD, (line + "\n").encode())


_STDOUT_FD = 1


def _read_body(limit: int) -> bytes:
    """The request body, or 413 if it is over ``limit``; a declared length was checked before."""
    if request.content_length is not None:
        return request.get_data(cache=False)
    # Chunked upload (no Content-Length): Gunicorn ends wsgi.input after the last chunk. Read one
    # byte past the limit to tell "exactly at" from "over" without buffering more than that.
    # (Werkzeug's own limit would cut the body short silently, and the client would get a
    # misleading 400 about the record the cut fell in.)
    body = request.environ["wsgi.input"].read(limit + 1)
    if len(body) > limit:
        raise ServingError(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            f"the body is over the limit of {limit} bytes (6 MB): send fewer records per request",
        )
    return body


def configure_logging() -> None:
    """Application messages (model loaded, errors) as plain text lines on stderr."""
    root = logging.getLogger("xgbserve")
    if not root.handlers:
        plain = logging.StreamHandler(sys.stderr)
        plain.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(plain)
        root.setLevel(logging.INFO)


def create_app(model: Model | None = None, settings: Settings | None = None) -> Flask:
    """The Flask app. Without ``model`` it loads ``xgboost-model`` from the settings' model directory."""
    settings = settings or Settings.from_env()
    if model is None:
        configure_logging()
        cores = os.cpu_count() or 1
        nthread = int(os.environ.get(XGBOOST_NTHREAD, "0") or 0) or xgboost_threads(settings.workers, cores)
        model = Model.load(settings.model_dir, nthread=nthread)
    selection = settings.inference_output
    for warning in encoding.check_selection(selection, model.objective):
        log.warning(warning)

    app = Flask(__name__)
    version = model.version
    custom_attributes = custom_attributes_of(version)
    limit = settings.max_content_length
    default_accept = settings.default_accept
    # Parsing and encoding are CPU-bound Python and a worker has one GIL: more than one at a time
    # per worker only adds contention. Requests beyond that wait here without using CPU, so a
    # /ping (answered before Flask, on another thread) competes with one busy thread at most.
    cpu_gate = threading.BoundedSemaphore(settings.predict_concurrency)
    # Predictions of requests in flight together go to XGBoost in one call (see batching.py).
    predictor = CoalescingPredictor(model.predict)

    @app.post("/invocations")
    def invocations() -> Response:
        content_type = decoding.content_type_of(request.headers.get("Content-Type"))
        accept = encoding.choose_accept(request.headers.get("Accept"), default_accept)
        declared = request.content_length
        if declared is not None and declared > limit:
            raise ServingError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"the body is {declared} bytes; the limit is {limit} bytes (6 MB): "
                "send fewer records per request",
            )
        body = _read_body(limit)  # outside the gate: a slow upload holds no CPU slot
        with cpu_gate:
            matrix = decoding.decode(body, content_type, model.num_features)
        request.environ[_RECORDS_KEY] = matrix.shape[0]
        predictions = predictor.predict(matrix)  # XGBoost releases the GIL while it predicts
        with cpu_gate:
            payload = encoding.encode(
                predictions, accept, selection=selection, objective=model.objective, num_class=model.num_class
            )
        response = Response(payload, status=200, mimetype=accept)
        response.headers[MODEL_VERSION_HEADER] = version
        response.headers[CUSTOM_ATTRIBUTES_HEADER] = custom_attributes
        return response

    @app.get("/execution-parameters")
    def execution_parameters() -> Response:
        # SageMaker Batch Transform asks for this; real-time hosting never does.
        body = {
            "MaxConcurrentTransforms": settings.workers,
            "BatchStrategy": "MULTI_RECORD",
            "MaxPayloadInMB": max(1, limit // (1024 * 1024)),
        }
        response = Response(json.dumps(body), mimetype="application/json")
        response.headers[MODEL_VERSION_HEADER] = version
        return response

    @app.errorhandler(ServingError)
    def serving_error(error: ServingError) -> Response:
        return _error_response(error.status, error.message, version)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        status = HTTPStatus(error.code or 500)
        if status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE:
            message = f"the body is over the limit of {limit} bytes (6 MB): send fewer records per request"
        else:
            message = f"{status.phrase}: this server answers GET /ping and POST /invocations"
        return _error_response(status, message, version)

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception) -> Response:
        log.exception("unexpected error serving %s %s", request.method, request.path)
        return _error_response(HTTPStatus.INTERNAL_SERVER_ERROR, "internal server error", version)

    app.wsgi_app = ServingMiddleware(app.wsgi_app, version)  # type: ignore[method-assign]
    return app


def make_wsgi_app() -> Callable[..., Any]:
    """Gunicorn's entry point (``xgbserve.app:make_wsgi_app()``): one model per worker, post-fork."""
    return create_app()
