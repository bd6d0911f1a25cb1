"""``make local``: the whole request path on this machine, no cloud account needed.

    curl -> local API Gateway (x-api-key, REST proxy event) -> lambda/handler.py (real code)
         -> boto3 sagemaker-runtime -> local SageMaker runtime stand-in -> container (Gunicorn)

Everything listens on 127.0.0.1. The container and the runtime stand-in take free ports; the
front door listens on ``PORT``. Ctrl-C or SIGTERM stops all of it, the container by its PID.

Settings (environment):
    MODEL_DIR              directory holding ``xgboost-model`` (default build/demo-model)
    PORT                   front door port (default 8080; 0 = any free port)
    LOCAL_API_KEY          the API key to require (default: a new random key each run)
    LOCAL_ENDPOINT_NAME    the endpoint name the handler is configured with (default xgboost-local)
    LOCAL_RUNTIME_PORT     runtime stand-in port (default 0 = any free port)
    LOCAL_CONTAINER_PORT   container port (default 0 = any free port)
    LOCAL_LOG_DIR          where the container's log goes (default build/local)
    SAGEMAKER_MODEL_SERVER_WORKERS, SAGEMAKER_MODEL_SERVER_TIMEOUT reach the container as in AWS.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from socketserver import BaseServer
from types import FrameType
from typing import TextIO

from tools.local_gateway import GatewayServer, load_handler_module
from tools.local_runtime import RuntimeServer, RuntimeSettings
from tools.serving import LOOPBACK, ContainerStartError, free_port, running_container

REPO_ROOT = Path(__file__).resolve().parent.parent
HANDLER_PATH = REPO_ROOT / "lambda" / "handler.py"
MODEL_FILENAME = "xgboost-model"
LOCAL_REGION = "us-east-1"
DEFAULT_PORT = 8080
DEFAULT_ENDPOINT_NAME = "xgboost-local"
# The digits row shown in the printed curl command, and the class it shows.
SAMPLE_ROW_INDEX = 0
WATCH_INTERVAL_SECONDS = 0.5


class LocalSettingsError(ValueError):
    """A setting of ``make local`` is wrong; the message names it and says what to do."""


@dataclass(frozen=True, kw_only=True)
class LocalSettings:
    """Everything ``make local`` reads from the environment, validated."""

    model_dir: Path
    """Directory holding ``xgboost-model``."""
    port: int
    """Front door port (0: any free port)."""
    api_key: str
    """The key the front door requires in ``x-api-key``."""
    endpoint_name: str
    """The SageMaker endpoint name the handler is configured with."""
    runtime_port: int
    """Runtime stand-in port (0: any free port)."""
    container_port: int
    """Container port (0: any free port)."""
    log_dir: Path
    """Where the container's log file goes."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> LocalSettings:
        model_dir = Path(environ.get("MODEL_DIR") or REPO_ROOT / "build" / "demo-model")
        if not (model_dir / MODEL_FILENAME).is_file():
            raise LocalSettingsError(
                f"MODEL_DIR={model_dir} has no {MODEL_FILENAME}: run `make demo-model` "
                f"(or `python -m tools.demo_model --out {model_dir}`), or point MODEL_DIR at a model"
            )
        api_key = environ.get("LOCAL_API_KEY") or secrets.token_urlsafe(24)
        if not api_key.isprintable() or " " in api_key:
            raise LocalSettingsError("LOCAL_API_KEY must be printable characters without spaces")
        return cls(
            model_dir=model_dir,
            port=_port(environ, "PORT", DEFAULT_PORT),
            api_key=api_key,
            endpoint_name=environ.get("LOCAL_ENDPOINT_NAME") or DEFAULT_ENDPOINT_NAME,
            runtime_port=_port(environ, "LOCAL_RUNTIME_PORT", 0),
            container_port=_port(environ, "LOCAL_CONTAINER_PORT", 0),
            log_dir=Path(environ.get("LOCAL_LOG_DIR") or REPO_ROOT / "build" / "local"),
        )


