"""p99 latency in closed form, for the fast engine.

An instance is an M/G/c queue (``c`` workers of rate ``mu``, service times of squared coefficient of
variation ``scv`` shaped as :func:`tools.simulate.service.shape`). Below saturation a request waits
with probability C' (Erlang's C scaled by the Cramer-Lundberg constant's share of rho) and its wait
is exponential of rate r, the decay of the wait's tail with the ``c`` workers seen as one ``c`` times
faster server (:func:`wait_decay`). Its response time W is that wait plus one service time, whose
phases are exponentials of rate a mu after a delay d / mu; each phase gives
P(E + wait > s) = e^(-a mu s) + C' a mu / (a mu - r) (e^(-r s) - e^(-a mu s)) at s = t - d / mu. At
scv = 1 this is M/M/c exactly (r = c mu - lambda, C' = C). Past saturation the fluid queue gives the
wait w a request spent in the backlog, and W = w + one service time. A window's p99 is the 99th
percentile of the mixture of the chunks served in it (weighted by requests), found on a log-spaced
grid.
"""

from __future__ import annotations

import numpy as np

from tools.simulate.service import shape

GRID_S = np.geomspace(1e-5, 120.0, 240)
"""Latencies at which the tails are evaluated (10 us to 120 s)."""


def erlang_c(servers: np.ndarray, load: np.ndarray) -> np.ndarray:
    """Probability that an arrival waits, for ``servers`` workers offered ``load`` Erlangs (< servers)."""
    servers = np.asarray(servers, dtype=np.int64)
    load = np.asarray(load, dtype=np.float64)
    blocking = np.ones_like(load)
    for k in range(1, int(servers.max(initial=1)) + 1):
        step = load * blocking / (k + load * blocking)
        blocking = np.where(k <= servers, step, blocking)
    rho = load / np.maximum(servers, 1)
    return blocking / (1 - rho * (1 - blocking))


def _phases(scv: float) -> tuple[float, list[tuple[float, float]]]:
    """The unit-mean service's delay and (probability, rate) phases, one phase when they coincide."""
    s = shape(scv)
    return s.delay, s.phases()


def _phase_plus_wait(
    s: np.ndarray, rate: np.ndarray, r: np.ndarray, wait_probability: np.ndarray
) -> np.ndarray:
    """P(E + wait > s) for E exponential of ``rate`` and a wait that is exponential of rate ``r`` with
    probability ``wait_probability`` (else 0); ``s`` >= 0."""
    service = np.exp(-rate * s)
    gap = rate - r
    near = np.abs(gap) < 1e-9 * rate
    safe_gap = np.where(near, 1.0, gap)
    mixed = np.where(near, rate * s * service, rate / safe_gap * (np.exp(-r * s) - service))
    return service + wait_probability * mixed


