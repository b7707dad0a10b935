"""Tests of cnn_helpers.lrn: the NumPy reference against TensorFlow and against a direct loop."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from cnn_helpers import lrn


def loop_lrn(x, depth_radius, bias, alpha, beta):
    """The formula written out channel by channel, as an independent check."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    channels = x.shape[-1]
    for i in range(channels):
        lo, hi = max(0, i - depth_radius), min(channels - 1, i + depth_radius)
        energy = sum(x[..., j] ** 2 for j in range(lo, hi + 1))
        out[..., i] = x[..., i] / (bias + alpha * energy) ** beta
    return out


def test_energy_by_hand():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    # radius 1: windows [0,1], [0,2], [1,3], [2,3]
    np.testing.assert_allclose(lrn.neighbourhood_energy(x, 1), [1 + 4, 1 + 4 + 9, 4 + 9 + 16, 9 + 16])
    np.testing.assert_allclose(lrn.neighbourhood_energy(x, 0), x**2)
    np.testing.assert_allclose(lrn.neighbourhood_energy(x, 10), np.full(4, 30.0))


@settings(max_examples=30, deadline=None)
@given(
    radius=st.integers(0, 4),
    bias=st.floats(0.5, 3.0),
    alpha=st.floats(0.0, 1.0),
    beta=st.floats(0.0, 1.0),
    channels=st.integers(1, 12),
)
def test_reference_matches_a_loop(radius, bias, alpha, beta, channels):
    x = np.random.default_rng(channels).normal(size=(2, 3, channels))
    np.testing.assert_allclose(
        lrn.local_response_normalization(x, radius, bias, alpha, beta),
        loop_lrn(x, radius, bias, alpha, beta),
        rtol=1e-12,
    )


@pytest.mark.parametrize("radius, bias, alpha, beta", [(2, 2.0, 1e-4, 0.75), (5, 1.0, 1.0, 0.5), (1, 1.5, 0.3, 1.0)])
def test_reference_matches_tensorflow(radius, bias, alpha, beta):
    x = np.random.default_rng(0).normal(scale=20.0, size=(2, 5, 4, 16)).astype(np.float32)
    expected = tf.nn.local_response_normalization(x, depth_radius=radius, bias=bias, alpha=alpha, beta=beta)
    np.testing.assert_allclose(lrn.local_response_normalization(x, radius, bias, alpha, beta), expected,
                               rtol=2e-5, atol=1e-6)


def test_defaults_are_alexnets():
    x = np.random.default_rng(1).normal(scale=50.0, size=(1, 2, 2, 8))
    np.testing.assert_allclose(lrn.local_response_normalization(x), loop_lrn(x, 2, 2.0, 1e-4, 0.75))


def test_tf_arguments_conventions():
    assert lrn.tf_arguments(**lrn.ALEXNET) == {"depth_radius": 2, "bias": 2.0, "alpha": 1e-4, "beta": 0.75}
    caffe = lrn.tf_arguments(5, 2.0, 1e-4, 0.75, convention="caffe")
    assert caffe["alpha"] == pytest.approx(2e-5) and caffe["depth_radius"] == 2


def test_bvlc_alexnet_is_not_the_papers_lrn():
    # Caffe's reference model keeps Caffe's default k = 1 and divides alpha by n: in TF terms bias 1, alpha 2e-5.
    bvlc = lrn.tf_arguments(**lrn.BVLC_ALEXNET, convention="caffe")
    assert bvlc["depth_radius"] == 2 and bvlc["bias"] == 1.0 and bvlc["beta"] == 0.75
    assert bvlc["alpha"] == pytest.approx(2e-5)
    assert bvlc != lrn.tf_arguments(**lrn.ALEXNET)


def test_caffe_convention_uses_the_mean_of_squares():
    # Caffe/PyTorch: b = a / (k + alpha/n * sum)^beta. Written out with the mean, it must equal TF's result.
    x = np.random.default_rng(2).normal(scale=100.0, size=(1, 1, 1, 9))
    n, k, alpha, beta = 5, 2.0, 1e-3, 0.75
    windows = [x[0, 0, 0, max(0, i - 2): i + 3] for i in range(9)]
    caffe = np.array([x[0, 0, 0, i] / (k + alpha / n * np.sum(w**2)) ** beta for i, w in enumerate(windows)])
    args = lrn.tf_arguments(n, k, alpha, beta, convention="caffe")
    np.testing.assert_allclose(tf.nn.local_response_normalization(x.astype(np.float32), **args)[0, 0, 0], caffe,
                               rtol=1e-5)


@pytest.mark.parametrize(
    "kwargs, name",
    [({"depth_radius": -1}, "depth_radius"), ({"bias": 0.0}, "bias"), ({"alpha": -1.0}, "alpha"),
     ({"beta": -0.5}, "beta")],
)
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        lrn.local_response_normalization(np.ones((1, 3)), **kwargs)


def test_tf_arguments_rejects_even_windows_and_unknown_conventions():
    with pytest.raises(ValueError, match="n="):
        lrn.tf_arguments(4, 2.0, 1e-4, 0.75)
    with pytest.raises(ValueError, match="convention"):
        lrn.tf_arguments(5, 2.0, 1e-4, 0.75, convention="torch")


