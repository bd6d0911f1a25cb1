"""The reference engine: every request a SimPy process, for small scales and for checking the fast one.

Arrivals are Poisson at the offered rate of each second; each goes through the same front door and
is routed to one instance (uniformly at random, or to the one with the fewest outstanding requests);
an instance is a ``simpy.Resource`` with one slot per worker, each request a service time of the
service model's mean and shape (:func:`tools.simulate.service.shape`: exponential, hyperexponential or
delayed exponential) at the worker's rate times the instance's CPU cap. A caller gives up at its
timeout (the instance still does the work if the request reaches a worker); SageMaker drops a request
that waited 60 s. The
control plane is the same :class:`~tools.simulate.control.Fleet` the fast engine uses, ticked once a
second with what the requests did. It costs a few microseconds per request: keep it to small fleets.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import Any

import numpy as np
import simpy

from tools.simulate.control import IN_SERVICE, Fleet
from tools.simulate.inputs import SimulationInput
from tools.simulate.outcome import WINDOW_S, Outcome, Windows
from tools.simulate.scenario import Routing


def _nearest_rank(values: list[float], fraction: float = 0.99) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


class _ReferenceEngine:
    def __init__(self, run: SimulationInput) -> None:
        spec, service, c = run.spec, run.service, run.constants
        self.run = run
        self.spec = spec
        self.env = simpy.Environment()
        self.fleet = Fleet(
            spec,
            service,
            c,
            failures=list(run.failures),
            seed=run.seed,
            initial_credits=list(run.initial_credits),
        )
        self.rng = np.random.default_rng([run.seed, 1])
        slots = self.fleet.slots
        self.total = math.ceil(run.total_seconds / WINDOW_S) * WINDOW_S
        self.windows = Windows(count=self.total // WINDOW_S)
        self.latencies: list[list[float]] = [[] for _ in range(self.windows.count)]
        self.client_timeout = min(run.client_timeout_s, run.sagemaker_timeout_s)
        self.sagemaker_timeout = run.sagemaker_timeout_s
        self.workers = service.workers
        self.per_worker = service.per_worker_rps
        self.full_rps = service.instance_rps
        self.exponential = service.scv == 1.0
        self.delay = service.shape.delay
        self.phases = service.shape.phases()
        self.resources: list[simpy.Resource | None] = [None] * slots
        self.resource_label = [0] * slots
        self.active: list[set[Any]] = [set() for _ in range(slots)]
        self.work = np.zeros(slots)
        self.in_flight = 0
        self.invocations = 0
        self.arrival_of: dict[Any, float] = {}
        self.api_rps = c["api_gateway_account_rps"]
        self.lambda_limit = c["lambda_concurrency_limit"]
        self.queue_limit = c["instance_queue_limit"]
        self.ping_fraction = c["ping_queue_fraction"]
        self.credits: dict[int, list[tuple[float, float]]] = {}

    # Recording

    def _window(self, t: float) -> int:
        return min(self.windows.count - 1, int(t // WINDOW_S))

    def _fail(self, arrival: float, reason: str) -> None:
        if reason == "timeout":
            getattr(self.windows, reason)[self._window(arrival + self.client_timeout)] += 1
        else:
            getattr(self.windows, reason)[self._window(self.env.now)] += 1

    # Instances

    def _resource(self, slot: int) -> simpy.Resource:
        label = int(self.fleet.label[slot])
        resource = self.resources[slot]
        if resource is None or self.resource_label[slot] != label:
            resource = simpy.Resource(self.env, capacity=self.workers)
            self.resources[slot] = resource
            self.resource_label[slot] = label
            self.active[slot] = set()
        return resource

    def _outstanding(self, slot: int) -> int:
        resource = self.resources[slot]
        if resource is None or self.resource_label[slot] != int(self.fleet.label[slot]):
            return 0
        return resource.count + len(resource.queue)

    def _choose(self) -> int | None:
        groups = self.fleet.routing_groups()
        if not groups:
            return None
        if len(groups) == 1:
            idx = groups[0][0]
        else:
            pick = self.rng.random()
            idx = groups[-1][0]
            for candidate, share in groups:
                if pick < share:
                    idx = candidate
                    break
                pick -= share
        if self.spec.routing is Routing.RANDOM:
            return int(idx[self.rng.integers(len(idx))])
        outstanding = np.array([self._outstanding(int(s)) for s in idx])
        least = np.flatnonzero(outstanding == outstanding.min())
        return int(idx[least[self.rng.integers(len(least))]])

    def _service_time(self, rate: float) -> float:
        """One service time of mean ``1 / rate``, shaped as the service model says."""
        if self.exponential:
            return float(self.rng.exponential(1 / rate))
        (first_p, first_rate), *other = self.phases
        phase = first_rate if not other or self.rng.random() < first_p else other[0][1]
        return (self.delay + float(self.rng.exponential(1 / phase))) / rate

    # Processes

    def _request(self, slot: int, arrival: float) -> Generator[Any, Any, None]:
        resource = self._resource(slot)
        request = resource.request()
        process = self.env.active_process
        self.active[slot].add(process)
        self.in_flight += 1
        counted = True
        try:
            outcome = yield request | self.env.timeout(self.sagemaker_timeout)
            if request not in outcome:
                request.cancel()
                self._fail(arrival, "timeout")
                return
            cap = float(self.fleet.cpu_cap[slot])
            duration = self._service_time(self.per_worker * cap)
            self.work[slot] += duration * cap
            if self.env.now - arrival >= self.client_timeout:
                self.in_flight -= 1
                counted = False
            yield self.env.timeout(duration)
            resource.release(request)
            latency = self.env.now - arrival
            if latency <= self.client_timeout:
                self.windows.served[self._window(self.env.now)] += 1
                self.latencies[self._window(self.env.now)].append(latency)
            else:
                self._fail(arrival, "timeout")
        except simpy.Interrupt:
            self._fail(arrival, "timeout" if self.env.now - arrival >= self.client_timeout else "shed")
        finally:
            if counted:
                self.in_flight -= 1
            self.active[slot].discard(process)

    def _arrivals(self) -> Generator[Any, Any, None]:
        rates = self.run.traffic.rps
        for t in range(self.total):
            lam = float(rates[t]) if t < len(rates) else 0.0
            count = int(self.rng.poisson(lam)) if lam > 0 else 0
            window = self._window(t)
            self.windows.offered[window] += count
            offsets = np.sort(self.rng.random(count))
            throttle_fraction = (
                max(0.0, lam - self.api_rps) / lam if self.spec.front_door and lam > 0 else 0.0
            )
            now = float(t)
            for offset in offsets.tolist():
                yield self.env.timeout(t + offset - now)
                now = t + offset
                self._arrive(now, throttle_fraction)
            yield self.env.timeout(t + 1 - now)

    def _arrive(self, now: float, throttle_fraction: float) -> None:
        window = self._window(now)
        if self.spec.front_door and (
            self.rng.random() < throttle_fraction or self.in_flight >= self.lambda_limit
        ):
            self.windows.throttled[window] += 1
            return
        self.invocations += 1
        slot = self._choose()
        if slot is None or self.fleet.dead[slot] or self._outstanding(slot) >= self.queue_limit:
            self.windows.shed[window] += 1
            return
        self.env.process(self._request(slot, now))

    def _control(self) -> Generator[Any, Any, None]:
        fleet, windows = self.fleet, self.windows
        while self.env.now < self.total:
            yield self.env.timeout(1)
            t = int(self.env.now) - 1
            window = self._window(t)
            used = np.minimum(self.work, self.workers)
            self.work -= used
            cpu = used / self.workers
            queued = np.array(
                [len(r.queue) if r is not None else 0 for r in self.resources], dtype=np.float64
            )
            capacity = np.where(fleet.serving_mask(), self.full_rps * fleet.cpu_cap, 0.0)
            ping_wait = np.divide(
                queued * self.ping_fraction, capacity, out=np.zeros(len(capacity)), where=capacity > 0
            )
            in_service = fleet.state == IN_SERVICE
            windows.cpu_sum[window] += float(cpu[in_service].sum())
            windows.cpu_n[window] += float(np.count_nonzero(in_service))
            windows.capacity[window] += float(capacity.sum())
            outstanding = float(sum(self._outstanding(s) for s in range(fleet.slots)))
            invocations, self.invocations = self.invocations, 0
            unhealthy = fleet.tick(
                float(t),
                cpu_used=cpu,
                ping_wait_s=ping_wait,
                invocations=invocations,
                outstanding=outstanding,
            )
            for slot in unhealthy.tolist():
                for process in list(self.active[slot]):
                    if process.is_alive:
                        process.interrupt("unhealthy")
                self.resources[slot] = None
            if t % WINDOW_S == WINDOW_S - 1:
                windows.snapshot(window, fleet)
                if fleet.burstable:
                    balance = fleet.credit_balance()
                    for slot in np.flatnonzero(fleet.state != 0):
                        self.credits.setdefault(int(fleet.label[slot]), []).append(
                            (float(t + 1), float(balance[slot]))
                        )

    def play(self) -> None:
        self.env.process(self._arrivals())
        self.env.process(self._control())
        self.env.run(until=self.total)
        # Whatever is still queued at the end waited past every timeout: it failed.
        for slot in range(self.fleet.slots):
            for _ in list(self.active[slot]):
                self.windows.timeout[self.windows.count - 1] += 1
        windows = self.windows
        windows.p99_s[:] = [_nearest_rank(values) for values in self.latencies]
        windows.overall_p99_s = _nearest_rank([v for values in self.latencies for v in values])
        per_minute = 60 // WINDOW_S
        for minute in range(windows.minute_p99_s.shape[0]):
            values = [v for w in self.latencies[minute * per_minute : (minute + 1) * per_minute] for v in w]
            windows.minute_p99_s[minute] = _nearest_rank(values)


def simulate(run: SimulationInput) -> Outcome:
    """Play ``run`` request by request."""
    engine = _ReferenceEngine(run)
    engine.play()
    return Outcome.of_run(
        "reference", run, windows=engine.windows, fleet=engine.fleet, credits_by_instance=engine.credits
    )
