"""The control plane both engines share: instances, CPU credits, health checks, autoscaling,
replacements, deployments and quotas, stepped once per simulated second.

An engine (fluid or per-request) plays the requests; once a second it hands :meth:`Fleet.tick` what
each instance did (CPU used, how long a /ping would wait, requests routed, requests outstanding) and
gets back the instances just taken out of service as unhealthy, whose queued requests fail. Every
decision here is SageMaker's or Application Auto Scaling's as documented (docs/simulator.md); the
figures are :mod:`tools.simulate.constants`.

Instances live in fixed slots (numpy arrays, so a 20-instance fleet over a day stays fast). A slot is
FREE, PENDING (launched, not yet serving), IN_SERVICE or TERMINATING (out of service, still billed;
a retired instance drains its queue meanwhile, an unhealthy one does not).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from tools.simulate.constants import Constants
from tools.simulate.scenario import FleetSpec, ScalingMetric
from tools.simulate.service import ServiceModel

FREE, PENDING, IN_SERVICE, TERMINATING = 0, 1, 2, 3


@dataclass(frozen=True, kw_only=True)
class FailureEvent:
    """A failure the user asked for: ``lose-instance``, ``lose-az`` or ``deploy`` at a minute."""

    kind: str
    minute: float


@dataclass(frozen=True, kw_only=True)
class Event:
    t_seconds: float
    kind: str
    detail: str


@dataclass(kw_only=True)
class _Deployment:
    generation: int
    started: float
    phase: str = "provisioning"
    phase_since: float = 0.0
    new_share: float = 0.0
    old_generation: int = 0


@dataclass(kw_only=True)
class _Scaling:
    invocations: float = 0.0
    concurrency_sum: float = 0.0
    concurrency_samples: int = 0
    out_streak_inv: int = 0
    in_streak_inv: int = 0
    out_streak_conc: int = 0
    in_streak_conc: int = 0
    last_out: float = -math.inf
    last_in: float = -math.inf
    history: list[tuple[float, str, float]] = field(default_factory=list)


class Fleet:
    """The instances of one variant and every rule that starts, stops or slows them."""

    def __init__(
        self,
        spec: FleetSpec,
        service: ServiceModel,
        constants: Constants,
        *,
        failures: list[FailureEvent],
        seed: int,
        initial_credits: list[float] | None = None,
    ) -> None:
        self.spec = spec
        self.service = service
        self.c = constants
        self.rng = np.random.default_rng(seed)
        largest = max(spec.max_instances, spec.initial_instances)
        slots = 2 * largest + spec.rolling_batch(largest) + 2
        self.slots = max(1, min(slots, max(spec.quota_instances, spec.initial_instances)))
        self._allocate(self.slots)
        self.zone_down = np.zeros(max(1, spec.az_count), dtype=bool)
        self.events: list[Event] = []
        self.desired = spec.initial_instances
        self.current_generation = 0
        self.deployment: _Deployment | None = None
        self.launch_queue: list[int] = []
        """Generations of launches waiting for quota."""
        self.scaling = _Scaling()
        self.instance_seconds = 0.0
        self.failures = sorted(failures, key=lambda f: f.minute)
        self._next_failure = 0
        self._next_transition = math.inf
        self._groups_cache: list[tuple[np.ndarray, float]] | None = None
        self.version = 0
        self._counted_version = -1
        self._active = 0
        self._in_service = 0
        self.zeros = np.zeros(self.slots)
        self._ping_failures_seen = False
        self._snapshot_version = -1
        self._snapshot = (0, 0)
        self._health_interval = int(constants["health_check_interval_s"])
        self._inv_period = int(constants["invocations_metric_period_s"])
        self._conc_period = int(constants["concurrency_metric_period_s"])
        """Bumped whenever routing or capacity may change (engines cache what they derive from it)."""
        self._quota_warned = False
        if spec.quota_instances < spec.initial_instances:
            self._event(
                0,
                "quota",
                f"the quota allows {spec.quota_instances} instance(s), the stack starts "
                f"{spec.initial_instances}: only {spec.quota_instances} run",
            )
        for index in range(min(spec.initial_instances, spec.quota_instances, self.slots)):
            balance = None
            if initial_credits:
                balance = initial_credits[index % len(initial_credits)]
            self._start(0.0, generation=0, ready=True, credit_balance=balance)

    def _allocate(self, n: int) -> None:
        """The per-slot arrays."""
        self.state = np.zeros(n, dtype=np.int8)
        self.ready_at = np.full(n, math.inf)
        self.gone_at = np.full(n, math.inf)
        self.az = np.zeros(n, dtype=np.int64)
        self.generation = np.zeros(n, dtype=np.int64)
        self.dead = np.zeros(n, dtype=bool)
        self.draining = np.zeros(n, dtype=bool)
        self.replace = np.zeros(n, dtype=bool)
        self.launch_credits = np.zeros(n)
        self.earned_credits = np.zeros(n)
        self.exhausted = np.zeros(n, dtype=bool)
        self.ping_failures = np.zeros(n, dtype=np.int64)
        self.cpu_cap = np.ones(n)
        self.label = np.zeros(n, dtype=np.int64)
        """Instance number shown in events (1, 2, ... in launch order)."""
        self._launched = 0

    # Reading the state

    @property
    def burstable(self) -> bool:
        return self.spec.burstable is not None

    def active_count(self) -> int:
        return int(np.count_nonzero(self.state != FREE))

    def count(self, state: int) -> int:
        return int(np.count_nonzero(self.state == state))

    def counts(self) -> tuple[int, int]:
        """Instances in service and pending (cached until the fleet changes)."""
        if self._snapshot_version != self.version:
            self._snapshot_version = self.version
            self._snapshot = (self.count(IN_SERVICE), self.count(PENDING))
        return self._snapshot

    def serving_mask(self) -> np.ndarray:
        """Slots that work on their queue: in service, or retired and draining."""
        return ((self.state == IN_SERVICE) | ((self.state == TERMINATING) & self.draining)) & ~self.dead

    def credit_balance(self) -> np.ndarray:
        return self.launch_credits + self.earned_credits

    def routing_groups(self) -> list[tuple[np.ndarray, float]]:
        """Routable slots grouped by fleet (blue, green), each with its share of the traffic."""
        if self._groups_cache is not None:
            return self._groups_cache
        routable = self.state == IN_SERVICE
        groups: list[tuple[np.ndarray, float]] = []
        deployment = self.deployment
        if deployment is not None and deployment.phase in ("shifting", "baking"):
            new = np.flatnonzero(routable & (self.generation == deployment.generation))
            old = np.flatnonzero(routable & (self.generation != deployment.generation))
            shares = [(new, deployment.new_share), (old, 1.0 - deployment.new_share)]
            shares = [(idx, share) for idx, share in shares if len(idx) and share > 0]
            total = sum(share for _, share in shares)
            groups = [(idx, share / total) for idx, share in shares]
            if not groups and (len(new) or len(old)):
                groups = [(np.flatnonzero(routable), 1.0)]
        else:
            idx = np.flatnonzero(routable)
            if len(idx):
                groups = [(idx, 1.0)]
        self._groups_cache = groups
        return groups

    # Changing it

    def _event(self, t: float, kind: str, detail: str) -> None:
        self.events.append(Event(t_seconds=float(t), kind=kind, detail=detail))

    def _changed(self) -> None:
        self._groups_cache = None
        self.version += 1

    def _zone_for_launch(self) -> int | None:
        """The healthy zone with the fewest instances (SageMaker spreads a fleet over its subnets)."""
        zones = np.flatnonzero(~self.zone_down)
        if not len(zones):
            return None
        counts = np.array([np.count_nonzero((self.state != FREE) & (self.az == z)) for z in zones])
        return int(zones[int(np.argmin(counts))])

    def _start(
        self, t: float, *, generation: int, ready: bool = False, credit_balance: float | None = None
    ) -> bool:
        """Launch one instance if the quota and a zone allow it; False (and queued) otherwise."""
        zone = self._zone_for_launch()
        free = np.flatnonzero(self.state == FREE)
        if zone is None or not len(free) or self.active_count() >= self.spec.quota_instances:
            if not self._quota_warned:
                self._event(
                    t,
                    "quota",
                    f"launch held back: {self.active_count()} instance(s) running, quota "
                    f"{self.spec.quota_instances}" + ("" if zone is not None else " (no healthy zone)"),
                )
                self._quota_warned = True
            self.launch_queue.append(generation)
            return False
        slot = int(free[0])
        self._launched += 1
        self.state[slot] = IN_SERVICE if ready else PENDING
        self.ready_at[slot] = t if ready else t + self.c["launch_s"]
        self.gone_at[slot] = math.inf
        self.az[slot] = zone
        self.generation[slot] = generation
        self.dead[slot] = False
        self.draining[slot] = False
        self.replace[slot] = False
        self.exhausted[slot] = False
        self.ping_failures[slot] = 0
        self.label[slot] = self._launched
        self.cpu_cap[slot] = 1.0
        if self.spec.burstable is not None:
            launch = self.spec.burstable.launch_credits
            balance = launch if credit_balance is None else credit_balance
            self.launch_credits[slot] = min(balance, launch)
            self.earned_credits[slot] = min(max(0.0, balance - launch), self.spec.burstable.max_earned)
            self._update_cap(np.array([slot]))
        if not ready:
            self._next_transition = min(self._next_transition, self.ready_at[slot])
            self._event(
                t,
                "launch",
                f"instance {self._launched} launched in zone {zone} (serves after {self.c['launch_s']:g} s)",
            )
        self._changed()
        return True

    def _retire(self, t: float, slots: np.ndarray, *, unhealthy: bool, reason: str) -> None:
        for slot in slots:
            self.state[slot] = TERMINATING
            self.gone_at[slot] = t + self.c["termination_s"]
            self.draining[slot] = not unhealthy
            self.replace[slot] = unhealthy
            self._next_transition = min(self._next_transition, self.gone_at[slot])
            self._event(t, "unhealthy" if unhealthy else "retire", f"instance {self.label[slot]} {reason}")
        self._changed()

    def _update_cap(self, slots: np.ndarray) -> None:
        burst = self.spec.burstable
        if burst is None:
            return
        balance = self.launch_credits[slots] + self.earned_credits[slots]
        # One credit is one vCPU-minute: a balance of b lets the instance run b*60/vcpus of one
        # second above its baseline.
        cap = np.minimum(1.0, burst.baseline_per_vcpu + balance * 60 / self.spec.vcpus)
        if not np.array_equal(cap, self.cpu_cap[slots]):
            self.cpu_cap[slots] = cap
            self._changed()

    # The second

    def tick(
        self,
        t: float,
        *,
        cpu_used: np.ndarray | None,
        ping_wait_s: np.ndarray,
        invocations: float,
        outstanding: float,
    ) -> np.ndarray:
        """Advance the control plane past second ``t``; the slots just marked unhealthy.

        ``cpu_used`` is each slot's CPU this second as a fraction of the instance (read for
        burstable types only)."""
        if self._counted_version != self.version:
            self._counted_version = self.version
            self._active = self.active_count()
            self._in_service = self.count(IN_SERVICE)
        self.instance_seconds += self._active
        if self.burstable:
            self._credits(t, self.zeros if cpu_used is None else cpu_used)
        if t + 1 >= self._next_transition:
            self._transitions(t + 1)
        while (
            self._next_failure < len(self.failures) and self.failures[self._next_failure].minute * 60 <= t + 1
        ):
            self._fail(t + 1, self.failures[self._next_failure])
            self._next_failure += 1
        unhealthy = np.zeros(0, dtype=np.int64)
        if int(t + 1) % self._health_interval == 0:
            unhealthy = self._health_check(t + 1, ping_wait_s)
        if self.deployment is not None:
            self._advance_deployment(t + 1)
        if self.spec.autoscaling and self.deployment is None:
            self._autoscale(t + 1, invocations, outstanding)
        if self.launch_queue and int(t + 1) % 10 == 0:
            waiting, self.launch_queue = self.launch_queue, []
            for generation in waiting:
                self._start(t + 1, generation=generation)
        return unhealthy

    def can_batch(self, t: int, seconds: int) -> bool:
        """True when seconds ``t``..``t+seconds-1`` change nothing but sums: no credits to track, no
        launch, termination, failure or deployment due, no dead instance, and every period (health
        checks, metrics) a multiple of the batch, so its checks fall on the batch's last second."""
        end = t + seconds
        return bool(
            not self.burstable
            and self.deployment is None
            and not self.launch_queue
            and self._next_transition > end
            and (
                self._next_failure >= len(self.failures)
                or self.failures[self._next_failure].minute * 60 > end
            )
            and not bool(self.dead.any())
            and self._health_interval % seconds == 0
            and self._inv_period % seconds == 0
            and self._conc_period % seconds == 0
            and end % seconds == 0
        )

    def tick_batch(self, t: int, seconds: int, *, invocations: float, outstanding: float) -> None:
        """``seconds`` quiet seconds at once (see :meth:`can_batch`): sums, then the checks that fall
        on the last one. No request waits, so every ping answers at once."""
        if self._counted_version != self.version:
            self._counted_version = self.version
            self._active = self.active_count()
            self._in_service = self.count(IN_SERVICE)
        self.instance_seconds += self._active * seconds
        end = t + seconds
        # No request waits and no instance is dead: every health check passes.
        if end % self._health_interval == 0 and self._ping_failures_seen:
            self.ping_failures[:] = 0
            self._ping_failures_seen = False
        if self.spec.autoscaling:
            self._autoscale(end, invocations, outstanding, samples=seconds)

    def _credits(self, t: float, cpu_used: np.ndarray) -> None:
        burst = self.spec.burstable
        assert burst is not None
        active = self.state != FREE
        # Credits are vCPU-minutes: earned at a fixed rate, spent by every CPU second used;
        # launch credits go first and do not count toward the maximum balance.
        net = np.where(active, burst.credits_per_hour / 3600 - cpu_used * (self.spec.vcpus / 60), 0.0)
        spend = np.maximum(-net, 0.0)
        from_launch = np.minimum(spend, self.launch_credits)
        self.launch_credits -= from_launch
        earned = self.earned_credits + np.maximum(net, 0.0) - (spend - from_launch)
        self.earned_credits = np.clip(earned, 0.0, burst.max_earned)
        balance = self.launch_credits + self.earned_credits
        empty = active & (balance <= 1e-9) & ~self.exhausted
        if empty.any():
            for slot in np.flatnonzero(empty):
                self.exhausted[slot] = True
                self._event(
                    t + 1,
                    "credits",
                    f"instance {self.label[slot]} out of CPU credits: held to its "
                    f"{burst.baseline_per_vcpu:.0%} per vCPU baseline",
                )
        cap = np.where(
            active, np.minimum(1.0, burst.baseline_per_vcpu + balance * 60 / self.spec.vcpus), self.cpu_cap
        )
        if not np.array_equal(cap, self.cpu_cap):
            self.cpu_cap = cap
            self._changed()

    def _transitions(self, now: float) -> None:
        ready = np.flatnonzero((self.state == PENDING) & (self.ready_at <= now))
        for slot in ready:
            if self.zone_down[self.az[slot]]:
                continue
            self.state[slot] = IN_SERVICE
            self._event(now, "in-service", f"instance {self.label[slot]} in service")
        gone = np.flatnonzero((self.state == TERMINATING) & (self.gone_at <= now))
        for slot in gone:
            self.state[slot] = FREE
            self.dead[slot] = False
            self._event(now, "terminated", f"instance {self.label[slot]} terminated")
            if self.replace[slot]:
                self._start(now, generation=int(self.generation[slot]))
        if len(ready) or len(gone):
            self._changed()
        pending = self.ready_at[self.state == PENDING]
        terminating = self.gone_at[self.state == TERMINATING]
        self._next_transition = min(
            float(pending.min()) if len(pending) else math.inf,
            float(terminating.min()) if len(terminating) else math.inf,
        )

    def _fail(self, now: float, failure: FailureEvent) -> None:
        if failure.kind == "deploy":
            self._start_deployment(now)
            return
        candidates = np.flatnonzero((self.state == IN_SERVICE) & ~self.dead)
        if not len(candidates):
            self._event(now, failure.kind, "no instance in service to lose")
            return
        if failure.kind == "lose-instance":
            slot = int(self.rng.choice(candidates))
            self.dead[slot] = True
            self._changed()
            self._event(now, "lose-instance", f"instance {self.label[slot]} stops answering")
            return
        zones = sorted({int(self.az[s]) for s in candidates})
        zone = int(self.rng.choice(zones))
        self.zone_down[zone] = True
        lost = np.flatnonzero((self.state != FREE) & (self.az == zone))
        self.dead[lost] = True
        self._changed()
        self._event(now, "lose-az", f"zone {zone} lost with {len(lost)} instance(s)")
        pending = lost[self.state[lost] == PENDING]
        if len(pending):
            self._retire(now, pending, unhealthy=True, reason="never came up (its zone is lost)")

    def _health_check(self, now: float, ping_wait_s: np.ndarray) -> np.ndarray:
        checked = self.state == IN_SERVICE
        failed = checked & (self.dead | (ping_wait_s > self.c["ping_timeout_s"]))
        self.ping_failures = np.where(failed, self.ping_failures + 1, 0)
        self._ping_failures_seen = bool(failed.any())
        unhealthy = np.flatnonzero(checked & (self.ping_failures >= int(self.c["health_check_failures"])))
        if len(unhealthy):
            self._retire(
                now,
                unhealthy,
                unhealthy=True,
                reason="failed its health checks: out of service, replaced after termination",
            )
        return unhealthy

    # Autoscaling: target tracking as Application Auto Scaling does it.

    def _autoscale(  # noqa: PLR0912, PLR0915
        self, now: float, invocations: float, outstanding: float, samples: int = 1
    ) -> None:
        s = self.scaling
        spec = self.spec
        s.invocations += invocations
        s.concurrency_sum += outstanding
        s.concurrency_samples += samples
        second = int(now)
        if second % self._inv_period and second % self._conc_period:
            return  # no datapoint ends this second
        in_service = max(1, self._in_service)
        out_needed = int(self.c["scale_out_datapoints"])
        in_needed = int(self.c["scale_in_datapoints"])
        low = self.c["scale_in_threshold_fraction"]
        want_out: float | None = None
        want_in: float | None = None
        uses_invocations = spec.scaling_metric is not ScalingMetric.CONCURRENCY
        uses_concurrency = spec.scaling_metric is not ScalingMetric.INVOCATIONS
        inv_period = int(self.c["invocations_metric_period_s"])
        conc_period = int(self.c["concurrency_metric_period_s"])
        inv_ready = int(now) % inv_period == 0
        conc_ready = int(now) % conc_period == 0
        if uses_invocations and inv_ready:
            per_minute = s.invocations / in_service * 60 / inv_period
            s.invocations = 0.0
            target = spec.invocations_target_per_minute
            s.out_streak_inv = s.out_streak_inv + 1 if per_minute > target else 0
            s.in_streak_inv = s.in_streak_inv + 1 if per_minute < low * target else 0
            if s.out_streak_inv >= out_needed:
                want_out = per_minute / target
            if s.in_streak_inv >= in_needed:
                want_in = per_minute / target
        elif not uses_invocations:
            s.invocations = 0.0
        if uses_concurrency and conc_ready:
            per_instance = s.concurrency_sum / max(1, s.concurrency_samples) / in_service
            s.concurrency_sum, s.concurrency_samples = 0.0, 0
            target = spec.concurrency_target
            s.out_streak_conc = s.out_streak_conc + 1 if per_instance > target else 0
            # Scale-in stays as slow as with a standard metric: 15 minutes of datapoints.
            in_points = in_needed * inv_period // conc_period
            s.in_streak_conc = s.in_streak_conc + 1 if per_instance < low * target else 0
            if s.out_streak_conc >= out_needed:
                ratio = per_instance / target
                want_out = max(want_out or 0.0, ratio)
            concurrency_in = s.in_streak_conc >= in_points
            if spec.scaling_metric is ScalingMetric.CONCURRENCY:
                want_in = per_instance / target if concurrency_in else None
            elif want_in is not None and not concurrency_in:
                want_in = None  # with both metrics, scale in only when both say so
        elif not uses_concurrency:
            s.concurrency_sum, s.concurrency_samples = 0.0, 0
        if want_out is not None and now - s.last_out >= spec.scale_out_cooldown_s:
            new = min(spec.max_instances, max(self.desired + 1, math.ceil(self.desired * want_out)))
            if new > self.desired:
                self._scale(now, new, f"scale-out to {new} (metric at {want_out:.0%} of target)")
                s.last_out = now
                s.out_streak_inv = s.out_streak_conc = 0
        elif (
            want_in is not None
            and now - s.last_in >= spec.scale_in_cooldown_s
            and now - s.last_out >= spec.scale_out_cooldown_s
        ):
            new = max(spec.min_instances, math.ceil(self.desired * want_in))
            if new < self.desired:
                self._scale(now, new, f"scale-in to {new} (metric at {want_in:.0%} of target)")
                s.last_in = now
                s.in_streak_inv = s.in_streak_conc = 0

    def _scale(self, now: float, new: int, why: str) -> None:
        self._event(now, "scaling", why)
        self.scaling.history.append((now, "out" if new > self.desired else "in", new))
        if new > self.desired:
            for _ in range(new - self.desired):
                self._start(now, generation=self.current_generation)
        else:
            serving = np.flatnonzero(self.state == IN_SERVICE)
            newest = serving[np.argsort(-self.label[serving])][: self.desired - new]
            self._retire(now, newest, unhealthy=False, reason="retired by scale-in")
        self.desired = new

    # Deployments: blue/green (with its traffic shifting) or rolling, as the stack declares.

    def _start_deployment(self, now: float) -> None:
        if self.deployment is not None:
            self._event(now, "deploy", "a deployment is already running: this one is refused")
            return
        spec = self.spec
        fleet = self.desired
        extra = fleet if spec.update_mode.value == "blue-green" else spec.rolling_batch(fleet)
        if self.active_count() + extra > spec.quota_instances:
            self._event(
                now,
                "deploy",
                f"UpdateEndpoint fails: {spec.update_mode.value} needs "
                f"{self.active_count() + extra} instances at once, the quota is {spec.quota_instances}",
            )
            return
        generation = self.current_generation + 1
        self.deployment = _Deployment(
            generation=generation, started=now, phase_since=now, old_generation=self.current_generation
        )
        self._event(now, "deploy", f"{spec.update_mode.value} deployment starts ({fleet} instance(s))")
        count = fleet if spec.update_mode.value == "blue-green" else min(extra, fleet)
        for _ in range(count):
            self._start(now, generation=generation)

    def _advance_deployment(self, now: float) -> None:
        d = self.deployment
        assert d is not None
        spec = self.spec
        new_in_service = np.count_nonzero((self.state == IN_SERVICE) & (self.generation == d.generation))
        old_serving = np.flatnonzero((self.state == IN_SERVICE) & (self.generation != d.generation))
        if spec.update_mode.value == "rolling":
            if d.phase == "provisioning":
                new_pending = np.count_nonzero((self.state == PENDING) & (self.generation == d.generation))
                if new_pending == 0 and now - d.phase_since >= 1 and not self.launch_queue:
                    batch = old_serving[np.argsort(self.label[old_serving])][
                        : spec.rolling_batch(self.desired)
                    ]
                    self._retire(now, batch, unhealthy=False, reason="replaced by the rolling update")
                    d.phase, d.phase_since = "waiting", now
            elif d.phase == "waiting" and now - d.phase_since >= spec.rolling_wait_s:
                if not len(old_serving):
                    self._finish_deployment(now)
                    return
                count = min(spec.rolling_batch(self.desired), len(old_serving))
                for _ in range(count):
                    self._start(now, generation=d.generation)
                d.phase, d.phase_since = "provisioning", now
            return
        # Blue/green: provision the whole green fleet, shift traffic, bake, then retire blue.
        if d.phase == "provisioning":
            if new_in_service >= self.desired:
                d.phase, d.phase_since = "shifting", now
                first = (
                    spec.traffic_step_percent / 100 if spec.traffic_routing in ("CANARY", "LINEAR") else 1.0
                )
                d.new_share = min(1.0, first)
                self._event(now, "deploy", f"traffic shift: {d.new_share:.0%} to the new fleet")
                self._changed()
        elif d.phase == "shifting" and now - d.phase_since >= spec.traffic_wait_s:
            if d.new_share >= 1.0:
                d.phase, d.phase_since = "baking", now
            else:
                step = 1.0 if spec.traffic_routing == "CANARY" else spec.traffic_step_percent / 100
                d.new_share = min(1.0, d.new_share + step)
                d.phase_since = now
                self._event(now, "deploy", f"traffic shift: {d.new_share:.0%} to the new fleet")
                self._changed()
        elif d.phase == "baking" and now - d.phase_since >= spec.termination_wait_s:
            self._retire(now, old_serving, unhealthy=False, reason="retired with the old fleet")
            self._finish_deployment(now)

    def _finish_deployment(self, now: float) -> None:
        d = self.deployment
        assert d is not None
        self.current_generation = d.generation
        self.deployment = None
        self._event(now, "deploy", f"deployment done after {now - d.started:.0f} s")
        self._changed()
