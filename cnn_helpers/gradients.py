"""Backpropagation through convolution and pooling, written as convolutions; gradient flow in deep stacks.

Layouts are TensorFlow's: inputs NHWC ``(batch, height, width, channels)``, kernels HWIO
``(kernel_height, kernel_width, in_channels, out_channels)``; sizes in pixels. Only "valid" padding is
handled here (pad the input yourself for anything else): the formulas then read plainly.

For ``y = conv2d(x, kernel, strides=s)`` (a cross-correlation, as in every deep-learning library) and an
upstream gradient ``g = ∂L/∂y``:

* :func:`conv2d_kernel_gradient`: ``∂L/∂kernel`` is the **cross-correlation of the input with the upstream
  gradient** (dilated by ``s - 1`` zeros between its rows and columns when ``s > 1``), summed over the batch
  and every output position.
* :func:`conv2d_input_gradient`: ``∂L/∂x`` is the **full convolution** of the (dilated) upstream gradient with
  the kernel: zero-pad it by ``k - 1`` on every side and cross-correlate it with the kernel flipped by 180°
  (input and output channels swapped), summed over the output channels. This is ``tf.nn.conv2d_transpose``.
* :func:`max_pool2d_backward`: max pooling sends each window's gradient to the position of its maximum;
  overlapping windows add up where they share it.

Both conv formulas are computed with :func:`cnn_helpers.numpy_cnn.conv2d`, so they are checked against
:func:`cnn_helpers.numpy_cnn.conv2d_backward` and ``tf.GradientTape`` in the tests.

:func:`conv_stack` builds the deep plain or residual stacks whose per-layer gradient norms
(:func:`cnn_helpers.architectures.kernel_gradient_norms`) show vanishing, exploding and healthy gradients.
"""

from __future__ import annotations

import numbers
from typing import Any

import keras
import numpy as np
from keras import layers
from numpy.lib.stride_tricks import sliding_window_view

from cnn_helpers import numpy_cnn

__all__ = [
    "dilate",
    "conv2d_kernel_gradient",
    "conv2d_input_gradient",
    "max_pool2d_backward",
    "conv_stack",
    "activation_gradient_norms",
    "dead_channel_fraction",
]


def _positive_pair(value: Any, name: str) -> tuple[int, int]:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (int(value), int(value))
    ok = (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1 for v in value)
    )
    if not ok:
        raise ValueError(f"{name}={value!r}: must be a positive int or a pair of positive ints")
    return int(value[0]), int(value[1])


