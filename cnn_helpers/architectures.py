"""Landmark CNN architectures and their building blocks in Keras, with multiply-accumulate (MAC) counts.

Units: MACs are integer multiply-accumulate operations for ONE image in a forward pass (a "FLOP" in the
EfficientNet paper is one MAC). Parameter counts are what ``keras.Model.count_params`` reports.

Blocks take a Keras tensor and return one (functional API), so they can be stacked and wrapped in a
``keras.Model`` to be counted: :func:`inception_module`, :func:`residual_unit`,
:func:`bottleneck_residual_unit`, :func:`se_block`. Full models: :func:`lenet5` (today's variant) and
:func:`lenet5_original` (the 1998 paper's), :func:`alexnet` (one tower or the paper's two grouped towers),
:func:`googlenet`, :func:`resnet` (ResNet-34, ResNet-50, SE-ResNet-50). The degradation study of the ResNet
paper, at MNIST scale: :func:`small_net` (plain or residual), :func:`train_curve`, :func:`kernel_gradient_norms`.
No pretrained weights are used anywhere.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
from keras import layers

# --------------------------------------------------------------------------------------------------------
# MAC counting


def layer_macs(layer: layers.Layer) -> int:
    """MACs per image of one layer, from its (single) output shape and its configuration.

    * ``Conv2D``: H_out × W_out × C_out × k_h × k_w × C_in / groups.
    * ``DepthwiseConv2D``: H_out × W_out × C_in × multiplier × k_h × k_w.
    * ``SeparableConv2D``: its depthwise part plus a 1 × 1 pointwise part (H_out × W_out × C_mid × C_out).
    * ``Conv2DTranspose``: H_in × W_in × C_in × k_h × k_w × C_out (every input value is spread by the kernel).
    * ``Dense``: inputs × units per position of the input's leading (non-batch) axes.
    * :class:`ConnectionTableConv2D`: H_out × W_out × k_h × k_w × (number of connected map pairs).
    * :class:`EuclideanRBF`: inputs × units (one subtract-square-accumulate each).
    * Anything else (pooling, activations, batch norm, additions, multiplications): 0, as is usual.

    Raises:
        ValueError: if the layer's output shape has unknown dimensions (build with a fixed input shape).
    """

    def dims(shape: Any) -> tuple[int, ...]:
        if any(d is None for d in shape[1:]):
            raise ValueError(f"layer: {layer.name!r} has an unknown dimension in {tuple(shape)}")
        return tuple(int(d) for d in shape[1:])

    if isinstance(layer, ConnectionTableConv2D):
        h, w, _ = dims(layer.output.shape)
        return h * w * layer.kernel_size**2 * layer.n_connections
    if isinstance(layer, EuclideanRBF):
        return dims(layer.input.shape)[-1] * layer.units
    if isinstance(layer, layers.SeparableConv2D):
        h, w, c_out = dims(layer.output.shape)
        c_in = dims(layer.input.shape)[-1]
        kh, kw = layer.kernel_size
        c_mid = c_in * layer.depth_multiplier
        return h * w * c_mid * kh * kw + h * w * c_mid * c_out
    if isinstance(layer, layers.Conv2DTranspose):
        h, w, c_in = dims(layer.input.shape)
        c_out = dims(layer.output.shape)[-1]
        kh, kw = layer.kernel_size
        return h * w * c_in * kh * kw * c_out
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


def residual_unit(
    x: Any, filters: int, strides: int = 1, projection: bool | None = None, use_bias: bool = False
) -> Any:
    """ResNet's basic residual unit: two 3 × 3 conv–BN layers, plus the input (the shortcut), then ReLU.

    The shortcut is the identity unless the shape changes (``strides > 1`` or a new number of channels) or
    ``projection=True``: then it is a 1 × 1 convolution with the same stride, followed by batch norm (the
    paper's option B). ``use_bias`` adds a bias to every convolution (redundant before batch norm).

    Raises:
        ValueError: if ``projection=False`` but the shape changes.
    """
    changes = strides != 1 or int(x.shape[-1]) != filters
    if projection is None:
        projection = changes
    if changes and not projection:
        raise ValueError(f"projection={projection!r}: the unit changes the shape, an identity shortcut cannot")
    y = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=use_bias)(x)
    y = layers.BatchNormalization()(y)
    y = layers.ReLU()(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=use_bias)(y)
    y = layers.BatchNormalization()(y)
    shortcut = x
    if projection:
        shortcut = layers.Conv2D(filters, 1, strides=strides, use_bias=use_bias)(x)
        shortcut = layers.BatchNormalization()(shortcut)
    return layers.ReLU()(layers.Add()([y, shortcut]))


def bottleneck_residual_unit(
    x: Any,
    filters: int,
    expansion: int = 4,
    strides: int = 1,
    projection: bool | None = None,
    se_ratio: int | None = None,
    use_bias: bool = False,
) -> Any:
    """ResNet-50's bottleneck unit: 1 × 1 (reduce to ``filters``), 3 × 3, 1 × 1 (expand to
    ``filters × expansion``), each followed by batch norm, plus the shortcut, then ReLU.

    As in the original ResNet models (and ``keras.applications.ResNet50``), a stride of 2 is applied by the
    first 1 × 1 convolution and by the projection shortcut. The shortcut is the identity unless the shape
    changes or ``projection=True`` (then a strided 1 × 1 convolution and batch norm). With ``se_ratio`` an
    SE block (:func:`se_block`) rescales the residual branch before the addition, as in SE-ResNet (Hu et al.).

    Raises:
        ValueError: if ``projection=False`` but the shape changes (the message names ``filters``).
    """
    out_channels = filters * expansion
    changes = strides != 1 or int(x.shape[-1]) != out_channels
    if projection is None:
        projection = changes
    if changes and not projection:
        raise ValueError(
            f"filters={filters!r}: input has {x.shape[-1]} channels and stride {strides}, an identity shortcut "
            f"needs {out_channels} channels and stride 1 (or pass projection=True)"
        )
    y = x
    for n, k, s in ((filters, 1, strides), (filters, 3, 1), (out_channels, 1, 1)):
        y = layers.Conv2D(n, k, strides=s, padding="same", use_bias=use_bias)(y)
        y = layers.BatchNormalization()(y)
        if n == filters:
            y = layers.ReLU()(y)
    if se_ratio is not None:
        y = se_block(y, ratio=se_ratio)
    shortcut = x
    if projection:
        shortcut = layers.Conv2D(out_channels, 1, strides=strides, use_bias=use_bias)(x)
        shortcut = layers.BatchNormalization()(shortcut)
    return layers.ReLU()(layers.Add()([y, shortcut]))


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
# Layers the 1998 LeNet-5 needs and Keras lacks


class ConnectionTableConv2D(layers.Layer):
    """A k × k "valid" convolution in which output map j sees only the input maps listed in ``table[j]``.

    LeNet-5's C3 layer (LeCun et al., 1998, Table I) is such a convolution: each of its 16 maps reads 3, 4 or
    6 of the 6 S2 maps, "to break the symmetry in the network" and to keep the number of connections down.
    Only the connected k × k kernels are weights: k² × (number of connected pairs) of them, plus one bias per
    output map.

    Raises:
        ValueError: if ``table`` is empty, has an empty or repeated entry, or names a map the input lacks.
    """

    def __init__(self, table: Sequence[Sequence[int]], kernel_size: int, activation: Any = None, **kwargs: Any):
        super().__init__(**kwargs)
        rows = tuple(tuple(int(i) for i in row) for row in table)
        if not rows or any(not row or len(set(row)) != len(row) or min(row) < 0 for row in rows):
            raise ValueError(f"table={table!r}: every output map needs distinct, non-negative input maps")
        if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1:
            raise ValueError(f"kernel_size={kernel_size!r}: must be a positive integer")
        self.table = rows
        self.filters = len(rows)
        self.kernel_size = kernel_size
        self.n_connections = sum(len(row) for row in rows)
        self.activation = keras.activations.get(activation)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        c_in = int(input_shape[-1])
        if max(max(row) for row in self.table) >= c_in:
            raise ValueError(f"table={self.table!r}: names an input map beyond the {c_in} the input has")
        k = self.kernel_size
        self.kernel = self.add_weight(shape=(k, k, self.n_connections), initializer="glorot_uniform", name="kernel")
        self.bias = self.add_weight(shape=(self.filters,), initializer="zeros", name="bias")
        # index[i, j] = 0 if input map i does not feed output map j, else 1 + the slot of its kernel
        index = np.zeros((c_in, self.filters), dtype="int32")
        slot = 1
        for j, row in enumerate(self.table):
            for i in row:
                index[i, j] = slot
                slot += 1
        self._index = index

    def call(self, inputs: Any) -> Any:
        k = self.kernel_size
        kernels = keras.ops.concatenate([keras.ops.zeros((k, k, 1), dtype=self.kernel.dtype), self.kernel], axis=-1)
        full = keras.ops.take(kernels, self._index, axis=-1)  # (k, k, c_in, filters), zeros where unconnected
        return self.activation(keras.ops.conv(inputs, full, padding="valid") + self.bias)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        b, h, w, _ = input_shape
        k = self.kernel_size
        return (b, None if h is None else h - k + 1, None if w is None else w - k + 1, self.filters)


class EuclideanRBF(layers.Layer):
    """LeNet-5's output layer: unit i outputs the squared distance between its input and a centre w_i.

    y_i = Σ_j (x_j − w_ij)², a penalty (the smallest wins), not a probability. The paper chose the centres by
    hand (stylised 7 × 12 bitmaps of the characters, entries ±1) and "kept [them] fixed (at least
    initially)": here they are random ±1 and not trainable unless ``trainable_centres=True``.
    """

    def __init__(self, units: int, trainable_centres: bool = False, seed: int = 0, **kwargs: Any):
        super().__init__(**kwargs)
        if isinstance(units, bool) or not isinstance(units, int) or units < 1:
            raise ValueError(f"units={units!r}: must be a positive integer")
        self.units = units
        self.trainable_centres = trainable_centres
        self.seed = seed

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        d = int(input_shape[-1])
        signs = np.where(np.random.default_rng(self.seed).random((d, self.units)) < 0.5, -1.0, 1.0)
        self.centres = self.add_weight(
            shape=(d, self.units),
            initializer=keras.initializers.Constant(signs),
            trainable=self.trainable_centres,
            name="centres",
        )

    def call(self, inputs: Any) -> Any:
        diff = keras.ops.expand_dims(inputs, -1) - self.centres
        return keras.ops.sum(diff * diff, axis=-2)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (*input_shape[:-1], self.units)


#: LeNet-5's C3 connection table (LeCun et al., 1998, Table I): the S2 maps each of the 16 C3 maps reads.
LENET5_C3_TABLE: tuple[tuple[int, ...], ...] = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (0, 4, 5), (0, 1, 5),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (0, 3, 4, 5), (0, 1, 4, 5), (0, 1, 2, 5),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)  # fmt: skip


def lecun_tanh(x: Any) -> Any:
    """LeNet-5's squashing function f(a) = A tanh(S a), with A = 1.7159 and S = 2/3 (LeCun et al., 1998)."""
    return 1.7159 * keras.ops.tanh(x * (2.0 / 3.0))


