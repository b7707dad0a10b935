"""Preprocessing helpers: backbone modes, resizing strategies, balanced sampling, SMOTE interpolation."""

import numpy as np
import pytest

from cnn_helpers import preprocessing, runtime

runtime.import_tensorflow_quietly()


def test_preprocess_modes_differ_as_keras_documents():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    x[..., 0] = 200.0  # a red image: caffe mode must move red to the last channel
    tf_mode = preprocessing.preprocess_summary(x, "mobilenet_v2")
    assert -1 <= tf_mode.minimum and tf_mode.maximum <= 1
    assert tf_mode.channel_means[0] == pytest.approx(200 / 127.5 - 1, abs=1e-5)
    caffe = preprocessing.preprocess_summary(x, "vgg16")
    assert caffe.channel_means[2] == pytest.approx(200 - 123.68, abs=1e-3)  # R last, minus the R mean
    none = preprocessing.preprocess_summary(x, "efficientnet")
    assert none.maximum == pytest.approx(float(x.max()))
    torch = preprocessing.preprocess_summary(x, "densenet")
    assert torch.channel_means[0] == pytest.approx((200 / 255 - 0.485) / 0.229, abs=1e-4)
    with pytest.raises(ValueError, match="module="):
        preprocessing.preprocess_summary(x, "no_such_model")


def test_resize_methods_and_costs():
    image = np.ones((60, 120, 3), np.float32) * 100
    for method in preprocessing.RESIZE_METHODS:
        assert tuple(preprocessing.resize(image, 32, method).shape) == (32, 32, 3)
    letterbox = np.asarray(preprocessing.resize(image, 32, "letterbox"))
    assert (letterbox[..., 0] == 0).mean() == pytest.approx(0.5)
    crop = np.asarray(preprocessing.resize(image, 32, "crop"))
    assert np.allclose(crop, 100)
    costs = preprocessing.resize_costs([60, 100], [120, 100])
    assert costs["squash"].tolist() == [2, 1] and costs["crop"].tolist() == [0.5, 0]
    with pytest.raises(ValueError, match="method="):
        preprocessing.resize(image, 32, "stretch")


def test_balanced_indices_draw_classes_equally():
    labels = np.r_[np.zeros(990), np.ones(10)].astype(int)
    idx = preprocessing.balanced_indices(labels, 20_000, seed=1)
    assert abs(labels[idx].mean() - 0.5) < 0.02
    assert set(idx[labels[idx] == 1]) == set(range(990, 1000))  # every minority example reused
    with pytest.raises(ValueError, match="n="):
        preprocessing.balanced_indices(labels, 0)


def test_smote_interpolates_between_nearest_neighbours():
    x = np.array([[0.0, 0.0], [1.0, 0.0], [10.0, 10.0], [10.0, 11.0]])
    s = preprocessing.smote_samples(x, 50, k=1, seed=0)
    pairs = {(int(a), int(b)) for a, b in zip(s.first, s.second)}
    assert pairs <= {(0, 1), (1, 0), (2, 3), (3, 2)}
    expected = x[s.first] + s.lam[:, None] * (x[s.second] - x[s.first])
    np.testing.assert_allclose(s.samples, expected)
    with pytest.raises(ValueError, match="k="):
        preprocessing.smote_samples(x, 5, k=4)


def test_mid_gray_fraction_sees_blends():
    strokes = np.zeros((2, 10, 10))
    strokes[0, 2, :] = 1.0
    strokes[1, :, 7] = 1.0
    assert preprocessing.mid_gray_fraction(strokes) == 0
    blend = 0.5 * strokes[0] + 0.5 * strokes[1]
    assert preprocessing.mid_gray_fraction(blend) > 0.9
    with pytest.raises(ValueError, match="images"):
        preprocessing.mid_gray_fraction(strokes * 255)
