"""Fully convolutional networks (chapter 7): turn a CNN classifier's dense layers into convolutions.

A classifier that ends in ``Flatten`` + ``Dense`` layers only accepts the input size it was built for. Its
first dense layer looks at the whole ``h × w × c`` block that ``Flatten`` unrolls, so it is a ``Conv2D`` with
an ``h × w`` kernel and ``"valid"`` padding; every later dense layer sees one vector per position, so it is a
``1 × 1`` convolution. :func:`to_fcn` makes that conversion by reshaping the weights (no retraining), and the
result accepts any image at least as large as the original input.

Units: sizes are in pixels, compute in multiply–accumulate operations (MACs) per image.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnn_helpers import memory
from cnn_helpers import receptive_field as _rf


def _positive_int(value: Any, argument: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{argument}={value!r}: must be a positive integer")
    return int(value)


def classifier_cnn(
    input_shape: tuple[int, int, int] = (28, 28, 1),
    filters: Sequence[int] = (16, 32),
    kernel_sizes: Sequence[int] = (3, 3),
    dense_units: Sequence[int] = (64,),
    n_classes: int = 10,
    padding: str = "valid",
) -> Any:
    """A small CNN classifier: [Conv2D k×k + ReLU, MaxPool 2×2] per entry of ``filters``, then
    ``Flatten``, ``Dense`` + ReLU per entry of ``dense_units``, and a ``Dense`` of ``n_classes`` logits.

    Args:
        input_shape: ``(height, width, channels)`` in pixels.
        filters: feature maps of each convolutional block.
        kernel_sizes: the kernel size (pixels) of each block's convolution, same length as ``filters``.
        dense_units: units of each hidden dense layer (may be empty).
        n_classes: number of output logits (no softmax: the model outputs logits).
        padding: the convolutions' padding. With ``"valid"`` (no padding) the converted network is exactly
            the classifier slid over a larger image; with ``"same"`` the zeros padded around a crop differ
            from the real neighbouring pixels, so the two agree only away from the crop's border.
    """
    import keras
    from keras import layers

    if len(input_shape) != 3:
        raise ValueError(f"input_shape={input_shape!r}: must be (height, width, channels)")
    for i, n in enumerate(input_shape):
        _positive_int(n, f"input_shape[{i}]")
    if not filters:
        raise ValueError("filters: give at least one convolutional block")
    for i, n in enumerate(filters):
        _positive_int(n, f"filters[{i}]")
    for i, n in enumerate(dense_units):
        _positive_int(n, f"dense_units[{i}]")
    _positive_int(n_classes, "n_classes")
    if padding not in memory.PADDINGS:
        raise ValueError(f"padding={padding!r}: must be one of {memory.PADDINGS}")
    stack: list[Any] = [keras.Input(shape=input_shape)]
    for i, (n, k) in enumerate(zip(filters, kernel_sizes, strict=True), start=1):
        stack += [
            layers.Conv2D(n, k, padding=padding, activation="relu", name=f"conv{i}"),
            layers.MaxPooling2D(2, name=f"pool{i}"),
        ]
    stack.append(layers.Flatten(name="flatten"))
    for i, n in enumerate(dense_units, start=1):
        stack.append(layers.Dense(n, activation="relu", name=f"dense{i}"))
    stack.append(layers.Dense(n_classes, name="logits"))
    return keras.Sequential(stack, name="cnn")


def dense_to_conv_kernel(kernel: np.ndarray, input_shape: tuple[int, int, int]) -> np.ndarray:
    """Reshape a dense kernel that follows ``Flatten`` into a ``Conv2D`` kernel.

    Keras' ``Flatten`` (channels last) unrolls an ``(h, w, c)`` block row by row, channels fastest, so input
    ``i * w * c + j * c + k`` of the dense layer is pixel ``(i, j)``, channel ``k``. A C-order reshape of the
    ``(h·w·c, units)`` kernel into ``(h, w, c, units)`` is therefore exactly the matching convolution kernel.

    Args:
        kernel: the dense layer's kernel, shape ``(h * w * c, units)``.
        input_shape: ``(h, w, c)`` of the block the ``Flatten`` layer received.

    Returns:
        The ``(h, w, c, units)`` kernel of the equivalent ``Conv2D`` (``"valid"`` padding).
    """
    kernel = np.asarray(kernel)
    if kernel.ndim != 2:
        raise ValueError(f"kernel: must be 2-D (inputs, units), got shape {kernel.shape}")
    if len(input_shape) != 3:
        raise ValueError(f"input_shape={input_shape!r}: must be (height, width, channels)")
    h, w, c = (_positive_int(n, f"input_shape[{i}]") for i, n in enumerate(input_shape))
    if h * w * c != kernel.shape[0]:
        raise ValueError(
            f"input_shape={input_shape!r}: {h}·{w}·{c} = {h * w * c} inputs, but the kernel has {kernel.shape[0]}"
        )
    return kernel.reshape(h, w, c, kernel.shape[1])


def to_fcn(model: Any, name: str = "fcn") -> Any:
    """Convert a chain classifier ending in ``Flatten`` + ``Dense`` layers into a fully convolutional model.

    The classifier may be a ``keras.Sequential`` (built from a list or with ``add``) or a functional chain.

    Layers before ``Flatten`` are rebuilt with the same configuration and weights; the first ``Dense``
    becomes a ``Conv2D`` whose kernel covers the whole block ``Flatten`` received (``"valid"`` padding), and
    each later ``Dense`` becomes a ``1 × 1`` ``Conv2D``. Activations are kept. The returned model accepts
    ``(None, None, channels)`` inputs; on the original input size its output is ``(1, 1, n_classes)``.

    Raises:
        ValueError: if ``model`` has no ``Flatten`` layer, a non-``Dense`` layer after it, or a ``Dense``
            layer before it.
    """
    import keras
    from keras import layers

    # A functional model lists its InputLayer, a Sequential does not (however it was built: from a list or
    # with add()); the new model gets its own input, so the chain is every other layer.
    chain = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    kinds = [type(layer).__name__ for layer in chain]
    if "Flatten" not in kinds:
        raise ValueError(f"model={model.name!r}: no Flatten layer to convert after")
    cut = kinds.index("Flatten")
    if cut + 1 == len(chain) or any(k != "Dense" for k in kinds[cut + 1 :]):
        raise ValueError(f"model={model.name!r}: Flatten must be followed by Dense layers only, got {kinds[cut + 1:]}")
    if "Dense" in kinds[:cut]:
        raise ValueError(f"model={model.name!r}: a Dense layer before Flatten cannot be converted")
    flat_in = tuple(int(n) for n in chain[cut].input.shape[1:])
    channels = int(model.inputs[0].shape[-1])
    inputs = keras.Input(shape=(None, None, channels))
    x = inputs
    for layer in chain[:cut]:
        clone = layer.__class__.from_config(layer.get_config())
        x = clone(x)
        clone.set_weights(layer.get_weights())
    for i, dense in enumerate(chain[cut + 1 :]):
        kernel, *bias = dense.get_weights()
        spatial = flat_in if i == 0 else (1, 1, kernel.shape[0])
        conv = layers.Conv2D(
            dense.units,
            spatial[:2],
            padding="valid",
            activation=dense.activation,
            use_bias=dense.use_bias,
            name=f"{dense.name}_as_conv",
        )
        x = conv(x)
        conv.set_weights([dense_to_conv_kernel(kernel, spatial), *bias])
    return keras.Model(inputs, x, name=name)


def total_stride(model: Any) -> int:
    """Product of the strides (along the height) of a chain model's convolution and pooling layers."""
    stride = 1
    for layer in model.layers:
        s = getattr(layer, "strides", None)
        if s is not None:
            stride *= int(s[0])
    return stride