def _port(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise LocalSettingsError(f"{name}={raw!r} is not a port: use 0-65535 (0 = any free port)")
    return value


class ContainerExitedError(RuntimeError):
    """The container stopped on its own while ``make local`` was serving."""


class _Shutdown(BaseException):
    """Raised in the main thread by SIGINT or SIGTERM, so every `with` block unwinds.

    A BaseException, like KeyboardInterrupt: no `except Exception` on the way may swallow it.
    """


def _request_shutdown(signum: int, frame: FrameType | None) -> None:
    # Later signals are ignored: the unwinding is bounded (the container gets SIGKILL after a
    # grace period), and a second Ctrl-C must not leave it half done.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise _Shutdown(signal.Signals(signum).name)


@contextlib.contextmanager
def serving_in_thread(server: BaseServer) -> Iterator[None]:
    """Serve ``server`` from a daemon thread until the block ends, then close it."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def sample_csv_row() -> tuple[str, int]:
    """One digits image as a CSV row, and the digit it shows."""
    # Imported here: xgboost and scikit-learn load in about a second, needed only for the banner.
    from tools.demo_model import digits_labels, digits_rows  # noqa: PLC0415

    row = digits_rows()[SAMPLE_ROW_INDEX]
    return ",".join(f"{value:g}" for value in row), int(digits_labels()[SAMPLE_ROW_INDEX])


def curl_command(url: str, api_key: str, csv_row: str) -> str:
    """A shell command that sends ``csv_row`` to the local API."""
    return shlex.join(
        [
            "curl",
            "-sS",
            "-H",
            f"x-api-key: {api_key}",
            "-H",
            "Content-Type: text/csv",
            "--data-binary",
            csv_row,
            url,
        ]
    )


def handler_environment(runtime_url: str, endpoint_name: str) -> dict[str, str]:
    """What the Lambda runtime would give the handler, pointed at the local runtime stand-in."""
    return {
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": runtime_url,
        "SAGEMAKER_ENDPOINT_NAME": endpoint_name,
        "AWS_REGION": LOCAL_REGION,
        "AWS_DEFAULT_REGION": LOCAL_REGION,
        # Dummy keys: requests are signed (boto3 insists) but go only to 127.0.0.1, and real
        # credentials in the environment are never used to sign anything here.
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_SESSION_TOKEN": "local",
    }


def _port_taken(setting: str, port: int, error: OSError) -> LocalSettingsError:
    return LocalSettingsError(
        f"{setting}={port}: cannot listen on {LOOPBACK}:{port} ({error.strerror}); "
        f"choose another {setting} (0 = any free port)"
    )


def run(settings: LocalSettings, out: TextIO) -> None:
    """Start the container, the runtime stand-in and the front door; serve until a signal."""
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    container_log = settings.log_dir / "container.log"
    # Both listening sockets are bound before the container starts, so a port already in use
    # fails in a moment, not after a model load.
    container_port = settings.container_port or free_port()
    try:
        runtime = RuntimeServer(
            RuntimeSettings(
                container_url=f"http://{LOOPBACK}:{container_port}",
                endpoint_name=settings.endpoint_name,
                region=LOCAL_REGION,
            ),
            port=settings.runtime_port,
        )
    except OSError as error:
        raise _port_taken("LOCAL_RUNTIME_PORT", settings.runtime_port, error) from error
    with contextlib.ExitStack() as stack:
        stack.callback(runtime.server_close)
        for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_ENDPOINT_URL"):
            os.environ.pop(name, None)
        os.environ.update(handler_environment(runtime.url, settings.endpoint_name))
        # Loaded only now: its module-level client reads the endpoint URL when it is created.
        handler_module = load_handler_module(HANDLER_PATH)
        try:
            gateway = GatewayServer(handler_module.handler, settings.api_key, port=settings.port)
        except OSError as error:
            raise _port_taken("PORT", settings.port, error) from error
        stack.callback(gateway.server_close)
        csv_row, digit = sample_csv_row()
        container = stack.enter_context(
            running_container(settings.model_dir, port=container_port, log_path=container_log)
        )
        stack.enter_context(serving_in_thread(runtime))
        stack.enter_context(serving_in_thread(gateway))
        out.write(
            "Local API front door: API Gateway -> Lambda handler -> SageMaker runtime -> container\n"
            f"  URL:        {gateway.url}\n"
            f"  API key:    {settings.api_key}\n"
            f"  endpoint:   {settings.endpoint_name} (runtime stand-in {runtime.url})\n"
            f"  container:  {container.url} pid {container.pid} (Gunicorn master)\n"
            f"  model:      {settings.model_dir}\n"
            f"  logs:       handler lines below; container in {container_log}\n"
            f"Try it (a digits image of a {digit}; the answer is its 10 class probabilities):\n"
            f"  {curl_command(gateway.url, settings.api_key, csv_row)}\n"
            "Ctrl-C stops everything.\n"
        )
        out.flush()
        # The servers work in their threads; this one waits for a signal (_Shutdown is raised
        # here) and watches the container, so a crashed server ends the run instead of leaving
        # a front door that answers 503 to everything.
        while (code := container.process.poll()) is None:
            time.sleep(WATCH_INTERVAL_SECONDS)
        raise ContainerExitedError(
            f"the container exited with code {code} while serving; its log: {container_log}"
        )


def main() -> int:
    signal.signal(signal.SIGINT, _request_shutdown)
    signal.signal(signal.SIGTERM, _request_shutdown)
    try:
        run(LocalSettings.from_env(os.environ), sys.stdout)
    except LocalSettingsError as error:
        print(f"make local: {error}", file=sys.stderr)
        return 2
    except ContainerStartError as error:
        print(f"make local: the container did not start: {error}", file=sys.stderr)
        return 1
    except ContainerExitedError as error:
        print(f"make local: {error}", file=sys.stderr)
        return 1
    except _Shutdown as stop:
        print(f"Stopped ({stop}).", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
