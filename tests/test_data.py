"""Dataset loading: the real prepared copies when present, and a fast, clear failure otherwise."""

import logging
import os
import time

import numpy as np
import pytest

from cnn_helpers import data

HAVE_MNIST = os.path.isdir(os.path.join(data.data_dir(), "mnist"))


def test_unknown_dataset_names_the_argument(tmp_path):
    with pytest.raises(ValueError, match="name='no_such_dataset_xyz'"):
        data.ensure_available("no_such_dataset_xyz", str(tmp_path))


def test_missing_dataset_offline_fails_fast_with_what_to_set(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "can_reach", lambda *a, **k: False)
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    start = time.monotonic()
    with pytest.raises(data.DatasetUnavailableError, match="TFDS_DATA_DIR") as err:
        data.load("mnist", split="train")
    assert time.monotonic() - start < 10
    assert str(tmp_path) in str(err.value) and "'mnist'" in str(err.value)


def test_unprepared_variant_folder_fails_without_absl_warning(tmp_path, monkeypatch, caplog):
    # TFDS warns "Variant folder ... has no dataset_info.json" through absl while probing; our message says it
    (tmp_path / "mnist" / "3.0.1").mkdir(parents=True)
    monkeypatch.setattr(data, "can_reach", lambda *a, **k: False)
    with caplog.at_level(logging.INFO), pytest.raises(data.DatasetUnavailableError, match="dataset_info"):
        data.ensure_available("mnist", str(tmp_path))
    assert not [r for r in caplog.records if "dataset_info" in r.getMessage()]


def test_missing_dataset_online_goes_on_to_download(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "can_reach", lambda *a, **k: True)
    assert data.ensure_available("mnist", str(tmp_path)).startswith(str(tmp_path))


def test_can_reach_a_closed_port_is_false():
    assert data.can_reach("127.0.0.1", 9, timeout_s=1.0) is False


def test_data_dir_honours_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    assert data.data_dir() == str(tmp_path)
    monkeypatch.delenv("TFDS_DATA_DIR")
    assert data.data_dir().endswith("tensorflow_datasets")


@pytest.mark.skipif(not HAVE_MNIST, reason="no prepared mnist under TFDS_DATA_DIR")
def test_real_mnist_test_split():
    images, labels = data.load_arrays("mnist", split="test[:1000]")
    assert images.shape == (1000, 28, 28, 1) and images.dtype == np.uint8
    assert labels.shape == (1000,) and set(np.unique(labels)) == set(range(10))
    # Same examples as everywhere else: TFDS' record order is fixed.
    again, _ = data.load_arrays("mnist", split="test[:1000]")
    assert np.array_equal(images, again)