def _rank4(a: Any, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 4:
        raise ValueError(f"{name}: expected a 4-D array, got shape {a.shape}")
    return a


def dilate(grad_out: np.ndarray, strides: int | tuple[int, int]) -> np.ndarray:
    """Insert ``s - 1`` zero rows (columns) between the rows (columns) of ``grad_out`` ``(N, H, W, C)``.

    The result is ``(N, (H - 1)·sh + 1, (W - 1)·sw + 1, C)``: the upstream gradient placed at the input
    positions where a stride-``s`` layer's windows start. With ``strides=1`` it is ``grad_out`` unchanged.
    """
    grad_out = _rank4(grad_out, "grad_out")
    sh, sw = _positive_pair(strides, "strides")
    n, h, w, c = grad_out.shape
    out = np.zeros((n, (h - 1) * sh + 1, (w - 1) * sw + 1, c), grad_out.dtype)
    out[:, ::sh, ::sw, :] = grad_out
    return out


def conv2d_kernel_gradient(
    x: np.ndarray, grad_out: np.ndarray, kernel_size: int | tuple[int, int], strides: int | tuple[int, int] = 1
) -> np.ndarray:
    """``∂L/∂kernel`` of a "valid" convolution, as a cross-correlation of ``x`` with the dilated ``grad_out``.

    ``grad_kernel[a, b, c, o] = Σ_{n, i, j} x[n, a + i, b + j, c] · dilate(grad_out)[n, i, j, o]``: the batch
    axis plays the role of the input channels and the input channels that of the batch.

    Args:
        x: the layer's input ``(N, H, W, C_in)``.
        grad_out: ``∂L/∂y``, ``(N, H_out, W_out, C_out)``.
        kernel_size: ``(kh, kw)`` in pixels (or an int).
        strides: the layer's strides in pixels.

    Returns:
        ``(kh, kw, C_in, C_out)``, float64 unless both inputs are float32.
    """
    x, grad_out = _rank4(x, "x"), _rank4(grad_out, "grad_out")
    kh, kw = _positive_pair(kernel_size, "kernel_size")
    sh, sw = _positive_pair(strides, "strides")
    expected = ((x.shape[1] - kh) // sh + 1, (x.shape[2] - kw) // sw + 1)
    if x.shape[0] != grad_out.shape[0] or grad_out.shape[1:3] != expected:
        raise ValueError(
            f"grad_out: shape {grad_out.shape} does not match a valid {kh}x{kw}/{sh}x{sw} conv of x {x.shape} "
            f"(expected (N, {expected[0]}, {expected[1]}, C_out))"
        )
    g = dilate(grad_out, (sh, sw))  # (N, Hd, Wd, O)
    corr = numpy_cnn.conv2d(x.transpose(3, 1, 2, 0), g.transpose(1, 2, 0, 3))  # (C, ≥kh, ≥kw, O)
    return np.ascontiguousarray(corr[:, :kh, :kw, :].transpose(1, 2, 0, 3))


def conv2d_input_gradient(
    grad_out: np.ndarray,
    kernel: np.ndarray,
    input_size: tuple[int, int],
    strides: int | tuple[int, int] = 1,
) -> np.ndarray:
    """``∂L/∂x`` of a "valid" convolution: the full convolution of the dilated ``grad_out`` with ``kernel``.

    The dilated gradient is zero-padded by ``k - 1`` pixels on each side (plus, at the bottom/right, the rows
    and columns a strided layer's windows never reached) and cross-correlated with the kernel rotated by 180°,
    its input and output channels swapped: ``kernel[::-1, ::-1].transpose(0, 1, 3, 2)``.

    Args:
        grad_out: ``∂L/∂y``, ``(N, H_out, W_out, C_out)``.
        kernel: ``(kh, kw, C_in, C_out)``.
        input_size: ``(H, W)`` of the layer's input, pixels.
        strides: the layer's strides in pixels.

    Returns:
        ``(N, H, W, C_in)``.
    """
    grad_out, kernel = _rank4(grad_out, "grad_out"), _rank4(kernel, "kernel")
    h, w = _positive_pair(tuple(input_size), "input_size")
    sh, sw = _positive_pair(strides, "strides")
    kh, kw, _, c_out = kernel.shape
    expected = ((h - kh) // sh + 1, (w - kw) // sw + 1)
    if grad_out.shape[1:3] != expected or grad_out.shape[3] != c_out:
        raise ValueError(
            f"grad_out: shape {grad_out.shape} does not match a valid conv of a {h}x{w} input with kernel "
            f"{kernel.shape} and strides {(sh, sw)} (expected (N, {expected[0]}, {expected[1]}, {c_out}))"
        )
    g = dilate(grad_out, (sh, sw))
    extra_h, extra_w = h - (g.shape[1] + kh - 1), w - (g.shape[2] + kw - 1)
    flipped = kernel[::-1, ::-1].transpose(0, 1, 3, 2)  # (kh, kw, C_out, C_in)
    return numpy_cnn.conv2d(g, flipped, padding=((kh - 1, kh - 1 + extra_h), (kw - 1, kw - 1 + extra_w)))


def max_pool2d_backward(
    x: np.ndarray,
    grad_out: np.ndarray,
    pool_size: int | tuple[int, int],
    strides: int | tuple[int, int] | None = None,
) -> np.ndarray:
    """``∂L/∂x`` of a "valid" max pooling: each window's gradient goes to its maximum, and adds up there.

    Ties go to the first maximum of the window in row-major order. ``strides`` defaults to ``pool_size``.

    Args:
        x: the pooling's input ``(N, H, W, C)``.
        grad_out: ``∂L/∂y``, ``(N, H_out, W_out, C)``.
        pool_size, strides: window and step, pixels.

    Returns:
        ``(N, H, W, C)``; zero wherever no window had its maximum.
    """
    x, grad_out = _rank4(x, "x"), _rank4(grad_out, "grad_out")
    ph, pw = _positive_pair(pool_size, "pool_size")
    sh, sw = _positive_pair((ph, pw) if strides is None else strides, "strides")
    n, h, w, c = x.shape
    ho, wo = (h - ph) // sh + 1, (w - pw) // sw + 1
    if ho < 1 or wo < 1:
        raise ValueError(f"pool_size={pool_size!r}: larger than the input {h}x{w}")
    if grad_out.shape != (n, ho, wo, c):
        raise ValueError(f"grad_out: expected shape {(n, ho, wo, c)}, got {grad_out.shape}")
    win = sliding_window_view(x, (ph, pw), axis=(1, 2))[:, ::sh, ::sw][:, :ho, :wo]  # (N, Ho, Wo, C, ph, pw)
    arg = win.reshape(n, ho, wo, c, ph * pw).argmax(axis=-1)
    rows = np.arange(ho)[None, :, None, None] * sh + arg // pw
    cols = np.arange(wo)[None, None, :, None] * sw + arg % pw
    nn_ = np.broadcast_to(np.arange(n)[:, None, None, None], arg.shape)
    cc = np.broadcast_to(np.arange(c)[None, None, None, :], arg.shape)
    grad_x = np.zeros(x.shape, np.result_type(x.dtype, grad_out.dtype, np.float32))
    np.add.at(grad_x, (nn_, rows, cols, cc), grad_out)
    return grad_x


def conv_stack(
    units: int,
    width: int = 16,
    activation: str = "relu",
    kernel_initializer: Any = "he_normal",
    batch_norm: bool = False,
    residual: bool = False,
    input_shape: tuple[int, int, int] = (28, 28, 1),
    n_classes: int = 10,
) -> keras.Model:
    """A deep stack of 3 × 3 "same" convolutions at one resolution, for measuring gradient flow at init.

    A stem convolution (input channels → ``width`` maps), then ``units`` units of two convolutions of
    ``width`` maps, global average pooling and a dense layer of ``n_classes`` logits: 2 · ``units`` + 1
    convolutions. Each convolution is followed by batch norm (``batch_norm=True``) and the activation,
    except that in a residual unit the unit's input is added after the second batch norm, before the second
    activation (the original ResNet unit). Convolutions are named ``conv_1`` … from the input; the activation
    after each is named ``act_1`` …. Biases are zero at init (``use_bias`` only without batch norm).

    Args:
        units: number of two-convolution units (≥ 1).
        width: maps per convolution.
        activation: a Keras activation name (``"relu"``, ``"sigmoid"``, ``"tanh"``, ``"gelu"``, ...).
        kernel_initializer: any Keras initializer (name or object) for every convolution.
        batch_norm: batch norm after each convolution.
        residual: identity shortcuts around each unit.
        input_shape: ``(H, W, C)`` of the images, pixels.
        n_classes: logits of the head.

    Raises:
        ValueError: for a non-positive ``units`` or ``width``.
    """
    for value, argument in ((units, "units"), (width, "width"), (n_classes, "n_classes")):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{argument}={value!r}: must be a positive integer")
    count = 0

    def conv(t: Any) -> Any:
        nonlocal count
        count += 1
        init = keras.initializers.get(kernel_initializer)
        if isinstance(init, keras.initializers.Initializer):  # a fresh object per layer: independent draws
            init = init.__class__.from_config(init.get_config())
        t = layers.Conv2D(
            width, 3, padding="same", use_bias=not batch_norm, kernel_initializer=init, name=f"conv_{count}"
        )(t)
        return layers.BatchNormalization(name=f"bn_{count}")(t) if batch_norm else t

    def act(t: Any) -> Any:
        return layers.Activation(activation, name=f"act_{count}")(t)

    inputs = keras.Input(shape=input_shape)
    x = act(conv(inputs))
    for _ in range(units):
        y = conv(act(conv(x)))
        x = act(layers.Add(name=f"add_{count}")([y, x]) if residual else y)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = layers.Dense(n_classes, name="logits")(x)
    kind = "residual" if residual else "plain"
    return keras.Model(inputs, outputs, name=f"{kind}_{count}_{activation}{'_bn' if batch_norm else ''}")


def activation_gradient_norms(stack: keras.Model, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Norm of ``∂L/∂act_i``, the gradient of the cross-entropy with respect to each activation map of a stack.

    This is the backward signal itself (the "error" backpropagation carries), before it is multiplied by a
    layer's input to give the kernel's gradient. ``stack`` must come from :func:`conv_stack`; it is re-run
    layer by layer (batch norm in training mode, as during training) so that every ``act_i`` is a tensor on
    the tape. One value per convolution, from the input (``act_1``) to the output, in nats per activation
    unit. The norms are taken in float64, so a float32 gradient far below 1e-19, whose squares would
    underflow to zero in float32, still gets its true (non-zero) norm.

    Raises:
        ValueError: for a model without ``conv_1``/``act_1`` layers, or mismatched ``images``/``labels``.
    """
    import tensorflow as tf

    names = {layer.name for layer in stack.layers}
    if "conv_1" not in names or "act_1" not in names:
        raise ValueError(f"stack: {stack.name!r} was not built by conv_stack (no conv_1/act_1 layer)")
    if len(images) != len(labels):
        raise ValueError(f"labels: {len(labels)} labels for {len(images)} images")
    n = sum(name.startswith("conv_") for name in names)
    residual = any(name.startswith("add_") for name in names)

    def conv_bn(t: Any, i: int) -> Any:
        t = stack.get_layer(f"conv_{i}")(t)
        return stack.get_layer(f"bn_{i}")(t, training=True) if f"bn_{i}" in names else t

    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with tf.GradientTape() as tape:
        x = stack.get_layer("act_1")(conv_bn(tf.constant(images), 1))
        acts = [x]
        for i in range(2, n + 1, 2):
            a = stack.get_layer(f"act_{i}")(conv_bn(x, i))
            y = conv_bn(a, i + 1)
            x = stack.get_layer(f"act_{i + 1}")(y + x if residual else y)
            acts += [a, x]
        logits = stack.get_layer("logits")(stack.get_layer("pool")(x))
        loss = loss_fn(tf.constant(labels, dtype=tf.int32), logits)
    # float64 norms: squaring a gradient of ~1e-23 underflows in float32 and tf.norm would return 0
    return np.array([np.linalg.norm(g.numpy().astype(np.float64)) for g in tape.gradient(loss, acts)])


def dead_channel_fraction(activations: np.ndarray, threshold: float = 0.0) -> float:
    """Fraction of channels (last axis) whose activation is ``<= threshold`` for every example and position.

    For a ReLU layer with ``threshold=0`` these are dead units: they output zero on all the inputs given, so
    no gradient flows through them to their weights. A fraction from 0 to 1.
    """
    a = np.asarray(activations)
    if a.ndim < 2:
        raise ValueError(f"activations: need a batch and a channel axis, got shape {a.shape}")
    alive = (a.reshape(-1, a.shape[-1]) > threshold).any(axis=0)
    return float(1.0 - alive.mean())
