"""Training within a wall-clock budget.

:class:`TimeBudget` is a Keras callback that stops ``fit`` once a given number of seconds of training has
elapsed, checked after every batch, so that two recipes can be compared at the same cost on the same machine
(for example a network from random weights given the time a fine-tuning run took).
"""

from __future__ import annotations

import time

import keras


class TimeBudget(keras.callbacks.Callback):
    """Stop training once ``seconds`` of wall time have passed since the start of ``fit``.

    The check runs after every training batch; Keras then ends the epoch (running validation, if any) and
    returns. The training can overrun the budget by at most one batch plus that validation.

    Attributes:
        seconds: the budget, in seconds.
        elapsed: wall time (s) from the start of ``fit`` to its end.
        stopped: True if the budget, not the number of epochs, ended the training.
        batches: training batches run.
    """

    def __init__(self, seconds: float, clock=time.perf_counter) -> None:
        super().__init__()
        if not seconds > 0:
            raise ValueError(f"seconds={seconds!r}: the budget must be a positive number of seconds")
        self.seconds = float(seconds)
        self._clock = clock
        self._start = 0.0
        self.elapsed = 0.0
        self.stopped = False
        self.batches = 0

    def on_train_begin(self, logs=None) -> None:
        self._start = self._clock()
        self.stopped = False
        self.batches = 0

    def on_train_batch_end(self, batch, logs=None) -> None:
        self.batches += 1
        if self._clock() - self._start >= self.seconds:
            self.stopped = True
            self.model.stop_training = True

    def on_train_end(self, logs=None) -> None:
        self.elapsed = self._clock() - self._start
