"""Tests of cnn_helpers.comparisons: formulas against Keras, shifts and invariance measures against NumPy."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from keras import layers

from cnn_helpers import comparisons


@pytest.mark.parametrize("inputs, units, use_bias", [(784, 150, True), (10_000, 1_000, True), (12, 5, False)])
def test_dense_params_match_keras(inputs, units, use_bias):
    model = keras.Sequential([keras.Input((inputs,)), layers.Dense(units, use_bias=use_bias)])
    assert comparisons.dense_params(inputs, units, use_bias) == model.count_params()


@pytest.mark.parametrize("kernel, c_in, filters, use_bias", [(3, 1, 32, True), (5, 3, 7, True), (2, 64, 64, False)])
def test_conv_params_match_keras(kernel, c_in, filters, use_bias):
    model = keras.Sequential([keras.Input((16, 16, c_in)), layers.Conv2D(filters, kernel, use_bias=use_bias)])
    assert comparisons.conv_params(kernel, c_in, filters, use_bias) == model.count_params()


def test_conv_macs_match_a_direct_count():
    # One output value is a dot product of k·k·C_in numbers: count the products of an explicit loop.
    out_h, out_w, k, c_in, c_out = 3, 4, 2, 5, 6
    products = sum(1 for _ in range(out_h * out_w * c_out) for _ in range(k * k * c_in))
    assert comparisons.conv_macs(out_h, out_w, k, c_in, c_out) == products == 1440


def test_max_pool_comparisons():
    # the max of 4 numbers takes 3 comparisons
    assert comparisons.max_pool_comparisons(14, 14, 2, 32) == 14 * 14 * 32 * 3
    assert comparisons.max_pool_comparisons(1, 1, 3, 1) == 8


@pytest.mark.parametrize("bad", [0, -3, 2.5])
def test_counts_reject_bad_sizes(bad):
    with pytest.raises(ValueError, match="kernel"):
        comparisons.conv_params(bad, 3, 8)
    with pytest.raises(ValueError, match="units"):
        comparisons.dense_params(10, bad)


def test_shift_images_moves_a_single_pixel():
    images = np.zeros((1, 5, 6, 1))
    images[0, 2, 3, 0] = 1.0
    out = comparisons.shift_images(images, 1, -2)
    assert out[0, 3, 1, 0] == 1.0 and out.sum() == 1.0


def test_shift_images_fills_and_does_not_wrap():
    images = np.arange(16, dtype=float).reshape(1, 4, 4, 1)
    out = comparisons.shift_images(images, 0, 1, fill=-1.0)
    np.testing.assert_array_equal(out[0, :, 0, 0], -1.0)
    np.testing.assert_array_equal(out[0, :, 1:, 0], images[0, :, :3, 0])


@settings(max_examples=40, deadline=None)
@given(dy=st.integers(-3, 3), dx=st.integers(-3, 3))
def test_shift_images_agrees_with_roll_when_the_border_is_empty(dy, dx):
    rng = np.random.default_rng(0)
    images = np.zeros((2, 12, 12, 3))
    images[:, 3:9, 3:9, :] = rng.random((2, 6, 6, 3))
    expected = np.roll(images, (dy, dx), axis=(1, 2))
    np.testing.assert_array_equal(comparisons.shift_images(images, dy, dx), expected)


def test_shift_images_rejects_bad_arguments():
    with pytest.raises(ValueError, match="images"):
        comparisons.shift_images(np.zeros((4, 4)), 1, 1)
    with pytest.raises(ValueError, match="dy"):
        comparisons.shift_images(np.zeros((1, 4, 4, 1)), 4, 0)


def test_random_shifts_moves_every_image_by_the_distance():
    images = np.zeros((50, 20, 20, 1))
    images[:, 10, 10, 0] = 1.0
    out = comparisons.random_shifts(images, 3, seed=1)
    ys, xs = np.nonzero(out[:, :, :, 0])[1:]
    assert len(ys) == 50
    assert set(np.abs(ys - 10)) | set(np.abs(xs - 10)) <= {0, 3}
    assert np.all((ys != 10) | (xs != 10))
    np.testing.assert_array_equal(out, comparisons.random_shifts(images, 3, seed=1))
    assert len({(y, x) for y, x in zip(ys, xs)}) == 8  # all 8 directions occur among 50 images


def test_relative_change():
    a = np.array([3.0, 4.0])
    assert comparisons.relative_change(a, a) == 0.0
    assert comparisons.relative_change(a, np.zeros(2)) == pytest.approx(1.0)
    assert comparisons.relative_change(a, np.array([3.0, 5.0])) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="reference"):
        comparisons.relative_change(np.zeros(2), a)
    with pytest.raises(ValueError, match="other"):
        comparisons.relative_change(a, np.zeros(3))


def test_equivariance_error_is_zero_for_a_convolution_and_not_for_a_dense_layer():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    images = np.zeros((3, 16, 16, 1), dtype="float32")
    images[:, 5:11, 5:11, :] = rng.random((3, 6, 6, 1))
    conv = layers.Conv2D(4, 3, padding="same")
    assert comparisons.equivariance_error(lambda x: conv(x).numpy(), images, 2, -1, margin=3) < 1e-5
    dense = layers.Dense(16 * 16)

    def dense_map(x):
        return dense(x.reshape(len(x), -1)).numpy().reshape(len(x), 16, 16, 1)

    assert comparisons.equivariance_error(dense_map, images, 2, -1, margin=3) > 0.1
    with pytest.raises(ValueError, match="layer"):
        comparisons.equivariance_error(lambda x: x[:, ::2, ::2, :], images, 1, 1, margin=1)


def test_shift_sensitivity_of_global_max_pooling_is_zero():
    rng = np.random.default_rng(1)
    images = np.zeros((2, 10, 10, 2), dtype="float32")
    images[:, 3:7, 3:7, :] = rng.random((2, 4, 4, 2))

    def global_max(x):
        return x.max(axis=(1, 2), keepdims=True)

    assert comparisons.shift_sensitivity(global_max, images, [(1, 0), (-2, 2)]) == [0.0, 0.0]
    identity = comparisons.shift_sensitivity(lambda x: x, images, [(0, 1)])[0]
    assert identity > 0.5


def test_time_call_measures_a_sleep():
    import time

    assert 0.009 < comparisons.time_call(lambda: time.sleep(0.01), repeats=3) < 0.2
    with pytest.raises(ValueError, match="repeats"):
        comparisons.time_call(lambda: None, repeats=0)


def test_min_traffic_bytes_counts_inputs_outputs_and_weights():
    # max pooling 2 × 2 of one 28 × 28 × 64 float32 map: read 28·28·64 values, write 14·14·64
    assert comparisons.min_traffic_bytes((1, 28, 28, 64), (1, 14, 14, 64)) == 4 * (28 * 28 * 64 + 14 * 14 * 64)
    assert comparisons.min_traffic_bytes((2, 3), (5,), weights=7, bytes_per_value=2) == 2 * (6 + 5 + 7)
    with pytest.raises(ValueError, match="input_shape"):
        comparisons.min_traffic_bytes((0, 4), (4,))
    with pytest.raises(ValueError, match="weights"):
        comparisons.min_traffic_bytes((4,), (4,), weights=-1)
    with pytest.raises(ValueError, match="bytes_per_value"):
        comparisons.min_traffic_bytes((4,), (4,), bytes_per_value=0)


def test_arithmetic_intensity_and_roofline():
    assert comparisons.arithmetic_intensity(300, 100) == 3.0
    # memory-bound: 1 op per byte on a machine doing 10 ops per byte moved -> the traffic term wins
    assert comparisons.roofline_seconds(1_000, 1_000, ops_per_second=1e4, bytes_per_second=1e3) == 1.0
    # compute-bound: 100 ops per byte
    assert comparisons.roofline_seconds(100_000, 1_000, ops_per_second=1e4, bytes_per_second=1e3) == 10.0
    with pytest.raises(ValueError, match="traffic_bytes"):
        comparisons.arithmetic_intensity(1, 0)
    with pytest.raises(ValueError, match="ops_per_second"):
        comparisons.roofline_seconds(1, 1, ops_per_second=0, bytes_per_second=1)
    with pytest.raises(ValueError, match="bytes_per_second"):
        comparisons.roofline_seconds(1, 1, ops_per_second=1, bytes_per_second=-1)


@pytest.mark.parametrize("size, row", [(1, [1]), (2, [1, 1]), (3, [1, 2, 1]), (5, [1, 4, 6, 4, 1])])
def test_binomial_filter_is_pascals_row_squared_and_sums_to_one(size, row):
    kernel = comparisons.binomial_filter(size)
    row = np.array(row, dtype=float)
    np.testing.assert_allclose(kernel, np.outer(row, row) / row.sum() ** 2, rtol=1e-6)
    assert kernel.shape == (size, size) and kernel.dtype == np.float32
    assert kernel.sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="size"):
        comparisons.binomial_filter(0)


def _wave(fy: float, fx: float, n: int = 16) -> np.ndarray:
    y, x = np.mgrid[0:n, 0:n]
    return np.cos(2 * np.pi * (fy * y + fx * x)).reshape(1, n, n, 1)


def test_high_frequency_fraction_separates_smooth_from_fine_patterns():
    # below 1/4 cycle per pixel: representable after subsampling by 2; at or above it: aliased
    assert comparisons.high_frequency_fraction(np.ones((1, 8, 8, 1))) == pytest.approx(0.0)
    assert comparisons.high_frequency_fraction(_wave(0, 2 / 16)) == pytest.approx(0.0, abs=1e-12)
    assert comparisons.high_frequency_fraction(_wave(6 / 16, 0)) == pytest.approx(1.0)
    checkerboard = _wave(0.5, 0.5)
    assert comparisons.high_frequency_fraction(checkerboard) == pytest.approx(1.0)
    mix = np.concatenate([_wave(0, 1 / 16), 3 * _wave(0, 6 / 16)])  # energies 1 : 9
    assert comparisons.high_frequency_fraction(mix) == pytest.approx(0.9)
    # a larger factor lowers the cut-off: 2/16 cycle per pixel is representable at 2, not at 4
    assert comparisons.high_frequency_fraction(_wave(0, 2 / 16), factor=4) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="factor"):
        comparisons.high_frequency_fraction(checkerboard, factor=1)
    with pytest.raises(ValueError, match="maps"):
        comparisons.high_frequency_fraction(np.zeros((1, 4, 4, 1)))


def test_blurring_lowers_the_high_frequency_fraction():
    rng = np.random.default_rng(3)
    noise = rng.standard_normal((2, 16, 16, 1))
    kernel = comparisons.binomial_filter(3)
    padded = np.pad(noise, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="wrap")
    blurred = sum(kernel[i, j] * padded[:, i:i + 16, j:j + 16, :] for i in range(3) for j in range(3))
    assert comparisons.high_frequency_fraction(blurred) < 0.5 * comparisons.high_frequency_fraction(noise)


def test_time_call_min_is_the_fastest_call():
    import time

    delays = iter([0.05, 0.001, 0.03, 0.02])  # warmup, then three timed calls

    def uneven():
        time.sleep(next(delays))

    best = comparisons.time_call(uneven, repeats=3, warmup=1, statistic="min")
    assert 0.0005 < best < 0.015
    with pytest.raises(ValueError, match="statistic"):
        comparisons.time_call(lambda: None, statistic="mean")


def test_time_interleaved_times_each_call_in_turn():
    import time

    order = []

    def make(name, seconds):
        def call():
            order.append(name)
            time.sleep(seconds)

        return call

    result = comparisons.time_interleaved({"short": make("short", 0.002), "long": make("long", 0.02)},
                                          rounds=3, warmup=1)
    assert list(result) == ["short", "long"]
    assert 0.0015 < result["short"] < 0.015 and 0.019 < result["long"] < 0.1
    assert order == ["short", "long"] * 4  # one warmup round, then three timed rounds, alternating
    with pytest.raises(ValueError, match="calls"):
        comparisons.time_interleaved({})
    with pytest.raises(ValueError, match="rounds"):
        comparisons.time_interleaved({"a": lambda: None}, rounds=0)
    with pytest.raises(ValueError, match="statistic"):
        comparisons.time_interleaved({"a": lambda: None}, statistic="max")


def test_locally_connected_params_is_one_filter_bank_per_position():
    per_position = comparisons.conv_params(3, 3, 32)
    assert comparisons.locally_connected_params(222, 222, 3, 3, 32) == 222 * 222 * per_position
    # an explicit count: every position, every filter, its own k·k·C_in weights and one bias
    count = sum(3 * 3 * 2 + 1 for _ in range(4 * 5) for _ in range(6))
    assert comparisons.locally_connected_params(4, 5, 3, 2, 6) == count
    assert comparisons.locally_connected_params(4, 5, 3, 2, 6, use_bias=False) == 4 * 5 * 3 * 3 * 2 * 6
    with pytest.raises(ValueError, match="out_height"):
        comparisons.locally_connected_params(0, 5, 3, 2, 6)


def _subsample(stride):
    return lambda x: np.asarray(x)[:, ::stride, ::stride, :]


@pytest.mark.parametrize("dy, dx", [(0, 2), (2, 2), (4, -2)])
def test_relative_equivariance_error_is_zero_for_shifts_by_a_multiple_of_the_stride(dy, dx):
    rng = np.random.default_rng(1)
    images = rng.random((3, 16, 16, 2))
    assert comparisons.relative_equivariance_error(_subsample(2), images, dy, dx, margin=2, stride=2) < 1e-7


def test_relative_equivariance_error_sees_aliasing_for_odd_shifts():
    # Subsampling white noise by 2: an odd shift brings in the samples that were dropped, which are unrelated.
    rng = np.random.default_rng(2)
    images = rng.standard_normal((3, 16, 16, 2))
    error = comparisons.relative_equivariance_error(_subsample(2), images, 0, 1, margin=2, stride=2)
    assert error > 1.0  # two unrelated noise maps: about sqrt(2)


def test_relative_equivariance_error_of_a_stride_1_convolution():
    rng = np.random.default_rng(3)
    images = np.zeros((2, 20, 20, 1), np.float32)
    images[:, 5:15, 5:15, :] = rng.random((2, 10, 10, 1))
    conv = layers.Conv2D(4, 3, padding="same", activation="relu")
    conv.build(images.shape)

    def fn(x):
        return conv(x).numpy()

    assert comparisons.relative_equivariance_error(fn, images, 2, -3, margin=3) < 1e-6
    # a dense layer that scrambles positions is far from equivariant
    perm = rng.permutation(20 * 20)

    def scrambled(x):
        flat = np.asarray(x).reshape(len(x), 400, -1)[:, perm, :]
        return flat.reshape(np.asarray(x).shape)

    assert comparisons.relative_equivariance_error(scrambled, images, 2, -3, margin=3) > 0.5
    with pytest.raises(ValueError, match="stride"):
        comparisons.relative_equivariance_error(fn, images, 1, 1, margin=1, stride=2)
    with pytest.raises(ValueError, match="stride"):
        comparisons.relative_equivariance_error(fn, images, 1, 1, margin=1, stride=0)


def test_linear_map_matrix_of_a_dense_layer_is_its_kernel_transposed():
    rng = np.random.default_rng(4)
    kernel = rng.standard_normal((2 * 3 * 2, 5))

    def dense(x):
        return np.asarray(x).reshape(len(x), -1) @ kernel

    matrix = comparisons.linear_map_matrix(dense, (2, 3, 2))
    np.testing.assert_allclose(matrix, kernel.T, rtol=1e-6)


def test_linear_map_matrix_of_a_convolution_is_sparse_and_weight_tied():
    conv = layers.Conv2D(1, 3, padding="same", use_bias=False)
    conv.build((None, 6, 6, 1))

    def fn(x):
        return conv(x).numpy()

    matrix = comparisons.linear_map_matrix(fn, (6, 6, 1))
    assert matrix.shape == (36, 36)
    x = np.random.default_rng(5).random((1, 6, 6, 1)).astype(np.float32)
    np.testing.assert_allclose(matrix @ x.ravel(), fn(x).ravel(), rtol=1e-5, atol=1e-6)
    # an interior output sees 9 inputs; a corner output sees 4 (the rest is zero padding)
    nonzero_per_row = (np.abs(matrix) > 0).sum(axis=1)
    assert nonzero_per_row.max() == 9 and nonzero_per_row.min() == 4
    # every nonzero entry is one of the 9 kernel weights
    weights = conv.kernel.numpy().ravel()
    assert np.all(np.min(np.abs(matrix[matrix != 0][:, None] - weights[None, :]), axis=1) < 1e-6)
    with pytest.raises(ValueError, match="input_shape"):
        comparisons.linear_map_matrix(fn, (6, 6))


def test_channel_contrast_share_is_0_for_equal_slices_and_1_for_slices_summing_to_zero():
    rng = np.random.default_rng(0)
    slice_ = rng.standard_normal((3, 3, 1, 2))
    assert np.allclose(comparisons.channel_contrast_share(np.repeat(slice_, 3, axis=2)), 0)
    opponent = np.concatenate([slice_, -slice_, np.zeros_like(slice_)], axis=2)
    assert np.allclose(comparisons.channel_contrast_share(opponent), 1)


def test_channel_contrast_share_matches_a_direct_sum_and_the_random_expectation():
    rng = np.random.default_rng(1)
    kernel = rng.standard_normal((3, 3, 3, 4000))
    share = comparisons.channel_contrast_share(kernel)
    f = 7
    w = kernel[:, :, :, f]
    mean = w.mean(axis=2)
    direct = sum(((w[:, :, c] - mean) ** 2).sum() for c in range(3)) / (w**2).sum()
    assert share[f] == pytest.approx(direct)
    assert share.mean() == pytest.approx(2 / 3, abs=0.01)


@pytest.mark.parametrize("shape", [(3, 3, 3), (3, 3, 1, 4)])
def test_channel_contrast_share_rejects_bad_kernels(shape):
    with pytest.raises(ValueError, match="kernel"):
        comparisons.channel_contrast_share(np.ones(shape))
    with pytest.raises(ValueError, match="all zero"):
        comparisons.channel_contrast_share(np.zeros((3, 3, 3, 2)))
