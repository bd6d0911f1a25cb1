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

from lib.evaluate import evaluate_stack
from lib.graph import ResourceGraph


@pytest.fixture(scope="session")
def prod() -> ResourceGraph:
    return evaluate_stack("prod")


@pytest.fixture(scope="session")
def dev(demo_model_dir: Path) -> ResourceGraph:
    return evaluate_stack("dev")

