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


def test_lenet5_original_matches_the_paper():
    model = arch.lenet5_original()
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    # LeCun et al. (1998), Section II.B: C1 156, S2 12, C3 1,516, S4 32, C5 48,120, F6 10,164
    assert [model.get_layer(n).count_params() for n in ("C1", "S2", "C3", "S4", "C5", "F6")] == [
        156, 12, 1516, 32, 48_120, 10_164
    ]
    assert trainable == 60_000 and model.count_params() == 60_000 + 84 * 10
    # connections the paper quotes: C3 151,600 (weights and bias per output unit), whole net 340,908
    assert arch.layer_macs(model.get_layer("C3")) + 10 * 10 * 16 == 151_600
    assert sum(len(row) for row in arch.LENET5_C3_TABLE) == 60
    y = model.predict(np.zeros((2, 32, 32, 1), "float32"), verbose=0)
    assert y.shape == (2, 10) and np.all(y >= 0)  # squared distances


def test_connection_table_conv_computes_only_listed_maps():
    table = [(0,), (1, 2), (0, 1, 2)]
    layer = arch.ConnectionTableConv2D(table, 3)
    model = _single(layer, (5, 5, 3))
    assert model.count_params() == 9 * 6 + 3
    x = np.random.default_rng(2).normal(size=(1, 5, 5, 3)).astype("float32")
    y = model.predict(x, verbose=0)
    # the same convolution with a dense kernel that is zero where the table has no connection
    kernel = np.zeros((3, 3, 3, 3), "float32")
    flat = layer.kernel.numpy()
    slot = 0
    for j, row in enumerate(table):
        for i in row:
            kernel[:, :, i, j] = flat[:, :, slot]
            slot += 1
    dense = _single(keras.layers.Conv2D(3, 3), (5, 5, 3))
    dense.layers[-1].set_weights([kernel, layer.bias.numpy()])
    np.testing.assert_allclose(y, dense.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    assert arch.count_macs(model) == 3 * 3 * 9 * 6
    with pytest.raises(ValueError, match="table"):
        arch.ConnectionTableConv2D([(0, 0)], 3)
    with pytest.raises(ValueError, match="table"):
        _single(arch.ConnectionTableConv2D([(5,)], 3), (5, 5, 3))


def test_euclidean_rbf_is_a_squared_distance():
    layer = arch.EuclideanRBF(4)
    model = _single(layer, (6,))
    x = np.random.default_rng(3).normal(size=(3, 6)).astype("float32")
    centres = layer.centres.numpy()
    expected = ((x[:, :, None] - centres[None]) ** 2).sum(axis=1)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5)
    assert set(np.unique(centres)) == {-1.0, 1.0} and not layer.trainable_weights
    assert arch.count_macs(model) == 6 * 4
    with pytest.raises(ValueError, match="units"):
        arch.EuclideanRBF(0)


