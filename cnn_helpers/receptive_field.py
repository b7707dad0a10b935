"""Spatial arithmetic of convolution and pooling layers: output sizes, TensorFlow's "same" padding, and the
receptive field of a Keras model, computed from its layers or measured with input gradients.

Along one axis, a layer with kernel ``k``, stride ``s`` and dilation ``d`` reads windows that span
``k_eff = d · (k − 1) + 1`` input positions. Its *receptive field* recursion, read from input to output, is

    r_l = r_(l−1) + (k_l − 1) · d_l · j_(l−1),        j_l = j_(l−1) · s_l,        r_0 = j_0 = 1,

where ``j`` (the *jump*) is the distance, in input pixels, between neighbouring positions of a layer's output.
Strides and pooling multiply the jump, so every later layer grows the field faster.

Units: sizes, fields, jumps and paddings are in pixels (positions along one axis).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# Layers that act on each position separately (or join maps position by position): they keep the field.
POINTWISE = (
    "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax", "BatchNormalization", "LayerNormalization",
    "GroupNormalization", "Dropout", "SpatialDropout2D", "GaussianNoise", "GaussianDropout", "Rescaling",
    "Normalization", "Identity",
)
MERGES = ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate")
# Layers after which every output depends on every input position.
GLOBAL = ("Flatten", "GlobalAveragePooling2D", "GlobalMaxPooling2D", "Reshape")


def _positive_int(value: Any, argument: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{argument}={value!r}: must be a positive integer")
    return int(value)


def effective_kernel(kernel: int, dilation: int = 1) -> int:
    """Span, in input positions, of a ``kernel``-tap window with ``dilation - 1`` holes between taps."""
    return _positive_int(dilation, "dilation") * (_positive_int(kernel, "kernel") - 1) + 1


def same_padding(n: int, kernel: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """(before, after) zero padding, in pixels, that TensorFlow's ``padding="same"`` adds along one axis.

    The output has ``ceil(n / stride)`` positions; the total padding is
    ``max((ceil(n / stride) − 1) · stride + k_eff − n, 0)``, and when it is odd the extra pixel goes
    *after* (bottom or right): ``before = total // 2``.
    """
    n = _positive_int(n, "n")
    stride = _positive_int(stride, "stride")
    span = effective_kernel(kernel, dilation)
    total = max((math.ceil(n / stride) - 1) * stride + span - n, 0)
    return total // 2, total - total // 2


def output_length(
    n: int, kernel: int, stride: int = 1, dilation: int = 1, padding: str | int | tuple[int, int] = "valid"
) -> int:
    """Output positions along one axis: ``floor((n + p_before + p_after − k_eff) / stride) + 1``.

    Args:
        n: input length (pixels).
        kernel, stride, dilation: the layer's window along this axis.
        padding: ``"valid"`` (none), ``"same"`` (TensorFlow's, see :func:`same_padding`), an int ``p`` (``p``
            pixels on each side) or an explicit ``(before, after)`` pair.

    Raises:
        ValueError: for a bad argument, or if the window does not fit once (empty output).
    """
    n = _positive_int(n, "n")
    stride = _positive_int(stride, "stride")
    span = effective_kernel(kernel, dilation)
    if padding == "same":
        before, after = same_padding(n, kernel, stride, dilation)
    elif padding == "valid":
        before = after = 0
    elif isinstance(padding, (int, np.integer)) and not isinstance(padding, bool) and padding >= 0:
        before = after = int(padding)
    elif isinstance(padding, tuple) and len(padding) == 2 and all(
        isinstance(p, (int, np.integer)) and p >= 0 for p in padding
    ):
        before, after = (int(p) for p in padding)
    else:
        raise ValueError(f"padding={padding!r}: must be 'valid', 'same', an int >= 0 or (before, after)")
    if n + before + after < span:
        raise ValueError(f"kernel={kernel!r} (dilation {dilation}) spans {span} > padded n={n + before + after}")
    return (n + before + after - span) // stride + 1


@dataclass(frozen=True)
class LayerField:
    """The receptive field after one layer, along one axis (pixels of the model's input).

    ``field``: side of the input window one output position depends on; ``jump``: input pixels between
    neighbouring output positions; ``start``: input coordinate of the first pixel of output position 0's
    window (negative when it reaches into the padding); ``size``: output positions. ``start``, ``size`` and
    ``pad_before`` are ``None`` when no input size was given. Output position ``i`` reads input pixels
    ``start + i · jump`` to ``start + i · jump + field − 1``.
    """

    name: str
    kind: str
    kernel: int
    stride: int
    dilation: int
    pad_before: int | None
    size: int | None
    field: int
    jump: int
    start: int | None


def _axis_value(value: Any, axis: int) -> int:
    if isinstance(value, (tuple, list)):
        return int(value[axis])
    return int(value)


def _window(layer: Any, axis: int) -> tuple[int, int, int] | None:
    """(kernel, stride, dilation) of a convolution or pooling layer along ``axis``; None for other layers."""
    size = getattr(layer, "kernel_size", None) or getattr(layer, "pool_size", None)
    if size is None:
        return None
    return (
        _axis_value(size, axis),
        _axis_value(getattr(layer, "strides", 1) or 1, axis),
        _axis_value(getattr(layer, "dilation_rate", 1), axis),
    )


def _inputs_of(layer: Any) -> list[Any]:
    value = layer.input
    return list(value) if isinstance(value, (list, tuple)) else [value]


def trace(model: Any, input_size: int | None = None, axis: int = 0) -> list[LayerField]:
    """The receptive field after each layer of a Keras model (Sequential or functional), along one axis.

    Follows the model's graph from its input, so branches and merges (``Add``, ``Concatenate``...) are
    handled: a merge's field is the union of its inputs' windows. Understood: layers with a ``kernel_size``
    or ``pool_size`` (``Conv2D``, ``DepthwiseConv2D``, ``SeparableConv2D``, max and average pooling) with
    their stride, dilation and padding; ``ZeroPadding2D`` and ``Cropping2D``; layers that keep positions
    (activations, normalization, dropout, a ``Dense`` applied to a 4-D map); merges. The field is that of an
    output position whose window lies inside the image; at the borders part of it is padding.

    Args:
        model: a built Keras model with one 4-D input ``(batch, height, width, channels)``.
        input_size: the input's length along ``axis`` (pixels); if given, sizes, paddings and window
            positions (``start``) are computed too. Defaults to the model's input shape when it is known.
        axis: 0 for the height, 1 for the width.

    Raises:
        ValueError: for a layer that mixes all positions (``Flatten``, global pooling, ``Dense`` on a
            vector), a layer not understood (e.g. ``Conv2DTranspose``, ``UpSampling2D``), merges of maps
            with different jumps, or a bad ``axis``/``input_size``.
    """
    if axis not in (0, 1):
        raise ValueError(f"axis={axis!r}: must be 0 (height) or 1 (width)")
    if len(model.inputs) != 1 or len(model.inputs[0].shape) != 4:
        raise ValueError(f"model={model.name!r}: needs one input of shape (batch, height, width, channels)")
    if input_size is None:
        input_size = model.inputs[0].shape[1 + axis]
    if input_size is not None:
        input_size = _positive_int(input_size, "input_size")
    # id(tensor) -> (field, jump, start, size)
    state: dict[int, tuple[int, int, int | None, int | None]] = {
        id(model.inputs[0]): (1, 1, 0 if input_size else None, input_size)
    }
    chain = type(model).__name__ == "Sequential"
    previous = state[id(model.inputs[0])]
    rows: list[LayerField] = []
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "InputLayer":
            continue
        if chain:  # a Sequential model: each layer reads the previous one's output
            known = [previous]
        else:
            try:
                known = [state[id(t)] for t in _inputs_of(layer)]
            except KeyError:
                raise ValueError(f"model: layer {layer.name!r} reads a tensor that is not on the path") from None
        field, jump, start, size = known[0]
        kernel, stride, dilation, pad_before = 1, 1, 1, 0 if size else None
        window = _window(layer, axis)
        if kind in ("Conv2DTranspose", "UpSampling2D"):
            raise ValueError(f"model: layer {layer.name!r} ({kind}) upsamples; not handled")
        if kind in GLOBAL or (kind == "Dense" and len(layer.input.shape) != 4):
            raise ValueError(
                f"model: layer {layer.name!r} ({kind}) mixes every position: each of its outputs sees the whole "
                "input; trace the sub-model that ends before it"
            )
        if window is not None:
            kernel, stride, dilation = window
            padding = getattr(layer, "padding", "valid")
            if padding not in ("valid", "same"):
                raise ValueError(f"model: layer {layer.name!r} has padding={padding!r}; not handled")
            if size is not None:
                pad_before = same_padding(size, kernel, stride, dilation)[0] if padding == "same" else 0
                start = start - pad_before * jump
                size = output_length(size, kernel, stride, dilation, padding)
            field, jump = field + (kernel - 1) * dilation * jump, jump * stride
        elif kind in ("ZeroPadding2D", "Cropping2D"):
            attr = "padding" if kind == "ZeroPadding2D" else "cropping"
            before, after = (int(p) for p in getattr(layer, attr)[axis])
            sign = -1 if kind == "ZeroPadding2D" else 1
            pad_before = -sign * before if size else None
            if size is not None:
                start, size = start + sign * before * jump, size - sign * (before + after)
        elif kind in MERGES:
            jumps = {j for _, j, _, _ in known}
            if len(jumps) != 1:
                raise ValueError(f"model: layer {layer.name!r} merges maps of different resolutions")
            if start is None:
                field = max(f for f, _, _, _ in known)
            else:
                start = min(s for _, _, s, _ in known)
                field = max(s + f for f, _, s, _ in known) - start
        elif kind not in POINTWISE and kind != "Dense":
            raise ValueError(f"model: layer {layer.name!r} ({kind}) is not handled")
        previous = (field, jump, start, size)
        if not chain:
            state[id(layer.output)] = previous
        rows.append(LayerField(layer.name, kind, kernel, stride, dilation, pad_before, size, field, jump, start))
    if not rows:
        raise ValueError(f"model={model.name!r}: has no layers")
    return rows


def receptive_field(model: Any, axis: int = 0) -> int:
    """Side, in input pixels, of the window one output position of ``model`` depends on (see :func:`trace`)."""
    return trace(model, axis=axis)[-1].field


def jump(model: Any, axis: int = 0) -> int:
    """Input pixels between neighbouring output positions of ``model`` (the product of its strides)."""
    return trace(model, axis=axis)[-1].jump


def input_gradient(
    model: Any, images: np.ndarray, position: tuple[int, int] | None = None, seed: int = 0
) -> np.ndarray:
    """|∂y/∂x|: how strongly each input pixel moves one output position of ``model``, summed over a batch.

    ``y`` is a fixed random combination (seeded) of the output channels at ``position`` (default: the centre
    of the output map), so no channel is favoured and no two cancel except by accident. The absolute
    gradients of the images of the batch are added, so a pixel that matters for any image is non-zero (a max
    pooling passes gradient to one input of each window, a ReLU only where it is active).

    Args:
        model: a Keras model whose output is a 4-D map.
        images: ``(batch, height, width, channels)`` inputs.
        position: ``(row, column)`` of the output position.

    Returns:
        float64 array ``(height, width)``: the absolute input gradient, summed over the batch and channels.
    """
    import tensorflow as tf

    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4:
        raise ValueError(f"images: must be (batch, height, width, channels), got shape {images.shape}")
    x = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = model(x, training=False)
        if len(out.shape) != 4:
            raise ValueError(f"model: output shape {tuple(out.shape)} is not a 4-D map")
        rows, cols, channels = out.shape[1:]
        r, c = position if position is not None else (rows // 2, cols // 2)
        if not (0 <= r < rows and 0 <= c < cols):
            raise ValueError(f"position={position!r}: outside the {rows} × {cols} output map")
        weights = np.random.default_rng(seed).normal(size=channels).astype(np.float32)
        y = tf.reduce_sum(out[:, r, c, :] * weights)
    grad = tape.gradient(y, x).numpy().astype(np.float64)
    return np.abs(grad).sum(axis=(0, 3))


def support(gradient: np.ndarray) -> tuple[int, int, int, int]:
    """Bounding box ``(top, left, height, width)`` of the non-zero pixels of a 2-D map (pixels)."""
    gradient = np.asarray(gradient)
    if gradient.ndim != 2:
        raise ValueError(f"gradient: must be 2-D, got shape {gradient.shape}")
    rows, cols = np.nonzero(gradient)
    if rows.size == 0:
        raise ValueError("gradient: is all zeros, it has no support")
    return int(rows.min()), int(cols.min()), int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


def hole_fraction(gradient: np.ndarray) -> float:
    """Share of the pixels inside the support's bounding box whose gradient is exactly zero (0 = no holes)."""
    top, left, height, width = support(gradient)
    box = np.asarray(gradient)[top : top + height, left : left + width]
    return float(np.mean(box == 0))


def mass_side(gradient: np.ndarray, fraction: float) -> int:
    """Side (pixels) of the smallest square, centred on the gradient's centre of mass, holding ``fraction``
    of the total |gradient| (a measure of the *effective* receptive field)."""
    g = np.abs(np.asarray(gradient, dtype=np.float64))
    if g.ndim != 2 or g.sum() == 0:
        raise ValueError("gradient: must be a 2-D map, not all zeros")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction={fraction!r}: must be in (0, 1]")
    total = g.sum()
    cy = int(round(float((g.sum(axis=1) * np.arange(g.shape[0])).sum() / total)))
    cx = int(round(float((g.sum(axis=0) * np.arange(g.shape[1])).sum() / total)))
    for half in range(max(g.shape)):
        box = g[max(cy - half, 0) : cy + half + 1, max(cx - half, 0) : cx + half + 1]
        if box.sum() >= fraction * total * (1 - 1e-12):
            return 2 * half + 1
    return 2 * max(g.shape) + 1  # pragma: no cover (the loop always covers the whole map)


def conv_stack(
    kernels: Sequence[int], dilations: Sequence[int] | None = None, input_size: int = 64, filters: int = 4,
    activation: str | None = "relu", seed: int = 0,
) -> Any:
    """A stack of stride-1 ``"same"`` ``Conv2D`` layers on one-channel images, He-normal weights, seeded.

    Args:
        kernels: kernel size of each layer (pixels).
        dilations: dilation rate of each layer (default all 1).
        input_size: height and width of the input (pixels).
        filters: feature maps per layer.
        activation: applied after each layer (``None``: a linear stack).
    """
    import keras

    dilations = [1] * len(kernels) if dilations is None else list(dilations)
    if len(dilations) != len(kernels) or not kernels:
        raise ValueError(f"dilations={dilations!r}: need one per kernel, and at least one kernel")
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((input_size, input_size, 1))])
    for k, d in zip(kernels, dilations, strict=True):
        model.add(keras.layers.Conv2D(filters, _positive_int(k, "kernels"), dilation_rate=_positive_int(
            d, "dilations"), padding="same", activation=activation, kernel_initializer="he_normal"))
    return model
