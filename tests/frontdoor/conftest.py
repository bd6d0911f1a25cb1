"""Fixtures for the API front door tests (helpers in support.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from .support import ENDPOINT_NAME, LAMBDA_LIKE_ENV, load_handler

DEMO_ROUNDS = 5


@pytest.fixture(scope="session")
def handler_module() -> ModuleType:
    """The handler as the unit tests see it (its client points at real AWS, never reached)."""
    return load_handler("frontdoor_handler_under_test")


@pytest.fixture(autouse=True)
def _lambda_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in LAMBDA_LIKE_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SAGEMAKER_ENDPOINT_NAME", ENDPOINT_NAME)


@pytest.fixture
def invoke_calls(handler_module: ModuleType) -> Iterator[list[dict[str, Any]]]:
    """Every InvokeEndpoint call the handler's client attempts, with its parameters."""
    calls: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        calls.append(params)

    events = handler_module.SAGEMAKER_RUNTIME.meta.events
    events.register("provide-client-params.sagemaker-runtime.InvokeEndpoint", record)
    yield calls
    events.unregister("provide-client-params.sagemaker-runtime.InvokeEndpoint", record)


@pytest.fixture(scope="session")
def demo_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The digits model, with few rounds: the front door does not care how good it is."""
    from tools.demo_model import train_demo_booster, write_model  # noqa: PLC0415  (xgboost: slow import)

    directory = tmp_path_factory.mktemp("frontdoor-model")
    write_model(train_demo_booster(num_rounds=DEMO_ROUNDS), directory, "json")
    return directory
