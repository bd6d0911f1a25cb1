"""The WSGI layer: ``create_app(model=None)`` wires decode -> predict -> encode to the SageMaker routes.

``/ping``, ``POST /invocations`` and the access log live in a small WSGI middleware in front of
Flask: a health check costs a few microseconds of Python and never touches request parsing, and
an invocation skips Flask's routing, request and response objects (about a third of a
one-record request's Python time). Flask answers everything else (404, 405, OPTIONS,
``/execution-parameters``) and shapes the responses the fast path copies: the same status lines,
headers and JSON error bodies either way.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.sansio.utils import get_content_length
from werkzeug.utils import get_content_type

from . import decode as decoding
from . import encode as encoding
from .batching import CoalescingPredictor
from .errors import ServingError, bad_request
from .model import Model
from .preflight import checked_model
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


def _error_body(status: HTTPStatus, message: str) -> bytes:
    return json.dumps({"error": message, "status": int(status)}).encode()


def _status_line(status: int) -> str:
    # Werkzeug's spelling ("400 BAD REQUEST"), so both paths send identical status lines.
    return f"{status} {HTTP_STATUS_CODES[status].upper()}"


def _too_large(limit: int) -> ServingError:
    return ServingError(
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        f"the body is over the limit of {limit} bytes (6 MB): send fewer records per request",
    )


def _http_error_message(status: HTTPStatus, limit: int) -> str:
    if status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE:
        return _too_large(limit).message
    return f"{status.phrase}: this server answers GET /ping and POST /invocations"


# What a handler hands the middleware: status, headers, body.
Answer = tuple[int, list[tuple[str, str]], bytes]


@dataclass(frozen=True)
class RecordLimit:
    """The most records one request may hold for one answer type, and which setting says so."""

    records: int
    why: str

    def check(self, count: int, unit: str) -> None:
        if count > self.records:
            raise ServingError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"the body holds {count:,} {unit}; {self.why}: send fewer records per request",
            )


def record_limits(settings: Settings, model: Model) -> dict[str, RecordLimit]:
    """Per answer type, the tightest of the record, decoded-matrix and answer-size limits."""
    by_records = RecordLimit(
        settings.max_records, f"at most {settings.max_records:,} records are taken per request"
    )
    matrix_rows = settings.max_matrix_bytes // (4 * max(1, model.num_features))
    by_matrix = RecordLimit(
        matrix_rows,
        f"at most {matrix_rows:,} records of {model.num_features} features "
        f"({settings.max_matrix_bytes:,} bytes decoded) are taken per request",
    )
    limits: dict[str, RecordLimit] = {}
    for accept in encoding.ACCEPT_TYPES:
        per_record = encoding.answer_bytes_per_record(
            accept, settings.inference_output, model.objective, model.num_class
        )
        answer_rows = settings.max_response_bytes // per_record
        by_answer = RecordLimit(
            answer_rows,
            f"at most {answer_rows:,} records are taken per request for an answer in {accept} "
            f"(at most {settings.max_response_bytes:,} bytes)",
        )
        limits[accept] = min((by_records, by_matrix, by_answer), key=lambda limit: limit.records)
    return limits


class Invocations:
    """``POST /invocations`` as a plain function of the WSGI environ: decode, predict, encode.

    Every failure becomes the JSON error answer Flask's handlers give (``ServingError`` with its
    status, a Werkzeug ``HTTPException`` from reading the body with its own, anything else a
    logged 500), so the middleware never lets an exception reach Gunicorn.
    """

    def __init__(self, model: Model, settings: Settings) -> None:
        self.model = model
        self.limit = settings.max_content_length
        self.default_accept = settings.default_accept
        self.selection = settings.inference_output
        self.max_response_bytes = settings.max_response_bytes
        self._record_limits = record_limits(settings, model)
        version = model.version
        self.version_headers = [
            (MODEL_VERSION_HEADER, version),
            (CUSTOM_ATTRIBUTES_HEADER, custom_attributes_of(version)),
        ]
        # Werkzeug's Content-Type for each answer type (it adds a charset to text/* types).
        self._content_types = {accept: get_content_type(accept, "utf-8") for accept in encoding.ACCEPT_TYPES}
        # Parsing and encoding are CPU-bound Python and a worker has one GIL: more than one at a
        # time per worker only adds contention. Requests beyond that wait here without using
        # CPU, so a /ping (answered on another thread) competes with one busy thread at most.
        self._cpu_gate = threading.BoundedSemaphore(settings.predict_concurrency)
        # Predictions of requests in flight together go to XGBoost in one call (see batching.py).
        self._predictor = CoalescingPredictor(model.predict)

    def __call__(self, environ: WSGIEnvironment) -> Answer:
        try:
            payload, accept = self._answer(environ)
        except ServingError as error:
            return self.error(error.status, error.message)
        except HTTPException as error:  # from reading the body (a client that disconnected early)
            status = HTTPStatus(error.code or 500)
            return self.error(status, _http_error_message(status, self.limit))
        except Exception:
            log.exception(
                "unexpected error serving %s %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")
            )
            return self.error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal server error")
        headers = [
            ("Content-Type", self._content_types[accept]),
            ("Content-Length", str(len(payload))),
            *self.version_headers,
        ]
        return 200, headers, payload

    def error(self, status: HTTPStatus, message: str) -> Answer:
        body = _error_body(status, message)
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            *self.version_headers,
        ]
        return int(status), headers, body

    def _answer(self, environ: WSGIEnvironment) -> tuple[bytes, str]:
        model = self.model
        content_type = decoding.content_type_of(environ.get("CONTENT_TYPE"))
        accept = encoding.choose_accept(environ.get("HTTP_ACCEPT"), self.default_accept)
        declared = get_content_length(environ.get("CONTENT_LENGTH"), environ.get("HTTP_TRANSFER_ENCODING"))
        if declared is not None and declared > self.limit:
            raise ServingError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"the body is {declared} bytes; the limit is {self.limit} bytes (6 MB): "
                "send fewer records per request",
            )
        body = _read_body(environ, declared, self.limit)  # outside the gate: a slow upload holds no CPU slot
        limit = self._record_limits[accept]
        with self._cpu_gate:
            matrix = decoding.decode(body, content_type, model.num_features, limit.check)
        environ[_RECORDS_KEY] = matrix.shape[0]
        predictions = self._predictor.predict(matrix)  # XGBoost releases the GIL while it predicts
        with self._cpu_gate:
            payload = encoding.encode(
                predictions,
                accept,
                selection=self.selection,
                objective=model.objective,
                num_class=model.num_class,
            )
        if len(payload) > self.max_response_bytes:  # the bound checked before predicting should hold
            raise ServingError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"the answer is {len(payload):,} bytes; the limit is {self.max_response_bytes:,}: "
                "send fewer records per request",
            )
        return payload, accept


class ServingMiddleware:
    """Answers GET /ping directly and writes one JSON access-log line per request."""

    def __init__(self, app: WSGIApplication, version: str, invocations: Invocations) -> None:
        self.app = app
        self.version = version
        self.invocations = invocations
        self.pid = os.getpid()
        self._ping_headers = [("Content-Length", "0"), (MODEL_VERSION_HEADER, version)]
        self._log_tail = f'"model_version":{_quote(version)},"pid":{self.pid}'
        self._status_lines = {int(status): _status_line(status) for status in HTTPStatus}

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD")
        if path == "/invocations" and method == "POST":
            status, headers, payload = self.invocations(environ)
            start_response(self._status_lines[status], headers)
            self._log(environ, status, started)
            return [payload]
        if path == "/ping" and method in ("GET", "HEAD"):
            # The model is loaded before a worker takes requests, so a live worker is healthy.
            start_response("200 OK", list(self._ping_headers))
            self._log(environ, 200, started)
            return [b""]
        status_holder: list[str] = []

        def recording_start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
            status_holder.append(status)
            return start_response(status, headers, exc_info)

        body = self.app(environ, recording_start_response)
        self._log(environ, int(status_holder[0].split(" ", 1)[0]) if status_holder else 0, started)
        return body

    def _log(self, environ: WSGIEnvironment, status: int, started: float) -> None:
        self.log_request(
            environ.get("REQUEST_METHOD") or "",
            environ.get("PATH_INFO") or "",
            status,
            started,
            content_type=environ.get("CONTENT_TYPE"),
            accept=environ.get("HTTP_ACCEPT"),
            records=environ.get(_RECORDS_KEY, 0),
            bytes_in=int(environ.get("CONTENT_LENGTH") or 0),
        )

    # What the worker (xgbserve.worker) uses to answer from its event loop, as the app would.

    @property
    def ping_headers(self) -> list[tuple[str, str]]:
        return list(self._ping_headers)

    @property
    def version_headers(self) -> list[tuple[str, str]]:
        return self.invocations.version_headers

    def log_request(
        self,
        method: str,
        path: str,
        status: int,
        started: float,
        *,
        content_type: str | None,
        accept: str | None,
        records: int = 0,
        bytes_in: int = 0,
        shed: bool = False,
    ) -> None:
        """One access-log line. ``shed``: answered 503 because the instance was overloaded (the
        ``shed`` field is what the log-based metric for alarms counts)."""
        # The line json.dumps(entry, separators=(",", ":")) would write, in a third of the time:
        # numbers as repr writes them (as json does), strings through json's own quoting.
        line = (
            f'{{"ts":{round(time.time(), 3)!r},"method":{_quote(method)},"path":{_quote(path)},'
            f'"status":{int(status)},"latency_ms":{round((time.perf_counter() - started) * 1000, 3)!r},'
            f'"records":{int(records)},"bytes_in":{int(bytes_in)},'
            # Client-chosen strings, cut short so that a line stays one atomic write.
            f'"content_type":{_quote_or_null(content_type)},"accept":{_quote_or_null(accept)},'
            f"{self._log_tail}"
        )
        write_access_log(line + ',"shed":true}' if shed else line + "}")

    def shed_answer(
        self, retry_after: int, wait: float, deadline: float
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        """503 for a request the instance cannot answer within ``deadline``: at once, with
        Retry-After, and a JSON body saying so (``retry_after`` in it reaches a client through
        SageMaker, which passes the body on but not the headers)."""
        message = (
            f"the instance is overloaded: this request would wait about {wait:.1f} s, over the "
            f"{deadline:g} s deadline; retry after {retry_after} s"
        )
        status, headers, body = self.invocations.error(HTTPStatus.SERVICE_UNAVAILABLE, message)
        body = json.dumps(
            {"error": message, "status": status, "overloaded": True, "retry_after": retry_after}
        ).encode()
        headers = [(k, str(len(body)) if k == "Content-Length" else v) for k, v in headers]
        headers.append(("Retry-After", str(retry_after)))
        return _status_line(status), headers, body


_quote: Callable[[str], str] = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]


def _quote_or_null(text: str | None) -> str:
    return _quote(text[:100]) if text else "null"


def write_access_log(line: str) -> None:
    """One access-log line to stdout in a single write(2).

    Not through ``logging``: a LogRecord, a formatter and a handler lock per request cost as much
    as parsing a one-record request. A single write of a line shorter than PIPE_BUF is never
    interleaved with another worker's or thread's line.
    """
    os.write(_STDOUT_FD, (line + "\n").encode())


_STDOUT_FD = 1


def _response(answer: Answer) -> Response:
    """A handler's answer as Flask's response: the same status, headers and body either way."""
    status, headers, payload = answer
    return Response(payload, status=status, headers=headers)


def _read_body(environ: WSGIEnvironment, declared: int | None, limit: int) -> bytes:
    """The request body, or 413 if it is over ``limit``; a declared length was checked before."""
    if declared is not None:
        # At most the declared length, as Werkzeug's stream would read it (without its wrapper,
        # a fifth of a one-record request's Python time). The server ends the input itself when
        # the client half-closes early, so a short body is checked here.
        stream = environ["wsgi.input"]
        body = _read_client(lambda: stream.read(declared))
        if len(body) < declared:
            raise bad_request(
                f"the body ended after {len(body):,} of the {declared:,} bytes its Content-Length "
                "announced: send the whole body"
            )
        return body
    # Chunked upload (no Content-Length): Gunicorn ends wsgi.input after the last chunk. Read one
    # byte past the limit to tell "exactly at" from "over" without buffering more than that.
    # (Werkzeug's own limit would cut the body short silently, and the client would get a
    # misleading 400 about the record the cut fell in.)
    stream = environ["wsgi.input"]
    body = _read_client(lambda: stream.read(limit + 1))
    if len(body) > limit:
        raise _too_large(limit)
    return body


def _read_client(read: Callable[[], bytes]) -> bytes:
    """Bytes from the client; a body the server cannot read (a broken chunked encoding, a
    connection cut mid-body) is the client's error, 400, not a 500 with a traceback."""
    try:
        return read()
    except HTTPException:
        raise
    except (OSError, ValueError, EOFError) as error:
        raise bad_request(f"the body could not be read: {_reason(error)}") from None
    except Exception as error:  # the server's HTTP parser (e.g. Gunicorn's InvalidChunkSize)
        if type(error).__module__.startswith("gunicorn."):
            raise bad_request(f"the body could not be read: {_reason(error)}") from None
        raise


