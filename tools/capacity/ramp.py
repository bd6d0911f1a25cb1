"""Which users to run next, when to stop, and which step becomes the operating point.

Pure logic over :class:`~tools.capacity.sizing.StepResult` sequences, shared by the Locust engine
(which asks :class:`Ramp` for the next step while it runs) and the command (which chooses the
operating point once every figure, CloudWatch's included, is in):

- **limits**: a step is good when requests completed, none failed, p99 is within the objective and
  the server's CPU (when measured) is at or under the CPU target (80% by default, the seed's rule:
  load-test to about 80% CPU, then autoscale);
- **knee refinement**: after the first planned step that breaks a limit, the users are bisected
  between the last good and the first bad step, so the last good step sits next to the ceiling
  rather than anywhere up to a whole ramp step below it;
- **saturation**: throughput that rises under 5% a step over two steps while p99 rises is a
  plateau, not headroom: the ramp stops and the point is taken before the plateau.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from tools.capacity.sizing import StepResult

DEFAULT_CPU_TARGET_PERCENT = 80.0
"""The seed's rule: load-test an instance to about 80% CPU, and scale out beyond that."""

SATURATION_GAIN_PER_STEP = 0.05
"""Throughput rising less than this per step (over two steps) has stopped rising."""
SATURATION_LATENCY_RISE = 1.25
"""...while p99 rose by at least this factor over the same two steps: the server is saturated."""


class Limit(enum.StrEnum):
    """What stopped the operating point from being higher."""

    LATENCY = "latency objective"
    ERRORS = "errors"
    CPU = "cpu target"
    SATURATION = "saturation"
    NONE = "none reached"
    """No step broke a limit: the ramp ended at its maximum users or a budget first."""


def broken_limit(step: StepResult, p99_objective_ms: float, cpu_target_percent: float | None) -> Limit | None:
    """The first limit ``step`` breaks (errors, then latency, then CPU), or None when it is good."""
    if step.errors:
        return Limit.ERRORS
    if step.requests == 0 or step.p99_ms is None or step.p99_ms > p99_objective_ms:
        return Limit.LATENCY
    if (
        cpu_target_percent is not None
        and step.server_cpu_percent is not None
        and step.server_cpu_percent > cpu_target_percent
    ):
        return Limit.CPU
    return None


def why_broken(step: StepResult, p99_objective_ms: float, cpu_target_percent: float | None) -> str:
    """A user's words for every limit ``step`` breaks ('' when it is good)."""
    reasons = [step.why_not(p99_objective_ms)] if not step.meets(p99_objective_ms) else []
    if (
        cpu_target_percent is not None
        and step.server_cpu_percent is not None
        and step.server_cpu_percent > cpu_target_percent
    ):
        reasons.append(f"server CPU {step.server_cpu_percent:.0f}% > target {cpu_target_percent:g}%")
    return "; ".join(reasons)


@dataclass(frozen=True, kw_only=True)
class Saturation:
    """A plateau: from ``base`` to ``detected`` (two planned steps) throughput barely rose while
    p99 did. ``plateau_users`` is the first step on the plateau."""

    base: StepResult
    plateau_users: int
    detected: StepResult
    gain_per_step: float

    def describe(self) -> str:
        return (
            f"saturation: from {users_text(self.base.users)} to {self.detected.users} throughput went "
            f"{self.base.rps:,.0f} -> {self.detected.rps:,.0f} req/s ({self.gain_per_step:+.1%} a step, "
            f"under {SATURATION_GAIN_PER_STEP:.0%}) while p99 went {self.base.p99_ms:.1f} -> "
            f"{self.detected.p99_ms:.1f} ms"
        )


def find_saturation(steps: Sequence[StepResult]) -> Saturation | None:
    """The first plateau in ``steps`` (planned ramp steps, in order), or None.

    Two steps are compared rather than one: a single step's throughput is noisy (844 -> 821 ->
    891 req/s is a flat line measured three times), while latency climbing tenfold is not."""
    for index in range(2, len(steps)):
        base, middle, last = steps[index - 2], steps[index - 1], steps[index]
        if not (base.requests and last.requests) or base.p99_ms is None or last.p99_ms is None:
            continue
        if last.users <= base.users:
            continue
        gain_per_step = (last.rps / base.rps) ** 0.5 - 1
        if gain_per_step < SATURATION_GAIN_PER_STEP and last.p99_ms >= base.p99_ms * SATURATION_LATENCY_RISE:
            return Saturation(
                base=base, plateau_users=middle.users, detected=last, gain_per_step=gain_per_step
            )
    return None


def users_text(count: int) -> str:
    return f"{count} user" if count == 1 else f"{count} users"


