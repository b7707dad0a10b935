"""Model builders used by several chapters or by :func:`cnn_helpers.memory.measure_peak`."""

from __future__ import annotations

import keras
from keras import layers

#: Question 2's input: RGB images of 200 × 300 pixels (height × width × channels).
QUESTION2_INPUT = (200, 300, 3)
#: Question 2's feature maps, from the lowest layer to the top one.
QUESTION2_FILTERS = (100, 200, 400)


def question2_cnn(
    input_shape: tuple[int, int, int] = QUESTION2_INPUT,
    filters: tuple[int, ...] = QUESTION2_FILTERS,
    kernel_size: int = 3,
    strides: int = 2,
    padding: str = "same",
) -> keras.Sequential:
    """The network of question 2: convolutional layers with 3 × 3 kernels, stride 2, "same" padding.

    The defaults are the question's; the arguments exist to reproduce the common wrong readings
    (layers reversed, "valid" padding, ...). No activation is given: the question names none, and an
    activation function has no parameters.
    """
    if len(input_shape) != 3 or min(input_shape) < 1:
        raise ValueError(f"input_shape={input_shape!r}: must be (height, width, channels), all positive")
    if not filters:
        raise ValueError("filters=(): give at least one layer")
    return keras.Sequential(
        [keras.Input(shape=input_shape)]
        + [
            layers.Conv2D(n, kernel_size, strides=strides, padding=padding, name=f"conv{i}")
            for i, n in enumerate(filters, start=1)
        ],
        name="question2_cnn",
    )
