"""Tests of cnn_helpers.upsampling against hand-computed cases and Keras."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from cnn_helpers import upsampling


def test_checkerboard_energy():
    yy, xx = np.mgrid[0:8, 0:8]
    board = (-1.0) ** (yy + xx)
    smooth = np.sin(2 * np.pi * xx / 8)
    energy = upsampling.checkerboard_energy(np.stack([board, smooth, board + smooth]))
    assert energy[0] == pytest.approx(1.0)
    assert energy[1] == pytest.approx(0.0, abs=1e-12)
    assert 0 < energy[2] < 1
    # orthogonal patterns: their powers add (Parseval)
    assert energy[2] == pytest.approx((board**2).sum() / ((board**2).sum() + (smooth**2).sum()))
    noise = np.random.default_rng(0).normal(size=(400, 16, 16))
    assert upsampling.checkerboard_energy(noise).mean() == pytest.approx(3 / 255, rel=0.15)
    with pytest.raises(ValueError, match="even"):
        upsampling.checkerboard_energy(np.zeros((1, 7, 8)))


@pytest.mark.parametrize("kind", upsampling.UPSAMPLERS)
def test_dcgan_generator_shapes(kind):
    model = upsampling.dcgan_generator(kind)
    out = model(np.zeros((2, 100), "float32"), training=False).numpy()
    assert out.shape == (2, 28, 28, 1)
    assert np.abs(out).max() <= 1
    assert "bn" not in model.layers[-2].name  # no batch norm on the output layer


def test_resize_convolution_has_no_checkerboard_on_a_constant_input():
    inputs = keras.Input((4, 4, 1))
    for kind, flat in (("resize", True), ("transpose3", False)):
        keras.utils.set_random_seed(1)
        model = keras.Model(inputs, upsampling.upsample(inputs, 1, kind, "up"))
        out = model(np.ones((1, 4, 4, 1), "float32")).numpy()[0, 2:-2, 2:-2, 0]  # interior
        assert np.allclose(out, out[0, 0], atol=1e-6) == flat


def test_upsample_rejects_unknown_kind():
    with pytest.raises(ValueError, match="kind"):
        upsampling.upsample(keras.Input((4, 4, 1)), 1, "bicubic", "up")
