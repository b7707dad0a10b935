"""Transfer learning on large images: splits, a tf.data pipeline, a range guard, a pretrained base, evaluation.

The pieces of question 10 of the CNN chapter, each testable on its own:

* :data:`SPLITS` and :func:`class_counts`: deterministic train / validation / test splits by TFDS slicing.
* :func:`make_pipeline`: decode → resize → cache → shuffle → crop (random for training, central for
  evaluation) → batch → augmentation → the base model's own ``preprocess_input`` → prefetch.
* :func:`check_input_range`: raises when a batch is not in the range the chosen base expects (the silent
  "images rescaled twice" failure that trains to chance accuracy without any error);
  :func:`check_model_input` applies it to the tensor that actually enters the base inside a model, so a
  ``Rescaling`` layer in front of the base is caught too.
* :func:`extract_features` and :func:`fit_linear_probe`: frozen ImageNet features and a linear classifier on
  them, the cheapest use of a pretrained network.
* :func:`resolve_weights`: where Keras looks for the ImageNet weights file, and a clear error when it is
  missing and cannot be downloaded.
* :func:`build_classifier`, :func:`freeze_base`, :func:`unfreeze_top`: a pretrained base with a new head, and the
  two phases of fine-tuning with BatchNormalization kept in inference mode.
* :func:`split_at`: a base cut in two (a frozen bottom whose outputs can be cached, a top to fine-tune);
  :func:`restoring` puts shared layers' weights and ``trainable`` flags back after fine-tuning them.
* :func:`count_macs`, :func:`latency_ms`, :func:`per_class_metrics`, :func:`mistakes`, :func:`duplicate_photos`
  and the figures :func:`show_batch` (also the gallery of mistakes) and :func:`confusion_figure`.

Images are in pixels (height × width), pixel values in the units stated per function (``[0, 255]`` unless said).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnn_helpers import data

#: Deterministic splits of tf_flowers' only split ("train", 3,670 photos), by TFDS slicing.
SPLITS: dict[str, str] = {
    "test": "train[:10%]",
    "validation": "train[10%:25%]",
    "train": "train[25%:]",
}

#: Fraction of the short side kept by the central crop at evaluation (the usual ImageNet 0.875).
CROP_FRACTION = 0.875


@dataclass(frozen=True)
class BaseSpec:
    """What one keras.applications base needs.

    Attributes:
        name: our key, e.g. ``"efficientnetb0"``.
        constructor: the attribute of ``keras.applications`` that builds it.
        module: the submodule of ``keras.applications`` holding its ``preprocess_input``.
        native_size: the image side (pixels) its ImageNet weights were trained at.
        input_range: the pixel range ``(low, high)`` the model expects after ``preprocess_input``.
        weights_url: the folder Keras downloads the weights from.
    """

    name: str
    constructor: str
    module: str
    native_size: int
    input_range: tuple[float, float]
    weights_url: str


BASES: dict[str, BaseSpec] = {
    "efficientnetb0": BaseSpec(
        "efficientnetb0", "EfficientNetB0", "efficientnet", 224, (0.0, 255.0),
        "https://storage.googleapis.com/keras-applications/",
    ),
    "mobilenetv2": BaseSpec(
        "mobilenetv2", "MobileNetV2", "mobilenet_v2", 224, (-1.0, 1.0),
        "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/",
    ),
    "xception": BaseSpec(
        "xception", "Xception", "xception", 299, (-1.0, 1.0),
        "https://storage.googleapis.com/tensorflow/keras-applications/xception/",
    ),
}

#: Host the weights are downloaded from; probed (briefly) before a download is attempted.
WEIGHTS_HOST = "storage.googleapis.com"


class WeightsUnavailableError(RuntimeError):
    """The ImageNet weights file is not in Keras' cache and cannot be downloaded from here."""


def spec(base: str) -> BaseSpec:
    """The :class:`BaseSpec` of ``base`` (one of :data:`BASES`)."""
    if base not in BASES:
        raise ValueError(f"base={base!r} is not one of {', '.join(BASES)}")
    return BASES[base]


# --------------------------------------------------------------------------------------------- splits