def receptive_field(model: Any) -> int:
    """Side (pixels) of the input window that one output position of a chain model depends on.

    A layer with kernel ``k``, stride ``s`` and dilation ``d`` grows the window by ``(k − 1) · d · j``, where
    ``j`` is the product of the strides before it. Rows dropped by a ``"valid"`` layer's floor are not part
    of the window. The computation is :func:`cnn_helpers.receptive_field.receptive_field` (which also reads
    branched functional models and can place the window); this name is kept for chapter 7.
    """
    return _rf.receptive_field(model)


def output_size(n: int, model: Any) -> int:
    """Output length along one side when a chain model of Conv2D / pooling layers gets ``n`` pixels.

    Uses :func:`cnn_helpers.memory.conv_output_size` layer by layer, with each layer's dilation (layers
    without a kernel, such as activations, keep the size).
    """
    n = _positive_int(n, "n")
    for layer in model.layers:
        if hasattr(layer, "kernel_size"):
            kernel, stride = layer.kernel_size[0], layer.strides[0]
        elif hasattr(layer, "pool_size"):
            kernel, stride = layer.pool_size[0], layer.strides[0]
        else:
            continue
        dilation = int(getattr(layer, "dilation_rate", (1,))[0])
        n = memory.conv_output_size(n, int(kernel), int(stride), layer.padding, dilation=dilation)
    return n


