"""Loading ``xgboost-model`` (pickled Booster, JSON or UBJSON) and predicting with it.

Unpickling runs code chosen by whoever wrote the file, so a pickle is read with an unpickler that
resolves only ``xgboost.core.Booster`` and a few harmless builtins, and the result must be a Booster.
The Booster is only ever created empty and filled from its pickled state: a pickle that calls
``Booster(model_file=...)`` (which would read any file the server can) is refused.
Remaining risk (documented in the README): ``Booster.__setstate__`` hands the pickled bytes to
XGBoost's C++ model parser and sets whatever attributes the pickle names on the Booster; a crafted
file can therefore still reach bugs in that parser. Only the model file is ever unpickled, and it
comes from the team's own S3 artifact, the same trust level as the image.
"""

from __future__ import annotations

import ctypes
import hashlib
import io
import json
import logging
import pickle
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import xgboost as xgb

from .settings import MODEL_FILENAME

log = logging.getLogger(__name__)

Predictions = npt.NDArray[np.float32]

# What a pickled Booster needs, and nothing that can run a command: the class itself (resolved to
# a stand-in that only makes an empty Booster); bytearray (protocol < 5 pickles the raw model that
# way); _codecs.encode (protocol 2 pickles bytes that way); copyreg._reconstructor and object
# (protocols 0 and 1 create the Booster through them). Protocols 0-2 name builtins as Python 2
# did (__builtin__, copy_reg): those names are mapped first.
_ALLOWED_GLOBALS = frozenset(
    {
        ("xgboost.core", "Booster"),
        ("builtins", "bytearray"),
        ("builtins", "object"),
        ("_codecs", "encode"),
        ("copyreg", "_reconstructor"),
    }
)
_PYTHON2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg"}
# The state a pickled Booster carries (Booster.__getstate__): the serialised model, and
# attributes older xgboost versions kept on the object.
_BOOSTER_STATE_KEYS = frozenset(
    {"handle", "feature_names", "feature_types", "best_iteration", "best_score", "best_ntree_limit"}
)
# inplace_predict is documented thread-safe for tree boosters only.
_THREAD_SAFE_BOOSTERS = frozenset({"gbtree", "dart"})


# What inplace_predict sends to XGBoost for a plain prediction of a dense float32 matrix.
_PREDICT_CONFIG = json.dumps(
    {
        "type": 0,
        "training": False,
        "iteration_begin": 0,
        "iteration_end": 0,
        "missing": float("nan"),
        "strict_shape": False,
        "cache_id": 0,
    }
).encode()


class _Proxy:
    """One proxy DMatrix handle, freed with the object (at the end of the thread that owns it)."""

    def __init__(self, lib: Any, check: Callable[[int], None]) -> None:
        self._lib = lib
        self.handle = ctypes.c_void_p()
        check(lib.XGProxyDMatrixCreate(ctypes.byref(self.handle)))

    def __del__(self) -> None:
        if self.handle:
            self._lib.XGDMatrixFree(self.handle)
            self.handle = ctypes.c_void_p()


class _ThreadProxies(threading.local):
    """Each thread's own :class:`_Proxy`, made on its first prediction."""

    def __init__(self, lib: Any, check: Callable[[int], None]) -> None:
        self._lib = lib
        self._check = check
        self._proxy: _Proxy | None = None

    def mine(self) -> ctypes.c_void_p:
        if self._proxy is None:
            self._proxy = _Proxy(self._lib, self._check)
        return self._proxy.handle


