"""The arithmetic of a capacity run, with known inputs (tools/capacity/sizing.py)."""

from __future__ import annotations

import pytest

from tools.capacity import sizing
from tools.capacity.sizing import StepResult


def step(users: int, rps: float, p99_ms: float, errors: int = 0, seconds: float = 10.0) -> StepResult:
    requests = round(rps * seconds)
    kinds = {"HTTP 503": errors} if errors else {}
    return StepResult(
        users=users,
        seconds=seconds,
        requests=requests,
        errors=errors,
        p50_ms=p99_ms / 4,
        p95_ms=p99_ms / 2,
        p99_ms=p99_ms,
        error_kinds=kinds,
    )


def test_ramp_goes_up_in_steps_and_ends_at_the_maximum():
    assert sizing.ramp_users(1, 4, 16) == [1, 5, 9, 13, 16]
    assert sizing.ramp_users(2, 2, 8) == [2, 4, 6, 8]
    assert sizing.ramp_users(3, 5, 3) == [3]


@pytest.mark.parametrize(
    ("start", "step_users", "max_users", "message"),
    [(0, 1, 4, "one user or more"), (1, 0, 4, "step is one user"), (8, 1, 4, "below the start")],
)
def test_impossible_ramp_is_refused(start, step_users, max_users, message):
    with pytest.raises(ValueError, match=message):
        sizing.ramp_users(start, step_users, max_users)


def test_percentiles_are_nearest_rank_latencies_a_request_had():
    times = [float(ms) for ms in range(1, 101)]  # 1..100 ms
    assert sizing.percentile_ms(times, 0.50) == 50.0
    assert sizing.percentile_ms(times, 0.99) == 99.0
    assert sizing.percentile_ms([7.0], 0.99) == 7.0


def test_step_from_latencies_counts_throughput_and_errors():
    result = sizing.step_from_latencies(
        users=4,
        seconds=2.0,
        latencies_ms=[float(ms) for ms in range(100, 0, -1)],
        errors=5,
        error_kinds={"HTTP 500": 5},
    )
    assert (result.requests, result.rps, result.error_rate) == (100, 50.0, 0.05)
    assert (result.p50_ms, result.p95_ms, result.p99_ms) == (50.0, 95.0, 99.0)


def test_step_with_no_completed_request_breaks_the_objective():
    empty = sizing.step_from_latencies(users=8, seconds=2.0, latencies_ms=[], errors=0)
    assert empty.rps == 0
    assert not empty.meets(100)
    assert empty.why_not(100) == "no request completed in 2.0 s"


def test_why_a_step_breaks_the_objective_names_errors_and_latency():
    bad = step(users=16, rps=900, p99_ms=140, errors=3)
    assert bad.why_not(100) == "3 error(s) (HTTP 503 x3); p99 140.0 ms > objective 100 ms"
    assert step(users=1, rps=100, p99_ms=20).why_not(100) == ""


def test_operating_point_is_the_fastest_step_within_the_objective():
    steps = [
        step(users=1, rps=300, p99_ms=5),
        step(users=5, rps=1100, p99_ms=30),
        step(users=9, rps=1250, p99_ms=95),
        step(users=13, rps=1300, p99_ms=180),  # faster, but p99 over the objective
    ]
    chosen = sizing.choose_operating_point(steps, p99_objective_ms=100)
    assert chosen is not None
    assert chosen.users == 9


def test_a_faster_step_with_a_single_error_is_never_chosen():
    steps = [step(users=1, rps=300, p99_ms=5), step(users=5, rps=1400, p99_ms=20, errors=1)]
    chosen = sizing.choose_operating_point(steps, p99_objective_ms=100)
    assert chosen is not None
    assert chosen.users == 1


def test_throughput_decides_even_when_a_later_step_is_slower():
    # Past saturation throughput can fall while p99 is still within the objective.
    steps = [step(users=4, rps=1200, p99_ms=10), step(users=8, rps=1100, p99_ms=20)]
    chosen = sizing.choose_operating_point(steps, p99_objective_ms=100)
    assert chosen is not None
    assert chosen.users == 4


def test_no_operating_point_when_every_step_breaks_the_objective():
    steps = [step(users=1, rps=10, p99_ms=250), step(users=5, rps=50, p99_ms=20, errors=2)]
    assert sizing.choose_operating_point(steps, p99_objective_ms=100) is None
    assert sizing.choose_operating_point([], p99_objective_ms=100) is None