def load_split(split: str, *, limit: int | None = None, name: str = "tf_flowers", decode: bool = False):
    """One split of ``name`` as a ``tf.data.Dataset`` of ``(image, label)``.

    Args:
        split: a TFDS split string, e.g. ``SPLITS["train"]``.
        limit: keep only the first ``limit`` examples (``None``: all).
        name: the TFDS dataset.
        decode: if False, images stay encoded JPEG bytes (``tf.string``); :func:`make_pipeline` decodes them.
    """
    import tensorflow_datasets as tfds

    if limit is not None and limit < 1:
        raise ValueError(f"limit={limit!r}: must be a positive number of examples or None")
    kwargs: dict[str, Any] = {} if decode else {"decoders": {"image": tfds.decode.SkipDecoding()}}
    ds = data.load(name, split=split, as_supervised=True, **kwargs)
    return ds if limit is None else ds.take(limit)


def labels_of(ds) -> np.ndarray:
    """All labels of a dataset of ``(image, label)`` (batched or not), as an int64 array."""
    parts = [np.atleast_1d(np.asarray(y)) for y in ds.map(lambda x, y: y).as_numpy_iterator()]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


def class_counts(labels: Sequence[int] | np.ndarray, num_classes: int) -> np.ndarray:
    """Number of examples of each class ``0 … num_classes-1``."""
    labels = np.asarray(labels)
    if num_classes < 1:
        raise ValueError(f"num_classes={num_classes!r}: must be at least 1")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels: values must lie in [0, {num_classes}), got {labels.min()}…{labels.max()}")
    return np.bincount(labels, minlength=num_classes)


# ------------------------------------------------------------------------------------------- pipeline


def preprocess_function(base: str):
    """The base's own ``keras.applications.<module>.preprocess_input`` (pixels in [0, 255] → its range)."""
    import keras

    return getattr(keras.applications, spec(base).module).preprocess_input


def augmentation_layers(seed: int = 42, rotation: float = 0.05, zoom: float = 0.1, contrast: float = 0.2):
    """Random flip, rotation (fraction of a full turn), zoom (fraction of the side) and contrast.

    Works on float pixels in [0, 255] (RandomContrast clips to that range), so it runs before
    ``preprocess_input``.
    """
    import keras

    return keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal", seed=seed),
            keras.layers.RandomRotation(rotation, seed=seed + 1),
            keras.layers.RandomZoom(zoom, seed=seed + 2),
            keras.layers.RandomContrast(contrast, seed=seed + 3),
        ],
        name="augmentation",
    )


def resize_short_side(image, side: int):
    """Resize ``image`` (H × W × 3) so that its shorter side is ``side`` pixels, keeping the aspect ratio."""
    import tensorflow as tf

    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = tf.cast(side, tf.float32) / tf.reduce_min(shape)
    new = tf.cast(tf.math.ceil(shape * scale), tf.int32)
    return tf.image.resize(image, new, antialias=True)


def make_pipeline(
    ds,
    *,
    base: str,
    image_size: int,
    training: bool,
    batch_size: int = 32,
    augment: bool | None = None,
    preprocess: bool = True,
    cache: bool | str = True,
    shuffle_buffer: int = 1_000,
    seed: int = 42,
):
    """The input pipeline: ``(image, label)`` → batches ready for ``base``.

    Steps: decode JPEG (if the images are encoded bytes) → resize the short side to
    ``image_size / CROP_FRACTION`` → cast to uint8 → cache → (training) shuffle → crop ``image_size`` ×
    ``image_size`` (random for training, with a new offset every epoch; central otherwise) → batch →
    (training) augmentation → the base's ``preprocess_input`` → prefetch(AUTOTUNE).

    Args:
        ds: unbatched ``(image, label)``: uint8 H × W × 3 images of any size, or encoded JPEG strings.
        base: a key of :data:`BASES`; decides ``preprocess_input`` and thus the output range.
        image_size: output side in pixels.
        training: shuffle, random crop and augmentation if True; central crop, fixed order otherwise.
        batch_size: images per batch.
        augment: apply :func:`augmentation_layers`; default: same as ``training``.
        preprocess: apply ``preprocess_input``; False gives float pixels in [0, 255] (for display).
        cache: True caches in memory, a string caches to that file prefix, False does not cache.
        shuffle_buffer: examples in the shuffle buffer (training only).
        seed: seed of the shuffle, crops and augmentation.

    Returns:
        A ``tf.data.Dataset`` of ``(float32 images [B, image_size, image_size, 3], int labels [B])``.
    """
    import tensorflow as tf

    spec(base)
    if image_size < 8:
        raise ValueError(f"image_size={image_size!r}: must be at least 8 pixels")
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}: must be at least 1")
    augment = training if augment is None else augment
    autotune = tf.data.AUTOTUNE
    big = int(math.ceil(image_size / CROP_FRACTION))
    encoded = ds.element_spec[0].dtype == tf.string

    def load(image, label):
        if encoded:
            image = tf.io.decode_jpeg(image, channels=3)
        image = resize_short_side(image, big)
        image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
        return image, label

    out = ds.map(load, num_parallel_calls=autotune)
    if cache:
        out = out.cache(cache if isinstance(cache, str) else "")
    if training:
        out = out.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
        # One stateless seed per photo, drawn anew each epoch (a seeded stateful crop inside map would
        # restart its stream with every new iterator and repeat the same offsets epoch after epoch).
        crop_seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        out = tf.data.Dataset.zip((out, crop_seeds)).map(lambda pair, s: (*pair, s))
    else:
        out = out.map(lambda image, label: (image, label, tf.zeros(2, tf.int64)))

    def crop(image, label, crop_seed):
        if training:
            image = tf.image.stateless_random_crop(image, (image_size, image_size, 3), seed=crop_seed)
        else:
            h, w = tf.shape(image)[0], tf.shape(image)[1]
            top, left = (h - image_size) // 2, (w - image_size) // 2
            image = image[top : top + image_size, left : left + image_size]
            image = tf.ensure_shape(image, (image_size, image_size, 3))
        return tf.cast(image, tf.float32), label

    out = out.map(crop, num_parallel_calls=autotune).batch(batch_size)
    if augment:
        layers = augmentation_layers(seed)
        out = out.map(lambda x, y: (layers(x, training=True), y), num_parallel_calls=autotune)
    if preprocess:
        fn = preprocess_function(base)
        out = out.map(lambda x, y: (fn(x), y), num_parallel_calls=autotune)
    return out.prefetch(autotune)


