"""A small modern CNN for CIFAR-10 (interview question 45): splits, input pipeline, network, stand-in data.

* :data:`SPLITS` and :func:`load_split`: CIFAR-10 through :func:`cnn_helpers.data.load` (``tfds.load``); the
  validation split is carved from the end of the training split by TFDS slicing, the test split is kept for
  one final evaluation. Where CIFAR-10 is neither prepared nor downloadable, :func:`load_split` raises
  :class:`cnn_helpers.data.DatasetUnavailableError` at once, with what to set.
* :func:`synthetic_splits`: a tiny, generated 32 × 32 × 3, 10-class stand-in with the same element spec,
  so the same code runs where CIFAR-10 is missing. It says nothing about CIFAR-10 accuracy.
* :func:`build_model`: augmentation layers (active only in ``fit``) → rescaling to [0, 1] → stages of 3 × 3
  Conv → BatchNorm → ReLU with 2 × 2 max pooling between them → global average pooling → dropout → softmax.
* :func:`make_dataset`: cache → shuffle (seeded, new order each epoch) → batch → prefetch.

Train with :func:`cnn_helpers.mnist.compile_ours` (AdamW under the one-cycle schedule
:class:`cnn_helpers.mnist.OneCycle`); nothing in it is specific to MNIST.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
from keras import layers

from cnn_helpers import architectures

#: CIFAR-10's image shape (pixels, pixels, RGB channels) and number of classes.
INPUT_SHAPE = (32, 32, 3)
NUM_CLASSES = 10
#: The class names, in label order.
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
#: TFDS slices: the last 10 % of the training split validates, the test split is used once.
SPLITS: dict[str, str] = {"train": "train[:90%]", "validation": "train[90%:]", "test": "test"}


def _positive_int(value: Any, argument: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{argument}={value!r}: must be a positive int")
    return int(value)


def load_split(which: str, *, limit: int | None = None):
    """One of :data:`SPLITS` of CIFAR-10 as a ``tf.data.Dataset`` of ``(uint8 32×32×3 image, int64 label)``.

    Args:
        which: ``"train"``, ``"validation"`` or ``"test"``.
        limit: keep only the first ``limit`` examples (``None``: all).

    Raises:
        ValueError: ``which`` or ``limit`` is invalid.
        cnn_helpers.data.DatasetUnavailableError: CIFAR-10 is not prepared under ``TFDS_DATA_DIR`` and
            cannot be downloaded (raised at once, before any download is attempted).
    """
    from cnn_helpers import data

    if which not in SPLITS:
        raise ValueError(f"which={which!r}: must be one of {', '.join(SPLITS)}")
    if limit is not None:
        _positive_int(limit, "limit")
    ds = data.load("cifar10", split=SPLITS[which], as_supervised=True, shuffle_files=False)
    return ds.take(limit) if limit is not None else ds


def synthetic_images(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` generated 32 × 32 RGB images in 10 classes: a coloured disc on a noisy background.

    The class is the disc's hue (10 hues, 36° apart); its position, radius (5 to 10 pixels) and brightness,
    and the background's noise and tint, are random. Flips and small shifts keep the class, so the
    augmentation of :func:`build_model` is valid for these images too. Labels cycle through the classes,
    then are shuffled (balanced to within one image per class).

    Args:
        n: number of images.
        seed: seed of the generator; the same ``(n, seed)`` gives the same images.

    Returns:
        ``(images uint8 (n, 32, 32, 3) in [0, 255], labels int64 (n,) in [0, 10))``.
    """
    n = _positive_int(n, "n")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % NUM_CLASSES).astype(np.int64)
    hue = labels / NUM_CLASSES * 2 * np.pi
    # A hue on the colour wheel as RGB in [0, 1]: three cosines 120° apart.
    colour = 0.5 + 0.5 * np.cos(hue[:, None] - np.array([0.0, 2.0, 4.0]) * np.pi / 3)
    colour *= rng.uniform(0.6, 1.0, (n, 1))
    background = rng.uniform(0.0, 0.45, (n, 32, 32, 1)) * rng.uniform(0.5, 1.0, (n, 1, 1, 3))
    yy, xx = np.mgrid[0:32, 0:32]
    cy, cx = rng.uniform(8, 24, (2, n))
    radius = rng.uniform(5, 10, n)
    disc = (yy[None] - cy[:, None, None]) ** 2 + (xx[None] - cx[:, None, None]) ** 2 <= radius[:, None, None] ** 2
    noise = rng.normal(0.0, 0.05, (n, 32, 32, 3))
    images = np.where(disc[..., None], colour[:, None, None, :], background) + noise
    return np.clip(np.rint(images * 255), 0, 255).astype(np.uint8), labels


