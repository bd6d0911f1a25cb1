"""The concurrency target from a capacity run: the requests in flight at the operating point,
cross-checked with Little's law, scaled to one target instance, printed with the other settings."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tools.capacity import sizing, stack
from tools.capacity.sizing import StepResult

REPO_ROOT = Path(__file__).resolve().parents[2]


def operating_point(users: int, rps: float, p50_ms: float | None) -> StepResult:
    if p50_ms is None:
        return StepResult(users=users, seconds=10, requests=0, errors=0)
    return StepResult(
        users=users,
        seconds=10,
        requests=round(rps * 10),
        errors=0,
        p50_ms=p50_ms,
        p95_ms=p50_ms * 3,
        p99_ms=p50_ms * 5,
    )


def test_the_target_is_the_in_flight_requests_scaled_to_one_instance_times_the_safety_factor():
    # 5 users at 629 req/s, p50 5.9 ms, on 2 local cores; an ml.c5.xlarge has 4 vCPUs (x2)
    derived = sizing.derive_concurrency(operating_point(5, 629.3, 5.9), scaling_factor=2.0)
    assert (derived.max_per_instance, derived.target_per_instance) == (10, 5)
    assert derived.littles_law == pytest.approx(3.713, abs=0.001)
    assert not derived.disagrees
    assert derived.lines() == [
        "Concurrency target (SageMakerVariantConcurrentRequestsPerModelHighResolution, per instance): "
        "5 in flight at the operating point (Little's law cross-check: throughput x p50 latency = 3.7 in "
        "flight) x 2 = 10 per instance at capacity; x 0.5 = 5"
    ]


def test_a_deployed_measurement_is_divided_among_the_instances_that_served_it():
    derived = sizing.derive_concurrency(operating_point(24, 2400, 9.0), scaling_factor=1 / 3)
    assert (derived.max_per_instance, derived.target_per_instance) == (8, 4)


def test_the_target_never_falls_below_one_request():
    derived = sizing.derive_concurrency(operating_point(1, 300, 3.0), scaling_factor=1.0)
    assert (derived.max_per_instance, derived.target_per_instance) == (1, 1)


def test_littles_law_far_below_the_users_warns_that_the_figures_are_upper_bounds():
    # 32 users but 500 req/s x 10 ms = 5 in flight: the generator, not the server, held the rest
    derived = sizing.derive_concurrency(operating_point(32, 500, 10.0), scaling_factor=1.0)
    assert derived.disagrees
    assert derived.lines()[1].startswith(
        "warning: Little's law gives 5.0 in flight for 32 users: the load generator held requests outside "
        "the server"
    )


def test_impossible_factors_are_refused():
    with pytest.raises(ValueError, match="scaling and safety factors are positive"):
        sizing.derive_concurrency(operating_point(4, 100, 5.0), scaling_factor=0)


def test_both_targets_are_printed_with_the_other_stack_settings_in_declared_keys():
    fleet = sizing.derive_fleet(instance_rps=200.0, instance_type="ml.c5.xlarge", base_rps=500, peak_rps=1500)
    concurrency = sizing.derive_concurrency(operating_point(6, 400, 12.0), scaling_factor=2.0)
    values = stack.stack_settings(fleet, "ml.c5.xlarge", concurrency)
    assert values["invocationsPerInstanceTarget"] == 6000
    assert (values["concurrencyPerInstanceTarget"], values["maxConcurrencyPerInstance"]) == (6, 12)
    declared = yaml.safe_load((REPO_ROOT / "Pulumi.yaml").read_text())["config"]
    assert set(values) <= set(declared)
    assert "concurrencyPerInstanceTarget" not in stack.stack_settings(fleet, "ml.c5.xlarge")
