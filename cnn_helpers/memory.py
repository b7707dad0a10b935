"""Memory arithmetic for CNNs: output sizes, parameters, activations, and a measurement to check them.

Units: every ``*_bytes`` value is an integer number of bytes. Prose uses MB = 10**6 bytes.

The estimates are *lower bounds* for a chain of layers (a ``keras.Sequential`` model however it was built,
or a functional model whose layers form a single line): they count the numbers a framework cannot avoid
storing, not the framework's own workspaces, caches and allocator slack. Each bound says what it counts:

* :attr:`MemoryEstimate.inference_peak_bytes`: a prediction, each layer's input freed once its output exists;
* :attr:`MemoryEstimate.training_bytes`: what the forward pass stores for backpropagation, plus one gradient
  per weight (no gradient with respect to an activation);
* :attr:`MemoryEstimate.backward_peak_bytes`: the largest moment of backpropagation itself, when a layer's
  backward step holds its input and the gradients with respect to its output and its input.

Which chains the backward moments hold for: they assume that each layer's backward step needs its *input*
and not its *output*, and keeps nothing else, which is true of convolutions and dense layers without a
fused activation (``activation=None``, as in Question 2's network) and of a flatten or reshape. Other layers
keep other tensors for the backward pass: a ReLU, sigmoid, tanh or softmax (a separate layer or an
``activation=`` argument) keeps its *output*; max pooling its input and output; batch normalization its
input and per-channel statistics; dropout its mask. For chains with such layers the moments are a model of
backpropagation, not a bound, and TensorFlow may hold more or less at its worst moment.

:func:`measure_peak` measures the real thing in a fresh process so that they can be compared.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

#: Extra per-parameter slots that common optimizers keep (momentum vectors, second moments, ...).
OPTIMIZER_SLOTS: dict[str, int] = {
    "sgd": 0,
    "momentum": 1,
    "nesterov": 1,
    "rmsprop": 1,
    "adagrad": 1,
    "adam": 2,
    "adamw": 2,
    "nadam": 2,
}

PADDINGS = ("valid", "same")

#: Orders in which a layer's backward step can make its two gradients (see :func:`estimate`).
ORDERS = ("input_first", "weights_first")

#: The working set TensorFlow's CPU weight-gradient kernel sizes its scratch buffer for (bytes); its source
#: says "30MB is from ivybridge" (an L3 cache size).
TF_CONV_WORKING_SET_BYTES = 30 * 2**20


def _positive_int(value: Any, argument: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{argument}={value!r}: must be a positive integer")
    return value


def conv_output_size(n: int, kernel: int, stride: int, padding: str, dilation: int = 1) -> int:
    """Output length along one dimension of a convolution or pooling layer, as Keras computes it.

    ``"same"`` gives ``ceil(n / stride)`` whatever the kernel; ``"valid"`` gives
    ``floor((n - dilation*(kernel-1) - 1) / stride) + 1``. Delegates to
    :func:`cnn_helpers.receptive_field.output_length` (which also takes explicit paddings); this function
    accepts only Keras's two padding names.

    Raises:
        ValueError: for a non-positive size, an unknown padding, or a ``"valid"`` kernel wider than ``n``.
    """
    from cnn_helpers import receptive_field

    _positive_int(n, "n")
    _positive_int(kernel, "kernel")
    _positive_int(stride, "stride")
    _positive_int(dilation, "dilation")
    if padding not in PADDINGS:
        raise ValueError(f"padding={padding!r}: must be one of {PADDINGS}")
    return receptive_field.output_length(n, kernel, stride, dilation, padding)


@dataclass(frozen=True)
class LayerMemory:
    """One layer's row in a :class:`MemoryEstimate` (bytes are for the whole batch)."""

    name: str
    kind: str
    output_shape: tuple[int, ...]
    params: int
    activation_bytes: int


