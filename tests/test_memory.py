"""cnn_helpers.memory against Keras itself: output sizes, parameters, and real activation tensors."""

from __future__ import annotations

import math
import subprocess

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from keras import layers

from cnn_helpers import memory, models

# ----------------------------------------------------------------------------------------------- sizes


@given(
    n=st.integers(1, 64),
    kernel=st.integers(1, 7),
    stride=st.integers(1, 4),
    dilation=st.integers(1, 3),
    padding=st.sampled_from(memory.PADDINGS),
)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_conv_output_size_matches_keras(n, kernel, stride, dilation, padding):
    span = dilation * (kernel - 1) + 1
    if padding == "valid" and span > n:
        with pytest.raises(ValueError, match="kernel"):
            memory.conv_output_size(n, kernel, stride, padding, dilation)
        return
    if dilation > 1 and stride > 1:  # Keras forbids dilation and stride > 1 together
        return
    conv = layers.Conv1D(1, kernel, strides=stride, padding=padding, dilation_rate=dilation)
    keras_size = conv.compute_output_shape((1, n, 1))[1]
    assert memory.conv_output_size(n, kernel, stride, padding, dilation) == keras_size


def test_conv_output_size_question2_rounds_up():
    assert [memory.conv_output_size(n, 3, 2, "same") for n in (200, 100, 50)] == [100, 50, 25]
    assert [memory.conv_output_size(n, 3, 2, "same") for n in (300, 150, 75)] == [150, 75, 38]


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"n": 0}, "n="),
        ({"n": -3}, "n="),
        ({"kernel": 0}, "kernel="),
        ({"stride": 0}, "stride="),
        ({"dilation": 0}, "dilation="),
        ({"padding": "full"}, "padding="),
        ({"padding": "SAME"}, "padding="),
        ({"n": 2.5}, "n="),
        ({"n": True}, "n="),
    ],
)
def test_conv_output_size_rejects_bad_input(kwargs, argument):
    args = {"n": 10, "kernel": 3, "stride": 1, "padding": "same"} | kwargs
    with pytest.raises(ValueError, match=argument):
        memory.conv_output_size(**args)


# ------------------------------------------------------------------------------------ question 2 numbers


def test_question2_numbers():
    model = models.question2_cnn()
    one = memory.estimate(model)
    assert one.total_params == model.count_params() == 903_400
    assert [row.params for row in one.layers] == [2_800, 180_200, 720_400]
    assert [row.output_shape for row in one.layers] == [(100, 150, 100), (50, 75, 200), (25, 38, 400)]
    assert one.params_bytes == 3_613_600
    assert one.input_bytes == 720_000
    assert [row.activation_bytes for row in one.layers] == [6_000_000, 3_000_000, 1_520_000]
    assert one.inference_peak_bytes == 12_613_600
    fifty = memory.estimate(model, batch_size=50)
    assert fifty.activation_bytes == 526_000_000
    assert fifty.input_bytes == 36_000_000
    assert fifty.training_bytes == 36_000_000 + 526_000_000 + 2 * 3_613_600
    assert fifty.training_bytes_with("adam") == fifty.training_bytes + 2 * 3_613_600
    assert fifty.training_bytes_with("momentum") == fifty.training_bytes + 3_613_600


def test_question2_backward_peak_by_hand():
    fifty = memory.estimate(models.question2_cnn(), batch_size=50)
    x, y1, y2, y3 = 36_000_000, 300_000_000, 150_000_000, 76_000_000  # input and outputs, batch 50
    g1, g2, g3 = 4 * 2_800, 4 * 180_200, 4 * 720_400  # weight gradients
    params = 3_613_600
    by_hand = [
        ("loss", x + y1 + y2 + y3, y3, 0, 0),  # every output kept; the loss's gradient made
        ("conv3", x + y1 + y2, y3, y2, g3),  # conv3's input kept; its output's gradient in, its input's out
        ("conv2", x + y1, y2, y1, g3 + g2),  # the largest: conv1's output and its gradient, conv2's gradient
        ("conv1", x, y1, 0, g3 + g2 + g1),  # no gradient for the image
    ]
    got = [
        (s.moment, s.kept_bytes, s.output_gradient_bytes, s.input_gradient_bytes, s.weight_gradient_bytes)
        for s in fifty.backward
    ]
    assert got == by_hand
    assert fifty.backward_peak_step.moment == "conv2"
    assert fifty.backward_peak_bytes == params + x + y1 + y2 + y1 + g3 + g2 == 793_216_000
    assert fifty.largest_activation_gradient_bytes == y1
    assert fifty.backward_peak_bytes_with("adam") == fifty.backward_peak_bytes + 2 * params


