"""CoalescingPredictor: concurrent requests share XGBoost calls and each gets exactly its rows."""

from __future__ import annotations

import threading
import time

import numpy as np
import numpy.typing as npt
import pytest
from xgbserve.batching import CoalescingPredictor
from xgbserve.model import Model


def test_concurrent_requests_each_get_their_own_predictions(
    model: Model, rows: npt.NDArray[np.float32], expected: npt.NDArray[np.float32]
) -> None:
    calls: list[int] = []

    def counting_predict(matrix: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        calls.append(matrix.shape[0])
        return model.predict(matrix)

    predictor = CoalescingPredictor(counting_predict)
    sizes = [1, 3, 1, 7, 2, 1, 5, 1] * 8
    starts = np.cumsum([0, *sizes[:-1]])
    results: dict[int, npt.NDArray[np.float32]] = {}
    barrier = threading.Barrier(len(sizes))

    def request(index: int) -> None:
        matrix = np.ascontiguousarray(rows[starts[index] : starts[index] + sizes[index]])
        barrier.wait()
        results[index] = predictor.predict(matrix)

    threads = [threading.Thread(target=request, args=(i,)) for i in range(len(sizes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    for index, size in enumerate(sizes):
        np.testing.assert_array_equal(results[index], expected[starts[index] : starts[index] + size])
    assert sum(calls) == sum(sizes)


def test_requests_arriving_during_a_predict_share_the_next_call(
    model: Model, rows: npt.NDArray[np.float32], expected: npt.NDArray[np.float32]
) -> None:
    calls: list[int] = []
    first_call_may_finish = threading.Event()

    def slow_first(matrix: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        calls.append(matrix.shape[0])
        if len(calls) == 1:
            first_call_may_finish.wait(timeout=10)
        return model.predict(matrix)

    predictor = CoalescingPredictor(slow_first)
    results: dict[int, npt.NDArray[np.float32]] = {}

    def request(index: int) -> None:
        results[index] = predictor.predict(np.ascontiguousarray(rows[index : index + 1]))

    first = threading.Thread(target=request, args=(0,))
    first.start()
    deadline = time.monotonic() + 10
    while not calls and time.monotonic() < deadline:
        time.sleep(0.001)
    later = [threading.Thread(target=request, args=(i,)) for i in (1, 2, 3)]
    for thread in later:
        thread.start()
    while len(predictor._queue) < 3 and time.monotonic() < deadline:
        time.sleep(0.001)
    first_call_may_finish.set()
    for thread in [first, *later]:
        thread.join(timeout=10)
    assert calls == [1, 3]
    for index in range(4):
        np.testing.assert_array_equal(results[index], expected[index : index + 1])


def test_a_failed_prediction_reaches_every_waiting_request() -> None:
    def failing(matrix: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        raise RuntimeError("model exploded")

    predictor = CoalescingPredictor(failing)
    with pytest.raises(RuntimeError, match="model exploded"):
        predictor.predict(np.zeros((1, 3), dtype=np.float32))
    # The predictor stays usable after a failure.
    with pytest.raises(RuntimeError, match="model exploded"):
        predictor.predict(np.zeros((2, 3), dtype=np.float32))


def test_single_request_is_a_plain_predict(model: Model, rows: npt.NDArray[np.float32]) -> None:
    predictor = CoalescingPredictor(model.predict)
    np.testing.assert_array_equal(predictor.predict(rows[:4]), model.predict(rows[:4]))
