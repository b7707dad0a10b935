"""Remedies for a GPU that runs out of memory while training a CNN: cost models and measurements.

Units: every ``*_bytes`` value is an integer number of bytes; times are seconds. Prose uses MB = 10**6 bytes.

Four kinds of tools live here:

* **Model builders** without arguments (``"cnn_helpers.remedies:stride3_cnn"``), so that a fresh process
  (:func:`cnn_helpers.memory.measure_peak`, or :func:`measure_training_peaks` here) can import and build
  them. They are variants of question 2's network (:func:`cnn_helpers.models.question2_cnn`): stride 3, one
  layer fewer, mixed precision, a dense head; plus a deep conv–BN–ReLU chain for checkpointing.
* **Cost models**: floors (lower bounds) of one training step's memory for each remedy, built on
  :func:`cnn_helpers.memory.estimate` (:func:`training_cost`, :func:`mixed_precision_cost`,
  :func:`checkpointed_cost`, :func:`accumulation_cost`, :func:`replica_cost`), split into what lives between
  steps and what one step allocates (:class:`TrainingCost`).
* **Measurements**: :func:`measure_training_peaks` runs real training steps in a fresh process and reports,
  for each, the state counted from the Keras variables and the step's measured peak (:class:`StepPeak`), to
  compare with the floor of the same configuration.
* **Mechanisms**: :class:`Checkpointed` (gradient checkpointing with ``tf.recompute_grad``, batch-norm
  statistics updated once), :func:`accumulated_gradients` (gradient accumulation), :func:`split_batch` and
  :func:`mirrored_replica_batches` (how ``tf.distribute.MirroredStrategy`` splits a global batch).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import keras
from keras import layers

from cnn_helpers import memory, models

MIXED_BYTES = 2  #: bytes per float16 number
FLOAT32_BYTES = 4  #: bytes per float32 number

# --------------------------------------------------------------------------------------------------------
# Gradient checkpointing


class Checkpointed(layers.Layer):
    """Run a chain of layers as one segment whose inner activations are recomputed in the backward pass.

    In training (``training=True``) the forward pass goes through ``tf.recompute_grad``: only the segment's
    input is kept for backpropagation, and the layers are run again when their gradients are needed. In
    inference the layers simply run in order. The wrapped layers' weights belong to this layer.

    The recomputation runs the layers in training mode a second time, so a bare ``tf.recompute_grad``
    updates batch normalization's moving averages twice per step. With ``restore_state=True`` (the default)
    the non-trainable variables are put back, after the recomputation, to the values the forward pass
    left; ``restore_state=False`` shows the trap.
    """

    def __init__(self, inner: Sequence[layers.Layer], restore_state: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not inner:
            raise ValueError("inner: give at least one layer to checkpoint")
        if not isinstance(restore_state, bool):
            raise ValueError(f"restore_state={restore_state!r}: must be True or False")
        self.inner = list(inner)
        self.restore_state = restore_state

    def build(self, input_shape: tuple[Any, ...]) -> None:
        shape = input_shape
        for layer in self.inner:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)

    def compute_output_shape(self, input_shape: tuple[Any, ...]) -> tuple[Any, ...]:
        shape = input_shape
        for layer in self.inner:
            shape = layer.compute_output_shape(shape)
        return shape

    def _forward(self, x: Any, training: bool | None = None) -> Any:
        for layer in self.inner:
            x = layer(x, training=training)
        return x

    def call(self, x: Any, training: bool | None = None) -> Any:
        if training:
            import tensorflow as tf

            state = [v for layer in self.inner for v in layer.non_trainable_variables]
            runs = []

            def segment(t: Any) -> Any:
                # training=True is bound explicitly: the recomputation runs in the backward pass, outside
                # the Keras call context, and BatchNormalization must use batch statistics there too.
                runs.append(None)
                if len(runs) == 1 or not self.restore_state:  # the forward pass
                    return self._forward(t, training=True)
                # The recomputation would update BatchNormalization's moving averages a second time:
                # put back the values the forward pass left.
                saved = [tf.identity(v.value) for v in state]
                out = self._forward(t, training=True)
                for v, value in zip(state, saved):
                    v.assign(value)
                return out

            return tf.recompute_grad(segment)(x)
        return self._forward(x, training=training)


def _question2_convs(strides: int = 2, dtype: str | None = None) -> list[layers.Layer]:
    return [
        layers.Conv2D(n, 3, strides=strides, padding="same", name=f"conv{i}", dtype=dtype)
        for i, n in enumerate(models.QUESTION2_FILTERS, start=1)
    ]


# --------------------------------------------------------------------------------------------------------
# Builders (no arguments: importable by path "cnn_helpers.remedies:NAME")


def baseline_cnn() -> keras.Sequential:
    """Question 2's network as asked: 3 × 3 convolutions with 100, 200, 400 maps, stride 2, float32."""
    return models.question2_cnn()