def synthetic_splits(sizes: Mapping[str, int], seed: int = 0) -> dict[str, Any]:
    """Stand-in splits from :func:`synthetic_images`, one seed per split (so no image is in two splits).

    Args:
        sizes: images per split, e.g. ``{"train": 2000, "validation": 500, "test": 500}``.
        seed: base seed; split ``i`` (in the order of ``sizes``) uses ``seed + i``.

    Returns:
        ``{split: tf.data.Dataset of (uint8 image, int64 label)}``, the element spec of :func:`load_split`.
    """
    import tensorflow as tf

    if not sizes:
        raise ValueError("sizes: give at least one split")
    out = {}
    for i, (name, n) in enumerate(sizes.items()):
        images, labels = synthetic_images(_positive_int(n, f"sizes[{name!r}]"), seed=seed + i)
        out[name] = tf.data.Dataset.from_tensor_slices((images, labels))
    return out


def augmentation(seed: int = 42, shift: float = 0.125) -> keras.Sequential:
    """CIFAR's standard augmentation as Keras layers: random horizontal flip, shifts up to ``shift`` × 32 px.

    The layers are active only during ``fit`` (``training=True``); at inference they pass images through.
    ``shift=0.125`` (up to 4 pixels) is comparable to He et al.'s (2016) translation (4-pixel zero padding,
    then a random 32 × 32 crop), not the same: the shifts here are continuous (bilinear) and the vacated
    pixels mirror the image.
    """
    if not 0 <= shift < 1:
        raise ValueError(f"shift={shift!r}: must be in [0, 1)")
    steps: list[layers.Layer] = [layers.RandomFlip("horizontal", seed=seed)]
    if shift:
        steps.append(layers.RandomTranslation(shift, shift, fill_mode="reflect", seed=seed + 1))
    return keras.Sequential(steps, name="augmentation")


def build_model(
    input_shape: tuple[int, int, int] = INPUT_SHAPE,
    num_classes: int = NUM_CLASSES,
    *,
    stages: Sequence[Sequence[int]] = ((32, 32), (64, 64), (128, 128)),
    dropout: float = 0.3,
    augment: bool = True,
    seed: int = 42,
    bn_momentum: float = 0.9,
) -> keras.Model:
    """A small modern CNN for 32 × 32 colour images: BN after every convolution, GAP head, augmentation inside.

    Args:
        input_shape: ``(height, width, channels)`` of the uint8 (or 0–255 float) images, pixels.
        num_classes: size of the softmax.
        stages: filters of the 3 × 3 convolutions, grouped by stage; a 2 × 2 max pool follows every stage
            but the last (32 → 16 → 8 pixels for the default).
        dropout: rate before the output layer.
        augment: put :func:`augmentation` first (active only in ``fit``).
        seed: seed of the augmentation and dropout layers.
        bn_momentum: BatchNormalization's moving-average momentum (0.9: settles within a few dozen steps).

    Returns:
        An uncompiled ``keras.Model`` mapping images to class probabilities ``(batch, num_classes)``.
    """
    if len(input_shape) != 3 or any(_positive_int(v, "input_shape") < 1 for v in input_shape):
        raise ValueError(f"input_shape={input_shape!r}: must be (height, width, channels)")
    if _positive_int(num_classes, "num_classes") < 2:
        raise ValueError(f"num_classes={num_classes!r}: need at least two classes")
    if not stages or any(not stage for stage in stages):
        raise ValueError(f"stages={stages!r}: give at least one stage, each with at least one convolution")
    for stage in stages:
        for filters in stage:
            _positive_int(filters, "stages")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout={dropout!r}: must be in [0, 1)")
    if not 0 <= bn_momentum < 1:
        raise ValueError(f"bn_momentum={bn_momentum!r}: must be in [0, 1)")
    inputs = keras.Input(shape=input_shape, name="image")
    x = augmentation(seed=seed)(inputs) if augment else inputs
    x = layers.Rescaling(1 / 255, name="to_unit_range")(x)
    x = architectures.conv_bn_stages(x, stages, bn_momentum=bn_momentum, seed=seed)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    if dropout:
        x = layers.Dropout(dropout, seed=seed, name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="output")(x)
    return keras.Model(inputs, outputs, name="cifar_cnn")


def make_dataset(source: Any, *, batch_size: int, training: bool, seed: int = 42):
    """``(image, label)`` dataset → cache → shuffle (training only; seeded, new order each epoch) → batch → prefetch.

    Images stay uint8: the model rescales them (:func:`build_model`).
    """
    import tensorflow as tf

    batch_size = _positive_int(batch_size, "batch_size")
    ds = source.cache()
    if training:
        ds = ds.shuffle(10_000, seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
