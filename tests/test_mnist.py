"""MNIST helpers: parameter counts, the one-cycle schedule, time-to-accuracy, the pipeline, errors, saving."""

import math
import os

import keras
import numpy as np
import pytest

from cnn_helpers import data, mnist

HAVE_MNIST = os.path.isdir(os.path.join(data.data_dir(), "mnist"))


def synthetic(n: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random uint8 "images" (n, 28, 28) with a bright square whose position encodes nothing; labels 0..9."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = np.arange(n, dtype=np.int64) % 10
    return images, labels


# ----------------------------------------------------------------------------------------------- models


def test_baseline_parameters_match_the_hand_formula():
    conv1 = 3 * 3 * 1 * 32 + 32
    conv2 = 3 * 3 * 32 * 64 + 64
    dense = (14 * 14 * 64) * 128 + 128  # "same" padding keeps 28 × 28; the pool halves it to 14 × 14
    output = 128 * 10 + 10
    model = mnist.baseline_model(compile=False)
    assert model.count_params() == conv1 + conv2 + dense + output == 1_625_866
    counts = [layer.count_params() for layer in model.layers if layer.count_params()]
    assert counts == [conv1, conv2, dense, output]
    assert model.layers[2].output.shape == (None, 14, 14, 64)


def test_baseline_is_compiled_with_nadam():
    model = mnist.baseline_model()
    assert isinstance(model.optimizer, keras.optimizers.Nadam)


def test_baseline_initializer():
    def initializers(model):
        return [type(layer.kernel_initializer).__name__ for layer in model.layers
                if layer.name in ("conv1", "conv2", "dense")]

    assert initializers(mnist.baseline_model(compile=False)) == ["GlorotUniform"] * 3  # the stored run
    he = mnist.baseline_model(compile=False, kernel_initializer="he_normal")  # Géron's 3rd edition
    assert initializers(he) == ["HeNormal"] * 3
    assert type(he.get_layer("output").kernel_initializer).__name__ == "GlorotUniform"


def test_our_model_parameters_match_the_hand_formula():
    stages = ((8, 8), (16,))
    model = mnist.our_model(stages=stages, dropout=0.2)
    conv = 3 * 3 * 1 * 8 + 3 * 3 * 8 * 8 + 3 * 3 * 8 * 16  # no biases
    bn = 4 * (8 + 8 + 16)  # gamma, beta, moving mean, moving variance
    head = 16 * 10 + 10
    assert model.count_params() == conv + bn + head
    assert model.get_layer("pool1").output.shape == (None, 14, 14, 8)


def test_augmentation_in_model_adds_no_parameters_and_is_off_at_inference():
    plain = mnist.our_model(stages=((4,),), dropout=0.0)
    augmented = mnist.our_model(stages=((4,),), dropout=0.0, augment_in_model=True)
    assert plain.count_params() == augmented.count_params()
    augmented.set_weights(plain.get_weights())
    x = np.random.default_rng(1).random((3, 28, 28, 1), dtype=np.float32)
    np.testing.assert_allclose(plain(x, training=False), augmented(x, training=False), rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs, name",
    [({"stages": ()}, "stages"), ({"stages": ((32, 0),)}, "stages"), ({"dropout": 1.0}, "dropout")],
)
def test_our_model_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        mnist.our_model(**kwargs)


# --------------------------------------------------------------------------------------------- schedule


def test_one_cycle_shape():
    schedule = mnist.OneCycle(max_lr=0.01, total_steps=1000, warmup_fraction=0.25, div_factor=20,
                              final_div_factor=1000)
    steps, rates = mnist.sample_schedule(schedule, 1001)
    assert steps[0] == 0 and len(rates) == 1001
    assert schedule.peak_step == 250 and int(np.argmax(rates)) == 250
    assert rates[0] == pytest.approx(0.01 / 20, rel=1e-5)
    assert rates[250] == pytest.approx(0.01, rel=1e-5)
    assert rates[1000] == pytest.approx(0.01 / 1000, rel=1e-4)
    assert np.all(np.diff(rates[:251]) > 0) and np.all(np.diff(rates[250:]) < 0)
    # cosine: halfway up the rise the rate is the mean of start and peak
    assert rates[125] == pytest.approx((0.01 / 20 + 0.01) / 2, rel=1e-4)
    # after the last step it stays at the end rate
    assert float(schedule(5000)) == pytest.approx(0.01 / 1000, rel=1e-4)


def test_one_cycle_config_round_trip():
    schedule = mnist.OneCycle(max_lr=3e-3, total_steps=77, warmup_fraction=0.4)
    config = keras.optimizers.schedules.serialize(schedule)
    again = keras.optimizers.schedules.deserialize(config)
    assert isinstance(again, mnist.OneCycle) and again.get_config() == schedule.get_config()
    np.testing.assert_allclose(mnist.sample_schedule(again, 80)[1], mnist.sample_schedule(schedule, 80)[1])


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"max_lr": 0.0, "total_steps": 10}, "max_lr"),
        ({"max_lr": 0.1, "total_steps": 0}, "total_steps"),
        ({"max_lr": 0.1, "total_steps": 10, "warmup_fraction": 1.0}, "warmup_fraction"),
        ({"max_lr": 0.1, "total_steps": 10, "div_factor": 0.5}, "div_factor"),
    ],
)
def test_one_cycle_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        mnist.OneCycle(**kwargs)