def stride3_cnn() -> keras.Sequential:
    """Question 2's network with stride 3 in every layer (smaller feature maps, same parameters)."""
    return models.question2_cnn(strides=3)


def two_layer_cnn() -> keras.Sequential:
    """Question 2's network without its top layer (100 and 200 maps): one layer fewer."""
    return models.question2_cnn(filters=models.QUESTION2_FILTERS[:2])


def mixed_float16_cnn() -> keras.Sequential:
    """Question 2's network with the ``"mixed_float16"`` policy: float32 weights, float16 computations."""
    return keras.Sequential(
        [keras.Input(shape=models.QUESTION2_INPUT), *_question2_convs(dtype="mixed_float16")],
        name="question2_mixed_float16",
    )


#: Units of the dense layer that :func:`dense_head_cnn` puts on top of question 2's network.
DENSE_HEAD_UNITS = 64


def dense_head_cnn(dtype: str | None = None) -> keras.Sequential:
    """Question 2's network with a dense head, as AlexNet and VGG end: Flatten, then Dense(64).

    The dense layer sees all 25 × 38 × 400 = 380,000 numbers of the top maps, so it holds about 24 M
    weights, nearly all of the model's: a network whose weights and optimizer state outweigh its
    activations at small batches.
    """
    return keras.Sequential(
        [
            keras.Input(shape=models.QUESTION2_INPUT),
            *_question2_convs(dtype=dtype),
            layers.Flatten(name="flatten", dtype=dtype),
            layers.Dense(DENSE_HEAD_UNITS, name="dense", dtype=dtype),
        ],
        name="dense_head_cnn" if dtype is None else f"dense_head_{dtype}_cnn",
    )


def dense_head_mixed_float16_cnn() -> keras.Sequential:
    """:func:`dense_head_cnn` under the ``"mixed_float16"`` policy."""
    return dense_head_cnn(dtype="mixed_float16")


#: The deeper variant used for gradient checkpointing: 64 × 64 RGB images, 12 conv–BN–ReLU blocks of 32 maps.
DEEP_INPUT = (64, 64, 3)
DEEP_BLOCKS = 12
DEEP_FILTERS = 32


def _conv_bn_relu(filters: int, index: int, strides: int = 1) -> list[layers.Layer]:
    return [
        layers.Conv2D(filters, 3, strides=strides, padding="same", name=f"conv{index}"),
        layers.BatchNormalization(name=f"bn{index}"),
        layers.ReLU(name=f"relu{index}"),
    ]


def deep_cnn() -> keras.Sequential:
    """A deep chain as CNNs are usually built: 12 blocks of 3 × 3 conv (32 maps, stride 1), BatchNorm, ReLU.

    Thirty-six layers on 64 × 64 × 3 images; every block keeps three activations of 64 × 64 × 32.
    """
    blocks = [layer for i in range(1, DEEP_BLOCKS + 1) for layer in _conv_bn_relu(DEEP_FILTERS, i)]
    return keras.Sequential([keras.Input(shape=DEEP_INPUT), *blocks], name="deep_cnn")


