"""Shared stacks and runs for the simulator's tests: small fleets, minutes of traffic."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
import pytest

from lib.evaluate import REPO_ROOT
from stackcore import StackSettings, load_stack
from tools.simulate import service, traffic
from tools.simulate.constants import DEFAULTS, Constants
from tools.simulate.control import FailureEvent
from tools.simulate.inputs import SimulationInput
from tools.simulate.scenario import fleet_from_stack

MODEL_URI = "s3://example-models/xgboost/model.tar.gz"
"""A model URI, so that the dev stack validates without the demo model on disk."""

SEED_STACK = {
    "initialInstanceCount": "2",
    "endpointInstanceQuotas": '{"ml.t2.medium": 4}',
    "totalInstanceQuota": "4",
    "modelUri": MODEL_URI,
}
"""The seed's stack: dev's ml.t2.medium, two of them, no autoscaling (a quota that allows a replacement)."""


def stack(name: str = "dev", overrides: Mapping[str, str] | None = None) -> StackSettings:
    values = dict(SEED_STACK if name == "dev" else {"modelUri": MODEL_URI})
    values.update(overrides or {})
    return load_stack(REPO_ROOT, name, values)


def small_run(
    rps: np.ndarray,
    *,
    routing: str = "RANDOM",
    instance_rps: float = 100.0,
    failures: tuple[FailureEvent, ...] = (),
    front_door: bool = True,
    constants: Constants = DEFAULTS,
    seed: int = 3,
    settings: StackSettings | None = None,
    credits: tuple[float, ...] = (600.0,),
    scv: float = 1.0,
) -> SimulationInput:
    """Two ml.t2.medium with credits to spare unless told otherwise; ``scv`` shapes the service time."""
    spec = fleet_from_stack(settings or stack(), routing=routing, front_door=front_door)
    model = service.from_instance_rps(instance_rps, spec.vcpus)
    return SimulationInput(
        spec=spec,
        service=dataclasses.replace(model, scv=scv) if scv != 1.0 else model,
        traffic=traffic.Traffic(name="test", rps=np.asarray(rps, dtype=np.float64)),
        constants=constants,
        failures=failures,
        seed=seed,
        initial_credits=credits,
    )


@pytest.fixture
def seed_settings() -> StackSettings:
    return stack()
