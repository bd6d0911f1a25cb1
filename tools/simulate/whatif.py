"""What-if lines for ``make plan``: what a stack does through the failures that matter, from the stack
alone.

Each scenario holds the stack's declared peak (``expectedPeakRps``) long enough for autoscaling to
settle, then loses one Availability Zone, loses one instance, or deploys, and reads the minutes after
it: "lose one AZ at peak: N% of requests fail for M minutes, back to normal after K minutes". An
instance's capacity comes from the stack's own scaling target, inverting AWS's formula
(target = MAX_RPS x 0.5 x 60); ``make capacity`` measures it, ``make simulate --capacity`` uses it.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stackcore import StackConfigError, StackSettings, fleet, load_stack
from tools.simulate import fast, service
from tools.simulate.control import FailureEvent
from tools.simulate.inputs import SimulationInput
from tools.simulate.outcome import WINDOW_S, Outcome
from tools.simulate.scenario import SimulationInputError, fleet_from_stack
from tools.simulate.traffic import Traffic

SETTLE_MINUTES = 5
AFTER_MINUTES = 30
DEGRADED_FAILED_FRACTION = 0.001
"""A minute with more than 0.1% of its requests failed is not normal."""

SCENARIOS: tuple[tuple[str, str], ...] = (
    ("lose one AZ at peak", "lose-az"),
    ("lose one instance at peak", "lose-instance"),
    ("deploy at peak", "deploy"),
)


@dataclass(frozen=True, kw_only=True)
class WhatIf:
    scenario: str
    failed_percent: float
    """Failed share of the requests offered in the minutes that had failures."""
    failed_minutes: int
    slow_minutes: int
    """Minutes with p99 over the stack's latency objective."""
    back_to_normal_minutes: int | None
    """Minutes from the event to the end of the last degraded minute; None if never degraded."""
    still_degraded: bool
    already_slow: bool = False
    """p99 was over the objective before the event, at this load."""

    def line(self, objective_ms: float) -> str:
        note = f" (p99 is over {objective_ms:g} ms at this load even before)" if self.already_slow else ""
        if self.back_to_normal_minutes is None:
            if self.already_slow:
                return f"{self.scenario}: no request fails{note}"
            return f"{self.scenario}: no request fails and p99 stays within {objective_ms:g} ms"
        parts = []
        if self.failed_minutes:
            parts.append(f"{self.failed_percent:.1f}% of requests fail for {self.failed_minutes} minute(s)")
        if self.slow_minutes:
            parts.append(f"p99 over {objective_ms:g} ms for {self.slow_minutes} minute(s)")
        end = (
            f"not back to normal within {AFTER_MINUTES} minutes"
            if self.still_degraded
            else f"back to normal after {self.back_to_normal_minutes} minute(s)"
        )
        return f"{self.scenario}: {', '.join(parts)}, {end}{note}"


def instance_rps_from_target(settings: StackSettings) -> float:
    return fleet.max_rps_from_invocations_target(settings.invocations_per_instance_target)


def play(
    settings: StackSettings, kind: str, *, peak_rps: float, instance_rps: float, seed: int = 0
) -> Outcome:
    spec = fleet_from_stack(settings)
    if spec.autoscaling:
        # Start where target tracking settles at the peak, so the scenario starts from normal.
        per_instance = spec.invocations_target_per_minute / 60
        settled = min(spec.max_instances, max(spec.min_instances, math.ceil(peak_rps / per_instance)))
        spec = dataclasses.replace(spec, initial_instances=min(settled, spec.quota_instances))
    seconds = (SETTLE_MINUTES + AFTER_MINUTES) * 60
    run = SimulationInput(
        spec=spec,
        service=service.from_instance_rps(instance_rps, spec.vcpus),
        traffic=Traffic(name=f"{peak_rps:g} req/s", rps=np.full(seconds, float(peak_rps))),
        failures=(FailureEvent(kind=kind, minute=SETTLE_MINUTES),),
        seed=seed,
    )
    return fast.simulate(run)


def judge(scenario: str, outcome: Outcome) -> WhatIf:
    w = outcome.windows
    per_minute = 60 // WINDOW_S
    minutes = w.count // per_minute
    shape = (minutes, per_minute)
    offered = w.offered[: minutes * per_minute].reshape(shape).sum(axis=1)
    failed = (w.throttled + w.shed + w.timeout)[: minutes * per_minute].reshape(shape).sum(axis=1)
    objective_s = outcome.spec.latency_objective_ms / 1000
    slow = np.nan_to_num(w.minute_p99_s[:minutes], nan=0.0) > objective_s
    after = slice(SETTLE_MINUTES, SETTLE_MINUTES + AFTER_MINUTES)
    failing = (failed[after] > DEGRADED_FAILED_FRACTION * np.maximum(offered[after], 1e-9)) & (
        failed[after] > 0
    )
    # A load the stack is already too slow for is not degradation the event caused: said once.
    already_slow = bool(slow[:SETTLE_MINUTES].all())
    slow_after = slow[after] & (not already_slow)
    degraded = failing | slow_after
    if not degraded.any():
        return WhatIf(
            scenario=scenario,
            failed_percent=0.0,
            failed_minutes=0,
            slow_minutes=0,
            back_to_normal_minutes=None,
            still_degraded=False,
            already_slow=already_slow,
        )
    last = int(np.flatnonzero(degraded)[-1])
    failed_share = float(failed[after][failing].sum() / max(offered[after][failing].sum(), 1e-9))
    return WhatIf(
        scenario=scenario,
        failed_percent=100 * failed_share,
        failed_minutes=int(failing.sum()),
        slow_minutes=int(slow_after.sum()),
        back_to_normal_minutes=last + 1,
        still_degraded=last >= AFTER_MINUTES - 2,
        already_slow=already_slow,
    )


def what_ifs(settings: StackSettings) -> list[WhatIf]:
    peak = settings.expected_peak_rps
    capacity = instance_rps_from_target(settings)
    return [
        judge(f"{title} ({peak:g} req/s)", play(settings, kind, peak_rps=peak, instance_rps=capacity))
        for title, kind in SCENARIOS
    ]


def report(stack: str, project_dir: Path, overrides: Mapping[str, Any] | None = None) -> str:
    """The plan's what-if section (a few lines); the reason when the stack declares no peak."""
    values = {k: v if isinstance(v, str) else json.dumps(v) for k, v in (overrides or {}).items()}
    header = "\nWhat if (fleet simulator, docs/simulator.md):\n"
    try:
        settings = load_stack(project_dir, stack, values)
        fleet_from_stack(settings)
    except (StackConfigError, SimulationInputError) as error:
        return header + f"  not simulated: {error}\n"
    if not settings.expected_peak_rps:
        return header + "  declare expectedPeakRps (and expectedBaseRps) in the stack to see what-if lines\n"
    capacity = instance_rps_from_target(settings)
    lines = [
        f"  an instance serves {capacity:,.0f} req/s (from invocationsPerInstanceTarget "
        f"{settings.invocations_per_instance_target:,}, AWS's formula); `make simulate` plays more"
    ]
    objective = float(settings.model_latency_p99_ms)
    lines += [f"  {w.line(objective)}" for w in what_ifs(settings)]
    return header + "\n".join(lines) + "\n"
