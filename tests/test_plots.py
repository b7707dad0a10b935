"""plots: the first-layer filter figure (question 46) and the edge score that tells trained from random filters."""

import matplotlib
import numpy as np
import pytest

from cnn_helpers import plots, runtime

runtime.import_tensorflow_quietly()
import keras  # noqa: E402

matplotlib.use("Agg")

SOBEL_X = np.array([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]])  # a vertical edge (responds to left-right change)


def displayed(fig):
    """The arrays drawn by imshow, one per axis that has an image (colour bars excluded)."""
    return [ax.images[0].get_array() for ax in fig.axes if ax.images and ax.get_label() != "<colorbar>"]


def image_axes(fig):
    return [ax for ax in fig.axes if ax.images and ax.get_label() != "<colorbar>"]


def small_rgb_model(use_bias=False, filters=6):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(filters, 3, use_bias=use_bias, name="stem")(inputs)
    x = keras.layers.Conv2D(4, 3, name="second")(x)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))


# ---------------------------------------------------------------------------------------------- first_conv


def test_first_conv_reads_the_kernel_without_bias_and_walks_into_nested_models():
    base = small_rgb_model(use_bias=False)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    outer = keras.Model(inputs, keras.layers.Dense(2)(base(x)))
    layer, kernel = plots.first_conv(outer)
    assert layer.name == "stem" and kernel.shape == (3, 3, 3, 6)
    np.testing.assert_array_equal(kernel, np.asarray(base.get_layer("stem").kernel))
    with pytest.raises(ValueError):  # what the usual answer does: weights, biases = layer.get_weights()
        _weights, _biases = layer.get_weights()


def test_first_conv_on_sequential_depthwise_and_mobilenetv2():
    seq = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Dense(3), keras.layers.Conv2D(5, 5, name="c")])
    assert plots.first_conv(seq)[1].shape == (5, 5, 3, 5)
    dw = keras.Sequential([keras.Input((8, 8, 2)), keras.layers.DepthwiseConv2D(3, depth_multiplier=3)])
    layer, kernel = plots.first_conv(dw)
    assert kernel.shape == (3, 3, 1, 6)
    np.testing.assert_array_equal(kernel[:, :, 0, 4], np.asarray(layer.kernel)[:, :, 1, 1])  # channel 1, copy 1
    mnv2 = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, include_top=False, weights=None)
    layer, kernel = plots.first_conv(mnv2)
    assert layer.name == "Conv1" and not layer.use_bias and kernel.shape[:3] == (3, 3, 3)


def test_first_conv_without_convolution_raises():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="^model"):
        plots.first_conv(model)


# ------------------------------------------------------------------------------------------------- edge_fit


def test_edge_fit_scores_edges_high_blobs_low_and_random_near_chance():
    kernel = np.zeros((3, 3, 1, 5))
    kernel[..., 0, 0] = SOBEL_X
    kernel[..., 0, 1] = SOBEL_X.T  # horizontal edge
    kernel[..., 0, 2] = np.rot90(np.array([[0.0, 1, 2], [-1, 0, 1], [-2, -1, 0]]))  # diagonal ramp
    kernel[..., 0, 3] = np.array([[-1.0, -1, -1], [-1, 8, -1], [-1, -1, -1]])  # centre-surround blob
    kernel[..., 0, 4] = 0.0  # a dead filter
    scores = plots.edge_fit(kernel)
    np.testing.assert_allclose(scores[:3], [8 / 9, 8 / 9, 1.0])
    assert scores[3] == pytest.approx(0.0, abs=1e-12) and np.isnan(scores[4])
    rng = np.random.default_rng(0)
    for shape in ((3, 3, 3), (5, 5, 1), (7, 7, 3), (1, 4, 2)):
        random = plots.edge_fit(rng.normal(size=(*shape, 4000)))
        assert random.mean() == pytest.approx(plots.edge_fit_chance(*shape[:2]), rel=0.05)


def test_edge_fit_dead_filters_are_nan_not_scored_noise():
    # MobileNetV2's Conv1 has filters of norm ~1e-21: their shape is rounding noise and must not be scored.
    rng = np.random.default_rng(1)
    kernel = rng.normal(size=(3, 3, 3, 6))
    kernel[..., 0] = np.broadcast_to(SOBEL_X[:, :, None], (3, 3, 3)) * 1e-21  # a perfect edge, but dead
    kernel[..., 1] *= 1e-4  # far below 1 % of the largest norm
    kernel[..., 2] = np.ones((3, 3, 3))  # live but constant: scores 0, not NaN
    kernel[..., 3] *= 0.05  # faint but alive
    scores = plots.edge_fit(kernel)
    assert np.isnan(scores[0]) and np.isnan(scores[1])
    assert scores[2] == 0.0 and np.isfinite(scores[3:]).all()
    assert np.isfinite(plots.edge_fit(kernel, dead_below=0.0)).all()  # 0 scores every non-zero filter
    assert plots.edge_fit(kernel, dead_below=0.0)[0] == pytest.approx(8 / 9)
    assert np.isnan(plots.edge_fit(np.zeros((3, 3, 1, 4)))).all()
    # the threshold is relative to the layer's largest filter, so scaling the layer changes nothing
    np.testing.assert_array_equal(np.isnan(plots.edge_fit(kernel * 1e6)), np.isnan(scores))
    with pytest.raises(ValueError, match="^dead_below"):
        plots.edge_fit(kernel, dead_below=1.0)


