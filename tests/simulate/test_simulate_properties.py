"""Conservation and bounds, over random stacks, traffic and failures (fast engine)."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.simulate.conftest import small_run, stack
from tools.simulate import fast
from tools.simulate.control import FailureEvent
from tools.simulate.outcome import WINDOW_S

_STACKS = {
    # (stack, overrides): a fixed burstable pair, prod autoscaled over three zones, prod rolling.
    "seed": ("dev", {}),
    "prod": ("prod", {}),
    "prod-rolling": (
        "prod",
        {"updateMode": "rolling", "rollingBatchPercent": "50", "rollingWaitSeconds": "60"},
    ),
}


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, object]:
    minutes = draw(st.integers(min_value=2, max_value=25))
    per_minute = draw(st.lists(st.floats(min_value=0, max_value=3000), min_size=minutes, max_size=minutes))
    events = draw(
        st.lists(
            st.tuples(st.sampled_from(["lose-instance", "lose-az", "deploy"]), st.integers(0, minutes)),
            max_size=3,
        )
    )
    return {
        "stack": draw(st.sampled_from(sorted(_STACKS))),
        "rps": np.repeat(np.array(per_minute), 60),
        "instance_rps": draw(st.floats(min_value=20, max_value=2000)),
        "routing": draw(st.sampled_from(["RANDOM", "LEAST_OUTSTANDING_REQUESTS"])),
        "front_door": draw(st.booleans()),
        "failures": tuple(FailureEvent(kind=kind, minute=minute) for kind, minute in events),
        "credits": (draw(st.floats(min_value=0, max_value=700)),),
    }


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_every_request_is_served_or_failed_and_served_never_exceeds_capacity(case: dict[str, object]) -> None:
    name, overrides = _STACKS[str(case["stack"])]
    run = small_run(
        case["rps"],  # pyright: ignore[reportArgumentType]
        routing=str(case["routing"]),
        instance_rps=float(case["instance_rps"]),  # pyright: ignore[reportArgumentType]
        failures=case["failures"],  # pyright: ignore[reportArgumentType]
        front_door=bool(case["front_door"]),
        settings=stack(name, overrides),
        credits=case["credits"],  # pyright: ignore[reportArgumentType]
    )
    outcome = fast.simulate(run)
    w = outcome.windows
    offered = float(w.offered.sum())
    assert np.isclose(offered, float(np.asarray(case["rps"]).sum()))
    assert np.isclose(offered, float(w.served.sum()) + outcome.failed, rtol=1e-9, atol=1e-6)
    assert np.all(w.served <= w.capacity + 1e-6)
    for values in (w.served, w.shed, w.timeout, w.throttled):
        assert np.all(values >= -1e-9)
    assert np.all(w.in_service <= run.spec.quota_instances)
    assert np.all(w.in_service + w.pending <= run.spec.quota_instances)
    assert outcome.instance_seconds <= run.spec.quota_instances * w.count * WINDOW_S