def from_directory(directory: str, *, image_size: int, batch_size: int = 32, seed: int = 42, **kwargs: Any):
    """A folder of photos (one sub-folder per class) as unbatched ``(uint8 image, label)``, for :func:`make_pipeline`.

    Wraps ``keras.utils.image_dataset_from_directory``, which decodes and resizes (central crop to a square,
    side ``image_size / CROP_FRACTION``). Returns ``(dataset, class_names)``; class names are the sorted
    folder names, or ``class_names=`` when given (label ``i`` is then the folder ``class_names[i]``).
    Extra arguments (``validation_split``, ``subset``) go to Keras unchanged.
    """
    import keras
    import tensorflow as tf

    if not os.path.isdir(directory):
        raise ValueError(f"directory={directory!r} is not a folder")
    big = int(math.ceil(image_size / CROP_FRACTION))
    ds = keras.utils.image_dataset_from_directory(
        directory, image_size=(big, big), batch_size=batch_size, seed=seed, shuffle=False,
        crop_to_aspect_ratio=True, **kwargs,
    )
    names = list(ds.class_names)
    ds = ds.unbatch().map(lambda x, y: (tf.cast(tf.clip_by_value(tf.round(x), 0, 255), tf.uint8), y))
    return ds, names


def throughput(ds, *, batches: int) -> tuple[float, int]:
    """Images per second delivered by ``ds`` (batched) over ``batches`` batches, after one warm-up batch.

    Returns ``(images_per_second, images)``.
    """
    if batches < 1:
        raise ValueError(f"batches={batches!r}: must be at least 1")
    it = iter(ds)
    next(it)
    n = 0
    start = time.perf_counter()
    for _ in range(batches):
        try:
            x, _ = next(it)
        except StopIteration:
            break
        n += int(x.shape[0])
    return n / (time.perf_counter() - start), n


# ---------------------------------------------------------------------------------------- range guard


@dataclass(frozen=True)
class RangeStats:
    """Pixel statistics of one batch: min, max, mean, standard deviation."""

    min: float
    max: float
    mean: float
    std: float

    def __str__(self) -> str:
        return f"min {self.min:8.3f}  max {self.max:8.3f}  mean {self.mean:8.3f}  std {self.std:7.3f}"


def range_stats(images) -> RangeStats:
    """:class:`RangeStats` of an array or tensor of pixels."""
    a = np.asarray(images, dtype=np.float64)
    if a.size == 0:
        raise ValueError("images: the batch is empty")
    return RangeStats(float(a.min()), float(a.max()), float(a.mean()), float(a.std()))


