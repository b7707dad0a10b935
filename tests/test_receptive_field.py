"""Tests of cnn_helpers.receptive_field against Keras, tf.nn.conv2d and input gradients."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from cnn_helpers import receptive_field as rf


def _conv(x: np.ndarray, k: int, s: int, d: int, padding) -> tuple[int, ...]:
    w = np.ones((k, k, 1, 1), np.float32)
    return tuple(tf.nn.conv2d(x, w, strides=s, padding=padding, dilations=d).shape)


def test_same_padding_is_tensorflows_and_puts_the_extra_pixel_after():
    assert rf.same_padding(6, 3, 2) == (0, 1)
    assert rf.same_padding(6, 4, 1) == (1, 2)
    assert rf.same_padding(7, 3, 2) == (1, 1)
    assert rf.same_padding(5, 1, 2) == (0, 0)
    rng = np.random.default_rng(0)
    for _ in range(40):
        n, k, s, d = int(rng.integers(3, 15)), int(rng.integers(1, 5)), int(rng.integers(1, 4)), int(rng.integers(1, 3))
        x = rng.normal(size=(1, n, n, 1)).astype(np.float32)
        w = rng.normal(size=(k, k, 1, 1)).astype(np.float32)
        before, after = rf.same_padding(n, k, s, d)
        same = tf.nn.conv2d(x, w, strides=s, padding="SAME", dilations=d).numpy()
        explicit = [[0, 0], [before, after], [before, after], [0, 0]]
        assert np.allclose(same, tf.nn.conv2d(x, w, strides=s, padding=explicit, dilations=d).numpy(), atol=1e-5)
        if before != after:  # the mirror image is a different convolution
            mirror = [[0, 0], [after, before], [after, before], [0, 0]]
            assert not np.allclose(same, tf.nn.conv2d(x, w, strides=s, padding=mirror, dilations=d).numpy())


def test_output_length_matches_keras_and_tf_nn():
    rng = np.random.default_rng(1)
    checked = 0
    while checked < 60:
        n, k, s, d = int(rng.integers(1, 20)), int(rng.integers(1, 6)), int(rng.integers(1, 4)), int(rng.integers(1, 4))
        p = (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
        x = np.zeros((1, n, n, 1), np.float32)
        if n + sum(p) >= rf.effective_kernel(k, d):
            explicit = [[0, 0], list(p), list(p), [0, 0]]
            assert rf.output_length(n, k, s, d, p) == _conv(x, k, s, d, explicit)[1]
        for padding in ("valid", "same"):
            if padding == "valid" and n < rf.effective_kernel(k, d):
                with pytest.raises(ValueError, match="kernel"):
                    rf.output_length(n, k, s, d, padding)
                continue
            expected = rf.output_length(n, k, s, d, padding)
            assert expected == _conv(x, k, s, d, padding.upper())[1]
            if s == 1 or d == 1:  # Keras refuses strides > 1 together with dilation > 1
                layer = layers.Conv2D(1, k, strides=s, dilation_rate=d, padding=padding)
                assert layer.compute_output_shape((1, n, n, 1))[1] == expected
        checked += 1


def test_output_length_rejects_bad_arguments():
    with pytest.raises(ValueError, match="padding"):
        rf.output_length(8, 3, padding="full")
    with pytest.raises(ValueError, match="stride"):
        rf.output_length(8, 3, stride=0)
    with pytest.raises(ValueError, match="dilation"):
        rf.effective_kernel(3, 0)
    assert rf.output_length(8, 3, padding=1) == 8


def _stack(how: str = "list"):
    keras.utils.set_random_seed(0)
    chain = [layers.Conv2D(3, 3, padding="same", activation="relu"),
             layers.Conv2D(3, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
             layers.Conv2D(3, 3, padding="same", activation="relu"),
             layers.Conv2D(3, 3, padding="same", dilation_rate=2)]
    if how == "list":
        return keras.Sequential([keras.Input((40, 40, 1)), *chain])
    if how == "add":
        model = keras.Sequential([keras.Input((40, 40, 1))])
        for layer in chain:
            model.add(layer)
        return model
    inputs = keras.Input((40, 40, 1))
    x = inputs
    for layer in chain:
        x = layer(x)
    return keras.Model(inputs, x)


@pytest.mark.parametrize("how", ["list", "add", "functional"])
def test_trace_by_hand(how):
    rows = rf.trace(_stack(how))
    assert [r.field for r in rows] == [3, 5, 6, 10, 18]
    assert [r.jump for r in rows] == [1, 1, 2, 2, 2]
    assert [r.size for r in rows] == [40, 40, 20, 20, 20]
    assert rows[-1].start == -1 - 1 - 2 - 2 * 2  # same paddings 1, 1, 0, 1 (× jump 2), 2 (× jump 2)
    assert rf.receptive_field(_stack(how)) == 18 and rf.jump(_stack(how)) == 2


@pytest.mark.parametrize("position", [(10, 10), (3, 12), (0, 0)])
def test_gradient_support_is_the_traced_window(position):
    model = _stack()
    last = rf.trace(model)[-1]
    images = np.random.default_rng(2).normal(size=(16, 40, 40, 1))
    top, left, height, width = rf.support(rf.input_gradient(model, images, position))
    # The window of output i covers start + i * jump ... start + i * jump + field - 1, clipped to the image.
    lo = [max(last.start + i * last.jump, 0) for i in position]
    hi = [min(last.start + i * last.jump + last.field, 40) for i in position]
    assert (top, left) == tuple(lo)
    assert (height, width) == (hi[0] - lo[0], hi[1] - lo[1])


def test_dilation_stacks_fields_and_holes():
    images = np.random.default_rng(3).normal(size=(4, 64, 64, 1))
    expected = {(1, 1, 1, 1): 9, (2, 2, 2, 2): 17, (1, 2, 4, 8): 31}
    holes = {}
    for dilations, field in expected.items():
        model = rf.conv_stack([3] * 4, dilations)
        grad = rf.input_gradient(model, images)
        assert rf.receptive_field(model) == field
        assert rf.support(grad)[2:] == (field, field)
        holes[dilations] = rf.hole_fraction(grad)
    assert holes[(1, 1, 1, 1)] == 0 and holes[(1, 2, 4, 8)] == 0
    # Four dilation-2 layers only ever read pixels an even distance from the centre: 81 of 17 × 17.
    assert holes[(2, 2, 2, 2)] == pytest.approx(1 - 81 / 17**2)


def test_branches_padding_and_cropping_against_gradients():
    keras.utils.set_random_seed(1)
    inputs = keras.Input((30, 30, 1))
    x = layers.ZeroPadding2D(((0, 1), (0, 1)))(inputs)
    x = layers.Conv2D(2, 3, strides=2, padding="valid", activation="relu")(x)
    a = layers.Conv2D(2, 3, padding="same")(x)
    b = layers.Conv2D(2, 5, padding="same")(x)
    b = layers.BatchNormalization()(b)
    y = layers.Add()([a, layers.Activation("relu")(b)])
    y = layers.Cropping2D(((1, 0), (1, 0)))(y)
    model = keras.Model(inputs, layers.Conv2D(3, 1)(y))
    last = rf.trace(model)[-1]
    assert (last.field, last.jump, last.size) == (3 + 4 * 2, 2, 14)
    grad = rf.input_gradient(model, np.random.default_rng(4).normal(size=(16, 30, 30, 1)), (6, 6))
    top, left, height, width = rf.support(grad)
    assert (top, height) == (last.start + 6 * last.jump, last.field)
    assert (left, width) == (top, height)


def test_axis_with_rectangular_kernel():
    model = keras.Sequential([keras.Input((20, 24, 1)), layers.Conv2D(1, (1, 5)),
                              layers.Conv2D(1, (3, 1), strides=(2, 1))])
    assert rf.receptive_field(model, axis=0) == 3 and rf.receptive_field(model, axis=1) == 5
    assert rf.trace(model, axis=1)[-1].size == 20 and rf.trace(model, axis=0)[-1].size == 9
    with pytest.raises(ValueError, match="axis"):
        rf.trace(model, axis=2)


@pytest.mark.parametrize("layer", [layers.Flatten(), layers.GlobalAveragePooling2D(), layers.Conv2DTranspose(1, 3),
                                   layers.UpSampling2D()])
def test_trace_refuses_layers_it_cannot_follow(layer):
    model = keras.Sequential([keras.Input((8, 8, 1)), layers.Conv2D(1, 3), layer])
    with pytest.raises(ValueError, match="model"):
        rf.receptive_field(model)


def test_support_holes_and_mass():
    g = np.zeros((9, 9))
    g[2:7:2, 1:8:3] = 1.0
    assert rf.support(g) == (2, 1, 5, 7)
    assert rf.hole_fraction(g) == pytest.approx(1 - 9 / 35)
    delta = np.zeros((7, 7))
    delta[3, 3] = 2.0
    assert rf.mass_side(delta, 0.9) == 1
    block = np.zeros((11, 11))
    block[3:8, 3:8] = 1.0
    assert rf.mass_side(block, 1.0) == 5 and rf.mass_side(block, 0.3) == 3
    with pytest.raises(ValueError, match="gradient"):
        rf.support(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="fraction"):
        rf.mass_side(block, 0)
