"""One instance's service model: parallel workers in front of a queue, at the measured capacity.

An instance is ``workers`` parallel servers, each finishing ``per_worker_rps`` requests a second at
full CPU, one FCFS queue (M/G/c). A service time has mean ``1 / per_worker_rps`` and squared
coefficient of variation ``scv`` (variance / mean^2), drawn from a two-moment fit (:func:`shape`):
exponential at 1 (M/M/c), a balanced-means two-phase hyperexponential above 1, an exponential behind a
fixed delay below 1. With ``--instance-rps N`` the workers are the vCPUs (a CPU-bound model runs one
request per core) and service is exponential; with a ``capacity.json`` from ``make capacity`` the peak
throughput it measured (scaled to the instance type as the capacity tool scaled it) is the capacity,
the one-client latency fixes how many requests run in parallel, and the steps' latency spread fixes
``scv`` (:func:`fit_scv`).
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.simulate.scenario import SimulationInputError

Z99 = 2.3263478740408408
"""The standard normal's 99th percentile."""
SCV_LIMITS = (0.05, 25.0)
"""The service-time SCV a capacity file may set. Below 0.05 a request takes a near-constant time that
no shared CPU gives; above 25 one request in a few hundred would be hundreds of times the mean, which
says more about the machine that measured it than about the model: such fits are clamped, and the
description says so."""
MIN_TAIL_REQUESTS = 100
"""A step needs this many requests for its p99 to be more than its slowest request."""
MAX_ERROR_SHARE = 0.01
"""Steps with more failed requests than this time failures as much as service: not used for the tail."""


@dataclass(frozen=True, kw_only=True)
class ServiceShape:
    """A service time of mean 1 as a fixed delay then a two-phase hyperexponential: with probability
    ``p`` an exponential of rate ``rate_1``, else one of rate ``rate_2`` (rates for a unit mean)."""

    delay: float
    p: float
    rate_1: float
    rate_2: float

    def phases(self) -> list[tuple[float, float]]:
        """(probability, rate) of the exponential after the delay; one phase when they coincide."""
        if self.p >= 1 or self.rate_1 == self.rate_2:
            return [(1.0, self.rate_1)]
        return [(self.p, self.rate_1), (1 - self.p, self.rate_2)]


def shape(scv: float) -> ServiceShape:
    """The two-moment fit of a unit-mean service time with squared coefficient of variation ``scv``.

    Above 1: balanced means (each phase carries half the mean; Tijms, *A First Course in Stochastic
    Models*, 2003, section 2.3). Below 1: an exponential of mean sqrt(scv) after a delay of
    1 - sqrt(scv). At 1 both are the exponential."""
    if scv >= 1:
        p = (1 + math.sqrt((scv - 1) / (scv + 1))) / 2
        return ServiceShape(delay=0.0, p=p, rate_1=2 * p, rate_2=2 * (1 - p))
    spread = math.sqrt(scv)
    return ServiceShape(delay=1 - spread, p=1.0, rate_1=1 / spread, rate_2=1 / spread)


@dataclass(frozen=True, kw_only=True)
class ServiceModel:
    workers: int
    per_worker_rps: float
    """Requests a second one worker completes at full CPU."""
    description: str
    scv: float = 1.0
    """Squared coefficient of variation of one service time (1: exponential)."""

    def __post_init__(self) -> None:
        if self.workers < 1 or not self.per_worker_rps > 0:
            raise SimulationInputError(f"a service model needs workers >= 1 and a positive rate, got {self}")
        if not SCV_LIMITS[0] <= self.scv <= SCV_LIMITS[1]:
            raise SimulationInputError(
                f"a service time's SCV must be within {SCV_LIMITS[0]:g}-{SCV_LIMITS[1]:g}, got {self.scv:g}"
            )

    @property
    def instance_rps(self) -> float:
        """Requests a second one instance completes at full CPU."""
        return self.workers * self.per_worker_rps

    @property
    def shape(self) -> ServiceShape:
        return shape(self.scv)


def from_instance_rps(rps: float, vcpus: int) -> ServiceModel:
    if not math.isfinite(rps) or rps <= 0:
        raise SimulationInputError(f"--instance-rps must be a positive number, got {rps}")
    return ServiceModel(
        workers=vcpus,
        per_worker_rps=rps / vcpus,
        description=f"{rps:g} req/s per instance at full CPU (--instance-rps), {vcpus} parallel workers, "
        "exponential service (M/M/c)",
    )


def _number(step: dict[str, Any], key: str, where: str) -> float | None:
    value = step.get(key)
    if value is None:
        return None
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or value <= 0:
        raise SimulationInputError(f"{where}: '{key}' must be a positive number, got {value!r}")
    return float(value)


