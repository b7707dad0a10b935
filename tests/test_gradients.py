"""Tests of cnn_helpers.gradients: backprop formulas against numpy_cnn.conv2d_backward and tf.GradientTape."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from cnn_helpers import gradients, numpy_cnn


def tape_conv(x, kernel, strides, upstream):
    x, kernel = tf.constant(x), tf.constant(kernel)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, kernel])
        y = tf.nn.conv2d(x, kernel, strides, "VALID")
        loss = tf.reduce_sum(y * upstream)
    return tape.gradient(loss, x).numpy(), tape.gradient(loss, kernel).numpy()


@pytest.mark.parametrize(("size", "k", "s"), [(9, 3, 1), (9, 3, 2), (10, 3, 2), (8, 2, 3), (7, 1, 1)])
def test_conv_gradients_match_tape_and_numpy_cnn(size, k, s):
    rng = np.random.default_rng(size * 10 + k + s)
    x = rng.normal(size=(2, size, size + 1, 3))
    kernel = rng.normal(size=(k, k, 3, 4))
    out = numpy_cnn.conv2d(x, kernel, strides=s)
    upstream = rng.normal(size=out.shape)
    gx_tape, gk_tape = tape_conv(x, kernel, s, upstream)
    gx_ref, gk_ref, _ = numpy_cnn.conv2d_backward(upstream, x, kernel, strides=s)
    gk = gradients.conv2d_kernel_gradient(x, upstream, k, s)
    gx = gradients.conv2d_input_gradient(upstream, kernel, x.shape[1:3], s)
    np.testing.assert_allclose(gk, gk_tape, atol=1e-9)
    np.testing.assert_allclose(gx, gx_tape, atol=1e-9)
    np.testing.assert_allclose(gk, gk_ref, atol=1e-9)
    np.testing.assert_allclose(gx, gx_ref, atol=1e-9)


def test_input_gradient_is_conv2d_transpose():
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(3, 3, 2, 5))
    upstream = rng.normal(size=(1, 4, 4, 5))
    ours = gradients.conv2d_input_gradient(upstream, kernel, (9, 9), 2)
    theirs = tf.nn.conv2d_transpose(upstream, kernel, (1, 9, 9, 2), 2, "VALID").numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-9)


def test_dilate():
    g = np.arange(4.0).reshape(1, 2, 2, 1)
    d = gradients.dilate(g, 2)
    assert d.shape == (1, 3, 3, 1)
    np.testing.assert_array_equal(d[0, :, :, 0], [[0, 0, 1], [0, 0, 0], [2, 0, 3]])
    np.testing.assert_array_equal(gradients.dilate(g, 1), g)
    with pytest.raises(ValueError, match="strides"):
        gradients.dilate(g, 0)


@pytest.mark.parametrize(("pool", "stride"), [(3, 2), (2, 2), (3, 1)])
def test_max_pool_backward_matches_tape(pool, stride):
    rng = np.random.default_rng(pool + stride)
    x = rng.normal(size=(2, 9, 9, 3))
    out = numpy_cnn.max_pool2d(x, pool, stride)
    upstream = rng.normal(size=out.shape)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        loss = tf.reduce_sum(tf.nn.max_pool2d(xt, pool, stride, "VALID") * upstream)
    np.testing.assert_allclose(gradients.max_pool2d_backward(x, upstream, pool, stride),
                               tape.gradient(loss, xt).numpy(), atol=1e-12)


def test_max_pool_backward_accumulates_shared_maxima():
    x = np.zeros((1, 5, 5, 1))
    x[0, 2, 2, 0] = 9.0  # the centre belongs to all four 3x3/s2 windows
    g = gradients.max_pool2d_backward(x, np.ones((1, 2, 2, 1)), 3, 2)
    assert g[0, 2, 2, 0] == 4.0 and g.sum() == 4.0


def test_shape_errors_name_the_argument():
    with pytest.raises(ValueError, match="grad_out"):
        gradients.conv2d_kernel_gradient(np.zeros((1, 5, 5, 1)), np.zeros((1, 4, 4, 2)), 3)
    with pytest.raises(ValueError, match="grad_out"):
        gradients.conv2d_input_gradient(np.zeros((1, 4, 4, 2)), np.zeros((3, 3, 1, 2)), (5, 5))
    with pytest.raises(ValueError, match="kernel_size"):
        gradients.conv2d_kernel_gradient(np.zeros((1, 5, 5, 1)), np.zeros((1, 3, 3, 2)), 0)


def test_conv_stack_structure():
    keras.utils.set_random_seed(0)
    m = gradients.conv_stack(3, width=4, batch_norm=True, residual=True, input_shape=(8, 8, 1))
    convs = [layer.name for layer in m.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convs == [f"conv_{i}" for i in range(1, 8)]
    assert sum(isinstance(layer, keras.layers.Add) for layer in m.layers) == 3
    assert m.output.shape[-1] == 10
    plain = gradients.conv_stack(3, width=4, input_shape=(8, 8, 1))
    assert not any(isinstance(layer, keras.layers.Add) for layer in plain.layers)
    # independent draws per layer, even from one initializer object
    init = keras.initializers.HeNormal()
    m2 = gradients.conv_stack(1, width=4, kernel_initializer=init, input_shape=(8, 8, 1))
    k2, k3 = m2.get_layer("conv_2").kernel.numpy(), m2.get_layer("conv_3").kernel.numpy()
    assert not np.allclose(k2, k3)
    with pytest.raises(ValueError, match="units"):
        gradients.conv_stack(0)


def test_dead_channel_fraction():
    a = np.ones((3, 2, 2, 4))
    a[..., 1] = 0.0
    a[0, 0, 0, 2] = 0.0  # dead only at one position: alive
    assert gradients.dead_channel_fraction(a) == 0.25
    with pytest.raises(ValueError, match="activations"):
        gradients.dead_channel_fraction(np.ones(3))


def test_activation_gradient_norms_replays_the_stack():
    rng = np.random.default_rng(0)
    x = rng.random((4, 8, 8, 1)).astype("float32")
    y = np.array([0, 1, 2, 3])
    for bn, res in ((False, False), (True, True)):
        keras.utils.set_random_seed(0)
        stack = gradients.conv_stack(2, width=4, batch_norm=bn, residual=res, input_shape=(8, 8, 1))
        norms = gradients.activation_gradient_norms(stack, x, y)
        assert norms.shape == (5,)
        # the replay computes the model's own logits: the last activation's gradient matches a direct tape
        last = keras.Model(stack.input, stack.get_layer("act_5").output)
        head = keras.Sequential([stack.get_layer("pool"), stack.get_layer("logits")])
        h = tf.constant(np.asarray(last(x, training=True)))
        with tf.GradientTape() as tape:
            tape.watch(h)
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, head(h))
        assert norms[-1] == pytest.approx(float(tf.norm(tape.gradient(loss, h))), rel=1e-4)
    with pytest.raises(ValueError, match="stack"):
        gradients.activation_gradient_norms(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]), x, y)


def _scale_logits(stack: keras.Model, factor: float, start: np.ndarray) -> None:
    stack.get_layer("logits").kernel.assign(start * factor)


def test_gradient_norms_survive_float32_underflow():
    """Gradients of ~1e-30 are normal float32 numbers, but their squares underflow: the norm must not be 0."""
    from cnn_helpers import architectures

    rng = np.random.default_rng(1)
    x = rng.random((4, 8, 8, 1)).astype("float32")
    y = np.array([0, 1, 2, 3])
    keras.utils.set_random_seed(0)
    stack = gradients.conv_stack(1, width=4, input_shape=(8, 8, 1))
    start = stack.get_layer("logits").kernel.numpy()
    norms = {}
    for factor in (1e-12, 1e-27):  # logits ≈ 0 either way: every gradient is proportional to the factor
        _scale_logits(stack, factor, start)
        norms[factor] = (
            gradients.activation_gradient_norms(stack, x, y),
            architectures.kernel_gradient_norms(stack, x, y),
        )
    for small, large in zip(norms[1e-27], norms[1e-12]):
        assert np.all(small > 0)
        np.testing.assert_allclose(small, large * 1e-15, rtol=1e-3)