def test_edge_fit_chance_above_depends_on_channels_and_matches_random_filters():
    # one channel, 3 × 3: the score is Beta(1, 3), so P(score >= t) = (1 - t)^3 exactly
    for t in (0.25, 0.5, 0.8):
        assert plots.edge_fit_chance_above(3, 3, 1, t) == pytest.approx((1 - t) ** 3, abs=2e-3)
    one, three = (plots.edge_fit_chance_above(3, 3, c, 0.5) for c in (1, 3))
    assert three < one / 2  # more channels concentrate the score around its mean 0.25
    rng = np.random.default_rng(2)
    for shape in ((3, 3, 3), (5, 5, 1), (3, 3, 8), (2, 2, 1), (1, 3, 2)):
        random = plots.edge_fit(rng.normal(size=(*shape, 40_000)))
        expected = plots.edge_fit_chance_above(*shape, 0.4)
        assert (random >= 0.4).mean() == pytest.approx(expected, abs=0.01)
    assert plots.edge_fit_chance_above(3, 3, 1, 0.0) == 1.0
    for kwargs, name in (({"c_in": 0}, "c_in"), ({"threshold": 1.5}, "threshold"), ({"draws": 0}, "draws")):
        args = {"c_in": 1, "threshold": 0.5, **kwargs}
        with pytest.raises(ValueError, match=f"^{name}"):
            plots.edge_fit_chance_above(3, 3, **args)


def test_edge_fit_errors():
    with pytest.raises(ValueError, match="^kernel"):
        plots.edge_fit(np.zeros((3, 3, 3)))
    with pytest.raises(ValueError, match="^kernel"):
        plots.edge_fit(np.zeros((1, 1, 3, 4)))
    with pytest.raises(ValueError, match="^kh, kw"):
        plots.edge_fit_chance(1, 2)


# ---------------------------------------------------------------------------------------- the figure


def test_rgb_filters_one_axis_per_filter_values_in_unit_range(tmp_path):
    model = small_rgb_model(filters=11)
    path = tmp_path / "filters.png"
    fig = plots.first_layer_filters(model, ncols=4, path=str(path))
    arrays = displayed(fig)
    assert len(image_axes(fig)) == 11 and all(a.shape == (3, 3, 3) for a in arrays)
    values = np.stack(arrays)
    assert values.min() == pytest.approx(0.0) and values.max() == pytest.approx(1.0)  # global min-max
    assert path.stat().st_size > 1000
    assert fig._suptitle is not None and "'stem'" in fig._suptitle.get_text()
    per = displayed(plots.first_layer_filters(model, normalize="per_filter"))
    assert all(a.min() == pytest.approx(0.0) and a.max() == pytest.approx(1.0) for a in per)
    matplotlib.pyplot.close("all")


def test_hand_set_sobel_kernel_round_trips_and_bgr_reverses_channels():
    kernel = np.zeros((3, 3, 3, 2))
    kernel[:, :, 0, 0] = SOBEL_X  # red channel of filter 0 carries a vertical edge
    kernel[:, :, 2, 1] = 1.0  # filter 1: pure blue (BGR order: index 2 is red)
    rgb = displayed(plots.first_layer_filters(kernel))
    expected = (SOBEL_X + 2) / 4  # global min -2, max 2
    np.testing.assert_allclose(rgb[0][:, :, 0], expected)
    np.testing.assert_allclose(rgb[0][:, :, 1:], 0.5)  # zero weights sit at mid-grey
    bgr = displayed(plots.first_layer_filters(kernel, channel_order="BGR"))
    np.testing.assert_allclose(bgr[0][:, :, 2], expected)
    np.testing.assert_allclose(bgr[1][:, :, 0], 0.75)  # the blue-index weight, shown as red
    fig = plots.first_layer_filters(kernel)
    assert all(ax.images[0].get_interpolation() == "nearest" for ax in image_axes(fig))
    matplotlib.pyplot.close("all")


def test_grayscale_and_per_channel_layouts():
    mnist_like = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(7, 5, use_bias=False)])
    fig = plots.first_layer_filters(mnist_like)
    assert len(image_axes(fig)) == 7
    assert all(ax.images[0].get_cmap().name == "gray" and ax.images[0].get_array().shape == (5, 5)
               for ax in image_axes(fig))
    two_channel = np.random.default_rng(0).normal(size=(3, 3, 2, 4))
    fig = plots.first_layer_filters(two_channel)
    assert len(image_axes(fig)) == 4 * 2
    fig = plots.first_layer_filters(np.random.default_rng(0).normal(size=(3, 3, 12, 5)), max_channels=3)
    assert len(image_axes(fig)) == 5 * 3
    fig = plots.first_layer_filters(np.random.default_rng(0).normal(size=(3, 3, 3, 40)), max_filters=9)
    assert len(image_axes(fig)) == 9
    matplotlib.pyplot.close("all")


def test_constant_kernel_does_not_divide_by_zero():
    arrays = displayed(plots.first_layer_filters(np.ones((3, 3, 1, 2))))
    assert all(np.isfinite(a).all() and a.min() >= 0 and a.max() <= 1 for a in arrays)
    matplotlib.pyplot.close("all")


def test_figure_argument_errors():
    kernel = np.zeros((3, 3, 3, 2))
    for kwargs, name in [({"normalize": "minmax"}, "normalize"), ({"channel_order": "rgb"}, "channel_order"),
                         ({"ncols": 0}, "ncols"), ({"max_filters": 0}, "max_filters")]:
        with pytest.raises(ValueError, match=f"^{name}"):
            plots.first_layer_filters(kernel, **kwargs)
    with pytest.raises(ValueError, match="^model_or_kernel"):
        plots.first_layer_filters(np.zeros((3, 3, 3)))