def wait_decay(rho: np.ndarray, scv: float, iterations: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """The wait's tail for ``c`` servers seen as one server ``c`` times as fast: its decay rate x (in
    units of c mu) and the Cramer-Lundberg constant's share of rho, K / rho.

    x solves rho (M(x) - 1) = x, M the moment generating function of the unit-mean service time; K =
    (1 - rho) / (rho M'(x) - 1). For exponential service x = 1 - rho and K = rho: M/M/c's wait tail,
    C e^(-(c mu - lambda) t), exactly."""
    delay, phases = _phases(scv)
    rho = np.clip(np.asarray(rho, dtype=np.float64), 1e-9, 0.995)
    ceiling = min(rate for _, rate in phases)

    def mgf(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        grow = np.exp(x * delay)
        first = sum(p * rate / (rate - x) for p, rate in phases)
        second = sum(p * rate / (rate - x) ** 2 for p, rate in phases)
        return grow * first, grow * (delay * first + second)

    low, high = np.zeros_like(rho), np.full_like(rho, ceiling * (1 - 1e-12))
    for _ in range(iterations):
        mid = (low + high) / 2
        above = rho * (mgf(mid)[0] - 1) > mid
        high, low = np.where(above, mid, high), np.where(above, low, mid)
    x = (low + high) / 2
    slope = mgf(x)[1]
    share = (1 - rho) / np.maximum(rho * slope - 1, 1e-12) / rho
    return x, np.clip(share, 0.0, 1.0 / rho)


def mmc_tail(
    t: np.ndarray, servers: np.ndarray, rho: np.ndarray, mu: np.ndarray, scv: float = 1.0
) -> np.ndarray:
    """P(W > t) for M/G/c (M/M/c at ``scv`` 1); ``t`` broadcasts on a trailing axis."""
    rho = np.clip(rho, 0.0, 0.995)
    wait_probability = erlang_c(servers, rho * servers)
    mu_ = mu[..., None]
    if scv == 1.0:
        r = (servers * mu * (1 - rho))[..., None]
    else:
        decay, share = wait_decay(rho, scv)
        r = (servers * mu * decay)[..., None]
        wait_probability = np.minimum(wait_probability * share, 1.0)
    wait_probability = wait_probability[..., None]
    delay, phases = _phases(scv)
    s = t - delay / mu_
    after = np.maximum(s, 0.0)
    tail = sum(p * _phase_plus_wait(after, rate * mu_, r, wait_probability) for p, rate in phases)
    return np.clip(np.where(s < 0, 1.0, tail), 0.0, 1.0)


def backlog_tail(t: np.ndarray, wait_s: np.ndarray, mu: np.ndarray, scv: float = 1.0) -> np.ndarray:
    """P(W > t) for a request that waited ``wait_s`` in the backlog, then one service."""
    delay, phases = _phases(scv)
    mu_ = mu[..., None]
    s = t - wait_s[..., None] - delay / mu_
    after = np.maximum(s, 0.0)
    tail = sum(p * np.exp(-rate * mu_ * after) for p, rate in phases)
    return np.where(s < 0, 1.0, tail)


def tail_sums(
    weight: np.ndarray,
    *,
    servers: np.ndarray,
    rho: np.ndarray,
    mu: np.ndarray,
    wait_s: np.ndarray,
    backlog: np.ndarray,
    scv: float = 1.0,
    block: int = 8192,
) -> np.ndarray:
    """Each row's weighted sum of its chunks' tails on :data:`GRID_S` ([rows, chunks] inputs).

    Sums add: a minute's (or the run's) mixture is the sum of its windows' rows. Chunks with the same
    parameters (a steady load) are evaluated once."""
    rows = weight.shape[0]
    sums = np.zeros((rows, len(GRID_S)))
    row_of, chunk_of = np.nonzero(weight > 0)
    if not len(row_of):
        return sums
    params = np.stack(
        [
            servers[row_of, chunk_of].astype(np.float64),
            rho[row_of, chunk_of],
            mu[row_of, chunk_of],
            wait_s[row_of, chunk_of],
            backlog[row_of, chunk_of].astype(np.float64),
        ],
        axis=1,
    )
    unique, inverse = np.unique(params, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    tails = np.empty((len(unique), len(GRID_S)))
    for start in range(0, len(unique), block):
        part = unique[start : start + block]
        queued = part[:, 4] > 0
        steady = ~queued
        chunk = np.empty((len(part), len(GRID_S)))
        if steady.any():
            chunk[steady] = mmc_tail(
                GRID_S,
                part[steady, 0].astype(np.int64),
                part[steady, 1],
                np.maximum(part[steady, 2], 1e-12),
                scv,
            )
        if queued.any():
            chunk[queued] = backlog_tail(GRID_S, part[queued, 3], np.maximum(part[queued, 2], 1e-12), scv)
        tails[start : start + block] = chunk
    w = weight[row_of, chunk_of]
    # Rows come sorted from np.nonzero: sum each row's chunks in one pass.
    unique_rows, starts = np.unique(row_of, return_index=True)
    sums[unique_rows] = np.add.reduceat(tails[inverse] * w[:, None], starts, axis=0)
    return sums


def quantile_of(sums: np.ndarray, totals: np.ndarray, quantile: float = 0.99) -> np.ndarray:
    """The ``quantile`` of each row's mixture from its tail sums and total weight; NaN without weight."""
    rows = sums.shape[0]
    mixture = sums / np.maximum(totals, 1e-300)[:, None]
    level = 1 - quantile
    # The first grid point where the tail falls to the level; interpolate in log-latency.
    below = mixture <= level
    first = np.where(below.any(axis=1), below.argmax(axis=1), len(GRID_S) - 1)
    previous = np.maximum(first - 1, 0)
    index = np.arange(rows)
    high, low = mixture[index, previous], mixture[index, first]
    fraction = np.clip(np.where(high > low, (high - level) / np.maximum(high - low, 1e-300), 0.0), 0.0, 1.0)
    log_grid = np.log(GRID_S)
    values = np.exp(log_grid[previous] + fraction * (log_grid[first] - log_grid[previous]))
    values[first == 0] = GRID_S[0]
    return np.where(totals > 0, values, np.nan)


def p99_seconds(
    weight: np.ndarray,
    *,
    servers: np.ndarray,
    rho: np.ndarray,
    mu: np.ndarray,
    wait_s: np.ndarray,
    backlog: np.ndarray,
    scv: float = 1.0,
    quantile: float = 0.99,
) -> np.ndarray:
    """The ``quantile`` of each row's mixture of chunks ([rows, chunks] inputs); NaN without weight."""
    sums = tail_sums(weight, servers=servers, rho=rho, mu=mu, wait_s=wait_s, backlog=backlog, scv=scv)
    return quantile_of(sums, weight.sum(axis=1), quantile)
