"""The seed replayed: two ml.t2.medium, no autoscaling, the seed preset at the seed's load.

With AWS's built-in container (its /ping waits behind the requests) and about 20 credits at the
start of the ramp, the simulator must predict what CloudWatch showed: one instance out of credits
about an hour in, marked unhealthy, and 12 minutes (5 to terminate, 7 to launch) with one instance
carrying everything."""

from __future__ import annotations

import pytest

from tests.simulate.conftest import stack
from tools.simulate import fast, service, traffic
from tools.simulate.cli import SEED_RPS_PER_INSTANCE
from tools.simulate.constants import with_overrides
from tools.simulate.inputs import SimulationInput
from tools.simulate.outcome import Outcome
from tools.simulate.scenario import fleet_from_stack

SEED_INSTANCE_RPS = 300.0
"""The seed instance's capacity at full CPU (docs/simulator.md says why 250-625 fits the seed)."""


def replay(ping_queue_fraction: float, credits: tuple[float, ...], routing: str | None = None) -> Outcome:
    spec = fleet_from_stack(stack(), routing=routing)
    run = SimulationInput(
        spec=spec,
        service=service.from_instance_rps(SEED_INSTANCE_RPS, spec.vcpus),
        traffic=traffic.preset("seed", base_rps=0, peak_rps=SEED_RPS_PER_INSTANCE * spec.initial_instances),
        constants=with_overrides([f"ping_queue_fraction={ping_queue_fraction}"]),
        initial_credits=credits,
    )
    return fast.simulate(run)


def _first(outcome: Outcome, kind: str) -> float:
    return next(e.t_seconds for e in outcome.events if e.kind == kind) / 60


@pytest.fixture(scope="module")
def seed_replay() -> Outcome:
    return replay(1.0, (20.0, 100.0))


def test_seed_replay_predicts_credit_exhaustion_about_an_hour_in(seed_replay: Outcome) -> None:
    exhausted = [e for e in seed_replay.events if e.kind == "credits"]
    assert len(exhausted) == 1
    assert 55 <= exhausted[0].t_seconds / 60 <= 65
    assert "instance 1" in exhausted[0].detail


def test_seed_replay_loses_the_instance_and_leaves_one_alone_for_12_minutes(seed_replay: Outcome) -> None:
    unhealthy = _first(seed_replay, "unhealthy")
    assert 0 < unhealthy - _first(seed_replay, "credits") <= 1
    replacement = [e for e in seed_replay.events if e.kind == "in-service"]
    assert len(replacement) == 1
    gap = replacement[0].t_seconds / 60 - unhealthy
    assert gap == pytest.approx(12, abs=0.01)
    w = seed_replay.windows
    alone = (w.in_service == 1).sum() * 10 / 60
    assert alone == pytest.approx(12, abs=0.2)
    # The survivor carries everything: nothing fails but what the lost instance held.
    assert seed_replay.failed_percent() < 0.1


def test_with_this_projects_container_the_same_stack_keeps_both_instances_but_not_its_latency() -> None:
    # Its /ping does not wait behind requests: the starved instance stays in service, and least
    # outstanding routing moves its share to the other one, through a queue.
    outcome = replay(0.0, (20.0, 100.0), routing="LEAST_OUTSTANDING_REQUESTS")
    assert not [e for e in outcome.events if e.kind == "unhealthy"]
    assert outcome.failed_percent() == 0
    assert outcome.minutes_over_objective() > 30
    # Random routing keeps sending it half the load: requests time out or are throttled instead.
    randomly = replay(0.0, (20.0, 100.0), routing="RANDOM")
    assert not [e for e in randomly.events if e.kind == "unhealthy"]
    assert randomly.failed_percent() > 5


def test_with_launch_credits_only_nothing_runs_out_within_the_test() -> None:
    outcome = replay(1.0, ())
    assert not [e for e in outcome.events if e.kind in ("credits", "unhealthy")]
