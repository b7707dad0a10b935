"""Tests of cnn_helpers.segmentation against hand-computed cases, Keras and NumPy."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from cnn_helpers import segmentation


def test_make_dataset_is_deterministic_and_labelled():
    images, masks = segmentation.make_dataset(6, size=32, seed=3)
    again, masks_again = segmentation.make_dataset(6, size=32, seed=3)
    other, _ = segmentation.make_dataset(6, size=32, seed=4)
    assert images.shape == (6, 32, 32, 3) and images.dtype == np.float32
    assert masks.shape == (6, 32, 32) and masks.dtype == np.uint8
    assert np.array_equal(images, again) and np.array_equal(masks, masks_again)
    assert not np.array_equal(images, other)
    assert images.min() >= 0 and images.max() <= 1
    assert set(np.unique(masks)) <= set(range(len(segmentation.CLASS_NAMES)))
    assert (masks > 0).any(axis=(1, 2)).all()  # every image has at least one shape


def test_shapes_have_the_right_geometry():
    yy, xx = np.mgrid[0:41, 0:41].astype(np.float32)
    circle = segmentation._shape_mask(1, yy, xx, 20, 20, 10)
    square = segmentation._shape_mask(2, yy, xx, 20, 20, 10)
    triangle = segmentation._shape_mask(3, yy, xx, 20, 20, 10)
    assert abs(circle.sum() - np.pi * 100) < 0.05 * np.pi * 100
    assert square.sum() == 17 * 17  # |dy|, |dx| <= 8.5
    # a triangle is wider at the bottom than at the top
    rows = np.flatnonzero(triangle.any(axis=1))
    assert triangle[rows[-1]].sum() > triangle[rows[0]].sum()


def test_make_dataset_rejects_bad_arguments():
    with pytest.raises(ValueError, match="size"):
        segmentation.make_dataset(2, size=8)
    with pytest.raises(ValueError, match="radius"):
        segmentation.make_dataset(2, radius=(0.3, 0.6))
    with pytest.raises(ValueError, match="n="):
        segmentation.make_dataset(0)


def test_iou_by_hand():
    y_true = np.array([[0, 0, 1], [1, 2, 2]])
    y_pred = np.array([[0, 1, 1], [1, 2, 0]])
    # class 0: TP 1, FP 1 (last pixel), FN 1 -> 1/3; class 1: TP 2, FP 1, FN 0 -> 2/3; class 2: TP 1, FN 1 -> 1/2
    iou = segmentation.iou_per_class(y_true, y_pred, 4)
    assert np.allclose(iou[:3], [1 / 3, 2 / 3, 1 / 2]) and np.isnan(iou[3])
    assert segmentation.mean_iou(y_true, y_pred, 4) == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)


def test_mean_iou_matches_keras():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 4, size=(5, 16, 16))
    y_pred = np.where(rng.uniform(size=y_true.shape) < 0.7, y_true, rng.integers(0, 4, size=y_true.shape))
    metric = keras.metrics.MeanIoU(num_classes=4)
    metric.update_state(y_true, y_pred)
    assert segmentation.mean_iou(y_true, y_pred, 4) == pytest.approx(float(metric.result()), rel=1e-6)


def test_confusion_rejects_bad_labels():
    with pytest.raises(ValueError, match="y_pred"):
        segmentation.confusion(np.zeros(4), np.array([0, 1, 2, 5]), 4)
    with pytest.raises(ValueError, match="y_pred"):
        segmentation.confusion(np.zeros(4), np.zeros(3), 4)


def test_boundary_pixels():
    mask = np.zeros((6, 6), int)
    mask[:, 3:] = 1
    edge = segmentation.boundary_pixels(mask, width=1)
    assert edge[:, 2:4].all() and not edge[:, :2].any() and not edge[:, 4:].any()
    assert segmentation.boundary_pixels(mask[None], width=2)[0][:, 1:5].all()


def test_pool_and_upsample():
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(2, 16, 16, 3)).astype(np.float32)
    assert np.array_equal(segmentation.pool_and_upsample(images, 0), images)
    flat = np.full((1, 16, 16, 1), 0.25, np.float32)
    assert np.allclose(segmentation.pool_and_upsample(flat, 3), 0.25)  # constants survive
    once = segmentation.pool_and_upsample(images, 1)
    assert once.shape == images.shape
    error = [np.abs(segmentation.pool_and_upsample(images, t) - images).mean() for t in range(4)]
    assert error[0] == 0 and error[1] < error[3]
    with pytest.raises(ValueError, match="times"):
        segmentation.pool_and_upsample(images, 5)


def test_downsample_masks_centre_rule():
    mask = np.arange(16).reshape(4, 4)
    out = segmentation.downsample_masks(mask, 2, rule="centre")
    assert np.array_equal(out, [[5, 5, 7, 7], [5, 5, 7, 7], [13, 13, 15, 15], [13, 13, 15, 15]])
    with pytest.raises(ValueError, match="factor"):
        segmentation.downsample_masks(mask, 3)
    with pytest.raises(ValueError, match="rule"):
        segmentation.downsample_masks(mask, 2, rule="mode")


def test_downsample_masks_majority_rule():
    mask = np.zeros((4, 4), np.uint8)
    mask[0, 0] = mask[0, 1] = mask[1, 0] = 2  # top-left block: three 2s, one 0
    mask[2:, 2:] = [[1, 1], [3, 0]]  # bottom-right block: two 1s
    mask[0, 3] = 3  # top-right block: one 3, three 0s
    out = segmentation.downsample_masks(mask, 2)
    assert out.dtype == mask.dtype and out.shape == mask.shape
    assert np.array_equal(out[::2, ::2], [[2, 0], [0, 1]])
    assert np.array_equal(segmentation.downsample_masks(np.array([[0, 1], [1, 0]]), 2), [[0, 0], [0, 0]])  # tie
    # batches of masks are handled block by block, image by image
    batch = np.stack([mask, 3 - mask])
    assert np.array_equal(segmentation.downsample_masks(batch, 2)[1][::2, ::2], [[1, 3], [3, 2]])


def test_majority_gets_at_least_as_many_pixels_right_as_the_centre():
    _, masks = segmentation.make_dataset(20, size=32, seed=2)
    for factor in (2, 4, 8):
        majority = (segmentation.downsample_masks(masks, factor) == masks).mean()
        centre = (segmentation.downsample_masks(masks, factor, rule="centre") == masks).mean()
        assert majority >= centre
    assert np.array_equal(segmentation.downsample_masks(masks, 1), masks)


@pytest.mark.parametrize("skips", [False, True])
@pytest.mark.parametrize("upsampling", ["transpose", "bilinear"])
@pytest.mark.parametrize("batch_norm", [False, True])
def test_parameter_count_matches_keras(skips, upsampling, batch_norm):
    for filters, channels in (((4, 8), 3), ((3, 5, 7), 1)):
        model = segmentation.encoder_decoder(
            (32, 32, channels), 5, filters, skips=skips, upsampling=upsampling, batch_norm=batch_norm
        )
        count = segmentation.parameter_count(channels, 5, filters, skips, upsampling, batch_norm)
        assert count == model.count_params()


def test_widen_to_match():
    target = segmentation.parameter_count(filters=(16, 32, 64), skips=True)
    widened = segmentation.widen_to_match(target, (16, 32, 64))
    assert widened != (16, 32, 64) and all(w >= f for w, f in zip(widened, (16, 32, 64)))
    assert abs(segmentation.parameter_count(filters=widened) / target - 1) < 0.02
    # a target already met needs no widening
    assert segmentation.widen_to_match(segmentation.parameter_count(filters=(8, 16)), (8, 16)) == (8, 16)
    with pytest.raises(ValueError, match="n_params"):
        segmentation.widen_to_match(0, (8, 16))


@pytest.mark.parametrize("skips", [False, True])
@pytest.mark.parametrize("upsampling", ["transpose", "bilinear"])
def test_models_output_one_logit_per_pixel_and_class(skips, upsampling):
    model = segmentation.encoder_decoder((32, 32, 3), 4, filters=(4, 8), skips=skips, upsampling=upsampling)
    assert model.output_shape == (None, 32, 32, 4)
    names = [layer.name for layer in model.layers]
    assert ("skip1" in names) == skips
    assert model.get_layer("bottleneck").output.shape[1:3] == (8, 8)


def test_unet_has_more_decoder_inputs_than_plain():
    plain = segmentation.encoder_decoder((32, 32, 3), 4, filters=(4, 8))
    unet = segmentation.unet((32, 32, 3), 4, filters=(4, 8))
    # dec1's 3 × 3 kernel also reads the 4 skipped maps: 3·3·4·4 more weights; dec2 reads 8 more: 3·3·8·8
    assert unet.count_params() - plain.count_params() == 3 * 3 * 4 * 4 + 3 * 3 * 8 * 8


def test_encoder_decoder_rejects_bad_arguments():
    with pytest.raises(ValueError, match="upsampling"):
        segmentation.encoder_decoder(upsampling="nearest")
    with pytest.raises(ValueError, match="input_shape"):
        segmentation.encoder_decoder((60, 60, 3))


def test_colorize_and_plot():
    images, masks = segmentation.make_dataset(2, size=16, seed=0)
    assert segmentation.colorize(masks).shape == (2, 16, 16, 3)
    fig = segmentation.plot_masks(images, masks, {"same": masks}, "t", scores={"same": [1.0, 1.0]})
    assert len(fig.axes) == 2 * 3
    with pytest.raises(ValueError, match="predictions"):
        segmentation.plot_masks(images, masks, {"bad": masks[:1]}, "t")


def test_shapes_contrast_with_the_background():
    images, masks = segmentation.make_dataset(20, size=32, seed=5, noise=0.0)
    for image, mask in zip(images, masks, strict=True):
        for c in np.unique(mask[mask > 0]):
            inside = image[mask == c].mean(axis=0)
            outside = image[mask == 0].mean(axis=0)
            assert np.abs(inside - outside).max() > 0.1


def test_instances_mark_each_visible_shape():
    images, masks, instances = segmentation.make_dataset(30, size=32, seed=2, return_instances=True)
    same_images, same_masks = segmentation.make_dataset(30, size=32, seed=2)
    # the flag changes nothing else
    assert np.array_equal(images, same_images) and np.array_equal(masks, same_masks)
    assert instances.shape == masks.shape and instances.dtype == np.uint8
    assert np.array_equal(instances > 0, masks > 0)
    assert 1 <= instances.max() <= 3  # max_shapes
    for mask, inst in zip(masks, instances, strict=True):
        for k in np.unique(inst[inst > 0]):
            assert len(np.unique(mask[inst == k])) == 1  # one class per shape
    # a single shape per image: its visible area is its class's area
    _, masks_1, instances_1 = segmentation.make_dataset(
        10, size=32, seed=3, max_shapes=1, return_instances=True
    )
    assert np.array_equal(instances_1, (masks_1 > 0).astype(np.uint8))


def test_triangle_area_is_about_two_thirds_of_the_circle():
    yy, xx = np.mgrid[0:201, 0:201].astype(np.float32)
    circle = segmentation._shape_mask(1, yy, xx, 100, 100, 40).sum()
    square = segmentation._shape_mask(2, yy, xx, 100, 100, 40).sum()
    triangle = segmentation._shape_mask(3, yy, xx, 100, 100, 40).sum()
    assert triangle / circle == pytest.approx(3 * np.sqrt(3) / 4 * 1.25**2 / np.pi, rel=0.03)
    assert square / circle == pytest.approx(1.7**2 / np.pi, rel=0.03)


def _field_by_gradient(model: keras.Model, size: int) -> int:
    """Side of the input region that changes the centre output pixel, by autodiff (all weights 1)."""
    import tensorflow as tf

    for weight in model.weights:
        weight.assign(np.ones(weight.shape, weight.dtype))
    x = tf.ones((1, size, size, model.input_shape[-1]))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(model(x)[0, size // 2, size // 2])
    rows = np.flatnonzero(np.abs(tape.gradient(y, x).numpy()[0]).sum(axis=(1, 2)) > 0)
    return int(rows[-1] - rows[0] + 1)


def test_receptive_field_by_hand_and_by_gradient():
    layers = keras.layers
    flat = keras.Sequential([keras.Input((32, 32, 1))] + [layers.Conv2D(1, 3, padding="same") for _ in range(4)])
    assert segmentation.receptive_field(flat) == 1 + 2 * 4
    dilated = keras.Sequential([keras.Input((32, 32, 1)), layers.Conv2D(1, 3, dilation_rate=2, padding="same")])
    assert segmentation.receptive_field(dilated) == 5
    # a small U-shaped net with linear layers and average pooling, where every input pixel of the field
    # reaches the output (with all weights 1): the gradient's support is the field
    inputs = keras.Input((64, 64, 1))
    a = layers.Conv2D(1, 3, padding="same")(inputs)  # field 3
    b = layers.AveragePooling2D(2)(a)  # 4, jump 2
    b = layers.Conv2D(1, 3, padding="same")(b)  # 8
    b = layers.Conv2DTranspose(1, 2, strides=2)(b)  # 8, jump 1
    c = layers.Concatenate()([a, b])
    out = layers.Conv2D(1, 3, padding="same")(c)  # 10
    unet_like = keras.Model(inputs, out)
    assert segmentation.receptive_field(unet_like) == 10
    assert _field_by_gradient(unet_like, 64) == 10
    # our encoder–decoder: 1 + 5 · (2³ − 1) + 2 · 2³ = 52 pixels, skips or not
    for skips in (False, True):
        model = segmentation.encoder_decoder((64, 64, 3), filters=(4, 4, 4), skips=skips)
        assert segmentation.receptive_field(model) == 52
    with pytest.raises(ValueError, match="not handled"):
        segmentation.receptive_field(keras.Sequential([keras.Input((8, 8, 1)), layers.Flatten()]))


def test_original_unet_maps_572_to_388_with_crops():
    model = segmentation.original_unet(572, base_filters=2)
    assert model.output_shape == (None, 388, 388, 2)
    crops = [model.get_layer(f"crop{level}").output.shape[1] for level in (4, 3, 2, 1)]
    assert crops == [56, 104, 200, 392]
    convs = [layer for layer in model.layers if hasattr(layer, "kernel_size")]
    assert len(convs) == 23  # "In total the network has 23 convolutional layers."


@pytest.mark.parametrize("size", [188, 380, 572, 588])
def test_original_unet_output_size_matches_keras(size):
    expected = segmentation.original_unet(size, base_filters=1).output_shape[1]
    assert segmentation.original_unet_output_size(size) == expected == size - 184


def test_original_unet_output_size_rejects_untileable_sizes():
    with pytest.raises(ValueError, match="size=570"):
        segmentation.original_unet_output_size(570)
    with pytest.raises(ValueError, match="size=572"):
        segmentation.original_unet(572, padding="same")
    assert segmentation.original_unet(64, base_filters=1, padding="same").output_shape[1:3] == (64, 64)
