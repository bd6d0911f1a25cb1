"""stackcore/deployment.py: the blue/green bounds and waits shared by config validation and the policy."""

from __future__ import annotations

import pytest

from stackcore import deployment


@pytest.mark.parametrize(
    ("routing", "step", "waits"),
    [("ALL_AT_ONCE", 0, 1), ("CANARY", 10, 1), ("LINEAR", 10, 10), ("LINEAR", 30, 4), ("LINEAR", 50, 2)],
)
def test_a_linear_shift_waits_once_per_step_others_once(routing, step, waits):
    assert deployment.traffic_shift_waits(routing, step) == waits


def test_a_linear_step_of_zero_is_refused_rather_than_divided_by():
    with pytest.raises(ValueError, match="a linear step is a positive percentage, got 0"):
        deployment.traffic_shift_waits("LINEAR", 0)


def test_waiting_adds_every_traffic_wait_and_the_termination_wait():
    assert deployment.blue_green_wait_seconds("LINEAR", 25, 300, 900) == 4 * 300 + 900


@pytest.mark.parametrize(
    ("routing", "step", "problem"),
    [
        ("CANARY", 50, None),
        ("CANARY", 51, "51% is outside the 1-50% SageMaker allows for a CANARY step"),
        ("LINEAR", 10, None),
        ("LINEAR", 9, "9% is outside the 10-50% SageMaker allows for a LINEAR step"),
        ("ALL_AT_ONCE", 0, None),
    ],
)
def test_step_sizes_are_judged_by_routing_type(routing, step, problem):
    assert deployment.step_percent_problem(routing, step) == problem