def check_input_range(images, base: str, *, tolerance: float = 0.02, coverage: float = 0.25) -> RangeStats:
    """Raise ``ValueError`` unless a batch of natural photos spans the range ``base`` expects.

    A batch passes when its values stay inside ``input_range`` (± ``tolerance`` × its width) and reach into
    both its lowest and its highest ``coverage`` fraction: real photos have dark and bright pixels. That
    catches images rescaled twice (MobileNetV2: all values ≈ −1), [0, 1] images given to a [−1, 1] or
    [0, 255] model, and [−1, 1] images given to EfficientNet, which rescales internally.

    Args:
        images: a batch of pixels, e.g. ``next(iter(pipeline))[0]``.
        base: a key of :data:`BASES`.
        tolerance: allowed overshoot, as a fraction of the range's width.
        coverage: the batch's min must lie in the range's lowest ``coverage`` fraction and its max in the
            highest.

    Returns:
        The batch's :class:`RangeStats` when it passes.
    """
    low, high = spec(base).input_range
    if not 0 < coverage < 0.5:
        raise ValueError(f"coverage={coverage!r}: must lie in (0, 0.5)")
    stats = range_stats(images)
    width = high - low
    problems = []
    if stats.min < low - tolerance * width or stats.max > high + tolerance * width:
        problems.append("values fall outside it")
    if stats.min > low + coverage * width:
        problems.append(f"no dark pixels (min {stats.min:.3g} > {low + coverage * width:.3g})")
    if stats.max < high - coverage * width:
        problems.append(f"no bright pixels (max {stats.max:.3g} < {high - coverage * width:.3g})")
    if problems:
        raise ValueError(
            f"images: {base} expects pixels in [{low:g}, {high:g}] but the batch has {stats}: "
            + "; ".join(problems)
            + ". Check that the images are rescaled exactly once, by the base's own preprocess_input."
        )
    return stats


def _nested_layer(model, base_model):
    for layer in model.layers:
        if layer is base_model:
            return layer
    raise ValueError(f"base_model: {base_model.name!r} is not a layer of model {model.name!r}")


def input_to_base(model, base_model, images):
    """The tensor that enters ``base_model`` when ``model`` (which contains it as a layer) sees ``images``.

    Runs ``images`` through the layers of ``model`` that stand in front of ``base_model`` (``Rescaling``,
    augmentation, ``preprocess_input`` wrapped in a layer, …) in inference mode. Works for functional and
    Sequential models (a Sequential rebuilt by ``add`` keeps older call nodes, so each is tried, newest first).
    """
    import keras

    layer = _nested_layer(model, base_model)
    errors = []
    for node in reversed(layer._inbound_nodes):
        try:
            front = keras.Model(model.inputs, node.input_tensors[0])
        except ValueError as err:  # a node of an older graph of a rebuilt Sequential
            errors.append(str(err))
            continue
        return front(images, training=False)
    raise ValueError(f"model: cannot find the input of {base_model.name!r} in its graph ({errors[-1][:200]})")


def check_model_input(model, base_model, images, base: str, **kwargs: Any) -> RangeStats:
    """:func:`check_input_range` on what ``base_model`` receives inside ``model`` for ``images``.

    Give it the batches the pipeline produces: a ``Rescaling(1/255)`` or a second ``preprocess_input`` in the
    model, in front of the base, then fails here although the pipeline's own batches look right.
    """
    return check_input_range(input_to_base(model, base_model, images), base, **kwargs)


# ------------------------------------------------------------------------------------ frozen features


