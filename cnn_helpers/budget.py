"""Training within a wall-clock budget.

:class:`TimeBudget` is a Keras callback that stops ``fit`` once a given number of seconds of training has
elapsed, checked after every batch, so that two recipes can be compared at the same cost on the same machine
(for example a network from random weights given the time a fine-tuning run took).

A schedule that anneals (one-cycle, cosine) must know in advance how many optimizer steps it has: stopping it
early leaves the learning rate high. :func:`calibrate` times, on a throw-away copy of a model, the fixed cost
of a ``fit`` call, one training step and one validation pass on this machine (:func:`seconds_per_step` times
the step); :meth:`Calibration.plan` (or :func:`plan_steps`, and :func:`plan_epochs` for a budget in epochs)
turns the budget into a number of steps that fits it, and :class:`StepLimit` stops ``fit`` after exactly that
many steps, so the schedule ends when the budget does. A machine that slows down during the run makes it
overrun: the plan rests on the speed measured before it. :func:`frontier_rows` and :func:`frontier_figure` read
the results of ``benchmarks/mnist_frontier.py``.

Units: seconds of wall time throughout.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterable

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


class StepLimit(keras.callbacks.Callback):
    """Stop ``fit`` after exactly ``steps`` optimizer steps (training batches), counted across epochs.

    Keras ends the current epoch at once (running its validation, if any) and returns. With ``epochs`` set to
    :attr:`StepPlan.epochs` and a schedule sized to :attr:`StepPlan.total_steps`, the last step taken is the
    schedule's last one.

    Attributes:
        steps: the limit.
        batches: training batches run so far in this ``fit``.
    """

    def __init__(self, steps: int) -> None:
        super().__init__()
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps={steps!r}: must be a positive integer")
        self.steps = steps
        self.batches = 0

    def on_train_begin(self, logs=None) -> None:
        self.batches = 0

    def on_train_batch_end(self, batch, logs=None) -> None:
        self.batches += 1
        if self.batches >= self.steps:
            self.model.stop_training = True


@dataclasses.dataclass(frozen=True)
class StepPlan:
    """How many optimizer steps fit in a budget.

    Attributes:
        total_steps: optimizer steps to take (size the learning-rate schedule to this).
        steps_per_epoch: batches in one pass over the training set.
        seconds_per_step: the measured (or assumed) wall time of one training step, in seconds.
        epoch_overhead_seconds: wall time added once per epoch (validation, shuffling), in seconds.
        budget_seconds: the budget the plan fits, in seconds.
    """

    total_steps: int
    steps_per_epoch: int
    seconds_per_step: float
    epoch_overhead_seconds: float
    budget_seconds: float

    @property
    def epochs(self) -> int:
        """Epochs to ask ``fit`` for: the last one may be partial (stop it with :class:`StepLimit`)."""
        return math.ceil(self.total_steps / self.steps_per_epoch)

    @property
    def planned_seconds(self) -> float:
        """The predicted wall time of the plan, in seconds (at most ``budget_seconds``)."""
        return self.total_steps * self.seconds_per_step + self.epochs * self.epoch_overhead_seconds


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or math.isinf(value):
        raise ValueError(f"{name}={value!r}: must be a positive, finite number")
    return float(value)


def plan_steps(
    budget_seconds: float,
    seconds_per_step: float,
    steps_per_epoch: int,
    epoch_overhead_seconds: float = 0.0,
) -> StepPlan:
    """The largest number of training steps whose predicted wall time fits ``budget_seconds``.

    The predicted time of ``n`` steps is ``n × seconds_per_step + ceil(n / steps_per_epoch) ×
    epoch_overhead_seconds``.

    Args:
        budget_seconds: the training budget, in seconds.
        seconds_per_step: wall time of one training step on this machine, in seconds
            (:func:`seconds_per_step` measures it).
        steps_per_epoch: batches per epoch.
        epoch_overhead_seconds: wall time added once per epoch (e.g. the validation pass), in seconds.

    Raises:
        ValueError: a non-positive or non-finite argument, or a budget too small for a single step.
    """
    budget = _positive("budget_seconds", budget_seconds)
    step = _positive("seconds_per_step", seconds_per_step)
    if isinstance(steps_per_epoch, bool) or not isinstance(steps_per_epoch, int) or steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch={steps_per_epoch!r}: must be a positive integer")
    if epoch_overhead_seconds != 0:
        overhead = _positive("epoch_overhead_seconds", epoch_overhead_seconds)
    else:
        overhead = 0.0

    def cost(n: int) -> float:
        return n * step + math.ceil(n / steps_per_epoch) * overhead

    n = math.floor(budget / (step + overhead / steps_per_epoch))
    while n > 0 and cost(n) > budget:
        n -= 1
    while cost(n + 1) <= budget:
        n += 1
    if n < 1:
        raise ValueError(
            f"budget_seconds={budget_seconds!r}: too small for one step of {step:.3g} s "
            f"(+ {overhead:.3g} s per epoch)"
        )
    return StepPlan(n, steps_per_epoch, step, overhead, budget)


def plan_epochs(epochs: float, steps_per_epoch: int) -> int:
    """Total optimizer steps of a budget given in epochs (a fraction of an epoch is allowed), at least 1."""
    epochs = _positive("epochs", epochs)
    if isinstance(steps_per_epoch, bool) or not isinstance(steps_per_epoch, int) or steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch={steps_per_epoch!r}: must be a positive integer")
    return max(1, round(epochs * steps_per_epoch))


def seconds_per_step(
    model: keras.Model,
    batches: Iterable,
    *,
    steps: int = 20,
    warmup: int = 3,
    clock=time.perf_counter,
) -> float:
    """The median wall time of one training step of a compiled ``model``, in seconds.

    Runs ``warmup + steps`` calls of ``model.train_on_batch`` on consecutive ``(x, y)`` batches (the first
    ``warmup`` build and trace the step and are not timed). It TRAINS the model: measure on a throw-away copy
    built the same way, then build (and seed) the model you keep.

    Raises:
        ValueError: non-positive ``steps``, negative ``warmup``, or fewer batches than ``warmup + steps``.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps={steps!r}: must be a positive integer")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup={warmup!r}: must be a non-negative integer")
    times = []
    seen = 0
    for seen, (x, y) in enumerate(batches, start=1):
        if seen <= warmup:
            model.train_on_batch(x, y)
        else:
            start = clock()
            model.train_on_batch(x, y)
            times.append(clock() - start)
        if seen == warmup + steps:
            break
    if len(times) < steps:
        raise ValueError(f"batches: {seen} given, warmup + steps = {warmup + steps} needed")
    times.sort()
    middle = len(times) // 2
    return times[middle] if len(times) % 2 else (times[middle - 1] + times[middle]) / 2