def test_question2_weights_first_moves_the_peak_to_the_loss():
    """Chapter 2: had conv2 made its weights' gradient first and freed conv1's output, the loss would peak."""
    model = models.question2_cnn()
    fifty = memory.estimate(model, batch_size=50, order="weights_first")
    x, y1, y2, y3 = 36_000_000, 300_000_000, 150_000_000, 76_000_000
    g1, g2, g3 = 4 * 2_800, 4 * 180_200, 4 * 720_400
    params = 3_613_600
    got = [
        (s.moment, s.kept_bytes, s.output_gradient_bytes, s.input_gradient_bytes, s.weight_gradient_bytes)
        for s in fifty.backward
    ]
    assert got == [
        ("loss", x + y1 + y2 + y3, y3, 0, 0),
        ("conv3", x + y1, y3, y2, g3),  # conv2's output freed, its gradient being made
        ("conv2", x, y2, y1, g3 + g2),  # conv1's output freed, its gradient being made
        ("conv1", x, y1, 0, g3 + g2 + g1),  # the batch is the caller's: kept
    ]
    assert fifty.order == "weights_first"
    assert fifty.backward_peak_step.moment == "loss"
    stored = x + y1 + y2 + y3 + params
    assert fifty.backward_peak_bytes == stored + y3 == 641_613_600
    assert fifty.backward_peak_bytes < memory.estimate(model, batch_size=50).backward_peak_bytes
    with pytest.raises(ValueError, match="order="):
        memory.estimate(model, order="backwards")


def test_tf_conv_weight_gradient_scratch_by_hand():
    # Question 2's conv2: 50 × 75 output positions, 3 × 3 × 100 patches, 200 filters.
    p, k, f = 50 * 75, 3 * 3 * 100, 200
    per_image = p * k + p * f + k * f  # 4,305,000 numbers
    assert math.ceil(30 * 2**20 / 4 / per_image) == 2  # two images per shard
    assert memory.tf_conv_weight_gradient_scratch_bytes(p, k, f, batch_size=1) == 1 * p * k * 4 == 13_500_000
    assert memory.tf_conv_weight_gradient_scratch_bytes(p, k, f, batch_size=50) == 2 * p * k * 4 == 27_000_000
    # A small layer: many images per shard, so the batch sets the written part.
    assert memory.tf_conv_weight_gradient_scratch_bytes(10, 9, 4, batch_size=3, dtype_bytes=2) == 3 * 10 * 9 * 2
    # Half precision: twice the numbers fit the working set.
    half = memory.tf_conv_weight_gradient_scratch_bytes(p, k, f, batch_size=50, dtype_bytes=2)
    assert half == math.ceil(30 * 2**20 / 2 / per_image) * p * k * 2


@pytest.mark.parametrize("argument", ["output_positions", "patch_size", "filters", "batch_size", "dtype_bytes"])
def test_tf_conv_weight_gradient_scratch_rejects_bad_numbers(argument):
    args = {"output_positions": 10, "patch_size": 9, "filters": 4, "batch_size": 1, "dtype_bytes": 4}
    with pytest.raises(ValueError, match=f"{argument}="):
        memory.tf_conv_weight_gradient_scratch_bytes(**(args | {argument: 0}))


def test_question2_wrong_readings():
    assert models.question2_cnn(filters=(400, 200, 100)).count_params() == 911_500


# ------------------------------------------------------------------------- generated chains vs Keras

LAYER_KINDS = ("conv", "pool", "bn", "relu", "dropout", "depthwise")
#: The three ways Keras code builds a plain chain: a list given to ``keras.Sequential``, ``model.add`` one
#: layer at a time (Keras rebuilds the model's graph at each ``add``, so a layer's ``input``/``output`` can
#: belong to an older graph), and the functional API.
BUILDS = ("list", "add", "functional")


