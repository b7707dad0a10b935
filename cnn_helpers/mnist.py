"""MNIST from scratch: a tf.data pipeline, two CNNs, a one-cycle schedule, timing and error analysis.

The pieces of question 9 of the CNN chapter ("build your own CNN and reach the highest accuracy on MNIST"),
each testable on its own:

* :data:`SPLITS`, :func:`load_split`, :func:`load_arrays` and :func:`make_dataset`: deterministic train /
  validation / test splits by TFDS slicing, and a pipeline decode → float32 in ``[0, 1]`` → cache → seeded
  shuffle → batch → (optional augmentation) → prefetch.
* :func:`augmentation`: small random shifts, rotations and zooms as Keras preprocessing layers, usable in
  the pipeline (``make_dataset(..., augment=True)``) or inside a model (``our_model(augment_in_model=True)``).
* :func:`baseline_model`: Géron's solution to this exercise (two 3 × 3 convolutions, max pooling, dropout,
  a dense layer, Nadam). :func:`our_model`: a compact VGG-style CNN with BatchNormalization.
* :class:`OneCycle` (a serializable ``LearningRateSchedule``) and :func:`sample_schedule` to plot it.
* :class:`TimeToAccuracy`: a callback recording wall time per epoch, training images per second and the
  first wall time the validation accuracy reaches given thresholds; :func:`time_to_threshold` does the same
  from a finished record.
* :func:`confusion_matrix`, :func:`misclassified`, :func:`mistakes_figure`, :func:`save_and_reload` and
  :func:`predict_one`.

Units: images are 28 × 28 × 1 pixels; pixel values are ``[0, 255]`` (uint8) before :func:`make_dataset` and
``[0, 1]`` (float32) after it; times are wall-clock seconds; accuracies are fractions in ``[0, 1]``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
from keras import layers

from cnn_helpers import architectures

#: Deterministic splits of MNIST by TFDS slicing: the last 5,000 training images are the validation set.
SPLITS: dict[str, str] = {
    "train": "train[:55000]",
    "validation": "train[55000:]",
    "test": "test",
}

#: MNIST images: height × width × channels, in pixels.
INPUT_SHAPE = (28, 28, 1)
NUM_CLASSES = 10


def _check_positive_int(**values: Any) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name}={value!r}: must be a positive integer")


def _check_fraction(name: str, value: float, *, allow_zero: bool = True, allow_one: bool = False) -> None:
    low_ok = value >= 0 if allow_zero else value > 0
    high_ok = value <= 1 if allow_one else value < 1
    if not (low_ok and high_ok):
        raise ValueError(f"{name}={value!r}: must be a fraction in {'[' if allow_zero else '('}0, 1"
                         f"{']' if allow_one else ')'}")


# --------------------------------------------------------------------------------------------------- data


def load_split(which: str, *, limit: int | None = None):
    """One of :data:`SPLITS` as a ``tf.data.Dataset`` of ``(uint8 image 28×28×1, int64 label)`` pairs.

    Args:
        which: ``"train"``, ``"validation"`` or ``"test"``.
        limit: keep only the first ``limit`` examples (``None``: all), e.g. for a smoke run.

    Loads through :func:`cnn_helpers.data.load`, so it fails fast when MNIST is not available.
    """
    from cnn_helpers import data

    if which not in SPLITS:
        raise ValueError(f"which={which!r}: must be one of {', '.join(SPLITS)}")
    if limit is not None:
        _check_positive_int(limit=limit)
    ds = data.load("mnist", split=SPLITS[which], as_supervised=True, shuffle_files=False)
    return ds.take(limit) if limit is not None else ds


def load_arrays(which: str, *, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One of :data:`SPLITS` (its first ``limit`` digits) as NumPy arrays: ``(uint8 images [n, 28, 28, 1],
    int64 labels [n])``, loaded through :func:`load_split`."""
    import tensorflow as tf

    ds = load_split(which, limit=limit)
    images, labels = [], []
    for x, y in ds.batch(10_000).prefetch(tf.data.AUTOTUNE):
        images.append(x.numpy())
        labels.append(y.numpy())
    return (np.concatenate(images).reshape((-1, *INPUT_SHAPE)).astype(np.uint8),
            np.concatenate(labels).astype(np.int64))