# ----------------------------------------------------------------------------------------------- timing


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_time_to_accuracy_callback_on_a_fake_history():
    clock = FakeClock()
    cb = mnist.TimeToAccuracy(thresholds=(0.99, 0.995), train_images=1000, clock=clock)
    cb.on_train_begin()
    history = [(10.0, 2.0, 0.98), (20.0, 1.0, 0.991), (5.0, 1.0, 0.990), (10.0, 2.0, 0.996)]
    for epoch, (train_s, val_s, acc) in enumerate(history):
        cb.on_epoch_begin(epoch)
        clock.now += train_s / 2
        cb.on_train_batch_end(0)
        clock.now += train_s / 2
        cb.on_train_batch_end(1)
        clock.now += val_s
        cb.on_epoch_end(epoch, {"val_accuracy": acc, "loss": 0.1})
    assert cb.train_seconds == [10.0, 20.0, 5.0, 10.0]
    assert cb.epoch_seconds == [12.0, 21.0, 6.0, 12.0]
    assert cb.elapsed_seconds == [12.0, 33.0, 39.0, 51.0]
    assert cb.reached == {0.99: (2, 33.0), 0.995: (4, 51.0)}
    assert cb.images_per_second() == [100.0, 50.0, 200.0, 100.0]
    assert mnist.time_to_threshold(cb.elapsed_seconds, cb.accuracies, 0.99) == (2, 33.0)
    assert mnist.time_to_threshold(cb.elapsed_seconds, cb.accuracies, 0.999) is None
    assert cb.summary()["reached"] == {"0.99": [2, 33.0], "0.995": [4, 51.0]}


def test_time_to_accuracy_needs_the_monitored_value():
    cb = mnist.TimeToAccuracy()
    cb.on_train_begin()
    cb.on_epoch_begin(0)
    with pytest.raises(ValueError, match="monitor='val_accuracy'"):
        cb.on_epoch_end(0, {"accuracy": 0.9})


def test_time_to_threshold_bad_arguments():
    with pytest.raises(ValueError, match="elapsed_s"):
        mnist.time_to_threshold([1.0, 2.0], [0.5], 0.9)
    with pytest.raises(ValueError, match="elapsed_s"):
        mnist.time_to_threshold([2.0, 1.0], [0.5, 0.6], 0.9)
    with pytest.raises(ValueError, match="threshold"):
        mnist.time_to_threshold([1.0], [0.5], 99.0)
    with pytest.raises(ValueError, match="train_images"):
        mnist.TimeToAccuracy().images_per_second()


