"""Regularization helpers: dropout counts, neighbour correlation and recovery, variance shift, the MNIST CNN."""

import numpy as np
import pytest

from cnn_helpers import regularization, runtime

runtime.import_tensorflow_quietly()
import keras  # noqa: E402


def test_dropout_zero_counts_are_binomial_not_exact():
    counts = regularization.dropout_zero_counts(512, 0.5, passes=2_000, seed=3)
    assert counts.shape == (2_000,)
    assert counts.mean() == pytest.approx(256, abs=2)
    assert counts.std() == pytest.approx(np.sqrt(512 * 0.25), rel=0.1)
    assert (counts != 256).mean() > 0.9


def test_binomial_pmf_sums_to_one_with_the_right_moments():
    p = regularization.binomial_pmf(512, 0.3)
    k = np.arange(513)
    assert p.sum() == pytest.approx(1)
    assert (k * p).sum() == pytest.approx(512 * 0.3)
    assert regularization.binomial_pmf(3, 0.0).tolist() == [1, 0, 0, 0]


def smooth_maps(n=8, size=24, channels=4, seed=0):
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=(n, size + 4, size + 4, channels))
    kernel = np.ones(5) / 5
    smooth = np.apply_along_axis(lambda v: np.convolve(v, kernel, "valid"), 1, noise)
    smooth = np.apply_along_axis(lambda v: np.convolve(v, kernel, "valid"), 2, smooth)
    return smooth, rng.normal(size=(n, size, size, channels))


def test_neighbour_correlation_of_smooth_and_white_maps():
    smooth, white = smooth_maps()
    assert regularization.neighbour_correlation(smooth) > 0.7
    assert abs(regularization.neighbour_correlation(white)) < 0.05


def test_recoverable_fraction_element_vs_channel():
    smooth, white = smooth_maps()
    element = regularization.recoverable_fraction(smooth, 0.3, "element")
    channel = regularization.recoverable_fraction(smooth, 0.3, "channel")
    assert element > 0.5
    assert abs(channel) < 0.05
    # Independent neighbours carry nothing: their mean only adds its own noise (about -1/8 of the variance).
    assert -0.3 < regularization.recoverable_fraction(white, 0.3, "element") < 0
    with pytest.raises(ValueError, match="kind="):
        regularization.recoverable_fraction(smooth, 0.3, "block")


def test_variance_shift_ratio_matches_a_keras_dropout_simulation():
    rng = np.random.default_rng(0)
    mean, var, rate = 1.0, 0.5, 0.4
    x = (mean + np.sqrt(var) * rng.normal(size=(200_000, 1))).astype("float32")
    dropped = np.asarray(keras.layers.Dropout(rate, seed=1)(x, training=True))
    measured = x.var() / dropped.var()
    assert regularization.variance_shift_ratio(rate, mean, var) == pytest.approx(measured, rel=0.02)
    assert regularization.variance_shift_ratio(0.0, mean, var) == pytest.approx(1)


def test_small_cnn_variants_build_and_check_arguments():
    plain = regularization.small_cnn()
    spatial = regularization.small_cnn(dropout="spatial", weight_decay=1e-4, augment=True)
    before = regularization.small_cnn(dropout="element", batch_norm="dropout_before_bn")
    assert plain.count_params() == spatial.count_params()
    assert type(spatial.get_layer("drop0")).__name__ == "SpatialDropout2D"
    names = [layer.name for layer in before.layers]
    assert names.index("drop0") < names.index("bn0")
    assert isinstance(spatial.optimizer, keras.optimizers.AdamW)
    assert plain.predict(np.zeros((2, 28, 28, 1)), verbose=0).shape == (2, 10)
    with pytest.raises(ValueError, match="batch_norm"):
        regularization.small_cnn(batch_norm="dropout_after_bn")
    with pytest.raises(ValueError, match="dropout="):
        regularization.small_cnn(dropout="block")


def test_cross_channel_r2_sees_linear_redundancy_and_independence():
    rng = np.random.default_rng(0)
    a, b, noise = rng.normal(size=(3, 10, 12, 12))
    redundant = np.stack([a, b, 2 * a - b + 0.5], axis=-1)
    np.testing.assert_allclose(regularization.cross_channel_r2(redundant), 1, atol=1e-6)
    independent = rng.normal(size=(10, 12, 12, 4))
    assert regularization.cross_channel_r2(independent).max() < 0.05
    partial = np.stack([a, a + noise], axis=-1)  # correlation 1/√2: R² = 1/2
    np.testing.assert_allclose(regularization.cross_channel_r2(partial), 0.5, atol=0.1)


def test_cross_channel_r2_marks_constant_channels_and_checks_shapes():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(4, 6, 6))
    maps = np.stack([a, np.zeros_like(a), 3 * a], axis=-1)
    r2 = regularization.cross_channel_r2(maps)
    assert np.isnan(r2[1]) and r2[0] == pytest.approx(1) and r2[2] == pytest.approx(1)
    with pytest.raises(ValueError, match="2 channels"):
        regularization.cross_channel_r2(rng.normal(size=(2, 5, 5, 1)))
    with pytest.raises(ValueError, match="maps"):
        regularization.cross_channel_r2(rng.normal(size=(5, 5, 2)))
