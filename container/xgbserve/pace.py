"""The shedding decision: how long a request arriving now would wait for the worker's threads.

The worker answers 503 at once when that wait is over the deadline, so the estimate has to be
steady. Completions come in bursts (the requests in flight together share one XGBoost call,
xgbserve.batching), so the time between two completions swings between zero and a whole batch:
a mean of those gaps wanders, shedding requests that would have made it and admitting ones that
then wait past the deadline. Completions counted over the last couple of seconds of busy time
are a throughput, which a batch barely moves.
"""

from __future__ import annotations

import math
from collections import deque

PACE_WINDOW_SECONDS = 2.0
"""Busy time over which completions are counted: many batches, and short enough to follow a
change of load (or of CPU, when a burstable instance runs out of credits) within a deadline."""


MIN_COMPLETIONS = 8
"""Completions a busy period needs before its own pace replaces the previous one."""


class PoolPace:
    """Requests in the thread pool and the pace at which it has been finishing them.

    Only busy time counts: an idle minute followed by a burst is not a slow pool. A pool that has
    finished nothing for a while is as slow as that while (a stuck or starved predict sheds)."""

    def __init__(self, window: float = PACE_WINDOW_SECONDS) -> None:
        self.window = window
        self.in_pool = 0
        self._busy_since = 0.0
        self._completions: deque[float] = deque()
        self._last_pace = 0.0

    def submitted(self, now: float) -> None:
        if self.in_pool == 0:
            self._busy_since = now
            self._completions.clear()
        self.in_pool += 1

    def completed(self, now: float, *, served: bool = True) -> None:
        """A request left the pool; ``served`` False for one answered 503 because it had already
        waited past the deadline: that takes no predict, and counting it as throughput under
        overload would promise the next requests a wait they do not get."""
        self.in_pool = max(0, self.in_pool - 1)
        if served:
            self._completions.append(now)
        # A busy period that ends (at low load, each request is one) still measures the pace the
        # next burst starts from; during one, each arriving request measures it.
        if served and self.in_pool == 0:
            self._measure(*self._window(now))

    def seconds_per_completion(self, now: float) -> float:
        """Busy seconds per completion over the window. Early in a busy period, with fewer than
        :data:`MIN_COMPLETIONS` completions, the previous pace: the first completions measure
        how long the pool took to fill (a burst of requests read, the first parse) rather than
        its throughput, and one slow first answer times a fresh backlog of 200 once shed
        requests that were served within half a second. A pool that has been busy a whole window
        is measured whatever it finished, none included (a stuck predict then sheds)."""
        busy, finished = self._window(now)
        if finished >= MIN_COMPLETIONS or busy >= self.window:
            return self._measure(busy, finished)
        if finished and not self._last_pace:  # the first busy period: all there is
            return self._measure(busy, finished)
        return self._last_pace

    def _window(self, now: float) -> tuple[float, int]:
        """Busy seconds in the window and the completions in them."""
        start = max(self._busy_since, now - self.window)
        completions = self._completions
        while completions and completions[0] < start:
            completions.popleft()
        return max(0.0, now - start), len(completions)

    def _measure(self, busy: float, finished: int) -> float:
        if busy > 0:  # no time has passed: nothing measured
            self._last_pace = busy / max(1, finished)
        return self._last_pace

    def expected_wait(self, now: float) -> float:
        """Seconds a request arriving now would wait: every request ahead of it, queued for a
        thread or in one waiting for the CPU, finishes one pace apart."""
        if self.in_pool == 0:
            return 0.0
        return self.in_pool * self.seconds_per_completion(now)


def retry_after_seconds(wait: float) -> int:
    """The Retry-After of a shed request: when the backlog now ahead of it will have cleared.

    Not the moment its own wait would first fit the deadline: under sustained overload others
    arrive meanwhile, and clients told to come back that early come back to another 503, each
    costing the overloaded instance a read and an answer."""
    return max(1, math.ceil(wait))