# --------------------------------------------------------------------------------------------- pipeline


def test_pipeline_shapes_dtypes_and_range():
    images, labels = synthetic(70)
    ds = mnist.make_dataset((images, labels), batch_size=32, training=False)
    batches = list(ds.as_numpy_iterator())
    assert [len(b[0]) for b in batches] == [32, 32, 6]
    x, y = batches[0]
    assert x.shape == (32, 28, 28, 1) and x.dtype == np.float32 and y.dtype == np.int64
    assert 0.0 <= x.min() and x.max() <= 1.0
    # evaluation keeps the order; values are pixel / 255
    np.testing.assert_allclose(x[..., 0], images[:32] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, labels[:32])


def test_pipeline_shuffle_is_seeded_and_changes_each_epoch():
    images, labels = synthetic(64)

    def first_batches(seed: int, epochs: int = 2) -> list[np.ndarray]:
        ds = mnist.make_dataset((images, labels), batch_size=16, training=True, seed=seed)
        return [next(iter(ds))[1].numpy() for _ in range(epochs)]

    a, b, c = first_batches(1), first_batches(1), first_batches(2)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    assert not np.array_equal(a[0], a[1])  # a new order each epoch
    assert sorted(np.concatenate([x[1] for x in mnist.make_dataset(
        (images, labels), batch_size=16, training=True).as_numpy_iterator()])) == sorted(labels)


def test_augmentation_keeps_shape_and_label_and_is_seeded():
    images = np.zeros((16, 28, 28), dtype=np.uint8)
    images[:, 10:18, 10:18] = 255  # a centred square: shifts of ≤ 2.8 px and ±10° keep it inside
    labels = np.arange(16) % 10
    runs = []
    for _ in range(2):
        keras.utils.set_random_seed(0)
        ds = mnist.make_dataset((images, labels), batch_size=16, training=True, seed=3, augment=True)
        runs.append(next(iter(ds)))
    x, y = (t.numpy() for t in runs[0])
    assert x.shape == (16, 28, 28, 1) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0 + 1e-6
    assert sorted(y) == sorted(labels)
    plain = images[..., None] / 255.0
    assert np.abs(x - plain).sum(axis=(1, 2, 3)).min() > 0  # every image moved
    assert np.all(x.sum(axis=(1, 2, 3)) > 0.5 * plain.sum(axis=(1, 2, 3))[0])  # the square stays in view
    np.testing.assert_allclose(runs[0][0].numpy(), runs[1][0].numpy(), atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 8, "source": (np.zeros((4, 28, 27)), np.zeros(4))}, "source"),
        ({"batch_size": 8, "source": [1, 2, 3]}, "source"),
    ],
)
def test_pipeline_bad_arguments(kwargs, name):
    kwargs.setdefault("source", synthetic(8))
    with pytest.raises(ValueError, match=name):
        mnist.make_dataset(training=False, **kwargs)


def test_augmentation_bad_arguments():
    with pytest.raises(ValueError, match="shift"):
        mnist.augmentation(shift=1.5)
    with pytest.raises(ValueError, match="rotation_degrees"):
        mnist.augmentation(rotation_degrees=-1)


@pytest.mark.skipif(not HAVE_MNIST, reason="MNIST is not prepared under TFDS_DATA_DIR")
def test_real_mnist_splits_are_disjoint_and_deterministic():
    train = mnist.make_dataset(mnist.load_split("train", limit=200), batch_size=200, training=False)
    val = mnist.make_dataset(mnist.load_split("validation", limit=200), batch_size=200, training=False)
    x_train, y_train = next(iter(train))
    x_val, _ = next(iter(val))
    again, _ = next(iter(mnist.make_dataset(mnist.load_split("train", limit=200), batch_size=200,
                                            training=False)))
    assert x_train.shape == (200, 28, 28, 1) and set(np.unique(y_train.numpy())) == set(range(10))
    np.testing.assert_array_equal(x_train.numpy(), again.numpy())
    train_set = {x.tobytes() for x in x_train.numpy()}
    assert not train_set & {x.tobytes() for x in x_val.numpy()}
    with pytest.raises(ValueError, match="which"):
        mnist.load_split("valid")


