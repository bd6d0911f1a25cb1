"""The fast engine: per-second fluid queues, one per instance, with request ages.

Each second the offered rate is throttled by the front door (API Gateway's account rate, the
Lambda's concurrency), routed over the instances in service (an equal split for RANDOM; for
LEAST_OUTSTANDING_REQUESTS, water-filling that levels the outstanding requests), and served
oldest-first up to each instance's capacity at its CPU cap (credits). A queue is a row of request
ages in whole seconds: a request older than the caller's timeout has failed (the instance still
spends CPU on it if it reaches it, as a real one does), one older than SageMaker's 60 s is dropped.
Latency: M/M/c in closed form while an instance keeps up, the backlog's age plus a service time
when it does not (:mod:`tools.simulate.latency`).

While no instance has a backlog and every share fits, a second costs a few scalar operations, so a
day of a 20-instance fleet runs in seconds.
"""

from __future__ import annotations

import math

import numpy as np

from tools.simulate.control import IN_SERVICE, Fleet
from tools.simulate.inputs import SimulationInput
from tools.simulate.latency import p99_seconds
from tools.simulate.outcome import WINDOW_S, Outcome, Windows
from tools.simulate.scenario import Routing

_EPS = 1e-9


def water_fill(outstanding: np.ndarray, amount: float) -> np.ndarray:
    """Shares of ``amount`` that bring the least-loaded instances up to one level first."""
    n = len(outstanding)
    order = np.sort(outstanding)
    levels = (amount + np.cumsum(order)) / np.arange(1, n + 1)
    fits = np.append(levels[:-1] <= order[1:], True)
    level = levels[int(np.argmax(fits))]
    return np.maximum(0.0, level - outstanding)


class _Chunks:
    """Latency chunks of the current window: per instance, stationary and backlogged requests."""

    def __init__(self, windows: int, slots: int) -> None:
        k = 2 * slots + 1
        self.weight = np.zeros((windows, k))
        self.servers = np.ones((windows, k), dtype=np.int64)
        self.rho = np.zeros((windows, k))
        self.mu = np.ones((windows, k))
        self.wait = np.zeros((windows, k))
        self.backlog = np.zeros((windows, k), dtype=bool)
        self.slots = slots
        self.reset()

    def reset(self) -> None:
        s = self.slots
        self.n_stat = np.zeros(s)
        self.rho_n = np.zeros(s)
        self.mu_stat_n = np.zeros(s)
        self.n_back = np.zeros(s)
        self.wait_n = np.zeros(s)
        self.mu_back_n = np.zeros(s)
        self.pool_arrivals = 0.0
        self.pool_capacity = 0.0
        self.pool_servers = 0.0
        self.pool_seconds = 0

    def close(self, window: int, workers: int, routing: Routing) -> None:
        s = self.slots
        if routing is Routing.LEAST_OUTSTANDING_REQUESTS:
            # Least-outstanding routing pools the fleet: one M/M/(c x n) queue while it keeps up.
            n = float(self.n_stat.sum())
            self.weight[window, 0] = n
            if n > 0 and self.pool_capacity > 0:
                self.servers[window, 0] = max(
                    1, round(workers * self.pool_servers / max(1, self.pool_seconds))
                )
                self.rho[window, 0] = min(self.pool_arrivals / self.pool_capacity, 0.995)
                self.mu[window, 0] = float(self.mu_stat_n.sum()) / n
        else:
            stat = self.n_stat > 0
            self.weight[window, 1 : s + 1] = self.n_stat
            self.servers[window, 1 : s + 1] = workers
            self.rho[window, 1 : s + 1] = np.where(stat, self.rho_n / np.maximum(self.n_stat, _EPS), 0.0)
            self.mu[window, 1 : s + 1] = np.where(stat, self.mu_stat_n / np.maximum(self.n_stat, _EPS), 1.0)
        back = self.n_back > 0
        self.weight[window, s + 1 :] = self.n_back
        self.servers[window, s + 1 :] = workers
        self.backlog[window, s + 1 :] = True
        self.wait[window, s + 1 :] = np.where(back, self.wait_n / np.maximum(self.n_back, _EPS), 0.0)
        self.mu[window, s + 1 :] = np.where(back, self.mu_back_n / np.maximum(self.n_back, _EPS), 1.0)
        self.reset()