def deep_checkpointed_cnn() -> keras.Sequential:
    """:func:`deep_cnn` with each conv–BN–ReLU block as one :class:`Checkpointed` segment.

    Only each block's output is kept in the forward pass; the convolution's and the batch norm's outputs
    are recomputed in the backward pass, one block at a time.
    """
    blocks = [Checkpointed(_conv_bn_relu(DEEP_FILTERS, i), name=f"block{i}") for i in range(1, DEEP_BLOCKS + 1)]
    return keras.Sequential([keras.Input(shape=DEEP_INPUT), *blocks], name="deep_checkpointed_cnn")


# --------------------------------------------------------------------------------------------------------
# Cost models (lower bounds, bytes)

#: Layers whose output is a view of their input in TensorFlow (a reshape): they hold no new numbers.
VIEW_LAYERS = ("Flatten", "Reshape")


@dataclass(frozen=True)
class TrainingCost:
    """Lower-bound memory of one training step, split by what holds it (bytes, for one device).

    Two groups matter when the floor is compared with a measurement: what lives *between* steps
    (:attr:`state_bytes`: weights, optimizer state, accumulators, plus the batch fed in, ``input_bytes``)
    and what one step allocates on top of it (:attr:`step_bytes`: kept activations, weight gradients, the
    remedy's temporary copies).
    """

    remedy: str
    batch_size: int
    optimizer: str
    input_bytes: int  #: the batch of images fed to the model (float32)
    activation_bytes: int  #: every layer's output, kept for backpropagation
    params_bytes: int  #: the weights (float32 master weights under mixed precision)
    gradient_bytes: int  #: one float32 gradient per trainable parameter
    optimizer_bytes: int  #: optimizer state (momentum vectors, moments, ...) per trainable parameter
    extra_bytes: int = 0  #: what the remedy adds during the step: float16 copies, recomputed activations
    accumulator_bytes: int = 0  #: gradient accumulators (alive between steps)

    @property
    def kept_bytes(self) -> int:
        """Inputs and activations: what backpropagation needs from the forward pass."""
        return self.input_bytes + self.activation_bytes

    @property
    def state_bytes(self) -> int:
        """What lives between steps: weights, optimizer state and accumulators (not the input batch)."""
        return self.params_bytes + self.optimizer_bytes + self.accumulator_bytes

    @property
    def step_bytes(self) -> int:
        """What one step allocates on top of the state and the input batch: activations, gradients, extras."""
        return self.activation_bytes + self.gradient_bytes + self.extra_bytes

    @property
    def total_bytes(self) -> int:
        """The sum of all parts."""
        return self.state_bytes + self.input_bytes + self.step_bytes

    def parts(self) -> dict[str, int]:
        """The parts by name, in a fixed order (bytes), for tables and stacked bars."""
        return {
            "inputs": self.input_bytes,
            "activations": self.activation_bytes,
            "weights": self.params_bytes,
            "gradients": self.gradient_bytes,
            "optimizer state": self.optimizer_bytes,
            "remedy's extra": self.extra_bytes + self.accumulator_bytes,
        }


def _slots(optimizer: str) -> int:
    key = optimizer.lower()
    if key not in memory.OPTIMIZER_SLOTS:
        raise ValueError(f"optimizer={optimizer!r}: must be one of {sorted(memory.OPTIMIZER_SLOTS)}")
    return memory.OPTIMIZER_SLOTS[key]


def trainable_params(model: keras.Model) -> int:
    """Number of trainable parameters (batch-norm moving averages, for example, are not trainable)."""
    return sum(math.prod(int(d) for d in v.shape) for v in model.trainable_weights)


def autocast_params(model: keras.Model) -> int:
    """Parameters that Keras casts to float16 at each call under ``"mixed_float16"``.

    Kernels and biases are cast; batch normalization keeps its scale, offset and moving averages in float32.
    """
    # Keras marks each variable with a (private) autocast flag; without it, count nothing (a floor).
    return sum(
        math.prod(int(d) for d in v.shape) for v in model.trainable_weights if getattr(v, "_autocast", False)
    )


def _activation_bytes(est: memory.MemoryEstimate) -> int:
    return sum(row.activation_bytes for row in est.layers if row.kind not in VIEW_LAYERS)


