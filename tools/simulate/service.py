"""One instance's service model: parallel workers in front of a queue, at the measured capacity.

An instance is ``workers`` parallel servers, each finishing ``per_worker_rps`` requests a second at
full CPU (exponential service times in the reference engine; the same M/M/c queue in closed form in
the fast engine). With ``--instance-rps N`` the workers are the vCPUs (a CPU-bound model runs one
request per core); with a ``capacity.json`` from ``make capacity`` the peak throughput it measured
(scaled to the instance type as the capacity tool scaled it) is the capacity and the one-client
latency fixes how many requests run in parallel.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.simulate.scenario import SimulationInputError


@dataclass(frozen=True, kw_only=True)
class ServiceModel:
    workers: int
    per_worker_rps: float
    """Requests a second one worker completes at full CPU."""
    description: str

    def __post_init__(self) -> None:
        if self.workers < 1 or not self.per_worker_rps > 0:
            raise SimulationInputError(f"a service model needs workers >= 1 and a positive rate, got {self}")

    @property
    def instance_rps(self) -> float:
        """Requests a second one instance completes at full CPU."""
        return self.workers * self.per_worker_rps


def from_instance_rps(rps: float, vcpus: int) -> ServiceModel:
    if not math.isfinite(rps) or rps <= 0:
        raise SimulationInputError(f"--instance-rps must be a positive number, got {rps}")
    return ServiceModel(
        workers=vcpus,
        per_worker_rps=rps / vcpus,
        description=f"{rps:g} req/s per instance at full CPU (--instance-rps), {vcpus} parallel workers",
    )


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
    measured = [
        s
        for s in steps  # pyright: ignore[reportUnknownVariableType]
        if isinstance(s, dict) and isinstance(s.get("rps"), int | float) and s.get("requests")  # pyright: ignore[reportUnknownMemberType]
    ]
    if not measured:
        raise SimulationInputError(f"{path} has no step with completed requests")
    scaling = record.get("scaling") or {}
    factor = float(scaling.get("factor", 1.0)) if isinstance(scaling, dict) else 1.0  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
    peak = max(float(s["rps"]) for s in measured)  # pyright: ignore[reportUnknownArgumentType]
    first = min(measured, key=lambda s: int(s.get("users", 1)))  # pyright: ignore[reportUnknownLambdaType, reportUnknownMemberType, reportUnknownArgumentType]
    one_request_s = float(first.get("p50_ms") or 0.0) / 1000  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
    if peak <= 0 or one_request_s <= 0:
        raise SimulationInputError(f"{path}: the steps give no positive throughput and latency")
    workers = max(1, round(peak * one_request_s))
    capacity = peak * factor
    return ServiceModel(
        workers=workers,
        per_worker_rps=capacity / workers,
        description=f"{path.name}: {peak:,.0f} req/s measured x {factor:g} scaling = {capacity:,.0f} req/s "
        f"per instance; p50 {one_request_s * 1000:.1f} ms at {first.get('users', 1)} user(s) -> "  # pyright: ignore[reportUnknownMemberType]
        f"{workers} parallel worker(s)",
    )
