"""Helpers for the cnn-course book.

The chapters call each helper through its module so that a reader sees where it lives::

    from cnn_helpers import data, memory, models, plots, profile
    memory.estimate(model)

Importing this package is cheap (TensorFlow is imported by the modules that need it). It also sets
``TF_CPP_MIN_LOG_LEVEL=2`` unless already set, which hides TensorFlow's C++ start-up chatter (CUDA probing,
CPU instruction notices) in notebooks; real errors still show.
"""

import os as _os

_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
