"""Activation maximization: the input that makes one channel of a layer respond most, by gradient ascent.

Started from faint noise, plain gradient ascent finds high-frequency patterns that excite the channel without
looking like anything (Olah, Mordvintsev & Schubert, *Feature Visualization*, Distill, 2017). Their remedy is to
ask for an image that keeps exciting the channel under small changes: here a random shift (jitter, in pixels) at
every step and a light blur of the image every few steps, which keep the result smooth. The blur is applied
*before* a gradient step, so the image returned is always the result of a step, never of a blur: measuring its
smoothness measures the ascent, not the last blur (:func:`blur` gives the control: a plain result blurred once).

Images are ``(H, W, C)`` arrays in the model's input range; steps and shifts count pixels of the input.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def channel_objective(feature_model: Any, channel: int) -> Any:
    """A function of a batch of images: the mean activation of ``channel`` of ``feature_model``'s output."""
    n_channels = int(feature_model.output.shape[-1])
    if int(channel) != channel or not 0 <= channel < n_channels:
        raise ValueError(f"channel={channel!r}: must be an integer in [0, {n_channels})")

    def objective(x):
        import tensorflow as tf

        return tf.reduce_mean(feature_model(x, training=False)[..., channel])

    return objective


def blur(image: np.ndarray) -> np.ndarray:
    """A 3 × 3 binomial blur (weights 1-2-1 ⊗ 1-2-1 / 16) of each channel of an ``(H, W, C)`` image, edges
    reflected; the same blur :func:`maximize` applies. Returns float32 of the same shape."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3 or min(image.shape[:2]) < 2:
        raise ValueError(f"image: expected (H, W, C) with H, W >= 2, got shape {image.shape}")
    return np.asarray(_blur(image)).astype(np.float32)


def _blur(image: Any) -> Any:
    """A 3 × 3 binomial blur of each channel of an ``(H, W, C)`` tensor (edges reflected)."""
    import tensorflow as tf

    k = np.outer([1.0, 2.0, 1.0], [1.0, 2.0, 1.0]) / 16.0
    channels = int(image.shape[-1])
    kernel = tf.constant(np.repeat(k[:, :, None, None], channels, axis=2), tf.float32)
    padded = tf.pad(image[None], [[0, 0], [1, 1], [1, 1], [0, 0]], mode="REFLECT")
    return tf.nn.depthwise_conv2d(padded, kernel, [1, 1, 1, 1], "VALID")[0]


def maximize(feature_model: Any, channel: int, *, steps: int = 64, step_size: float = 0.05,
             jitter: int = 0, blur_every: int = 0, value_range: tuple[float, float] = (-1.0, 1.0),
             init_scale: float = 0.05, seed: int = 0) -> tuple[np.ndarray, list[float]]:
    """Gradient ascent on the input to maximize the mean activation of one channel.

    Args:
        feature_model: a Keras model from images ``(1, H, W, C)`` (its input shape must be fully known) to
            feature maps ``(1, h, w, K)``.
        channel: the channel ``0 ≤ channel < K`` to excite.
        steps: ascent steps.
        step_size: each step moves the image by ``step_size · g / mean|g|`` (``g`` the gradient), in input units.
        jitter: before each step, shift the image by a random whole number of pixels in ``[-jitter, jitter]``
            along each axis (rolled, then rolled back); 0: no jitter.
        blur_every: blur the image (3 × 3 binomial) before every ``blur_every``-th step (before steps
            ``blur_every``, ``2 · blur_every``, ..., counting from 0; never before the first); 0: never. The
            returned image therefore always comes from a gradient step.
        value_range: the image is clipped to this range after every step.
        init_scale: the starting image is uniform noise of this half-width around the range's middle.
        seed: seed of the starting noise and the jitter.

    Returns:
        ``(image (H, W, C) float32, the objective at each step, before its update)``.
    """
    import tensorflow as tf

    objective = channel_objective(feature_model, channel)
    for name, value in (("steps", steps), ("jitter", jitter), ("blur_every", blur_every)):
        if int(value) != value or value < (1 if name == "steps" else 0):
            raise ValueError(f"{name}={value!r}: must be a {'positive' if name == 'steps' else 'non-negative'} "
                             "integer")
    if step_size <= 0:
        raise ValueError(f"step_size={step_size!r}: must be positive")
    low, high = value_range
    if high <= low:
        raise ValueError(f"value_range={value_range!r}: need low < high")
    shape = tuple(feature_model.input_shape[1:])
    if None in shape:
        raise ValueError(f"feature_model: its input shape {shape} must be fully known")
    rng = np.random.default_rng(seed)
    middle = (low + high) / 2
    image = tf.Variable(middle + rng.uniform(-init_scale, init_scale, size=shape).astype(np.float32))

    @tf.function
    def ascend(dy, dx):
        shifted = tf.roll(image, shift=[dy, dx], axis=[0, 1])
        with tf.GradientTape() as tape:
            tape.watch(shifted)
            value = objective(shifted[None])
        g = tf.roll(tape.gradient(value, shifted), shift=[-dy, -dx], axis=[0, 1])
        image.assign(tf.clip_by_value(image + step_size * g / (tf.reduce_mean(tf.abs(g)) + 1e-12), low, high))
        return value

    trace = []
    for step in range(steps):
        if blur_every and step > 0 and step % blur_every == 0:
            image.assign(_blur(image))
        dy, dx = (rng.integers(-jitter, jitter + 1, size=2) if jitter else (0, 0))
        trace.append(float(ascend(tf.constant(int(dy)), tf.constant(int(dx)))))
    return image.numpy().astype(np.float32), trace
