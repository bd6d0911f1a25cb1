"""Coalescing concurrent predictions within a worker into one XGBoost call.

Every XGBoost prediction call costs about 90 us before the first row (configuration checks,
adapters, per-thread buffers), about as much as 20 more rows. Under load a worker holds several
single-record requests at once; predicting them in one call pays that fixed cost once.

How: each request adds its matrix to a queue, then takes the worker's predict lock. Whoever holds
the lock predicts everything queued so far in one call and hands each waiter its rows; a waiter
that gets the lock and finds its rows done just returns. With one request in flight this is a
plain predict plus two uncontended lock operations; nobody waits on a timer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float32]


@dataclass
class _Pending:
    matrix: Matrix
    result: Matrix | None = None
    error: BaseException | None = None
    done: bool = False
    rows: int = field(init=False)

    def __post_init__(self) -> None:
        self.rows = self.matrix.shape[0]


class CoalescingPredictor:
    """Thread-safe ``predict(matrix)`` that merges calls arriving while one is running."""

    def __init__(self, predict: Callable[[Matrix], Matrix], max_rows: int = 2048) -> None:
        self._predict = predict
        self._max_rows = max_rows
        self._queue_lock = threading.Lock()
        self._predict_lock = threading.Lock()
        self._queue: list[_Pending] = []

    def predict(self, matrix: Matrix) -> Matrix:
        if matrix.shape[0] >= self._max_rows:
            with self._predict_lock:  # large batches gain nothing from company
                return self._predict(matrix)
        pending = _Pending(matrix)
        with self._queue_lock:
            self._queue.append(pending)
        with self._predict_lock:
            if not pending.done:
                self._run_queued()
        if pending.error is not None:
            raise pending.error
        assert pending.result is not None
        return pending.result

    def _run_queued(self) -> None:
        with self._queue_lock:
            batch, self._queue = self._queue, []
        if not batch:
            return
        try:
            if len(batch) == 1:
                results = [self._predict(batch[0].matrix)]
            else:
                merged = self._predict(np.concatenate([item.matrix for item in batch]))
                bounds = np.cumsum([item.rows for item in batch])[:-1]
                results = np.split(merged, bounds)
            for item, result in zip(batch, results, strict=True):
                item.result = result
        except BaseException as error:
            for item in batch:
                item.error = error
        for item in batch:
            item.done = True
