"""Load and check the model once, in a child process, before Gunicorn forks any worker.

A corrupt model file can do worse than raise: bit flips in a pickled Booster's bytes made
XGBoost's C++ parser allocate gigabytes and then segfault, and a worker that dies at boot is
respawned by Gunicorn's master every few seconds for ever, an endpoint that never becomes healthy
and never says why. So the master forks one child (the libraries are already imported, so the
fork costs milliseconds) which loads the model with its address space capped and runs the
load-time probe prediction; the master waits for it and, if it failed in any way (an error, a
signal, a hang), stops with the reason and a non-zero exit code before any worker exists.
"""

from __future__ import annotations

import os
import resource
import select
import signal
import time
from pathlib import Path

from .model import Model, ModelLoadError

# Address space the child may add to what the imported libraries already reserve: generous for
# any honest model (they take a few times their file size once loaded), small enough that a
# corrupt one fails with std::bad_alloc (a clean error) long before it threatens the instance.
_EXTRA_ADDRESS_SPACE_BYTES = 2 * 1024 * 1024 * 1024
_ADDRESS_SPACE_PER_MODEL_BYTE = 64
_MESSAGE_LIMIT_BYTES = 4000


class ModelCheckError(RuntimeError):
    """The model did not load in the check child; the message says why."""


def _virtual_memory_bytes() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _child(model_dir: Path, nthread: int, writer: int) -> None:
    """Runs in the forked child: never returns."""
    code = 1
    try:
        path = model_dir / "xgboost-model"
        size = path.stat().st_size if path.exists() else 0
        current = _virtual_memory_bytes()
        if current:
            cap = current + _EXTRA_ADDRESS_SPACE_BYTES + _ADDRESS_SPACE_PER_MODEL_BYTE * size
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash is reported, not dumped
        Model.load(model_dir, nthread=nthread)
        message = b""
        code = 0
    except ModelLoadError as error:
        message = str(error).encode(errors="replace")
    except MemoryError:
        message = b"the model needs more memory than a model file of its size can: the file is corrupt"
    except BaseException as error:
        message = f"{type(error).__name__}: {error}".encode(errors="replace")
    try:
        os.write(writer, message[:_MESSAGE_LIMIT_BYTES])
    finally:
        os._exit(code)


def check_model(model_dir: Path, *, nthread: int = 1, timeout: float = 120.0) -> None:
    """Load ``model_dir/xgboost-model`` in a forked child; raise ModelCheckError with the reason."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover  (the child; its outcome is what the parent reports)
        os.close(reader)
        _child(model_dir, nthread, writer)
    os.close(writer)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                raise ModelCheckError(
                    f"loading {model_dir / 'xgboost-model'} took over {timeout:.0f} s: the file is corrupt "
                    "or far larger than this instance can serve"
                )
            ready, _, _ = select.select([reader], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(reader, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(reader)
    _, status = os.waitpid(pid, 0)
    message = b"".join(chunks).decode(errors="replace").strip()
    if os.WIFSIGNALED(status):
        name = signal.Signals(os.WTERMSIG(status)).name
        raise ModelCheckError(
            f"loading {model_dir / 'xgboost-model'} crashed the loader ({name}): the model file is corrupt; "
            "write it again (Booster.save_model, or pickle a Booster that loads)"
        )
    if os.WEXITSTATUS(status) != 0:
        raise ModelCheckError(message or f"loading the model failed (exit code {os.WEXITSTATUS(status)})")
