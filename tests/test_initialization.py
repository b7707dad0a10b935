"""Tests of cnn_helpers.initialization: fans, variances (checked by sampling), defaults, activation RMS."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from cnn_helpers import gradients, initialization


def test_fans():
    assert initialization.fans((3, 3, 32, 64)) == (288, 576)
    assert initialization.fans((100, 10)) == (100, 10)
    with pytest.raises(ValueError, match="kernel_shape"):
        initialization.fans((5,))


@pytest.mark.parametrize(
    ("scheme", "initializer"),
    [
        ("glorot", keras.initializers.GlorotUniform(seed=1)),
        ("glorot", keras.initializers.GlorotNormal(seed=1)),
        ("he", keras.initializers.HeNormal(seed=1)),
        ("he", keras.initializers.HeUniform(seed=1)),
        ("lecun", keras.initializers.LecunNormal(seed=1)),
        ("torch_default", None),
    ],
)
def test_sampled_variance_matches_formula(scheme, initializer):
    shape = (3, 3, 64, 128)
    initializer = initializer or initialization.torch_default()
    sample = np.asarray(initializer(shape))
    expected = initialization.expected_variance(scheme, shape)
    assert sample.var() == pytest.approx(expected, rel=0.03)


def test_torch_default_bound():
    w = np.asarray(initialization.torch_default()((3, 3, 16, 32)))
    assert np.abs(w).max() <= 1 / np.sqrt(9 * 16)
    assert np.abs(w).max() > 0.95 / np.sqrt(9 * 16)
    with pytest.raises(ValueError, match="scheme"):
        initialization.expected_variance("xavier", (3, 3))


def test_keras_defaults_are_glorot_uniform():
    assert initialization.default_initializers(keras.layers.Conv2D(4, 3)) == {
        "kernel_initializer": "GlorotUniform", "bias_initializer": "Zeros"}
    assert initialization.default_initializers(keras.layers.Dense(4))["kernel_initializer"] == "GlorotUniform"
    with pytest.raises(ValueError, match="layer"):
        initialization.default_initializers(keras.layers.ReLU())


def test_activation_rms_he_keeps_glorot_shrinks():
    x = np.random.default_rng(0).normal(size=(8, 12, 12, 1)).astype("float32")
    keras.utils.set_random_seed(0)
    he = initialization.activation_rms(gradients.conv_stack(4, width=32, input_shape=(12, 12, 1)), x)
    keras.utils.set_random_seed(0)
    gl = initialization.activation_rms(
        gradients.conv_stack(4, width=32, kernel_initializer="glorot_uniform", input_shape=(12, 12, 1)), x)
    assert len(he) == 9
    assert 0.3 < he[-1] / he[1] < 3.0
    assert gl[-1] / gl[1] < 0.1
    with pytest.raises(ValueError, match="model"):
        initialization.activation_rms(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]), x)