def extract_features(base_model, ds, *, flip: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Global-average-pooled outputs of a frozen ``base_model`` over a batched ``(images, labels)`` dataset.

    Args:
        base_model: a model without top, called in inference mode.
        ds: batches already in the base's input range.
        flip: also run the horizontally flipped images and average the two feature vectors.

    Returns:
        ``(features [N, channels] float32, labels [N] int64)``, in the dataset's order.
    """
    import tensorflow as tf

    fn = tf.function(lambda x: tf.reduce_mean(base_model(x, training=False), axis=(1, 2)))
    feats, labels = [], []
    for x, y in ds:
        f = fn(x)
        if flip:
            f = (f + fn(tf.reverse(x, axis=[2]))) / 2
        feats.append(f.numpy())
        labels.append(np.asarray(y))
    if not feats:
        raise ValueError("ds: the dataset is empty")
    return np.concatenate(feats).astype(np.float32), np.concatenate(labels).astype(np.int64)


@dataclass(frozen=True)
class LinearProbe:
    """A softmax classifier on frozen features, chosen on validation.

    Attributes:
        model: the Keras model (standardization + L2-regularized dense softmax) of the chosen ``l2``.
        l2: the chosen L2 coefficient.
        val_accuracy: validation accuracy of each L2 tried, ``{l2: accuracy}`` (fractions).
    """

    model: Any
    l2: float
    val_accuracy: dict[float, float]


def fit_linear_probe(
    train: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray],
    *,
    num_classes: int,
    l2_grid: Sequence[float] = (1e-4, 1e-3, 1e-2),
    epochs: int = 200,
    seed: int = 42,
) -> LinearProbe:
    """Multinomial logistic regression on features, its L2 coefficient chosen on the validation split.

    Features are standardized with the training split's mean and standard deviation; each L2 value trains a
    dense softmax with Adam on full batches for ``epochs`` steps. Ties go to the stronger regularization.
    """
    import keras
    import tensorflow as tf

    x_train, y_train = train
    x_val, y_val = validation
    if x_train.ndim != 2 or len(x_train) != len(y_train) or x_val.shape[1:] != x_train.shape[1:]:
        raise ValueError(f"train, validation: need (features [N, D], labels [N]) with the same D, got "
                         f"{x_train.shape}, {y_train.shape} and {x_val.shape}")
    if not l2_grid:
        raise ValueError("l2_grid: give at least one value")
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-6
    scores, models = {}, {}
    for l2 in sorted(l2_grid, reverse=True):
        keras.utils.set_random_seed(seed)
        inputs = keras.Input(shape=x_train.shape[1:])
        z = keras.layers.Normalization(mean=mean, variance=std**2)(inputs)
        outputs = keras.layers.Dense(num_classes, activation="softmax",
                                     kernel_regularizer=keras.regularizers.L2(l2))(z)
        model = keras.Model(inputs, outputs, name="linear_probe")
        model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
        full_batches = tf.data.Dataset.from_tensors((x_train, y_train)).repeat(epochs)
        model.fit(full_batches, epochs=1, verbose=0, shuffle=False)  # `epochs` full-batch steps
        scores[l2] = float(np.mean(model.predict(x_val, verbose=0).argmax(axis=1) == y_val))
        models[l2] = model
    best = max(scores, key=lambda k: (scores[k], k))
    return LinearProbe(models[best], best, scores)


# -------------------------------------------------------------------------------------------- weights


def weights_file(base: str, *, alpha: float = 1.0, image_size: int = 224) -> str:
    """The file name Keras caches the no-top ImageNet weights of ``base`` under (as in keras' source).

    ``alpha`` and ``image_size`` matter for MobileNetV2 only (one file per width and size).
    """
    s = spec(base)
    if s.name == "efficientnetb0":
        return "efficientnetb0_notop.h5"
    if s.name == "xception":
        return "xception_weights_tf_dim_ordering_tf_kernels_notop.h5"
    if image_size not in (96, 128, 160, 192, 224):
        raise ValueError(f"image_size={image_size!r}: MobileNetV2 weights exist for 96, 128, 160, 192, 224")
    return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_{image_size}_no_top.h5"


def keras_home() -> str:
    """Keras' cache folder: ``$KERAS_HOME``, else ``~/.keras`` (``/tmp/.keras`` if home is not writable)."""
    if "KERAS_HOME" in os.environ:
        return os.environ["KERAS_HOME"]
    home = os.path.expanduser("~")
    return os.path.join(home if os.access(home, os.W_OK) else "/tmp", ".keras")


def weights_path(base: str, **kwargs: Any) -> str:
    """Where Keras looks for the weights file first: ``<keras_home>/models/<weights_file>``."""
    return os.path.join(keras_home(), "models", weights_file(base, **kwargs))


def resolve_weights(
    weights: str | None,
    base: str,
    *,
    host: str = WEIGHTS_HOST,
    timeout_s: float = 2.0,
    random_if_missing: bool = False,
    **kwargs: Any,
) -> tuple[str | None, str]:
    """Check that ``weights`` can be used for ``base`` before any model is built; fail fast otherwise.

    Args:
        weights: ``"imagenet"`` or ``None`` (random initialization).
        base: a key of :data:`BASES`.
        host: the download host, probed for at most ``timeout_s`` seconds when the file is missing.
        random_if_missing: for quick smoke runs only: instead of raising, return ``None`` (random weights)
            with a note that says so loudly. Never use it where accuracy is reported as a result.
        kwargs: ``alpha``, ``image_size`` for :func:`weights_file`.

    Returns:
        ``(weights, note)``: the value to pass to Keras, and a one-line note saying where they come from.

    Raises:
        WeightsUnavailableError: ``"imagenet"`` is asked, the file is not cached and ``host`` is unreachable;
            the message names the file, the folder to put it in and the URL to fetch it from.
    """
    if weights is None:
        return None, (
            f"weights=None: {base} starts from RANDOM weights (no transfer learning); "
            "its accuracy says nothing about fine-tuning a pretrained model."
        )
    if weights != "imagenet":
        raise ValueError(f"weights={weights!r}: use 'imagenet' or None")
    path = weights_path(base, **kwargs)
    if os.path.isfile(path):
        return "imagenet", f"weights='imagenet': found {path}"
    if data.can_reach(host, timeout_s=timeout_s):
        return "imagenet", f"weights='imagenet': {os.path.basename(path)} will be downloaded from {host}"
    name = os.path.basename(path)
    if random_if_missing:
        return None, (
            f"weights=None: {name} is not in {os.path.dirname(path)} and {host} cannot be reached, so this "
            f"run starts {base} from RANDOM weights (no transfer learning); its accuracy says nothing about "
            "fine-tuning a pretrained model."
        )
    raise WeightsUnavailableError(
        f"The ImageNet weights of {base} are not on this machine and {host} cannot be reached. "
        f"Download {spec(base).weights_url}{name} elsewhere and place it as {name} in the folder "
        f"{os.path.dirname(path)} (that is $KERAS_HOME/models, ~/.keras/models by default). "
        "Refusing to train from random weights silently."
    )


# ----------------------------------------------------------------------------------------------- model


def build_base(base: str, *, image_size: int | None, weights: str | None, alpha: float = 1.0):
    """``keras.applications.<Base>(include_top=False, weights=weights)`` for ``image_size`` × ``image_size`` RGB.

    ``image_size=None`` builds the base for any height and width (``input_shape=(None, None, 3)``): a base
    without its top is fully convolutional. MobileNetV2 then loads its 224-pixel ImageNet weights (Keras'
    notice saying so is silenced).
    """
    import warnings

    import keras

    s = spec(base)
    if image_size is not None and image_size < 8:
        raise ValueError(f"image_size={image_size!r}: must be at least 8 pixels or None")
    kwargs: dict[str, Any] = {"alpha": alpha} if s.name == "mobilenetv2" else {}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*input_shape.*", category=UserWarning)
        return getattr(keras.applications, s.constructor)(
            include_top=False, weights=weights, input_shape=(image_size, image_size, 3), **kwargs
        )


def split_at(model, layer_name: str):
    """Cut a functional ``model`` after the layer ``layer_name``: ``(bottom, top)`` with
    ``top(bottom(x)) == model(x)``. Both share ``model``'s layers (and weights).

    Running the frozen bottom once and caching its output lets the top be trained (fine-tuned) over many
    epochs for the cost of the top alone.
    """
    import keras

    try:
        cut = model.get_layer(layer_name).output
    except ValueError as err:
        raise ValueError(f"layer_name={layer_name!r}: no such layer in {model.name!r}") from err
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    outputs = model.outputs[0] if len(model.outputs) == 1 else model.outputs
    bottom = keras.Model(inputs, cut, name=f"{model.name}_to_{layer_name}")
    top = keras.Model(cut, outputs, name=f"{model.name}_after_{layer_name}")
    return bottom, top


@contextlib.contextmanager
def restoring(model):
    """Context manager: on exit, put back every weight of ``model`` (trainable ones and BatchNormalization
    moving statistics alike) and every layer's ``trainable`` flag as they were on entry.

    Layers shared between models (for example the ``top`` of :func:`split_at`, which is part of the base it
    was cut from) can then be fine-tuned inside the ``with`` block without changing what later code that uses
    the same layers computes.
    """
    def walk(layer):  # outer layers first: setting a model's flag sets its layers' flags too
        yield layer
        for inner in getattr(layer, "layers", []):
            yield from walk(inner)

    weights = [np.array(w) for w in model.get_weights()]
    flags = [(layer, layer.trainable) for layer in walk(model)]
    try:
        yield model
    finally:
        for layer, flag in flags:
            layer.trainable = flag
        model.set_weights(weights)


def build_classifier(
    base_model, *, num_classes: int, dropout: float = 0.2, name: str = "transfer", pretrained: bool = True
):
    """A new head on ``base_model``: global average pooling → dropout → dense softmax.

    With ``pretrained=True`` the base is frozen (:func:`freeze_base`) and called with ``training=False``, so
    its BatchNormalization layers use their stored statistics whatever is trained later. With
    ``pretrained=False`` (a base with random weights, trained from scratch) every layer is trainable and
    BatchNormalization runs in training mode, as in any network trained from scratch.
    """
    import keras

    if num_classes < 2:
        raise ValueError(f"num_classes={num_classes!r}: must be at least 2")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout={dropout!r}: must lie in [0, 1)")
    inputs = keras.Input(shape=base_model.input_shape[1:], name="image")
    if pretrained:
        freeze_base(base_model)
        x = base_model(inputs, training=False)
    else:
        base_model.trainable = True
        x = base_model(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="head")(x)
    return keras.Model(inputs, outputs, name=name)


def is_batch_norm(layer) -> bool:
    """True for BatchNormalization layers."""
    import keras

    return isinstance(layer, keras.layers.BatchNormalization)


def freeze_base(base_model) -> None:
    """Phase 1: no weight of the base is trained."""
    base_model.trainable = False


def unfreeze_top(base_model, n_layers: int) -> int:
    """Phase 2: make the top ``n_layers`` layers of the base trainable, except BatchNormalization layers.

    BatchNormalization layers stay frozen (and, since the base is called with ``training=False``, in
    inference mode): their moving statistics came from millions of images; re-estimating them on small
    batches of a small dataset would shift every activation the pretrained weights expect.

    Returns:
        The number of layers made trainable.
    """
    layers = base_model.layers
    if not 1 <= n_layers <= len(layers):
        raise ValueError(f"n_layers={n_layers!r}: must lie in [1, {len(layers)}]")
    base_model.trainable = True
    made = 0
    for i, layer in enumerate(layers):
        trainable = i >= len(layers) - n_layers and not is_batch_norm(layer)
        layer.trainable = trainable
        made += bool(trainable)
    return made


def trainable_summary(model) -> dict[str, int]:
    """Trainable and non-trainable parameter counts of ``model``."""
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    frozen = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    return {"trainable": trainable, "non_trainable": frozen}


def count_macs(model) -> int:
    """Multiply–accumulates of one forward pass of one image, counting Conv2D, DepthwiseConv2D,
    SeparableConv2D and Dense layers (the rest is negligible). Nested models are walked into.
    """
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += count_macs(layer)
            continue
        if isinstance(layer, keras.layers.Dense):
            total += int(np.prod(layer.kernel.shape)) * int(np.prod(layer.output.shape[1:-1]) or 1)
            continue
        if not isinstance(layer, keras.layers.Conv2D | keras.layers.DepthwiseConv2D | keras.layers.SeparableConv2D):
            continue
        out_h, out_w, out_c = layer.output.shape[1:]
        positions = out_h * out_w
        kh, kw = layer.kernel_size
        c_in = layer.input.shape[-1]
        if isinstance(layer, keras.layers.SeparableConv2D):
            total += positions * (kh * kw * c_in * layer.depth_multiplier + c_in * layer.depth_multiplier * out_c)
        elif isinstance(layer, keras.layers.DepthwiseConv2D):
            total += positions * kh * kw * out_c
        else:
            total += positions * kh * kw * (c_in // layer.groups) * out_c
    return int(total)


def latency_ms(model, *, batch_size: int = 1, repeats: int = 5) -> float:
    """Wall time (ms) of ``model(x, training=False)`` on a random batch: the best of ``repeats`` calls after one
    warm-up call (the minimum is the estimate least disturbed by other processes on a shared machine)."""
    import tensorflow as tf

    if repeats < 1:
        raise ValueError(f"repeats={repeats!r}: must be at least 1")
    x = tf.random.uniform((batch_size, *model.input_shape[1:]), 0, 255, seed=0)
    fn = tf.function(lambda t: model(t, training=False))
    fn(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(x).numpy()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.min(times))


# ------------------------------------------------------------------------------------------ evaluation


@dataclass(frozen=True)
class Metrics:
    """Accuracy, confusion matrix (rows: true class, columns: predicted) and per-class precision/recall."""

    accuracy: float
    confusion: np.ndarray
    precision: np.ndarray
    recall: np.ndarray


def per_class_metrics(y_true, y_pred, num_classes: int) -> Metrics:
    """:class:`Metrics` from integer labels. A class never predicted (or absent) gets precision (recall) NaN."""
    y_true, y_pred = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    if y_true.shape != y_pred.shape or y_true.ndim != 1 or y_true.size == 0:
        raise ValueError(f"y_true, y_pred: need two non-empty 1-D arrays of equal length, got "
                         f"{y_true.shape} and {y_pred.shape}")
    for arg, v in (("y_true", y_true), ("y_pred", y_pred)):
        if v.min() < 0 or v.max() >= num_classes:
            raise ValueError(f"{arg}: labels must lie in [0, {num_classes})")
    confusion = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(confusion, (y_true, y_pred), 1)
    diag = np.diag(confusion).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = diag / confusion.sum(axis=0)
        recall = diag / confusion.sum(axis=1)
    return Metrics(float(diag.sum() / confusion.sum()), confusion, precision, recall)


def predict(model, ds, *, flip: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(y_true, y_pred, probabilities)`` of ``model`` over a batched ``(images, labels)`` dataset, in order.

    With ``flip=True`` (test-time augmentation) the probabilities are the mean over each image and its
    horizontal mirror.
    """
    import tensorflow as tf

    ys, ps = [], []
    for x, y in ds:
        p = np.asarray(model(x, training=False))
        if flip:
            p = (p + np.asarray(model(tf.reverse(x, axis=[2]), training=False))) / 2
        ps.append(p)
        ys.append(np.asarray(y))
    probs = np.concatenate(ps)
    return np.concatenate(ys).astype(np.int64), probs.argmax(axis=1), probs


def show_batch(images, labels, class_names: Sequence[str], *, title: str, predicted=None, columns: int = 6):
    """A grid of images (float or uint8 pixels in [0, 255]) with their labels (and predictions, if given)."""
    import matplotlib.pyplot as plt

    images = np.asarray(images)
    n = len(images)
    if n == 0:
        raise ValueError("images: nothing to show")
    rows = math.ceil(n / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(1.9 * columns, 2.4 * rows + 0.4), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(np.clip(images[i], 0, 255).astype(np.uint8))
        text = class_names[int(labels[i])]
        if predicted is not None:
            text = f"true: {text}\npred: {class_names[int(predicted[i])]}"
        ax.set_title(text, fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def confusion_figure(confusion: np.ndarray, class_names: Sequence[str], *, title: str):
    """The confusion matrix as a heat map with counts (rows: true class, columns: predicted class)."""
    import matplotlib.pyplot as plt

    confusion = np.asarray(confusion)
    k = len(class_names)
    if confusion.shape != (k, k):
        raise ValueError(f"confusion: shape {confusion.shape} does not match {k} class names")
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    im = ax.imshow(confusion, cmap="Blues")
    for i in range(k):
        for j in range(k):
            color = "white" if confusion[i, j] > confusion.max() / 2 else "black"
            ax.text(j, i, str(confusion[i, j]), ha="center", va="center", color=color)
    ax.set_xticks(range(k), class_names, rotation=30, ha="right")
    ax.set_yticks(range(k), class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label="test images")
    fig.tight_layout()
    return fig


def mistakes(y_true, y_pred, probabilities, limit: int = 12) -> np.ndarray:
    """Indices of misclassified examples, the most confident mistakes first."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    wrong = np.flatnonzero(y_true != y_pred)
    confidence = np.asarray(probabilities)[wrong, y_pred[wrong]]
    return wrong[np.argsort(-confidence, kind="stable")][:limit]


def duplicate_photos(splits: dict[str, Any]) -> dict[str, list[tuple[str, int]]]:
    """Identical encoded photos within and across splits.

    Args:
        splits: split name → unbatched dataset of ``(encoded image bytes, label)`` (see :func:`load_split`).

    Returns:
        SHA-1 of the bytes → ``[(split, index), …]`` for every content seen more than once.
    """
    import hashlib

    seen: dict[str, list[tuple[str, int]]] = {}
    for split, ds in splits.items():
        if ds.element_spec[0].dtype.name != "string":
            raise ValueError(f"splits[{split!r}]: needs encoded images (load_split(..., decode=False))")
        for i, (x, _) in enumerate(ds.as_numpy_iterator()):
            seen.setdefault(hashlib.sha1(x).hexdigest(), []).append((split, i))
    return {k: v for k, v in seen.items() if len(v) > 1}
