"""Every environment variable the server reads, named once, and the settings derived from them."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# Names of environment variables (SageMaker's where SageMaker defines one).
MODEL_DIR = "MODEL_DIR"
PORT = "PORT"
BIND_HOST = "BIND_HOST"
WORKERS = "SAGEMAKER_MODEL_SERVER_WORKERS"
TIMEOUT = "SAGEMAKER_MODEL_SERVER_TIMEOUT"
INFERENCE_OUTPUT = "SAGEMAKER_INFERENCE_OUTPUT"
DEFAULT_ACCEPT = "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"
MAX_CONTENT_LENGTH = "MAX_CONTENT_LENGTH"
# Ours, not SageMaker's: set by gunicorn.conf.py for the workers, and for benchmarking the choice.
XGBOOST_NTHREAD = "XGBOOST_NTHREAD"
WORKER_CLASS = "SERVER_WORKER_CLASS"
THREADS = "SERVER_THREADS"
PREDICT_CONCURRENCY = "SERVER_PREDICT_CONCURRENCY"
# Ours: what one request may cost, and how long the server waits for a client or a thread.
MAX_RECORDS = "SERVER_MAX_RECORDS"
MAX_MATRIX_BYTES = "SERVER_MAX_MATRIX_BYTES"
MAX_RESPONSE_BYTES = "SERVER_MAX_RESPONSE_BYTES"
REQUEST_DEADLINE = "SERVER_REQUEST_DEADLINE_SECONDS"
READ_TIMEOUT = "SERVER_READ_TIMEOUT_SECONDS"

DEFAULT_MODEL_DIR = "/opt/ml/model"
DEFAULT_PORT = 8080
DEFAULT_BIND_HOST = "0.0.0.0"
DEFAULT_TIMEOUT_SECONDS = 60  # InvokeEndpoint's own limit: a longer request is abandoned by SageMaker.
# InvokeEndpoint payloads are at most 6 MB; SageMaker's containers count that as 6 MiB.
DEFAULT_MAX_CONTENT_LENGTH = 6 * 1024 * 1024
MODEL_FILENAME = "xgboost-model"
# A 6 MB CSV of a 64-feature model holds at most about 49,000 records; a body of bare newlines
# or label-only libsvm lines would be millions. 100,000 records leaves every honest 6 MB batch
# of a model with a few features through and refuses the rest before a row is parsed.
DEFAULT_MAX_RECORDS = 100_000
# The decoded float32 matrix: 64 MiB is 262,144 records of 64 features.
DEFAULT_MAX_MATRIX_BYTES = 64 * 1024 * 1024
# The answer: InvokeEndpoint and the front door's Lambda both carry at most 6 MB.
DEFAULT_MAX_RESPONSE_BYTES = 6 * 1024 * 1024
# A request that has waited this long for a thread (or would, by the worker's recent pace) is
# answered 503 at once: the client can retry on another instance well within API Gateway's
# 29 s and the front door's 20 s read timeout, and the queue never grows past what the worker
# can clear in this time.
DEFAULT_REQUEST_DEADLINE_SECONDS = 2.0
# Time a client gets to send a request's headers, and then its body, once it has started one.
DEFAULT_READ_TIMEOUT_SECONDS = 10.0
DEFAULT_THREADS = 8


class ConfigurationError(ValueError):
    """An environment variable has a value the server cannot use; the message names it and the fix."""


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not an integer: set a positive whole number") from None
    if value < 1:
        raise ConfigurationError(f"{name}={value} must be at least 1")
    return value


def _positive_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a number: set a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise ConfigurationError(f"{name}={raw} must be a positive number of seconds")
    return value


@dataclass(frozen=True, kw_only=True)
class Settings:
    """What the server reads from its environment, validated."""

    model_dir: Path
    """Directory holding ``xgboost-model`` (SageMaker unpacks model.tar.gz into /opt/ml/model)."""
    port: int
    """TCP port to listen on (SageMaker: 8080)."""
    bind_host: str
    """Address to bind (0.0.0.0 in the image; 127.0.0.1 for local runs)."""
    workers: int
    """Gunicorn worker processes."""
    timeout: int
    """Seconds a request may take before Gunicorn restarts its worker."""
    max_content_length: int
    """Largest accepted request body in bytes."""
    default_accept: str
    """Response type when the request's Accept is absent or */*."""
    inference_output: tuple[str, ...]
    """Selected classification outputs (SAGEMAKER_INFERENCE_OUTPUT), empty for the default."""
    predict_concurrency: int = 1
    """Requests per worker parsing/predicting at once; the worker's other threads stay free for pings."""
    max_records: int = DEFAULT_MAX_RECORDS
    """Most records one request may hold (413 before parsing beyond it)."""
    max_matrix_bytes: int = DEFAULT_MAX_MATRIX_BYTES
    """Largest decoded float32 matrix one request may become (records x features x 4)."""
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    """Largest answer; a request whose answer could exceed it is refused (413) before predicting."""
    request_deadline: float = DEFAULT_REQUEST_DEADLINE_SECONDS
    """Seconds a request may wait for a worker thread before it is answered 503 (shed)."""
    read_timeout: float = DEFAULT_READ_TIMEOUT_SECONDS
    """Seconds a client gets to send a request's headers, then again its body (else 408)."""
    threads: int = DEFAULT_THREADS
    """Threads per worker that run the app (the worker's event loop reads and answers pings)."""

    @property
    def model_path(self) -> Path:
        return self.model_dir / MODEL_FILENAME

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, cpu_count: int | None = None) -> Settings:
        env = os.environ if env is None else env
        cores = cpu_count if cpu_count is not None else (os.cpu_count() or 1)
        output = env.get(INFERENCE_OUTPUT, "").replace(" ", "").lower()
        return cls(
            model_dir=Path(env.get(MODEL_DIR, "").strip() or DEFAULT_MODEL_DIR),
            port=_positive_int(env, PORT, DEFAULT_PORT),
            bind_host=env.get(BIND_HOST, "").strip() or DEFAULT_BIND_HOST,
            # Gunicorn's own guidance, which AWS's containers follow.
            workers=_positive_int(env, WORKERS, 2 * cores + 1),
            timeout=_positive_int(env, TIMEOUT, DEFAULT_TIMEOUT_SECONDS),
            max_content_length=_positive_int(env, MAX_CONTENT_LENGTH, DEFAULT_MAX_CONTENT_LENGTH),
            default_accept=env.get(DEFAULT_ACCEPT, "").strip().lower() or "text/csv",
            inference_output=tuple(key for key in output.split(",") if key),
            predict_concurrency=_positive_int(env, PREDICT_CONCURRENCY, 1),
            max_records=_positive_int(env, MAX_RECORDS, DEFAULT_MAX_RECORDS),
            max_matrix_bytes=_positive_int(env, MAX_MATRIX_BYTES, DEFAULT_MAX_MATRIX_BYTES),
            max_response_bytes=_positive_int(env, MAX_RESPONSE_BYTES, DEFAULT_MAX_RESPONSE_BYTES),
            request_deadline=_positive_float(env, REQUEST_DEADLINE, DEFAULT_REQUEST_DEADLINE_SECONDS),
            read_timeout=_positive_float(env, READ_TIMEOUT, DEFAULT_READ_TIMEOUT_SECONDS),
            threads=_positive_int(env, THREADS, DEFAULT_THREADS),
        )


