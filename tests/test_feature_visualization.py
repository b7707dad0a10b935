"""Tests of cnn_helpers.feature_visualization: gradient ascent raises a channel; jitter and blur smooth it."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from cnn_helpers import comparisons, feature_visualization


def stripe_detector() -> keras.Model:
    """One fixed 3 × 3 filter per channel: channel 0 a horizontal edge, channel 1 a checkerboard."""
    inputs = keras.Input((16, 16, 1))
    conv = keras.layers.Conv2D(2, 3, padding="valid", use_bias=False)
    outputs = conv(inputs)
    edge = np.array([[1, 1, 1], [0, 0, 0], [-1, -1, -1]], "float32")
    checker = np.array([[1, -1, 1], [-1, 1, -1], [1, -1, 1]], "float32")
    conv.set_weights([np.stack([edge, checker], axis=-1)[:, :, None, :]])
    return keras.Model(inputs, outputs)


def test_ascent_raises_the_channel_and_stays_in_range():
    model = stripe_detector()
    image, trace = feature_visualization.maximize(model, 0, steps=20, step_size=0.05, value_range=(-1, 1))
    assert image.shape == (16, 16, 1) and image.dtype == np.float32
    assert image.min() >= -1 and image.max() <= 1
    assert trace[-1] > trace[0] + 0.5
    assert len(trace) == 20


def test_checkerboard_channel_gives_high_frequencies_and_blur_lowers_them():
    model = stripe_detector()
    plain, _ = feature_visualization.maximize(model, 1, steps=30, step_size=0.05)
    smooth, _ = feature_visualization.maximize(model, 1, steps=30, step_size=0.05, blur_every=1)

    def hf(image):
        return comparisons.high_frequency_fraction((image - image.mean())[None], factor=2)

    assert hf(plain) > 0.5
    assert hf(smooth) < hf(plain)


def test_the_returned_image_comes_from_a_step_not_from_a_blur():
    # With one step there is no blur before it: the result equals the plain ascent's.
    model = stripe_detector()
    plain, _ = feature_visualization.maximize(model, 1, steps=1, step_size=0.05)
    blurred_every_step, _ = feature_visualization.maximize(model, 1, steps=1, step_size=0.05, blur_every=1)
    assert np.array_equal(plain, blurred_every_step)
    two, _ = feature_visualization.maximize(model, 1, steps=2, step_size=0.05, blur_every=1)
    assert not np.array_equal(two, feature_visualization.maximize(model, 1, steps=2, step_size=0.05)[0])


def test_blur_keeps_a_constant_image_and_removes_a_checkerboard():
    flat = np.full((8, 8, 2), 0.3, "float32")
    assert feature_visualization.blur(flat) == pytest.approx(flat)
    checker = np.indices((8, 8)).sum(axis=0) % 2 * 2.0 - 1.0
    out = feature_visualization.blur(checker[:, :, None])
    assert np.abs(out[2:-2, 2:-2]).max() < 1e-6  # 1-2-1 cancels the highest frequency exactly
    with pytest.raises(ValueError, match="image"):
        feature_visualization.blur(np.zeros((8, 8)))


def test_same_seed_same_result_with_jitter():
    model = stripe_detector()
    a, _ = feature_visualization.maximize(model, 0, steps=5, jitter=2, seed=3)
    b, _ = feature_visualization.maximize(model, 0, steps=5, jitter=2, seed=3)
    assert np.array_equal(a, b)


@pytest.mark.parametrize("kwargs, match", [
    ({"steps": 0}, "steps"), ({"jitter": -1}, "jitter"), ({"blur_every": 1.5}, "blur_every"),
    ({"step_size": 0}, "step_size"), ({"value_range": (1, -1)}, "value_range"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        feature_visualization.maximize(stripe_detector(), 0, **kwargs)


def test_bad_channel():
    with pytest.raises(ValueError, match="channel"):
        feature_visualization.channel_objective(stripe_detector(), 2)