@st.composite
def chain_specs(draw):
    """A random chain of image layers as plain data (sometimes ending in Flatten + Dense)."""
    size = draw(st.integers(8, 24))
    spec = {"input": (size, size + draw(st.integers(0, 5)), draw(st.integers(1, 4))), "layers": []}
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(LAYER_KINDS))
        if kind == "conv":
            args = (draw(st.integers(1, 6)), draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.booleans()))
        elif kind == "pool":
            args = (draw(st.sampled_from(memory.PADDINGS)),)
        elif kind == "depthwise":
            args = (draw(st.integers(1, 2)),)
        else:
            args = ()
        spec["layers"].append((kind, args))
    if draw(st.booleans()):
        spec["layers"].append(("dense", (draw(st.integers(1, 10)),)))
    return spec


def make_layers(spec):
    made = []
    for kind, args in spec["layers"]:
        if kind == "conv":
            filters, kernel, stride, bias = args
            made.append(layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=bias))
        elif kind == "pool":
            made.append(layers.MaxPooling2D(2, padding=args[0]))
        elif kind == "depthwise":
            made.append(layers.DepthwiseConv2D(3, padding="same", depth_multiplier=args[0]))
        elif kind == "bn":
            made.append(layers.BatchNormalization())
        elif kind == "relu":
            made.append(layers.ReLU())
        elif kind == "dropout":
            made.append(layers.Dropout(0.5))
        else:
            made += [layers.Flatten(), layers.Dense(args[0])]
    return made


def build(spec, how):
    """The chain described by ``spec``, built in one of the :data:`BUILDS` ways."""
    inputs = keras.Input(shape=spec["input"])
    chain = make_layers(spec)
    if how == "list":
        return keras.Sequential([inputs, *chain])
    if how == "add":
        model = keras.Sequential([inputs])
        for layer in chain:
            model.add(layer)
        return model
    assert how == "functional", how
    x = inputs
    for layer in chain:
        x = layer(x)
    return keras.Model(inputs, x)


def real_outputs(model, x):
    """Each layer's output for the batch ``x``, computed eagerly one layer after the other."""
    outputs = []
    for layer in [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]:
        x = layer(x, training=False)
        outputs.append(np.asarray(x))
    return outputs


def live_peak(sizes, weight_grads, params_bytes):
    """Peak of backpropagation through a chain, from when each tensor is alive (an independent derivation).

    ``sizes`` are the input and the L layer outputs; moment ``t`` is L + 1 for the loss's gradient, then
    ``t`` = L, ..., 1 for the backward step of layer ``t``. Output ``j`` (the input for ``j = 0``) lives until
    the step that consumes it is done: moments ``t >= j + 1``. The gradient with respect to output ``j`` is
    made at moment ``j + 1`` and used at moment ``j``. Layer ``j``'s weight gradient exists from moment ``j``.
    """
    depth = len(sizes) - 1
    peak = 0
    for t in range(depth + 1, 0, -1):
        alive = params_bytes
        alive += sum(size for j, size in enumerate(sizes) if t >= j + 1)
        alive += sum(sizes[j] for j in range(1, depth + 1) if j <= t <= j + 1)
        alive += sum(g for j, g in enumerate(weight_grads, start=1) if t <= j)
        peak = max(peak, alive)
    return peak


def weights_first_peak(sizes, weight_grads, params_bytes):
    """Peak of backpropagation when each layer makes its weights' gradient before its input's (derived apart).

    At the loss's moment every output is alive, with the gradient of the last. In the backward step of layer
    ``t``, outputs ``0 .. t-1`` are alive while its weights' gradient is made (output ``t-1`` is its input),
    with the gradient with respect to output ``t`` and the weight gradients of layers ``t .. L``; then its
    input is freed and the gradient with respect to it is made, which holds the same amount.
    """
    depth = len(sizes) - 1
    peak = params_bytes + sum(sizes) + sizes[depth]
    for t in range(depth, 0, -1):
        alive = params_bytes + sum(sizes[:t]) + sizes[t] + sum(weight_grads[t - 1 :])
        peak = max(peak, alive)
    return peak