def augmentation(
    shift: float = 0.1,
    rotation_degrees: float = 10.0,
    zoom: float = 0.1,
    seed: int = 42,
) -> keras.Sequential:
    """Random small shifts, rotations and zooms, as Keras preprocessing layers (active only in training).

    Args:
        shift: largest shift as a fraction of the image side (0.1 → up to 2.8 pixels), both axes.
        rotation_degrees: largest rotation, in degrees, either way.
        zoom: largest zoom in or out, as a fraction of the image side.
        seed: seed of the three random layers.

    Empty pixels are filled with 0 (MNIST's black background). A value of 0 leaves out that layer.
    """
    _check_fraction("shift", shift)
    _check_fraction("zoom", zoom)
    if not 0 <= rotation_degrees < 180:
        raise ValueError(f"rotation_degrees={rotation_degrees!r}: must be in [0, 180)")
    steps: list[layers.Layer] = []
    if shift:
        steps.append(layers.RandomTranslation(shift, shift, fill_mode="constant", seed=seed))
    if rotation_degrees:
        steps.append(layers.RandomRotation(rotation_degrees / 360.0, fill_mode="constant", seed=seed + 1))
    if zoom:
        steps.append(layers.RandomZoom(zoom, zoom, fill_mode="constant", seed=seed + 2))
    return keras.Sequential(steps, name="augmentation")


