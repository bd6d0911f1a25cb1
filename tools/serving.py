"""Run the serving container's Gunicorn as a local subprocess (tests, ``make local``, capacity tool).

``running_container(model_dir)`` starts ``container/serve`` with this interpreter on a free
127.0.0.1 port, polls ``GET /ping`` until it answers 200 (against a deadline, never a fixed
sleep), yields a :class:`RunningContainer`, and on exit sends SIGTERM to the server and waits,
with SIGKILL after a grace period.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SERVE_SCRIPT = REPO_ROOT / "container" / "serve"
LOOPBACK = "127.0.0.1"
# SageMaker allows a container 30 s after SIGTERM; the server is configured to finish well within.
STOP_GRACE_SECONDS = 30.0
_POLL_INTERVAL_SECONDS = 0.05


class ContainerStartError(RuntimeError):
    """The server exited, or did not answer /ping with 200, before the deadline."""


def free_port() -> int:
    """A TCP port the OS reports free on 127.0.0.1 (it may be taken again before use: rare)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningContainer:
    """A started server: where it listens, its master PID, and where its output goes."""

    url: str
    port: int
    pid: int
    log_path: Path
    process: subprocess.Popen[bytes]

    def worker_pids(self) -> set[int]:
        """PIDs of the Gunicorn workers (the master's children), from /proc (Linux)."""
        children = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        try:
            return {int(pid) for pid in children.read_text().split()}
        except OSError:
            return set()

    def logs(self) -> str:
        """Everything the server wrote to stdout and stderr so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> int:
        """SIGTERM the master, wait up to ``grace`` seconds, then SIGKILL. Returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()


def _ping_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=1.0) as response:  # noqa: S310
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _wait_ready(container: RunningContainer, ready_timeout: float, workers: int | None) -> None:
    """Until /ping is 200 and, when the worker count is known, every worker has been forked:
    a test that compares worker PIDs before and after a request must not see one still booting."""
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if container.process.poll() is not None:
            raise ContainerStartError(
                f"server exited with code {container.process.returncode} before it was ready; "
                f"its output:\n{container.logs()}"
            )
        if _ping_ok(container.url) and (workers is None or len(container.worker_pids()) >= workers):
            return
        time.sleep(_POLL_INTERVAL_SECONDS)
    raise ContainerStartError(
        f"server did not answer GET /ping with 200 (with {workers or 'its'} workers up) "
        f"within {ready_timeout:.0f} s; "
        f"its output:\n{container.logs()}"
    )


@contextlib.contextmanager
def running_container(
    model_dir: Path,
    *,
    port: int | None = None,
    workers: int | None = None,
    env: Mapping[str, str] | None = None,
    ready_timeout: float = 30.0,
    log_path: Path | None = None,
    preexec: Callable[[], None] | None = None,
) -> Iterator[RunningContainer]:
    """Start ``container/serve`` for ``model_dir`` on 127.0.0.1 and yield it once /ping is 200.

    ``env`` entries override the inherited environment (e.g. ``SAGEMAKER_MODEL_SERVER_TIMEOUT``);
    ``workers`` sets ``SAGEMAKER_MODEL_SERVER_WORKERS``. Output goes to ``log_path`` (default: a
    temporary file removed on exit). ``preexec`` runs in the child before the server starts
    (e.g. to join a CPU-limited cgroup, which the server's workers then inherit).
    """
    chosen_port = port if port is not None else free_port()
    child_env = dict(os.environ)
    child_env.update(
        {
            "MODEL_DIR": str(Path(model_dir).resolve()),
            "PORT": str(chosen_port),
            "BIND_HOST": LOOPBACK,
            "PYTHONUNBUFFERED": "1",
        }
    )
    if workers is not None:
        child_env["SAGEMAKER_MODEL_SERVER_WORKERS"] = str(workers)
    if env:
        child_env.update(env)
    expected_workers = child_env.get("SAGEMAKER_MODEL_SERVER_WORKERS")

    with contextlib.ExitStack() as stack:
        if log_path is None:
            tmp_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="serve-")))
            log_path = tmp_dir / "server.log"
        log_file = stack.enter_context(log_path.open("wb"))
        process = subprocess.Popen(
            [sys.executable, str(SERVE_SCRIPT)],
            env=child_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
            preexec_fn=preexec,  # noqa: PLW1509  (only a cgroup join; the server has not started)
        )
        container = RunningContainer(
            url=f"http://{LOOPBACK}:{chosen_port}",
            port=chosen_port,
            pid=process.pid,
            log_path=log_path,
            process=process,
        )
        try:
            _wait_ready(
                container,
                ready_timeout,
                int(expected_workers) if expected_workers and expected_workers.isdigit() else None,
            )
            yield container
        finally:
            container.stop()