def test_step_near_the_operating_fraction_is_the_fastest_at_or_below_it():
    steps = [
        step(users=1, rps=300, p99_ms=5),
        step(users=5, rps=790, p99_ms=9),
        step(users=9, rps=1000, p99_ms=40),
    ]
    near = sizing.step_near_fraction(steps, steps[-1], 0.8, 100)
    assert near is not None
    assert near.users == 5


def test_local_measurement_scales_by_vcpus_of_the_target_type():
    scaling = sizing.scaling_for(measured_locally=True, instance_type="ml.c5.2xlarge", local_cpus=2)
    assert scaling.factor == 4.0  # 8 vCPUs / 2 local CPUs
    assert "trust" in scaling.explanation


def test_deployed_measurement_is_divided_by_the_instances_that_served_it():
    scaling = sizing.scaling_for(
        measured_locally=False, instance_type="ml.c5.xlarge", local_cpus=2, endpoint_instances=3
    )
    assert scaling.factor == pytest.approx(1 / 3)


def test_a_given_scale_factor_wins_over_the_vcpu_table():
    scaling = sizing.scaling_for(
        measured_locally=True, instance_type="ml.inf2.xlarge", local_cpus=2, user_factor=1.5
    )
    assert scaling.factor == 1.5


def test_unknown_instance_type_asks_for_a_scale_factor():
    with pytest.raises(ValueError, match="give --scale"):
        sizing.scaling_for(measured_locally=True, instance_type="ml.c5.huge", local_cpus=2)


def test_rare_hosting_types_have_their_vcpus():
    assert sizing.vcpus_of("ml.m4.10xlarge") == 40
    assert sizing.vcpus_of("ml.inf2.48xlarge") == 192
    assert sizing.vcpus_of("ml.c4.8xlarge") == 36


def test_fleet_from_a_measured_instance_follows_awss_formula_and_survives_az_loss():
    settings = sizing.derive_fleet(
        instance_rps=200.0, instance_type="ml.c5.xlarge", base_rps=500.0, peak_rps=1500.0, az_count=3
    )
    # target: 200 x 0.5 x 60
    assert settings.target_invocations_per_minute == 6000
    # ~80% operating point: 160 req/s = 9600 a minute
    assert settings.operating_rps == 160.0
    assert settings.operating_invocations_per_minute == 9600
    # base 500 at 160 each -> 4 instances; 6 over 3 AZs leaves 4 after losing one
    assert settings.instances_for_base == 4
    assert settings.min_instances == 6
    # peak 1500 at the target (100 req/s each) -> 15
    assert settings.max_instances == 15
    assert settings.peak_rps_per_instance == 100.0
    assert not settings.burstable


def test_maximum_is_never_below_the_minimum():
    settings = sizing.derive_fleet(
        instance_rps=1000.0, instance_type="ml.c5.xlarge", base_rps=10, peak_rps=20
    )
    assert (settings.min_instances, settings.max_instances) == (3, 3)


def test_without_a_peak_there_is_no_maximum():
    settings = sizing.derive_fleet(instance_rps=100.0, instance_type="ml.c5.xlarge")
    assert settings.max_instances is None
    assert settings.min_instances == 3  # one instance must survive the loss of an AZ of three


def test_safety_factor_changes_the_target_and_with_it_the_maximum():
    settings = sizing.derive_fleet(
        instance_rps=200.0, instance_type="ml.c5.xlarge", peak_rps=1500.0, safety_factor=0.75
    )
    assert settings.target_invocations_per_minute == 9000
    assert settings.max_instances == 10


def test_burstable_type_gets_a_fixed_fleet_for_the_peak():
    settings = sizing.derive_fleet(
        instance_rps=50.0, instance_type="ml.t2.medium", base_rps=10, peak_rps=100, az_count=2
    )
    assert settings.burstable
    # peak 100 at 40 req/s each -> 3; losing 1 of 2 AZs -> 6 (3 + 3)
    assert settings.fixed_instances == 6


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base_rps": 100, "peak_rps": 50}, "below the base load"),
        ({"base_rps": -1}, "cannot be negative"),
        ({"safety_factor": 1.5}, "safety factor"),
        ({"operating_fraction": 0}, "operating fraction"),
        ({"az_count": 0}, "Availability Zone"),
    ],
)
def test_impossible_sizing_inputs_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sizing.derive_fleet(instance_rps=100.0, instance_type="ml.c5.xlarge", **kwargs)