def make_dataset(
    source: Any,
    *,
    batch_size: int,
    training: bool,
    seed: int = 42,
    augment: bool | keras.Layer = False,
    cache: bool = True,
):
    """The input pipeline: decode → float32 in ``[0, 1]`` → cache → shuffle (seeded) → batch → prefetch.

    Args:
        source: a ``tf.data.Dataset`` of ``(uint8 image, label)`` pairs (e.g. from :func:`load_split`) or a
            tuple ``(images, labels)`` of NumPy arrays, images ``(n, 28, 28)`` or ``(n, 28, 28, 1)`` in
            ``[0, 255]``.
        batch_size: images per batch.
        training: shuffle (with ``seed``, a new order each epoch) and apply ``augment`` only if True.
        seed: seed of the shuffle; the same seed gives the same batches in the same order.
        augment: False, True (the default :func:`augmentation`), or a Keras layer applied to each training
            batch inside the pipeline (in parallel with the training step thanks to prefetch).
        cache: keep the decoded images in memory after the first epoch.

    Returns:
        A ``tf.data.Dataset`` of ``(float32 images (b, 28, 28, 1) in [0, 1], int64 labels (b,))``.
    """
    import tensorflow as tf

    _check_positive_int(batch_size=batch_size)
    if isinstance(source, tuple):
        if len(source) != 2:
            raise ValueError("source: a tuple must be (images, labels)")
        images, labels = np.asarray(source[0]), np.asarray(source[1])
        if images.ndim == 3:
            images = images[..., None]
        if images.shape[1:] != INPUT_SHAPE or len(images) != len(labels):
            raise ValueError(f"source: images {images.shape} and labels {labels.shape} must be "
                             "(n, 28, 28[, 1]) and (n,)")
        ds = tf.data.Dataset.from_tensor_slices((images, labels.astype(np.int64)))
    elif isinstance(source, tf.data.Dataset):
        ds = source
    else:
        raise ValueError("source: expected a tf.data.Dataset or (images, labels), "
                         f"got {type(source).__name__}")

    def decode(image, label):
        image = tf.cast(tf.reshape(image, INPUT_SHAPE), tf.float32) / 255.0
        return image, tf.cast(label, tf.int64)

    ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if cache:
        ds = ds.cache()
    if training:
        n = int(ds.cardinality())
        buffer = n if n > 0 else 60_000
        ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if training and augment is not False:
        layer = augmentation(seed=seed) if augment is True else augment
        if not callable(layer):
            raise ValueError(f"augment={augment!r}: must be a bool or a Keras layer")
        ds = ds.map(lambda x, y: (layer(x, training=True), y), num_parallel_calls=1, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


# ------------------------------------------------------------------------------------------------- models


def baseline_model(compile: bool = True, kernel_initializer: str = "glorot_uniform") -> keras.Sequential:
    """Géron's solution to this exercise: Conv(32) → Conv(64) → MaxPool → Dropout → Dense(128) → Dropout.

    The model of exercise 9 in the notebook of chapter 14 of A. Géron, *Hands-On Machine Learning with
    Scikit-Learn, Keras, and TensorFlow* (3rd edition, 2022), trained there with Nadam, batch 32 (Keras's
    default) for 10 epochs. Both convolutions are 3 × 3 with "same" padding and ReLU; the pool is 2 × 2; the
    dropout rates are 0.25 (after the pool) and 0.5 (after the dense layer); the output layer is a 10-way
    softmax. Dropout(0.25) comes before ``Flatten`` here and after it in the notebook, the same operation.
    If ``compile``, it is compiled with Nadam (Keras defaults), sparse categorical cross-entropy and
    accuracy. Géron holds out the last 5,000 images of ``keras.datasets.mnist`` in that file's order;
    :data:`SPLITS` slices TFDS's stored (shuffled) order, so the validation digits differ from his.

    Args:
        compile: compile the model as in the recipe.
        kernel_initializer: of the convolutions and of the hidden dense layer. The default, Keras's
            ``"glorot_uniform"``, is what the book's stored run used; Géron's 3rd-edition notebook uses
            ``"he_normal"``.
    """
    model = keras.Sequential(
        [
            keras.Input(shape=INPUT_SHAPE),
            layers.Conv2D(32, 3, padding="same", activation="relu", name="conv1",
                          kernel_initializer=kernel_initializer),
            layers.Conv2D(64, 3, padding="same", activation="relu", name="conv2",
                          kernel_initializer=kernel_initializer),
            layers.MaxPooling2D(2, name="pool"),
            layers.Dropout(0.25, name="dropout1"),
            layers.Flatten(name="flatten"),
            layers.Dense(128, activation="relu", name="dense", kernel_initializer=kernel_initializer),
            layers.Dropout(0.5, name="dropout2"),
            layers.Dense(NUM_CLASSES, activation="softmax", name="output"),
        ],
        name="baseline",
    )
    if compile:
        model.compile(optimizer=keras.optimizers.Nadam(), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
    return model


def our_model(
    stages: Sequence[Sequence[int]] = ((32, 32), (64, 64), (128,)),
    dropout: float = 0.3,
    augment_in_model: bool = False,
    seed: int = 42,
    bn_momentum: float = 0.9,
) -> keras.Model:
    """A compact VGG-style CNN: stages of 3 × 3 Conv → BatchNorm → ReLU, a 2 × 2 max pool between stages.

    Args:
        stages: filters of each convolution, grouped by stage; the default is 32-32 | 64-64 | 128 (the
            feature maps are 28 × 28, 14 × 14 and 7 × 7 pixels).
        dropout: dropout rate before the output layer (and half of it after each pooled stage).
        augment_in_model: put :func:`augmentation` as the first layers (active only during ``fit``).
        seed: seed of the augmentation and dropout layers.
        bn_momentum: momentum of BatchNormalization's moving statistics; 0.9 (not Keras' 0.99) lets them
            settle within a few dozen steps, so validation accuracy is meaningful from the first epoch.

    The head is global average pooling → dropout → a 10-way softmax. Convolutions have no bias (the
    BatchNormalization after them has one). Returns an uncompiled model: see :func:`compile_ours`.
    """
    if not stages or any(not stage for stage in stages):
        raise ValueError(f"stages={stages!r}: give at least one stage, each with at least one convolution")
    for stage in stages:
        for filters in stage:
            _check_positive_int(stages=filters)
    _check_fraction("dropout", dropout)
    _check_fraction("bn_momentum", bn_momentum)
    inputs = keras.Input(shape=INPUT_SHAPE, name="image")
    x = augmentation(seed=seed)(inputs) if augment_in_model else inputs
    x = architectures.conv_bn_stages(x, stages, bn_momentum=bn_momentum, stage_dropout=dropout / 2, seed=seed)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    if dropout:
        x = layers.Dropout(dropout, seed=seed, name="dropout_head")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="output")(x)
    return keras.Model(inputs, outputs, name="ours")


def compile_ours(
    model: keras.Model,
    *,
    total_steps: int,
    max_lr: float = 3e-3,
    weight_decay: float = 1e-4,
    jit_compile: bool | str = "auto",
) -> keras.Model:
    """Compile ``model`` with AdamW under a :class:`OneCycle` schedule of ``total_steps`` optimizer steps.

    Args:
        total_steps: epochs × batches per epoch.
        max_lr: the peak learning rate.
        weight_decay: AdamW's decoupled weight decay (per step, multiplied by the learning rate).
        jit_compile: passed to ``Model.compile`` ("auto" means no XLA on a CPU-only machine).
    """
    schedule = OneCycle(max_lr=max_lr, total_steps=total_steps)
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=schedule, weight_decay=weight_decay),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=jit_compile,
    )
    return model