# ----------------------------------------------------------------------------------------------- errors


def test_confusion_matrix_against_a_hand_example():
    y_true = [0, 0, 1, 2, 2, 2]
    y_pred = [0, 1, 1, 2, 0, 2]
    expected = np.array([[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    m = mnist.confusion_matrix(y_true, y_pred, num_classes=3)
    np.testing.assert_array_equal(m, expected)
    assert m.dtype == np.int64 and m.sum() == 6 and np.trace(m) == 4
    with pytest.raises(ValueError, match="y_pred"):
        mnist.confusion_matrix([0, 1], [0], num_classes=3)
    with pytest.raises(ValueError, match="y_true"):
        mnist.confusion_matrix([0, 3], [0, 1], num_classes=3)


def test_misclassified_orders_errors_by_confidence():
    p = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.3, 0.7]])
    labels = np.array([0, 0, 0, 1])
    idx, pred, conf = mnist.misclassified(p, labels)
    np.testing.assert_array_equal(idx, [1, 2])
    np.testing.assert_array_equal(pred, [1, 1])
    np.testing.assert_allclose(conf, [0.8, 0.6])
    fig = mnist.mistakes_figure(np.zeros((4, 28, 28)), p, labels, count=4, columns=2)
    assert [ax.get_title() for ax in fig.axes if ax.get_title()] == ["0 → 1 (80%)", "0 → 1 (60%)"]


# ------------------------------------------------------------------------------------------------ saving


def test_save_reload_gives_identical_predictions(tmp_path):
    keras.utils.set_random_seed(0)
    model = mnist.compile_ours(mnist.our_model(stages=((4,), (8,)), augment_in_model=True), total_steps=10)
    images, labels = synthetic(16)
    model.fit(mnist.make_dataset((images, labels), batch_size=8, training=True), epochs=1, verbose=0)
    again = mnist.save_and_reload(model, tmp_path / "ours.keras")
    x = images[..., None].astype(np.float32) / 255.0
    np.testing.assert_array_equal(model.predict(x, verbose=0), again.predict(x, verbose=0))
    assert isinstance(again.optimizer._learning_rate, mnist.OneCycle)
    label, confidence = mnist.predict_one(again, images[0])
    probs = again.predict(x[:1], verbose=0)[0]
    assert label == int(probs.argmax()) and confidence == pytest.approx(float(probs.max()), rel=1e-6)
    with pytest.raises(ValueError, match="path"):
        mnist.save_and_reload(model, tmp_path / "ours.h5")
    with pytest.raises(ValueError, match="image"):
        mnist.predict_one(again, np.zeros((28, 28, 3)))
    assert math.isclose(sum(again.predict(x[:1], verbose=0)[0]), 1.0, rel_tol=1e-5)


@pytest.mark.skipif(not HAVE_MNIST, reason="MNIST is not prepared under TFDS_DATA_DIR")
def test_load_arrays_matches_the_dataset():
    images, labels = mnist.load_arrays("validation", limit=300)
    assert images.shape == (300, 28, 28, 1) and images.dtype == np.uint8 and labels.dtype == np.int64
    x, y = next(iter(mnist.load_split("validation", limit=300).batch(300)))
    np.testing.assert_array_equal(images, x.numpy().reshape(images.shape))
    np.testing.assert_array_equal(labels, y.numpy())
    with pytest.raises(ValueError, match="which="):
        mnist.load_arrays("valid")
