"""Fixtures every test directory may use."""

from __future__ import annotations

from pathlib import Path

import pytest

from lib.evaluate import REPO_ROOT

DEMO_MODEL_DIR = REPO_ROOT / "build" / "demo-model"


@pytest.fixture(scope="session")
def demo_model_dir() -> Path:
    """``build/demo-model`` as ``make demo-model`` writes it: the dev stack packs it, so any test
    that evaluates dev needs it, on a fresh clone too."""
    if not (DEMO_MODEL_DIR / "xgboost-model").is_file():
        from tools.demo_model import main  # noqa: PLC0415 - trains only when the model is absent

        assert main(["--out", str(DEMO_MODEL_DIR)]) == 0
    return DEMO_MODEL_DIR