def training_cost(
    model: keras.Model, batch_size: int, optimizer: str = "sgd", remedy: str = ""
) -> TrainingCost:
    """Float32 training floor of a chain model, built on :func:`cnn_helpers.memory.estimate`.

    The input batch and every layer's output are kept (reshaping layers, :data:`VIEW_LAYERS`, add nothing);
    there is one gradient per trainable parameter, and the optimizer keeps ``OPTIMIZER_SLOTS[optimizer]``
    more copies of the trainable parameters. For a model whose parameters are all trainable and which has no
    reshaping layer, ``total_bytes`` equals ``estimate(...).training_bytes_with(optimizer)``.
    """
    est = memory.estimate(model, batch_size=batch_size, dtype_bytes=FLOAT32_BYTES)
    trainable = trainable_params(model) * FLOAT32_BYTES
    return TrainingCost(
        remedy=remedy or f"batch {batch_size}",
        batch_size=batch_size,
        optimizer=optimizer.lower(),
        input_bytes=est.input_bytes,
        activation_bytes=_activation_bytes(est),
        params_bytes=est.params_bytes,
        gradient_bytes=trainable,
        optimizer_bytes=_slots(optimizer) * trainable,
    )


def mixed_precision_cost(
    model: keras.Model, batch_size: int, optimizer: str = "sgd", remedy: str = "mixed_float16"
) -> TrainingCost:
    """Training floor of a float32 chain model trained under Keras's ``"mixed_float16"`` policy.

    The activations are float16 (2 bytes); the master weights, their gradients and the optimizer state stay
    float32 (4 bytes). ``extra_bytes`` holds the float16 copies made during the step and kept for the
    backward pass: one of each cast weight (:func:`autocast_params`) and one of the float32 input batch.
    """
    base = training_cost(model, batch_size, optimizer, remedy=remedy)
    est16 = memory.estimate(model, batch_size=batch_size, dtype_bytes=MIXED_BYTES)
    return replace(
        base,
        activation_bytes=_activation_bytes(est16),
        extra_bytes=autocast_params(model) * MIXED_BYTES + est16.input_bytes,
    )


def checkpointed_cost(
    model: keras.Model, batch_size: int, segments: Sequence[int], optimizer: str = "sgd", remedy: str = ""
) -> TrainingCost:
    """Training floor when the chain's layers are cut into checkpointed segments.

    Args:
        model: a chain model (as for :func:`cnn_helpers.memory.estimate`).
        batch_size: images per batch.
        segments: number of consecutive layers in each segment, summing to the number of layers, e.g.
            ``(2, 1)``: layers 1–2 form one segment, layer 3 another.
        optimizer: a key of ``memory.OPTIMIZER_SLOTS``.
        remedy: the row's label (default: "checkpointing, N segments").

    Only the inputs and each segment's output are kept in the forward pass (``activation_bytes``); in the
    backward pass one segment at a time is recomputed, so ``extra_bytes`` is the largest segment's inner
    activations (all but its last output).
    """
    est = memory.estimate(model, batch_size=batch_size, dtype_bytes=FLOAT32_BYTES)
    sizes = [0 if row.kind in VIEW_LAYERS else row.activation_bytes for row in est.layers]
    if not segments or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in segments):
        raise ValueError(f"segments={segments!r}: must be positive layer counts")
    if sum(segments) != len(sizes):
        raise ValueError(f"segments={segments!r}: must add up to the model's {len(sizes)} layers")
    kept, recompute, start = 0, 0, 0
    for n in segments:
        block = sizes[start : start + n]
        kept += block[-1]
        recompute = max(recompute, sum(block[:-1]))
        start += n
    base = training_cost(model, batch_size, optimizer, remedy=remedy or f"checkpointing, {len(segments)} segments")
    return replace(base, activation_bytes=kept, extra_bytes=recompute)


def accumulation_cost(
    model: keras.Model, micro_batch: int, steps: int, optimizer: str = "sgd", remedy: str = ""
) -> TrainingCost:
    """Training floor with gradient accumulation: ``steps`` micro-batches of ``micro_batch`` per update.

    The effective batch is ``micro_batch × steps``; memory is that of one micro-batch plus one float32
    accumulator per trainable parameter (``accumulator_bytes``).
    """
    memory._positive_int(steps, "steps")
    base = training_cost(model, micro_batch, optimizer)
    label = remedy or f"accumulation {steps} × {micro_batch}"
    return replace(base, remedy=label, accumulator_bytes=base.gradient_bytes)