def _dense_predictor(booster: xgb.Booster) -> Callable[[npt.NDArray[np.float32]], Predictions] | None:
    """XGBoosterPredictFromDense called directly, or None if this XGBoost does not offer it.

    ``inplace_predict`` spends about as long in Python (type sniffing, building array interfaces
    and a class per call) as a one-record prediction takes in C; for a dense float32 C-contiguous
    matrix all of that is fixed, so it is done once here. The result is checked against
    ``inplace_predict`` when the model loads (see :meth:`Model.from_booster`).

    Each thread passes its own proxy DMatrix, made once: given none (as ``inplace_predict``
    gives), XGBoost makes one per call, and making one reads the cgroup CPU quota files (five
    file system calls and three sched_getaffinity): about 55 us of a one-record prediction's
    150 us. A proxy only holds the array interface of the call in progress, so one per thread
    is as thread-safe as a fresh one per call.
    """
    lib = getattr(xgb.core, "_LIB", None)
    check = getattr(xgb.core, "_check_call", None)
    function = getattr(lib, "XGBoosterPredictFromDense", None)
    if lib is None or check is None or function is None:
        return None
    handle = booster.handle
    proxies = _ThreadProxies(lib, check)

    def predict(matrix: npt.NDArray[np.float32]) -> Predictions:
        rows, columns = matrix.shape
        # The numpy array interface (read-only data pointer, C order), as inplace_predict sends it.
        interface = (
            f'{{"data":[{matrix.ctypes.data},true],"shape":[{rows},{columns}],'
            f'"strides":null,"typestr":"<f4","version":3}}'
        ).encode()
        shape = ctypes.POINTER(ctypes.c_uint64)()
        dims = ctypes.c_uint64()
        preds = ctypes.POINTER(ctypes.c_float)()
        check(
            function(
                handle,
                interface,
                _PREDICT_CONFIG,
                proxies.mine(),
                ctypes.byref(shape),
                ctypes.byref(dims),
                ctypes.byref(preds),
            )
        )
        out_shape = tuple(int(shape[i]) for i in range(dims.value))
        out = np.empty(out_shape, dtype=np.float32)
        # The buffer belongs to the booster (per thread) and is reused by the next call: copy it.
        ctypes.memmove(out.ctypes.data, preds, out.nbytes)
        return out

    return predict


class ModelLoadError(RuntimeError):
    """The model file is missing or unreadable; the message says which file and what to do."""


class _ForbiddenGlobal(pickle.UnpicklingError):
    pass


class _EmptyBooster:
    """What the unpickler hands out for ``xgboost.core.Booster``: calling it (pickle's REDUCE and
    NEWOBJ) makes an empty Booster without running ``Booster.__init__``, and refuses arguments,
    which is how a pickle would make the Booster load another file (``model_file=``)."""

    def __new__(cls, *args: object, **kwargs: object) -> Any:
        if args or kwargs:
            raise _ForbiddenGlobal(
                "refusing to call Booster with arguments (a pickled Booster is created empty and "
                "filled from its state; arguments such as model_file would read another file)"
            )
        return xgb.Booster.__new__(xgb.Booster)


def _reconstructor(cls: object, base: object, state: object) -> Any:
    """copyreg._reconstructor, as protocols 0 and 1 use it for a Booster, and for nothing else."""
    if cls is not _EmptyBooster or base is not object or state is not None:
        raise _ForbiddenGlobal("refusing copyreg._reconstructor for anything but an empty Booster")
    return _EmptyBooster()


class _BoosterOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        module = _PYTHON2_MODULES.get(module, module)
        if (module, name) not in _ALLOWED_GLOBALS:
            raise _ForbiddenGlobal(f"refusing to load {module}.{name}: only an xgboost Booster is allowed")
        if (module, name) == ("xgboost.core", "Booster"):
            return _EmptyBooster
        if (module, name) == ("copyreg", "_reconstructor"):
            return _reconstructor
        return super().find_class(module, name)


def _looks_like_pickle(data: bytes) -> bool:
    # Protocol 2+ pickles start with PROTO (0x80); protocols 0 and 1 with a GLOBAL ('c') or MARK
    # ('('); Booster.save_model output (JSON or UBJSON) starts with '{'.
    return data[:1] in (b"\x80", b"c", b"(")


