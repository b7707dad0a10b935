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


# ------------------------------------------------------------------ budget-sized schedules (plan, limit, measure)


@pytest.mark.parametrize("overhead", [0.0, 0.7, 5.0])
def test_plan_is_the_largest_step_count_that_fits(overhead):
    rng = np.random.default_rng(0)
    for _ in range(500):
        budget_s = float(rng.uniform(1, 2000))
        step = float(rng.uniform(0.001, 0.5))
        per_epoch = int(rng.integers(1, 500))
        if step + overhead > budget_s:
            continue

        def cost(n, step=step, per_epoch=per_epoch):
            return n * step + -(-n // per_epoch) * overhead

        plan = budget.plan_steps(budget_s, step, per_epoch, overhead)
        assert cost(plan.total_steps) <= budget_s < cost(plan.total_steps + 1)
        assert plan.planned_seconds == pytest.approx(cost(plan.total_steps))
        assert (plan.epochs - 1) * per_epoch < plan.total_steps <= plan.epochs * per_epoch


def test_plan_counts_the_per_epoch_overhead():
    # 10 steps of 1 s per epoch + 5 s of validation per epoch: 15 s per full epoch
    plan = budget.plan_steps(50.9, 1.0, 10, 5.0)
    assert plan.total_steps == 30 and plan.epochs == 3  # 3 full epochs take 45 s; a 31st step costs 1 + 5 s
    plan = budget.plan_steps(51, 1.0, 10, 5.0)
    assert plan.total_steps == 31 and plan.epochs == 4 and plan.planned_seconds == 51


@pytest.mark.parametrize(
    "args, name",
    [((0, 1.0, 10), "budget_seconds"), ((10, 0, 10), "seconds_per_step"), ((10, 1.0, 0), "steps_per_epoch"),
     ((10, 1.0, 10, -1.0), "epoch_overhead_seconds"), ((0.5, 1.0, 10), "budget_seconds"),
     ((float("inf"), 1.0, 10), "budget_seconds"), ((10, 1.0, 2.5), "steps_per_epoch")],
)
def test_plan_rejects_bad_arguments(args, name):
    with pytest.raises(ValueError, match=name):
        budget.plan_steps(*args)


def test_plan_epochs():
    assert budget.plan_epochs(2.5, 40) == 100
    assert budget.plan_epochs(0.001, 40) == 1
    with pytest.raises(ValueError, match="epochs"):
        budget.plan_epochs(0, 40)


class LearningRates(keras.callbacks.Callback):
    """The learning rate the optimizer applies at each training step."""

    def __init__(self, schedule):
        super().__init__()
        self.schedule, self.rates = schedule, []

    def on_train_batch_begin(self, batch, logs=None):
        self.rates.append(float(self.schedule(int(self.model.optimizer.iterations))))


def test_step_limit_ends_the_schedule_on_its_last_step():
    from cnn_helpers import mnist

    plan = budget.plan_steps(11.0, 1.0, 8)  # 11 steps: one full epoch of 8 and 3 batches of the next
    assert plan.total_steps == 11 and plan.epochs == 2
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    schedule = mnist.OneCycle(max_lr=0.1, total_steps=plan.total_steps)
    model.compile(optimizer=keras.optimizers.SGD(schedule), loss="sparse_categorical_crossentropy")
    x, y = np.zeros((64, 4), np.float32), np.zeros(64, np.int64)
    limit, lr = budget.StepLimit(plan.total_steps), LearningRates(schedule)
    history = model.fit(x, y, batch_size=8, epochs=plan.epochs + 5, verbose=0, callbacks=[limit, lr])
    assert limit.batches == plan.total_steps == int(model.optimizer.iterations)
    assert len(history.history["loss"]) == plan.epochs
    # the rates rise to the peak, then fall towards the end rate, reached at the last step
    # steps 0..10 were taken: the rate rose to the peak (step 3) and fell to its last value before the end
    # rate of step 11, which the budget does not reach; a longer fit would have stopped mid-schedule
    assert len(lr.rates) == plan.total_steps
    assert max(lr.rates) == pytest.approx(0.1, rel=1e-5) and lr.rates.index(max(lr.rates)) == schedule.peak_step
    assert lr.rates[-1] == pytest.approx(float(schedule(plan.total_steps - 1)))
    assert lr.rates[-1] < 0.1 * 0.05 and float(schedule(plan.total_steps)) == pytest.approx(1e-5, rel=1e-4)


@pytest.mark.parametrize("steps", [0, -2, 1.5, True])
def test_step_limit_rejects_bad_steps(steps):
    with pytest.raises(ValueError, match="steps="):
        budget.StepLimit(steps)


def test_seconds_per_step_is_the_median_of_timed_steps_after_warmup():
    class Recorder:
        def __init__(self):
            self.calls = 0

        def train_on_batch(self, x, y):
            self.calls += 1

    readings = iter([0, 1, 0, 3, 0, 2, 0, 50, 0, 2])  # 5 timed steps: 1, 3, 2, 50, 2 -> median 2
    model = Recorder()
    batches = ((i, i) for i in range(100))
    seconds = budget.seconds_per_step(model, batches, steps=5, warmup=2, clock=lambda: next(readings))
    assert seconds == 2 and model.calls == 7


def test_seconds_per_step_needs_enough_batches_and_trains_a_real_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    batch = (np.zeros((8, 4), np.float32), np.zeros(8, np.int64))
    with pytest.raises(ValueError, match="batches"):
        budget.seconds_per_step(model, [batch] * 4, steps=5, warmup=1)
    seconds = budget.seconds_per_step(model, [batch] * 10, steps=5, warmup=1)
    assert 0 < seconds < 5 and int(model.optimizer.iterations) >= 6


class CostModel:
    """A model whose calls advance a shared clock: fit 11 s (10 of tracing + 1 step), a step 1 s, the first
    evaluation 7 s and later ones 2 s."""

    def __init__(self, clock):
        self.clock, self.evaluations, self.steps = clock, 0, 0

    def fit(self, data, epochs, shuffle, verbose):
        self.clock.t += 11

    def train_on_batch(self, x, y):
        self.clock.t += 1
        self.steps += 1

    def evaluate(self, data, verbose):
        self.clock.t += 7 if self.evaluations == 0 else 2
        self.evaluations += 1


class StillClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


class Batches:
    def take(self, n):
        return self

    def repeat(self):
        return ((i, i) for i in range(10_000))


def test_calibrate_separates_fixed_costs_from_per_step_and_per_epoch_costs():
    clock = StillClock()
    models = []
    calibration = budget.calibrate(lambda: models.append(CostModel(clock)) or models[-1], Batches(),
                                   validation=Batches(), steps=4, warmup=2, clock=clock)
    assert calibration == budget.Calibration(step_seconds=1, trace_seconds=10, validation_seconds=2,
                                             validation_trace_seconds=5, seconds=11 + 6 + 7 + 2)
    assert len(models) == 1 and models[0].steps == 6
    plan = calibration.plan(100, steps_per_epoch=10)  # 85 s after the fixed costs: 70 steps + 7 validations
    assert (plan.total_steps, plan.epochs, plan.planned_seconds, plan.budget_seconds) == (70, 7, 84, 100)
    assert budget.Calibration(1, 10, 0, 0, 0).plan(100, 10).total_steps == 90  # no validation
    with pytest.raises(ValueError, match="budget_seconds=16"):
        calibration.plan(16, steps_per_epoch=10)


def test_calibrate_times_a_real_model_without_touching_the_kept_one():
    import tensorflow as tf

    def build():
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        return model

    data = tf.data.Dataset.from_tensor_slices((np.zeros((64, 4), np.float32), np.zeros(64, np.int64))).batch(8)
    calibration = budget.calibrate(build, data, validation=data, steps=5, warmup=1)
    assert 0 < calibration.step_seconds < calibration.seconds
    assert calibration.trace_seconds >= 0 and calibration.validation_seconds > 0
    assert calibration.plan(60, steps_per_epoch=8).planned_seconds <= 60 - calibration.trace_seconds


def test_frontier_figure_draws_one_line_per_recipe_and_crosses_for_other_seeds():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def run(recipe, seed, minutes, accuracy):
        return {"recipe": recipe, "seed": seed, "budget_seconds": 60 * minutes, "train_seconds": 58 * minutes,
                "test_accuracy": accuracy}

    record = {"seed": 42, "runs": [run("baseline", 42, 2, 0.98), run("ours", 42, 2, 0.99),
                                   run("baseline", 42, 5, 0.985), run("ours", 42, 5, 0.995),
                                   run("ours", 43, 5, 0.996)]}
    fig = budget.frontier_figure(record)
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"baseline (seed 42)", "ours (seed 42)"}
    np.testing.assert_allclose(lines["ours (seed 42)"].get_ydata(), [99.0, 99.5])
    np.testing.assert_allclose(lines["baseline (seed 42)"].get_xdata(), [58 * 2 / 60, 58 * 5 / 60])
    (crosses,) = ax.collections
    np.testing.assert_allclose(crosses.get_offsets(), [[58 * 5 / 60, 99.6]])
    plt.close(fig)
    with pytest.raises(ValueError, match="record"):
        budget.frontier_figure({"seed": 42, "runs": []})


def test_frontier_rows_pair_the_recipes_at_each_budget_and_refuse_gaps():
    def run(recipe, seed, minutes, accuracy=0.99):
        return {"recipe": recipe, "seed": seed, "budget_seconds": 60 * minutes, "test_accuracy": accuracy}

    record = {"seed": 42, "runs": [run("ours", 42, 5, 0.995), run("baseline", 42, 5), run("baseline", 42, 2),
                                   run("ours", 42, 2, 0.98), run("ours", 43, 5, 0.5)]}
    rows = budget.frontier_rows(record)
    assert [r["budget_minutes"] for r in rows] == [2, 5]
    assert rows[0]["ours"]["test_accuracy"] == 0.98 and rows[1]["ours"]["test_accuracy"] == 0.995
    assert rows[1]["baseline"]["budget_seconds"] == 300
    record["runs"].pop(1)  # the baseline at 5 min
    with pytest.raises(ValueError, match="0 runs of 'baseline' at 5 min"):
        budget.frontier_rows(record)
    with pytest.raises(ValueError, match="record"):
        budget.frontier_rows({"seed": 1, "runs": [run("ours", 42, 5)]})
