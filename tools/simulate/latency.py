"""p99 latency in closed form, for the fast engine.

An instance is an M/M/c queue (``c`` workers of rate ``mu``): below saturation its response time W
has the tail P(W > t) = e^(-mu t) + C mu / (mu - r) (e^(-r t) - e^(-mu t)), with C Erlang's C
formula and r = c mu - lambda. Past saturation the fluid queue gives the wait d a request spent in
the backlog, and W = d + one service time. A window's p99 is the 99th percentile of the mixture of
the chunks served in it (weighted by requests), found on a log-spaced grid.
"""

from __future__ import annotations

import numpy as np

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


def mmc_tail(t: np.ndarray, servers: np.ndarray, rho: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """P(W > t) for M/M/c; ``t`` broadcasts on a trailing axis."""
    rho = np.clip(rho, 0.0, 0.995)
    wait_probability = erlang_c(servers, rho * servers)[..., None]
    mu_ = mu[..., None]
    r = (servers * mu * (1 - rho))[..., None]
    service = np.exp(-mu_ * t)
    gap = mu_ - r
    near = np.abs(gap) < 1e-9 * mu_
    safe_gap = np.where(near, 1.0, gap)
    mixed = np.where(near, mu_ * t * np.exp(-mu_ * t), mu_ / safe_gap * (np.exp(-r * t) - service))
    return np.clip(service + wait_probability * mixed, 0.0, 1.0)


def backlog_tail(t: np.ndarray, wait_s: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """P(W > t) for a request that waited ``wait_s`` in the backlog, then one exponential service."""
    d = wait_s[..., None]
    return np.where(t < d, 1.0, np.exp(-mu[..., None] * np.maximum(t - d, 0.0)))


def tail_sums(
    weight: np.ndarray,
    *,
    servers: np.ndarray,
    rho: np.ndarray,
    mu: np.ndarray,
    wait_s: np.ndarray,
    backlog: np.ndarray,
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
                GRID_S, part[steady, 0].astype(np.int64), part[steady, 1], np.maximum(part[steady, 2], 1e-12)
            )
        if queued.any():
            chunk[queued] = backlog_tail(GRID_S, part[queued, 3], np.maximum(part[queued, 2], 1e-12))
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
    quantile: float = 0.99,
) -> np.ndarray:
    """The ``quantile`` of each row's mixture of chunks ([rows, chunks] inputs); NaN without weight."""
    sums = tail_sums(weight, servers=servers, rho=rho, mu=mu, wait_s=wait_s, backlog=backlog)
    return quantile_of(sums, weight.sum(axis=1), quantile)
