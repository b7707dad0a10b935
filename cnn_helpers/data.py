"""Load datasets with TensorFlow Datasets, and fail fast when that cannot work.

Everything goes through :func:`tensorflow_datasets.load`, which keeps its data in ``TFDS_DATA_DIR``
(default ``~/tensorflow_datasets``) and downloads a dataset the first time. On a machine without internet,
point ``TFDS_DATA_DIR`` at a folder that holds a prepared copy; nothing else changes.

When a dataset is neither prepared on disk nor downloadable, :func:`load` raises
:class:`DatasetUnavailableError` at once, with what to set, instead of letting the download retry.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from typing import Any

import numpy as np

#: Host that TFDS downloads ``mnist`` and ``tf_flowers`` from; probed before a download is attempted.
DOWNLOAD_HOST = "storage.googleapis.com"


class DatasetUnavailableError(RuntimeError):
    """A dataset is not prepared on disk and cannot be downloaded from here."""


def data_dir() -> str:
    """The folder TFDS reads from: ``TFDS_DATA_DIR`` if set, else ``~/tensorflow_datasets``."""
    return os.environ.get("TFDS_DATA_DIR") or os.path.join(os.path.expanduser("~"), "tensorflow_datasets")


def can_reach(host: str = DOWNLOAD_HOST, port: int = 443, timeout_s: float = 3.0) -> bool:
    """True if a TCP connection to ``host:port`` opens within ``timeout_s`` seconds."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def _quiet_absl() -> Iterator[None]:
    """Raise absl's logging threshold to ERROR for the block (TFDS warns through absl while probing)."""
    from absl import logging as absl_logging

    before = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.ERROR)
    try:
        yield
    finally:
        absl_logging.set_verbosity(before)


def ensure_available(name: str, directory: str | None = None) -> str:
    """Check that ``name`` can be loaded: prepared under ``directory`` or downloadable.

    Args:
        name: a TFDS dataset name, e.g. ``"mnist"``.
        directory: the TFDS data folder; ``None`` means :func:`data_dir`.

    Returns:
        The folder the dataset is (or will be) prepared in.

    Raises:
        ValueError: if ``name`` is not a TFDS dataset.
        DatasetUnavailableError: if it is not prepared and :data:`DOWNLOAD_HOST` cannot be reached.
    """
    import tensorflow_datasets as tfds

    directory = directory or data_dir()
    with _quiet_absl():  # an unprepared folder only earns a "no dataset_info.json" warning: we explain below
        try:
            builder = tfds.builder(name, data_dir=directory)
        except tfds.core.registered.DatasetNotFoundError as err:
            raise ValueError(f"name={name!r} is not a TensorFlow Datasets dataset") from err
        prepared = builder.is_prepared()
    if prepared:
        return builder.data_dir
    if can_reach():
        return builder.data_dir
    raise DatasetUnavailableError(
        f"Dataset {name!r} is not prepared under {directory!r} and {DOWNLOAD_HOST} cannot be reached "
        "to download it. Set TFDS_DATA_DIR to a folder that holds a prepared copy (one with "
        f"'{name}/<version>/dataset_info.json'), or run once on a machine with internet."
    )


def load(name: str, *, split: str, as_supervised: bool = True, **kwargs: Any):
    """``tfds.load(name, split=split, ...)`` after :func:`ensure_available`.

    Extra keyword arguments go to :func:`tensorflow_datasets.load` unchanged (``with_info=True``,
    ``batch_size=-1``, ...). Split slicing such as ``"train[:80%]"`` selects the same examples everywhere.
    """
    import tensorflow_datasets as tfds

    directory = kwargs.pop("data_dir", None) or data_dir()
    ensure_available(name, directory)
    return tfds.load(name, split=split, as_supervised=as_supervised, data_dir=directory, **kwargs)


def load_arrays(name: str, *, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Load a small supervised split whole, as NumPy arrays ``(images, labels)``.

    Meant for datasets that fit in memory (MNIST: 60,000 × 28 × 28 × 1 uint8 = 47 MB).
    """
    import tensorflow_datasets as tfds

    images, labels = tfds.as_numpy(load(name, split=split, as_supervised=True, batch_size=-1))
    return images, labels
