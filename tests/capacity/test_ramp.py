"""The ramp's decisions on known step sequences: limits, knee bisection, plateaus, the chosen point."""

from __future__ import annotations

import pytest

from tools.capacity.ramp import Limit, Ramp, choose_operating_point, find_saturation
from tools.capacity.sizing import StepResult


def step(
    users: int, rps: float, p99: float, *, errors: int = 0, cpu: float | None = None, phase: str = "ramp"
):
    requests = round(rps * 10)
    return StepResult(
        users=users,
        seconds=10.0,
        requests=requests,
        errors=errors,
        p50_ms=p99 / 2,
        p95_ms=p99 * 0.9,
        p99_ms=p99,
        error_kinds={"HTTP 503": errors} if errors else {},
        server_cpu_percent=cpu,
        phase=phase,
    )


def test_the_reported_plateau_is_saturation_not_headroom():
    # Tried by a new user: 844 -> 821 -> 891 req/s while p99 went 4.6 -> 47.6 ms.
    steps = [step(1, 300, 2.0), step(5, 844, 4.6), step(9, 821, 20.0), step(13, 891, 47.6)]
    saturation = find_saturation(steps)
    assert saturation is not None
    assert saturation.base.users == 5
    assert saturation.plateau_users == 9
    assert "saturation" in saturation.describe()
    point = choose_operating_point(steps, p99_objective_ms=100)
    assert point.limit is Limit.SATURATION
    assert point.step is not None
    assert point.step.rps == pytest.approx(844)  # the best step before the plateau, not 891


def test_throughput_growing_with_users_at_flat_latency_is_headroom():
    steps = [step(1, 250, 4.0), step(5, 1200, 4.2), step(9, 2100, 4.5), step(13, 2950, 4.6)]
    assert find_saturation(steps) is None
    point = choose_operating_point(steps, p99_objective_ms=100)
    assert point.limit is Limit.NONE
    assert point.step is not None
    assert point.step.users == 13


def test_slow_growth_at_flat_latency_is_not_saturation():
    # Many users and small steps: 4% more users give 4% more throughput, latency unchanged.
    steps = [step(100, 10_000, 20.0), step(104, 10_400, 20.5), step(108, 10_800, 21.0)]
    assert find_saturation(steps) is None


def test_operating_point_stays_at_or_under_the_cpu_target():
    steps = [step(1, 200, 3, cpu=30), step(5, 700, 4, cpu=70), step(9, 1000, 6, cpu=92)]
    point = choose_operating_point(steps, p99_objective_ms=100, cpu_target_percent=80)
    assert point.step is not None
    assert point.step.users == 5
    assert point.limit is Limit.CPU
    assert "server CPU 92% > target 80%" in point.explanation
    # Without a CPU target, the latency objective alone decides.
    assert choose_operating_point(steps, p99_objective_ms=100, cpu_target_percent=None).step == steps[2]


def test_latency_and_error_limits_are_named():
    latency = [step(1, 200, 3), step(5, 700, 150)]
    assert choose_operating_point(latency, p99_objective_ms=100).limit is Limit.LATENCY
    errors = [step(1, 200, 3), step(5, 700, 5, errors=3)]
    point = choose_operating_point(errors, p99_objective_ms=100)
    assert point.limit is Limit.ERRORS
    assert "HTTP 503 x3" in point.explanation


def test_no_good_step_gives_no_point_and_the_first_limit():
    point = choose_operating_point([step(1, 50, 300)], p99_objective_ms=100)
    assert point.step is None
    assert point.limit is Limit.LATENCY


def run_ramp_against(ramp: Ramp, ceiling_users: int) -> list[int]:
    """Drive ``ramp`` against a server that is good up to ``ceiling_users`` and slow beyond."""
    ran: list[int] = []
    while (users := ramp.next_users()) is not None:
        ran.append(users)
        good = users <= ceiling_users
        ramp.record(step(users, users * 100.0, 10.0 if good else 500.0, phase=ramp.phase()))
    return ran


def test_knee_is_bisected_between_the_last_good_and_the_first_bad_step():
    ramp = Ramp([1, 5, 9, 13, 17], p99_objective_ms=100)
    ran = run_ramp_against(ramp, ceiling_users=11)
    assert ran == [1, 5, 9, 13, 11, 12]
    assert [s.phase for s in ramp.steps] == ["ramp"] * 4 + ["refine"] * 2
    point = choose_operating_point(ramp.steps, p99_objective_ms=100)
    assert point.step is not None
    assert point.step.users == 11
    assert point.limit is Limit.LATENCY
    assert "knee refined to 11 users (good) and 12 (broken)" in ramp.stop_reason


def test_without_refinement_the_ramp_stops_at_the_first_bad_step():
    ramp = Ramp([1, 5, 9, 13, 17], p99_objective_ms=100, refine=False)
    assert run_ramp_against(ramp, ceiling_users=11) == [1, 5, 9, 13]
    assert ramp.stop_reason.startswith("objective broken at 13 users: p99 500.0 ms")


def test_a_bad_first_step_above_one_user_is_bisected_down():
    ramp = Ramp([8, 16], p99_objective_ms=100)
    assert run_ramp_against(ramp, ceiling_users=2) == [8, 4, 2, 3]


def test_one_bad_user_stops_at_once():
    ramp = Ramp([1, 5], p99_objective_ms=100)
    assert run_ramp_against(ramp, ceiling_users=0) == [1]
    assert ramp.stop_reason.startswith("objective broken at 1 user")


def test_ramp_stops_at_a_plateau_without_bisecting():
    ramp = Ramp([1, 5, 9, 13, 17], p99_objective_ms=100)
    for users, rps, p99 in [(1, 300, 2.0), (5, 844, 4.6), (9, 821, 20.0), (13, 891, 47.6)]:
        assert ramp.next_users() == users
        ramp.record(step(users, rps, p99))
    assert ramp.next_users() is None
    assert ramp.stop_reason.startswith("saturation: from 5 users to 13")


def test_ramp_that_never_breaks_says_it_reached_the_maximum():
    ramp = Ramp([1, 5], p99_objective_ms=100)
    assert run_ramp_against(ramp, ceiling_users=100) == [1, 5]
    assert ramp.stop_reason == "reached the maximum of 5 users"
