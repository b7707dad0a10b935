"""Remedies for a GPU that runs out of memory while training a CNN: cost models and measurements.

Units: every ``*_bytes`` value is an integer number of bytes; times are seconds. Prose uses MB = 10**6 bytes.

Three kinds of tools live here:

* **Model builders** without arguments (``"cnn_helpers.remedies:stride3_cnn"``), so that a fresh process
  (:func:`cnn_helpers.memory.measure_peak`, or :func:`measure_training_peak` here) can import and build them.
  They are variants of question 2's network (:func:`cnn_helpers.models.question2_cnn`).
* **Cost models**: lower bounds of one training step's memory for each remedy, built on
  :func:`cnn_helpers.memory.estimate` (:func:`training_cost`, :func:`mixed_precision_cost`,
  :func:`checkpointed_cost`, :func:`accumulation_cost`, :func:`replica_cost`).
* **Mechanisms**: :class:`Checkpointed` (gradient checkpointing with ``tf.recompute_grad``),
  :func:`accumulated_gradients` (gradient accumulation), :func:`split_batch` and
  :func:`mirrored_replica_batches` (how ``tf.distribute.MirroredStrategy`` splits a global batch).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
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
    """

    def __init__(self, inner: Sequence[layers.Layer], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not inner:
            raise ValueError("inner: give at least one layer to checkpoint")
        self.inner = list(inner)

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

            # training=True is bound explicitly: the recomputation runs in the backward pass, outside the
            # Keras call context, and BatchNormalization must use batch statistics there too.
            return tf.recompute_grad(lambda t: self._forward(t, training=True))(x)
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


@dataclass(frozen=True)
class TrainingCost:
    """Lower-bound memory of one training step, split by what holds it (bytes, for one device)."""

    remedy: str
    batch_size: int
    kept_bytes: int  #: inputs and activations kept for backpropagation
    params_bytes: int  #: the weights (float32 master weights under mixed precision)
    gradient_bytes: int  #: one gradient per parameter
    optimizer_bytes: int  #: optimizer state (momentum vectors, moments, ...)
    extra_bytes: int = 0  #: what the remedy adds: accumulators, recomputed activations, float16 weight copies

    @property
    def total_bytes(self) -> int:
        """The sum of all parts."""
        return self.kept_bytes + self.params_bytes + self.gradient_bytes + self.optimizer_bytes + self.extra_bytes


def _slots(optimizer: str) -> int:
    key = optimizer.lower()
    if key not in memory.OPTIMIZER_SLOTS:
        raise ValueError(f"optimizer={optimizer!r}: must be one of {sorted(memory.OPTIMIZER_SLOTS)}")
    return memory.OPTIMIZER_SLOTS[key]


def training_cost(model: keras.Model, batch_size: int, optimizer: str = "sgd", remedy: str = "") -> TrainingCost:
    """Float32 training floor of a chain model: :func:`cnn_helpers.memory.estimate` split by part.

    ``kept_bytes`` is the batch of inputs plus every layer's output; gradients equal the parameters; the
    optimizer keeps ``OPTIMIZER_SLOTS[optimizer]`` more copies. ``total_bytes`` equals
    ``estimate(...).training_bytes_with(optimizer)``.
    """
    est = memory.estimate(model, batch_size=batch_size, dtype_bytes=FLOAT32_BYTES)
    return TrainingCost(
        remedy=remedy or f"batch {batch_size}",
        batch_size=batch_size,
        kept_bytes=est.input_bytes + est.activation_bytes,
        params_bytes=est.params_bytes,
        gradient_bytes=est.params_bytes,
        optimizer_bytes=_slots(optimizer) * est.params_bytes,
    )


def mixed_precision_cost(model: keras.Model, batch_size: int, optimizer: str = "sgd") -> TrainingCost:
    """Training floor under Keras's ``"mixed_float16"`` policy.

    Inputs and activations are float16 (2 bytes); the master weights, their gradients and the optimizer
    state stay float32 (4 bytes); a float16 copy of the weights (2 bytes each) is made for the computation.
    """
    est16 = memory.estimate(model, batch_size=batch_size, dtype_bytes=MIXED_BYTES)
    params = est16.total_params
    return TrainingCost(
        remedy="mixed_float16",
        batch_size=batch_size,
        kept_bytes=est16.input_bytes + est16.activation_bytes,
        params_bytes=params * FLOAT32_BYTES,
        gradient_bytes=params * FLOAT32_BYTES,
        optimizer_bytes=_slots(optimizer) * params * FLOAT32_BYTES,
        extra_bytes=params * MIXED_BYTES,
    )


def checkpointed_cost(
    model: keras.Model, batch_size: int, segments: Sequence[int], optimizer: str = "sgd"
) -> TrainingCost:
    """Training floor when the chain's layers are cut into checkpointed segments.

    Args:
        model: a chain model (as for :func:`cnn_helpers.memory.estimate`).
        batch_size: images per batch.
        segments: number of consecutive layers in each segment, summing to the number of layers, e.g.
            ``(2, 1)``: layers 1–2 form one segment, layer 3 another.
        optimizer: a key of ``memory.OPTIMIZER_SLOTS``.

    Only the inputs and each segment's output are kept in the forward pass (``kept_bytes``); in the
    backward pass one segment at a time is recomputed, so ``extra_bytes`` is the largest segment's inner
    activations (all but its last output).
    """
    est = memory.estimate(model, batch_size=batch_size, dtype_bytes=FLOAT32_BYTES)
    sizes = [row.activation_bytes for row in est.layers]
    if not segments or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in segments):
        raise ValueError(f"segments={segments!r}: must be positive layer counts")
    if sum(segments) != len(sizes):
        raise ValueError(f"segments={segments!r}: must add up to the model's {len(sizes)} layers")
    kept, recompute, start = est.input_bytes, 0, 0
    for n in segments:
        block = sizes[start : start + n]
        kept += block[-1]
        recompute = max(recompute, sum(block[:-1]))
        start += n
    return TrainingCost(
        remedy=f"checkpointing, {len(segments)} segments",
        batch_size=batch_size,
        kept_bytes=kept,
        params_bytes=est.params_bytes,
        gradient_bytes=est.params_bytes,
        optimizer_bytes=_slots(optimizer) * est.params_bytes,
        extra_bytes=recompute,
    )