# --------------------------------------------------------------------------------------------------------
# Full models


def lenet5(input_shape: tuple[int, int, int] = (32, 32, 1), n_classes: int = 10) -> keras.Sequential:
    """LeNet-5 as most books and courses build it today (not the 1998 paper's; see :func:`lenet5_original`).

    C1: 6 maps 5 × 5, tanh; S2: 2 × 2 average pooling; C3: 16 maps 5 × 5 reading all 6 S2 maps; S4: pooling;
    C5: 120 maps 5 × 5; F6: 84 units; output: ``n_classes`` softmax units.
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


def lenet5_original(input_shape: tuple[int, int, int] = (32, 32, 1), n_classes: int = 10) -> keras.Sequential:
    """LeNet-5 as the 1998 paper describes it (LeCun, Bottou, Bengio, Haffner, Section II.B).

    * squashing function :func:`lecun_tanh` in C1 to F6;
    * S2, S4: the four inputs of each 2 × 2 window are summed, multiplied by a trainable coefficient and
      shifted by a trainable bias, one pair per map (here: average pooling, then a 1 × 1 depthwise convolution
      with a bias, which is the same computation);
    * C3: the partial connection table :data:`LENET5_C3_TABLE` (:class:`ConnectionTableConv2D`);
    * output: ``n_classes`` Euclidean RBF units with fixed centres (:class:`EuclideanRBF`).

    Trainable parameters: 156 + 12 + 1,516 + 32 + 48,120 + 10,164 = 60,000 for ten classes, plus the 840
    non-trainable RBF centres.
    """
    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            layers.Conv2D(6, 5, activation=lecun_tanh, name="C1"),
            layers.AveragePooling2D(2, name="S2_sum"),
            layers.DepthwiseConv2D(1, activation=lecun_tanh, name="S2"),
            ConnectionTableConv2D(LENET5_C3_TABLE, 5, activation=lecun_tanh, name="C3"),
            layers.AveragePooling2D(2, name="S4_sum"),
            layers.DepthwiseConv2D(1, activation=lecun_tanh, name="S4"),
            layers.Conv2D(120, 5, activation=lecun_tanh, name="C5"),
            layers.Flatten(name="flatten"),
            layers.Dense(84, activation=lecun_tanh, name="F6"),
            EuclideanRBF(n_classes, name="output"),
        ],
        name="lenet5_1998",
    )


def alexnet(
    input_shape: tuple[int, int, int] = (227, 227, 3), n_classes: int = 1000, grouped: bool = False
) -> keras.Sequential:
    """AlexNet (Krizhevsky, Sutskever, Hinton, 2012): five ReLU convolutions, three dense layers, dropout.

    Local response normalization after conv1 and conv2, overlapping 3 × 3 max pooling with stride 2, dropout
    (0.5) on the outputs of fc6 and fc7. The input is 227 × 227 (the paper writes 224 × 224, which does not
    give its 55 × 55 conv1 maps with an 11 × 11 kernel, stride 4 and no padding).

    ``grouped=True`` is the paper's network: its two GPUs each held half of every layer's maps, and conv2,
    conv4 and conv5 read only the maps on their own GPU, which is a convolution with ``groups=2`` (conv1,
    conv3 and the dense layers read everything). ``grouped=False`` is the single-tower variant most code
    builds, with all-to-all connections and more parameters.
    """
    import tensorflow as tf

    def lrn(name: str) -> layers.Layer:
        return layers.Lambda(
            lambda t: tf.nn.local_response_normalization(t, depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75),
            name=name,
        )

    g = 2 if grouped else 1
    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            layers.Conv2D(96, 11, strides=4, activation="relu", name="conv1"),
            lrn("lrn1"),
            layers.MaxPooling2D(3, strides=2, name="pool1"),
            layers.Conv2D(256, 5, padding="same", activation="relu", groups=g, name="conv2"),
            lrn("lrn2"),
            layers.MaxPooling2D(3, strides=2, name="pool2"),
            layers.Conv2D(384, 3, padding="same", activation="relu", name="conv3"),
            layers.Conv2D(384, 3, padding="same", activation="relu", groups=g, name="conv4"),
            layers.Conv2D(256, 3, padding="same", activation="relu", groups=g, name="conv5"),
            layers.MaxPooling2D(3, strides=2, name="pool5"),
            layers.Flatten(name="flatten"),
            layers.Dense(4096, activation="relu", name="fc6"),
            layers.Dropout(0.5, name="drop6"),
            layers.Dense(4096, activation="relu", name="fc7"),
            layers.Dropout(0.5, name="drop7"),
            layers.Dense(n_classes, activation="softmax", name="fc8"),
        ],
        name="alexnet_2gpu" if grouped else "alexnet",
    )


#: GoogLeNet's inception modules (Szegedy et al., 2015, Table 1): #1×1, #3×3 reduce, #3×3, #5×5 reduce, #5×5,
#: pool proj.
GOOGLENET_INCEPTION: dict[str, tuple[int, int, int, int, int, int]] = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}


def googlenet(
    input_shape: tuple[int, int, int] = (224, 224, 3), n_classes: int = 1000, global_pooling: bool = True
) -> keras.Model:
    """GoogLeNet as in Table 1 of Szegedy et al. (2015), for inference: the auxiliary classifiers, used only in
    training, and the local response normalizations (no parameters) are left out.

    Stem (7 × 7/2 convolution, 3 × 3/2 max pooling, 1 × 1 then 3 × 3 convolutions, 3 × 3/2 max pooling), the
    nine inception modules of :data:`GOOGLENET_INCEPTION` with max pooling between stages, then global average
    pooling of the 7 × 7 × 1024 maps, dropout (40 %) and one dense softmax layer. ``global_pooling=False``
    flattens the maps instead (what an AlexNet-style top would do), to count what the pooling saves.
    """
    def conv(t: Any, n: int, k: int, s: int = 1) -> Any:
        return layers.Conv2D(n, k, strides=s, padding="same", activation="relu")(t)

    def pool(t: Any) -> Any:
        return layers.MaxPooling2D(3, strides=2, padding="same")(t)

    inputs = keras.Input(shape=input_shape)
    x = pool(conv(inputs, 64, 7, 2))
    x = pool(conv(conv(x, 64, 1), 192, 3))
    for name, filters in GOOGLENET_INCEPTION.items():
        if name in ("4a", "5a"):
            x = pool(x)
        x = inception_module(x, *filters)
    x = layers.GlobalAveragePooling2D()(x) if global_pooling else layers.Flatten()(x)
    x = layers.Dropout(0.4)(x)
    outputs = layers.Dense(n_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="googlenet" if global_pooling else "googlenet_flatten_top")


def resnet(
    units: Sequence[int] = (3, 4, 6, 3),
    bottleneck: bool = True,
    se_ratio: int | None = None,
    use_bias: bool = False,
    input_shape: tuple[int, int, int] = (224, 224, 3),
    n_classes: int = 1000,
) -> keras.Model:
    """An ImageNet ResNet (He et al., 2016, Table 1): ResNet-50 by default, ResNet-34 with ``bottleneck=False``.

    Stem: 7 × 7/2 convolution with batch norm and ReLU, 3 × 3/2 max pooling. Then four stages of
    ``units`` residual units with 64, 128, 256, 512 filters (bottleneck units expand them 4 ×); the first unit
    of stages 2–4 halves the maps with a stride of 2 and a projection shortcut. Global average pooling and one
    dense softmax layer. ``se_ratio`` puts an SE block in every unit (SE-ResNet, Hu et al.); ``use_bias``
    adds biases to the convolutions, as ``keras.applications.ResNet50`` does.

    Raises:
        ValueError: if ``units`` is not four positive integers.
    """
    units = tuple(units)
    if len(units) != 4 or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in units):
        raise ValueError(f"units={units!r}: must be four positive integers")
    if se_ratio is not None and not bottleneck:
        raise ValueError(f"se_ratio={se_ratio!r}: SE blocks are only wired into bottleneck units here")
    inputs = keras.Input(shape=input_shape)
    x = layers.Conv2D(64, 7, strides=2, padding="same", use_bias=use_bias)(inputs)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    for stage, (n, filters) in enumerate(zip(units, (64, 128, 256, 512))):
        for u in range(n):
            strides = 2 if stage > 0 and u == 0 else 1
            if bottleneck:
                x = bottleneck_residual_unit(x, filters, strides=strides, se_ratio=se_ratio, use_bias=use_bias)
            else:
                x = residual_unit(x, filters, strides=strides, use_bias=use_bias)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(n_classes, activation="softmax")(x)
    depth = 2 + (3 if bottleneck else 2) * sum(units)
    return keras.Model(inputs, outputs, name=f"{'se_' if se_ratio else ''}resnet{depth}")


# --------------------------------------------------------------------------------------------------------
# The degradation problem, at MNIST scale


def conv_bn_stages(
    x,
    stages,
    *,
    bn_momentum: float = 0.9,
    stage_dropout: float = 0.0,
    seed: int = 42,
):
    """VGG-style stages on tensor ``x``: per stage, 3 × 3 Conv (no bias) → BatchNorm → ReLU for each entry of
    ``stages`` (its filters), then a 2 × 2 max pool (and ``Dropout(stage_dropout)`` if non-zero) between stages.

    Layers are named ``conv{s}_{c}``, ``bn{s}_{c}``, ``relu{s}_{c}``, ``pool{s}`` and ``dropout{s}`` (stage ``s``
    and convolution ``c`` counted from 1); the dropout of stage ``s`` is seeded with ``seed + s``. Used by
    :func:`cnn_helpers.mnist.our_model` and :func:`cnn_helpers.cifar.build_model`. Returns the output tensor.
    """
    from keras import layers

    if not stages or any(not stage for stage in stages):
        raise ValueError(f"stages={stages!r}: give at least one stage, each with at least one convolution")
    for s, stage in enumerate(stages, start=1):
        for c, filters in enumerate(stage, start=1):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{s}_{c}")(x)
            x = layers.BatchNormalization(momentum=bn_momentum, name=f"bn{s}_{c}")(x)
            x = layers.ReLU(name=f"relu{s}_{c}")(x)
        if s < len(stages):
            x = layers.MaxPooling2D(2, name=f"pool{s}")(x)
            if stage_dropout:
                x = layers.Dropout(stage_dropout, seed=seed + s, name=f"dropout{s}")(x)
    return x


def small_net(
    units_per_stage: int,
    residual: bool,
    width: int = 16,
    input_shape: tuple[int, int, int] = (28, 28, 1),
    n_classes: int = 10,
) -> keras.Model:
    """A plain or residual network in the style of the ResNet paper's CIFAR-10 study, sized for MNIST.

    A 3 × 3 stride-2 stem convolution (``width`` maps), then two stages of ``units_per_stage`` units of two
    3 × 3 conv–BN layers each: ``width`` maps, then ``2 × width`` maps at half the size (the first convolution
    of stage 2 has a stride of 2). Global average pooling and a dense layer of ``n_classes`` logits (no
    softmax). Weighted layers: 4 × ``units_per_stage`` + 2. He-normal initialization and batch norm
    everywhere.

    The plain net chains conv–BN–ReLU layers. The residual net has exactly the same layers and parameters and
    adds each unit's input to its output before the second ReLU; where the shape changes the shortcut
    subsamples and pads the new channels with zeros (the paper's parameter-free "option A").

    Raises:
        ValueError: for a non-positive ``units_per_stage`` or ``width``.
    """
    for value, argument in ((units_per_stage, "units_per_stage"), (width, "width")):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{argument}={value!r}: must be a positive integer")

    def conv_bn(t: Any, filters: int, strides: int = 1, name: str | None = None) -> Any:
        conv = layers.Conv2D(filters, 3, strides, padding="same", use_bias=False, kernel_initializer="he_normal")
        conv.name = name or conv.name
        return layers.BatchNormalization(name=name and f"{name}_bn")(conv(t))

    def option_a(t: Any, filters: int) -> Any:
        extra = filters - int(t.shape[-1])
        return layers.Lambda(lambda v: keras.ops.pad(v[:, ::2, ::2, :], [[0, 0], [0, 0], [0, 0], [0, extra]]))(t)

    inputs = keras.Input(shape=input_shape)
    x = layers.ReLU(name="stem_relu")(conv_bn(inputs, width, strides=2, name="stem"))
    for stage, filters in enumerate((width, 2 * width)):
        for u in range(units_per_stage):
            strides = 2 if stage == 1 and u == 0 else 1
            y = conv_bn(layers.ReLU()(conv_bn(x, filters, strides)), filters)
            if residual:
                y = layers.Add()([y, x if strides == 1 else option_a(x, filters)])
            x = layers.ReLU()(y)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = layers.Dense(n_classes, name="logits")(x)
    kind = "residual" if residual else "plain"
    return keras.Model(inputs, outputs, name=f"{kind}_{4 * units_per_stage + 2}")


@dataclass(frozen=True)
class TrainingCurve:
    """What :func:`train_curve` records, one entry per optimizer step."""

    loss: np.ndarray  #: mean cross-entropy of each training batch (nats), in training mode
    error: np.ndarray  #: fraction of each training batch misclassified (0 to 1)
    seconds: float  #: wall-clock time of the steps after the first (which includes tracing), in seconds


def train_curve(
    model: keras.Model,
    images: np.ndarray,
    labels: np.ndarray,
    steps: int,
    batch_size: int = 128,
    learning_rate: float = 0.05,
    momentum: float = 0.9,
    seed: int = 0,
) -> TrainingCurve:
    """Train ``model`` (it must output logits) with SGD and momentum for ``steps`` steps; record every batch.

    Batches are drawn without replacement from a permutation of the examples seeded by ``seed`` (a new one
    each pass). The loss and error are those of each batch as it is trained on, as the ResNet paper's training
    curves show. Seed Keras (``keras.utils.set_random_seed``) before building the model for the same weights.

    Raises:
        ValueError: for mismatched ``images``/``labels``, non-float images, or non-positive sizes.
    """
    import tensorflow as tf

    if len(images) != len(labels):
        raise ValueError(f"labels: {len(labels)} labels for {len(images)} images")
    if not np.issubdtype(np.asarray(images).dtype, np.floating):
        raise ValueError(f"images: expected floats (scaled pixels), got {np.asarray(images).dtype}")
    for value, argument in ((steps, "steps"), (batch_size, "batch_size")):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{argument}={value!r}: must be a positive integer")
    if batch_size > len(images):
        raise ValueError(f"batch_size={batch_size!r}: larger than the {len(images)} examples")
    optimizer = keras.optimizers.SGD(learning_rate, momentum=momentum)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def step(x: Any, y: Any) -> tuple[Any, Any]:
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss = loss_fn(y, logits)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        wrong = tf.reduce_mean(tf.cast(tf.argmax(logits, axis=-1, output_type=tf.int32) != y, tf.float32))
        return loss, wrong

    rng = np.random.default_rng(seed)
    per_pass = len(images) // batch_size
    order = rng.permutation(len(images))
    losses, errors = np.empty(steps), np.empty(steps)
    start = time.perf_counter()
    for i in range(steps):
        if i == 1:
            start = time.perf_counter()
        if i and i % per_pass == 0:
            order = rng.permutation(len(images))
        batch = order[(i % per_pass) * batch_size : (i % per_pass + 1) * batch_size]
        loss, wrong = step(tf.constant(images[batch]), tf.constant(labels[batch], dtype=tf.int32))
        losses[i], errors[i] = float(loss), float(wrong)
    return TrainingCurve(losses, errors, time.perf_counter() - start if steps > 1 else 0.0)


def kernel_gradient_norms(model: keras.Model, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Norm of the cross-entropy's gradient with respect to each Conv2D kernel, from the input to the output.

    One forward and backward pass on (``images``, ``labels``) in training mode (batch norm uses the batch's
    statistics, as during training); the model must output logits. The norms are taken in float64, so
    gradients too small for their squares to be represented in float32 still get their true norm.

    Raises:
        ValueError: if the model has no Conv2D layer.
    """
    import tensorflow as tf

    convs = [layer for layer in model.layers if isinstance(layer, layers.Conv2D)]
    if not convs:
        raise ValueError(f"model: {model.name!r} has no Conv2D layer")
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with tf.GradientTape() as tape:
        loss = loss_fn(tf.constant(labels, dtype=tf.int32), model(tf.constant(images), training=True))
    grads = tape.gradient(loss, [c.kernel for c in convs])
    # float64 norms: the squares of a float32 gradient far below 1e-19 would underflow to zero in float32
    return np.array([np.linalg.norm(g.numpy().astype(np.float64)) for g in grads])


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


# --------------------------------------------------------------------------------------------------------
# Depth, filter sizes and alternative convolutions (Part II, "Architectures and efficient design")


def _positive(value: Any, argument: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{argument}={value!r}: must be a positive integer")
    return value


def gap_classifier(
    convs: Sequence[tuple[int, int, int]],
    input_shape: tuple[int, int, int] = (28, 28, 1),
    n_classes: int = 10,
    name: str = "gap_classifier",
) -> keras.Sequential:
    """A chain of ReLU convolutions ("same" padding), global average pooling and a dense softmax layer.

    Args:
        convs: one ``(filters, kernel, stride)`` per convolution, from the input up.
        input_shape: height × width × channels of the images.
        n_classes: units of the output layer (softmax probabilities).

    Raises:
        ValueError: if ``convs`` is empty or holds a non-positive number.
    """
    if not convs:
        raise ValueError("convs: give at least one (filters, kernel, stride)")
    body = []
    for i, (filters, kernel, stride) in enumerate(convs, start=1):
        for value, argument in ((filters, "filters"), (kernel, "kernel"), (stride, "stride")):
            _positive(value, f"convs[{i - 1}] {argument}")
        body.append(layers.Conv2D(filters, kernel, strides=stride, padding="same", activation="relu",
                                  name=f"conv{i}"))
    return keras.Sequential(
        [keras.Input(shape=input_shape), *body, layers.GlobalAveragePooling2D(name="gap"),
         layers.Dense(n_classes, activation="softmax", name="classes")],
        name=name,
    )


def tent_map_network(depth: int) -> keras.Sequential:
    """Telgarsky's construction: ``depth`` compositions of the tent map t(x) = 2x on [0, ½], 2 − 2x on [½, 1].

    Each layer is a Dense layer of 2 ReLU units, relu(2x) and relu(4x − 2), whose difference (the next
    layer's weights) is the tent map; a final Dense(1) takes the last difference. On [0, 1] the network
    computes t∘t∘…∘t, a sawtooth of 2^(depth−1) teeth, i.e. 2^depth linear pieces, with only 2·depth hidden
    units. A network with one hidden layer of m ReLU units has at most m + 1 pieces on a line.

    Raises:
        ValueError: if ``depth`` is not a positive integer.
    """
    _positive(depth, "depth")
    model = keras.Sequential([keras.Input(shape=(1,))], name=f"tent_x{depth}")
    for i in range(depth):
        model.add(layers.Dense(2, activation="relu", name=f"tent{i + 1}"))
    model.add(layers.Dense(1, name="out"))
    first_in = np.array([[1.0, 1.0]])
    for i, layer in enumerate(model.layers[:-1]):
        # hidden units read the previous tent value y = h0 - h1 (or x for the first layer)
        w_in = first_in if i == 0 else np.array([[1.0, 1.0], [-1.0, -1.0]])
        layer.set_weights([w_in * np.array([[2.0, 4.0]]), np.array([0.0, -2.0])])
    model.layers[-1].set_weights([np.array([[1.0], [-1.0]]), np.array([0.0])])
    return model


def count_linear_pieces(x: np.ndarray, y: np.ndarray, tolerance: float = 1e-2) -> int:
    """Number of linear pieces of a piecewise-linear function sampled at increasing ``x`` (slope changes + 1).

    The grid must be fine enough for every piece to hold at least two intervals. A slope change counts when
    it exceeds ``tolerance`` times the largest |slope| (float32 outputs carry round-off in every slope).

    Raises:
        ValueError: if ``x`` and ``y`` differ in length, hold fewer than 3 points, or ``x`` is not increasing.
    """
    x, y = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape or x.size < 3:
        raise ValueError(f"x, y: need equal lengths of at least 3, got {x.size} and {y.size}")
    if np.any(np.diff(x) <= 0):
        raise ValueError("x: must be strictly increasing")
    slopes = np.diff(y) / np.diff(x)
    changes = np.abs(np.diff(slopes)) > tolerance * max(1.0, float(np.abs(slopes).max()))
    # a kink inside an interval shows as two consecutive slope changes; count runs of changes once
    starts = changes & ~np.concatenate([[False], changes[:-1]])
    return int(starts.sum()) + 1


class NativeConv2D(layers.Conv2D):
    """A ``Conv2D`` (channels last) that calls ``tf.nn.conv2d`` directly, without Keras's TensorFlow-backend route.

    Keras 3's TensorFlow backend compiles every convolution whose input channels differ from the kernel's
    (i.e. every grouped convolution) with XLA (``tf.function(jit_compile=True)``), because TensorFlow's own
    grouped kernel was broken on CPU; this layer runs TensorFlow's grouped kernel instead. Same weights,
    same outputs, same parameter and MAC counts as ``Conv2D``: only the code path differs.
    """

    def convolution_op(self, inputs: Any, kernel: Any) -> Any:
        import tensorflow as tf

        return tf.nn.conv2d(
            inputs, kernel, strides=list(self.strides), padding=self.padding.upper(),
            dilations=list(self.dilation_rate),
        )


def conv_variants(channels: int, size: int, groups: int = 8, dilation: int = 2) -> dict[str, keras.Model]:
    """One-layer models of the common convolution designs, ``channels`` maps in and out, on size × size maps.

    Keys: "standard 3×3", "grouped 3×3 (g=…)" (Keras's layer, which its TensorFlow backend compiles with XLA),
    "grouped 3×3 (g=…), tf.nn.conv2d" (the same layer run by TensorFlow's own grouped kernel,
    :class:`NativeConv2D`), "dilated 3×3 (d=…)", "depthwise separable 3×3", "depthwise 7×7 + 1×1",
    "1×1 (pointwise)". All use "same" padding and no bias (so parameters are the weights only).

    Raises:
        ValueError: if a size is not positive or ``channels`` is not divisible by ``groups``.
    """
    for value, argument in ((channels, "channels"), (size, "size"), (groups, "groups"), (dilation, "dilation")):
        _positive(value, argument)
    if channels % groups:
        raise ValueError(f"groups={groups}: must divide channels={channels}")
    kw = dict(padding="same", use_bias=False)

    def one(name: str, *blocks: layers.Layer) -> keras.Model:
        inputs = keras.Input(shape=(size, size, channels))
        x = inputs
        for block in blocks:
            x = block(x)
        return keras.Model(inputs, x, name=name.replace(" ", "_").replace("×", "x"))

    return {
        "standard 3×3": one("standard", layers.Conv2D(channels, 3, **kw)),
        f"grouped 3×3 (g={groups})": one("grouped", layers.Conv2D(channels, 3, groups=groups, **kw)),
        f"grouped 3×3 (g={groups}), tf.nn.conv2d": one(
            "grouped_tf", NativeConv2D(channels, 3, groups=groups, **kw)
        ),
        f"dilated 3×3 (d={dilation})": one("dilated", layers.Conv2D(channels, 3, dilation_rate=dilation, **kw)),
        "depthwise separable 3×3": one("separable", layers.SeparableConv2D(channels, 3, **kw)),
        "depthwise 7×7 + 1×1": one("dw7", layers.DepthwiseConv2D(7, **kw), layers.Conv2D(channels, 1, **kw)),
        "1×1 (pointwise)": one("pointwise", layers.Conv2D(channels, 1, **kw)),
    }


def fuse_repvgg_branches(
    kernel3: np.ndarray, bias3: np.ndarray, kernel1: np.ndarray, bias1: np.ndarray, identity: bool
) -> tuple[np.ndarray, np.ndarray]:
    """RepVGG's structural re-parameterization: one 3 × 3 convolution equal to 3 × 3 + 1 × 1 (+ identity).

    With "same" padding and stride 1, conv3(x) + conv1(x) + x equals a single 3 × 3 convolution whose kernel
    is ``kernel3`` with ``kernel1`` added at its centre and, for the identity, 1 added at the centre of
    each map's own channel; biases add up. Keras layouts: kernels (3, 3, C_in, C_out) and (1, 1, C_in, C_out).

    Raises:
        ValueError: if the shapes do not fit, or ``identity`` is asked with C_in ≠ C_out.
    """
    kernel3, kernel1 = np.asarray(kernel3), np.asarray(kernel1)
    if kernel3.ndim != 4 or kernel3.shape[:2] != (3, 3):
        raise ValueError(f"kernel3: expected shape (3, 3, C_in, C_out), got {kernel3.shape}")
    if kernel1.shape != (1, 1, *kernel3.shape[2:]):
        raise ValueError(f"kernel1: expected shape (1, 1, {kernel3.shape[2]}, {kernel3.shape[3]}), got {kernel1.shape}")
    c_in, c_out = kernel3.shape[2:]
    if np.shape(bias3) != (c_out,) or np.shape(bias1) != (c_out,):
        raise ValueError(f"bias3, bias1: expected shape ({c_out},)")
    if identity and c_in != c_out:
        raise ValueError(f"identity=True: needs C_in == C_out, got {c_in} and {c_out}")
    fused = kernel3.copy()
    fused[1, 1] += kernel1[0, 0]
    if identity:
        fused[1, 1] += np.eye(c_in, dtype=fused.dtype)
    return fused, np.asarray(bias3) + np.asarray(bias1)


def latency_seconds(
    models: dict[str, keras.Model], batch_size: int = 1, rounds: int = 5, warmup: int = 1
) -> dict[str, float]:
    """Best-of-``rounds`` wall-clock seconds of one inference call per model, timed in turn.

    Each model is wrapped once in a ``tf.function`` (graph mode, as deployed) and fed zeros of its input
    shape with ``batch_size`` images; calls are interleaved round after round
    (:func:`cnn_helpers.comparisons.time_interleaved`) so that the load of a shared machine hits all alike.

    Raises:
        ValueError: if a size is not positive.
    """
    import tensorflow as tf

    from cnn_helpers import comparisons

    _positive(batch_size, "batch_size")
    _positive(rounds, "rounds")
    def runner(model: keras.Model) -> Any:
        x = tf.zeros((batch_size, *model.inputs[0].shape[1:]))

        @tf.function(autograph=False)
        def forward(t: Any) -> Any:
            return model(t, training=False)

        return lambda: forward(x).numpy()

    calls = {name: runner(model) for name, model in models.items()}
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")  # tracing one function per model is intended, not a retracing problem
    try:
        return comparisons.time_interleaved(calls, rounds=rounds, warmup=max(warmup, 1), statistic="min")
    finally:
        logger.setLevel(level)