@dataclasses.dataclass(frozen=True)
class Calibration:
    """What a fit will cost on this machine, measured by :func:`calibrate` (all in seconds of wall time).

    Attributes:
        step_seconds: median wall time of one training step.
        trace_seconds: fixed cost of a ``fit`` call beyond its steps (building and tracing the training
            function), paid once per call.
        validation_seconds: one pass over the validation data once traced (0 without validation data),
            paid once per epoch.
        validation_trace_seconds: fixed cost of the first evaluation beyond one pass (0 without validation).
        seconds: wall time the calibration itself took.
    """

    step_seconds: float
    trace_seconds: float
    validation_seconds: float
    validation_trace_seconds: float
    seconds: float

    def plan(self, budget_seconds: float, steps_per_epoch: int) -> StepPlan:
        """The steps that fit ``budget_seconds`` (s) once the fixed costs are paid (:func:`plan_steps`).

        Raises:
            ValueError: the budget does not cover the fixed costs and one step (the message names
                ``budget_seconds``).
        """
        budget = _positive("budget_seconds", budget_seconds)
        fixed = self.trace_seconds + self.validation_trace_seconds
        per_step = self.step_seconds + self.validation_seconds / steps_per_epoch
        if budget <= fixed + per_step:
            raise ValueError(
                f"budget_seconds={budget_seconds!r}: does not cover the {fixed:.3g} s of tracing and one step"
            )
        plan = plan_steps(budget - fixed, self.step_seconds, steps_per_epoch, self.validation_seconds)
        return dataclasses.replace(plan, budget_seconds=budget)