@dataclass(frozen=True)
class BackwardStep:
    """What one moment of backpropagation through a chain holds besides the parameters (whole batch, bytes).

    ``moment`` is ``"loss"`` (the loss's gradient with respect to the model's output is computed) or the name
    of the layer whose backward step runs.
    """

    moment: str
    kept_bytes: int
    output_gradient_bytes: int
    input_gradient_bytes: int
    weight_gradient_bytes: int

    @property
    def total_bytes(self) -> int:
        """Everything this moment holds, except the parameters."""
        return self.kept_bytes + self.output_gradient_bytes + self.input_gradient_bytes + self.weight_gradient_bytes


@dataclass(frozen=True)
class MemoryEstimate:
    """Lower-bound memory of a chain model. All ``*_bytes`` are integers in bytes."""

    batch_size: int
    dtype_bytes: int
    input_shape: tuple[int, ...]
    total_params: int
    params_bytes: int
    input_bytes: int
    activation_bytes: int
    inference_peak_bytes: int
    training_bytes: int
    layers: tuple[LayerMemory, ...]
    backward: tuple[BackwardStep, ...] = ()
    order: str = "input_first"

    @property
    def largest_activation_gradient_bytes(self) -> int:
        """The largest gradient with respect to a layer's output: as large as that output."""
        return max(row.activation_bytes for row in self.layers)

    @property
    def backward_peak_step(self) -> BackwardStep:
        """The moment of :attr:`backward` that holds the most (the first one, on a tie)."""
        return max(self.backward, key=lambda step: step.total_bytes)

    @property
    def backward_peak_bytes(self) -> int:
        """Parameters + the largest moment of backpropagation (:attr:`backward`): the floor of a training step."""
        return self.params_bytes + self.backward_peak_step.total_bytes

    def backward_peak_bytes_with(self, optimizer: str) -> int:
        """:attr:`backward_peak_bytes` plus the optimizer's state."""
        return self.backward_peak_bytes + self.optimizer_bytes(optimizer)

    @property
    def activations_all_bytes(self) -> int:
        """Parameters + input + every activation: inference memory if nothing were freed."""
        return self.params_bytes + self.input_bytes + self.activation_bytes

    def optimizer_bytes(self, optimizer: str) -> int:
        """Bytes of optimizer state: ``OPTIMIZER_SLOTS[optimizer]`` copies of the parameters."""
        key = optimizer.lower()
        if key not in OPTIMIZER_SLOTS:
            raise ValueError(f"optimizer={optimizer!r}: must be one of {sorted(OPTIMIZER_SLOTS)}")
        return OPTIMIZER_SLOTS[key] * self.params_bytes

    def training_bytes_with(self, optimizer: str) -> int:
        """:attr:`training_bytes` plus the optimizer's state."""
        return self.training_bytes + self.optimizer_bytes(optimizer)

    def rows(self) -> list[tuple[str, str, str, int, int]]:
        """The per-layer table as plain rows: (name, kind, output shape, params, activation bytes)."""
        return [
            (row.name, row.kind, " × ".join(map(str, row.output_shape)), row.params, row.activation_bytes)
            for row in self.layers
        ]

    def _table(self) -> tuple[list[str], list[list[str]]]:
        header = ["layer", "type", "output shape (per image)", "params", "activations (bytes)"]
        body = [[n, k, s, f"{p:,}", f"{a:,}"] for n, k, s, p, a in self.rows()]
        body.append(["total", "", "", f"{self.total_params:,}", f"{self.activation_bytes:,}"])
        return header, body

    def __str__(self) -> str:
        header, body = self._table()
        widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
        lines = ["  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                 for r in [header, *body]]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines) + f"\n(batch size {self.batch_size}, {self.dtype_bytes} bytes per number)"

    def _repr_html_(self) -> str:
        header, body = self._table()
        head = "".join(f"<th>{h}</th>" for h in header)
        rows = "".join(
            "<tr>" + "".join(f'<td style="text-align:{"left" if i < 3 else "right"}">{c}</td>'
                             for i, c in enumerate(r)) + "</tr>"
            for r in body
        )
        caption = f"batch size {self.batch_size}, {self.dtype_bytes} bytes per number"
        return f"<table><caption>{caption}</caption><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _elements(shape: tuple[Any, ...], where: str) -> int:
    dims = tuple(shape)
    if any(d is None for d in dims):
        raise ValueError(f"model: {where} has an unknown dimension {dims}; build it with a fixed input shape")
    return math.prod(int(d) for d in dims)


@dataclass(frozen=True)
class _Link:
    """One call in a chain: the operation and the shapes of its input and output in *this* model's graph."""

    operation: Any
    input_shape: tuple[Any, ...]
    output_shape: tuple[Any, ...]


def _chain(model: Any) -> list[_Link]:
    """The model's calls from its input to its output, checked to form a single chain.

    The chain is read from the model's own graph, going back from its output through each tensor's
    history (the call that made it), not from ``layer.input`` / ``layer.output``: those describe a layer's
    *first* call, which belongs to another graph when Keras has rebuilt the model (``Sequential.add``
    rebuilds it each time) or when the layer was called elsewhere before.
    """
    import keras

    if not isinstance(model, keras.Model):
        raise ValueError(f"model: expected a keras.Model, got {type(model).__name__}")
    if not model.built or not getattr(model, "inputs", None):
        raise ValueError(
            "model: it is not built; give it a keras.Input (or call model.build(input_shape)) first"
        )
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError("model: only single-input, single-output chains are supported")
    first_input = model.inputs[0]
    links: list[_Link] = []
    seen: set[int] = set()
    tensor = model.outputs[0]
    while tensor is not first_input:
        history = getattr(tensor, "_keras_history", None)
        if history is None:
            raise ValueError("model: a tensor of its graph has no history; not a Keras functional graph")
        operation, node_index, _ = history
        node = operation._inbound_nodes[node_index]
        inputs = list(node.input_tensors)
        if isinstance(operation, keras.layers.InputLayer) or not inputs:
            raise ValueError(f"model: {operation.name!r} is an input other than the model's; not a single chain")
        if len(inputs) != 1 or len(node.outputs) != 1:
            raise ValueError(
                f"model: layer {operation.name!r} takes {len(inputs)} input(s) and makes {len(node.outputs)} "
                "output(s); estimate() supports chains of layers only (no branches, merges or shared layers)"
            )
        if id(operation) in seen:
            raise ValueError(
                f"model: layer {operation.name!r} is called more than once; estimate() supports chains of "
                "layers only (no branches, merges or shared layers)"
            )
        seen.add(id(operation))
        links.append(_Link(operation, tuple(inputs[0].shape), tuple(node.outputs[0].shape)))
        tensor = inputs[0]
    links.reverse()
    if not links:
        raise ValueError("model: it has no layers besides its input")
    stray = [
        layer.name
        for layer in model.layers
        if not isinstance(layer, keras.layers.InputLayer) and id(layer) not in seen
    ]
    if stray:
        raise ValueError(f"model: layers {stray} are not on the path from the input to the output; not a chain")
    return links


def _backward_steps(
    names: list[str], sizes: list[int], weight_grads: list[int], order: str = "input_first"
) -> tuple[BackwardStep, ...]:
    """The moments of backpropagation through a chain (see :func:`estimate`), loss first."""
    depth = len(names)
    steps = [BackwardStep("loss", sum(sizes), sizes[depth], 0, 0)]
    for i in range(depth, 0, -1):  # the backward step of layer i (1-based): sizes[i] is its output
        # Input first: the layer's input is still kept while its gradient is made. Weights first: the
        # input is freed once the weights' gradient (which needs it) is made, then its gradient is made;
        # the step's two moments hold the same total, shown here as the second (none for layer 1).
        keep_input = order == "input_first" or i == 1
        steps.append(
            BackwardStep(
                moment=names[i - 1],
                kept_bytes=sum(sizes[:i]) if keep_input else sum(sizes[: i - 1]),
                output_gradient_bytes=sizes[i],
                input_gradient_bytes=sizes[i - 1] if i > 1 else 0,
                weight_gradient_bytes=sum(weight_grads[i - 1 :]),
            )
        )
    return tuple(steps)


def estimate(model: Any, batch_size: int = 1, dtype_bytes: int = 4, order: str = "input_first") -> MemoryEstimate:
    """Lower-bound memory of a built Keras chain model.

    Every layer's output tensor counts once as an activation (a nested model counts as one layer, and so
    does a plain operation such as ``keras.ops.relu`` in a functional model). Shapes are those of the
    model's own graph, so a ``Sequential`` built from a list, with ``add`` or as a functional model gives the
    same estimate.

    Args:
        model: a built ``keras.Sequential`` or a functional model whose layers form one chain.
        batch_size: images per batch.
        dtype_bytes: bytes per number: 4 for float32, 2 for float16/bfloat16.
        order: in which order a layer's backward step makes its two gradients. ``"input_first"`` (what
            TensorFlow does: its gradient of ``Conv2D`` makes the input's gradient, then the weights'):
            the layer's input is still kept while the gradient with respect to it is made.
            ``"weights_first"``: the weights' gradient is made first, and the layer's input, needed by
            nothing else, is freed before the gradient with respect to it is made.

    Returns:
        A :class:`MemoryEstimate` with, in bytes:
        ``params_bytes`` (params × dtype_bytes), ``input_bytes`` (batch × input elements × dtype_bytes),
        ``activation_bytes`` (batch × all layer output elements × dtype_bytes),
        ``inference_peak_bytes`` (params_bytes + batch × max over layers of its input + output elements ×
        dtype_bytes: each layer's input is freed once its output exists), ``training_bytes``
        (input_bytes + activation_bytes + 2 × params_bytes: every activation kept for backprop, and one
        gradient per parameter, but no gradient with respect to an activation), and ``backward``, the
        moments of backpropagation whose largest sets ``backward_peak_bytes``. Every output is kept until
        the backward step of the layer that consumes it; the backward step of layer *i* holds its input
        (with ``order="input_first"``, the default: as TensorFlow runs it) and everything below it, the
        gradient with respect to its output, and makes the gradient with respect to its input (none for the
        first layer) and its weights' gradients (kept until the update). The moments hold for the chains
        named in the module's docstring (layers whose backward step needs their input, not their output).
        Optimizer state comes on top:
        :meth:`MemoryEstimate.training_bytes_with`, :meth:`MemoryEstimate.backward_peak_bytes_with`.

    Raises:
        ValueError: if ``model`` is not a built chain, ``batch_size`` / ``dtype_bytes`` is not positive, or
            ``order`` is not one of :data:`ORDERS`.
    """
    _positive_int(batch_size, "batch_size")
    _positive_int(dtype_bytes, "dtype_bytes")
    if order not in ORDERS:
        raise ValueError(f"order={order!r}: must be one of {ORDERS}")
    links = _chain(model)

    input_shape = tuple(links[0].input_shape[1:])
    input_elements = _elements(input_shape, "the input")
    rows: list[LayerMemory] = []
    largest_pair = 0
    previous_elements = input_elements
    for link in links:
        layer = link.operation
        shape = tuple(link.output_shape[1:])
        elements = _elements(shape, f"layer {layer.name!r}")
        largest_pair = max(largest_pair, previous_elements + elements)
        count_params = getattr(layer, "count_params", None)
        rows.append(
            LayerMemory(
                name=layer.name,
                kind=type(layer).__name__,
                output_shape=tuple(int(d) for d in shape),
                params=int(count_params()) if count_params is not None else 0,
                activation_bytes=batch_size * elements * dtype_bytes,
            )
        )
        previous_elements = elements

    total_params = int(model.count_params())
    params_bytes = total_params * dtype_bytes
    input_bytes = batch_size * input_elements * dtype_bytes
    activation_bytes = sum(row.activation_bytes for row in rows)
    backward = _backward_steps(
        [row.name for row in rows],
        [input_bytes] + [row.activation_bytes for row in rows],
        [row.params * dtype_bytes for row in rows],
        order,
    )
    return MemoryEstimate(
        batch_size=batch_size,
        dtype_bytes=dtype_bytes,
        input_shape=tuple(int(d) for d in input_shape),
        total_params=total_params,
        params_bytes=params_bytes,
        input_bytes=input_bytes,
        activation_bytes=activation_bytes,
        inference_peak_bytes=params_bytes + batch_size * largest_pair * dtype_bytes,
        training_bytes=input_bytes + activation_bytes + 2 * params_bytes,
        layers=tuple(rows),
        backward=backward,
        order=order,
    )


def tf_conv_weight_gradient_scratch_bytes(
    output_positions: int, patch_size: int, filters: int, batch_size: int, dtype_bytes: int = 4
) -> int:
    """Scratch memory TensorFlow's CPU kernel writes while it makes a ``Conv2D`` layer's weight gradient (bytes).

    With oneDNN off, TensorFlow runs ``Conv2DBackpropFilter`` on a CPU with ``Conv2DCustomBackpropFilterOp``
    (``tensorflow/core/kernels/conv_grad_filter_ops.cc``). It unfolds the layer's input into one row of
    ``patch_size`` numbers per output position (im2col), for ``shard`` images at a time, where
    ``shard = ceil(W / u)``: ``W`` is :data:`TF_CONV_WORKING_SET_BYTES` / ``dtype_bytes`` numbers and
    ``u = P·K + P·F + K·F`` numbers per image (``P`` output positions, ``K`` = ``patch_size``, ``F`` =
    ``filters``). The buffer is allocated for ``shard`` images, but only ``min(shard, batch_size)`` of them
    are written, and only written pages become resident.

    Args:
        output_positions: output height × output width of the layer.
        patch_size: kernel height × kernel width × input channels.
        filters: output channels.
        batch_size: images per batch.
        dtype_bytes: bytes per number.

    Returns:
        ``min(shard, batch_size) × output_positions × patch_size × dtype_bytes``, in bytes.

    Raises:
        ValueError: if an argument is not a positive integer.
    """
    _positive_int(output_positions, "output_positions")
    _positive_int(patch_size, "patch_size")
    _positive_int(filters, "filters")
    _positive_int(batch_size, "batch_size")
    _positive_int(dtype_bytes, "dtype_bytes")
    working_set = TF_CONV_WORKING_SET_BYTES // dtype_bytes
    per_image = output_positions * patch_size + output_positions * filters + patch_size * filters
    shard = -(-working_set // per_image)
    return min(shard, batch_size) * output_positions * patch_size * dtype_bytes


# --------------------------------------------------------------------------------------------------------
# Measurement


@dataclass(frozen=True)
class PeakMeasurement:
    """Peak memory of one forward pass or one training step, measured in a fresh process (bytes)."""

    mode: str
    batch_size: int
    device: str
    baseline_bytes: int
    peak_bytes: int
    seconds: float

    @property
    def delta_bytes(self) -> int:
        """What the step itself added on top of what was resident before it (weights, data, runtime)."""
        return self.peak_bytes - self.baseline_bytes


MODES = ("predict", "train")


def measure_peak(
    builder: str,
    mode: str,
    batch_size: int,
    optimizer: str = "sgd",
    timeout_s: float = 600.0,
    onednn: bool = False,
) -> PeakMeasurement:
    """Measure the peak memory of one step of a model in a fresh Python process.

    The child process builds the model with ``builder`` (an import path ``"package.module:function"``
    returning a built Keras model), makes an all-zeros float32 batch, runs the step once to warm up (kernels,
    optimizer slots), returns freed memory to the operating system, then runs it again and reports:

    * on CPU, the peak resident set size (Linux ``VmHWM``, reset just before the step) and the resident
      size just before it, with oneDNN's caching CPU kernels switched off (``TF_ENABLE_ONEDNN_OPTS=0``) so
      that freed buffers leave the process; ``onednn=True`` switches them on, to see how much of a step's
      growth they hide;
    * on a GPU, ``tf.config.experimental.get_memory_info``'s ``peak`` and ``current``, reset the same way.

    The step runs eagerly: ``model(x, training=False)`` for ``"predict"``; for ``"train"``, a
    ``tf.GradientTape`` forward and backward pass with a mean-squared loss and one ``optimizer`` update.

    Raises:
        ValueError: for an unknown ``mode`` or a non-positive ``batch_size``.
        RuntimeError: if the child process fails (its error output is included).
    """
    if mode not in MODES:
        raise ValueError(f"mode={mode!r}: must be one of {MODES}")
    _positive_int(batch_size, "batch_size")
    if ":" not in builder:
        raise ValueError(f"builder={builder!r}: must look like 'package.module:function'")
    request = {"builder": builder, "mode": mode, "batch_size": batch_size, "optimizer": optimizer}
    return PeakMeasurement(**run_probe("cnn_helpers._memprobe", request, timeout_s, onednn=onednn))


def run_probe(
    module: str, request: dict[str, Any], timeout_s: float = 600.0, onednn: bool = False
) -> dict[str, Any]:
    """Run ``python -m module '<request as JSON>'`` in a fresh process set up for memory measurement.

    The child's environment fixes glibc's thresholds (large freed buffers go back to the operating system)
    and switches oneDNN's caching CPU kernels off (on with ``onednn=True``), so that its resident size
    follows what is alive. The child must print one JSON object as its last line of standard output; it is
    returned as a dict.

    Raises:
        RuntimeError: if the child process fails (its error output is included).
    """
    env = dict(os.environ)
    # Fixed glibc thresholds: large buffers are mmap-ed and handed back to the OS when freed, so the
    # resident size follows what is really alive instead of what the allocator keeps cached.
    env.setdefault("MALLOC_MMAP_THRESHOLD_", "65536")
    env.setdefault("MALLOC_TRIM_THRESHOLD_", "65536")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # oneDNN's custom CPU ops keep freed buffers cached in the process, so after a warm-up step the
    # resident size no longer shows a step's peak. TensorFlow's own kernels free as they go.
    env["TF_ENABLE_ONEDNN_OPTS"] = "1" if onednn else "0"
    done = subprocess.run(
        [sys.executable, "-m", module, json.dumps(request)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout_s,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"memory probe failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def all_outputs_bytes(model: Any, batch_size: int = 1, dtype_bytes: int = 4) -> int:
    """Bytes of every layer's output of a built Keras model (any graph: branches and merges allowed).

    What a framework holds when it keeps every layer's output of a forward pass for backpropagation, as
    TensorFlow does by default: each layer's output is a separate tensor (batch norm, activation, addition
    and concatenation outputs included). Input layers are not counted. Nested models are descended.

    Raises:
        ValueError: for a non-positive size, or an output with an unknown dimension.
    """
    import keras

    batch_size = _positive_int(batch_size, "batch_size")
    dtype_bytes = _positive_int(dtype_bytes, "dtype_bytes")
    if not isinstance(model, keras.Model):
        raise ValueError(f"model: expected a keras.Model, got {type(model).__name__}")
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.Model):
            total += all_outputs_bytes(layer, batch_size, dtype_bytes)
            continue
        outputs = layer.output if isinstance(layer.output, (list, tuple)) else [layer.output]
        for out in outputs:
            total += _elements(tuple(out.shape[1:]), f"layer {layer.name!r}") * batch_size * dtype_bytes
    return total
