"""Tests of cnn_helpers.fcn against Keras and direct NumPy computations."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from cnn_helpers import fcn


@pytest.fixture(scope="module")
def small_cnn():
    keras.utils.set_random_seed(0)
    return fcn.classifier_cnn(input_shape=(16, 16, 2), filters=(4, 6), dense_units=(5,), n_classes=3)


def test_dense_to_conv_kernel_matches_flatten_dot_product():
    rng = np.random.default_rng(0)
    block = rng.normal(size=(3, 4, 2))
    kernel = rng.normal(size=(24, 5))
    conv = fcn.dense_to_conv_kernel(kernel, (3, 4, 2))
    # A "valid" convolution whose kernel is as large as the block is one dot product per output map.
    by_conv = np.einsum("hwc,hwcu->u", block, conv)
    assert np.allclose(by_conv, block.reshape(-1) @ kernel)
    # Channels-first unrolling (PyTorch style) is a different mapping.
    wrong = kernel.reshape(2, 3, 4, 5).transpose(1, 2, 0, 3)
    assert not np.allclose(np.einsum("hwc,hwcu->u", block, wrong), by_conv)


def test_dense_to_conv_kernel_rejects_bad_arguments():
    with pytest.raises(ValueError, match="input_shape"):
        fcn.dense_to_conv_kernel(np.zeros((24, 5)), (3, 4, 3))
    with pytest.raises(ValueError, match="kernel"):
        fcn.dense_to_conv_kernel(np.zeros(24), (3, 4, 2))


def test_to_fcn_matches_cnn_on_original_size(small_cnn):
    x = np.random.default_rng(1).normal(size=(4, 16, 16, 2)).astype("float32")
    model_fcn = fcn.to_fcn(small_cnn)
    out = model_fcn(x).numpy()
    assert out.shape == (4, 1, 1, 3)
    assert np.allclose(out[:, 0, 0], small_cnn(x).numpy(), atol=1e-5)
    assert model_fcn.count_params() == small_cnn.count_params()


def test_to_fcn_equals_sliding_window(small_cnn):
    rng = np.random.default_rng(2)
    image = rng.normal(size=(24, 20, 2)).astype("float32")
    stride = fcn.total_stride(small_cnn)
    assert stride == 4
    model_fcn = fcn.to_fcn(small_cnn)
    dense_map = model_fcn(image[None]).numpy()[0]
    crops = fcn.sliding_windows(image, 16, stride)
    assert crops.shape[:2] == dense_map.shape[:2] == (3, 2)
    by_cnn = small_cnn(crops.reshape(-1, 16, 16, 2)).numpy().reshape(dense_map.shape)
    assert np.allclose(dense_map, by_cnn, atol=1e-5)


def _chain_layers():
    from keras import layers

    return [layers.Conv2D(4, 5, activation="relu"), layers.MaxPooling2D(2), layers.Conv2D(6, 3),
            layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(5, activation="relu"), layers.Dense(3)]


def _built(how: str):
    """The same chain built the three ways Keras code builds one."""
    keras.utils.set_random_seed(0)
    if how == "list":
        return keras.Sequential([keras.Input((28, 28, 1)), *_chain_layers()])
    if how == "add":
        model = keras.Sequential([keras.Input((28, 28, 1))])
        for layer in _chain_layers():
            model.add(layer)
        return model
    inputs = keras.Input((28, 28, 1))
    x = inputs
    for layer in _chain_layers():
        x = layer(x)
    return keras.Model(inputs, x)


@pytest.mark.parametrize("how", ["list", "add", "functional"])
def test_helpers_accept_a_chain_however_it_was_built(how):
    model = _built(how)
    x = np.random.default_rng(4).normal(size=(3, 28, 28, 1)).astype("float32")
    model_fcn = fcn.to_fcn(model)
    assert np.allclose(model_fcn(x).numpy()[:, 0, 0], model(x).numpy(), atol=1e-5)
    assert model_fcn.count_params() == model.count_params()
    # conv1 5×5 (1), pool 2 (2), conv2 3×3 (2), pool 2 (4), then the 5×5 head: 28 pixels, stride 4.
    assert (fcn.receptive_field(model_fcn), fcn.total_stride(model_fcn)) == (28, 4)
    assert fcn.output_size(60, model_fcn) == (60 - 28) // 4 + 1
    per_layer = [r.macs for r in fcn.macs(model, (28, 28, 1))]
    assert per_layer == [24 * 24 * 25 * 4, 10 * 10 * 9 * 4 * 6, 150 * 5, 5 * 3]


def test_same_padding_breaks_sliding_window_equivalence():
    keras.utils.set_random_seed(0)
    padded = fcn.classifier_cnn(input_shape=(16, 16, 2), filters=(4, 6), dense_units=(5,), n_classes=3,
                                padding="same")
    image = np.random.default_rng(3).normal(size=(20, 20, 2)).astype("float32")
    dense_map = fcn.to_fcn(padded)(image[None]).numpy()[0]
    crops = fcn.sliding_windows(image, 16, 4)
    by_cnn = padded(crops.reshape(-1, 16, 16, 2)).numpy().reshape(dense_map.shape)
    assert np.abs(dense_map - by_cnn).max() > 1e-3


@pytest.mark.parametrize("n", [14, 16, 17, 19, 24, 40])
def test_output_size_matches_keras(small_cnn, n):
    model_fcn = fcn.to_fcn(small_cnn)
    assert fcn.output_size(n, model_fcn) == model_fcn.compute_output_shape((1, n, n, 2))[1]


def test_receptive_field_and_output_formula(small_cnn):
    model_fcn = fcn.to_fcn(small_cnn)
    assert fcn.receptive_field(model_fcn) == 14  # the 16-pixel input's last 2 rows are dropped by floors
    for n in range(14, 60):
        assert fcn.output_size(n, model_fcn) == (n - 14) // 4 + 1
    keras.utils.set_random_seed(0)
    mnist_like = fcn.to_fcn(fcn.classifier_cnn(kernel_sizes=(5, 3)))
    assert fcn.receptive_field(mnist_like) == 28


def test_output_size_rejects_too_small_input(small_cnn):
    with pytest.raises(ValueError):
        fcn.output_size(13, fcn.to_fcn(small_cnn))


def test_macs_by_hand(small_cnn):
    rows = {r.name: r.macs for r in fcn.macs(small_cnn, (16, 16, 2))}
    assert rows == {
        "conv1": 14 * 14 * 9 * 2 * 4,
        "conv2": 5 * 5 * 9 * 4 * 6,
        "dense1": 2 * 2 * 6 * 5,
        "logits": 5 * 3,
    }
    model_fcn = fcn.to_fcn(small_cnn)
    same = [r.macs for r in fcn.macs(model_fcn, (16, 16, 2))]
    assert same == list(rows.values())
    # On a 20 × 20 image: 18 → 9 → 7 → 3, and the 2 × 2 head runs at 2 × 2 positions.
    big = fcn.macs(model_fcn, (20, 20, 2))
    assert big[-2].output_shape == (2, 2, 5) and big[-2].macs == 4 * 2 * 2 * 6 * 5


def test_sliding_windows_positions():
    image = np.arange(7 * 9).reshape(7, 9, 1)
    crops = fcn.sliding_windows(image, 3, 2)
    assert crops.shape == (3, 4, 3, 3, 1)
    assert np.array_equal(crops[1, 2], image[2:5, 4:7])
    with pytest.raises(ValueError, match="window"):
        fcn.sliding_windows(image, 8, 1)


def test_place_on_canvas():
    digits = np.ones((2, 2, 3, 1))
    canvas = fcn.place_on_canvas(digits, [(0, 0), (1, 2)], (4, 6))
    assert canvas.sum() == 12 - 1  # one overlapping pixel, max not sum
    assert canvas[1, 2, 0] == 1 and canvas[3, 5, 0] == 0
    with pytest.raises(ValueError, match="positions"):
        fcn.place_on_canvas(digits, [(0, 0), (3, 4)], (4, 6))


def test_to_fcn_rejects_model_without_flatten():
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3)])
    with pytest.raises(ValueError, match="model"):
        fcn.to_fcn(model)


def test_dilation_counts_in_output_size_macs_and_receptive_field():
    from keras import layers

    model = keras.Sequential([keras.Input((None, None, 1)), layers.Conv2D(2, 3, dilation_rate=3),
                              layers.MaxPooling2D(2), layers.Conv2D(4, 3, dilation_rate=2)])
    for n in (18, 20, 33):
        assert fcn.output_size(n, model) == model.compute_output_shape((1, n, n, 1))[1]
    assert fcn.receptive_field(model) == 1 + 2 * 3 + 1 + 2 * 2 * 2
    rows = fcn.macs(model, (20, 20, 1))
    assert rows[0].output_shape == (14, 14, 2) and rows[1].macs == 3 * 3 * 3 * 3 * 2 * 4
