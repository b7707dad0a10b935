"""Tests of cnn_helpers.architectures against Keras's count_params and independent hand formulas."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from cnn_helpers import architectures as arch


def _single(layer: keras.layers.Layer, input_shape: tuple[int, ...]) -> keras.Model:
    inputs = keras.Input(shape=input_shape)
    return keras.Model(inputs, layer(inputs))


def test_layer_macs_by_hand():
    assert arch.count_macs(_single(keras.layers.Conv2D(8, 3, padding="same"), (10, 12, 4))) == 10 * 12 * 8 * 9 * 4
    assert arch.count_macs(_single(keras.layers.Conv2D(8, 3, strides=2), (11, 11, 4))) == 5 * 5 * 8 * 9 * 4
    assert arch.count_macs(_single(keras.layers.Conv2D(8, 1, groups=2), (6, 6, 4))) == 6 * 6 * 8 * 4 // 2
    assert arch.count_macs(_single(keras.layers.DepthwiseConv2D(3, depth_multiplier=2), (7, 7, 5))) == (
        5 * 5 * 10 * 9
    )
    assert arch.count_macs(_single(keras.layers.SeparableConv2D(16, 3, padding="same"), (7, 7, 5))) == (
        7 * 7 * 5 * 9 + 7 * 7 * 5 * 16
    )
    assert arch.count_macs(_single(keras.layers.Dense(7), (3, 5))) == 3 * 5 * 7
    assert arch.count_macs(_single(keras.layers.MaxPooling2D(2), (4, 4, 3))) == 0


def test_count_macs_rejects_non_models():
    with pytest.raises(ValueError, match="model"):
        arch.count_macs("not a model")


def test_lenet5_and_alexnet_parameters_by_hand():
    lenet = arch.lenet5()
    c1, c3, c5 = (25 * 1 + 1) * 6, (25 * 6 + 1) * 16, (25 * 16 + 1) * 120
    assert lenet.count_params() == c1 + c3 + c5 + (120 + 1) * 84 + (84 + 1) * 10 == 61_706
    assert arch.count_macs(lenet) == 28 * 28 * 6 * 25 + 10 * 10 * 16 * 25 * 6 + 120 * 25 * 16 + 120 * 84 + 84 * 10
    alex = arch.alexnet()
    assert alex.count_params() == 62_378_344
    assert alex.outputs[0].shape[1:] == (1000,)
    assert alex.get_layer("pool5").output.shape[1:] == (6, 6, 256)


def test_inception_module_by_hand():
    kwargs = dict(f1=64, f3_reduce=96, f3=128, f5_reduce=16, f5=32, f_pool=32)
    with_b = arch.block_model(arch.inception_module, (28, 28, 192), "with", **kwargs)
    naive = arch.block_model(arch.inception_module, (28, 28, 192), "naive", bottleneck=False, **kwargs)
    assert with_b.output.shape[1:] == (28, 28, 256)
    assert naive.output.shape[1:] == (28, 28, 64 + 128 + 32 + 192)
    weights = 192 * 64 + 192 * 96 + 9 * 96 * 128 + 192 * 16 + 25 * 16 * 32 + 192 * 32
    assert with_b.count_params() == weights + 64 + 96 + 128 + 16 + 32 + 32
    assert arch.count_macs(with_b) == 28 * 28 * weights
    assert arch.count_macs(naive) == 28 * 28 * (192 * 64 + 9 * 192 * 128 + 25 * 192 * 32)


def test_residual_units_by_hand():
    identity = arch.block_model(arch.residual_unit, (14, 14, 64), "id", filters=64)
    assert identity.count_params() == 2 * 9 * 64 * 64 + 2 * 4 * 64
    proj = arch.block_model(arch.residual_unit, (14, 14, 64), "proj", filters=128, strides=2)
    assert proj.output.shape[1:] == (7, 7, 128)
    assert proj.count_params() == 9 * 64 * 128 + 9 * 128 * 128 + 64 * 128 + 3 * 4 * 128
    assert arch.count_macs(proj) == 7 * 7 * (9 * 64 * 128 + 9 * 128 * 128 + 64 * 128)
    bottleneck = arch.block_model(arch.bottleneck_residual_unit, (14, 14, 256), "b", filters=64)
    assert bottleneck.count_params() == 256 * 64 + 9 * 64 * 64 + 64 * 256 + 4 * (64 + 64 + 256)
    with pytest.raises(ValueError, match="filters"):
        arch.block_model(arch.bottleneck_residual_unit, (14, 14, 100), "bad", filters=64)


def test_residual_unit_identity_passes_input_when_branch_is_zero():
    model = arch.block_model(arch.residual_unit, (6, 6, 8), "id", filters=8)
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
    x = np.random.default_rng(0).uniform(0, 1, (2, 6, 6, 8)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), x, rtol=1e-6)


def test_se_block_rescales_channels():
    model = arch.block_model(arch.se_block, (5, 5, 32), "se", ratio=8)
    assert model.count_params() == 32 * 4 + 4 + 4 * 32 + 32
    x = np.random.default_rng(1).normal(size=(1, 5, 5, 32)).astype("float32")
    y = model.predict(x, verbose=0)
    scale = y / x
    assert np.allclose(scale, scale[:, :1, :1, :], rtol=1e-4)  # one factor per channel
    assert np.all((scale > 0) & (scale < 1))
    with pytest.raises(ValueError, match="ratio"):
        arch.block_model(arch.se_block, (5, 5, 32), "se", ratio=5)


def test_compound_scaling():
    s0 = arch.compound_scaling(0)
    assert (s0.depth, s0.width, s0.resolution, s0.flops) == (1, 1, 1, 1)
    s2 = arch.compound_scaling(2)
    assert s2.depth == pytest.approx(1.44) and s2.width == pytest.approx(1.21)
    assert s2.resolution == pytest.approx(1.3225)
    assert s2.flops == pytest.approx(s2.depth * s2.width**2 * s2.resolution**2)
    assert abs(arch.compound_scaling(3).flops / 8 - 1) < 0.15
    with pytest.raises(ValueError, match="phi"):
        arch.compound_scaling(-1)
    with pytest.raises(ValueError, match="beta"):
        arch.compound_scaling(1, beta=0.9)


def test_scaled_stack_macs_follow_formula():
    s = arch.compound_scaling(1)
    model = arch.scaled_stack(2, 16, 32, s)
    d, w, r = 3, round(16 * 1.1), round(32 * 1.15)
    assert len(model.layers) == d
    assert arch.count_macs(model) == r * r * w * 9 * 3 + (d - 1) * r * r * w * 9 * w
    with pytest.raises(ValueError, match="width"):
        arch.plain_conv_stack(1, 0, 8)