def test_gain_factors_multiply_to_the_gain_and_isolate_the_neighbours():
    x = np.abs(np.random.default_rng(4).normal(scale=120.0, size=(2, 3, 3, 11)))
    x[0, 0, 0, 3] = 0.0
    parts = lrn.gain_factors(x, 2, 2.0, 1e-4, 0.75)
    gain = lrn.local_response_normalization(x, 2, 2.0, 1e-4, 0.75)[x != 0] / x[x != 0]
    np.testing.assert_allclose((parts.constant * parts.own * parts.neighbours)[x != 0], gain, rtol=1e-12)
    assert parts.constant == pytest.approx(2.0**-0.75)
    # the neighbours' factor: the value's output divided by its output with the other channels silenced
    i = 5
    alone = np.zeros_like(x)
    alone[..., i] = x[..., i]
    alone_out = lrn.local_response_normalization(alone, 2, 2.0, 1e-4, 0.75)[..., i]
    real_out = lrn.local_response_normalization(x, 2, 2.0, 1e-4, 0.75)[..., i]
    np.testing.assert_allclose(parts.neighbours[..., i], real_out / alone_out, rtol=1e-12)
    # the own factor: the lone value's output relative to k^-beta a
    np.testing.assert_allclose(parts.own[..., i], alone_out / (x[..., i] * 2.0**-0.75), rtol=1e-12)
    assert np.all(parts.neighbours <= 1.0) and np.all(parts.own <= 1.0)


def test_gain_factors_by_hand():
    # one strong channel between two silent ones: the neighbours cost the silent ones, not the strong one
    x = np.array([0.0, 100.0, 0.0])
    parts = lrn.gain_factors(x, 1, 2.0, 1e-4, 0.75)
    np.testing.assert_allclose(parts.own, [1.0, (2.0 / 3.0) ** 0.75, 1.0])
    np.testing.assert_allclose(parts.neighbours, [(2.0 / 3.0) ** 0.75, 1.0, (2.0 / 3.0) ** 0.75])


@pytest.mark.parametrize("bias, alpha, beta", [(2.0, 1e-4, 0.75), (1.0, 1e-3, 1.0), (0.5, 0.2, 0.6)])
def test_peak_activation_is_the_maximum_of_a_lone_output(bias, alpha, beta):
    peak = lrn.peak_activation(bias, alpha, beta)
    grid = np.linspace(0, 10 * peak, 200_001)
    out = grid * (bias + alpha * grid**2) ** -beta
    assert grid[np.argmax(out)] == pytest.approx(peak, rel=1e-3)


def test_peak_activation_is_infinite_when_the_output_never_falls():
    assert lrn.peak_activation(2.0, 1e-4, 0.5) == float("inf")
    assert lrn.peak_activation(2.0, 0.0, 0.75) == float("inf")
    with pytest.raises(ValueError, match="bias"):
        lrn.peak_activation(0.0, 1e-4, 0.75)


def test_keras_layer_matches_tensorflow_has_no_weights_and_reloads(tmp_path):
    import keras

    x = np.random.default_rng(5).normal(scale=60.0, size=(2, 4, 4, 12)).astype(np.float32)
    args = {"depth_radius": 1, "bias": 1.5, "alpha": 3e-4, "beta": 0.6}
    model = keras.Sequential([keras.Input((4, 4, 12)), lrn.LocalResponseNormalization(**args, name="lrn")])
    expected = tf.nn.local_response_normalization(x, **args).numpy()
    np.testing.assert_allclose(model(x).numpy(), expected, rtol=1e-6)
    assert model.count_params() == 0
    path = tmp_path / "lrn.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    assert reloaded.get_layer("lrn").get_config()["alpha"] == pytest.approx(3e-4)
    np.testing.assert_allclose(reloaded(x).numpy(), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="beta"):
        lrn.LocalResponseNormalization(beta=-1.0)


def test_plots_return_figures():
    before = np.abs(np.random.default_rng(3).normal(scale=100, size=16))
    fig = lrn.plot_channel_profile(before, title="t")
    assert len(fig.axes) == 2
    samples = {"big": np.abs(np.random.default_rng(6).normal(scale=80, size=(2, 5, 5, 16))),
               "small": np.abs(np.random.default_rng(7).normal(scale=1, size=(2, 5, 5, 16)))}
    fig2 = lrn.plot_gain_curves(samples, title="t")
    assert len(fig2.axes) == 2
    assert len(fig2.axes[0].get_lines()) >= 2 * 2 + len(samples)  # a curve and a k/alpha line per k, a mark each
    with pytest.raises(ValueError, match="before"):
        lrn.plot_channel_profile(np.ones((2, 2)), title="t")
    with pytest.raises(ValueError, match="samples"):
        lrn.plot_gain_curves({"dead": np.zeros((1, 2, 2, 4))}, title="t")
    with pytest.raises(ValueError, match="biases"):
        lrn.plot_gain_curves(samples, title="t", biases=())


def test_max_gain_bounds_every_output():
    rng = np.random.default_rng(3)
    bound = lrn.max_gain(2.0, 0.75)
    assert bound == pytest.approx(2.0**-0.75)
    for scale in (1e-3, 1.0, 30.0, 1e3):
        x = rng.normal(scale=scale, size=(4, 5, 5, 16))
        ratio = np.abs(lrn.local_response_normalization(x, 2, 2.0, 1e-4, 0.75)) / np.abs(x)
        assert ratio.max() <= bound
    # approached when the window is silent
    lone = np.zeros(7)
    lone[3] = 1e-6
    assert lrn.local_response_normalization(lone, 2, 2.0, 1e-4, 0.75)[3] / 1e-6 == pytest.approx(bound)
    with pytest.raises(ValueError, match="bias"):
        lrn.max_gain(0.0, 0.75)
