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


def pgd(model: Any, images: np.ndarray, labels: np.ndarray, epsilon: float, *, step: float, steps: int,
        clip: tuple[float, float] | None = None, from_logits: bool = True, batch_size: int = 32) -> np.ndarray:
    """Projected gradient descent in the L∞ ball (Madry et al., 2018), from the clean image (no random start).

    ``steps`` times: ``x ← clip(project(x + step · sign(∇_x J(x, y))))``, where ``project`` keeps every value
    within ``epsilon`` of the clean image and ``clip`` keeps it in the valid range. ``epsilon`` and ``step`` are in
    the model's input units. With ``steps = 1`` and ``step ≥ epsilon`` this is FGSM.
    """
    images, labels = _check(images, labels)
    if epsilon < 0:
        raise ValueError(f"epsilon={epsilon!r}: must be non-negative")
    if step <= 0:
        raise ValueError(f"step={step!r}: must be positive")
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps={steps!r}: must be a positive integer")
    x = images.copy()
    for _ in range(int(steps)):
        direction = gradient_sign(model, x, labels, from_logits=from_logits, batch_size=batch_size)
        x = np.clip(x + np.float32(step) * direction, images - epsilon, images + epsilon)
        if clip is not None:
            x = perturb(x, np.zeros_like(x), 0.0, clip=clip)
    return x.astype(np.float32)


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


def train_adversarially(model: Any, images: np.ndarray, labels: np.ndarray, epsilon: float, *,
                        clip: tuple[float, float] | None = None, epochs: int = 1, batch_size: int = 64,
                        adversarial_weight: float = 0.5, learning_rate: float = 1e-3,
                        seed: int = 0) -> list[float]:
    """Train ``model`` (logits out) on a mix of clean and FGSM examples, as Goodfellow et al. (2015) propose.

    For each batch the FGSM examples are crafted against the current weights, and the loss is
    ``(1 − w) · J(x, y) + w · J(x + ε · sign(∇_x J), y)`` with ``w = adversarial_weight`` (the paper uses 0.5);
    ``w = 0`` or ``ε = 0`` is ordinary training. Adam with ``learning_rate``; batches in a seeded random order.

    Args:
        model: a Keras model from images to class logits (trained in place).
        images, labels: training data in the model's input range, integer labels.
        epsilon: the FGSM step, in the model's input units (:func:`pixels_to_input_units`).
        clip: the valid input range ``(low, high)``; FGSM examples are clipped to it.
        epochs, batch_size: passes over the data and examples per step.
        adversarial_weight: ``w`` in ``[0, 1]``.
        learning_rate: Adam's step size.
        seed: seed of the batch order.

    Returns:
        The mean training loss of each epoch.
    """
    import keras
    import tensorflow as tf

    images, labels = _check(images, labels)
    if epsilon < 0:
        raise ValueError(f"epsilon={epsilon!r}: must be non-negative")
    if not 0 <= adversarial_weight <= 1:
        raise ValueError(f"adversarial_weight={adversarial_weight!r}: must lie in [0, 1]")
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name}={value!r}: must be a positive integer")
    if clip is not None and clip[1] <= clip[0]:
        raise ValueError(f"clip={clip!r}: need low < high")
    low, high = clip if clip is not None else (-np.inf, np.inf)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    optimizer = keras.optimizers.Adam(learning_rate)
    eps, w = tf.constant(float(epsilon)), tf.constant(float(adversarial_weight))

    @tf.function
    def step(x, y):
        with tf.GradientTape() as inner:
            inner.watch(x)
            loss_x = loss_fn(y, model(x, training=False))
        x_adv = tf.clip_by_value(x + eps * tf.sign(inner.gradient(loss_x, x)), low, high)
        with tf.GradientTape() as tape:
            loss = ((1 - w) * loss_fn(y, model(x, training=True))
                    + w * loss_fn(y, model(tf.stop_gradient(x_adv), training=True)))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    rng = np.random.default_rng(seed)
    history = []
    for _ in range(int(epochs)):
        order = rng.permutation(len(images))
        losses = [float(step(tf.constant(images[idx]), tf.constant(labels[idx])))
                  for idx in (order[s:s + batch_size] for s in range(0, len(images), batch_size))]
        history.append(float(np.mean(losses)))
    return history