def load_booster_bytes(data: bytes, source: str = MODEL_FILENAME) -> xgb.Booster:
    """A Booster from the bytes of a pickled Booster or a ``save_model`` JSON/UBJSON file."""
    if _looks_like_pickle(data):
        try:
            booster = _BoosterOnlyUnpickler(io.BytesIO(data)).load()
        except _ForbiddenGlobal as error:
            raise ModelLoadError(f"{source} is a pickle but not of an xgboost Booster: {error}") from None
        except Exception as error:  # a corrupt pickle can raise nearly anything
            raise ModelLoadError(f"{source} is a corrupt pickle ({type(error).__name__}): {error}") from None
        if not isinstance(booster, xgb.Booster):
            raise ModelLoadError(f"{source} unpickled to {type(booster).__name__}, not an xgboost Booster")
        unexpected = sorted(set(vars(booster)) - _BOOSTER_STATE_KEYS)
        if unexpected or getattr(booster, "handle", None) is None:
            shown = ", ".join(unexpected) if unexpected else "no model (handle)"
            raise ModelLoadError(f"{source} is a pickled Booster with unexpected state: {shown}")
        return booster
    booster = xgb.Booster()
    try:
        booster.load_model(bytearray(data))
    except xgb.core.XGBoostError as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else "unknown error"
        raise ModelLoadError(
            f"{source} is neither a pickled Booster nor an XGBoost JSON/UBJSON model: {first_line}"
        ) from None
    return booster


@dataclass
class Model:
    """A loaded Booster and what the server needs to know about it."""

    booster: xgb.Booster
    version: str
    """Short hash of the model file, sent as X-Model-Version."""
    num_features: int
    objective: str
    num_class: int
    _lock: threading.Lock | None = field(default=None, repr=False)
    _dense: Callable[[npt.NDArray[np.float32]], Predictions] | None = field(default=None, repr=False)

    @classmethod
    def from_booster(cls, booster: xgb.Booster, version: str, nthread: int = 1) -> Model:
        booster.set_param({"nthread": nthread})
        config = json.loads(booster.save_config())
        learner = config["learner"]
        objective = str(learner["objective"]["name"])
        num_class = int(learner["learner_model_param"].get("num_class", "0") or 0)
        booster_kind = str(learner["gradient_booster"]["name"])
        lock = None if booster_kind in _THREAD_SAFE_BOOSTERS else threading.Lock()
        model = cls(
            booster=booster,
            version=version,
            num_features=booster.num_features(),
            objective=objective,
            num_class=num_class,
            _lock=lock,
        )
        dense = _dense_predictor(booster)
        if dense is not None:
            probe = np.linspace(-1.0, 16.0, 3 * model.num_features, dtype=np.float32).reshape(3, -1)
            probe[1, ::3] = np.nan
            reference = np.asarray(booster.inplace_predict(probe, validate_features=False), dtype=np.float32)
            if np.array_equal(dense(probe), reference, equal_nan=True):
                model._dense = dense
            else:
                log.warning("direct dense prediction disagrees with inplace_predict; using inplace_predict")
        return model

    @classmethod
    def load(cls, model_dir: Path, nthread: int = 1) -> Model:
        """Load ``model_dir/xgboost-model``; any other file in the directory is ignored."""
        path = model_dir / MODEL_FILENAME
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ModelLoadError(
                f"no model at {path}: the model archive must contain a file named {MODEL_FILENAME}"
            ) from None
        except OSError as error:
            raise ModelLoadError(f"cannot read {path}: {error.strerror}") from None
        if not data:
            raise ModelLoadError(f"{path} is empty")
        booster = load_booster_bytes(data, str(path))
        model = cls.from_booster(booster, model_version(data), nthread)
        log.info(
            "loaded %s: %s, %d features, %d classes, version %s",
            path,
            model.objective,
            model.num_features,
            model.num_class,
            model.version,
        )
        return model

    def predict(self, matrix: npt.NDArray[np.float32]) -> Predictions:
        """One prediction per row: a (rows,) vector, or (rows, classes) for multi:softprob."""
        matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        if self._lock is None:
            return self._predict(matrix)
        with self._lock:
            return self._predict(matrix)

    def _predict(self, matrix: npt.NDArray[np.float32]) -> Predictions:
        if self._dense is not None:
            return self._dense(matrix)
        return np.asarray(self.booster.inplace_predict(matrix, validate_features=False), dtype=np.float32)


def model_version(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]
