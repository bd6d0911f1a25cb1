"""Load and check the model once, in a child process, before Gunicorn forks any worker.

A corrupt model file can do worse than raise: bit flips in a pickled Booster's bytes made
XGBoost's C++ parser allocate gigabytes and then segfault, and a worker that dies at boot is
respawned by Gunicorn's master every few seconds for ever, an endpoint that never becomes healthy
and never says why. So the master forks one child (the libraries are already imported, so the
fork costs milliseconds) which loads the model with its address space capped and runs the
load-time probe prediction; the master waits for it and, if it failed in any way (an error, a
signal, a hang), stops with the reason and a non-zero exit code before any worker exists.

The child also hands the checked model back, as UBJSON bytes: workers forked afterwards load
those (:func:`checked_model`) instead of parsing the file again, about a tenth of the CPU of
parsing a JSON model file, which is what a cold start spends on every worker; and a pickled
model is unpickled once, in the capped child, never in a worker. The master starts the check as
soon as XGBoost is imported (:func:`start_check`) and collects it before forking workers, so the
child's load overlaps the master importing the web stack.
"""

from __future__ import annotations

import os
import resource
import select
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from .model import Model, ModelLoadError, load_booster_bytes

# Address space the child may add to what the imported libraries already reserve: generous for
# any honest model (they take a few times their file size once loaded), small enough that a
# corrupt one fails with std::bad_alloc (a clean error) long before it threatens the instance.
_EXTRA_ADDRESS_SPACE_BYTES = 2 * 1024 * 1024 * 1024
_ADDRESS_SPACE_PER_MODEL_BYTE = 64
_MESSAGE_LIMIT_BYTES = 4000
_VERSION_BYTES = 16  # Model.version: 16 hex digits, ahead of the model's bytes in the child's answer
_READ_BYTES = 1024 * 1024


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
        model = Model.load(model_dir, nthread=nthread)
        checked = CheckedModel(model_dir, model.version, bytes(model.booster.save_raw("ubj")))
        checked.load(nthread)  # what the workers will load: it must load and predict here first
        message = checked.version.encode("ascii") + checked.ubj
        code = 0
    except ModelLoadError as error:
        message = str(error).encode(errors="replace")
    except MemoryError:
        message = b"the model needs more memory than a model file of its size can: the file is corrupt"
    except BaseException as error:
        message = f"{type(error).__name__}: {error}".encode(errors="replace")
    try:
        view = memoryview(message if code == 0 else message[:_MESSAGE_LIMIT_BYTES])
        while view:
            view = view[os.write(writer, view) :]
    finally:
        os._exit(code)


@dataclass(frozen=True)
class CheckedModel:
    """The model as the check child loaded it: its version and its UBJSON bytes."""

    model_dir: Path
    version: str
    ubj: bytes

    def load(self, nthread: int = 1) -> Model:
        """The Model, from the checked bytes (the same trees and parameters as the file)."""
        booster = load_booster_bytes(self.ubj, f"{self.model_dir / 'xgboost-model'} (as checked)")
        return Model.from_booster(booster, self.version, nthread)


@dataclass
class ModelCheck:
    """A check child in flight: :meth:`result` waits for it."""

    model_dir: Path
    pid: int
    reader: int
    started: float
    outcome: CheckedModel | ModelCheckError | None = None

    def result(self, timeout: float = 120.0) -> CheckedModel:
        """The checked model, or ModelCheckError with the reason; waits at most ``timeout``
        seconds from the check's start."""
        if self.outcome is None:
            self.outcome = self._collect(self.started + timeout, timeout)
        if isinstance(self.outcome, ModelCheckError):
            raise self.outcome
        return self.outcome

    def _collect(self, deadline: float, timeout: float) -> CheckedModel | ModelCheckError:
        path = self.model_dir / "xgboost-model"
        chunks: list[bytes] = []
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    os.kill(self.pid, signal.SIGKILL)
                    os.waitpid(self.pid, 0)
                    return ModelCheckError(
                        f"loading {path} took over {timeout:.0f} s: the file is corrupt "
                        "or far larger than this instance can serve"
                    )
                ready, _, _ = select.select([self.reader], [], [], remaining)
                if not ready:
                    continue
                chunk = os.read(self.reader, _READ_BYTES)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            os.close(self.reader)
        _, status = os.waitpid(self.pid, 0)
        answer = b"".join(chunks)
        if os.WIFSIGNALED(status):
            name = signal.Signals(os.WTERMSIG(status)).name
            return ModelCheckError(
                f"loading {path} crashed the loader ({name}): the model file is corrupt; "
                "write it again (Booster.save_model, or pickle a Booster that loads)"
            )
        if os.WEXITSTATUS(status) != 0:
            message = answer.decode(errors="replace").strip()
            code = os.WEXITSTATUS(status)
            return ModelCheckError(message or f"loading the model failed (exit code {code})")
        version = answer[:_VERSION_BYTES].decode("ascii")
        return CheckedModel(self.model_dir, version, answer[_VERSION_BYTES:])


_started: dict[Path, ModelCheck] = {}
_checked: CheckedModel | None = None


def start_check(model_dir: Path, *, nthread: int = 1) -> ModelCheck:
    """Fork the child that loads ``model_dir/xgboost-model`` (once per process and directory:
    Gunicorn reads its config file again on HUP)."""
    check = _started.get(model_dir)
    if check is None:
        reader, writer = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover  (the child; its outcome is what the parent reports)
            os.close(reader)
            _child(model_dir, nthread, writer)
        os.close(writer)
        check = _started[model_dir] = ModelCheck(model_dir, pid, reader, time.monotonic())
    return check


def check_model(model_dir: Path, *, nthread: int = 1, timeout: float = 120.0) -> CheckedModel:
    """Load ``model_dir/xgboost-model`` in a forked child; raise ModelCheckError with the reason.

    The checked model is kept for :func:`checked_model` (workers forked later find it there).
    """
    global _checked  # noqa: PLW0603  (set once in the master, read by the workers it forks)
    _checked = start_check(model_dir, nthread=nthread).result(timeout)
    return _checked


def checked_model(model_dir: Path) -> CheckedModel | None:
    """The model the master checked for ``model_dir`` before forking this worker, if any."""
    return _checked if _checked is not None and _checked.model_dir == model_dir else None