def simulate(run: SimulationInput) -> Outcome:  # noqa: PLR0912, PLR0915 - one hot loop: calls cost here
    """Play ``run`` second by second."""
    spec, service, c = run.spec, run.service, run.constants
    fleet = Fleet(
        spec,
        service,
        c,
        failures=list(run.failures),
        seed=run.seed,
        initial_credits=list(run.initial_credits),
    )
    slots = fleet.slots
    total = math.ceil(run.total_seconds / WINDOW_S) * WINDOW_S
    windows = Windows(count=total // WINDOW_S)
    chunks = _Chunks(windows.count, slots)
    ages = int(run.sagemaker_timeout_s)
    client_timeout = min(int(run.client_timeout_s), ages)
    queue = np.zeros((slots, ages))
    age_of = np.arange(ages, dtype=np.float64)
    queued = np.zeros(slots)
    backlog = False
    full_rps = service.instance_rps
    workers = service.workers
    per_worker = service.per_worker_rps
    api_rps = c["api_gateway_account_rps"]
    lambda_limit = c["lambda_concurrency_limit"]
    queue_limit = c["instance_queue_limit"]
    ping_fraction = c["ping_queue_fraction"]
    one_request_s = 1 / per_worker
    lor = spec.routing is Routing.LEAST_OUTSTANDING_REQUESTS
    rates = run.traffic.rps
    zeros = np.zeros(slots)
    credits: dict[int, list[tuple[float, float]]] = {}

    version = -1
    split = zeros
    dead_share = 0.0
    headroom = 0.0
    cap_rps = zeros
    routable = zeros.astype(bool)

    for t in range(total):
        window = t // WINDOW_S
        lam = float(rates[t]) if t < len(rates) else 0.0
        windows.offered[window] += lam
        throttled = 0.0
        if spec.front_door:
            throttled = max(0.0, lam - api_rps)
            waiting = float(queue[:, :client_timeout].sum()) if backlog else 0.0
            total_cap = float(cap_rps.sum())
            hold = one_request_s + (waiting / total_cap if total_cap > 0 else 1.0)
            allowed = max(0.0, lambda_limit - waiting) / max(hold, 1e-6)
            throttled += max(0.0, lam - throttled - allowed)
        windows.throttled[window] += throttled
        admitted = lam - throttled

        # The fleet's shape changes rarely: the split and the capacities are recomputed then.
        if fleet.version != version or fleet.burstable:
            version = fleet.version
            groups = fleet.routing_groups()
            split = np.zeros(slots)
            for idx, share in groups:
                split[idx] += share / len(idx)
            routable = split > 0
            serving = fleet.serving_mask()
            cap_rps = np.where(serving, full_rps * fleet.cpu_cap, 0.0)
            dead_share = float(split[fleet.dead].sum())
            live = routable & ~fleet.dead
            ratios = cap_rps[live] / split[live]
            headroom = float(ratios.min()) if len(ratios) else 0.0
            # Shares that reach a dead instance fail at once (5xx) until it is marked unhealthy.
        if not routable.any():
            windows.shed[window] += admitted
            admitted = 0.0
        shed_dead = admitted * dead_share
        windows.shed[window] += shed_dead
        windows.capacity[window] += float(cap_rps.sum())

        if not backlog and admitted <= headroom + _EPS:
            # Every instance keeps up and none has a queue: served as offered.
            arrivals = admitted * split
            arrivals[fleet.dead] = 0.0
            windows.served[window] += admitted - shed_dead
            chunk_rho = np.divide(arrivals, cap_rps, out=np.zeros(slots), where=cap_rps > 0)
            chunks.n_stat += arrivals
            chunks.rho_n += arrivals * chunk_rho
            mu_now = per_worker * fleet.cpu_cap
            chunks.mu_stat_n += arrivals * mu_now
            if lor:
                chunks.pool_arrivals += admitted - shed_dead
                chunks.pool_capacity += float(cap_rps[routable].sum())
                chunks.pool_servers += float(np.count_nonzero(routable & ~fleet.dead))
                chunks.pool_seconds += 1
            work = arrivals
            ping_wait = zeros
        else:
            live = routable & ~fleet.dead
            arrivals = np.zeros(slots)
            if lor and live.any():
                for idx, share in fleet.routing_groups():
                    alive = idx[~fleet.dead[idx]]
                    if len(alive):
                        amount = admitted * share * len(alive) / len(idx)
                        arrivals[alive] += water_fill(queued[alive], amount)
            else:
                arrivals = admitted * split
                arrivals[fleet.dead] = 0.0
            room = np.maximum(queue_limit - queued, 0.0)
            refused = np.maximum(arrivals - room, 0.0)
            windows.shed[window] += float(refused.sum())
            arrivals -= refused
            had_queue = queued > _EPS
            queue[:, 0] += arrivals
            backlogged = had_queue | (arrivals > cap_rps + _EPS)
            reverse = queue[:, ::-1]
            before = np.cumsum(reverse, axis=1) - reverse
            take = np.clip(cap_rps[:, None] - before, 0.0, reverse)[:, ::-1]
            queue -= take
            ok = take[:, :client_timeout]
            served_ok = ok.sum(axis=1)
            windows.served[window] += float(served_ok.sum())
            mu_now = per_worker * fleet.cpu_cap
            stationary = ~backlogged
            chunk_rho = np.divide(arrivals, cap_rps, out=np.zeros(slots), where=cap_rps > 0)
            chunks.n_stat += np.where(stationary, served_ok, 0.0)
            chunks.rho_n += np.where(stationary, served_ok * chunk_rho, 0.0)
            chunks.mu_stat_n += np.where(stationary, served_ok * mu_now, 0.0)
            if lor:
                chunks.pool_arrivals += float(arrivals[stationary].sum())
                chunks.pool_capacity += float(cap_rps[stationary & routable].sum())
                chunks.pool_servers += float(np.count_nonzero(stationary & routable))
                chunks.pool_seconds += 1
            chunks.n_back += np.where(backlogged, served_ok, 0.0)
            chunks.wait_n += np.where(backlogged, (ok * age_of[:client_timeout]).sum(axis=1), 0.0)
            chunks.mu_back_n += np.where(backlogged, served_ok * mu_now, 0.0)
            work = take.sum(axis=1)
            # A second older: requests crossing the caller's timeout fail; SageMaker drops the oldest.
            dropped = queue[:, -1].copy()
            queue[:, 1:] = queue[:, :-1]
            queue[:, 0] = 0.0
            if client_timeout < ages:
                windows.timeout[window] += float(queue[:, client_timeout].sum())
            else:
                windows.timeout[window] += float(dropped.sum())
            queued = queue.sum(axis=1)
            backlog = bool(queued.sum() > 1e-6)
            if not backlog:
                # Fluid crumbs: what is left under a millionth of a request is served.
                windows.served[window] += float(queue[:, :client_timeout].sum())
                queue[:] = 0.0
                queued = np.zeros(slots)
            ping_wait = np.divide(queued * ping_fraction, cap_rps, out=np.zeros(slots), where=cap_rps > 0)

        cpu = work / full_rps
        in_service = fleet.state == IN_SERVICE
        windows.cpu_sum[window] += float(cpu[in_service].sum())
        windows.cpu_n[window] += float(np.count_nonzero(in_service))
        unhealthy = fleet.tick(
            float(t),
            cpu_used=cpu,
            ping_wait_s=ping_wait,
            invocations=admitted,
            outstanding=float(queued.sum()) + admitted * one_request_s,
        )
        if len(unhealthy):
            lost = float(queue[unhealthy, :client_timeout].sum())
            windows.shed[window] += lost
            queue[unhealthy] = 0.0
            queued = queue.sum(axis=1)
            backlog = bool(queued.sum() > 1e-6)
        if t % WINDOW_S == WINDOW_S - 1:
            windows.snapshot(window, fleet)
            chunks.close(window, workers, spec.routing)
            if fleet.burstable:
                balance = fleet.credit_balance()
                for slot in np.flatnonzero(fleet.state != 0):
                    credits.setdefault(int(fleet.label[slot]), []).append(
                        (float(t + 1), float(balance[slot]))
                    )

    windows.p99_s[:] = p99_seconds(
        chunks.weight,
        servers=chunks.servers,
        rho=chunks.rho,
        mu=chunks.mu,
        wait_s=chunks.wait,
        backlog=chunks.backlog,
    )
    per_minute = 60 // WINDOW_S
    minutes = windows.minute_p99_s.shape[0]
    padded = minutes * per_minute

    def by_minute(values: np.ndarray) -> np.ndarray:
        fill = np.zeros((padded - values.shape[0], values.shape[1]), dtype=values.dtype)
        return np.concatenate([values, fill]).reshape(minutes, -1)

    windows.minute_p99_s[:] = p99_seconds(
        by_minute(chunks.weight),
        servers=np.maximum(by_minute(chunks.servers), 1),
        rho=by_minute(chunks.rho),
        mu=np.where(by_minute(chunks.mu) > 0, by_minute(chunks.mu), 1.0),
        wait_s=by_minute(chunks.wait),
        backlog=by_minute(chunks.backlog),
    )
    return Outcome(
        engine="fast",
        spec=spec,
        service_description=service.description,
        instance_rps=service.instance_rps,
        traffic_name=run.traffic.name,
        traffic_seconds=run.traffic.seconds,
        windows=windows,
        events=fleet.events,
        instance_seconds=fleet.instance_seconds,
        constants=dict(c.values),
        overridden=c.overridden(),
        seed=run.seed,
        credits_by_instance=credits,
    )
