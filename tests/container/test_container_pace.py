"""The shedding decision's estimate: a steady wait from bursty completions, busy time only."""

from __future__ import annotations

import pytest
from xgbserve.pace import PoolPace, retry_after_seconds


def run_steady(pace: PoolPace, *, per_second: float, seconds: float, batch: int, backlog: int) -> float:
    """Keep ``backlog`` requests in the pool while it finishes ``per_second`` of them in batches of
    ``batch``, asking for the wait at every arrival as the worker does; the time at the end."""
    now = 100.0
    for _ in range(backlog):
        pace.submitted(now)
    gap = batch / per_second
    for _ in range(round(seconds / gap)):
        now += gap
        for _ in range(batch):
            pace.completed(now)
            pace.expected_wait(now)
            pace.submitted(now)
    return now


def test_an_idle_pool_promises_no_wait() -> None:
    assert PoolPace().expected_wait(5.0) == 0.0


@pytest.mark.parametrize("batch", [1, 10, 40])
def test_the_wait_is_the_backlog_at_the_measured_throughput_whatever_the_batches(batch: int) -> None:
    pace = PoolPace()
    now = run_steady(pace, per_second=200.0, seconds=5.0, batch=batch, backlog=300)
    # Between two batches the estimate stays put: 300 requests at 200 a second.
    for offset in (0.0, 0.5 * batch / 200.0, 0.99 * batch / 200.0):
        assert pace.expected_wait(now + offset) == pytest.approx(1.5, rel=0.05)


def idle_then_burst(pace: PoolPace, *, idle: float, burst: int) -> float:
    """A second of one request at a time at 1 ms each, ``idle`` seconds of nothing, then ``burst``
    requests at once; the time of the burst."""
    now = run_steady(pace, per_second=1000.0, seconds=1.0, batch=1, backlog=1)
    pace.completed(now)
    now += idle
    for _ in range(burst):
        pace.submitted(now)
    return now


def test_an_idle_spell_before_a_burst_is_not_counted_as_slowness() -> None:
    pace = PoolPace()
    now = idle_then_burst(pace, idle=30.0, burst=16)
    assert pace.expected_wait(now + 0.001) < 0.1


def test_a_slow_first_answer_of_a_busy_period_does_not_price_the_whole_backlog() -> None:
    """200 requests arrive at once; the first answer takes 15 ms (the pool filling up). At the
    previous pace of 1 ms they wait 0.2 s: none is shed. Once the period has answered enough of
    them, its own pace counts: 20 ms an answer is a wait of seconds."""
    pace = PoolPace()
    now = idle_then_burst(pace, idle=5.0, burst=200)
    pace.completed(now + 0.015)
    assert pace.expected_wait(now + 0.016) == pytest.approx(0.199, rel=0.05)
    for answer in range(2, 11):
        pace.completed(now + 0.015 + 0.02 * answer)
    assert pace.expected_wait(now + 0.215) > 2.0


def test_requests_shed_in_the_pool_leave_it_but_are_no_throughput() -> None:
    """100 requests that waited past the deadline are answered 503 in a moment: the 200 left
    still wait at the pool's real pace of 200 a second."""
    pace = PoolPace()
    now = run_steady(pace, per_second=200.0, seconds=5.0, batch=1, backlog=300)
    for _ in range(100):
        pace.completed(now, served=False)
    assert pace.in_pool == 200
    assert pace.expected_wait(now) == pytest.approx(1.0, rel=0.05)


def test_a_pool_that_finishes_nothing_is_as_slow_as_its_silence() -> None:
    pace = PoolPace()
    now = run_steady(pace, per_second=1000.0, seconds=1.0, batch=1, backlog=4)
    # A predict hangs: after 3 s without a completion four requests cannot be promised 2 s.
    assert pace.expected_wait(now + 3.0) > 2.0


def test_a_slowdown_shows_within_the_window() -> None:
    """Out of CPU credits, throughput falls five-fold: within two seconds the estimate follows."""
    pace = PoolPace()
    now = run_steady(pace, per_second=500.0, seconds=3.0, batch=5, backlog=200)
    assert pace.expected_wait(now) == pytest.approx(0.4, rel=0.05)
    gap = 5 / 100.0
    for _ in range(round(2.0 / gap)):
        now += gap
        for _ in range(5):
            pace.completed(now)
            pace.submitted(now)
    assert pace.expected_wait(now) == pytest.approx(2.0, rel=0.05)


@pytest.mark.parametrize(("wait", "expected"), [(0.0, 1), (0.4, 1), (2.1, 3), (2.9, 3), (7.0, 7)])
def test_retry_after_is_when_the_backlog_ahead_will_have_cleared(wait: float, expected: int) -> None:
    assert retry_after_seconds(wait) == expected