def format_costs(costs: Sequence[TrainingCost], unit: int = 10**6) -> str:
    """A plain-text table of costs: one row per remedy, its parts and total in ``unit`` bytes (MB default).

    The "extra" column is what the remedy adds (float16 copies, recomputed activations, accumulators).
    """
    memory._positive_int(unit, "unit")
    names = ("inputs", "activ.", "weights", "grads", "optim.", "extra", "total")
    lines = [f"{'remedy':<26}{'batch':>6}" + "".join(f"{n:>8}" for n in names)]
    for c in costs:
        values = [*c.parts().values(), c.total_bytes]
        lines.append(f"{c.remedy[:25]:<26}{c.batch_size:>6}" + "".join(f"{v / unit:>8.1f}" for v in values))
    return "\n".join(lines)


def split_batch(global_batch: int, replicas: int) -> list[int]:
    """Per-replica batch sizes when ``tf.distribute`` splits a global batch over ``replicas`` devices.

    Each replica gets ⌈global_batch / replicas⌉ images, in order, until the batch runs out: 10 over 3
    replicas gives [4, 4, 2] (not [4, 3, 3]); the last replicas may get fewer, even none.
    """
    memory._positive_int(global_batch, "global_batch")
    memory._positive_int(replicas, "replicas")
    per = -(-global_batch // replicas)
    return [max(0, min(per, global_batch - i * per)) for i in range(replicas)]


def replica_cost(
    model: keras.Model, global_batch: int, replicas: int, optimizer: str = "sgd", remedy: str = ""
) -> TrainingCost:
    """Training floor on the busiest device when the batch is split over ``replicas`` (data parallelism).

    Every replica keeps a full copy of the weights, gradients and optimizer state; only the activations
    shrink.
    """
    per_replica = max(split_batch(global_batch, replicas))
    base = training_cost(model, per_replica, optimizer)
    return replace(base, remedy=remedy or f"{replicas} devices")


def conv_macs(model: keras.Model) -> list[int]:
    """Multiply-accumulates per image of each Conv2D layer of a built chain model (dense convolution).

    A layer with a k_h × k_w kernel, C_in inputs, C_out maps and an H × W output does
    H × W × C_out × k_h × k_w × C_in MACs.
    """
    macs = []
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            h, w, c_out = (int(d) for d in layer.output.shape[1:])
            kh, kw = layer.kernel_size
            c_in = int(layer.input.shape[-1])
            macs.append(h * w * c_out * kh * kw * c_in)
    return macs


# --------------------------------------------------------------------------------------------------------
# Mechanisms that run


def accumulated_gradients(
    model: keras.Model, loss_fn: Callable[[Any, Any], Any], x: Any, y: Any, steps: int
) -> list[Any]:
    """Gradients of the mean loss over ``x`` computed in ``steps`` equal micro-batches and averaged.

    With a loss that is a mean over images, the result equals the full-batch gradient (up to float
    round-off) while only one micro-batch's activations exist at a time.

    Raises:
        ValueError: if ``steps`` is not a positive integer dividing the batch size.
    """
    import tensorflow as tf

    memory._positive_int(steps, "steps")
    n = int(x.shape[0])
    if n % steps:
        raise ValueError(f"steps={steps!r}: must divide the batch size {n}")
    size = n // steps
    total = [tf.zeros_like(v) for v in model.trainable_variables]
    for i in range(steps):
        xb, yb = x[i * size : (i + 1) * size], y[i * size : (i + 1) * size]
        with tf.GradientTape() as tape:
            loss = loss_fn(yb, model(xb, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        total = [t + g for t, g in zip(total, grads)]
    return [t / steps for t in total]


def train_step_seconds(model: keras.Model, x: Any, repeats: int) -> list[float]:
    """Wall-clock seconds of ``repeats`` SGD training steps (mean-squared output loss) after one warm-up."""
    import tensorflow as tf

    memory._positive_int(repeats, "repeats")
    optimizer = keras.optimizers.SGD(learning_rate=1e-6)

    def step() -> None:
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(tf.cast(model(x, training=True), "float32")))
        optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)

    step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return times


def forward_seconds(model: keras.Model, x: Any, repeats: int) -> list[float]:
    """Wall-clock seconds of ``repeats`` forward passes in training mode (``model(x, training=True)``)."""
    memory._positive_int(repeats, "repeats")
    model(x, training=True)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model(x, training=True)
        times.append(time.perf_counter() - start)
    return times


@dataclass(frozen=True)
class StepRequest:
    """One configuration to measure: a model builder, a batch, gradient accumulation and an optimizer.

    ``builder`` is an import path ``"package.module:function"`` of a function without arguments that
    returns a built Keras model; ``optimizer`` is a key of ``memory.OPTIMIZER_SLOTS`` (``"sgd"`` is plain
    SGD, ``"momentum"`` SGD with momentum 0.9).
    """

    builder: str
    batch_size: int
    accumulation_steps: int = 1
    optimizer: str = "sgd"

    def __post_init__(self) -> None:
        if ":" not in self.builder:
            raise ValueError(f"builder={self.builder!r}: must look like 'package.module:function'")
        memory._positive_int(self.batch_size, "batch_size")
        memory._positive_int(self.accumulation_steps, "accumulation_steps")
        _slots(self.optimizer)


@dataclass(frozen=True)
class StepPeak:
    """One training step measured on the CPU (bytes, seconds).

    ``baseline_bytes`` and ``peak_bytes`` are the process's resident size just before the measured step and
    its peak during it; ``state_bytes`` and ``input_bytes`` are counted exactly from the Keras objects
    alive between steps (weights, optimizer variables, accumulators; the input batch).
    """

    builder: str
    batch_size: int
    accumulation_steps: int
    optimizer: str
    baseline_bytes: int
    peak_bytes: int
    seconds: float
    state_bytes: int
    input_bytes: int

    @property
    def delta_bytes(self) -> int:
        """What the step added on top of what was resident before it (weights, data, runtime)."""
        return self.peak_bytes - self.baseline_bytes

    @property
    def total_bytes(self) -> int:
        """Training memory of this configuration: state + input batch + the step's measured peak."""
        return self.state_bytes + self.input_bytes + self.delta_bytes


def measure_training_peaks(requests: Sequence[StepRequest], timeout_s: float = 900.0) -> list[StepPeak]:
    """Peak memory of one training step for each request, measured one after another in one fresh process.

    The method of :func:`cnn_helpers.memory.measure_peak` (through :func:`cnn_helpers.memory.run_probe`):
    oneDNN's caching kernels off (``TF_ENABLE_ONEDNN_OPTS=0``) and glibc handing large freed blocks back
    to the system, so that the resident size follows what is alive. For each request the child builds the
    model, feeds all-zeros float32 images, runs one warm-up step (kernels, optimizer slots), returns freed
    memory, resets the peak resident size (``VmHWM``, through ``/proc/self/clear_refs``), runs a second step
    and records its peak minus the resident size just before it; then it deletes everything before the
    next request. A step feeds ``accumulation_steps`` micro-batches, sums their gradients into float32
    accumulators and applies their mean; when any layer's policy is ``"mixed_float16"`` the optimizer is
    wrapped in a ``keras.optimizers.LossScaleOptimizer`` here (``model.compile`` wraps it only when the
    *model's* own policy is ``"mixed_float16"``, and the builders here set the policy layer by layer).

    Raises:
        ValueError: for an empty list or a request that is not a :class:`StepRequest`.
        RuntimeError: if the child process fails.
    """
    if not requests:
        raise ValueError("requests: give at least one StepRequest")
    for r in requests:
        if not isinstance(r, StepRequest):
            raise ValueError(f"requests: {r!r} is not a StepRequest")
    payload = {"requests": [asdict(r) for r in requests]}
    answer = memory.run_probe("cnn_helpers.remedies", payload, timeout_s)
    return [StepPeak(**row) for row in answer["results"]]


def measure_training_peak(
    builder: str,
    batch_size: int,
    accumulation_steps: int = 1,
    optimizer: str = "sgd",
    timeout_s: float = 600.0,
) -> StepPeak:
    """:func:`measure_training_peaks` for a single configuration (in its own fresh process)."""
    request = StepRequest(builder, batch_size, accumulation_steps, optimizer)
    return measure_training_peaks([request], timeout_s)[0]


def _make_optimizer(name: str) -> keras.optimizers.Optimizer:
    if name == "momentum":
        return keras.optimizers.SGD(momentum=0.9)
    if name == "nesterov":
        return keras.optimizers.SGD(momentum=0.9, nesterov=True)
    return keras.optimizers.get(name)


def _measure_one(request: dict) -> dict:
    import importlib

    import numpy as np
    import tensorflow as tf

    from cnn_helpers import _memprobe

    keras.utils.set_random_seed(0)
    module_name, function_name = request["builder"].split(":")
    model = getattr(importlib.import_module(module_name), function_name)()
    batch, k = request["batch_size"], request["accumulation_steps"]
    x = tf.constant(np.zeros((batch, *model.inputs[0].shape[1:]), dtype="float32"))
    optimizer = _make_optimizer(request["optimizer"])
    if any(layer.dtype_policy.name == "mixed_float16" for layer in model.layers):
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    variables = model.trainable_variables
    accumulators = [tf.Variable(tf.zeros_like(v), trainable=False) for v in variables] if k > 1 else []

    def gradients() -> list[Any]:
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(tf.cast(model(x, training=True), "float32")))
            scaled = optimizer.scale_loss(loss)
        return tape.gradient(scaled, variables)

    def step() -> None:
        if k == 1:
            optimizer.apply(gradients(), variables)
            return
        for _ in range(k):
            for acc, g in zip(accumulators, gradients()):
                acc.assign_add(g)
        optimizer.apply([acc / k for acc in accumulators], variables)
        for acc in accumulators:
            acc.assign(tf.zeros_like(acc))

    step()
    state = [*model.weights, *optimizer.variables, *accumulators]
    state_bytes = sum(int(v.numpy().nbytes) for v in state)
    _memprobe._release_freed_memory()
    baseline = _memprobe._status_bytes("VmRSS")
    with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
        clear.write("5")
    start = time.perf_counter()
    step()
    seconds = time.perf_counter() - start
    peak = _memprobe._status_bytes("VmHWM")
    return {
        "builder": request["builder"],
        "batch_size": batch,
        "accumulation_steps": k,
        "optimizer": request["optimizer"],
        "baseline_bytes": int(baseline),
        "peak_bytes": int(peak),
        "seconds": round(seconds, 3),
        "state_bytes": state_bytes,
        "input_bytes": int(x.numpy().nbytes),
    }