# ----------------------------------------------------------------------------------------------- schedule


@keras.saving.register_keras_serializable(package="cnn_helpers")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """One-cycle learning rate, two-phase cosine variant: a cosine rise to ``max_lr``, then a cosine fall.

    The rate starts at ``max_lr / div_factor``, reaches ``max_lr`` at step ``round(warmup_fraction ×
    total_steps)`` and falls to ``max_lr / final_div_factor`` at step ``total_steps``; it stays there after.

    This is the variant of fastai and PyTorch's ``torch.optim.lr_scheduler.OneCycleLR``, and the defaults
    ``warmup_fraction=0.3`` and ``div_factor=25`` are PyTorch's (``pct_start``, ``div_factor``). Two
    differences from PyTorch: momentum (Adam's beta_1) is not cycled, and ``final_div_factor`` divides
    ``max_lr`` here, where PyTorch divides the start rate (its end rate is ``max_lr / (div_factor ×
    final_div_factor)``). The original 1cycle policy of L. N. Smith and N. Topin, "Super-Convergence: Very
    Fast Training of Neural Networks Using Large Learning Rates" (2017), is a linear rise and a linear fall
    of equal length followed by a final decay to a much lower rate.

    Args:
        max_lr: the peak learning rate.
        total_steps: optimizer steps of the whole run (epochs × batches per epoch).
        warmup_fraction: fraction of the steps spent rising, in (0, 1).
        div_factor: start rate = ``max_lr / div_factor`` (≥ 1).
        final_div_factor: end rate = ``max_lr / final_div_factor`` (≥ 1).
    """

    def __init__(
        self,
        max_lr: float,
        total_steps: int,
        warmup_fraction: float = 0.3,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
    ) -> None:
        if not max_lr > 0:
            raise ValueError(f"max_lr={max_lr!r}: must be positive")
        _check_positive_int(total_steps=total_steps)
        _check_fraction("warmup_fraction", warmup_fraction, allow_zero=False)
        if div_factor < 1:
            raise ValueError(f"div_factor={div_factor!r}: must be at least 1")
        if final_div_factor < 1:
            raise ValueError(f"final_div_factor={final_div_factor!r}: must be at least 1")
        self.max_lr = float(max_lr)
        self.total_steps = int(total_steps)
        self.warmup_fraction = float(warmup_fraction)
        self.div_factor = float(div_factor)
        self.final_div_factor = float(final_div_factor)

    @property
    def peak_step(self) -> int:
        """The step at which the rate equals ``max_lr`` (at least 1)."""
        return max(1, round(self.warmup_fraction * self.total_steps))

    def __call__(self, step):
        from keras import ops

        step = ops.cast(step, "float32")
        start = self.max_lr / self.div_factor
        end = self.max_lr / self.final_div_factor
        peak = float(self.peak_step)
        rest = float(max(1, self.total_steps - self.peak_step))
        up = ops.clip(step / peak, 0.0, 1.0)
        down = ops.clip((step - peak) / rest, 0.0, 1.0)
        rising = start + (self.max_lr - start) * (1.0 - ops.cos(math.pi * up)) / 2.0
        falling = end + (self.max_lr - end) * (1.0 + ops.cos(math.pi * down)) / 2.0
        return ops.where(step <= peak, rising, falling)

    def get_config(self) -> dict[str, Any]:
        return {
            "max_lr": self.max_lr,
            "total_steps": self.total_steps,
            "warmup_fraction": self.warmup_fraction,
            "div_factor": self.div_factor,
            "final_div_factor": self.final_div_factor,
        }