def _reason(error: Exception) -> str:
    text = str(error).strip().splitlines()[0][:120] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


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
        checked = checked_model(settings.model_dir)
        if checked is None:
            model = Model.load(settings.model_dir, nthread=nthread)
        else:  # the master's check child loaded it already (xgbserve.preflight)
            model = checked.load(nthread)
            log.info("loaded the model the master checked: version %s", model.version)
    selection = settings.inference_output
    for warning in encoding.check_selection(selection, model.objective):
        log.warning(warning)

    app = Flask(__name__)
    version = model.version
    limit = settings.max_content_length
    invocations = Invocations(model, settings)

    # The middleware answers POST /invocations before Flask sees it; the route is here so that
    # Flask knows the path (405 with Allow for other methods, OPTIONS) and gives the same answer
    # to anything that calls the Flask app without the middleware.
    @app.post("/invocations")
    def invocations_route() -> Response:
        return _response(invocations(request.environ))

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

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        status = HTTPStatus(error.code or 500)
        return _response(invocations.error(status, _http_error_message(status, limit)))

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception) -> Response:
        log.exception("unexpected error serving %s %s", request.method, request.path)
        return _response(invocations.error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal server error"))

    middleware = ServingMiddleware(app.wsgi_app, version, invocations)
    app.wsgi_app = middleware  # type: ignore[method-assign]
    # The worker's event loop answers /ping and sheds load with these (xgbserve.worker).
    app.extensions["xgbserve"] = middleware
    return app


def make_wsgi_app() -> Callable[..., Any]:
    """Gunicorn's entry point (``xgbserve.app:make_wsgi_app()``): one model per worker, post-fork."""
    return create_app()