def accumulation_cost(model: keras.Model, micro_batch: int, steps: int, optimizer: str = "sgd") -> TrainingCost:
    """Training floor with gradient accumulation: ``steps`` micro-batches of ``micro_batch`` per update.

    The effective batch is ``micro_batch × steps``; memory is that of one micro-batch plus one
    accumulator per parameter (``extra_bytes``).
    """
    memory._positive_int(steps, "steps")
    base = training_cost(model, micro_batch, optimizer)
    return replace(base, remedy=f"accumulation {steps} × {micro_batch}", extra_bytes=base.params_bytes)


def split_batch(global_batch: int, replicas: int) -> list[int]:
    """Per-replica batch sizes when ``tf.distribute`` splits a global batch over ``replicas`` devices.

    Each replica gets ⌈global_batch / replicas⌉ images, in order, until the batch runs out: 10 over 3
    replicas gives [4, 4, 2] (not [4, 3, 3]); the last replicas may get fewer, even none.
    """
    memory._positive_int(global_batch, "global_batch")
    memory._positive_int(replicas, "replicas")
    per = -(-global_batch // replicas)
    return [max(0, min(per, global_batch - i * per)) for i in range(replicas)]


def replica_cost(model: keras.Model, global_batch: int, replicas: int, optimizer: str = "sgd") -> TrainingCost:
    """Training floor on the busiest device when the batch is split over ``replicas`` (data parallelism).

    Every replica keeps a full copy of the weights, gradients and optimizer state; only the activations
    shrink.
    """
    per_replica = max(split_batch(global_batch, replicas))
    base = training_cost(model, per_replica, optimizer)
    return replace(base, remedy=f"{replicas} devices")


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
class StepPeak:
    """Peak resident memory of one SGD training step, measured in a fresh process (bytes, seconds)."""

    builder: str
    batch_size: int
    accumulation_steps: int
    baseline_bytes: int
    peak_bytes: int
    seconds: float

    @property
    def delta_bytes(self) -> int:
        """What the step added on top of what was resident before it (weights, data, runtime)."""
        return self.peak_bytes - self.baseline_bytes


def measure_training_peak(
    builder: str, batch_size: int, accumulation_steps: int = 1, timeout_s: float = 600.0
) -> StepPeak:
    """Peak memory of one training step (optionally with gradient accumulation) in a fresh CPU process.

    Same method as :func:`cnn_helpers.memory.measure_peak`: oneDNN off (``TF_ENABLE_ONEDNN_OPTS=0``), glibc
    returning large freed blocks, one warm-up step, then the peak resident size (``VmHWM``, reset through
    ``/proc/self/clear_refs``) of a second step minus the resident size just before it. The step feeds
    ``accumulation_steps`` micro-batches of ``batch_size`` all-zeros images, sums their gradients into
    float32 accumulators, and applies their mean with SGD.

    Raises:
        ValueError: for a malformed ``builder`` or non-positive sizes.
        RuntimeError: if the child process fails.
    """
    if ":" not in builder:
        raise ValueError(f"builder={builder!r}: must look like 'package.module:function'")
    memory._positive_int(batch_size, "batch_size")
    memory._positive_int(accumulation_steps, "accumulation_steps")
    request = {"builder": builder, "batch_size": batch_size, "accumulation_steps": accumulation_steps}
    return StepPeak(**memory.run_probe("cnn_helpers.remedies", request, timeout_s))


def _probe(request: dict) -> dict:
    import importlib

    import numpy as np
    import tensorflow as tf

    from cnn_helpers import _memprobe

    keras.utils.set_random_seed(0)
    module_name, function_name = request["builder"].split(":")
    model = getattr(importlib.import_module(module_name), function_name)()
    batch, k = request["batch_size"], request["accumulation_steps"]
    x = tf.constant(np.zeros((batch, *model.inputs[0].shape[1:]), dtype="float32"))
    optimizer = keras.optimizers.SGD()
    accumulators = [tf.Variable(tf.zeros_like(v)) for v in model.trainable_variables]

    def step() -> None:
        for _ in range(k):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(tf.cast(model(x, training=True), "float32")))
            grads = tape.gradient(loss, model.trainable_variables)
            for acc, g in zip(accumulators, grads):
                acc.assign_add(g)
            del grads, tape, loss
        optimizer.apply([acc / k for acc in accumulators], model.trainable_variables)
        for acc in accumulators:
            acc.assign(tf.zeros_like(acc))

    step()
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
        "baseline_bytes": int(baseline),
        "peak_bytes": int(peak),
        "seconds": round(seconds, 3),
    }


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
