"""Fixtures for the serving container: the demo model in every format, and live Gunicorn servers."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import xgboost as xgb

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTAINER_DIR = REPO_ROOT / "container"
if str(CONTAINER_DIR) not in sys.path:
    sys.path.insert(0, str(CONTAINER_DIR))
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from xgbserve.model import Model  # noqa: E402

from tools.demo_model import MODEL_FORMATS, digits_rows, train_demo_booster, write_model  # noqa: E402
from tools.serving import RunningContainer, running_container  # noqa: E402


@pytest.fixture(scope="session")
def booster() -> xgb.Booster:
    return train_demo_booster()


@pytest.fixture(scope="session")
def rows() -> npt.NDArray[np.float32]:
    return digits_rows()


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory: pytest.TempPathFactory, booster: xgb.Booster) -> dict[str, Path]:
    """The demo model written once per format: {"pickle": dir, "json": dir, "ubj": dir}."""
    root = tmp_path_factory.mktemp("models")
    return {fmt: write_model(booster, root / fmt, fmt).parent for fmt in MODEL_FORMATS}


@pytest.fixture(scope="session")
def model(model_dirs: dict[str, Path]) -> Model:
    return Model.load(model_dirs["json"])


@pytest.fixture(scope="session")
def expected(model: Model, rows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """The model's predictions for every digits row, computed in-process."""
    return model.predict(rows)


@pytest.fixture(scope="module")
def server(
    model_dirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningContainer]:
    """A real Gunicorn server (2 workers) on the JSON model, with a stray file in its model dir."""
    model_dir = tmp_path_factory.mktemp("served")
    (model_dir / "xgboost-model").write_bytes((model_dirs["json"] / "xgboost-model").read_bytes())
    (model_dir / "notes.txt").write_text("a stray file a model archive may carry; it must be ignored")
    with running_container(model_dir, workers=2) as running:
        yield running
