"""Fixtures for the Pulumi program's tests: the shipped stacks evaluated under mocks.

The mocks (keyed on resource type, realistic ids and ARNs) and the recording monitor live in
``lib/evaluate.py`` so that the policy pack's tests and the offline plan see the same graph.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# Helpers live next to the tests under a name no other test directory uses.
sys.path.insert(0, str(Path(__file__).parent))

from lib.evaluate import REPO_ROOT, evaluate_stack
from lib.graph import ResourceGraph

DEMO_MODEL_DIR = REPO_ROOT / "build" / "demo-model"


@pytest.fixture(scope="session")
def demo_model_dir() -> Path:
    """``build/demo-model`` as ``make demo-model`` writes it (the dev stack packs it)."""
    if not (DEMO_MODEL_DIR / "xgboost-model").is_file():
        from tools.demo_model import main  # noqa: PLC0415 - trains only when the model is absent

        assert main(["--out", str(DEMO_MODEL_DIR)]) == 0
    return DEMO_MODEL_DIR


@pytest.fixture(scope="session")
def prod() -> ResourceGraph:
    return evaluate_stack("prod")


@pytest.fixture(scope="session")
def dev(demo_model_dir: Path) -> ResourceGraph:
    return evaluate_stack("dev")

