"""The fast engine: per-second fluid queues, one per instance, with request ages.

Each second the offered rate is throttled by the front door (API Gateway's account rate, the
Lambda's concurrency), routed over the instances in service (an equal split for RANDOM; for
LEAST_OUTSTANDING_REQUESTS, water-filling that levels the outstanding requests), and served
oldest-first up to each instance's capacity at its CPU cap (credits). A queue is a row of request
ages in whole seconds: a request older than the caller's timeout has failed (the instance still
spends CPU on it if it reaches it, as a real one does), one older than SageMaker's 60 s is dropped.
Latency: M/G/c in closed form while an instance keeps up, the backlog's age plus a service time
when it does not (:mod:`tools.simulate.latency`).

While no instance has a backlog and every share fits, a second costs a few scalar operations, so a
day of a 20-instance fleet runs in seconds.
"""

from __future__ import annotations

import math

import numpy as np

from tools.simulate.control import IN_SERVICE, Fleet
from tools.simulate.inputs import SimulationInput
from tools.simulate.latency import quantile_of, tail_sums
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

    def pooled(self, window: int, *, weight: float, servers: int, rho: float, mu: float) -> None:
        """A quiet window under least-outstanding routing: one pooled M/G/(c x n) chunk."""
        self.weight[window, 0] = weight
        self.servers[window, 0] = max(1, servers)
        self.rho[window, 0] = min(rho, 0.995)
        self.mu[window, 0] = mu

    def per_instance(
        self, window: int, weight: np.ndarray, rho: np.ndarray, mu: np.ndarray, workers: int
    ) -> None:
        """A quiet window under random routing: one M/G/c chunk per instance."""
        s = self.slots
        self.weight[window, 1 : s + 1] = weight
        self.servers[window, 1 : s + 1] = workers
        self.rho[window, 1 : s + 1] = rho
        self.mu[window, 1 : s + 1] = np.where(weight > 0, mu, 1.0)

    def close(self, window: int, workers: int, routing: Routing) -> None:
        s = self.slots
        if routing is Routing.LEAST_OUTSTANDING_REQUESTS:
            # Least-outstanding routing pools the fleet: one M/G/(c x n) queue while it keeps up.
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