def xgboost_threads(workers: int, cores: int) -> int:
    """Threads per worker for XGBoost so that all workers together do not oversubscribe the cores."""
    return max(1, cores // workers)


def limit_library_threads(workers: int, cores: int) -> int:
    """Set XGBoost's and OpenMP's threads per worker (unless the environment sets them) for this
    process and the workers it forks, and return XGBoost's.

    With 5 workers on 2 cores each worker predicts on one thread and the OS spreads the workers over
    the cores, instead of 5 OpenMP pools of 2 threads thrashing. OpenMP and numpy's OpenBLAS read
    the variables once, when they load: call this before the first import of numpy or XGBoost."""
    nthread = xgboost_threads(workers, cores)
    os.environ.setdefault(XGBOOST_NTHREAD, str(nthread))
    os.environ.setdefault("OMP_NUM_THREADS", os.environ[XGBOOST_NTHREAD])
    return nthread


def hide_scikit_learn() -> None:
    """Make the next ``import xgboost`` skip scikit-learn.

    XGBoost imports it when installed, for its sklearn-style estimators, which the server never
    uses: more than a second of CPU per start where a developer's environment has it (the image
    does not). Only for a server process, before its first import of XGBoost."""
    sys.modules.setdefault("sklearn", None)  # type: ignore[arg-type]
