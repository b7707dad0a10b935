"""Transfer learning helpers: splits, pipeline, range guard, weights check, freezing, folder input, metrics."""

import os
import time

import numpy as np
import pytest

from cnn_helpers import data, runtime, transfer

runtime.import_tensorflow_quietly()
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

HAVE_FLOWERS = os.path.isdir(os.path.join(data.data_dir(), "tf_flowers"))
flowers = pytest.mark.skipif(not HAVE_FLOWERS, reason="no prepared tf_flowers under TFDS_DATA_DIR")


def random_photos(n, seed=0, sizes=((70, 90), (120, 80), (100, 100))):
    """Unbatched (uint8 image, label) of varying sizes with smooth content plus noise (dark and bright pixels)."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for i in range(n):
        h, w = sizes[i % len(sizes)]
        ramp = np.linspace(0, 255, w)[None, :, None] * np.ones((h, 1, 3))
        noise = rng.normal(0, 20, (h, w, 3))
        images.append(np.clip(ramp + noise, 0, 255).astype(np.uint8))
        labels.append(i % 3)

    def gen():
        yield from zip(images, labels)

    spec = (tf.TensorSpec((None, None, 3), tf.uint8), tf.TensorSpec((), tf.int64))
    return tf.data.Dataset.from_generator(gen, output_signature=spec), images


@pytest.fixture(scope="module")
def tiny_base():
    keras.utils.set_random_seed(0)
    return transfer.build_base("mobilenetv2", image_size=96, weights=None, alpha=0.35)


# ---------------------------------------------------------------- splits


def test_split_strings_cover_the_whole_train_split_once():
    # Percent slices [a:b] of a single split: contiguous, non-overlapping, covering 0-100 %.
    bounds = []
    for s in transfer.SPLITS.values():
        inner = s[s.index("[") + 1 : s.index("]")].replace("%", "")
        lo, hi = inner.split(":")
        bounds.append((int(lo or 0), int(hi or 100)))
    bounds.sort()
    assert bounds[0][0] == 0 and bounds[-1][1] == 100
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))


@pytest.fixture(scope="module")
def flower_splits():
    """Each split of tf_flowers read once: (tfds ids, encoded JPEG bytes, labels)."""
    import tensorflow_datasets as tfds

    out = {}
    for k, split in transfer.SPLITS.items():
        ds = data.load("tf_flowers", split=split, as_supervised=False,
                       read_config=tfds.ReadConfig(add_tfds_id=True),
                       decoders={"image": tfds.decode.SkipDecoding()})
        rows = [(ex["tfds_id"].decode(), ex["image"], int(ex["label"])) for ex in ds.as_numpy_iterator()]
        out[k] = tuple(map(list, zip(*rows)))
    return out


@flowers
def test_flowers_splits_are_disjoint_deterministic_and_large_enough(flower_splits):
    ids = {k: v[0] for k, v in flower_splits.items()}
    assert sum(len(v) for v in ids.values()) == 3670
    assert len(set().union(*map(set, ids.values()))) == 3670  # disjoint
    again = transfer.load_split(transfer.SPLITS["test"])  # same photos, same order, on a second read
    assert [x for x, _ in again.as_numpy_iterator()] == flower_splits["test"][1]
    labels = flower_splits["train"][2]
    np.testing.assert_array_equal(transfer.labels_of(transfer.load_split(transfer.SPLITS["train"])), labels)
    counts = transfer.class_counts(labels, 5)
    assert counts.sum() == len(labels) and counts.min() >= 100


@flowers
def test_duplicate_photos_agrees_with_hashlib_on_real_photos(flower_splits):
    import hashlib

    subset = {"validation": flower_splits["validation"][1], "train": flower_splits["train"][1][:200]}
    expected: dict[str, list] = {}
    for k, photos in subset.items():
        for i, photo in enumerate(photos):
            expected.setdefault(hashlib.sha1(photo).hexdigest(), []).append((k, i))
    expected = {h: w for h, w in expected.items() if len(w) > 1}
    assert expected  # tf_flowers has a photo in both validation and train[:200]
    datasets = {k: tf.data.Dataset.from_tensor_slices((v, [0] * len(v))) for k, v in subset.items()}
    assert transfer.duplicate_photos(datasets) == expected


def test_duplicate_photos_on_a_toy_dataset():
    a = tf.data.Dataset.from_tensor_slices(([b"x", b"y", b"x"], [0, 1, 0]))
    b = tf.data.Dataset.from_tensor_slices(([b"y", b"z"], [1, 2]))
    found = transfer.duplicate_photos({"a": a, "b": b})
    assert sorted(found.values()) == [[("a", 0), ("a", 2)], [("a", 1), ("b", 0)]]


def test_class_counts_matches_numpy_unique_and_checks_labels():
    labels = np.array([0, 2, 2, 4, 4, 4])
    values, counts = np.unique(labels, return_counts=True)
    expected = np.zeros(5, int)
    expected[values] = counts
    np.testing.assert_array_equal(transfer.class_counts(labels, 5), expected)
    with pytest.raises(ValueError, match="labels"):
        transfer.class_counts(labels, 4)


# ---------------------------------------------------------------- pipeline


@pytest.mark.parametrize("base,low,high", [("efficientnetb0", 0, 255), ("mobilenetv2", -1, 1)])
@pytest.mark.parametrize("training", [True, False])
def test_pipeline_shapes_dtypes_and_range(base, low, high, training):
    ds, _ = random_photos(10)
    out = transfer.make_pipeline(ds, base=base, image_size=48, training=training, batch_size=4)
    batches = list(out)
    assert [int(x.shape[0]) for x, _ in batches] == [4, 4, 2]
    for x, y in batches:
        assert x.shape[1:] == (48, 48, 3) and x.dtype == tf.float32 and y.dtype == tf.int64
        assert low - 1e-4 <= float(tf.reduce_min(x)) and float(tf.reduce_max(x)) <= high + 1e-4
    transfer.check_input_range(batches[0][0], base)


def test_evaluation_pipeline_is_a_central_crop_of_the_resized_image():
    ds, images = random_photos(3)
    out = transfer.make_pipeline(ds, base="efficientnetb0", image_size=40, training=False, batch_size=3,
                                 preprocess=False)
    x = next(iter(out))[0].numpy()
    big = int(np.ceil(40 / transfer.CROP_FRACTION))
    for img, got in zip(images, x):
        h, w = img.shape[:2]
        scale = big / min(h, w)
        new = (int(np.ceil(h * scale)), int(np.ceil(w * scale)))
        resized = tf.image.resize(img, new, antialias=True).numpy()
        resized = np.clip(np.round(resized), 0, 255)
        top, left = (new[0] - 40) // 2, (new[1] - 40) // 2
        np.testing.assert_allclose(got, resized[top : top + 40, left : left + 40], atol=1)
    # Evaluation is deterministic: same batch twice.
    np.testing.assert_array_equal(x, next(iter(out))[0].numpy())


def test_pipeline_decodes_jpeg_strings():
    _, images = random_photos(4)
    encoded = [tf.io.encode_jpeg(img).numpy() for img in images]
    ds = tf.data.Dataset.from_tensor_slices((encoded, [0, 1, 2, 0]))
    x, y = next(iter(transfer.make_pipeline(ds, base="mobilenetv2", image_size=32, training=False)))
    assert x.shape == (4, 32, 32, 3) and list(y.numpy()) == [0, 1, 2, 0]


def test_pipeline_rejects_bad_arguments():
    ds, _ = random_photos(2)
    with pytest.raises(ValueError, match="base="):
        transfer.make_pipeline(ds, base="resnet", image_size=32, training=False)
    with pytest.raises(ValueError, match="image_size="):
        transfer.make_pipeline(ds, base="xception", image_size=2, training=False)


# ---------------------------------------------------------------- range guard


def photo_batch(size=48):
    ds, _ = random_photos(6)
    out = transfer.make_pipeline(ds, base="efficientnetb0", image_size=size, training=False, batch_size=6,
                                 preprocess=False)
    return next(iter(out))[0]  # float pixels in [0, 255]


def test_range_guard_accepts_each_base_own_preprocessing():
    pixels = photo_batch()
    for base in transfer.BASES:
        transfer.check_input_range(transfer.preprocess_function(base)(tf.identity(pixels)), base)


def test_range_guard_fires_on_double_rescaling():
    pixels = photo_batch()
    pre = keras.applications.mobilenet_v2.preprocess_input
    twice = pre(pre(tf.identity(pixels)))
    assert float(tf.reduce_max(twice)) < -0.98  # all squashed near -1: no error from Keras itself
    with pytest.raises(ValueError, match="no bright pixels"):
        transfer.check_input_range(twice, "mobilenetv2")


@pytest.mark.parametrize(
    "base,transform,reason",
    [
        ("mobilenetv2", lambda x: x / 255.0, "no dark pixels"),  # [0, 1] into a [-1, 1] model
        ("xception", lambda x: x, "outside"),  # raw [0, 255] into a [-1, 1] model
        ("efficientnetb0", lambda x: x / 255.0, "no bright pixels"),  # [0, 1] into EfficientNet
        ("efficientnetb0", lambda x: x / 127.5 - 1, "no bright pixels"),  # [-1, 1] into EfficientNet
    ],
)
def test_range_guard_fires_on_wrong_ranges(base, transform, reason):
    with pytest.raises(ValueError, match=reason) as err:
        transfer.check_input_range(transform(photo_batch()), base)
    assert "images:" in str(err.value) and base in str(err.value)


# ---------------------------------------------------------------- weights


@pytest.mark.parametrize(
    "base,kwargs",
    [("efficientnetb0", {}), ("xception", {}), ("mobilenetv2", {"alpha": 0.35, "image_size": 96})],
)
def test_weights_file_is_the_name_keras_asks_for(base, kwargs, monkeypatch):
    from keras.src.utils import file_utils

    asked = {}

    def fake_get_file(fname, origin, **kw):
        asked["fname"], asked["origin"] = fname, origin
        raise RuntimeError("stop")

    monkeypatch.setattr(file_utils, "get_file", fake_get_file)
    size = kwargs.get("image_size", transfer.spec(base).native_size)
    with pytest.raises(RuntimeError, match="stop"):
        transfer.build_base(base, image_size=size, weights="imagenet", alpha=kwargs.get("alpha", 1.0))
    assert asked["fname"] == transfer.weights_file(base, **kwargs)
    assert asked["origin"] == transfer.spec(base).weights_url + asked["fname"]


def test_keras_home_agrees_with_keras():
    from keras.src.backend import config

    assert transfer.keras_home() == config.keras_home()


def test_missing_weights_offline_fail_fast_naming_file_and_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(data, "can_reach", lambda *a, **k: False)
    start = time.monotonic()
    with pytest.raises(transfer.WeightsUnavailableError) as err:
        transfer.resolve_weights("imagenet", "efficientnetb0")
    assert time.monotonic() - start < 5
    message = str(err.value)
    assert "efficientnetb0_notop.h5" in message and str(tmp_path / "models") in message


def test_weights_found_in_cache_or_downloadable_or_none(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(data, "can_reach", lambda *a, **k: True)
    assert transfer.resolve_weights("imagenet", "xception")[0] == "imagenet"
    monkeypatch.setattr(data, "can_reach", lambda *a, **k: False)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "xception_weights_tf_dim_ordering_tf_kernels_notop.h5").write_bytes(b"x")
    weights, note = transfer.resolve_weights("imagenet", "xception")
    assert weights == "imagenet" and str(tmp_path) in note
    weights, note = transfer.resolve_weights(None, "xception")
    assert weights is None and "RANDOM" in note
    with pytest.raises(ValueError, match="weights="):
        transfer.resolve_weights("imagenet21k", "xception")


# ---------------------------------------------------------------- freezing


def test_phase1_trains_only_the_head(tiny_base):
    model = transfer.build_classifier(tiny_base, num_classes=5)
    head = model.get_layer("head")
    assert transfer.trainable_summary(model)["trainable"] == head.count_params()


def test_unfreeze_top_keeps_batch_norm_layers_frozen(tiny_base):
    transfer.build_classifier(tiny_base, num_classes=3)
    made = transfer.unfreeze_top(tiny_base, 20)
    layers = tiny_base.layers
    assert all(not layer.trainable for layer in layers if transfer.is_batch_norm(layer))
    assert all(not layer.trainable for layer in layers[:-20])
    top = [layer for layer in layers[-20:] if not transfer.is_batch_norm(layer)]
    assert made == len(top) and all(layer.trainable for layer in top)
    assert any(transfer.is_batch_norm(layer) for layer in layers[-20:])

    transfer.freeze_base(tiny_base)
    assert not tiny_base.trainable_weights


def toy_base():
    inputs = keras.Input((16, 16, 3))
    x = inputs
    for i in range(3):
        x = keras.layers.Conv2D(4, 3, padding="same", name=f"conv{i}")(x)
        x = keras.layers.BatchNormalization(name=f"bn{i}")(x)
        x = keras.layers.ReLU(name=f"relu{i}")(x)
    return keras.Model(inputs, x, name="toy_base")


def test_fine_tuning_trains_the_top_but_leaves_batch_norm_statistics_alone():
    keras.utils.set_random_seed(0)
    base = toy_base()
    model = transfer.build_classifier(base, num_classes=3, dropout=0.0)
    assert transfer.unfreeze_top(base, 3) == 2  # conv2 and relu2; bn2 stays frozen
    bn, conv, bottom = base.get_layer("bn2"), base.get_layer("conv2"), base.get_layer("conv0")
    before = [v.numpy().copy() for v in (bn.moving_mean, bn.moving_variance, bn.gamma, conv.kernel, bottom.kernel)]
    model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).uniform(0, 5, (16, 16, 16, 3)).astype("float32")  # mean far from 0
    model.fit(x, np.arange(16) % 3, epochs=2, batch_size=8, verbose=0)
    after = [v.numpy() for v in (bn.moving_mean, bn.moving_variance, bn.gamma, conv.kernel, bottom.kernel)]
    for b, a in zip(before[:3], after[:3]):
        np.testing.assert_array_equal(a, b)  # BN statistics and scale untouched
    assert not np.allclose(after[3], before[3])  # the unfrozen top conv trains
    np.testing.assert_array_equal(after[4], before[4])  # the bottom stays frozen
    # Control: the same layer, trainable and called in training mode, does move its statistics.
    bn.trainable = True
    bn(tf.fill((8, 16, 16, 4), 3.0), training=True)
    assert not np.allclose(bn.moving_mean.numpy(), before[0])


def test_unfreeze_top_checks_n_layers(tiny_base):
    with pytest.raises(ValueError, match="n_layers="):
        transfer.unfreeze_top(tiny_base, 0)


# ---------------------------------------------------------------- own photos


def test_from_directory_feeds_the_same_pipeline(tmp_path):
    _, images = random_photos(6)
    for i, img in enumerate(images):
        folder = tmp_path / ("daisy" if i % 2 else "rose")
        folder.mkdir(exist_ok=True)
        (folder / f"{i}.jpg").write_bytes(tf.io.encode_jpeg(img).numpy())
    ds, names = transfer.from_directory(str(tmp_path), image_size=32)
    assert names == ["daisy", "rose"]
    out = transfer.make_pipeline(ds, base="mobilenetv2", image_size=32, training=True, batch_size=6)
    x, y = next(iter(out))
    assert x.shape == (6, 32, 32, 3) and sorted(y.numpy().tolist()) == [0, 0, 0, 1, 1, 1]
    transfer.check_input_range(x, "mobilenetv2")
    with pytest.raises(ValueError, match="directory="):
        transfer.from_directory(str(tmp_path / "missing"), image_size=32)


# ---------------------------------------------------------------- cost and metrics


def test_count_macs_by_hand():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same")(inputs)  # 8×8×8: 64·9·3·8
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)  # 64·9·8
    x = keras.layers.SeparableConv2D(4, 3, padding="valid")(x)  # 6×6: 36·(9·8 + 8·4)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(5)(x)  # 4·5
    model = keras.Model(inputs, outputs)
    assert transfer.count_macs(model) == 64 * 9 * 3 * 8 + 64 * 9 * 8 + 36 * (9 * 8 + 8 * 4) + 4 * 5


def test_count_macs_of_mobilenetv2_matches_the_paper():
    # Sandler et al. (2018), table 3: MobileNetV2 1.0 at 224 × 224 needs 300 M multiply-adds (with its top).
    model = keras.applications.MobileNetV2(weights=None)
    assert abs(transfer.count_macs(model) / 1e6 - 300) < 3


def test_per_class_metrics_by_hand():
    m = transfer.per_class_metrics([0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 0, 1], 3)
    np.testing.assert_array_equal(m.confusion, [[1, 1, 0], [0, 2, 0], [1, 1, 0]])
    assert m.accuracy == pytest.approx(3 / 6)
    np.testing.assert_allclose(m.precision[:2], [1 / 2, 2 / 4])
    assert np.isnan(m.precision[2])
    np.testing.assert_allclose(m.recall, [1 / 2, 1, 0])
    with pytest.raises(ValueError, match="y_pred"):
        transfer.per_class_metrics([0], [3], 3)


def test_mistakes_most_confident_first():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.7, 0.3]])
    y_true = np.array([0, 0, 0, 1])
    idx = transfer.mistakes(y_true, probs.argmax(1), probs)
    assert idx.tolist() == [1, 3, 2]


# ---------------------------------------------------------------- the tensor that enters the base


def models_with_rescaling_in_front(base_model):
    """The same mistake (Rescaling(1/255) in front of the base) built the three usual ways."""
    size = base_model.input_shape[1:]
    inputs = keras.Input(size)
    functional = keras.Model(inputs, base_model(keras.layers.Rescaling(1 / 255)(inputs), training=False))
    listed = keras.Sequential([keras.Input(size), keras.layers.Rescaling(1 / 255), base_model])
    added = keras.Sequential([keras.Input(size)])
    added.add(keras.layers.Rescaling(1 / 255))
    added.add(base_model)
    added.add(keras.layers.GlobalAveragePooling2D())  # rebuilt at each add: old call nodes remain
    return {"functional": functional, "list": listed, "add": added}


@pytest.mark.parametrize("how", ["functional", "list", "add"])
def test_check_model_input_catches_a_rescaling_inside_the_model(tiny_base, how):
    pixels = photo_batch(96)
    batch = keras.applications.mobilenet_v2.preprocess_input(tf.identity(pixels))
    transfer.check_input_range(batch, "mobilenetv2")  # the pipeline's batch alone is right
    model = models_with_rescaling_in_front(tiny_base)[how]
    seen = transfer.input_to_base(model, tiny_base, batch)
    np.testing.assert_allclose(np.asarray(seen), np.asarray(batch) / 255, atol=1e-6)
    with pytest.raises(ValueError, match="no dark pixels"):
        transfer.check_model_input(model, tiny_base, batch, "mobilenetv2")


def test_check_model_input_passes_a_right_model_and_rejects_a_foreign_base(tiny_base):
    pixels = photo_batch(96)
    batch = keras.applications.mobilenet_v2.preprocess_input(tf.identity(pixels))
    model = transfer.build_classifier(tiny_base, num_classes=3)
    stats = transfer.check_model_input(model, tiny_base, batch, "mobilenetv2")
    assert stats == transfer.range_stats(batch)
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="base_model"):
        transfer.input_to_base(other, tiny_base, batch)


# ---------------------------------------------------------------- frozen features and the probe


def test_extract_features_is_the_pooled_base_output_with_optional_flip(tiny_base):
    x = tf.random.uniform((5, 96, 96, 3), -1, 1, seed=1)
    ds = tf.data.Dataset.from_tensor_slices((x, tf.range(5, dtype=tf.int64))).batch(2)
    feats, labels = transfer.extract_features(tiny_base, ds)
    expected = tf.reduce_mean(tiny_base(x, training=False), axis=(1, 2)).numpy()
    assert feats.shape == (5, tiny_base.output_shape[-1]) and labels.tolist() == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(feats, expected, rtol=1e-4, atol=1e-5)
    flipped, _ = transfer.extract_features(tiny_base, ds, flip=True)
    mirror = tf.reduce_mean(tiny_base(tf.reverse(x, axis=[2]), training=False), axis=(1, 2)).numpy()
    np.testing.assert_allclose(flipped, (expected + mirror) / 2, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="ds"):
        transfer.extract_features(tiny_base, ds.take(0))


def test_linear_probe_learns_a_linear_rule_and_picks_l2_on_validation():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 20)).astype(np.float32) * rng.uniform(0.1, 50, 20).astype(np.float32)
    y = (x[:, :3] / x[:, :3].std(axis=0)).argmax(axis=1)  # linear in the standardized features
    probe = transfer.fit_linear_probe((x[:400], y[:400]), (x[400:], y[400:]), num_classes=3,
                                      l2_grid=(1e-3, 10.0))
    assert set(probe.val_accuracy) == {1e-3, 10.0}
    assert probe.val_accuracy[1e-3] > 0.9 > probe.val_accuracy[10.0]  # too strong a penalty underfits
    assert probe.l2 == 1e-3
    pred = probe.model.predict(x[400:], verbose=0).argmax(axis=1)
    assert np.mean(pred == y[400:]) == pytest.approx(probe.val_accuracy[1e-3])
    with pytest.raises(ValueError, match="train, validation"):
        transfer.fit_linear_probe((x[:, :5], y), (x[:, :4], y), num_classes=3)


def test_predict_with_flip_averages_the_mirror_image():
    inputs = keras.Input((4, 4, 1))
    left = keras.layers.Lambda(lambda t: t[:, :, :2, 0])(inputs)  # sees only the left half
    outputs = keras.layers.Softmax()(keras.layers.Flatten()(left)[:, :2] * 10)
    model = keras.Model(inputs, outputs)
    x = np.zeros((1, 4, 4, 1), np.float32)
    x[0, 0, 0, 0] = 1.0  # a bright pixel top-left: class 0 plainly, only half as sure with the mirror
    ds = tf.data.Dataset.from_tensor_slices((x, [0])).batch(1)
    _, _, plain = transfer.predict(model, ds)
    _, _, both = transfer.predict(model, ds, flip=True)
    mirror = np.asarray(model(x[:, :, ::-1]))
    np.testing.assert_allclose(both, (plain + mirror) / 2, rtol=1e-6)
    assert not np.allclose(both, plain)


def test_random_weights_only_when_asked_and_said(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(data, "can_reach", lambda *a, **k: False)
    weights, note = transfer.resolve_weights("imagenet", "mobilenetv2", random_if_missing=True)
    assert weights is None and "RANDOM" in note and str(tmp_path / "models") in note
    with pytest.raises(transfer.WeightsUnavailableError):
        transfer.resolve_weights("imagenet", "mobilenetv2")


def test_classifier_from_scratch_trains_everything_with_batch_statistics():
    keras.utils.set_random_seed(0)
    base = transfer.build_base("mobilenetv2", image_size=32, weights=None, alpha=0.35)
    model = transfer.build_classifier(base, num_classes=3, pretrained=False)
    summary = transfer.trainable_summary(model)
    bn = [w for layer in base.layers if transfer.is_batch_norm(layer) for w in layer.non_trainable_weights]
    assert summary["non_trainable"] == sum(int(np.prod(w.shape)) for w in bn)  # only BN moving stats
    first_bn = base.layers[2]
    assert transfer.is_batch_norm(first_bn)
    before = first_bn.moving_mean.numpy().copy()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.train_on_batch(np.random.default_rng(0).uniform(-1, 1, (4, 32, 32, 3)), np.zeros(4))
    assert not np.allclose(first_bn.moving_mean.numpy(), before)  # training mode updates statistics


def test_random_crops_change_from_epoch_to_epoch_and_repeat_across_runs():
    keras.utils.set_random_seed(42)  # as the chapters do: a seeded stateful crop would replay epoch 1
    ds, _ = random_photos(6, sizes=((60, 90),))

    def epochs(n):
        out = transfer.make_pipeline(ds, base="mobilenetv2", image_size=32, training=True, batch_size=6,
                                     augment=False, preprocess=False, shuffle_buffer=1)  # no reordering
        return [next(iter(out))[0].numpy() for _ in range(n)]

    first, second = epochs(2)
    assert not np.array_equal(first, second)  # a new crop offset each epoch, not a replay of epoch 1
    again = epochs(2)
    np.testing.assert_array_equal(first, again[0])  # and the same sequence on a new run: seeded
    np.testing.assert_array_equal(second, again[1])


# ---------------------------------------------------------------- split_at, any-size base


def test_split_at_recomposes_the_model_and_shares_weights(tiny_base):
    bottom, top = transfer.split_at(tiny_base, "block_15_add")
    x = np.random.default_rng(1).uniform(-1, 1, (2, 96, 96, 3)).astype("float32")
    whole = np.asarray(tiny_base(x, training=False))
    parts = np.asarray(top(bottom(x, training=False), training=False))
    np.testing.assert_allclose(parts, whole, atol=1e-5)
    assert bottom.output.shape[-1] == tiny_base.get_layer("block_15_add").output.shape[-1]
    assert not isinstance(top.output, list)
    assert top.get_layer("Conv_1") is tiny_base.get_layer("Conv_1")
    with pytest.raises(ValueError, match="layer_name="):
        transfer.split_at(tiny_base, "no_such_layer")


def test_build_base_without_a_size_accepts_any_size():
    keras.utils.set_random_seed(0)
    base = transfer.build_base("mobilenetv2", image_size=None, weights=None, alpha=0.35)
    shapes = [tuple(base(np.zeros((1, h, w, 3), "float32")).shape) for h, w in ((64, 64), (96, 160))]
    assert shapes == [(1, 2, 2, 1280), (1, 3, 5, 1280)]
    with pytest.raises(ValueError, match="image_size="):
        transfer.build_base("mobilenetv2", image_size=4, weights=None)


def test_restoring_puts_weights_statistics_and_flags_back(tiny_base):
    bottom, top = transfer.split_at(tiny_base, "block_15_add")
    x = np.random.default_rng(2).normal(size=(4,) + tuple(top.input.shape[1:])).astype("float32")
    before = np.asarray(top(x, training=False))
    bn = next(layer for layer in top.layers if transfer.is_batch_norm(layer))
    original = [layer.trainable for layer in tiny_base.layers]
    top.trainable = False
    flags = [layer.trainable for layer in tiny_base.layers]
    with transfer.restoring(top):
        top.trainable = True
        top(x, training=True)  # moves the BN moving statistics
        top.set_weights([w + 1.0 for w in top.get_weights()])
        changed = np.asarray(top(x, training=False))
        assert bn.trainable
    assert np.abs(changed - before).max() > 1e-3  # the block did change the layers
    np.testing.assert_allclose(np.asarray(top(x, training=False)), before, atol=1e-6)
    assert [layer.trainable for layer in tiny_base.layers] == flags
    assert not bn.trainable
    for layer, flag in zip(tiny_base.layers, original):
        layer.trainable = flag
