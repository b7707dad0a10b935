"""Adversarial examples by the fast gradient sign method (Goodfellow, Shlens & Szegedy, *Explaining and Harnessing
Adversarial Examples*, 2015), and a random control of the same size.

FGSM moves every input value by ``ε`` in the direction that increases the loss to first order:
``x' = x + ε · sign(∇_x J(x, y))``, then clips ``x'`` to the valid input range. The perturbation's largest
change to any value (its L∞ norm) is exactly ``ε``; a random ``±ε`` perturbation has the same norm and serves as
the control: the attack's effect comes from the direction, not from the size.

``ε`` is in the units of the model's input (e.g. ``2/255`` of MobileNetV2's ``[-1, 1]`` range is one grey level of
an 8-bit photo); :func:`pixels_to_input_units` converts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def pixels_to_input_units(levels: float, low: float, high: float) -> float:
    """``levels`` grey levels of an 8-bit image (out of 255) expressed in a model range ``[low, high]``."""
    if high <= low:
        raise ValueError(f"low={low!r}, high={high!r}: need low < high")
    if levels < 0:
        raise ValueError(f"levels={levels!r}: must be non-negative")
    return levels * (high - low) / 255.0


def _check(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    images = np.asarray(images, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.int64)
    if images.ndim < 2 or len(images) == 0 or labels.shape != (len(images),):
        raise ValueError(f"images, labels: need a non-empty batch and one label per image, got shapes "
                         f"{images.shape} and {labels.shape}")
    return images, labels


def gradient_sign(model: Any, images: np.ndarray, labels: np.ndarray, *, from_logits: bool = True,
                  batch_size: int = 32) -> np.ndarray:
    """``sign(∇_x J(x, y))`` for each image, ``J`` the cross-entropy of ``model``'s output against ``labels``.

    Args:
        model: a Keras model (or callable) from images to class scores.
        images: a batch in the model's input range.
        labels: integer class labels, one per image.
        from_logits: the model outputs logits (True) or probabilities (False).
        batch_size: images per gradient computation.

    Returns:
        An array of ``-1``, ``0`` and ``+1`` (float32), shaped like ``images``.
    """
    import keras
    import tensorflow as tf

    images, labels = _check(images, labels)
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}: must be at least 1")
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits, reduction="sum")
    signs = []
    for start in range(0, len(images), batch_size):
        x = tf.constant(images[start:start + batch_size])
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = loss_fn(labels[start:start + batch_size], model(x, training=False))
        signs.append(tf.sign(tape.gradient(loss, x)).numpy())
    return np.concatenate(signs).astype(np.float32)


def fgsm(model: Any, images: np.ndarray, labels: np.ndarray, epsilon: float, *,
         clip: tuple[float, float] | None = None, from_logits: bool = True, batch_size: int = 32) -> np.ndarray:
    """FGSM adversarial examples ``clip(x + ε · sign(∇_x J))``; ``epsilon`` in the model's input units."""
    if epsilon < 0:
        raise ValueError(f"epsilon={epsilon!r}: must be non-negative")
    signs = gradient_sign(model, images, labels, from_logits=from_logits, batch_size=batch_size)
    return perturb(images, signs, epsilon, clip=clip)


def perturb(images: np.ndarray, direction: np.ndarray, epsilon: float, *,
            clip: tuple[float, float] | None = None) -> np.ndarray:
    """``images + epsilon · direction``, clipped to ``clip = (low, high)`` when given (float32)."""
    images = np.asarray(images, dtype=np.float32)
    direction = np.asarray(direction, dtype=np.float32)
    if direction.shape != images.shape:
        raise ValueError(f"direction: shape {direction.shape} differs from the images' {images.shape}")
    if epsilon < 0:
        raise ValueError(f"epsilon={epsilon!r}: must be non-negative")
    out = images + np.float32(epsilon) * direction
    if clip is not None:
        low, high = clip
        if high <= low:
            raise ValueError(f"clip={clip!r}: need low < high")
        out = np.clip(out, low, high)
    return out.astype(np.float32)


def random_signs(shape: Sequence[int], seed: int = 0) -> np.ndarray:
    """A random direction of ``±1`` values (float32), the control for :func:`gradient_sign`."""
    rng = np.random.default_rng(seed)
    return rng.choice(np.array([-1.0, 1.0], dtype=np.float32), size=tuple(shape))


def accuracy_under(model: Any, images: np.ndarray, labels: np.ndarray, direction: np.ndarray,
                   epsilons: Sequence[float], *, clip: tuple[float, float] | None = None,
                   batch_size: int = 32) -> dict[float, float]:
    """Accuracy (fraction) of ``model`` on ``perturb(images, direction, ε)`` for each ``ε`` in ``epsilons``.

    With ``direction = gradient_sign(...)`` this is FGSM's accuracy-vs-ε curve (one gradient serves every ε);
    with :func:`random_signs` it is the random control.
    """
    images, labels = _check(images, labels)
    if not len(epsilons):
        raise ValueError("epsilons: give at least one value")
    result = {}
    for eps in epsilons:
        x = perturb(images, direction, eps, clip=clip)
        scores = np.concatenate([np.asarray(model(x[s:s + batch_size], training=False))
                                 for s in range(0, len(x), batch_size)])
        result[float(eps)] = float(np.mean(scores.argmax(axis=1) == labels))
    return result