def step_scv(users: int, workers: int, p50_ms: float, p99_ms: float) -> float:
    """The service SCV one closed-loop step's latency spread implies.

    ``users`` clients each send their next request when the last returns, so a request finds
    ``users - 1`` others: with ``workers`` busy servers it waits for ``a = users - workers`` departures
    (gaps of mean m / c whose counts spread like the service times) and is then served. Its response
    time has mean m (a / c + 1) and variance m^2 scv (a / c^2 + 1), so its SCV is
    scv (a / c^2 + 1) / (a / c + 1)^2. The step's SCV is read from p50 and p99 as a lognormal's."""
    sigma = math.log(p99_ms / p50_ms) / Z99
    response_scv = math.expm1(sigma * sigma)
    ahead = max(0, users - workers)
    spread = (ahead / workers**2 + 1) / (ahead / workers + 1) ** 2
    return response_scv / spread


def fit_scv(steps: Sequence[dict[str, Any]], workers: int, where: str) -> tuple[float, str]:
    """The service SCV the steps' p50 and p99 give, and how it was found.

    The median over the steps where requests queue (more users than workers): a p99 under load is
    set by the requests that waited, and only those steps measure how a wait spreads. Without such
    a step, the median over the others (the service time alone)."""
    estimates: list[tuple[bool, float]] = []
    for index, step in enumerate(steps):
        at = f"{where} step {index + 1}"
        p50, p99 = _number(step, "p50_ms", at), _number(step, "p99_ms", at)
        requests = int(step.get("requests") or 0)
        errors = step.get("errors") or 0
        if p50 is None or p99 is None or requests < MIN_TAIL_REQUESTS:
            continue
        if p99 < p50:
            raise SimulationInputError(f"{at}: p99_ms {p99:g} is below p50_ms {p50:g}")
        if isinstance(errors, int | float) and errors > MAX_ERROR_SHARE * requests:
            continue
        users = int(step.get("users", 1))
        estimates.append((users > workers, step_scv(users, workers, p50, p99)))
    if not estimates:
        return 1.0, (
            f"no step with p50_ms and p99_ms over {MIN_TAIL_REQUESTS}+ requests: exponential service "
            "assumed (M/M/c)"
        )
    queued = [value for waits, value in estimates if waits]
    used = queued or [value for _, value in estimates]
    which = "queueing step(s)" if queued else "step(s) without a queue"
    fitted = statistics.median(used)
    low, high = SCV_LIMITS
    scv = min(max(fitted, low), high)
    clamped = "" if scv == fitted else f" (fitted {fitted:.3g}, clamped to {low:g}-{high:g})"
    return scv, f"service SCV {scv:.3g}{clamped}, the median of {len(used)} {which}' p50/p99 spread"


def from_capacity_file(path: Path) -> ServiceModel:
    """The service model a ``capacity.json`` (``make capacity``) measured."""
    try:
        record: Any = json.loads(path.read_text())
    except OSError as error:
        raise SimulationInputError(f"cannot read capacity file {path}: {error.strerror or error}") from None
    except json.JSONDecodeError as error:
        raise SimulationInputError(f"{path} is not JSON ({error.msg}, line {error.lineno})") from None
    steps = record.get("steps") if isinstance(record, dict) else None
    if not isinstance(steps, list):
        raise SimulationInputError(f"{path} has no 'steps' list: is it a capacity.json from make capacity?")
    measured: list[dict[str, Any]] = [
        s
        for s in steps  # pyright: ignore[reportUnknownVariableType]
        if isinstance(s, dict) and isinstance(s.get("rps"), int | float) and s.get("requests")  # pyright: ignore[reportUnknownMemberType]
    ]
    if not measured:
        raise SimulationInputError(f"{path} has no step with completed requests")
    try:
        return _fitted(path, record, measured)
    except SimulationInputError:
        raise
    except (TypeError, ValueError) as error:
        raise SimulationInputError(
            f"{path}: a step or the scaling holds a value that is not a number ({error}): "
            "is it a capacity.json from make capacity?"
        ) from None


def _fitted(path: Path, record: dict[str, Any], measured: list[dict[str, Any]]) -> ServiceModel:
    scaling = record.get("scaling") or {}
    factor = float(scaling.get("factor", 1.0)) if isinstance(scaling, dict) else 1.0  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
    peak = max(float(s["rps"]) for s in measured)
    first = min(measured, key=lambda s: int(s.get("users", 1)))
    one_request_s = float(first.get("p50_ms") or 0.0) / 1000
    if peak <= 0 or one_request_s <= 0:
        raise SimulationInputError(f"{path}: the steps give no positive throughput and latency")
    workers = max(1, round(peak * one_request_s))
    capacity = peak * factor
    scv, how = fit_scv(measured, workers, path.name)
    return ServiceModel(
        workers=workers,
        per_worker_rps=capacity / workers,
        scv=scv,
        description=f"{path.name}: {peak:,.0f} req/s measured x {factor:g} scaling = {capacity:,.0f} req/s "
        f"per instance; p50 {one_request_s * 1000:.1f} ms at {first.get('users', 1)} user(s) -> "
        f"{workers} parallel worker(s); {how}",
    )
