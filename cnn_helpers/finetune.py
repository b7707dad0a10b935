"""Fine-tune a pretrained ``keras.applications`` base on your own photos (interview question 47).

Run ``python -m cnn_helpers.finetune --help`` for every option. In short::

    python -m cnn_helpers.finetune --data photos/ --out runs/mine      # photos/<class>/<image files>
    python -m cnn_helpers.finetune --tfds tf_flowers --out runs/flowers

What it does, in order:

1. **Data.** A folder with one sub-folder per class (images in any sub-folder below it; JPEG, PNG, BMP or GIF),
   or a TensorFlow Datasets name. Every file of a folder is decoded once before training: a file that is not
   an image, or that cannot be decoded, is skipped with a warning and counted, so nothing fails mid-epoch.
2. **Deterministic splits.** Test and validation are carved out of the data by percentages: per class, from
   the sorted file names shuffled with ``--seed`` (folders), or by TFDS slicing of one split (the defaults give
   :data:`cnn_helpers.transfer.SPLITS`). The test split is used once, at the end.
3. **Pipeline and range guard.** :func:`cnn_helpers.transfer.make_pipeline` (resize, crop, augmentation for
   training, then the base's own ``preprocess_input``); :func:`~cnn_helpers.transfer.check_input_range` and
   :func:`~cnn_helpers.transfer.check_model_input` refuse batches outside the range the base expects.
4. **Two phases.** The base is frozen and called with ``training=False``; phase 1 trains the new head
   (global average pooling → dropout → softmax); phase 2 unfreezes the base's top blocks from a named layer,
   keeps every BatchNormalization layer frozen and in inference mode, recompiles with a learning rate ten
   times lower decaying along a cosine. Early stopping on the validation loss restores the best epoch.
5. **Outputs** in ``--out``: ``model.keras``, ``metrics.json`` (test accuracy, per-class precision and
   recall, confusion matrix, splits, skipped files, per-epoch history, the checks) and ``confusion.png``.

Progress goes to stderr, one line per epoch; the final summary to stdout. Bad input (a missing folder, a class
without images, too few images to split, an unknown dataset, missing weights) stops before training with a
one-line error and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnn_helpers import transfer

#: Exit code for bad input (argparse uses it for usage errors too).
EXIT_BAD_INPUT = 2

#: File name endings read as images (case-insensitive); other files are skipped with a warning.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")

#: Default first unfrozen layer of phase 2 per base: the start of the last stage (7 × 7 at 224 pixels).
UNFREEZE_FROM = {
    "mobilenetv2": "block_13_expand",
    "efficientnetb0": "block6a_expand_conv",
    "xception": "block13_sepconv1_act",
}

#: Warnings printed one per file before they are summarized.
MAX_FILE_WARNINGS = 20


class InputError(ValueError):
    """Bad input: reported in one line, exit code :data:`EXIT_BAD_INPUT`."""


def _warn(message: str) -> None:
    print(f"finetune: warning: {message}", file=sys.stderr, flush=True)


def _info(message: str) -> None:
    print(f"finetune: {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------ folders


@dataclass
class FolderScan:
    """The images of a folder of class sub-folders.

    Attributes:
        class_names: sorted sub-folder names; label ``i`` is ``class_names[i]``.
        files: per class, the sorted paths of the files that decode as images.
        skipped: ``{"not an image": [...], "unreadable": [...], "outside class folders": [...]}`` paths.
    """

    class_names: list[str]
    files: list[list[str]]
    skipped: dict[str, list[str]] = field(default_factory=dict)

    @property
    def skipped_count(self) -> int:
        return sum(len(v) for v in self.skipped.values())


def _decodes(path: str) -> bool:
    import tensorflow as tf

    try:
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.OpError):
        return False
    return min(image.shape[:2]) > 0


def scan_folder(directory: str, *, warn: Callable[[str], None] = _warn) -> FolderScan:
    """Find and check every image under ``directory``/<class>/.

    Each file with an image ending is decoded once (as the pipeline will); one that fails is skipped and
    counted as "unreadable"; other files as "not an image"; files directly in ``directory`` as "outside class
    folders". Hidden files and folders (names starting with ".") are ignored silently.

    Raises:
        InputError: ``directory`` is missing, has fewer than two class folders, or a class has no image.
    """
    if not os.path.isdir(directory):
        raise InputError(f"--data {directory!r}: no such folder")
    entries = sorted(e for e in os.listdir(directory) if not e.startswith("."))
    class_names = [e for e in entries if os.path.isdir(os.path.join(directory, e))]
    skipped: dict[str, list[str]] = {"not an image": [], "unreadable": [], "outside class folders": []}
    skipped["outside class folders"] = [os.path.join(directory, e) for e in entries if e not in class_names]
    if len(class_names) < 2:
        raise InputError(
            f"--data {directory!r}: found {len(class_names)} class folder(s) {class_names}; need at least two "
            "sub-folders, one per class, each holding that class's images"
        )
    files: list[list[str]] = []
    for name in class_names:
        found = []
        for root, dirs, names in os.walk(os.path.join(directory, name)):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for file in sorted(n for n in names if not n.startswith(".")):
                path = os.path.join(root, file)
                if not file.lower().endswith(IMAGE_EXTENSIONS):
                    skipped["not an image"].append(path)
                elif _decodes(path):
                    found.append(path)
                else:
                    skipped["unreadable"].append(path)
        files.append(sorted(found))
    warned = 0
    for reason, paths in skipped.items():
        for path in paths:
            if warned < MAX_FILE_WARNINGS:
                warn(f"skipped {path} ({reason})")
            warned += 1
    if warned > MAX_FILE_WARNINGS:
        warn(f"… and {warned - MAX_FILE_WARNINGS} more skipped files (all listed in metrics.json)")
    empty = [name for name, f in zip(class_names, files) if not f]
    if empty:
        raise InputError(
            f"--data {directory!r}: class folder(s) {empty} contain no readable image "
            f"(endings {', '.join(IMAGE_EXTENSIONS)}); remove the folder or add images"
        )
    return FolderScan(class_names, files, {k: v for k, v in skipped.items() if v})


def split_sizes(n: int, val_percent: int, test_percent: int) -> tuple[int, int, int]:
    """``(train, validation, test)`` sizes for ``n`` examples; validation and test get at least one each.

    Raises:
        InputError: fewer than one training example would remain.
    """
    n_test = max(1, math.floor(n * test_percent / 100 + 0.5))
    n_val = max(1, math.floor(n * val_percent / 100 + 0.5))
    if n - n_test - n_val < 1:
        raise InputError(f"{n} images cannot be split into train, validation and test (need at least 3)")
    return n - n_val - n_test, n_val, n_test


def folder_splits(
    scan: FolderScan, *, val_percent: int, test_percent: int, seed: int
) -> dict[str, tuple[list[str], list[int]]]:
    """Stratified, deterministic splits: per class, the sorted files shuffled with ``seed``, then test first,
    validation next, training last; each split's classes are then interleaved by a seeded shuffle (so that its
    first N files mix the classes). Returns ``{split: (paths, labels)}``; the same inputs give the same splits.
    """
    out: dict[str, tuple[list[str], list[int]]] = {"train": ([], []), "validation": ([], []), "test": ([], [])}
    for label, (name, paths) in enumerate(zip(scan.class_names, scan.files)):
        try:
            n_train, n_val, n_test = split_sizes(len(paths), val_percent, test_percent)
        except InputError as err:
            raise InputError(f"class {name!r}: {err}") from None
        order = np.random.default_rng([seed, label]).permutation(len(paths))
        shuffled = [paths[i] for i in order]
        parts = {"test": shuffled[:n_test], "validation": shuffled[n_test : n_test + n_val],
                 "train": shuffled[n_test + n_val :]}
        for split, chosen in parts.items():
            out[split][0].extend(chosen)
            out[split][1].extend([label] * len(chosen))
    for i, (split, (paths, labels)) in enumerate(out.items()):
        order = np.random.default_rng([seed, len(scan.class_names), i]).permutation(len(paths))
        out[split] = ([paths[j] for j in order], [labels[j] for j in order])
    return out


def _folder_dataset(paths: Sequence[str], labels: Sequence[int]):
    import tensorflow as tf

    def load(path, label):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        image.set_shape([None, None, 3])
        return image, label

    ds = tf.data.Dataset.from_tensor_slices((list(paths), np.asarray(labels, np.int64)))
    return ds.map(load, num_parallel_calls=tf.data.AUTOTUNE)


# ------------------------------------------------------------------------------------------------- TFDS


def tfds_split_strings(split: str, val_percent: int, test_percent: int) -> dict[str, str]:
    """TFDS slices of ``split``: test first, validation next, training last (``transfer.SPLITS`` for 15/10)."""
    edge = test_percent + val_percent
    return {"test": f"{split}[:{test_percent}%]", "validation": f"{split}[{test_percent}%:{edge}%]",
            "train": f"{split}[{edge}%:]"}


def _tfds_datasets(name: str, split: str, val_percent: int, test_percent: int, limit: int | None):
    import tensorflow as tf
    import tensorflow_datasets as tfds

    from cnn_helpers import data

    try:
        data.ensure_available(name)
    except ValueError as err:
        raise InputError(f"--tfds {name!r}: {err}") from None
    builder = tfds.builder(name, data_dir=data.data_dir())
    info = builder.info
    if split not in info.splits:
        raise InputError(f"--tfds-split {split!r}: {name} has the splits {', '.join(info.splits)}")
    label = info.features["label"] if "label" in info.features else None
    if label is None or not hasattr(label, "names"):
        raise InputError(f"--tfds {name!r}: needs a 'label' ClassLabel feature to classify")
    image_spec = info.features["image"] if "image" in info.features else None
    if image_spec is None or image_spec.shape[-1] not in (1, 3):
        raise InputError(f"--tfds {name!r}: needs an 'image' feature with 1 or 3 channels")

    def rgb(image, y):
        if image.shape[-1] == 1:
            image = tf.image.grayscale_to_rgb(image)
        return image, y

    strings = tfds_split_strings(split, val_percent, test_percent)
    datasets = {s: transfer.load_split(strings[s], limit=limit, name=name, decode=True).map(rgb) for s in strings}
    counts = {s: int(info.splits[strings[s]].num_examples) for s in strings}
    return datasets, list(label.names), strings, counts


# --------------------------------------------------------------------------------------------- training


def epoch_logger(phase: str, total_epochs: int):
    """A Keras callback that prints one line per epoch to stderr and keeps the rows in ``.rows``."""
    import keras

    class EpochLog(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.rows: list[dict[str, Any]] = []
            self._start = time.perf_counter()

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = {k: float(v) for k, v in (logs or {}).items()}
            seconds = time.perf_counter() - self._start
            self.rows.append({"phase": phase, "epoch": epoch + 1, "seconds": round(seconds, 2), **logs})
            print(
                f"finetune: {phase} epoch {epoch + 1}/{total_epochs}: loss {logs.get('loss', math.nan):.4f}"
                f" accuracy {logs.get('accuracy', math.nan):.4f}"
                f" val_loss {logs.get('val_loss', math.nan):.4f}"
                f" val_accuracy {logs.get('val_accuracy', math.nan):.4f} ({seconds:.1f} s)",
                file=sys.stderr,
                flush=True,
            )

    return EpochLog()


def _json_number(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _prepare(args: argparse.Namespace) -> dict[str, Any]:
    """Everything before training; every ValueError here is bad input."""
    import keras

    if args.base not in transfer.BASES:
        raise InputError(f"--base {args.base!r}: use one of {', '.join(transfer.BASES)}")
    image_size = args.image_size or transfer.spec(args.base).native_size
    weights = None if args.weights == "none" else "imagenet"
    kwargs = {"alpha": args.alpha, "image_size": image_size} if args.base == "mobilenetv2" else {}
    weights, note = transfer.resolve_weights(weights, args.base, **kwargs)
    _info(note)

    skipped: dict[str, list[str]] = {}
    if args.data is not None:
        scan = scan_folder(args.data)
        class_names, skipped = scan.class_names, scan.skipped
        splits = folder_splits(scan, val_percent=args.val_percent, test_percent=args.test_percent, seed=args.seed)
        if args.limit:
            splits = {s: (p[: args.limit], y[: args.limit]) for s, (p, y) in splits.items()}
        raw = {s: _folder_dataset(*splits[s]) for s in splits}
        sizes = {s: len(splits[s][0]) for s in splits}
        source = {"data": os.path.abspath(args.data)}
    else:
        raw, class_names, strings, counts = _tfds_datasets(
            args.tfds, args.tfds_split, args.val_percent, args.test_percent, args.limit or None
        )
        sizes = {s: n if not args.limit else min(n, args.limit) for s, n in counts.items()}
        source = {"tfds": args.tfds, "splits": strings}
    if len(class_names) < 2:
        raise InputError(f"found {len(class_names)} class(es); need at least two")
    empty = [s for s, n in sizes.items() if n == 0]
    if empty:
        raise InputError(f"split(s) {empty} are empty; use more data or larger --val-percent/--test-percent")
    _info(f"{len(class_names)} classes {class_names}; images per split {sizes}; "
          f"{sum(len(v) for v in skipped.values())} files skipped")

    keras.utils.set_random_seed(args.seed)
    pipes = {
        s: transfer.make_pipeline(raw[s], base=args.base, image_size=image_size, training=(s == "train"),
                                  batch_size=args.batch_size, seed=args.seed)
        for s in raw
    }
    base_model = transfer.build_base(args.base, image_size=image_size, weights=weights, alpha=args.alpha)
    first_unfrozen = args.unfreeze_from or UNFREEZE_FROM[args.base]
    names = [layer.name for layer in base_model.layers]
    if first_unfrozen not in names:
        raise InputError(f"--unfreeze-from {first_unfrozen!r}: no layer of that name in {args.base}")
    model = transfer.build_classifier(base_model, num_classes=len(class_names), dropout=args.dropout,
                                      name=f"finetuned_{args.base}")
    images = next(iter(pipes["train"]))[0]
    stats = transfer.check_input_range(images, args.base)
    transfer.check_model_input(model, base_model, images, args.base)
    _info(f"range guard passed: the base receives {stats}")
    return {"model": model, "base_model": base_model, "pipes": pipes, "class_names": class_names,
            "sizes": sizes, "skipped": skipped, "source": source, "weights_note": note,
            "image_size": image_size, "first_unfrozen": first_unfrozen,
            "n_top": len(names) - names.index(first_unfrozen)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Prepare, train both phases, test once, write the outputs; returns the metrics written to JSON."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from cnn_helpers import runtime

    runtime.import_tensorflow_quietly()
    import keras

    start = time.perf_counter()
    try:
        prep = _prepare(args)
    except InputError:
        raise
    except ValueError as err:  # the checks of transfer and data name the problem; it is the input's
        raise InputError(str(err)) from err
    model, base_model, pipes = prep["model"], prep["base_model"], prep["pipes"]
    os.makedirs(args.out, exist_ok=True)
    total = args.head_epochs + args.fine_epochs
    loss = "sparse_categorical_crossentropy"

    restored: dict[str, int] = {}

    def stopper(phase: str) -> list[Any]:
        """Early stopping on the validation loss (none if --patience 0); records the epoch it restores."""
        if not args.patience:
            return []
        early = keras.callbacks.EarlyStopping(monitor="val_loss", patience=args.patience, restore_best_weights=True)

        class Record(keras.callbacks.Callback):
            def on_train_end(self, logs=None):
                if early.best_weights is not None:  # best_epoch counts from 0 across phases (initial_epoch)
                    restored[phase] = early.best_epoch + 1

        return [early, Record()]

    # Phase 1: the head only.
    log1 = epoch_logger("head", total)
    model.compile(optimizer=keras.optimizers.Adam(args.head_lr), loss=loss, metrics=["accuracy"])
    head_trainable = transfer.trainable_summary(model)
    model.fit(pipes["train"], validation_data=pipes["validation"], epochs=args.head_epochs, verbose=0,
              shuffle=False, callbacks=[log1, *stopper("head")])
    history = list(log1.rows)
    checks: dict[str, Any] = {}
    fine_trainable = None

    # Phase 2: the top of the base, BatchNormalization frozen and in inference mode.
    if args.fine_epochs:
        made = transfer.unfreeze_top(base_model, prep["n_top"])
        bn = [layer for layer in base_model.layers if transfer.is_batch_norm(layer)]
        frozen = [w for layer in base_model.layers if not layer.trainable for w in layer.weights]
        before_bn = [layer.moving_mean.numpy() for layer in bn]
        before_frozen = [w.numpy() for w in frozen]
        steps = max(1, args.fine_epochs * int(pipes["train"].cardinality().numpy()))
        schedule = keras.optimizers.schedules.CosineDecay(args.head_lr / args.lr_ratio, decay_steps=steps)
        model.compile(optimizer=keras.optimizers.Adam(schedule), loss=loss, metrics=["accuracy"])
        fine_trainable = transfer.trainable_summary(model)
        _info(f"phase 2: {made} layers of {args.base} from {prep['first_unfrozen']!r} trainable "
              f"(BatchNormalization kept frozen); {fine_trainable['trainable']:,} trainable parameters")
        done = len(log1.rows)
        log2 = epoch_logger("fine", total)
        model.fit(pipes["train"], validation_data=pipes["validation"], initial_epoch=done,
                  epochs=done + args.fine_epochs, verbose=0, shuffle=False,
                  callbacks=[log2, *stopper("fine")])
        history += log2.rows
        checks["batchnorm_moving_mean_unchanged"] = all(
            np.array_equal(b, layer.moving_mean.numpy()) for b, layer in zip(before_bn, bn)
        )
        checks["frozen_layers_unchanged"] = all(
            np.array_equal(b, w.numpy()) for b, w in zip(before_frozen, frozen)
        )

    # Test once.
    y_true, y_pred, _ = transfer.predict(model, pipes["test"])
    k = len(prep["class_names"])
    metrics = transfer.per_class_metrics(y_true, y_pred, k)
    names = prep["class_names"]
    model_path = os.path.join(args.out, "model.keras")
    model.save(model_path)
    fig = transfer.confusion_figure(
        metrics.confusion, names,
        title=f"Test set: {len(y_true)} images, accuracy {100 * metrics.accuracy:.1f} %",
    )
    figure_path = os.path.join(args.out, "confusion.png")
    fig.savefig(figure_path, dpi=120)
    import matplotlib.pyplot as plt

    plt.close(fig)
    result = {
        "test_accuracy": metrics.accuracy,
        "test_images": int(len(y_true)),
        "class_names": names,
        "per_class": {
            name: {"precision": _json_number(metrics.precision[i]), "recall": _json_number(metrics.recall[i]),
                   "support": int(metrics.confusion[i].sum())}
            for i, name in enumerate(names)
        },
        "confusion": metrics.confusion.tolist(),
        "confusion_axes": "rows: true class, columns: predicted class",
        "images_per_split": prep["sizes"],
        "skipped_files": prep["skipped"],
        "skipped_count": sum(len(v) for v in prep["skipped"].values()),
        "history": history,
        "restored_epoch": restored,
        "base": args.base,
        "weights_note": prep["weights_note"],
        "image_size": prep["image_size"],
        "first_unfrozen_layer": prep["first_unfrozen"],
        "trainable_parameters": {"head": head_trainable["trainable"],
                                 "fine": None if fine_trainable is None else fine_trainable["trainable"]},
        "checks": checks,
        "source": prep["source"],
        "seconds": round(time.perf_counter() - start, 1),
        "arguments": vars(args),
        "outputs": {"model": model_path, "confusion": figure_path},
    }
    with open(os.path.join(args.out, "metrics.json"), "w") as fh:
        json.dump(result, fh, indent=2)
    return result


# ---------------------------------------------------------------------------------------------- the CLI


def _percent(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 49:
        raise argparse.ArgumentTypeError(f"{value} is not a whole percentage in [1, 49]")
    return value


def _positive(kind: type) -> Callable[[str], Any]:
    def parse(text: str):
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{text} is not positive")
        return value

    return parse


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m cnn_helpers.finetune``."""
    p = argparse.ArgumentParser(
        prog="python -m cnn_helpers.finetune",
        description="Fine-tune a pretrained keras.applications base (its own preprocess_input, a new head, then "
                    "its top blocks with BatchNormalization frozen) on a folder of class sub-folders or a "
                    "TensorFlow Datasets dataset; test once; write model.keras, metrics.json and confusion.png.",
        epilog="Exit codes: 0 done, 2 bad input (message on stderr). Progress: one line per epoch on stderr.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", metavar="FOLDER",
                     help="a folder with one sub-folder per class; images anywhere below each (.jpg .jpeg .png "
                          ".bmp .gif). Other files and images that do not decode are skipped with a warning and "
                          "counted in metrics.json. Labels follow the folder names' alphabetical order.")
    src.add_argument("--tfds", metavar="NAME",
                     help="a TensorFlow Datasets name with 'image' and 'label' features, e.g. tf_flowers "
                          "(read from TFDS_DATA_DIR, downloaded if missing and reachable)")
    p.add_argument("--tfds-split", default="train", metavar="SPLIT",
                   help="with --tfds: the split to carve train/validation/test from (default: %(default)s)")
    p.add_argument("--out", required=True, metavar="FOLDER",
                   help="output folder (created): model.keras, metrics.json, confusion.png")
    p.add_argument("--base", default="mobilenetv2", choices=sorted(transfer.BASES),
                   help="the pretrained base; its own preprocess_input is applied (default: %(default)s)")
    p.add_argument("--weights", default="imagenet", choices=["imagenet", "none"],
                   help="'imagenet' (cached in ~/.keras/models or downloaded; a clear error otherwise) or "
                        "'none' (random weights: for tests only, not transfer learning) (default: %(default)s)")
    p.add_argument("--alpha", type=_positive(float), default=1.0,
                   help="MobileNetV2 width multiplier (ImageNet weights exist for 0.35, 0.5, 0.75, 1.0, 1.3, 1.4) "
                        "(default: %(default)s)")
    p.add_argument("--image-size", type=_positive(int), default=None, metavar="PIXELS",
                   help="side of the square crops fed to the base, in pixels (default: the base's ImageNet size, "
                        "224 for mobilenetv2)")
    p.add_argument("--val-percent", type=_percent, default=15, metavar="P",
                   help="percentage of the data (per class for folders) held out for validation (early stopping) "
                        "(default: %(default)s)")
    p.add_argument("--test-percent", type=_percent, default=10, metavar="P",
                   help="percentage held out for the single test evaluation at the end (default: %(default)s)")
    p.add_argument("--limit", type=_non_negative, default=0, metavar="N",
                   help="use at most N images per split, for quick trial runs (default: 0 = all)")
    p.add_argument("--batch-size", type=_positive(int), default=32, metavar="N",
                   help="images per batch (default: %(default)s)")
    p.add_argument("--head-epochs", type=_positive(int), default=6, metavar="N",
                   help="phase 1: epochs training only the new head, base frozen (default: %(default)s)")
    p.add_argument("--fine-epochs", type=_non_negative, default=8, metavar="N",
                   help="phase 2: epochs with the top of the base unfrozen; 0 skips phase 2 (default: %(default)s)")
    p.add_argument("--head-lr", type=_positive(float), default=1e-3, metavar="LR",
                   help="phase 1 Adam learning rate (default: %(default)s)")
    p.add_argument("--lr-ratio", type=_positive(float), default=10.0, metavar="R",
                   help="phase 2 starts at head-lr / R and decays to 0 along a cosine (default: %(default)s)")
    p.add_argument("--unfreeze-from", default=None, metavar="LAYER",
                   help="phase 2: the first layer of the base to unfreeze (by name; every layer above it "
                        "except BatchNormalization becomes trainable) (default: "
                        + ", ".join(f"{k}: {v}" for k, v in UNFREEZE_FROM.items()) + ")")
    p.add_argument("--dropout", type=float, default=0.2, metavar="RATE",
                   help="dropout rate before the new dense layer, in [0, 1) (default: %(default)s)")
    p.add_argument("--patience", type=_non_negative, default=3, metavar="N",
                   help="early stopping: epochs without a lower validation loss before a phase stops and "
                        "restores its best epoch; 0 disables it (default: %(default)s)")
    p.add_argument("--seed", type=int, default=42,
                   help="seed of the splits, shuffling, augmentation and initialization (default: %(default)s)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run, print the summary; returns the exit code (argparse exits 2 by itself on usage)."""
    args = build_parser().parse_args(argv)
    from cnn_helpers import data

    try:
        result = run(args)
    except (InputError, data.DatasetUnavailableError, transfer.WeightsUnavailableError) as err:
        print(f"finetune: error: {err}", file=sys.stderr, flush=True)
        return EXIT_BAD_INPUT
    print(f"test accuracy {100 * result['test_accuracy']:.1f} % on {result['test_images']} images; "
          f"wrote {result['outputs']['model']}, {os.path.join(args.out, 'metrics.json')}, "
          f"{result['outputs']['confusion']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