class _FluidEngine:
    """One run's state; :meth:`second` plays one simulated second."""

    def __init__(self, run: SimulationInput) -> None:
        spec, service, c = run.spec, run.service, run.constants
        self.run = run
        self.spec = spec
        self.fleet = Fleet(
            spec,
            service,
            c,
            failures=list(run.failures),
            seed=run.seed,
            initial_credits=list(run.initial_credits),
        )
        self.slots = slots = self.fleet.slots
        self.total = math.ceil(run.total_seconds / WINDOW_S) * WINDOW_S
        self.windows = Windows(count=self.total // WINDOW_S)
        self.chunks = _Chunks(self.windows.count, slots)
        self.ages = int(run.sagemaker_timeout_s)
        self.client_timeout = min(int(run.client_timeout_s), self.ages)
        self.queue = np.zeros((slots, self.ages))
        self.age_of = np.arange(self.ages, dtype=np.float64)
        self.queued = np.zeros(slots)
        self.backlog = False
        self.full_rps = service.instance_rps
        self.workers = service.workers
        self.per_worker = service.per_worker_rps
        self.api_rps = c["api_gateway_account_rps"]
        self.lambda_limit = c["lambda_concurrency_limit"]
        self.queue_limit = c["instance_queue_limit"]
        self.ping_fraction = c["ping_queue_fraction"]
        self.one_request_s = 1 / self.per_worker
        self.lor = spec.routing is Routing.LEAST_OUTSTANDING_REQUESTS
        self.zeros = np.zeros(slots)
        self.credits: dict[int, list[tuple[float, float]]] = {}
        self.version = -1
        # Derived from the fleet's shape, refreshed when it changes.
        self.split = self.zeros
        self.live_split = self.zeros
        self.rho_weight = self.zeros
        self.mu_now = self.zeros
        self.cap_rps = self.zeros
        self.total_cap = 0.0
        self.routable = np.zeros(slots, dtype=bool)
        self.any_routable = False
        self.dead_share = 0.0
        self.headroom = 0.0
        self.cpu_factor = 0.0
        self.in_service_count = 0
        self.pool_cap = 0.0
        self.pool_n = 0
        # Scalar sums of the seconds played on the fast path since the last flush.
        self.acc_a = 0.0
        self.acc_a2 = 0.0
        self.acc_s = 0
        self.sums = [0.0] * 7
        """This window's offered, throttled, shed, served, capacity, CPU sum and CPU count so far."""

    def refresh(self) -> None:
        fleet = self.fleet
        self.flush()
        self.version = fleet.version
        split = np.zeros(self.slots)
        for idx, share in fleet.routing_groups():
            split[idx] += share / len(idx)
        self.split = split
        self.routable = split > 0
        self.any_routable = bool(self.routable.any())
        self.live_split = np.where(fleet.dead, 0.0, split)
        serving = fleet.serving_mask()
        self.cap_rps = np.where(serving, self.full_rps * fleet.cpu_cap, 0.0)
        self.total_cap = float(self.cap_rps.sum())
        self.mu_now = self.per_worker * fleet.cpu_cap
        self.rho_weight = np.divide(
            self.live_split**2, self.cap_rps, out=np.zeros(self.slots), where=self.cap_rps > 0
        )
        # Shares that reach a dead instance fail at once (5xx) until it is marked unhealthy.
        self.dead_share = float(split[fleet.dead].sum())
        live = self.live_split > 0
        ratios = self.cap_rps[live] / self.live_split[live]
        self.headroom = float(ratios.min()) if len(ratios) else 0.0
        in_service = fleet.state == IN_SERVICE
        self.in_service_count = int(np.count_nonzero(in_service))
        self.cpu_factor = float(self.live_split[in_service].sum()) / self.full_rps
        self.pool_cap = float(self.cap_rps[self.routable].sum())
        self.pool_n = int(np.count_nonzero(live))

    def flush(self) -> None:
        """Move the fast path's scalar sums into the per-instance latency chunks."""
        if not self.acc_s:
            return
        chunks = self.chunks
        chunks.n_stat += self.live_split * self.acc_a
        chunks.rho_n += self.rho_weight * self.acc_a2
        chunks.mu_stat_n += self.live_split * self.mu_now * self.acc_a
        chunks.pool_arrivals += self.acc_a * (1 - self.dead_share)
        chunks.pool_capacity += self.pool_cap * self.acc_s
        chunks.pool_servers += self.pool_n * self.acc_s
        chunks.pool_seconds += self.acc_s
        self.acc_a = self.acc_a2 = 0.0
        self.acc_s = 0

    def front_door(self, lam: float) -> float:
        """Requests throttled this second: API Gateway's account rate, then the Lambda's concurrency."""
        throttled = max(0.0, lam - self.api_rps)
        waiting = float(self.queue[:, : self.client_timeout].sum()) if self.backlog else 0.0
        # A Lambda is held while its request waits: new ones fit in what the queue leaves free plus
        # what the instances complete this second.
        allowed = max(0.0, self.lambda_limit - waiting) + self.total_cap
        return throttled + max(0.0, lam - throttled - allowed)

    def second(self, t: int, lam: float) -> None:
        fleet = self.fleet
        window = t // WINDOW_S
        sums = self.sums
        sums[0] += lam
        if fleet.version != self.version:
            self.refresh()
        throttled = self.front_door(lam) if self.spec.front_door else 0.0
        sums[1] += throttled
        admitted = lam - throttled
        if not self.any_routable:
            sums[2] += admitted
            admitted = 0.0
        dead_share = self.dead_share
        if dead_share > 0 and self.lor:
            dead_share = self.lor_dead_share(admitted)
        shed_dead = admitted * dead_share
        sums[2] += shed_dead
        sums[4] += self.total_cap
        sums[6] += self.in_service_count
        if not self.backlog and dead_share == self.dead_share and admitted <= self.headroom + _EPS:
            # Every instance keeps up and none has a queue: served as offered, in scalar sums.
            sums[3] += admitted - shed_dead
            sums[5] += admitted * self.cpu_factor
            self.acc_a += admitted
            self.acc_a2 += admitted * admitted
            self.acc_s += 1
            cpu: np.ndarray | None = self.live_split * (admitted / self.full_rps) if fleet.burstable else None
            ping_wait = self.zeros
            outstanding = admitted * self.one_request_s
        else:
            self.flush()
            cpu, ping_wait = self.slow_second(window, admitted - shed_dead)
            in_service = fleet.state == IN_SERVICE
            sums[5] += float(cpu[in_service].sum())
            outstanding = float(self.queued.sum()) + admitted * self.one_request_s
        unhealthy = fleet.tick(
            float(t), cpu_used=cpu, ping_wait_s=ping_wait, invocations=admitted, outstanding=outstanding
        )
        if len(unhealthy):
            sums[2] += float(self.queue[unhealthy, : self.client_timeout].sum())
            self.queue[unhealthy] = 0.0
            self.queued = self.queue.sum(axis=1)
            self.backlog = bool(self.queued.sum() > 1e-6)
        if t % WINDOW_S == WINDOW_S - 1:
            self.close_window(t, window)

    def quiet_window(self, t: int, peak: float, total: float, squares: float) -> bool:
        """Play a whole window at once when nothing in it can queue, throttle or change the fleet."""
        fleet = self.fleet
        if self.backlog or not fleet.can_batch(t, WINDOW_S):
            return False
        if fleet.version != self.version:
            self.refresh()
        if not self.any_routable or self.dead_share > 0 or peak > self.headroom:
            return False
        if self.spec.front_door and (peak > self.api_rps or peak > self.lambda_limit / self.one_request_s):
            return False
        sums = self.sums
        sums[0] += total
        sums[3] += total
        sums[4] += self.total_cap * WINDOW_S
        sums[5] += total * self.cpu_factor
        sums[6] += self.in_service_count * WINDOW_S
        fleet.tick_batch(t, WINDOW_S, invocations=total, outstanding=total * self.one_request_s)
        window = t // WINDOW_S
        if self.lor:
            self.chunks.pooled(
                window,
                weight=total,
                servers=self.workers * self.pool_n,
                rho=total / (self.pool_cap * WINDOW_S),
                mu=self.per_worker,
            )
        else:
            self.chunks.per_instance(
                window,
                self.live_split * total,
                self.rho_weight * squares / np.maximum(self.live_split * total, _EPS),
                self.mu_now,
                self.workers,
            )
        self.close_window(t + WINDOW_S - 1, window, quiet=True)
        return True

    def lor_dead_share(self, admitted: float) -> float:
        """Least-outstanding routing sends a dead instance more than its share: failing at once, it
        never has a request outstanding, so it wins every arrival that finds the live ones busy and
        its part of the ties. A live instance then only gets work while idle (a one-server loss
        system): idle with probability 1 / (1 + a) for a = (its tie share of the arrivals) / (the
        rate of one worker); K of the live ones are idle, binomially, and split the ties with the
        dead ones."""
        fleet = self.fleet
        routable = self.routable
        dead = int(np.count_nonzero(routable & fleet.dead))
        live = int(np.count_nonzero(routable)) - dead
        if live == 0:
            return 1.0
        if self.backlog and bool(self.queued[routable & ~fleet.dead].min() > 0):
            return 1.0
        per_worker = float(np.mean(self.mu_now[routable & ~fleet.dead]))
        offered_to_each = admitted / (live + dead)
        idle = 1 / (1 + offered_to_each / max(per_worker, _EPS))
        live_share = sum(
            math.comb(live, k) * idle**k * (1 - idle) ** (live - k) * k / (k + dead)
            for k in range(1, live + 1)
        )
        return 1 - live_share

    def route(self, window: int, admitted: float) -> np.ndarray:
        """Each live instance's arrivals this second; what its queue cannot hold is shed (503)."""
        fleet = self.fleet
        # ``admitted`` excludes what went to dead instances: it is spread over the live ones.
        if self.lor:
            arrivals = np.zeros(self.slots)
            groups = [(idx[~fleet.dead[idx]], share) for idx, share in fleet.routing_groups()]
            groups = [(alive, share) for alive, share in groups if len(alive)]
            total_share = sum(share for _, share in groups)
            for alive, share in groups:
                arrivals[alive] += water_fill(self.queued[alive], admitted * share / total_share)
        else:
            live_total = float(self.live_split.sum())
            arrivals = admitted * self.live_split / live_total if live_total > 0 else np.zeros(self.slots)
        room = np.maximum(self.queue_limit - self.queued, 0.0)
        refused = np.maximum(arrivals - room, 0.0)
        self.windows.shed[window] += float(refused.sum())
        return arrivals - refused

    def slow_second(self, window: int, admitted: float) -> tuple[np.ndarray, np.ndarray]:
        """A second with a backlog somewhere: queues by age, oldest served first."""
        windows, chunks = self.windows, self.chunks
        queue, cap_rps, slots = self.queue, self.cap_rps, self.slots
        arrivals = self.route(window, admitted)
        had_queue = self.queued > _EPS
        queue[:, 0] += arrivals
        backlogged = had_queue | (arrivals > cap_rps + _EPS)
        reverse = queue[:, ::-1]
        before = np.cumsum(reverse, axis=1) - reverse
        take = np.clip(cap_rps[:, None] - before, 0.0, reverse)[:, ::-1]
        queue -= take
        ok = take[:, : self.client_timeout]
        served_ok = ok.sum(axis=1)
        windows.served[window] += float(served_ok.sum())
        stationary = ~backlogged
        chunk_rho = np.divide(arrivals, cap_rps, out=np.zeros(slots), where=cap_rps > 0)
        chunks.n_stat += np.where(stationary, served_ok, 0.0)
        chunks.rho_n += np.where(stationary, served_ok * chunk_rho, 0.0)
        chunks.mu_stat_n += np.where(stationary, served_ok * self.mu_now, 0.0)
        chunks.pool_arrivals += float(arrivals[stationary].sum())
        chunks.pool_capacity += float(cap_rps[stationary & self.routable].sum())
        chunks.pool_servers += float(np.count_nonzero(stationary & self.routable))
        chunks.pool_seconds += 1
        chunks.n_back += np.where(backlogged, served_ok, 0.0)
        chunks.wait_n += np.where(backlogged, (ok * self.age_of[: self.client_timeout]).sum(axis=1), 0.0)
        chunks.mu_back_n += np.where(backlogged, served_ok * self.mu_now, 0.0)
        work = take.sum(axis=1)
        # A second older: requests crossing the caller's timeout fail; SageMaker drops the oldest.
        dropped = queue[:, -1].copy()
        queue[:, 1:] = queue[:, :-1]
        queue[:, 0] = 0.0
        if self.client_timeout < self.ages:
            windows.timeout[window] += float(queue[:, self.client_timeout].sum())
        else:
            windows.timeout[window] += float(dropped.sum())
        self.queued = queue.sum(axis=1)
        self.backlog = bool(self.queued.sum() > 1e-6)
        if not self.backlog:
            # Fluid crumbs: what is left under a millionth of a request is served.
            windows.served[window] += float(queue[:, : self.client_timeout].sum())
            queue[:] = 0.0
            self.queued = np.zeros(slots)
        ping_wait = np.divide(
            self.queued * self.ping_fraction, cap_rps, out=np.zeros(slots), where=cap_rps > 0
        )
        return work / self.full_rps, ping_wait

    def close_window(self, t: int, window: int, *, quiet: bool = False) -> None:
        fleet, w, sums = self.fleet, self.windows, self.sums
        w.offered[window] += sums[0]
        w.throttled[window] += sums[1]
        w.shed[window] += sums[2]
        w.served[window] += sums[3]
        w.capacity[window] += sums[4]
        w.cpu_sum[window] += sums[5]
        w.cpu_n[window] += sums[6]
        self.sums = [0.0] * 7
        self.windows.snapshot(window, fleet)
        if not quiet:
            self.flush()
            self.chunks.close(window, self.workers, self.spec.routing)
        if fleet.burstable:
            balance = fleet.credit_balance()
            for slot in np.flatnonzero(fleet.state != 0):
                self.credits.setdefault(int(fleet.label[slot]), []).append(
                    (float(t + 1), float(balance[slot]))
                )

    def latencies(self) -> None:
        """p99 per window, per minute and over the run, from one pass over the chunks."""
        chunks, windows = self.chunks, self.windows
        sums = tail_sums(
            chunks.weight,
            servers=chunks.servers,
            rho=chunks.rho,
            mu=chunks.mu,
            wait_s=chunks.wait,
            backlog=chunks.backlog,
            scv=self.run.service.scv,
        )
        totals = chunks.weight.sum(axis=1)
        windows.p99_s[:] = quantile_of(sums, totals)
        per_minute = 60 // WINDOW_S
        minutes = windows.minute_p99_s.shape[0]
        padded = np.zeros((minutes * per_minute, sums.shape[1]))
        padded[: sums.shape[0]] = sums
        padded_totals = np.zeros(minutes * per_minute)
        padded_totals[: totals.shape[0]] = totals
        windows.minute_p99_s[:] = quantile_of(
            padded.reshape(minutes, per_minute, -1).sum(axis=1),
            padded_totals.reshape(minutes, -1).sum(axis=1),
        )
        windows.overall_p99_s = float(quantile_of(sums.sum(axis=0)[None, :], totals.sum(keepdims=True))[0])


def simulate(run: SimulationInput) -> Outcome:
    """Play ``run`` second by second with fluid queues."""
    engine = _FluidEngine(run)
    rates = np.zeros(engine.total)
    rates[: run.traffic.seconds] = run.traffic.rps[: engine.total]
    by_window = rates.reshape(-1, WINDOW_S)
    peaks = by_window.max(axis=1).tolist()
    totals = by_window.sum(axis=1).tolist()
    squares = (by_window**2).sum(axis=1).tolist()
    values = rates.tolist()
    for window in range(engine.windows.count):
        t = window * WINDOW_S
        if not engine.quiet_window(t, peaks[window], totals[window], squares[window]):
            for second in range(t, t + WINDOW_S):
                engine.second(second, values[second])
    engine.latencies()
    return Outcome.of_run(
        "fast", run, windows=engine.windows, fleet=engine.fleet, credits_by_instance=engine.credits
    )
