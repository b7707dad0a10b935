"""cnn_helpers.memory against Keras itself: output sizes, parameters, and real activation tensors."""

from __future__ import annotations

import math

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


def test_question2_wrong_readings():
    assert models.question2_cnn(filters=(400, 200, 100)).count_params() == 911_500


# ------------------------------------------------------------------------- generated chains vs Keras

LAYER_KINDS = ("conv", "pool", "bn", "relu", "dropout", "depthwise")


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
    spec["functional"] = draw(st.booleans())
    return spec


def build(spec):
    stack = [keras.Input(shape=spec["input"])]
    for kind, args in spec["layers"]:
        if kind == "conv":
            filters, kernel, stride, bias = args
            stack.append(layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=bias))
        elif kind == "pool":
            stack.append(layers.MaxPooling2D(2, padding=args[0]))
        elif kind == "depthwise":
            stack.append(layers.DepthwiseConv2D(3, padding="same", depth_multiplier=args[0]))
        elif kind == "bn":
            stack.append(layers.BatchNormalization())
        elif kind == "relu":
            stack.append(layers.ReLU())
        elif kind == "dropout":
            stack.append(layers.Dropout(0.5))
        else:
            stack += [layers.Flatten(), layers.Dense(args[0])]
    if not spec["functional"]:
        return keras.Sequential(stack)
    inputs = x = stack[0]
    for layer in stack[1:]:
        x = layer(x)
    return keras.Model(inputs, x)


@given(spec=chain_specs(), batch_size=st.integers(1, 3), dtype_bytes=st.sampled_from((2, 4)))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_estimate_matches_real_tensors(spec, batch_size, dtype_bytes):
    model = build(spec)
    est = memory.estimate(model, batch_size=batch_size, dtype_bytes=dtype_bytes)
    assert est.total_params == model.count_params()
    assert sum(row.params for row in est.layers) == model.count_params()

    # Run the model and weigh every layer's real output tensor (float32: 4 bytes per number).
    chain = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    probe = keras.Model(model.inputs, [layer.output for layer in chain])
    x = np.zeros((batch_size, *model.inputs[0].shape[1:]), dtype="float32")
    outputs = probe.predict(x, verbose=0)
    outputs = outputs if isinstance(outputs, list) else [outputs]
    real = [np.asarray(o).nbytes // 4 * dtype_bytes for o in outputs]
    assert [row.activation_bytes for row in est.layers] == real
    assert [(batch_size, *row.output_shape) for row in est.layers] == [o.shape for o in outputs]
    assert est.activation_bytes == sum(real)
    assert est.input_bytes == x.nbytes // 4 * dtype_bytes

    sizes = [x.nbytes // 4 * dtype_bytes] + real
    assert est.inference_peak_bytes == est.params_bytes + max(a + b for a, b in zip(sizes, sizes[1:]))
    assert est.training_bytes == est.input_bytes + est.activation_bytes + 2 * est.params_bytes


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
    assert large.delta_bytes - small.delta_bytes >= 0.8 * (7 / 8) * est.activation_bytes
    assert math.isfinite(large.seconds) and large.seconds > 0


def test_measure_peak_reports_child_failure():
    with pytest.raises(RuntimeError, match="memory probe failed"):
        memory.measure_peak("cnn_helpers.models:no_such_builder", "predict", 1)
