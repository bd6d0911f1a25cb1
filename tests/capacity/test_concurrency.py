"""The concurrency figures from a capacity run: the requests in flight the ramp measured (each user
keeps one outstanding), Little's law as the cross-check, scaled to one target instance, printed
with the other stack settings."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tools.capacity import sizing, stack
from tools.capacity.sizing import StepResult

REPO_ROOT = Path(__file__).resolve().parents[2]
OBJECTIVE_MS = 100.0


def measured(users: int, rps: float, p50_ms: float, p99_ms: float | None = None) -> StepResult:
    return StepResult(
        users=users,
        seconds=10,
        requests=round(rps * 10),
        errors=0,
        p50_ms=p50_ms,
        p95_ms=p50_ms * 3,
        p99_ms=p99_ms if p99_ms is not None else p50_ms * 4,
    )


# This machine's run (docs/scaling.md): 1 user 337.8 req/s p50 2.7 ms; 5 users 731.2 req/s p50
# 5.9 ms (the capacity); 9 users broke the objective. 2 local cores, x2 to an ml.c5.xlarge.
ONE, FIVE, NINE = measured(1, 337.8, 2.7), measured(5, 731.2, 5.9), measured(9, 428.5, 11.9, 106.5)


def test_the_ceiling_is_the_capacitys_in_flight_and_the_target_the_in_flight_at_the_targets_throughput():
    derived = sizing.derive_concurrency(
        [ONE, FIVE, NINE], FIVE, scaling_factor=2.0, p99_objective_ms=OBJECTIVE_MS
    )
    # 5 x 2 = 10 at most; the target's throughput is 731.2 x 0.5 = 365.6 req/s, read at the
    # 1-user step (337.8 req/s): 1 x 365.6 / 337.8 x 2 = 2.16 -> 2
    assert (derived.max_per_instance, derived.target_per_instance) == (10, 2)
    assert derived.target_rps == pytest.approx(365.6)
    assert derived.capacity_littles_law == pytest.approx(4.314, abs=0.001)
    assert not derived.disagrees
    assert derived.lines() == [
        "Concurrency (SageMakerVariantConcurrentRequestsPerModelHighResolution, per instance): 5 in flight "
        "at the capacity (Little's law: 4.3) x 2 = 10 at most; target: 1 in flight at 337.8 req/s "
        "(Little's law: 0.9), at the target's 365.6 req/s x 2 = 2"
    ]


def test_half_the_capacitys_in_flight_is_not_the_target():
    # Requests queue near the capacity: in flight grows faster than throughput. Half of 10 would hold
    # an instance near 80% of its capacity, not at the 50% the invocations target holds it at.
    derived = sizing.derive_concurrency([ONE, FIVE], FIVE, scaling_factor=2.0, p99_objective_ms=OBJECTIVE_MS)
    assert derived.target_per_instance < derived.max_per_instance * derived.safety_factor


def test_a_deployed_measurement_is_divided_among_the_instances_that_served_it():
    low, capacity = measured(12, 1200, 9.0), measured(24, 2400, 9.5)
    derived = sizing.derive_concurrency(
        [low, capacity], capacity, scaling_factor=1 / 3, p99_objective_ms=OBJECTIVE_MS
    )
    assert (derived.max_per_instance, derived.target_per_instance) == (8, 4)


def test_without_a_step_below_the_targets_throughput_the_slowest_good_step_is_scaled_down():
    capacity = measured(4, 400, 8.0)
    derived = sizing.derive_concurrency(
        [capacity], capacity, scaling_factor=1.0, p99_objective_ms=OBJECTIVE_MS
    )
    assert (derived.target_step_users, derived.target_per_instance) == (4, 2)


def test_the_target_never_falls_below_one_request():
    capacity = measured(1, 300, 3.0)
    derived = sizing.derive_concurrency(
        [capacity], capacity, scaling_factor=1.0, p99_objective_ms=OBJECTIVE_MS
    )
    assert (derived.max_per_instance, derived.target_per_instance) == (1, 1)


def test_littles_law_far_below_the_users_warns_that_the_figures_are_upper_bounds():
    # 32 users but 500 req/s x 10 ms = 5 in flight: the generator, not the server, held the rest
    capacity = measured(32, 500, 10.0)
    derived = sizing.derive_concurrency(
        [capacity], capacity, scaling_factor=1.0, p99_objective_ms=OBJECTIVE_MS
    )
    assert derived.disagrees
    assert derived.lines()[1].startswith(
        "warning: Little's law gives 5.0 in flight for 32 users: the load generator held requests outside "
        "the server"
    )


def test_impossible_factors_are_refused():
    with pytest.raises(ValueError, match="scaling and safety factors are positive"):
        sizing.derive_concurrency([FIVE], FIVE, scaling_factor=0, p99_objective_ms=OBJECTIVE_MS)


def test_both_targets_are_printed_with_the_other_stack_settings_in_declared_keys():
    fleet = sizing.derive_fleet(instance_rps=200.0, instance_type="ml.c5.xlarge", base_rps=500, peak_rps=1500)
    concurrency = sizing.derive_concurrency(
        [ONE, FIVE, NINE], FIVE, scaling_factor=2.0, p99_objective_ms=OBJECTIVE_MS
    )
    values = stack.stack_settings(fleet, "ml.c5.xlarge", concurrency)
    assert values["invocationsPerInstanceTarget"] == 6000
    assert (values["concurrencyPerInstanceTarget"], values["maxConcurrencyPerInstance"]) == (2, 10)
    declared = yaml.safe_load((REPO_ROOT / "Pulumi.yaml").read_text())["config"]
    assert set(values) <= set(declared)
    assert "concurrencyPerInstanceTarget" not in stack.stack_settings(fleet, "ml.c5.xlarge")
