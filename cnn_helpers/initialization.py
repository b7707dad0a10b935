"""Weight initialization: fans, the variance each scheme gives, framework defaults, and signal propagation.

For a convolution kernel ``(kh, kw, C_in, C_out)`` Keras counts ``fan_in = kh·kw·C_in`` and
``fan_out = kh·kw·C_out``. The schemes, as variances of the weights (dimensionless):

* Glorot / Xavier (Glorot and Bengio, 2010): ``2 / (fan_in + fan_out)``, a compromise between keeping the
  forward variance (``1 / fan_in``) and the backward variance (``1 / fan_out``) for a linear or tanh unit.
  Keras's default for ``Conv2D`` and ``Dense`` (``glorot_uniform``).
* He / Kaiming (He et al., 2015): ``2 / fan_in``, which keeps the second moment of ReLU activations from
  layer to layer (ReLU zeroes half of a symmetric input, halving its second moment).
* LeCun: ``1 / fan_in``.
* PyTorch's default for ``nn.Conv2d`` and ``nn.Linear``: ``kaiming_uniform_(a=sqrt(5))``, i.e. uniform on
  ``±1 / sqrt(fan_in)``: ``1 / (3·fan_in)``. :func:`torch_default` is the same distribution in Keras.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

__all__ = ["fans", "expected_variance", "torch_default", "default_initializers", "activation_rms"]

_SCHEMES = {
    "glorot": lambda fi, fo: 2.0 / (fi + fo),
    "he": lambda fi, fo: 2.0 / fi,
    "lecun": lambda fi, fo: 1.0 / fi,
    "torch_default": lambda fi, fo: 1.0 / (3.0 * fi),
}


def fans(kernel_shape: tuple[int, ...]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a kernel as Keras counts them.

    A dense kernel ``(inputs, units)`` gives ``(inputs, units)``; a conv kernel ``(kh, kw, C_in, C_out)`` (any
    number of spatial axes) gives ``(kh·kw·C_in, kh·kw·C_out)``.

    Raises:
        ValueError: for fewer than two axes or a non-positive size.
    """
    shape = tuple(int(s) for s in kernel_shape)
    if len(shape) < 2 or min(shape) < 1:
        raise ValueError(f"kernel_shape={kernel_shape!r}: need at least two positive sizes")
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return receptive * shape[-2], receptive * shape[-1]


def expected_variance(scheme: str, kernel_shape: tuple[int, ...]) -> float:
    """The variance of the weights that ``scheme`` draws for a kernel of ``kernel_shape`` (dimensionless).

    Args:
        scheme: ``"glorot"``, ``"he"``, ``"lecun"`` or ``"torch_default"`` (uniform and normal variants of a
            scheme have the same variance; Keras's truncated normals are rescaled to keep it).
        kernel_shape: as in :func:`fans`.

    Raises:
        ValueError: for an unknown scheme or a bad shape.
    """
    if scheme not in _SCHEMES:
        raise ValueError(f"scheme={scheme!r}: use one of {sorted(_SCHEMES)}")
    return _SCHEMES[scheme](*fans(kernel_shape))


def torch_default(seed: int | None = None) -> keras.initializers.Initializer:
    """PyTorch's default kernel initializer for ``nn.Conv2d``/``nn.Linear``, as a Keras initializer.

    ``kaiming_uniform_(a=sqrt(5))`` draws from ``U(-b, b)`` with ``b = gain·sqrt(3 / fan_in)`` and
    ``gain = sqrt(2 / (1 + a²)) = sqrt(1/3)``, so ``b = 1 / sqrt(fan_in)`` and the variance is
    ``1 / (3·fan_in)``: ``VarianceScaling(scale=1/3, mode="fan_in", distribution="uniform")``. ``seed`` as
    for any Keras initializer.
    """
    return keras.initializers.VarianceScaling(scale=1.0 / 3.0, mode="fan_in", distribution="uniform", seed=seed)


def default_initializers(layer: keras.layers.Layer) -> dict[str, str]:
    """The class names of a layer's kernel and bias initializers, read from its config.

    Returns ``{"kernel_initializer": ..., "bias_initializer": ...}`` for the keys the config has.

    Raises:
        ValueError: if the layer's config has neither key.
    """
    config = layer.get_config()
    found = {}
    for key in ("kernel_initializer", "bias_initializer"):
        if key in config:
            value = config[key]
            found[key] = value["class_name"] if isinstance(value, dict) else str(value)
    if not found:
        raise ValueError(f"layer: {layer.name!r} has no kernel or bias initializer in its config")
    return found


def activation_rms(model: keras.Model, images: Any, prefix: str = "act_") -> np.ndarray:
    """Root mean square of each layer named ``<prefix>1``, ``<prefix>2``, … on ``images`` (forward pass).

    The second moment is what He initialization keeps constant through ReLU layers; a value that shrinks
    layer after layer is a signal vanishing in the forward pass. In the units of the activations. Runs in
    inference mode (``training=False``).

    Raises:
        ValueError: if the model has no layer named ``<prefix>1``.
    """
    names = []
    while True:
        name = f"{prefix}{len(names) + 1}"
        try:
            model.get_layer(name)
        except ValueError:
            break
        names.append(name)
    if not names:
        raise ValueError(f"model: {model.name!r} has no layer named {prefix}1")
    probe = keras.Model(model.input, [model.get_layer(n).output for n in names])
    outputs = probe(np.asarray(images), training=False)
    return np.array([float(np.sqrt(np.mean(np.square(np.asarray(o, dtype=np.float64))))) for o in outputs])
