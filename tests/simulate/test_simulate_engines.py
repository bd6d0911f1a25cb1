"""The fast (fluid) engine against the per-request SimPy reference on shared small scenarios, and
determinism: same inputs and seed, same output."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.simulate.conftest import small_run
from tools.simulate import fast, reference
from tools.simulate.constants import with_overrides
from tools.simulate.control import FailureEvent
from tools.simulate.inputs import SimulationInput

# Each scenario: two ml.t2.medium of 50 or 100 req/s each (credits to spare), two minutes or so,
# small enough for the reference engine (6,000-21,000 requests). The service-time SCV scenarios run
# five minutes: their p99 rests on the rarer slow phase, and two minutes of it are too few samples.
SCENARIOS = {
    "steady at 70%, random routing, service SCV 3": small_run(
        np.full(300, 70.0), routing="RANDOM", instance_rps=50, scv=3.0
    ),
    "steady at 70%, least outstanding, service SCV 0.3": small_run(
        np.full(300, 70.0), routing="LEAST_OUTSTANDING_REQUESTS", instance_rps=50, scv=0.3
    ),
    "steady at 70%, random routing": small_run(np.full(90, 70.0), routing="RANDOM", instance_rps=50),
    "steady at 70%, least outstanding": small_run(
        np.full(90, 70.0), routing="LEAST_OUTSTANDING_REQUESTS", instance_rps=50
    ),
    "overload past the 29 s timeout": small_run(
        np.concatenate([np.full(30, 50.0), np.full(90, 140.0)]),
        instance_rps=50,
        constants=with_overrides(["lambda_concurrency_limit=100000", "instance_queue_limit=100000"]),
    ),
    "lose an instance, random routing": small_run(
        np.full(120, 120.0), failures=(FailureEvent(kind="lose-instance", minute=0.5),)
    ),
    "lose an instance, least outstanding": small_run(
        np.full(120, 120.0),
        routing="LEAST_OUTSTANDING_REQUESTS",
        failures=(FailureEvent(kind="lose-instance", minute=0.5),),
    ),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_fast_engine_agrees_with_the_per_request_reference(name: str) -> None:
    run = SCENARIOS[name]
    fluid, exact = fast.simulate(run), reference.simulate(run)
    a, b = fluid.summary(), exact.summary()
    offered_a, offered_b = a["requests"]["offered"], b["requests"]["offered"]
    # Poisson arrivals make the reference's offered count differ a little: compare shares.
    served_a, served_b = a["requests"]["served"] / offered_a, b["requests"]["served"] / offered_b
    failed_a, failed_b = a["requests"]["failed"] / offered_a, b["requests"]["failed"] / offered_b
    assert served_a == pytest.approx(served_b, rel=0.02), (a["requests"], b["requests"])
    assert abs(failed_a - failed_b) <= 0.02, (a["requests"], b["requests"])
    assert a["p99_ms"] == pytest.approx(b["p99_ms"], rel=0.10), (a["p99_ms"], b["p99_ms"])
    assert [e.kind for e in fluid.events] == [e.kind for e in exact.events]


def test_overload_scenario_really_times_requests_out() -> None:
    summary = fast.simulate(SCENARIOS["overload past the 29 s timeout"]).summary()
    assert summary["requests"]["failures_by_reason"]["timeout"] > 500


@pytest.mark.parametrize("engine", [fast, reference])
def test_same_inputs_and_seed_give_identical_json(engine: object) -> None:
    run: SimulationInput = small_run(
        np.full(60, 80.0), failures=(FailureEvent(kind="lose-instance", minute=0.5),), seed=11
    )
    simulate = engine.simulate  # pyright: ignore[reportAttributeAccessIssue]
    first = json.dumps(simulate(run).record(), sort_keys=True)
    second = json.dumps(simulate(run).record(), sort_keys=True)
    assert first == second