def _probe(payload: dict) -> dict:
    import gc

    from cnn_helpers import _memprobe

    results = []
    for request in payload["requests"]:
        results.append(_measure_one(request))
        keras.backend.clear_session()
        gc.collect()
        _memprobe._release_freed_memory()
    return {"results": results}


def mirrored_replica_batches(cases: Sequence[tuple[int, int]], timeout_s: float = 300.0) -> list[list[int]]:
    """Per-replica batch sizes that ``tf.distribute.MirroredStrategy`` really produces.

    Args:
        cases: ``(global_batch, replicas)`` pairs.
        timeout_s: limit for the child process.

    One fresh process splits the CPU into as many logical devices as the largest ``replicas``, builds a
    strategy over the first ``replicas`` of them for each case, distributes one global batch with
    ``experimental_distribute_dataset`` and reports each replica's share. Compare with :func:`split_batch`.
    """
    if not cases:
        raise ValueError("cases: give at least one (global_batch, replicas) pair")
    for global_batch, replicas in cases:
        memory._positive_int(global_batch, "global_batch")
        memory._positive_int(replicas, "replicas")
    code = (
        "import json, tensorflow as tf\n"
        f"cases = {[list(c) for c in cases]!r}\n"
        "n_max = max(n for _, n in cases)\n"
        "cpu = tf.config.list_physical_devices('CPU')[0]\n"
        "tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n_max)\n"
        "devices = [d.name for d in tf.config.list_logical_devices('CPU')]\n"
        "out = []\n"
        "for g, n in cases:\n"
        "    strategy = tf.distribute.MirroredStrategy(devices[:n])\n"
        "    ds = tf.data.Dataset.from_tensor_slices(tf.zeros((g, 2))).batch(g)\n"
        "    batch = next(iter(strategy.experimental_distribute_dataset(ds)))\n"
        "    out.append([int(p.shape[0]) for p in strategy.experimental_local_results(batch)])\n"
        "print(json.dumps(out))\n"
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=timeout_s, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"MirroredStrategy probe failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return [list(parts) for parts in json.loads(done.stdout.strip().splitlines()[-1])]


if __name__ == "__main__":
    print(json.dumps(_probe(json.loads(sys.argv[1]))))


# --------------------------------------------------------------------------------------------------------
# Computation time: pruning and quantization


def zero_smallest_weights(model: keras.Model, fraction: float) -> int:
    """Unstructured magnitude pruning, in place: set the ``fraction`` smallest |weights| of every kernel to 0.

    Only ``kernel`` variables (Conv2D, Dense, ...) are pruned, each on its own; biases are kept. The shapes do
    not change, so dense kernels do exactly the same work afterwards. Returns the number of weights zeroed.

    Raises:
        ValueError: if ``fraction`` is not in [0, 1).
    """
    import numpy as np

    if not 0 <= fraction < 1:
        raise ValueError(f"fraction={fraction!r}: must be in [0, 1)")
    zeroed = 0
    for layer in model.layers:
        kernel = getattr(layer, "kernel", None)
        if kernel is None:
            continue
        values = np.array(kernel.numpy())
        k = int(fraction * values.size)
        if k == 0:
            continue
        order = np.argsort(np.abs(values), axis=None)[:k]
        values.flat[order] = 0.0
        kernel.assign(values)
        zeroed += k
    return zeroed


@dataclass(frozen=True)
class TFLiteModel:
    """A model converted by the TFLite converter: the flatbuffer and its size in bytes."""

    content: bytes
    quantized: bool

    @property
    def size_bytes(self) -> int:
        return len(self.content)

    def predict(self, images: Any, batch_size: int = 256) -> Any:
        """Outputs for ``images`` (float32, the Keras model's input shape), batch by batch, with TFLite's
        interpreter (XNNPACK on CPU)."""
        import contextlib
        import io
        import warnings

        import numpy as np
        import tensorflow as tf

        images = np.asarray(images, dtype=np.float32)
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()), _quiet_native_stderr():
            warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice (LiteRT)
            interpreter = tf.lite.Interpreter(model_content=self.content)
            interpreter.allocate_tensors()  # creates the XNNPACK delegate (its notice is silenced)
        inp = interpreter.get_input_details()[0]["index"]
        out = interpreter.get_output_details()[0]["index"]
        outputs = []
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            interpreter.resize_tensor_input(inp, chunk.shape)
            interpreter.allocate_tensors()
            interpreter.set_tensor(inp, chunk)
            interpreter.invoke()
            outputs.append(interpreter.get_tensor(out).copy())
        return np.concatenate(outputs)


def _quiet_native_stderr() -> Any:
    """Context manager: silence file descriptor 2 (C++ notices such as TFLite's XNNPACK line) for a while."""
    import contextlib

    @contextlib.contextmanager
    def quiet() -> Any:
        sys.stderr.flush()
        saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(devnull)
            os.close(saved)

    return quiet()


def to_tflite(model: keras.Model, quantize: bool) -> TFLiteModel:
    """Convert a Keras model with ``tf.lite.TFLiteConverter``; ``quantize=True`` applies dynamic-range
    quantization (``Optimize.DEFAULT`` without a representative dataset: weights stored as int8; activations
    stored in float, and quantized to 8 bits on the fly before operations that have int8 kernels). The
    converter's console output is suppressed."""
    import contextlib
    import io

    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")  # "Assets written to ..." notices
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            content = converter.convert()
    finally:
        logger.setLevel(level)
    return TFLiteModel(bytes(content), quantize)
