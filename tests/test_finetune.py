"""The fine-tuning script end to end on a tiny generated image folder (weights=None), its splits and its errors."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from cnn_helpers import data, finetune, runtime, transfer

runtime.import_tensorflow_quietly()
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

CLASSES = ["apples", "bananas", "cherries"]
PER_CLASS = 8
#: Fast settings: a narrow MobileNetV2 with random weights on 32-pixel crops, one epoch per phase.
FAST = ["--weights", "none", "--alpha", "0.35", "--image-size", "32", "--head-epochs", "1", "--fine-epochs", "1",
        "--batch-size", "8", "--patience", "0"]


def photo(rng, label, size=(40, 48)):
    """A uint8 RGB image with dark and bright pixels; the class decides the dominant channel and orientation."""
    h, w = size
    across, down = np.linspace(0, 255, w)[None, :] * np.ones((h, 1)), np.linspace(0, 255, h)[:, None] * np.ones((1, w))
    ramp = across if label % 2 == 0 else down
    image = np.stack([ramp * 0.3] * 3, axis=-1)
    image[..., label % 3] = ramp
    return np.clip(image + rng.normal(0, 15, image.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """3 classes × 8 images (JPEG and PNG, one grayscale, one RGBA), a corrupt JPEG, a text file, stray files."""
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for label, name in enumerate(CLASSES):
        (root / name).mkdir()
        for i in range(PER_CLASS):
            image = photo(rng, label)
            if i % 2:
                (root / name / f"img_{i}.jpg").write_bytes(tf.io.encode_jpeg(image).numpy())
            else:
                (root / name / f"img_{i}.PNG").write_bytes(tf.io.encode_png(image).numpy())
    gray = photo(rng, 0)[..., :1]
    (root / "apples" / "sub").mkdir()
    (root / "apples" / "sub" / "gray.png").write_bytes(tf.io.encode_png(gray).numpy())
    rgba = np.concatenate([photo(rng, 1), np.full((40, 48, 1), 255, np.uint8)], axis=-1)
    (root / "bananas" / "rgba.png").write_bytes(tf.io.encode_png(rgba).numpy())
    (root / "apples" / "broken.jpg").write_bytes(b"\xff\xd8 this is not a JPEG at all")
    (root / "bananas" / "notes.txt").write_text("not an image")
    (root / "README.md").write_text("stray file next to the class folders")
    (root / "cherries" / ".DS_Store").write_bytes(b"\0\0")
    return root


def run_cli(*args, timeout=600):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", "cnn_helpers.finetune", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


# ------------------------------------------------------------------------------------------ the command line


def test_help_explains_every_option():
    parser = finetune.build_parser()
    for action in parser._actions:
        assert action.help and len(action.help) > 15, action.option_strings
    result = run_cli("--help", timeout=120)
    assert result.returncode == 0
    for action in parser._actions:
        assert action.option_strings[-1] in result.stdout
    assert "Exit codes" in result.stdout


def test_end_to_end_on_a_tiny_folder(folder, tmp_path):
    out = tmp_path / "run"
    result = run_cli("--data", str(folder), "--out", str(out), *FAST, "--patience", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    epoch_lines = [line for line in result.stderr.splitlines() if " epoch " in line]
    assert [line.split(":")[1].strip() for line in epoch_lines] == ["head epoch 1/2", "fine epoch 2/2"]
    for skipped in ("broken.jpg (unreadable)", "notes.txt (not an image)", "README.md (outside class folders)"):
        assert skipped in result.stderr
    assert ".DS_Store" not in result.stderr
    assert "test accuracy" in result.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["class_names"] == CLASSES
    assert metrics["skipped_count"] == 3
    assert sum(metrics["images_per_split"].values()) == 3 * PER_CLASS + 2  # + the grayscale and RGBA images
    assert metrics["test_images"] == metrics["images_per_split"]["test"] == np.sum(metrics["confusion"])
    assert 0 <= metrics["test_accuracy"] <= 1
    assert metrics["checks"] == {"batchnorm_moving_mean_unchanged": True, "frozen_layers_unchanged": True}
    assert metrics["trainable_parameters"]["fine"] > metrics["trainable_parameters"]["head"] > 0
    assert [row["phase"] for row in metrics["history"]] == ["head", "fine"]
    assert metrics["restored_epoch"] == {"head": 1, "fine": 2}  # early stopping restored each phase's best epoch
    assert "RANDOM" in metrics["weights_note"]
    assert (out / "confusion.png").stat().st_size > 5_000
    model = keras.models.load_model(out / "model.keras")
    probs = model.predict(np.full((2, 32, 32, 3), 0.5, np.float32), verbose=0)
    assert probs.shape == (2, 3) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)


# ---------------------------------------------------------------------------------------------- splits


def test_folder_scan_and_splits_are_deterministic_stratified_and_disjoint(folder):
    warnings = []
    scan = finetune.scan_folder(str(folder), warn=warnings.append)
    assert scan.class_names == CLASSES and scan.skipped_count == 3 and len(warnings) == 3
    assert [len(f) for f in scan.files] == [PER_CLASS + 1, PER_CLASS + 1, PER_CLASS]
    a = finetune.folder_splits(scan, val_percent=15, test_percent=10, seed=1)
    assert a == finetune.folder_splits(scan, val_percent=15, test_percent=10, seed=1)
    assert a != finetune.folder_splits(scan, val_percent=15, test_percent=10, seed=2)
    sets = {s: set(paths) for s, (paths, _) in a.items()}
    assert not (sets["train"] & sets["validation"] or sets["train"] & sets["test"] or sets["validation"] & sets["test"])
    assert set().union(*sets.values()) == {p for f in scan.files for p in f}
    for split, (paths, labels) in a.items():
        assert set(labels) == {0, 1, 2}, split  # every class in every split
        assert all(CLASSES[y] in p for p, y in zip(paths, labels))
    n_train, n_val, n_test = finetune.split_sizes(PER_CLASS, 15, 10)
    assert a["test"][1].count(2) == n_test and a["validation"][1].count(2) == n_val
    assert a["train"][1].count(2) == n_train


def test_split_sizes_and_tfds_defaults():
    assert finetune.split_sizes(100, 15, 10) == (75, 15, 10)
    assert finetune.split_sizes(3, 15, 10) == (1, 1, 1)
    with pytest.raises(finetune.InputError):
        finetune.split_sizes(2, 15, 10)
    assert finetune.tfds_split_strings("train", 15, 10) == transfer.SPLITS


# ------------------------------------------------------------------------------------------- bad input


def make_classes(root: pathlib.Path, counts: dict[str, int], extra: dict[str, str] | None = None) -> str:
    rng = np.random.default_rng(1)
    for label, (name, n) in enumerate(counts.items()):
        (root / name).mkdir(parents=True)
        for i in range(n):
            (root / name / f"{i}.png").write_bytes(tf.io.encode_png(photo(rng, label)).numpy())
    for path, text in (extra or {}).items():
        (root / path).write_text(text)
    return str(root)


@pytest.mark.parametrize(
    ("layout", "extra_args", "message"),
    [
        (None, [], "no such folder"),
        ({"a": 4, "b": 0}, [], "contain no readable image"),
        ({"a": 4, "b": 0}, ["--limit", "2"], "['b']"),
        ({"a": 5}, [], "need at least two"),
        ({"a": 5, "b": 2}, [], "class 'b': 2 images cannot be split"),
        ({"a": 5, "b": 5}, ["--unfreeze-from", "no_such_layer"], "--unfreeze-from 'no_such_layer'"),
        ({"a": 5, "b": 5}, ["--dropout", "1.5"], "dropout=1.5"),
        ({"a": 5, "b": 5}, ["--weights", "imagenet", "--image-size", "40"], "image_size=40"),
    ],
)
def test_bad_folder_input_exits_2_with_a_clear_message(tmp_path, capsys, layout, extra_args, message):
    root = tmp_path / "photos"
    if layout is not None:
        make_classes(root, layout, {"b/readme.txt": "no images here"} if layout.get("b") == 0 else None)
    args = ["--data", str(root), "--out", str(tmp_path / "out"), *FAST, *extra_args]
    assert finetune.main(args) == finetune.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "finetune: error:" in err and message in err, err
    assert not (tmp_path / "out" / "model.keras").exists()


def test_unknown_tfds_name_exits_2(tmp_path, capsys):
    assert finetune.main(["--tfds", "no_such_dataset_xyz", "--out", str(tmp_path), *FAST]) == 2
    assert "no_such_dataset_xyz" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args",
    [
        [],  # neither --data nor --tfds
        ["--data", "x", "--tfds", "y", "--out", "o"],
        ["--data", "x", "--out", "o", "--val-percent", "0"],
        ["--data", "x", "--out", "o", "--base", "vgg99"],
        ["--data", "x", "--out", "o", "--batch-size", "-1"],
    ],
)
def test_usage_errors_exit_2(args):
    with pytest.raises(SystemExit) as info:
        finetune.main(args)
    assert info.value.code == 2


# ------------------------------------------------------------------------------------------------ TFDS

HAVE_FLOWERS = os.path.isdir(os.path.join(data.data_dir(), "tf_flowers"))


@pytest.mark.skipif(not HAVE_FLOWERS, reason="no prepared tf_flowers under TFDS_DATA_DIR")
def test_tfds_source_runs_on_a_few_flowers(tmp_path, capsys):
    out = tmp_path / "flowers"
    assert finetune.main(["--tfds", "tf_flowers", "--out", str(out), "--limit", "16", *FAST]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["class_names"] == ["dandelion", "daisy", "tulips", "sunflowers", "roses"]
    assert metrics["images_per_split"] == {"test": 16, "validation": 16, "train": 16}
    assert metrics["source"]["splits"] == transfer.SPLITS
    assert metrics["skipped_count"] == 0