class Ramp:
    """The users of each step as the run goes: the planned steps, then a bisection of the knee.

    Call :meth:`next_users` for the next step's users (None: stop, and :attr:`stop_reason` says
    why), run it, and :meth:`record` the result. The engine adds its own stops (time and request
    budgets) on top."""

    def __init__(
        self,
        planned_users: Sequence[int],
        *,
        p99_objective_ms: float,
        cpu_target_percent: float | None = DEFAULT_CPU_TARGET_PERCENT,
        refine: bool = True,
    ) -> None:
        if not planned_users:
            raise ValueError("a ramp has at least one step")
        self.planned_users = list(planned_users)
        self.p99_objective_ms = p99_objective_ms
        self.cpu_target_percent = cpu_target_percent
        self.refine = refine
        self.steps: list[StepResult] = []
        self.stop_reason = ""
        self.saturation: Saturation | None = None
        self._next_planned = 0
        self._bounds: tuple[int, int] | None = None
        """(last good users, first bad users) once a planned step broke a limit."""
        self._first_broken = ""

    @property
    def planned_steps(self) -> list[StepResult]:
        return [step for step in self.steps if step.phase == "ramp"]

    def phase(self) -> str:
        return "ramp" if self._bounds is None else "refine"

    def _good(self, step: StepResult) -> bool:
        return broken_limit(step, self.p99_objective_ms, self.cpu_target_percent) is None

    def record(self, step: StepResult) -> None:
        self.steps.append(step)
        if self._bounds is None:
            self._next_planned += 1
            if not self._good(step):
                good = [s.users for s in self.steps if self._good(s) and s.users < step.users]
                self._bounds = (max(good, default=0), step.users)
                limit = broken_limit(step, self.p99_objective_ms, self.cpu_target_percent)
                broken = "CPU target exceeded" if limit is Limit.CPU else "objective broken"
                self._first_broken = (
                    f"{broken} at {users_text(step.users)}: "
                    f"{why_broken(step, self.p99_objective_ms, self.cpu_target_percent)}"
                )
                self.stop_reason = self._first_broken
            else:
                self.saturation = find_saturation(self.planned_steps)
                if self.saturation is not None:
                    self.stop_reason = self.saturation.describe()
            return
        low, high = self._bounds
        self._bounds = (step.users, high) if self._good(step) else (low, step.users)

    def next_users(self) -> int | None:
        if self.saturation is not None:
            return None
        if self._bounds is None:
            if self._next_planned < len(self.planned_users):
                return self.planned_users[self._next_planned]
            self.stop_reason = f"reached the maximum of {self.planned_users[-1]} users"
            return None
        low, high = self._bounds
        if not self.refine or high - low <= 1:
            if self.refine and any(step.phase == "refine" for step in self.steps):
                self.stop_reason = (
                    f"{self._first_broken}; knee refined to {users_text(low)} (good) and {high} (broken)"
                    if low
                    else f"{self._first_broken}; even 1 user broke it"
                )
            return None
        return (low + high) // 2

    def record_refinement_reason(self) -> None:
        """Say where the bisection had got to when a budget stopped it."""
        if self._bounds is not None:
            low, high = self._bounds
            self.stop_reason = (
                f"{self._first_broken}; knee refinement stopped by the budget "
                f"between {users_text(low)} (good) and {high} (broken)"
            )


@dataclass(frozen=True, kw_only=True)
class OperatingPoint:
    step: StepResult | None
    """The chosen step; None when no step was good."""
    limit: Limit
    """The limit that stopped it being higher (for no point: the limit the first step broke)."""
    explanation: str


def choose_operating_point(
    steps: Sequence[StepResult],
    p99_objective_ms: float,
    cpu_target_percent: float | None = DEFAULT_CPU_TARGET_PERCENT,
) -> OperatingPoint:
    """The step with the highest throughput among the good ones before any plateau, and which
    limit kept it there: the first step with more users that broke one, or the plateau."""
    if p99_objective_ms <= 0:
        raise ValueError(f"the p99 objective must be positive, got {p99_objective_ms} ms")
    saturation = find_saturation([step for step in steps if step.phase == "ramp"])
    candidates = [
        step
        for step in steps
        if saturation is None or step.users < saturation.plateau_users
        if broken_limit(step, p99_objective_ms, cpu_target_percent) is None
    ]
    chosen = max(candidates, key=lambda step: step.rps, default=None)
    floor = chosen.users if chosen is not None else 0
    broken_above = sorted(
        (
            step
            for step in steps
            if step.users > floor and broken_limit(step, p99_objective_ms, cpu_target_percent)
        ),
        key=lambda step: step.users,
    )
    if saturation is not None and (not broken_above or broken_above[0].users >= saturation.plateau_users):
        return OperatingPoint(step=chosen, limit=Limit.SATURATION, explanation=saturation.describe())
    if broken_above:
        first = broken_above[0]
        limit = broken_limit(first, p99_objective_ms, cpu_target_percent)
        assert limit is not None  # filtered above
        return OperatingPoint(
            step=chosen,
            limit=limit,
            explanation=(
                f"{users_text(first.users)}: {why_broken(first, p99_objective_ms, cpu_target_percent)}"
            ),
        )
    return OperatingPoint(
        step=chosen, limit=Limit.NONE, explanation="no step broke a limit: the server may sustain more"
    )
