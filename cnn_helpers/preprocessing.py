"""Preprocessing an image dataset for a CNN: each backbone's own input scaling, resizing strategies, and
resampling a minority class (balanced sampling, and SMOTE-style interpolation to show why it fails on pixels).

* :data:`BACKBONE_MODULES` and :func:`preprocess_summary`: what ``keras.applications.<module>.preprocess_input``
  does to a batch (range and per-channel mean), for backbones whose modes differ ("caffe", "tf", "torch", none).
* :func:`resize` (``"squash"``, ``"crop"``, ``"letterbox"``) and :func:`resize_costs`: what each way of
  making a photo square costs, as a distortion factor or a fraction of pixels lost or padded.
* :func:`balanced_indices`: indices that draw every class equally often (oversampling the minority).
* :func:`smote_samples`: SMOTE's interpolation between a sample and one of its nearest neighbours of the same
  class (Chawla et al., 2002), here on raw pixels; :func:`mid_gray_fraction` measures the ghosting it makes.

Pixel values are in ``[0, 255]`` unless said otherwise; sizes are in pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: keras.applications submodule of each backbone, and the mode of its ``preprocess_input``.
BACKBONE_MODULES: dict[str, tuple[str, str]] = {
    "VGG16": ("vgg16", "caffe: RGB → BGR, minus the ImageNet mean pixel, 0–255 scale"),
    "ResNet50": ("resnet50", "caffe: RGB → BGR, minus the ImageNet mean pixel, 0–255 scale"),
    "ResNet50V2": ("resnet_v2", "tf: x / 127.5 − 1, range [−1, 1]"),
    "MobileNetV2": ("mobilenet_v2", "tf: x / 127.5 − 1, range [−1, 1]"),
    "InceptionV3": ("inception_v3", "tf: x / 127.5 − 1, range [−1, 1]"),
    "DenseNet121": ("densenet", "torch: x / 255, minus the ImageNet mean, divided by its std"),
    "EfficientNetB0": ("efficientnet", "none: identity; the model standardizes inside (ImageNet mean, std)"),
}


@dataclass(frozen=True)
class PreprocessSummary:
    """What a ``preprocess_input`` made of a batch: overall min / max, and the mean of each output channel."""

    minimum: float
    maximum: float
    channel_means: tuple[float, float, float]


def preprocess_summary(images, module: str) -> PreprocessSummary:
    """Apply ``keras.applications.<module>.preprocess_input`` to a copy of ``images`` (float, [N, H, W, 3],
    RGB in [0, 255]) and summarize the result (channels in the order the function outputs them)."""
    import keras

    if not hasattr(keras.applications, module):
        raise ValueError(f"module={module!r}: not a keras.applications submodule")
    x = np.array(images, dtype=np.float32, copy=True)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"images: need [N, H, W, 3], got shape {x.shape}")
    out = np.asarray(getattr(keras.applications, module).preprocess_input(x))
    means = tuple(float(v) for v in out.reshape(-1, 3).mean(axis=0))
    return PreprocessSummary(float(out.min()), float(out.max()), means)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------ resize

RESIZE_METHODS = ("squash", "crop", "letterbox")


def resize(image, size: int, method: str):
    """Make an ``[H, W, 3]`` image ``size`` × ``size``: ``"squash"`` (resize both sides, the aspect ratio
    changes), ``"crop"`` (resize the short side to ``size``, keep the central square) or ``"letterbox"``
    (resize the long side to ``size``, pad the rest with zeros). Returns float32 pixels, antialiased."""
    import tensorflow as tf

    if method not in RESIZE_METHODS:
        raise ValueError(f"method={method!r}: must be one of {', '.join(RESIZE_METHODS)}")
    if size < 1:
        raise ValueError(f"size={size!r}: must be positive")
    image = tf.cast(image, tf.float32)
    if method == "squash":
        return tf.image.resize(image, (size, size), antialias=True)
    if method == "letterbox":
        return tf.image.resize_with_pad(image, size, size, antialias=True)
    h, w = tf.shape(image)[0], tf.shape(image)[1]
    scale = size / tf.cast(tf.minimum(h, w), tf.float32)
    new = tf.cast(tf.math.ceil(tf.cast(tf.stack([h, w]), tf.float32) * scale), tf.int32)
    image = tf.image.resize(image, new, antialias=True)
    top, left = (new[0] - size) // 2, (new[1] - size) // 2
    return image[top : top + size, left : left + size]


def resize_costs(heights, widths) -> dict[str, np.ndarray]:
    """Per photo, what making it square costs: ``"squash"``: the factor by which shapes are stretched (long
    side / short side, 1 = no distortion); ``"crop"``: the fraction of the photo cut off; ``"letterbox"``: the
    fraction of the square output that is padding. (The last two are both ``1 − short / long``.)"""
    h, w = np.asarray(heights, np.float64), np.asarray(widths, np.float64)
    if h.shape != w.shape or h.size == 0 or (h <= 0).any() or (w <= 0).any():
        raise ValueError("heights, widths: need two non-empty arrays of positive sizes of the same shape")
    short, long = np.minimum(h, w), np.maximum(h, w)
    return {"squash": long / short, "crop": 1 - short / long, "letterbox": 1 - short / long}


# -------------------------------------------------------------------------------------------- resampling


def balanced_indices(labels, n: int, seed: int = 0) -> np.ndarray:
    """``n`` indices into ``labels`` such that each class present is drawn with equal probability (uniformly,
    with replacement, within a class): random oversampling of the minority, undersampling of the majority."""
    y = np.asarray(labels)
    if y.ndim != 1 or y.size == 0:
        raise ValueError("labels: need a non-empty 1-D array")
    if n < 1:
        raise ValueError(f"n={n!r}: must be positive")
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    which = rng.integers(len(classes), size=n)
    out = np.empty(n, dtype=np.int64)
    for i, c in enumerate(classes):
        members = np.flatnonzero(y == c)
        slots = np.flatnonzero(which == i)
        out[slots] = members[rng.integers(len(members), size=len(slots))]
    return out


@dataclass(frozen=True)
class SmoteSamples:
    """Synthetic samples ``x[i] + lam · (x[j] − x[i])``, with ``j`` one of the ``k`` nearest neighbours of ``i``.

    Attributes:
        samples: the new samples, shaped like the inputs.
        first, second: indices ``i`` and ``j`` of the two parents.
        lam: the interpolation weights, uniform in ``[0, 1)``.
    """

    samples: np.ndarray
    first: np.ndarray
    second: np.ndarray
    lam: np.ndarray


def smote_samples(x, n: int, k: int = 5, seed: int = 0) -> SmoteSamples:
    """SMOTE's synthetic minority samples from ``x`` (all of one class; any shape per sample, compared as flat
    vectors with the Euclidean distance), as Chawla et al. (2002) define them."""
    data = np.asarray(x, dtype=np.float64)
    if data.ndim < 2 or len(data) < 2:
        raise ValueError(f"x: need at least two samples, got shape {data.shape}")
    if n < 1:
        raise ValueError(f"n={n!r}: must be positive")
    if not 1 <= k < len(data):
        raise ValueError(f"k={k!r}: must lie in [1, {len(data) - 1}]")
    flat = data.reshape(len(data), -1)
    sq = np.sum(flat**2, axis=1)
    dist = sq[:, None] + sq[None, :] - 2 * flat @ flat.T
    np.fill_diagonal(dist, np.inf)
    neighbours = np.argsort(dist, axis=1, kind="stable")[:, :k]
    rng = np.random.default_rng(seed)
    first = rng.integers(len(data), size=n)
    second = neighbours[first, rng.integers(k, size=n)]
    lam = rng.random(n)
    shape = (n,) + (1,) * (data.ndim - 1)
    samples = data[first] + lam.reshape(shape) * (data[second] - data[first])
    return SmoteSamples(samples, first, second, lam)


def mid_gray_fraction(images, low: float = 0.25, high: float = 0.75) -> float:
    """Among inked pixels (value > ``low`` / 2; images scaled to ``[0, 1]``), the fraction with a value strictly
    between ``low`` and ``high``: small for pen strokes, large for blends of two images (double exposures)."""
    x = np.asarray(images, dtype=np.float64)
    if x.size == 0 or x.min() < 0 or x.max() > 1:
        raise ValueError("images: need a non-empty array scaled to [0, 1]")
    if not 0 < low < high < 1:
        raise ValueError(f"low={low!r}, high={high!r}: need 0 < low < high < 1")
    inked = x > low / 2
    if not inked.any():
        raise ValueError("images: no inked pixel")
    return float(np.mean((x[inked] > low) & (x[inked] < high)))
