"""TimeBudget stops fit on time, whatever the number of epochs asked for."""

import numpy as np
import pytest

from cnn_helpers import budget, runtime

runtime.import_tensorflow_quietly()
import keras  # noqa: E402


class FakeClock:
    """A clock that advances a fixed step at every reading: a batch 'takes' `step` seconds."""

    def __init__(self, step):
        self.t, self.step = 0.0, step

    def __call__(self):
        self.t += self.step
        return self.t


def tiny_fit(callback, epochs):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x, y = np.zeros((64, 4), np.float32), np.zeros(64, np.int64)
    return model.fit(x, y, batch_size=8, epochs=epochs, verbose=0, callbacks=[callback])  # 8 batches/epoch


def test_budget_stops_after_the_batch_that_crosses_it():
    # each clock reading advances 1 s: start at 1, batch k ends at reading k + 1
    cb = budget.TimeBudget(10, clock=FakeClock(1.0))
    history = tiny_fit(cb, epochs=50)
    assert cb.stopped
    assert cb.batches == 10  # reading 11 - 1 = 10 s >= budget after the 10th batch
    assert len(history.history["loss"]) == 2  # the 10th batch lies in the second epoch of 8
    assert cb.elapsed >= cb.seconds


def test_budget_not_reached_lets_every_epoch_run():
    cb = budget.TimeBudget(1e9, clock=FakeClock(1.0))
    history = tiny_fit(cb, epochs=3)
    assert not cb.stopped and cb.batches == 24 and len(history.history["loss"]) == 3


def test_budget_with_the_real_clock_stops_a_long_fit():
    cb = budget.TimeBudget(0.5)
    history = tiny_fit(cb, epochs=100_000)
    assert cb.stopped and len(history.history["loss"]) < 100_000
    assert 0.5 <= cb.elapsed < 30


@pytest.mark.parametrize("seconds", [0, -1, float("nan")])
def test_budget_rejects_non_positive_seconds(seconds):
    with pytest.raises(ValueError, match="seconds="):
        budget.TimeBudget(seconds)
