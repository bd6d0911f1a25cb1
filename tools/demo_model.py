"""The demo model: an XGBoost ``multi:softprob`` classifier on scikit-learn's bundled digits.

``python -m tools.demo_model --out DIR [--format pickle|json|ubj]`` writes ``DIR/xgboost-model``
in one of the three formats teams bring to SageMaker's built-in XGBoost container. The digits
data ships inside scikit-learn, so nothing is downloaded; the same rows serve as test fixtures.
"""

from __future__ import annotations

import argparse
import pickle
import tempfile
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt
import xgboost as xgb

ModelFormat = Literal["pickle", "json", "ubj"]
MODEL_FORMATS: tuple[ModelFormat, ...] = get_args(ModelFormat)
MODEL_FILENAME = "xgboost-model"

NUM_FEATURES = 64
NUM_CLASSES = 10
NUM_ROUNDS = 50
MAX_DEPTH = 6
SEED = 0


@cache
def _digits() -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    # Imported lazily: scikit-learn is a tool dependency, not a serving one.
    from sklearn.datasets import load_digits  # noqa: PLC0415

    bunch = load_digits()
    features = np.ascontiguousarray(bunch.data, dtype=np.float32)  # pyright: ignore[reportAttributeAccessIssue]
    labels = np.asarray(bunch.target, dtype=np.int64)  # pyright: ignore[reportAttributeAccessIssue]
    features.setflags(write=False)
    labels.setflags(write=False)
    return features, labels


def digits_rows() -> npt.NDArray[np.float32]:
    """All 1,797 digits rows, shape (1797, 64), float32, read-only."""
    return _digits()[0]


def digits_labels() -> npt.NDArray[np.int64]:
    """The class (0-9) of each row of :func:`digits_rows`."""
    return _digits()[1]


def train_demo_booster(num_rounds: int = NUM_ROUNDS) -> xgb.Booster:
    """Train the demo classifier (deterministic: fixed seed, exact tree method)."""
    dtrain = xgb.DMatrix(digits_rows(), label=digits_labels())
    params = {
        "objective": "multi:softprob",
        "num_class": NUM_CLASSES,
        "max_depth": MAX_DEPTH,
        "eta": 0.3,
        "seed": SEED,
        "nthread": 2,
        "eval_metric": "mlogloss",
    }
    return xgb.train(params, dtrain, num_boost_round=num_rounds)


def write_model(booster: xgb.Booster, directory: Path, fmt: ModelFormat = "json") -> Path:
    """Write ``directory/xgboost-model`` in ``fmt`` and return its path.

    ``pickle`` is what older training jobs and many notebooks write (``pickle.dump(booster)``);
    ``json`` and ``ubj`` are ``Booster.save_model`` formats. The file is always named
    ``xgboost-model`` (no extension), as SageMaker's built-in container expects, so a
    save_model format is chosen by writing to a temporary file with the right suffix.
    """
    if fmt not in MODEL_FORMATS:
        raise ValueError(f"unknown model format {fmt!r}: use one of {', '.join(MODEL_FORMATS)}")
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / MODEL_FILENAME
    if fmt == "pickle":
        data = pickle.dumps(booster, protocol=pickle.HIGHEST_PROTOCOL)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            tmp_path = Path(tmp) / f"model.{fmt}"
            booster.save_model(str(tmp_path))
            data = tmp_path.read_bytes()
    # Written whole then renamed, so a server reading the directory never sees half a model.
    partial = directory / f".{MODEL_FILENAME}.partial"
    partial.write_bytes(data)
    partial.replace(target)
    return target


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, required=True, help="directory to write xgboost-model into")
    parser.add_argument("--format", choices=MODEL_FORMATS, default="json", help="model file format")
    args = parser.parse_args(argv)
    path = write_model(train_demo_booster(), args.out, args.format)
    print(f"wrote {path} ({args.format}, {path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
