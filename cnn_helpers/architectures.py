"""Landmark CNN architectures and their building blocks in Keras, with multiply-accumulate (MAC) counts.

Units: MACs are integer multiply-accumulate operations for ONE image in a forward pass (a "FLOP" in the
EfficientNet paper is one MAC). Parameter counts are what ``keras.Model.count_params`` reports.

Blocks take a Keras tensor and return one (functional API), so they can be stacked and wrapped in a
``keras.Model`` to be counted: :func:`inception_module`, :func:`residual_unit`,
:func:`bottleneck_residual_unit`, :func:`se_block`. Full models: :func:`lenet5`, :func:`alexnet`.
No pretrained weights are used anywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import keras
from keras import layers

# --------------------------------------------------------------------------------------------------------
# MAC counting


def layer_macs(layer: layers.Layer) -> int:
    """MACs per image of one layer, from its (single) output shape and its configuration.

    * ``Conv2D``: H_out × W_out × C_out × k_h × k_w × C_in / groups.
    * ``DepthwiseConv2D``: H_out × W_out × C_in × multiplier × k_h × k_w.
    * ``SeparableConv2D``: its depthwise part plus a 1 × 1 pointwise part (H_out × W_out × C_mid × C_out).
    * ``Dense``: inputs × units per position of the input's leading (non-batch) axes.
    * Anything else (pooling, activations, batch norm, additions, multiplications): 0, as is usual.

    Raises:
        ValueError: if the layer's output shape has unknown dimensions (build with a fixed input shape).
    """

    def dims(shape: Any) -> tuple[int, ...]:
        if any(d is None for d in shape[1:]):
            raise ValueError(f"layer: {layer.name!r} has an unknown dimension in {tuple(shape)}")
        return tuple(int(d) for d in shape[1:])

    if isinstance(layer, layers.SeparableConv2D):
        h, w, c_out = dims(layer.output.shape)
        c_in = dims(layer.input.shape)[-1]
        kh, kw = layer.kernel_size
        c_mid = c_in * layer.depth_multiplier
        return h * w * c_mid * kh * kw + h * w * c_mid * c_out
    if isinstance(layer, layers.DepthwiseConv2D):
        h, w, c_out = dims(layer.output.shape)
        kh, kw = layer.kernel_size
        return h * w * c_out * kh * kw
    if isinstance(layer, layers.Conv2D):
        h, w, c_out = dims(layer.output.shape)
        c_in = dims(layer.input.shape)[-1]
        kh, kw = layer.kernel_size
        return h * w * c_out * kh * kw * c_in // layer.groups
    if isinstance(layer, layers.Dense):
        in_shape = dims(layer.input.shape)
        return math.prod(in_shape[:-1]) * in_shape[-1] * layer.units
    return 0


def count_macs(model: keras.Model) -> int:
    """Total MACs per image of a built functional or Sequential model (nested models are descended).

    Each layer must be used once (its output shape must be unique).
    """
    if not isinstance(model, keras.Model):
        raise ValueError(f"model: expected a keras.Model, got {type(model).__name__}")
    total = 0
    for layer in model.layers:
        total += count_macs(layer) if isinstance(layer, keras.Model) else layer_macs(layer)
    return total


@dataclass(frozen=True)
class Cost:
    """Parameters and MACs per image of a block or model."""

    name: str
    params: int
    macs: int


def cost(model: keras.Model, name: str | None = None) -> Cost:
    """:class:`Cost` of a built model: ``count_params()`` and :func:`count_macs`."""
    return Cost(name or model.name, int(model.count_params()), count_macs(model))


def block_model(block: Any, input_shape: tuple[int, ...], name: str, **kwargs: Any) -> keras.Model:
    """Wrap a block function (tensor → tensor) in a ``keras.Model`` for an input of ``input_shape``."""
    inputs = keras.Input(shape=input_shape)
    return keras.Model(inputs, block(inputs, **kwargs), name=name)


# --------------------------------------------------------------------------------------------------------
# Building blocks


def inception_module(
    x: Any, f1: int, f3_reduce: int, f3: int, f5_reduce: int, f5: int, f_pool: int, bottleneck: bool = True
) -> Any:
    """GoogLeNet's inception module: 1 × 1, 3 × 3, 5 × 5 convolutions and 3 × 3 max pooling in parallel.

    With ``bottleneck=True`` (the paper's) 1 × 1 convolutions reduce the channels to ``f3_reduce`` and
    ``f5_reduce`` before the 3 × 3 and 5 × 5 convolutions, and project the pooling branch to ``f_pool``.
    With ``bottleneck=False`` (the naive module) the 3 × 3 and 5 × 5 convolutions see all input channels and
    the pooling branch passes them through. Outputs are concatenated along the channels. ReLU everywhere.
    """
    def conv(t: Any, n: int, k: int) -> Any:
        return layers.Conv2D(n, k, padding="same", activation="relu")(t)

    b1 = conv(x, f1, 1)
    pool = layers.MaxPooling2D(3, strides=1, padding="same")(x)
    if bottleneck:
        b3 = conv(conv(x, f3_reduce, 1), f3, 3)
        b5 = conv(conv(x, f5_reduce, 1), f5, 5)
        pool = conv(pool, f_pool, 1)
    else:
        b3 = conv(x, f3, 3)
        b5 = conv(x, f5, 5)
    return layers.Concatenate()([b1, b3, b5, pool])


def residual_unit(x: Any, filters: int, strides: int = 1, projection: bool | None = None) -> Any:
    """ResNet's basic residual unit: two 3 × 3 conv–BN layers, plus the input (the shortcut), then ReLU.

    The shortcut is the identity unless the shape changes (``strides > 1`` or a new number of channels) or
    ``projection=True``: then it is a 1 × 1 convolution with the same stride, followed by batch norm.
    """
    if projection is None:
        projection = strides != 1 or int(x.shape[-1]) != filters
    y = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False)(x)
    y = layers.BatchNormalization()(y)
    y = layers.ReLU()(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False)(y)
    y = layers.BatchNormalization()(y)
    shortcut = x
    if projection:
        shortcut = layers.Conv2D(filters, 1, strides=strides, use_bias=False)(x)
        shortcut = layers.BatchNormalization()(shortcut)
    return layers.ReLU()(layers.Add()([y, shortcut]))


def bottleneck_residual_unit(x: Any, filters: int, expansion: int = 4) -> Any:
    """ResNet-50's bottleneck unit: 1 × 1 (reduce to ``filters``), 3 × 3, 1 × 1 (expand), identity shortcut.

    The input must already have ``filters × expansion`` channels.
    """
    if int(x.shape[-1]) != filters * expansion:
        raise ValueError(f"filters={filters!r}: input has {x.shape[-1]} channels, need {filters * expansion}")
    y = x
    for n, k in ((filters, 1), (filters, 3), (filters * expansion, 1)):
        y = layers.Conv2D(n, k, padding="same", use_bias=False)(y)
        y = layers.BatchNormalization()(y)
        if n == filters:
            y = layers.ReLU()(y)
    return layers.ReLU()(layers.Add()([y, x]))


def se_block(x: Any, ratio: int = 16) -> Any:
    """SENet's squeeze-and-excitation block: rescale each channel by a weight learned from all channels.

    Squeeze: global average pooling to one number per channel. Excitation: Dense(C / ratio, ReLU) then
    Dense(C, sigmoid). The input's maps are multiplied by these C weights in [0, 1].
    """
    channels = int(x.shape[-1])
    if ratio < 1 or channels % ratio:
        raise ValueError(f"ratio={ratio!r}: must be a positive divisor of the {channels} channels")
    s = layers.GlobalAveragePooling2D()(x)
    s = layers.Dense(channels // ratio, activation="relu")(s)
    s = layers.Dense(channels, activation="sigmoid")(s)
    return layers.Multiply()([x, layers.Reshape((1, 1, channels))(s)])


# --------------------------------------------------------------------------------------------------------
# Full models


def lenet5(input_shape: tuple[int, int, int] = (32, 32, 1), n_classes: int = 10) -> keras.Sequential:
    """LeNet-5 (LeCun et al., 1998) in today's terms: tanh convolutions, average pooling, dense top.

    C1: 6 maps 5 × 5; S2: 2 × 2 average pooling; C3: 16 maps 5 × 5 (all-to-all, not the paper's partial
    connection table); S4: pooling; C5: 120 maps 5 × 5; F6: 84 units; output: ``n_classes`` (softmax instead
    of the paper's RBF units).
    """
    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            layers.Conv2D(6, 5, activation="tanh", name="C1"),
            layers.AveragePooling2D(2, name="S2"),
            layers.Conv2D(16, 5, activation="tanh", name="C3"),
            layers.AveragePooling2D(2, name="S4"),
            layers.Conv2D(120, 5, activation="tanh", name="C5"),
            layers.Flatten(name="flatten"),
            layers.Dense(84, activation="tanh", name="F6"),
            layers.Dense(n_classes, activation="softmax", name="output"),
        ],
        name="lenet5",
    )


def alexnet(input_shape: tuple[int, int, int] = (227, 227, 3), n_classes: int = 1000) -> keras.Sequential:
    """AlexNet (Krizhevsky et al., 2012) as one tower: five ReLU convolutions, three dense layers, dropout.

    Local response normalization after conv1 and conv2, overlapping 3 × 3 max pooling with stride 2. The
    paper split most layers over two GPUs (conv2, conv4 and conv5 saw only their GPU's half of the maps);
    this single-tower version has all-to-all connections, hence a few more parameters.
    """
    import tensorflow as tf

    def lrn(name: str) -> layers.Layer:
        return layers.Lambda(
            lambda t: tf.nn.local_response_normalization(t, depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75),
            name=name,
        )

    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            layers.Conv2D(96, 11, strides=4, activation="relu", name="conv1"),
            lrn("lrn1"),
            layers.MaxPooling2D(3, strides=2, name="pool1"),
            layers.Conv2D(256, 5, padding="same", activation="relu", name="conv2"),
            lrn("lrn2"),
            layers.MaxPooling2D(3, strides=2, name="pool2"),
            layers.Conv2D(384, 3, padding="same", activation="relu", name="conv3"),
            layers.Conv2D(384, 3, padding="same", activation="relu", name="conv4"),
            layers.Conv2D(256, 3, padding="same", activation="relu", name="conv5"),
            layers.MaxPooling2D(3, strides=2, name="pool5"),
            layers.Flatten(name="flatten"),
            layers.Dropout(0.5, name="drop6"),
            layers.Dense(4096, activation="relu", name="fc6"),
            layers.Dropout(0.5, name="drop7"),
            layers.Dense(4096, activation="relu", name="fc7"),
            layers.Dense(n_classes, activation="softmax", name="fc8"),
        ],
        name="alexnet",
    )


# --------------------------------------------------------------------------------------------------------
# EfficientNet compound scaling


@dataclass(frozen=True)
class Scaling:
    """EfficientNet's multipliers for one compound coefficient φ."""

    phi: int
    depth: float  #: α^φ: layers
    width: float  #: β^φ: channels
    resolution: float  #: γ^φ: image side
    flops: float  #: (α · β² · γ²)^φ: MACs grow with depth, width squared and resolution squared


def compound_scaling(phi: int, alpha: float = 1.2, beta: float = 1.1, gamma: float = 1.15) -> Scaling:
    """EfficientNet's compound scaling (Tan & Le, 2019): depth α^φ, width β^φ, resolution γ^φ.

    With the paper's α = 1.2, β = 1.1, γ = 1.15, α · β² · γ² ≈ 1.92 ≈ 2, so MACs grow about 2^φ.

    Raises:
        ValueError: for a negative ``phi`` or a multiplier below 1.
    """
    if isinstance(phi, bool) or not isinstance(phi, int) or phi < 0:
        raise ValueError(f"phi={phi!r}: must be a non-negative integer")
    for value, argument in ((alpha, "alpha"), (beta, "beta"), (gamma, "gamma")):
        if value < 1:
            raise ValueError(f"{argument}={value!r}: must be at least 1")
    return Scaling(phi, alpha**phi, beta**phi, gamma**phi, (alpha * beta**2 * gamma**2) ** phi)


def plain_conv_stack(depth: int, width: int, resolution: int) -> keras.Sequential:
    """A toy network to scale: ``depth`` 3 × 3 "same" convolutions of ``width`` maps on RGB images of
    ``resolution`` × ``resolution``. Its MACs are about depth × width² × resolution² × 9."""
    for value, argument in ((depth, "depth"), (width, "width"), (resolution, "resolution")):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{argument}={value!r}: must be a positive integer")
    return keras.Sequential(
        [keras.Input(shape=(resolution, resolution, 3))]
        + [layers.Conv2D(width, 3, padding="same", activation="relu") for _ in range(depth)],
        name=f"stack_d{depth}_w{width}_r{resolution}",
    )


def scaled_stack(base_depth: int, base_width: int, base_resolution: int, scaling: Scaling) -> keras.Sequential:
    """:func:`plain_conv_stack` scaled by ``scaling``: depth rounded up, width and resolution rounded."""
    return plain_conv_stack(
        math.ceil(base_depth * scaling.depth),
        round(base_width * scaling.width),
        round(base_resolution * scaling.resolution),
    )
