"""Regularization of CNNs, measured: dropout (element-wise and per channel), its variance shift before batch
normalization, and a small MNIST CNN whose regularizers can be switched on one at a time.

* :func:`dropout_zero_counts` and :func:`binomial_pmf`: how many units ``keras.layers.Dropout`` zeroes per pass
  (a Binomial count, not an exact fraction).
* :func:`neighbour_correlation`: how alike horizontally adjacent activations of a feature map are.
* :func:`recoverable_fraction`: after dropping activations (element-wise, or whole channels as
  ``SpatialDropout2D`` does), the fraction of the dropped values' variance that their surviving neighbours
  still give away.
* :func:`cross_channel_r2`: how much of a channel the other channels at the same position predict (what
  ``SpatialDropout2D`` leaves recoverable).
* :func:`variance_shift_ratio`: the test/train variance ratio of a unit after inverted dropout, which a batch
  normalization placed after the dropout does not see (Li et al., 2019).
* :func:`small_cnn`: a two-convolution MNIST CNN with optional augmentation, dropout (element-wise or spatial,
  after each convolution), weight decay (AdamW) and batch normalization (with dropout before or after it).

Units: activations are unitless floats; rates and fractions lie in ``[0, 1]``; feature maps are NHWC.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def _check_rate(rate: float, name: str = "rate") -> None:
    if not 0 <= rate < 1:
        raise ValueError(f"{name}={rate!r}: must lie in [0, 1)")


def dropout_zero_counts(units: int, rate: float, passes: int, seed: int = 0) -> np.ndarray:
    """Number of zeroed units in each of ``passes`` training-mode calls of ``keras.layers.Dropout(rate)`` on a
    vector of ``units`` ones (one call on a batch of ``passes`` rows: each row is one pass)."""
    import keras

    _check_rate(rate)
    if units < 1 or passes < 1:
        raise ValueError(f"units={units!r}, passes={passes!r}: must be positive")
    layer = keras.layers.Dropout(rate, seed=seed)
    out = np.asarray(layer(np.ones((passes, units), np.float32), training=True))
    return (out == 0).sum(axis=1)


def binomial_pmf(n: int, p: float) -> np.ndarray:
    """P(K = k) for k = 0 … n of a Binomial(n, p) count (computed in log space, stable for large n)."""
    if n < 0 or not 0 <= p <= 1:
        raise ValueError(f"n={n!r}, p={p!r}: need n >= 0 and p in [0, 1]")
    if p in (0.0, 1.0):
        out = np.zeros(n + 1)
        out[0 if p == 0 else n] = 1.0
        return out
    k = np.arange(n + 1)
    log_choose = np.array([math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) for i in k])
    return np.exp(log_choose + k * math.log(p) + (n - k) * math.log1p(-p))


def _maps(maps) -> np.ndarray:
    m = np.asarray(maps, dtype=np.float64)
    if m.ndim != 4 or min(m.shape) < 1:
        raise ValueError(f"maps: need feature maps [N, H, W, C], got shape {m.shape}")
    if m.shape[1] < 3 or m.shape[2] < 3:
        raise ValueError(f"maps: need at least 3 × 3 positions, got {m.shape[1]} × {m.shape[2]}")
    return m


def neighbour_correlation(maps) -> float:
    """Pearson correlation between horizontally adjacent activations ``(x[n, i, j, c], x[n, i, j+1, c])``,
    computed per channel over all images and positions, then averaged over the channels that vary."""
    m = _maps(maps)
    left, right = m[:, :, :-1, :], m[:, :, 1:, :]
    values = []
    for c in range(m.shape[3]):
        a, b = left[..., c].ravel(), right[..., c].ravel()
        if a.std() > 0 and b.std() > 0:
            values.append(np.corrcoef(a, b)[0, 1])
    if not values:
        raise ValueError("maps: every channel is constant")
    return float(np.mean(values))


def recoverable_fraction(maps, rate: float, kind: str = "element", seed: int = 0) -> float:
    """How much of what dropout removes is still given away by the surviving neighbours.

    Drops activations of ``maps`` ([N, H, W, C]) with probability ``rate``: each activation independently
    (``kind="element"``, ``keras.layers.Dropout``) or whole channels of an image (``kind="channel"``,
    ``SpatialDropout2D``). Each dropped activation is then estimated as the mean of its surviving 3 × 3
    neighbours in the same channel (the channel's mean over the batch when none survives). Returns
    ``1 − MSE(estimate) / Var``, the fraction of the dropped activations' variance (per channel, about the
    channel's mean) that the neighbours recover: 1 when all of it is, 0 or below (averaging independent
    neighbours only adds their noise) when nothing is.
    """
    _check_rate(rate)
    if rate == 0:
        raise ValueError("rate=0: nothing is dropped")
    if kind not in ("element", "channel"):
        raise ValueError(f"kind={kind!r}: must be 'element' or 'channel'")
    m = _maps(maps)
    rng = np.random.default_rng(seed)
    n, h, w, c = m.shape
    shape = (n, h, w, c) if kind == "element" else (n, 1, 1, c)
    keep = np.broadcast_to(rng.random(shape) >= rate, m.shape)
    channel_mean = m.mean(axis=(0, 1, 2), keepdims=True)
    kept = np.where(keep, m, 0.0)
    pad = ((0, 0), (1, 1), (1, 1), (0, 0))
    kept_p, keep_p = np.pad(kept, pad), np.pad(keep.astype(np.float64), pad)
    total = np.zeros_like(m)
    count = np.zeros_like(m)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            if di == dj == 0:
                continue
            total += kept_p[:, 1 + di : 1 + di + h, 1 + dj : 1 + dj + w, :]
            count += keep_p[:, 1 + di : 1 + di + h, 1 + dj : 1 + dj + w, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        estimate = np.where(count > 0, total / count, np.broadcast_to(channel_mean, m.shape))
    dropped = ~keep
    if not dropped.any():
        raise ValueError("maps: no activation was dropped (too few activations for this rate)")
    error = np.sum((estimate - m)[dropped] ** 2)
    spread = np.sum((m - channel_mean)[dropped] ** 2)
    if spread == 0:
        raise ValueError("maps: the dropped activations do not vary")
    return float(1 - error / spread)


def cross_channel_r2(maps) -> np.ndarray:
    """Per channel, how much of its variance the *other* channels at the same position predict.

    For each channel ``c`` of ``maps`` ([N, H, W, C], C >= 2): the R² of the least-squares linear fit (with
    intercept) of ``x[..., c]`` on the other ``C − 1`` channels, over all images and positions. This is what
    survives ``SpatialDropout2D``, which removes a channel everywhere but leaves the others: 1 when the other
    channels determine the dropped one linearly, 0 when they say nothing about it. Computed from the covariance
    matrix Σ (normal equations). Channels that are constant get NaN (nothing to predict).
    """
    m = np.asarray(maps, dtype=np.float64)
    if m.ndim != 4 or min(m.shape) < 1:
        raise ValueError(f"maps: need feature maps [N, H, W, C], got shape {m.shape}")
    if m.shape[3] < 2:
        raise ValueError(f"maps: need at least 2 channels, got {m.shape[3]}")
    flat = m.reshape(-1, m.shape[3])
    if len(flat) <= m.shape[3]:
        raise ValueError(f"maps: need more positions ({len(flat)}) than channels ({m.shape[3]})")
    out = np.full(m.shape[3], np.nan)
    varying = flat.std(axis=0) > 0
    if varying.sum() < 2:
        raise ValueError("maps: fewer than two channels vary")
    cov = np.cov(flat[:, varying], rowvar=False)
    r2 = np.empty(len(cov))
    for c in range(len(cov)):
        others = np.arange(len(cov)) != c
        # normal equations of the regression on the other channels (least squares: exact even when singular)
        beta = np.linalg.lstsq(cov[np.ix_(others, others)], cov[others, c], rcond=None)[0]
        r2[c] = cov[c, others] @ beta / cov[c, c]
    out[varying] = np.clip(r2, 0.0, 1.0)
    return out


def variance_shift_ratio(rate: float, mean: float, variance: float) -> float:
    """Test-time over training-time variance of a unit ``x`` (mean ``mean``, variance ``variance``) passed
    through inverted dropout: ``Var_test / Var_train`` with ``Var_train = (variance + mean²) / (1 − rate) − mean²``
    (the mask keeps with probability ``1 − rate`` and scales by ``1 / (1 − rate)``) and ``Var_test = variance``
    (dropout is the identity at test). A batch normalization after the dropout stores ``Var_train`` and divides
    by its square root at test time, so its test outputs have variance ``ratio`` instead of 1."""
    _check_rate(rate)
    if variance < 0:
        raise ValueError(f"variance={variance!r}: must be non-negative")
    train = (variance + mean**2) / (1 - rate) - mean**2
    if train == 0:
        raise ValueError("mean, variance: the unit is constantly 0")
    return float(variance / train)


def small_cnn(
    *,
    dropout: str | None = None,
    rate: float = 0.3,
    weight_decay: float = 0.0,
    augment: bool = False,
    batch_norm: str | None = None,
    learning_rate: float = 1e-3,
    seed: int = 42,
    num_classes: int = 10,
) -> Any:
    """A compiled two-convolution MNIST CNN (28 × 28 × 1 inputs in ``[0, 1]``), regularizers optional.

    ``[augmentation] → (Conv2D(32, 3) → ReLU → [dropout] → MaxPool) → (the same with 64 filters) → Flatten →
    Dense(128, ReLU) → Dense(num_classes, softmax)``, valid padding: a Flatten + Dense head, which overfits a
    small training set readily. With ``batch_norm``, each block is conv → dropout → BN → ReLU or
    conv → BN → ReLU → dropout.

    Args:
        dropout: None, ``"element"`` (``Dropout``) or ``"spatial"`` (``SpatialDropout2D``) after each
            convolution block.
        rate: the dropout rate.
        weight_decay: decoupled weight decay of AdamW (0: plain Adam).
        augment: random shifts, rotations and zooms (``mnist.augmentation``) as the model's first layer,
            active in training only.
        batch_norm: None, ``"dropout_before_bn"`` (conv → dropout → BN → ReLU) or ``"dropout_after_bn"``
            (conv → BN → ReLU → dropout); requires ``dropout``.
        learning_rate: of Adam / AdamW.
        seed: seeds the weights, the dropout masks and the augmentation.
        num_classes: output classes.
    """
    import keras
    from keras import layers

    from cnn_helpers import mnist

    if dropout not in (None, "element", "spatial"):
        raise ValueError(f"dropout={dropout!r}: must be None, 'element' or 'spatial'")
    if batch_norm not in (None, "dropout_before_bn", "dropout_after_bn"):
        raise ValueError(f"batch_norm={batch_norm!r}: must be None, 'dropout_before_bn' or 'dropout_after_bn'")
    if batch_norm is not None and dropout is None:
        raise ValueError("batch_norm: comparing dropout placements needs dropout='element' or 'spatial'")
    _check_rate(rate)
    if weight_decay < 0:
        raise ValueError(f"weight_decay={weight_decay!r}: must be non-negative")
    keras.utils.set_random_seed(seed)

    def drop(i: int):
        cls = layers.Dropout if dropout == "element" else layers.SpatialDropout2D
        return cls(rate, seed=seed + 10 + i, name=f"drop{i}")

    inputs = keras.Input(mnist.INPUT_SHAPE)
    x = mnist.augmentation(seed=seed)(inputs) if augment else inputs
    for i, filters in enumerate((32, 64)):
        x = layers.Conv2D(filters, 3, use_bias=batch_norm is None, name=f"conv{i}")(x)
        if batch_norm == "dropout_before_bn":
            x = drop(i)(x)
            x = layers.BatchNormalization(name=f"bn{i}")(x)
            x = layers.ReLU()(x)
        elif batch_norm == "dropout_after_bn":
            x = layers.BatchNormalization(name=f"bn{i}")(x)
            x = layers.ReLU()(x)
            x = drop(i)(x)
        else:
            x = layers.ReLU()(x)
            if dropout:
                x = drop(i)(x)
        x = layers.MaxPooling2D(name=f"pool{i}")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu", name="dense")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="output")(x)
    model = keras.Model(inputs, outputs, name="small_cnn")
    optimizer = (keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay) if weight_decay
                 else keras.optimizers.Adam(learning_rate))
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