def calibrate(
    build,
    train,
    *,
    validation=None,
    steps: int = 30,
    warmup: int = 5,
    clock=time.perf_counter,
) -> Calibration:
    """Time, on a throw-away model, what a budgeted fit of the same model will cost on this machine.

    ``build()`` must return a compiled model built as the one you will keep (its weights are trained and
    discarded). The fixed cost of a fit call is the first ``fit`` on one batch of ``train`` less one step; a
    step is timed by :func:`seconds_per_step` on ``train`` repeated; with ``validation``, one evaluation is
    timed twice (the first includes tracing). ``train`` and ``validation`` are ``tf.data`` datasets of
    ``(x, y)`` batches.

    Use :meth:`Calibration.plan` to turn a budget into steps, then size the schedule to
    ``plan.total_steps`` and stop the fit with :class:`StepLimit`.
    """
    start = clock()
    probe = build()
    tick = clock()
    probe.fit(train.take(1), epochs=1, shuffle=False, verbose=0)
    first_fit = clock() - tick
    step = seconds_per_step(probe, train.repeat(), steps=steps, warmup=warmup, clock=clock)
    validation_seconds = validation_trace = 0.0
    if validation is not None:
        tick = clock()
        probe.evaluate(validation, verbose=0)
        first_evaluation = clock() - tick
        tick = clock()
        probe.evaluate(validation, verbose=0)
        validation_seconds = clock() - tick
        validation_trace = max(0.0, first_evaluation - validation_seconds)
    return Calibration(step, max(0.0, first_fit - step), validation_seconds, validation_trace, clock() - start)


def frontier_figure(record: dict, *, title: str = "MNIST: test accuracy for a given training time"):
    """Test accuracy (%) against training wall time (min) per recipe, from a frontier benchmark's record.

    ``record`` is the JSON written by ``benchmarks/mnist_frontier.py``: its ``runs`` (each with ``recipe``,
    ``seed``, ``budget_seconds``, ``train_seconds``, ``test_accuracy``) and ``seed`` (the frontier's seed; runs
    with other seeds are drawn as crosses). Returns the matplotlib figure.
    """
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    runs = record.get("runs") or []
    if not runs:
        raise ValueError("record: no runs to draw")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    recipes = sorted({r["recipe"] for r in runs}, key=lambda name: (name != "baseline", name))
    for i, recipe in enumerate(recipes):
        line = sorted((r for r in runs if r["recipe"] == recipe and r["seed"] == record["seed"]),
                      key=lambda r: r["budget_seconds"])
        ax.plot([r["train_seconds"] / 60 for r in line], [100 * r["test_accuracy"] for r in line],
                marker="so^D"[i % 4], color=f"C{i}", label=f"{recipe} (seed {record['seed']})")
        extra = [r for r in runs if r["recipe"] == recipe and r["seed"] != record["seed"]]
        if extra:
            ax.scatter([r["train_seconds"] / 60 for r in extra], [100 * r["test_accuracy"] for r in extra],
                       marker="x", color=f"C{i}", label=f"{recipe}, other seeds")
    ax.set_xscale("log")
    budgets = sorted({r["budget_seconds"] / 60 for r in runs})
    ax.set_xticks(budgets, [f"{b:g}" for b in budgets])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("training wall time (min, log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def frontier_rows(record: dict) -> list[dict]:
    """The frontier benchmark's runs at its own seed, one row per budget: ``{"budget_minutes", <recipe>: run}``.

    Rows are sorted by budget; each recipe's run at that budget (a dict as in ``record["runs"]``) is under the
    recipe's name. Raises ValueError if a recipe lacks a run at some budget (``record`` is incomplete).
    """
    runs = [r for r in record.get("runs") or [] if r["seed"] == record.get("seed")]
    if not runs:
        raise ValueError("record: no runs at the record's seed")
    recipes = sorted({r["recipe"] for r in runs})
    rows = []
    for seconds in sorted({r["budget_seconds"] for r in runs}):
        row = {"budget_minutes": seconds / 60}
        for recipe in recipes:
            found = [r for r in runs if r["recipe"] == recipe and r["budget_seconds"] == seconds]
            if len(found) != 1:
                raise ValueError(f"record: {len(found)} runs of {recipe!r} at {seconds / 60:g} min, expected 1")
            row[recipe] = found[0]
        rows.append(row)
    return rows