def sample_schedule(schedule: Callable[[Any], Any], steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Evaluate a learning-rate schedule at steps ``0 .. steps - 1``, for a plot.

    Returns:
        ``(steps, rates)``: two NumPy arrays of length ``steps`` (int64 and float64).
    """
    _check_positive_int(steps=steps)
    x = np.arange(steps, dtype=np.int64)
    rates = np.asarray(keras.ops.convert_to_numpy(schedule(x)), dtype=np.float64).reshape(-1)
    if rates.size == 1 and steps > 1:  # a schedule that does not broadcast over a vector of steps
        rates = np.array([float(keras.ops.convert_to_numpy(schedule(int(s)))) for s in x])
    return x, rates


# ------------------------------------------------------------------------------------------------- timing


def time_to_threshold(
    elapsed_s: Sequence[float], accuracies: Sequence[float], threshold: float
) -> tuple[int, float] | None:
    """First epoch (1-based) and wall time (s) at which ``accuracies`` reaches ``threshold``, or None.

    Args:
        elapsed_s: wall time since the start of training at the end of each epoch, in seconds.
        accuracies: the validation accuracy after each epoch, a fraction in [0, 1].
        threshold: the accuracy to reach, a fraction in (0, 1].
    """
    if len(elapsed_s) != len(accuracies):
        raise ValueError(f"elapsed_s: {len(elapsed_s)} values but accuracies has {len(accuracies)}")
    _check_fraction("threshold", threshold, allow_zero=False, allow_one=True)
    if any(b < a for a, b in zip(elapsed_s, elapsed_s[1:])):
        raise ValueError("elapsed_s: must not decrease (cumulative seconds since the start)")
    for epoch, (t, acc) in enumerate(zip(elapsed_s, accuracies), start=1):
        if acc >= threshold:
            return epoch, float(t)
    return None


class TimeToAccuracy(keras.callbacks.Callback):
    """Record wall time per epoch, training images per second, and the time to reach accuracy thresholds.

    After ``fit``, the attributes are:

    * ``epoch_seconds``: wall time of each epoch, training and validation included (s).
    * ``train_seconds``: wall time of each epoch's training loop only, up to its last batch (s).
    * ``elapsed_seconds``: wall time since the start of ``fit`` at the end of each epoch (s).
    * ``accuracies``: the monitored value after each epoch.
    * ``reached``: ``{threshold: (epoch, seconds since the start)}`` for each threshold reached.
    * :meth:`images_per_second`: ``train_images / train_seconds`` per epoch.

    Args:
        thresholds: accuracies to watch, fractions in (0, 1], e.g. ``(0.99, 0.995)``.
        monitor: the log key, ``"val_accuracy"`` by default.
        train_images: images in one training epoch, for :meth:`images_per_second`.
        clock: a function returning seconds (``time.perf_counter``); tests pass a fake one.
    """

    def __init__(
        self,
        thresholds: Sequence[float] = (0.99, 0.992, 0.995),
        monitor: str = "val_accuracy",
        train_images: int | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        super().__init__()
        for t in thresholds:
            _check_fraction("thresholds", t, allow_zero=False, allow_one=True)
        if train_images is not None:
            _check_positive_int(train_images=train_images)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.monitor = monitor
        self.train_images = train_images
        self.clock = clock
        self.epoch_seconds: list[float] = []
        self.train_seconds: list[float] = []
        self.elapsed_seconds: list[float] = []
        self.accuracies: list[float] = []
        self.reached: dict[float, tuple[int, float]] = {}
        self._start = self._epoch_start = self._last_batch = 0.0

    def on_train_begin(self, logs=None) -> None:
        self._start = self.clock()

    def on_epoch_begin(self, epoch, logs=None) -> None:
        self._epoch_start = self._last_batch = self.clock()

    def on_train_batch_end(self, batch, logs=None) -> None:
        self._last_batch = self.clock()

    def on_epoch_end(self, epoch, logs=None) -> None:
        now = self.clock()
        logs = logs or {}
        if self.monitor not in logs:
            raise ValueError(f"monitor={self.monitor!r} is not in the logs ({', '.join(logs) or 'empty'}); "
                             "pass validation_data to fit")
        self.epoch_seconds.append(now - self._epoch_start)
        self.train_seconds.append(self._last_batch - self._epoch_start)
        self.elapsed_seconds.append(now - self._start)
        self.accuracies.append(float(logs[self.monitor]))
        for t in self.thresholds:
            if t not in self.reached and self.accuracies[-1] >= t:
                self.reached[t] = (len(self.accuracies), self.elapsed_seconds[-1])

    def images_per_second(self) -> list[float]:
        """Training images per second of each epoch's training loop (needs ``train_images``)."""
        if self.train_images is None:
            raise ValueError("train_images=None: give the number of images per epoch to the callback")
        return [self.train_images / s if s > 0 else float("nan") for s in self.train_seconds]

    def summary(self) -> dict[str, Any]:
        """A JSON-ready record: per-epoch lists and ``reached`` as ``{"0.99": [epoch, seconds], ...}``."""
        out: dict[str, Any] = {
            "epoch_seconds": self.epoch_seconds,
            "train_seconds": self.train_seconds,
            "elapsed_seconds": self.elapsed_seconds,
            self.monitor: self.accuracies,
            "reached": {f"{t:g}": list(v) for t, v in self.reached.items()},
        }
        if self.train_images is not None:
            out["images_per_second"] = self.images_per_second()
        return out


# -------------------------------------------------------------------------------------------------- errors


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Counts ``m[i, j]`` of examples of true class ``i`` predicted as class ``j`` (int64, rows = truth)."""
    _check_positive_int(num_classes=num_classes)
    y_true = np.asarray(y_true).reshape(-1)
    y_pred = np.asarray(y_pred).reshape(-1)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_pred: {y_pred.size} labels but y_true has {y_true.size}")
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.size and (y.min() < 0 or y.max() >= num_classes or not np.issubdtype(y.dtype, np.integer)):
            raise ValueError(f"{name}: labels must be integers in [0, {num_classes})")
    m = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(m, (y_true, y_pred), 1)
    return m


def misclassified(
    probabilities: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The errors, most confident first: ``(indices, predicted classes, confidences)``.

    Args:
        probabilities: ``(n, classes)`` softmax outputs.
        labels: ``(n,)`` true classes.
    """
    probabilities = np.asarray(probabilities)
    labels = np.asarray(labels).reshape(-1)
    if probabilities.ndim != 2 or len(probabilities) != len(labels):
        raise ValueError(f"probabilities: expected shape ({len(labels)}, classes), got {probabilities.shape}")
    predicted = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    order = wrong[np.argsort(-confidence[wrong], kind="stable")]
    return order, predicted[order], confidence[order]


def mistakes_figure(images: np.ndarray, probabilities: np.ndarray, labels: np.ndarray, count: int = 24,
                    columns: int = 8):
    """A gallery of misclassified images, most confident first, titled "true → predicted (confidence %)".

    Args:
        images: ``(n, 28, 28)`` or ``(n, 28, 28, 1)``, any range (shown in grey levels).
        probabilities: ``(n, 10)`` softmax outputs; labels: ``(n,)`` true classes.
        count: the most images shown.
    """
    import matplotlib.pyplot as plt

    _check_positive_int(count=count, columns=columns)
    idx, pred, conf = misclassified(probabilities, labels)
    idx, pred, conf = idx[:count], pred[:count], conf[:count]
    n = max(1, len(idx))
    rows = math.ceil(n / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(1.5 * columns, 1.75 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i, p, c in zip(axes.flat, idx, pred, conf):
        ax.imshow(np.asarray(images[i]).squeeze(), cmap="gray_r")
        ax.set_title(f"{int(labels[i])} → {int(p)} ({100 * c:.0f}%)", fontsize=9)
    if len(idx) == 0:
        axes.flat[0].set_title("no mistakes")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------- saving, inference


def save_and_reload(model: keras.Model, path: str | os.PathLike) -> keras.Model:
    """Save ``model`` to a ``.keras`` file and load it back (custom objects of this module included)."""
    path = os.fspath(path)
    if not path.endswith(".keras"):
        raise ValueError(f"path={path!r}: must end with .keras")
    model.save(path)
    return keras.models.load_model(path, custom_objects={"OneCycle": OneCycle})


def predict_one(model: keras.Model, image: np.ndarray) -> tuple[int, float]:
    """Classify one image: ``(class, confidence)``.

    Args:
        image: ``(28, 28)`` or ``(28, 28, 1)``; uint8 in ``[0, 255]`` is scaled to ``[0, 1]``, floats are used
            as they are (they must already be in ``[0, 1]``).
    """
    image = np.asarray(image)
    if image.shape not in ((28, 28), INPUT_SHAPE):
        raise ValueError(f"image: expected shape (28, 28) or (28, 28, 1), got {image.shape}")
    x = image.reshape((1, *INPUT_SHAPE))
    x = x.astype(np.float32) / 255.0 if image.dtype == np.uint8 else x.astype(np.float32)
    probabilities = np.asarray(model(x, training=False))[0]
    return int(probabilities.argmax()), float(probabilities.max())
