"""cifar: splits, the synthetic stand-in, the network (shapes, parameters, augmentation off at inference),
a short training run that learns, and the fail-fast path when CIFAR-10 is missing."""

from __future__ import annotations

import numpy as np
import pytest

from cnn_helpers import runtime

runtime.import_tensorflow_quietly()
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from cnn_helpers import cifar, data, mnist  # noqa: E402


def test_splits_carve_validation_from_train_and_keep_test_apart():
    assert cifar.SPLITS["test"] == "test"
    train, val = cifar.SPLITS["train"], cifar.SPLITS["validation"]
    assert train.startswith("train[:") and val.startswith("train[")
    # the two slices meet at the same percentage: disjoint, and together the whole training split
    assert train[len("train[:"):-1] == val[len("train["):-2]


def test_load_split_fails_fast_without_the_dataset(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(data, "can_reach", lambda *a, **k: False)
    with pytest.raises(data.DatasetUnavailableError, match="cifar10"):
        cifar.load_split("train")


@pytest.mark.parametrize("call", [
    lambda: cifar.load_split("training"),
    lambda: cifar.load_split("train", limit=0),
    lambda: cifar.synthetic_images(0),
    lambda: cifar.synthetic_splits({}),
    lambda: cifar.build_model(num_classes=1),
    lambda: cifar.build_model(stages=()),
    lambda: cifar.build_model(dropout=1.0),
    lambda: cifar.augmentation(shift=1.5),
])
def test_bad_arguments_raise_value_error(call):
    with pytest.raises(ValueError):
        call()


def test_synthetic_images_are_deterministic_balanced_and_class_by_colour():
    images, labels = cifar.synthetic_images(200, seed=3)
    assert images.shape == (200, 32, 32, 3) and images.dtype == np.uint8
    assert labels.dtype == np.int64 and set(labels) == set(range(10))
    assert np.bincount(labels).max() - np.bincount(labels).min() <= 1
    again, again_labels = cifar.synthetic_images(200, seed=3)
    assert np.array_equal(images, again) and np.array_equal(labels, again_labels)
    other, _ = cifar.synthetic_images(200, seed=4)
    assert not np.array_equal(images, other)
    # the brightest pixels (inside the disc) of two classes far apart on the colour wheel differ in hue
    brightest = [images[labels == c].reshape(-1, 3)[images[labels == c].reshape(-1, 3).sum(1).argsort()[-500:]]
                 for c in (0, 5)]
    assert np.abs(brightest[0].mean(0) - brightest[1].mean(0)).max() > 60


def test_synthetic_splits_have_the_element_spec_of_cifar():
    splits = cifar.synthetic_splits({"train": 20, "validation": 10, "test": 10}, seed=0)
    assert {k: int(v.cardinality()) for k, v in splits.items()} == {"train": 20, "validation": 10, "test": 10}
    image, label = next(iter(splits["train"]))
    assert image.shape == (32, 32, 3) and image.dtype == tf.uint8 and label.dtype == tf.int64
    first = [next(iter(splits[s]))[0].numpy() for s in splits]
    assert not np.array_equal(first[0], first[1])  # one seed per split


def test_model_shapes_softmax_and_gap_head():
    model = cifar.build_model(seed=0)
    assert model.output_shape == (None, 10)
    probs = model(np.zeros((2, 32, 32, 3), np.uint8), training=False).numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert any(isinstance(layer, keras.layers.GlobalAveragePooling2D) for layer in model.layers)
    assert not any(isinstance(layer, keras.layers.Flatten) for layer in model.layers)
    bn = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(bn) == 6
    # analytic parameter count: bias-free 3x3 convs, 4 BN parameters per channel, dense head
    widths = [3, 32, 32, 64, 64, 128, 128]
    convs = sum(9 * a * b for a, b in zip(widths[:-1], widths[1:]))
    expected = convs + 4 * sum(widths[1:]) + 128 * 10 + 10
    assert model.count_params() == expected


def test_augmentation_is_active_in_training_only():
    model = cifar.build_model(seed=0, dropout=0.0)
    x = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)).astype(np.uint8)
    a = model(x, training=False).numpy()
    np.testing.assert_array_equal(a, model(x, training=False).numpy())
    aug = model.get_layer("augmentation")
    assert not np.array_equal(aug(x, training=True).numpy(), x)
    np.testing.assert_array_equal(aug(x, training=False).numpy(), x)


def test_short_training_on_the_synthetic_set_learns():
    keras.utils.set_random_seed(0)
    splits = cifar.synthetic_splits({"train": 320, "validation": 100}, seed=1)
    train = cifar.make_dataset(splits["train"], batch_size=32, training=True, seed=0)
    val = cifar.make_dataset(splits["validation"], batch_size=100, training=False)
    model = cifar.build_model(stages=((8,), (16,)), seed=0)
    epochs = 4
    mnist.compile_ours(model, total_steps=epochs * int(train.cardinality()), max_lr=1e-2)
    history = model.fit(train, validation_data=val, epochs=epochs, verbose=0, shuffle=False)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert history.history["val_accuracy"][-1] > 0.3  # chance is 0.1


def test_make_dataset_batches_and_keeps_uint8():
    splits = cifar.synthetic_splits({"train": 10}, seed=0)
    ds = cifar.make_dataset(splits["train"], batch_size=4, training=True)
    shapes = [x.shape[0] for x, _ in ds]
    assert shapes == [4, 4, 2]
    assert next(iter(ds))[0].dtype == tf.uint8
    with pytest.raises(ValueError, match="batch_size"):
        cifar.make_dataset(splits["train"], batch_size=0, training=False)
