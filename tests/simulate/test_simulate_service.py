"""The service model: the two-moment service-time shapes, the SCV fitted to a capacity file's steps,
the fallbacks and the limits, and the closed-form tail against the model it stands for."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tools.simulate import latency, service
from tools.simulate.scenario import SimulationInputError


def _moments(scv: float) -> tuple[float, float]:
    """Mean and SCV of the unit-mean shape, from its phases (closed form)."""
    s = service.shape(scv)
    first = s.p / s.rate_1 + (1 - s.p) / s.rate_2
    second = 2 * (s.p / s.rate_1**2 + (1 - s.p) / s.rate_2**2)
    mean = s.delay + first
    variance = second - first**2
    return mean, variance / mean**2


@pytest.mark.parametrize("scv", [0.05, 0.3, 1.0, 2.0, 4.0, 25.0])
def test_the_shape_has_mean_one_and_the_asked_scv(scv: float) -> None:
    mean, got = _moments(scv)
    assert mean == pytest.approx(1.0)
    assert got == pytest.approx(scv)


def test_the_shape_draws_what_its_moments_say() -> None:
    rng = np.random.default_rng(5)
    s = service.shape(4.0)
    n = 400_000
    phase = np.where(rng.random(n) < s.p, s.rate_1, s.rate_2)
    draws = s.delay + rng.exponential(1 / phase)
    assert draws.mean() == pytest.approx(1.0, rel=0.02)
    assert draws.var() / draws.mean() ** 2 == pytest.approx(4.0, rel=0.05)


def _steps(*rows: tuple[int, float, float]) -> list[dict[str, Any]]:
    return [
        {"users": u, "requests": 3000, "errors": 0, "rps": 1000.0, "p50_ms": p50, "p99_ms": p99}
        for u, p50, p99 in rows
    ]


def _write(tmp_path: Path, record: object) -> Path:
    path = tmp_path / "capacity.json"
    path.write_text(json.dumps(record))
    return path


def _lognormal_p99(p50: float, scv: float) -> float:
    return p50 * math.exp(service.Z99 * math.sqrt(math.log1p(scv)))


def test_the_fit_recovers_the_scv_the_closed_loop_steps_were_made_with() -> None:
    workers, scv = 2, 3.0
    rows = []
    for users in (1, 2, 4, 8, 16):
        ahead = max(0, users - workers)
        response_scv = scv * (ahead / workers**2 + 1) / (ahead / workers + 1) ** 2
        p50 = 1.0 + ahead / workers
        rows.append((users, p50, _lognormal_p99(p50, response_scv)))
    fitted, how = service.fit_scv(_steps(*rows), workers, "test")
    assert fitted == pytest.approx(scv)
    assert "median of 3 queueing step(s)" in how


def test_an_exponential_service_measured_at_one_client_fits_an_scv_near_one() -> None:
    # One client, no queue: latency is the service time; an exponential's p99 / p50 is ln 100 / ln 2.
    p50 = 1.0
    fitted, _ = service.fit_scv(_steps((1, p50, p50 * math.log(100) / math.log(2))), 1, "test")
    assert fitted == pytest.approx(1.0, abs=0.1)


def test_a_capacity_file_sets_workers_rate_and_scv_from_the_steps_that_queue(tmp_path: Path) -> None:
    steps = _steps((1, 1.0, 3.0), (2, 2.0, 9.0), (4, 4.0, 16.0))
    model = service.from_capacity_file(_write(tmp_path, {"steps": steps, "scaling": {"factor": 2.0}}))
    assert model.workers == 1
    assert model.instance_rps == pytest.approx(2000.0)
    queued = [service.step_scv(s["users"], 1, s["p50_ms"], s["p99_ms"]) for s in steps[1:]]
    assert model.scv == pytest.approx(float(np.median(queued)))
    assert "median of 2 queueing step(s)" in model.description


def test_a_capacity_file_without_p99_falls_back_to_exponential_and_says_so(tmp_path: Path) -> None:
    steps = [{"users": 1, "requests": 3000, "rps": 1000.0, "p50_ms": 1.0}]
    model = service.from_capacity_file(_write(tmp_path, {"steps": steps}))
    assert model.scv == 1.0
    assert "exponential service assumed" in model.description


def test_steps_too_small_or_failing_do_not_set_the_tail(tmp_path: Path) -> None:
    steps = _steps((1, 1.0, 3.0), (2, 2.0, 50.0), (4, 4.0, 80.0))
    steps[1]["requests"] = service.MIN_TAIL_REQUESTS - 1
    steps[2]["errors"] = 100
    fitted, how = service.fit_scv(steps, 1, "test")
    assert fitted == pytest.approx(service.step_scv(1, 1, 1.0, 3.0))
    assert "median of 1 step(s) without a queue" in how


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"p99_ms": "slow"}, "'p99_ms' must be a positive number, got 'slow'"),
        ({"p99_ms": -1.0}, "'p99_ms' must be a positive number"),
        ({"p50_ms": 5.0, "p99_ms": 2.0}, "p99_ms 2 is below p50_ms 5"),
    ],
)
def test_bad_latency_fields_are_a_clear_input_error(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    steps = _steps((1, 1.0, 3.0))
    steps[0].update(change)
    with pytest.raises(SimulationInputError, match=r"capacity\.json step 1") as error:
        service.from_capacity_file(_write(tmp_path, {"steps": steps}))
    assert message in str(error.value)


@pytest.mark.parametrize(
    "change",
    [{"users": "eight"}, {"users": [8]}, {"requests": "many"}],
)
def test_a_step_field_that_is_not_a_number_is_a_clear_input_error(
    tmp_path: Path, change: dict[str, object]
) -> None:
    steps = _steps((1, 1.0, 3.0))
    steps[0].update(change)
    with pytest.raises(SimulationInputError, match=r"holds a value that is not a number"):
        service.from_capacity_file(_write(tmp_path, {"steps": steps}))


def test_a_scaling_factor_that_is_not_a_number_is_a_clear_input_error(tmp_path: Path) -> None:
    record = {"steps": _steps((1, 1.0, 3.0)), "scaling": {"factor": "double"}}
    with pytest.raises(SimulationInputError, match=r"holds a value that is not a number"):
        service.from_capacity_file(_write(tmp_path, record))


def test_an_absurd_spread_is_clamped_and_the_description_says_so(tmp_path: Path) -> None:
    model = service.from_capacity_file(_write(tmp_path, {"steps": _steps((1, 1.0, 5000.0))}))
    assert model.scv == service.SCV_LIMITS[1]
    assert "clamped" in model.description


@pytest.mark.parametrize("scv", [0.0, -1.0, 100.0, math.nan])
def test_a_service_model_outside_the_limits_is_refused(scv: float) -> None:
    with pytest.raises(SimulationInputError, match="SCV"):
        service.ServiceModel(workers=1, per_worker_rps=10.0, scv=scv, description="test")


def test_instance_rps_stays_exponential() -> None:
    assert service.from_instance_rps(400.0, 4).scv == 1.0


def test_the_tail_at_scv_one_is_m_m_c() -> None:
    # M/M/1: the response time is exponential of rate mu - lambda.
    t = latency.GRID_S
    mu, rho = 100.0, 0.6
    tail = latency.mmc_tail(t, np.array([1]), np.array([rho]), np.array([mu]))[0]
    assert tail == pytest.approx(np.exp(-mu * (1 - rho) * t), rel=1e-6, abs=1e-12)


@pytest.mark.parametrize("scv", [0.3, 2.0, 4.0])
def test_the_wait_decay_solves_the_lundberg_equation(scv: float) -> None:
    rho = np.array([0.4, 0.7, 0.9])
    x, _ = latency.wait_decay(rho, scv)
    s = service.shape(scv)
    mgf = np.exp(x * s.delay) * (s.p * s.rate_1 / (s.rate_1 - x) + (1 - s.p) * s.rate_2 / (s.rate_2 - x))
    assert rho * (mgf - 1) == pytest.approx(x, rel=1e-9)


@pytest.mark.parametrize("rho", [0.4, 0.7, 0.9])
def test_one_server_tail_keeps_the_pollaczek_khinchine_mean_and_grows_with_the_scv(rho: float) -> None:
    # Integrating P(W > t) gives E[W]; for M/G/1 the exact mean is one service plus
    # rho (1 + scv) / 2 / (mu (1 - rho)). The tail is the wait's asymptote: close, not exact.
    t = np.linspace(0.0, 5.0, 500_001)
    mu = 100.0
    means = []
    for scv in (0.3, 1.0, 2.0, 4.0):
        tail = latency.mmc_tail(t, np.array([1]), np.array([rho]), np.array([mu]), scv)[0]
        mean = float(np.sum((tail[1:] + tail[:-1]) / 2 * np.diff(t)))
        assert mean == pytest.approx(1 / mu + rho * (1 + scv) / 2 / (mu * (1 - rho)), rel=0.05)
        means.append(mean)
    assert means == sorted(means)
