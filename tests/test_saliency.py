"""Tests of cnn_helpers.saliency: Grad-CAM against its closed form, upsampling, occlusion."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from cnn_helpers import saliency


def conv_gap_dense(n_classes: int = 3, seed: int = 0) -> keras.Model:
    """conv → ReLU ("maps") → global average pooling → dense logits: Grad-CAM has a closed form on it."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((12, 12, 2))
    x = keras.layers.Conv2D(5, 3, padding="same")(inputs)
    x = keras.layers.ReLU(name="maps")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(n_classes, name="scores")(x))


def test_grad_cam_equals_relu_of_class_weighted_maps():
    # With GAP then Dense, dy^c/dA^k_ij = w_kc / (h·w) at every position, so α_k = w_kc / (h·w) and
    # Grad-CAM = ReLU(Σ_k w_kc A^k) / (h·w): the class activation map of Zhou et al. (2016), scaled.
    model = conv_gap_dense()
    images = np.random.default_rng(0).normal(size=(4, 12, 12, 2)).astype("float32")
    maps = keras.Model(model.input, model.get_layer("maps").output)(images).numpy()
    w = model.get_layer("scores").get_weights()[0]
    for c in range(3):
        expected = np.maximum(np.einsum("nhwk,k->nhw", maps, w[:, c]), 0) / (12 * 12)
        got = saliency.grad_cam(model, images, "maps", class_index=c, batch_size=3)
        assert got.shape == (4, 12, 12)
        assert got == pytest.approx(expected, abs=1e-6)


def test_grad_cam_without_relu_keeps_the_signed_sum():
    model = conv_gap_dense(seed=2)
    images = np.random.default_rng(2).normal(size=(3, 12, 12, 2)).astype("float32")
    maps = keras.Model(model.input, model.get_layer("maps").output)(images).numpy()
    w = model.get_layer("scores").get_weights()[0]
    expected = np.einsum("nhwk,k->nhw", maps, w[:, 1]) / (12 * 12)
    signed = saliency.grad_cam(model, images, "maps", class_index=1, relu=False)
    assert signed == pytest.approx(expected, abs=1e-6)
    assert (signed < 0).any()  # the ReLU would have cut these cells to zero
    assert saliency.grad_cam(model, images, "maps", class_index=1) == pytest.approx(
        np.maximum(signed, 0), abs=1e-7)


def test_grad_cam_default_explains_the_predicted_class():
    model = conv_gap_dense(seed=1)
    images = np.random.default_rng(1).normal(size=(5, 12, 12, 2)).astype("float32")
    predicted = model.predict(images, verbose=0).argmax(axis=1)
    assert saliency.grad_cam(model, images, "maps") == pytest.approx(
        saliency.grad_cam(model, images, "maps", class_index=predicted))
    assert np.all(saliency.grad_cam(model, images, "maps", class_index=0) >= 0)


def test_grad_cam_rejects_bad_arguments():
    model = conv_gap_dense()
    images = np.zeros((1, 12, 12, 2), "float32")
    with pytest.raises(ValueError, match="layer_name"):
        saliency.grad_cam(model, images, "no_such_layer")
    with pytest.raises(ValueError, match="layer_name"):
        saliency.grad_cam(model, images, "scores")  # not a 4-D map
    with pytest.raises(ValueError, match="class_index"):
        saliency.grad_cam(model, images, "maps", class_index=3)
    with pytest.raises(ValueError, match="images"):
        saliency.grad_cam(model, images[0], "maps")


def test_upsample_and_normalize():
    maps = np.array([[[0.0, 2.0], [2.0, 4.0]], [[0.0, 0.0], [0.0, 0.0]]], "float32")
    up = saliency.upsample(maps, (8, 8))
    assert up.shape == (2, 8, 8)
    assert up[0].max() == pytest.approx(4.0) and up[0].min() == pytest.approx(0.0)
    norm = saliency.normalize(up)
    assert norm[0].max() == pytest.approx(1.0) and np.all(norm[1] == 0)
    with pytest.raises(ValueError, match="size"):
        saliency.upsample(maps, (0, 8))
    with pytest.raises(ValueError, match="maps"):
        saliency.normalize(maps[0])


def test_occlude_cells_fills_the_highest_scoring_cells():
    images = np.ones((1, 4, 6, 1), "float32")
    scores = np.array([[[0.1, 0.9, 0.2], [0.8, 0.3, 0.0]]])  # a 2 × 3 grid of 2 × 2 cells
    out = saliency.occlude_cells(images, scores, 2, fill=0.0)
    assert np.all(out[0, 0:2, 2:4] == 0) and np.all(out[0, 2:4, 0:2] == 0)  # cells (0, 1) and (1, 0)
    assert out.sum() == images.sum() - 8
    assert np.all(images == 1)  # a copy
    assert np.array_equal(saliency.occlude_cells(images, scores, 0, 0.0), images)


def test_occlude_cells_rejects_bad_arguments():
    images = np.ones((1, 4, 6, 1))
    with pytest.raises(ValueError, match="k="):
        saliency.occlude_cells(images, np.zeros((1, 2, 3)), 7, 0.0)
    with pytest.raises(ValueError, match="grid"):
        saliency.occlude_cells(images, np.zeros((1, 3, 3)), 1, 0.0)
    with pytest.raises(ValueError, match="images, cell_scores"):
        saliency.occlude_cells(images, np.zeros((2, 2, 3)), 1, 0.0)
