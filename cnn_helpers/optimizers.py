"""Weight decay under adaptive optimizers: L2 in the loss (coupled) against decoupled decay (AdamW).

Loshchilov and Hutter (*Decoupled Weight Decay Regularization*, 2019): L2 regularization adds ``λ·w`` to the
gradient, and Adam then divides that term, like the rest of the gradient, by ``sqrt(v̂)``, so a weight with
large gradients is barely decayed; decoupled weight decay subtracts ``lr·λ·w`` from the weight outside the
adaptive step, the same fraction for every weight. With plain SGD the two are the same thing (up to the
learning rate factor).

:func:`noisy_steps` makes that visible: each weight receives a zero-mean noisy gradient of its own scale, the
same noise for all of them, so the only thing that differs between the weights is the scale.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import numpy as np

__all__ = ["noisy_steps"]


def noisy_steps(
    make_optimizer: Callable[[], keras.optimizers.Optimizer],
    gradient_scales: Sequence[float],
    steps: int,
    l2: float = 0.0,
    initial: float = 1.0,
    seed: int = 0,
) -> np.ndarray:
    """Run an optimizer on weights that start at ``initial`` and receive ``scale_i · ξ_t (+ l2 · w_i)``.

    ``ξ_t`` is one standard-normal number per step (seeded), shared by all weights: without any decay, Adam's
    trajectory is then the same for every scale (its step is invariant to the gradient's scale, up to its
    small ε). ``l2 > 0`` adds the gradient of the L2 penalty ``l2/2 · w²`` (the coupled form); pass an
    optimizer with ``weight_decay`` for the decoupled form.

    Args:
        make_optimizer: returns a fresh Keras optimizer, e.g.
            ``lambda: keras.optimizers.AdamW(1e-2, weight_decay=0.1)``.
        gradient_scales: one positive scale per weight (gradient units).
        steps: optimizer steps.
        l2: coefficient of the L2 penalty added to the loss (1 / weight units²·loss units).
        initial: starting value of every weight.
        seed: seed of the noise.

    Returns:
        The weights after ``steps`` steps, float64, one per scale.

    Raises:
        ValueError: for an empty or non-positive ``gradient_scales``, ``steps < 1`` or ``l2 < 0``.
    """
    import tensorflow as tf

    scales = np.asarray(gradient_scales, dtype=np.float64)
    if scales.ndim != 1 or scales.size == 0 or np.any(scales <= 0):
        raise ValueError(f"gradient_scales={gradient_scales!r}: need one or more positive scales")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps={steps!r}: must be a positive integer")
    if l2 < 0:
        raise ValueError(f"l2={l2!r}: must be >= 0")
    noise = np.random.default_rng(seed).standard_normal(steps)
    w = tf.Variable(np.full(scales.shape, initial, dtype=np.float32))
    optimizer = make_optimizer()
    scales32 = tf.constant(scales, tf.float32)

    @tf.function
    def step(xi: tf.Tensor) -> None:
        optimizer.apply_gradients([(scales32 * xi + l2 * w, w)])

    for xi in noise.astype(np.float32):
        step(tf.constant(xi))
    return w.numpy().astype(np.float64)