@given(
    spec=chain_specs(),
    how=st.sampled_from(BUILDS),
    batch_size=st.integers(1, 3),
    dtype_bytes=st.sampled_from((2, 4)),
)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_estimate_matches_real_tensors(spec, how, batch_size, dtype_bytes):
    model = build(spec, how)
    est = memory.estimate(model, batch_size=batch_size, dtype_bytes=dtype_bytes)
    assert est.total_params == model.count_params()
    assert sum(row.params for row in est.layers) == model.count_params()

    # Run the layers and weigh every real output tensor (float32: 4 bytes per number).
    x = np.zeros((batch_size, *spec["input"]), dtype="float32")
    outputs = real_outputs(model, x)
    real = [o.nbytes // 4 * dtype_bytes for o in outputs]
    assert [row.activation_bytes for row in est.layers] == real
    assert [(batch_size, *row.output_shape) for row in est.layers] == [o.shape for o in outputs]
    assert est.activation_bytes == sum(real)
    assert est.input_bytes == x.nbytes // 4 * dtype_bytes

    sizes = [x.nbytes // 4 * dtype_bytes] + real
    assert est.inference_peak_bytes == est.params_bytes + max(a + b for a, b in zip(sizes, sizes[1:]))
    assert est.training_bytes == est.input_bytes + est.activation_bytes + 2 * est.params_bytes
    assert est.largest_activation_gradient_bytes == max(real)
    weight_grads = [row.params * dtype_bytes for row in est.layers]
    assert est.backward_peak_bytes == live_peak(sizes, weight_grads, est.params_bytes)
    assert est.backward_peak_bytes >= est.input_bytes + est.activation_bytes + est.params_bytes
    other = memory.estimate(model, batch_size=batch_size, dtype_bytes=dtype_bytes, order="weights_first")
    assert other.backward_peak_bytes == weights_first_peak(sizes, weight_grads, est.params_bytes)
    assert other.backward_peak_bytes <= est.backward_peak_bytes


@given(spec=chain_specs(), batch_size=st.integers(1, 3))
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_estimate_is_the_same_however_the_chain_is_built(spec, batch_size):
    estimates = [memory.estimate(build(spec, how), batch_size=batch_size) for how in BUILDS]
    # Layer names differ between builds (Keras numbers them); everything else must agree.
    def strip(est):
        rows = tuple((r.kind, r.output_shape, r.params, r.activation_bytes) for r in est.layers)
        return rows, est.params_bytes, est.input_bytes, est.inference_peak_bytes, est.backward_peak_bytes

    assert strip(estimates[0]) == strip(estimates[1]) == strip(estimates[2])


# ------------------------------------------------------------- plain chains, however they were built


def test_estimate_accepts_sequential_built_with_add():
    """Issue 8: ``Sequential([Input])`` then ``add`` twice raised "does not take the previous layer's output"."""
    model = keras.Sequential([keras.Input(shape=(16, 16, 3))])
    model.add(layers.Conv2D(4, 3, name="first"))
    model.add(layers.Conv2D(5, 3, name="second"))
    est = memory.estimate(model)
    assert [(row.name, row.output_shape) for row in est.layers] == [("first", (14, 14, 4)), ("second", (12, 12, 5))]
    assert est.total_params == (27 + 1) * 4 + (36 + 1) * 5


def test_estimate_accepts_question2_cnn_built_with_add():
    model = keras.Sequential([keras.Input(shape=models.QUESTION2_INPUT)])
    for n in models.QUESTION2_FILTERS:
        model.add(layers.Conv2D(n, 3, strides=2, padding="same"))
    by_list = memory.estimate(models.question2_cnn(), batch_size=50)
    by_add = memory.estimate(model, batch_size=50)
    assert by_add.rows()[0][1:] == by_list.rows()[0][1:]
    assert by_add.backward_peak_bytes == by_list.backward_peak_bytes
    assert by_add.training_bytes == by_list.training_bytes


def test_estimate_accepts_other_plain_builds():
    # Sequential without an Input, built afterwards.
    later = keras.Sequential([layers.Conv2D(4, 3), layers.Flatten()])
    later.build((None, 8, 8, 2))
    assert [row.output_shape for row in memory.estimate(later).layers] == [(6, 6, 4), (144,)]
    # Sequential whose input is added with add(), and whose last layer is popped.
    popped = keras.Sequential()
    popped.add(keras.Input(shape=(6,)))
    for units in (5, 4, 3):
        popped.add(layers.Dense(units))
    popped.pop()
    assert [row.output_shape for row in memory.estimate(popped).layers] == [(5,), (4,)]
    # Functional model whose layers were already used in another model (each has two call sites).
    first = keras.Sequential([keras.Input(shape=(6,)), layers.Dense(5), layers.Dense(4)])
    inputs = keras.Input(shape=(6,))
    x = inputs
    for layer in first.layers:
        x = layer(x)
    again = keras.Model(inputs, x)
    assert memory.estimate(again).rows() == memory.estimate(first).rows()


def test_estimate_uses_this_models_shapes_for_a_layer_called_before():
    conv = layers.Conv2D(4, 3, padding="same")
    conv(keras.Input(shape=(64, 64, 3)))  # first call, at another size
    inputs = keras.Input(shape=(16, 16, 3))
    est = memory.estimate(keras.Model(inputs, conv(inputs)))
    assert est.layers[0].output_shape == (16, 16, 4)
    assert est.activation_bytes == 16 * 16 * 4 * 4


def test_estimate_counts_a_nested_model_and_a_plain_op_as_one_layer_each():
    inner = keras.Sequential([keras.Input(shape=(8, 8, 3)), layers.Conv2D(4, 3), layers.ReLU()], name="inner")
    outer = keras.Sequential([keras.Input(shape=(8, 8, 3)), inner, layers.Flatten()])
    est = memory.estimate(outer)
    assert [(row.name, row.output_shape, row.params) for row in est.layers] == [
        ("inner", (6, 6, 4), inner.count_params()),
        (outer.layers[1].name, (144,), 0),
    ]
    inputs = keras.Input(shape=(6,))
    with_op = keras.Model(inputs, keras.ops.relu(layers.Dense(5)(inputs)))
    rows = memory.estimate(with_op).layers
    assert [(row.output_shape, row.params) for row in rows] == [((5,), (6 + 1) * 5), ((5,), 0)]


# ---------------------------------------------------------------------------------------- bad models


def test_estimate_rejects_unbuilt_model():
    with pytest.raises(ValueError, match="model: it is not built"):
        memory.estimate(keras.Sequential([layers.Dense(3)]))


def test_estimate_rejects_non_models():
    with pytest.raises(ValueError, match="model: expected a keras.Model"):
        memory.estimate(layers.Dense(3))


def test_estimate_rejects_branches():
    inputs = keras.Input(shape=(8, 8, 3))
    a = layers.Conv2D(4, 3, padding="same")(inputs)
    b = layers.Conv2D(4, 1)(inputs)
    with pytest.raises(ValueError, match="chain"):
        memory.estimate(keras.Model(inputs, layers.Add()([a, b])))


def test_estimate_rejects_shared_layer():
    inputs = keras.Input(shape=(8,))
    shared = layers.Dense(8)
    with pytest.raises(ValueError, match="chain"):
        memory.estimate(keras.Model(inputs, shared(shared(inputs))))


def test_estimate_rejects_branches_built_from_reused_layers():
    first = keras.Sequential([keras.Input(shape=(6,)), layers.Dense(6, name="a"), layers.Dense(6, name="b")])
    inputs = keras.Input(shape=(6,))
    a, b = first.layers
    with pytest.raises(ValueError, match="chain"):
        memory.estimate(keras.Model(inputs, layers.Add()([a(inputs), b(a(inputs))])))


def test_estimate_rejects_multiple_outputs():
    inputs = keras.Input(shape=(6,))
    with pytest.raises(ValueError, match="single-output"):
        memory.estimate(keras.Model(inputs, [layers.Dense(2)(inputs), layers.Dense(3)(inputs)]))


def test_estimate_rejects_unknown_dimensions():
    model = keras.Sequential([keras.Input(shape=(None, None, 3)), layers.Conv2D(2, 3)])
    with pytest.raises(ValueError, match="unknown dimension"):
        memory.estimate(model)


@pytest.mark.parametrize("kwargs, argument", [({"batch_size": 0}, "batch_size="), ({"dtype_bytes": 0}, "dtype_bytes=")])
def test_estimate_rejects_bad_numbers(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        memory.estimate(models.question2_cnn(), **kwargs)


def test_optimizer_bytes():
    est = memory.estimate(models.question2_cnn())
    assert est.optimizer_bytes("SGD") == 0
    assert est.optimizer_bytes("adam") == 2 * est.params_bytes
    with pytest.raises(ValueError, match="optimizer="):
        est.optimizer_bytes("lion")


def test_table_renders():
    est = memory.estimate(models.question2_cnn(), batch_size=2)
    text, html = str(est), est._repr_html_()
    for needle in ("conv1", "100 × 150 × 100", "903,400", "21,040,000"):
        assert needle in text and needle in html
    assert html.startswith("<table>")


# ------------------------------------------------------------------------------------------ measuring


def test_measure_peak_rejects_bad_input():
    with pytest.raises(ValueError, match="mode="):
        memory.measure_peak("cnn_helpers.models:question2_cnn", "fit", 1)
    with pytest.raises(ValueError, match="batch_size="):
        memory.measure_peak("cnn_helpers.models:question2_cnn", "train", 0)
    with pytest.raises(ValueError, match="builder="):
        memory.measure_peak("question2_cnn", "train", 1)


def tiny_model():
    """A model whose one training step at batch 8 must allocate well over 8 MB of activations."""
    return keras.Sequential([keras.Input(shape=(128, 128, 3)), layers.Conv2D(32, 3, padding="same")])


def test_measure_peak_sees_the_activations():
    est = memory.estimate(tiny_model(), batch_size=8)
    small = memory.measure_peak("tests.test_memory:tiny_model", "train", batch_size=1)
    large = memory.measure_peak("tests.test_memory:tiny_model", "train", batch_size=8)
    assert small.device == large.device == "CPU"
    # The activations must show up: the batch-8 step needs at least the estimate's activations.
    assert large.delta_bytes >= est.activation_bytes
    # ... and so must the floor of backpropagation, less what is resident before the step (weights, data).
    assert large.delta_bytes >= est.backward_peak_bytes - est.params_bytes - est.input_bytes
    assert large.delta_bytes - small.delta_bytes >= 0.8 * (7 / 8) * est.activation_bytes
    assert math.isfinite(large.seconds) and large.seconds > 0


@pytest.mark.parametrize("onednn, expected", [(False, "0"), (True, "1")])
def test_run_probe_switches_onednn(monkeypatch, onednn, expected):
    seen = {}

    def fake_run(command, **kwargs):
        seen["env"] = kwargs["env"]
        return subprocess.CompletedProcess(command, 0, stdout='noise\n{"ok": 1}\n', stderr="")

    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "1" if not onednn else "0")  # the caller's value is overridden
    monkeypatch.setattr(memory.subprocess, "run", fake_run)
    assert memory.run_probe("any.module", {}, onednn=onednn) == {"ok": 1}
    assert seen["env"]["TF_ENABLE_ONEDNN_OPTS"] == expected


def test_measure_peak_reports_child_failure():
    with pytest.raises(RuntimeError, match="memory probe failed"):
        memory.measure_peak("cnn_helpers.models:no_such_builder", "predict", 1)


def test_all_outputs_bytes_counts_every_branch_by_hand():
    inputs = keras.Input((6, 6, 3))
    a = layers.Conv2D(4, 3, padding="same")(inputs)
    b = layers.Conv2D(2, 1)(inputs)
    merged = layers.Concatenate()([a, b])
    model = keras.Model(inputs, layers.ReLU()(merged))
    per_image = 36 * (4 + 2 + 6 + 6)
    assert memory.all_outputs_bytes(model, batch_size=3, dtype_bytes=2) == 3 * 2 * per_image
    chain = models.question2_cnn()
    assert memory.all_outputs_bytes(chain) == memory.estimate(chain).activation_bytes
    with pytest.raises(ValueError, match="batch_size"):
        memory.all_outputs_bytes(model, batch_size=0)