@dataclass(frozen=True)
class LayerMacs:
    """Multiply–accumulate operations of one layer for one image."""

    name: str
    output_shape: tuple[int, ...]
    macs: int


def macs(model: Any, input_shape: tuple[int, int, int]) -> list[LayerMacs]:
    """Multiply–accumulate operations (MACs) per image of each ``Conv2D`` and ``Dense`` layer of a chain.

    A ``Conv2D`` costs ``h_out · w_out · k_h · k_w · c_in · c_out`` MACs, a ``Dense`` ``inputs · units``.
    Biases, activations and pooling (no multiplications) are not counted. Output sizes are computed for
    ``input_shape`` with :func:`cnn_helpers.memory.conv_output_size`, so a fully convolutional model can be
    costed at any input size.
    """
    if len(input_shape) != 3:
        raise ValueError(f"input_shape={input_shape!r}: must be (height, width, channels)")
    h, w, c = (_positive_int(n, f"input_shape[{i}]") for i, n in enumerate(input_shape))
    shape: tuple[int, ...] = (h, w, c)
    rows = []
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Dense":
            inputs = math.prod(shape)
            rows.append(LayerMacs(layer.name, (layer.units,), inputs * layer.units))
            shape = (layer.units,)
        elif kind == "Flatten":
            shape = (math.prod(shape),)
        elif hasattr(layer, "kernel_size") or hasattr(layer, "pool_size"):
            size = layer.kernel_size if hasattr(layer, "kernel_size") else layer.pool_size
            dilation = getattr(layer, "dilation_rate", (1, 1))
            out = tuple(
                memory.conv_output_size(
                    shape[d], int(size[d]), int(layer.strides[d]), layer.padding, dilation=int(dilation[d])
                )
                for d in (0, 1)
            )
            if kind == "Conv2D":
                shape = (*out, layer.filters)
                rows.append(LayerMacs(layer.name, shape, out[0] * out[1] * size[0] * size[1] * c * layer.filters))
            else:
                shape = (*out, shape[2])
        c = shape[-1]
    return rows


def sliding_windows(image: np.ndarray, window: int, stride: int) -> np.ndarray:
    """All ``window × window`` crops of an ``(H, W, C)`` image taken every ``stride`` pixels.

    Returns:
        Array ``(rows, cols, window, window, C)`` with ``rows = (H - window) // stride + 1`` (same for cols);
        crop ``[r, q]`` starts at pixel ``(r * stride, q * stride)``.
    """
    image = np.asarray(image)
    if image.ndim != 3:
        raise ValueError(f"image: must be (height, width, channels), got shape {image.shape}")
    window = _positive_int(window, "window")
    stride = _positive_int(stride, "stride")
    if window > min(image.shape[:2]):
        raise ValueError(f"window={window}: larger than the image {image.shape[:2]}")
    rows = (image.shape[0] - window) // stride + 1
    cols = (image.shape[1] - window) // stride + 1
    return np.stack(
        [
            np.stack([image[r * stride : r * stride + window, q * stride : q * stride + window] for q in range(cols)])
            for r in range(rows)
        ]
    )


def place_on_canvas(
    digits: np.ndarray, positions: Sequence[tuple[int, int]], canvas_shape: tuple[int, int]
) -> np.ndarray:
    """Paste ``(n, h, w, C)`` images on a zero canvas with their top-left corners at ``positions`` (pixels).

    Overlaps keep the maximum. Returns a float32 ``(height, width, C)`` canvas.
    """
    digits = np.asarray(digits)
    if digits.ndim != 4:
        raise ValueError(f"digits: must be (n, height, width, channels), got shape {digits.shape}")
    if len(positions) != len(digits):
        raise ValueError(f"positions: {len(positions)} positions for {len(digits)} digits")
    height, width = (_positive_int(n, f"canvas_shape[{i}]") for i, n in enumerate(canvas_shape))
    canvas = np.zeros((height, width, digits.shape[-1]), np.float32)
    h, w = digits.shape[1:3]
    for (top, left), digit in zip(positions, digits, strict=True):
        if top < 0 or left < 0 or top + h > height or left + w > width:
            raise ValueError(f"positions: ({top}, {left}) puts a {h}×{w} image outside the {height}×{width} canvas")
        canvas[top : top + h, left : left + w] = np.maximum(canvas[top : top + h, left : left + w], digit)
    return canvas