def test_grouped_alexnet_is_the_papers_count():
    alex = arch.alexnet(grouped=True)
    convs = [(55, 96, 11, 3, 1), (27, 256, 5, 96, 2), (13, 384, 3, 256, 1), (13, 384, 3, 384, 2), (13, 256, 3, 384, 2)]
    dense = [(6 * 6 * 256, 4096), (4096, 4096), (4096, 1000)]
    params = sum((k * k * c_in // g + 1) * c_out for _, c_out, k, c_in, g in convs) + sum(
        (n_in + 1) * n_out for n_in, n_out in dense
    )
    macs = sum(s * s * c_out * k * k * c_in // g for s, c_out, k, c_in, g in convs) + sum(a * b for a, b in dense)
    assert alex.count_params() == params == 60_965_224
    assert arch.count_macs(alex) == macs
    assert alex.get_layer("conv2").count_params() == 5 * 5 * 48 * 256 + 256
    # dropout acts on the outputs of fc6 and fc7, as in the paper
    names = [layer.name for layer in alex.layers]
    assert names.index("drop6") == names.index("fc6") + 1 and names.index("drop7") == names.index("fc7") + 1


def test_googlenet_follows_table_1():
    net = arch.googlenet()
    assert net.output.shape[1:] == (1000,)
    concat = [layer for layer in net.layers if isinstance(layer, keras.layers.Concatenate)]
    assert [int(c.output.shape[-1]) for c in concat] == [256, 480, 512, 512, 512, 528, 832, 832, 1024]
    assert [int(c.output.shape[1]) for c in concat] == [28, 28, 14, 14, 14, 14, 14, 7, 7]
    keys = ("f1", "f3_reduce", "f3", "f5_reduce", "f5", "f_pool")
    kwargs = dict(zip(keys, arch.GOOGLENET_INCEPTION["3a"]))
    first = arch.block_model(arch.inception_module, (28, 28, 192), "3a", **kwargs)
    assert arch.count_macs(first) == 128_049_152  # Table 1: 128M ops for inception (3a)
    flat = arch.googlenet(global_pooling=False)
    assert flat.count_params() - net.count_params() == (7 * 7 - 1) * 1024 * 1000


def test_resnet_builders():
    r50 = arch.resnet(use_bias=True)
    reference = keras.applications.ResNet50(weights=None)
    mine, keras_r50 = arch.cost(r50), arch.cost(reference)
    assert (mine.params, mine.macs) == (keras_r50.params, keras_r50.macs) == (25_636_712, 3_857_973_248)
    r34 = arch.resnet(bottleneck=False)
    assert r34.name == "resnet34" and r34.output.shape[1:] == (1000,)
    se = arch.resnet(se_ratio=16)
    plain = arch.resnet()
    widths = [(3, 256), (4, 512), (6, 1024), (3, 2048)]
    se_params = sum(n * (c * (c // 16) + c // 16 + (c // 16) * c + c) for n, c in widths)
    assert se.count_params() - plain.count_params() == se_params
    with pytest.raises(ValueError, match="units"):
        arch.resnet(units=(3, 4, 6))


def test_bottleneck_unit_projection_and_se():
    proj = arch.block_model(arch.bottleneck_residual_unit, (14, 14, 256), "p", filters=128, strides=2)
    assert proj.output.shape[1:] == (7, 7, 512)
    assert proj.count_params() == 256 * 128 + 9 * 128 * 128 + 128 * 512 + 256 * 512 + 4 * (128 + 128 + 512 + 512)
    plain = arch.block_model(arch.bottleneck_residual_unit, (14, 14, 256), "b", filters=64)
    se = arch.block_model(arch.bottleneck_residual_unit, (14, 14, 256), "s", filters=64, se_ratio=16)
    assert se.count_params() - plain.count_params() == 256 * 16 + 16 + 16 * 256 + 256
    with pytest.raises(ValueError, match="projection"):
        arch.block_model(arch.residual_unit, (14, 14, 64), "bad", filters=128, projection=False)


def test_small_nets_plain_and_residual_share_their_parameters():
    for n in (1, 3):
        plain, residual = arch.small_net(n, residual=False), arch.small_net(n, residual=True)
        convs = [layer for layer in plain.layers if isinstance(layer, keras.layers.Conv2D)]
        assert len(convs) + 1 == 4 * n + 2 and plain.name == f"plain_{4 * n + 2}"
        assert plain.count_params() == residual.count_params()
        assert arch.count_macs(plain) == arch.count_macs(residual)
        assert residual.output.shape[1:] == (10,)
    adds = [layer for layer in arch.small_net(3, residual=True).layers if isinstance(layer, keras.layers.Add)]
    assert len(adds) == 6
    with pytest.raises(ValueError, match="width"):
        arch.small_net(2, residual=True, width=0)


def test_residual_net_with_zero_branches_passes_its_input():
    model = arch.small_net(1, residual=True, width=4, input_shape=(8, 8, 1))
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization) and layer.name != "stem_bn":
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([np.zeros_like(gamma), beta, mean, var])
    # every unit's branch is now zero: the stem's output flows through the shortcuts (subsampled, zero-padded)
    stem = keras.Model(model.inputs, model.get_layer("stem_relu").output)
    body = keras.Model(model.inputs, model.get_layer("pool").input)
    x = np.random.default_rng(4).normal(size=(2, 8, 8, 1)).astype("float32")
    s, b = stem.predict(x, verbose=0), body.predict(x, verbose=0)
    assert b.shape == (2, 2, 2, 8)
    np.testing.assert_allclose(b[..., :4], s[:, ::2, ::2, :], rtol=1e-5, atol=1e-6)
    assert np.all(b[..., 4:] == 0)
    plain = arch.small_net(1, residual=False, width=4, input_shape=(8, 8, 1))
    assert not any(isinstance(layer, keras.layers.Add) for layer in plain.layers)


def test_train_curve_learns_and_is_reproducible():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(256, 8, 8, 1)).astype("float32")
    y = (x.mean(axis=(1, 2, 3)) > 0).astype("int64")
    curves = []
    for _ in range(2):
        keras.utils.set_random_seed(0)
        model = arch.small_net(1, residual=True, width=4, input_shape=(8, 8, 1), n_classes=2)
        curves.append(arch.train_curve(model, x, y, steps=30, batch_size=32, learning_rate=0.05))
    first, second = curves
    assert first.loss.shape == first.error.shape == (30,)
    np.testing.assert_allclose(first.loss, second.loss, rtol=1e-5)
    assert first.loss[-5:].mean() < first.loss[:5].mean()
    assert np.all((first.error >= 0) & (first.error <= 1))
    with pytest.raises(ValueError, match="images"):
        arch.train_curve(model, x.astype("uint8"), y, steps=1)
    with pytest.raises(ValueError, match="batch_size"):
        arch.train_curve(model, x, y, steps=1, batch_size=1000)


def test_kernel_gradient_norms_one_per_conv():
    keras.utils.set_random_seed(0)
    model = arch.small_net(2, residual=False, width=4, input_shape=(8, 8, 1))
    x = np.random.default_rng(6).normal(size=(16, 8, 8, 1)).astype("float32")
    norms = arch.kernel_gradient_norms(model, x, np.arange(16) % 10)
    assert norms.shape == (9,) and np.all(norms > 0)
    with pytest.raises(ValueError, match="Conv2D"):
        arch.kernel_gradient_norms(_single(keras.layers.Dense(3), (4,)), np.zeros((1, 4), "float32"), [0])


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
        arch.block_model(arch.bottleneck_residual_unit, (14, 14, 100), "bad", filters=64, projection=False)


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


# ------------------------------------------------------------------ Part II: depth, filters, variants


def test_conv2d_transpose_macs_by_hand():
    model = _single(keras.layers.Conv2DTranspose(6, 3, strides=2, padding="same"), (5, 7, 4))
    assert arch.count_macs(model) == 5 * 7 * 4 * 9 * 6


def test_gap_classifier_parameters_and_validation():
    model = arch.gap_classifier([(16, 3, 1), (32, 3, 2)])
    assert model.count_params() == (9 + 1) * 16 + (9 * 16 + 1) * 32 + (32 + 1) * 10
    assert model.outputs[0].shape[1:] == (10,)
    with pytest.raises(ValueError, match="convs"):
        arch.gap_classifier([])
    with pytest.raises(ValueError, match="stride"):
        arch.gap_classifier([(16, 3, 0)])


@pytest.mark.parametrize("depth", [1, 2, 4, 5])
def test_tent_map_network_has_2_to_the_depth_pieces(depth):
    x = np.linspace(0.0, 1.0, 8001)
    y = arch.tent_map_network(depth).predict(x[:, None], verbose=0)[:, 0]
    # t applied depth times, computed independently in float64
    expected = x.copy()
    for _ in range(depth):
        expected = np.where(expected <= 0.5, 2 * expected, 2 - 2 * expected)
    np.testing.assert_allclose(y, expected, atol=1e-4)
    assert arch.count_linear_pieces(x, y) == 2**depth


def test_count_linear_pieces_on_known_functions_and_errors():
    x = np.linspace(-1, 1, 1001)
    assert arch.count_linear_pieces(x, 3 * x + 1) == 1
    assert arch.count_linear_pieces(x, np.abs(x)) == 2
    assert arch.count_linear_pieces(x, np.abs(x - 0.3001) + np.maximum(x, 0.5)) == 3
    with pytest.raises(ValueError, match="increasing"):
        arch.count_linear_pieces(x[::-1], x)
    with pytest.raises(ValueError, match="x, y"):
        arch.count_linear_pieces(x[:2], x[:2])


def test_conv_variants_parameters_and_macs_by_hand():
    c, n, g, d = 16, 8, 4, 2
    v = arch.conv_variants(c, n, groups=g, dilation=d)
    hw = n * n
    expected = {
        "standard 3×3": (9 * c * c, hw * 9 * c * c),
        f"grouped 3×3 (g={g})": (9 * c * c // g, hw * 9 * c * c // g),
        f"grouped 3×3 (g={g}), tf.nn.conv2d": (9 * c * c // g, hw * 9 * c * c // g),
        f"dilated 3×3 (d={d})": (9 * c * c, hw * 9 * c * c),
        "depthwise separable 3×3": (9 * c + c * c, hw * (9 * c + c * c)),
        "depthwise 7×7 + 1×1": (49 * c + c * c, hw * (49 * c + c * c)),
        "1×1 (pointwise)": (c * c, hw * c * c),
    }
    assert set(v) == set(expected)
    for name, (params, macs) in expected.items():
        assert (v[name].count_params(), arch.count_macs(v[name])) == (params, macs), name
        assert v[name].output.shape[1:] == (n, n, c)
    with pytest.raises(ValueError, match="groups"):
        arch.conv_variants(10, 8, groups=4)


def test_native_conv2d_computes_what_keras_grouped_conv2d_computes():
    v = arch.conv_variants(16, 8, groups=4)
    keras_grouped, native = v["grouped 3×3 (g=4)"], v["grouped 3×3 (g=4), tf.nn.conv2d"]
    assert isinstance(native.layers[-1], arch.NativeConv2D)
    rng = np.random.default_rng(3)
    native.set_weights([rng.normal(size=w.shape).astype("float32") for w in native.get_weights()])
    keras_grouped.set_weights(native.get_weights())
    x = rng.normal(size=(2, 8, 8, 16)).astype("float32")
    np.testing.assert_allclose(np.asarray(native(x)), np.asarray(keras_grouped(x)), atol=1e-4)
    # a dilated, strided, "valid" one too
    layer = keras.layers.Conv2D(8, 3, strides=2, dilation_rate=1, groups=2, padding="valid")
    twin = arch.NativeConv2D(8, 3, strides=2, dilation_rate=1, groups=2, padding="valid")
    a, b = _single(layer, (9, 9, 4)), _single(twin, (9, 9, 4))
    b.set_weights(a.get_weights())
    y = rng.normal(size=(1, 9, 9, 4)).astype("float32")
    np.testing.assert_allclose(np.asarray(b(y)), np.asarray(a(y)), atol=1e-4)


@pytest.mark.parametrize("identity", [True, False])
def test_fuse_repvgg_branches_equals_the_sum_of_branches(identity):
    rng = np.random.default_rng(0)
    c = 5
    x = rng.normal(size=(2, 9, 9, c)).astype("float32")
    conv3 = keras.layers.Conv2D(c, 3, padding="same")
    conv1 = keras.layers.Conv2D(c, 1)
    conv3.build((None, 9, 9, c))
    conv1.build((None, 9, 9, c))
    conv3.set_weights([rng.normal(size=(3, 3, c, c)), rng.normal(size=c)])
    conv1.set_weights([rng.normal(size=(1, 1, c, c)), rng.normal(size=c)])
    branches = np.asarray(conv3(x)) + np.asarray(conv1(x)) + (x if identity else 0)
    fused = keras.layers.Conv2D(c, 3, padding="same")
    fused.build((None, 9, 9, c))
    fused.set_weights(list(arch.fuse_repvgg_branches(*conv3.get_weights(), *conv1.get_weights(), identity)))
    np.testing.assert_allclose(np.asarray(fused(x)), branches, atol=1e-4)
    with pytest.raises(ValueError, match="identity"):
        arch.fuse_repvgg_branches(np.zeros((3, 3, 2, 3)), np.zeros(3), np.zeros((1, 1, 2, 3)), np.zeros(3), True)
    with pytest.raises(ValueError, match="kernel1"):
        arch.fuse_repvgg_branches(np.zeros((3, 3, 2, 3)), np.zeros(3), np.zeros((1, 1, 3, 3)), np.zeros(3), False)


def test_latency_seconds_times_every_model():
    v = arch.conv_variants(8, 8)
    times = arch.latency_seconds({k: v[k] for k in list(v)[:2]}, batch_size=2, rounds=2)
    assert list(times) == list(v)[:2] and all(t > 0 for t in times.values())
    with pytest.raises(ValueError, match="batch_size"):
        arch.latency_seconds(v, batch_size=0)


def test_conv_bn_stages_names_shapes_and_stage_dropout():
    inputs = keras.Input((28, 28, 1))
    out = arch.conv_bn_stages(inputs, ((4, 4), (8,)), stage_dropout=0.1, seed=3)
    model = keras.Model(inputs, out)
    names = [layer.name for layer in model.layers[1:]]
    assert names == ["conv1_1", "bn1_1", "relu1_1", "conv1_2", "bn1_2", "relu1_2", "pool1", "dropout1",
                     "conv2_1", "bn2_1", "relu2_1"]
    assert tuple(out.shape) == (None, 14, 14, 8)
    assert model.get_layer("dropout1").rate == 0.1 and model.get_layer("conv1_1").use_bias is False
    plain_in = keras.Input((28, 28, 1))
    plain = keras.Model(plain_in, arch.conv_bn_stages(plain_in, ((4,), (8,)), bn_momentum=0.5))
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in plain.layers)
    assert plain.get_layer("bn2_1").momentum == 0.5
    with pytest.raises(ValueError, match="stages="):
        arch.conv_bn_stages(inputs, ((4,), ()))
