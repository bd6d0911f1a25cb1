"""The arithmetic of a capacity run: ramp steps, the operating point, scaling, fleet settings.

Pure functions over plain data, so every figure the tool prints can be checked with known
inputs. The fleet arithmetic itself (AWS's per-minute target formula, instances for a load,
surviving the loss of an Availability Zone) is ``stackcore.fleet``'s, shared with the program and
the policies; this module only decides which measured figure goes into it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from stackcore import fleet
from stackcore.instance_types import UnknownInstanceTypeError
from stackcore.instance_types import instance_type as stackcore_instance_type

DEFAULT_SAFETY_FACTOR = fleet.SAFETY_FACTOR

DEFAULT_OPERATING_FRACTION = 0.8
"""Run an instance at about 80% of the throughput it sustains within the objective, error-free."""

GENERATOR_SATURATED_PERCENT = 90.0
"""A Locust process above this share of one core is itself the bottleneck (Locust's own warning)."""


def ramp_users(start: int, step: int, max_users: int) -> list[int]:
    """Concurrency at each ramp step: ``start``, ``start + step``, ... and ``max_users`` last."""
    if start < 1:
        raise ValueError(f"the ramp starts at one user or more, got {start}")
    if step < 1:
        raise ValueError(f"the ramp step is one user or more, got {step}")
    if max_users < start:
        raise ValueError(f"the maximum ({max_users} users) is below the start ({start} users)")
    users = list(range(start, max_users + 1, step))
    if users[-1] != max_users:
        users.append(max_users)
    return users


def percentile_ms(sorted_times_ms: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of already sorted latencies: the smallest value with at least
    ``fraction`` of the samples at or below it (no interpolation: a p99 is a latency a request had)."""
    if not sorted_times_ms:
        raise ValueError("a percentile needs at least one sample")
    if not 0 < fraction <= 1:
        raise ValueError(f"a percentile fraction is in (0, 1], got {fraction}")
    rank = math.ceil(fraction * len(sorted_times_ms))
    return float(sorted_times_ms[rank - 1])


@dataclass(frozen=True, kw_only=True)
class StepResult:
    """What one ramp step measured, over its measurement window (after spawning and warm-up)."""

    users: int
    """Concurrent Locust users, each sending its next request as soon as the last one returns."""
    seconds: float
    """Length of the measurement window."""
    requests: int
    """Requests that completed in the window, failed ones included."""
    errors: int
    """Failed requests: a non-2xx status, a connection error or a timeout."""
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    """Latency percentiles of the window's requests; None when none completed."""
    error_kinds: Mapping[str, int] = field(default_factory=dict)
    """Failures by kind (``HTTP 503``, ``ConnectionRefusedError``...), to say why a step failed."""
    server_cpu_percent: float | None = None
    """The server's CPU over the window, in percent of the CPUs it may use (local: its whole
    process tree; deployed: CloudWatch ``CPUUtilization`` / vCPUs); None when not measured."""
    generator_cpu_percent: float | None = None
    """The busiest load generator process's CPU over the window, in percent of one core."""
    phase: str = "ramp"
    """``ramp`` (the planned users) or ``refine`` (users bisected between the last good and the
    first bad step)."""
    started_at: float | None = None
    ended_at: float | None = None
    """The window's wall-clock bounds (Unix seconds), to read the endpoint's metrics for it."""

    @property
    def generator_saturated(self) -> bool:
        """A generator process went above 90% of a core: the throughput may be its limit."""
        return (
            self.generator_cpu_percent is not None
            and self.generator_cpu_percent > GENERATOR_SATURATED_PERCENT
        )

    def __post_init__(self) -> None:
        if self.users < 1 or self.seconds <= 0:
            raise ValueError(f"a step has at least one user and a positive window, got {self}")
        if not 0 <= self.errors <= self.requests:
            raise ValueError(f"errors must be between 0 and the request count, got {self}")
        if self.requests and self.p99_ms is None:
            raise ValueError("a step with requests has latency percentiles")

    @property
    def rps(self) -> float:
        """Throughput: requests completed per second of the window."""
        return self.requests / self.seconds

    @property
    def error_rate(self) -> float:
        """Failed requests as a fraction of the requests completed (0 when none completed)."""
        return self.errors / self.requests if self.requests else 0.0

    def meets(self, p99_objective_ms: float) -> bool:
        """True when requests completed, none failed, and p99 is within the objective."""
        return (
            self.requests > 0
            and self.errors == 0
            and self.p99_ms is not None
            and self.p99_ms <= p99_objective_ms
        )

    def why_not(self, p99_objective_ms: float) -> str:
        """Why this step breaks the objective, in a user's words ('' when it meets it)."""
        if self.meets(p99_objective_ms):
            return ""
        if self.requests == 0:
            return f"no request completed in {self.seconds:.1f} s"
        reasons: list[str] = []
        if self.errors:
            kinds = ", ".join(f"{kind} x{count}" for kind, count in sorted(self.error_kinds.items()))
            reasons.append(f"{self.errors} error(s) ({kinds or 'unclassified'})")
        if self.p99_ms is not None and self.p99_ms > p99_objective_ms:
            reasons.append(f"p99 {self.p99_ms:.1f} ms > objective {p99_objective_ms:g} ms")
        return "; ".join(reasons)


def step_from_latencies(
    *,
    users: int,
    seconds: float,
    latencies_ms: Sequence[float],
    errors: int,
    error_kinds: Mapping[str, int] | None = None,
) -> StepResult:
    """Summarise one window's latencies (every completed request, failed ones included)."""
    ordered = sorted(latencies_ms)
    if not ordered:
        return StepResult(users=users, seconds=seconds, requests=0, errors=0, error_kinds=error_kinds or {})
    return StepResult(
        users=users,
        seconds=seconds,
        requests=len(ordered),
        errors=errors,
        p50_ms=percentile_ms(ordered, 0.50),
        p95_ms=percentile_ms(ordered, 0.95),
        p99_ms=percentile_ms(ordered, 0.99),
        error_kinds=dict(error_kinds or {}),
    )


def choose_operating_point(steps: Sequence[StepResult], p99_objective_ms: float) -> StepResult | None:
    """The step with the highest throughput among those that meet the objective (p99 within it,
    no errors); None when none does. A faster step that broke the objective never counts."""
    if p99_objective_ms <= 0:
        raise ValueError(f"the p99 objective must be positive, got {p99_objective_ms} ms")
    good = [step for step in steps if step.meets(p99_objective_ms)]
    return max(good, key=lambda step: step.rps, default=None)


def step_near_fraction(
    steps: Sequence[StepResult], capacity: StepResult, fraction: float, p99_objective_ms: float
) -> StepResult | None:
    """The fastest step that met the objective at or below ``fraction`` of the capacity's
    throughput: what latency looked like at the ~80% operating point (None if none ran there)."""
    ceiling = capacity.rps * fraction
    near = [step for step in steps if step.meets(p99_objective_ms) and step.rps <= ceiling]
    return max(near, key=lambda step: step.rps, default=None)


def vcpus_of(instance_type: str) -> int:
    """vCPUs of a SageMaker hosting instance type (the stack core's table)."""
    try:
        return stackcore_instance_type(instance_type).vcpus
    except UnknownInstanceTypeError as error:
        raise ValueError(
            f"no vCPU figure for {instance_type!r}: give --scale (target instance throughput / "
            f"measured throughput) instead ({error})"
        ) from None


@dataclass(frozen=True, kw_only=True)
class Scaling:
    """How a measured throughput becomes one target instance's throughput."""

    factor: float
    """Multiplier from the measured throughput to one target instance's."""
    explanation: str
    """The reasoning, printed and saved with the run."""


def scaling_for(
    *,
    measured_locally: bool,
    instance_type: str,
    local_cpus: int,
    endpoint_instances: int = 1,
    user_factor: float | None = None,
) -> Scaling:
    """The factor from the measured figure to one ``instance_type`` instance.

    A user's ``--scale`` wins. A local measurement is scaled by vCPUs (the server sizes its
    workers by cores, and XGBoost's predict is CPU-bound, so throughput grows about linearly
    with cores); a deployed measurement is divided by the instances that served it.
    """
    if user_factor is not None:
        if user_factor <= 0:
            raise ValueError(f"--scale must be positive, got {user_factor}")
        return Scaling(factor=user_factor, explanation=f"scaled by the given factor {user_factor:g}")
    if measured_locally:
        if local_cpus < 1:
            raise ValueError(f"the local server uses at least one CPU, got {local_cpus}")
        target = vcpus_of(instance_type)
        return Scaling(
            factor=target / local_cpus,
            explanation=(
                f"measured locally on {local_cpus} CPU(s), scaled by vCPUs to {instance_type} "
                f"({target} vCPUs): x{target / local_cpus:g}. The load generator shared those CPUs, "
                f"so this is an estimate: measure the deployed endpoint and trust that figure"
            ),
        )
    if endpoint_instances < 1:
        raise ValueError(f"the endpoint has at least one instance, got {endpoint_instances}")
    return Scaling(
        factor=1 / endpoint_instances,
        explanation=(
            f"measured on the deployed endpoint ({endpoint_instances} x {instance_type}); "
            f"per instance: the measurement / {endpoint_instances}"
        ),
    )


@dataclass(frozen=True, kw_only=True)
class FleetSettings:
    """The autoscaling settings derived from one instance's measured capacity."""

    instance_rps: float
    """MAX_RPS: requests/s one target instance sustains within the objective, error-free."""
    safety_factor: float
    target_invocations_per_minute: int
    """``SageMakerVariantInvocationsPerInstance`` target: MAX_RPS x safety factor x 60."""
    operating_fraction: float
    operating_rps: float
    """The ~80% operating point: requests/s an instance is meant to carry at most in steady use."""
    operating_invocations_per_minute: int
    base_rps: float
    instances_for_base: int
    """Instances that carry the base load at the operating point."""
    az_count: int
    min_instances: int
    """Fewest instances such that losing one AZ still leaves ``instances_for_base``."""
    peak_rps: float | None
    max_instances: int | None
    """Instances the scaling policy reaches at the peak with each at the target; None without a peak."""
    fixed_instances: int
    """Without autoscaling: a fleet that carries the peak (else the base) at the operating point
    and survives the loss of one AZ."""
    burstable: bool
    """A burstable type (ml.t*) cannot be autoscaled: the target must not be set for it."""

    @property
    def peak_rps_per_instance(self) -> float | None:
        """What each instance carries at the peak with the fleet at its maximum."""
        if self.peak_rps is None or self.max_instances is None:
            return None
        return self.peak_rps / self.max_instances


def derive_fleet(
    *,
    instance_rps: float,
    instance_type: str,
    base_rps: float = 0.0,
    peak_rps: float | None = None,
    az_count: int = 3,
    safety_factor: float = DEFAULT_SAFETY_FACTOR,
    operating_fraction: float = DEFAULT_OPERATING_FRACTION,
) -> FleetSettings:
    """Scaling target, minimum and maximum instance counts from one instance's capacity.

    - target: AWS's MAX_RPS x SAFETY_FACTOR x 60 (``stackcore.fleet.invocations_per_instance_target``);
    - minimum: the base load at the ~80% operating point must survive the loss of one AZ while
      the autoscaler replaces it (which takes minutes), so the fleet is sized for AZ loss;
    - maximum: at the peak the policy holds each instance at its target, so it needs
      peak / (target / 60) instances; never below the minimum;
    - fixed (no autoscaling, e.g. a burstable type): the peak at the operating point, surviving
      the loss of one AZ.
    """
    if not 0 < operating_fraction <= 1:
        raise ValueError(f"the operating fraction is in (0, 1], got {operating_fraction}")
    if base_rps < 0:
        raise ValueError(f"the base load cannot be negative, got {base_rps} req/s")
    if peak_rps is not None and peak_rps < base_rps:
        raise ValueError(f"the peak load ({peak_rps} req/s) is below the base load ({base_rps} req/s)")
    target = fleet.invocations_per_instance_target(instance_rps, safety_factor)
    operating_rps = instance_rps * operating_fraction
    for_base = fleet.instances_for_load(base_rps, operating_rps)
    minimum = fleet.instances_surviving_az_loss(for_base, az_count)
    maximum: int | None = None
    fixed = minimum
    if peak_rps is not None:
        maximum = max(minimum, fleet.instances_for_load(peak_rps, target / fleet.SECONDS_PER_MINUTE))
        fixed = fleet.instances_surviving_az_loss(fleet.instances_for_load(peak_rps, operating_rps), az_count)
    return FleetSettings(
        instance_rps=instance_rps,
        safety_factor=safety_factor,
        target_invocations_per_minute=target,
        operating_fraction=operating_fraction,
        operating_rps=operating_rps,
        operating_invocations_per_minute=fleet.invocations_per_instance_target(
            instance_rps, operating_fraction
        ),
        base_rps=base_rps,
        instances_for_base=for_base,
        az_count=az_count,
        min_instances=minimum,
        peak_rps=peak_rps,
        max_instances=maximum,
        fixed_instances=fixed,
        burstable=fleet.is_burstable(instance_type),
    )


LITTLES_LAW_DISAGREEMENT = 2.0
"""Users in flight and Little's law (throughput x median latency) more than this factor apart: the
load generator held requests outside the server, so the users overstate what the server held."""


def littles_law(step: StepResult) -> float | None:
    """Requests in flight by Little's law: throughput x time in the system. The step records no mean
    latency; its median is below the mean of these right-skewed latencies, so this reads low."""
    return None if step.p50_ms is None else step.rps * step.p50_ms / 1000


@dataclass(frozen=True, kw_only=True)
class ConcurrencySettings:
    """The concurrency figures (``SageMakerVariantConcurrentRequestsPerModelHighResolution``) from
    the requests in flight the ramp measured.

    In flight does not grow in proportion to throughput: requests queue as an instance nears its
    capacity, so half the capacity's in flight would let the instance run far hotter than half its
    throughput. The target is therefore the in flight measured where the invocations target puts
    an instance (MAX_RPS x the safety factor), and the capacity's in flight is the ceiling."""

    capacity_users: int
    """In flight at the capacity step: each user has one request outstanding."""
    capacity_littles_law: float | None
    target_step_users: int
    """In flight at the step the target is read from: the fastest that met the objective at or
    below the target throughput (else the slowest that met it)."""
    target_step_rps: float
    target_littles_law: float | None
    target_rps: float
    """The throughput the invocations target holds an instance at, as measured: capacity x safety."""
    scaling_factor: float
    """From the measurement to one target instance (in flight scales with throughput at one latency)."""
    safety_factor: float
    max_per_instance: int
    """``maxConcurrencyPerInstance``: the capacity's users x the scaling factor, rounded down (never
    claim more than was held within the objective)."""
    target_per_instance: int
    """``concurrencyPerInstanceTarget``: the target step's users, scaled to the target throughput and
    to one instance, rounded, at least 1 and at most the capacity's."""

    @property
    def disagrees(self) -> bool:
        """Little's law says the server held far fewer requests than the users had outstanding."""
        littles = self.capacity_littles_law
        return littles is not None and littles * LITTLES_LAW_DISAGREEMENT < self.capacity_users

    def lines(self) -> list[str]:
        """What the capacity report prints about it."""

        def littles(value: float | None) -> str:
            return "no latencies" if value is None else f"Little's law: {value:.1f}"

        lines = [
            "Concurrency (SageMakerVariantConcurrentRequestsPerModelHighResolution, per instance): "
            f"{self.capacity_users} in flight at the capacity ({littles(self.capacity_littles_law)}) "
            f"x {self.scaling_factor:g} = {self.max_per_instance} at most; target: {self.target_step_users} "
            f"in flight at {self.target_step_rps:,.1f} req/s ({littles(self.target_littles_law)}), "
            f"at the target's {self.target_rps:,.1f} req/s x {self.scaling_factor:g} = "
            f"{self.target_per_instance}"
        ]
        if self.disagrees:
            lines.append(
                f"warning: Little's law gives {self.capacity_littles_law:.1f} in flight for "
                f"{self.capacity_users} users: the load generator held requests outside the server, so "
                "the server held fewer than the users and the concurrency figures are upper bounds; "
                "measure with fewer users or from another machine"
            )
        return lines


def derive_concurrency(
    steps: Sequence[StepResult],
    capacity: StepResult,
    *,
    scaling_factor: float,
    p99_objective_ms: float,
    safety_factor: float = DEFAULT_SAFETY_FACTOR,
) -> ConcurrencySettings:
    """``maxConcurrencyPerInstance`` and ``concurrencyPerInstanceTarget`` from the ramp.

    A closed-loop load (each user sends its next request when the last returns) keeps ``users``
    requests in flight; Little's law (in flight = throughput x time in the system) checks it."""
    if scaling_factor <= 0 or safety_factor <= 0:
        raise ValueError(f"scaling and safety factors are positive, got {scaling_factor}, {safety_factor}")
    target_rps = capacity.rps * safety_factor
    good = [step for step in steps if step.meets(p99_objective_ms)] or [capacity]
    below = [step for step in good if step.rps <= target_rps]
    at_target = (
        max(below, key=lambda step: step.rps) if below else min(good, key=lambda step: step.rps)
    )
    ceiling = max(1, math.floor(capacity.users * scaling_factor))
    # At the step's latency, in flight grows in proportion to throughput (Little's law).
    in_flight = at_target.users * target_rps / at_target.rps * scaling_factor
    return ConcurrencySettings(
        capacity_users=capacity.users,
        capacity_littles_law=littles_law(capacity),
        target_step_users=at_target.users,
        target_step_rps=at_target.rps,
        target_littles_law=littles_law(at_target),
        target_rps=target_rps,
        scaling_factor=scaling_factor,
        safety_factor=safety_factor,
        max_per_instance=ceiling,
        target_per_instance=min(ceiling, max(1, round(in_flight))),
    )
