"""Learned upsampling: transposed convolutions, resize + convolution, and the checkerboard they can leave.

A transposed convolution of kernel ``k`` and stride ``s`` paints a ``k × k`` copy of its kernel, scaled by
each input value, every ``s`` output pixels; when ``k`` is not a multiple of ``s`` the copies overlap
unevenly, and the output inherits a period-``s`` pattern, the checkerboard artefact of Odena, Dumoulin and
Olah, "Deconvolution and Checkerboard Artifacts" (Distill, 2016). Resizing first (nearest neighbour or
bilinear) then convolving gives every output pixel the same kind of sum.

Units: sizes in pixels; the checkerboard energy is a fraction of an image's power (no unit).
"""

from __future__ import annotations

from typing import Any

import numpy as np

UPSAMPLERS = ("transpose3", "transpose4", "resize")


def _positive_int(value: Any, argument: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{argument}={value!r}: must be a positive integer")
    return int(value)


def checkerboard_energy(images: np.ndarray) -> np.ndarray:
    """Fraction of each image's varying power that lies at the three period-2 (Nyquist) frequencies.

    For an ``h × w`` image (even sides) the discrete Fourier power at ``(h/2, 0)``, ``(0, w/2)`` and
    ``(h/2, w/2)`` is the power of the patterns ``(-1)^y``, ``(-1)^x`` and ``(-1)^(x+y)``: stripes and the
    checkerboard of period 2. It is divided by the total power without the mean (the ``(0, 0)`` term). For
    white noise the expected fraction is ``3 / (h·w - 1)``; a pure period-2 pattern gives 1.

    Args:
        images: ``(n, h, w)`` or ``(n, h, w, channels)`` (channels are averaged), even ``h`` and ``w``.

    Returns:
        float array of ``n`` fractions in [0, 1] (``nan`` for a constant image).
    """
    images = np.asarray(images, np.float64)
    if images.ndim == 4:
        images = images.mean(axis=-1)
    if images.ndim != 3:
        raise ValueError(f"images: must be (n, h, w) or (n, h, w, c), got shape {images.shape}")
    _, h, w = images.shape
    if h % 2 or w % 2 or h < 2 or w < 2:
        raise ValueError(f"images: height {h} and width {w} must be even")
    power = np.abs(np.fft.fft2(images)) ** 2
    total = power.sum(axis=(1, 2)) - power[:, 0, 0]
    nyquist = power[:, h // 2, 0] + power[:, 0, w // 2] + power[:, h // 2, w // 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, nyquist / total, np.nan)


def upsample(x: Any, filters: int, kind: str, name: str, kernel_initializer: Any = "glorot_uniform") -> Any:
    """Double the sides of the Keras tensor ``x`` with ``filters`` output maps, one of three ways.

    ``"transpose3"``: ``Conv2DTranspose`` 3 × 3, stride 2 (kernel not a multiple of the stride);
    ``"transpose4"``: ``Conv2DTranspose`` 4 × 4, stride 2 (even overlap; the kernel of
    common DCGAN re-implementations, whereas the paper's own code uses 5 × 5, whose overlap is uneven); ``"resize"``:
    ``UpSampling2D`` (nearest neighbour) then ``Conv2D`` 3 × 3, the resize-convolution of Odena et al.
    (2016). All use ``"same"`` padding and no bias (a batch normalization usually follows);
    ``kernel_initializer`` is passed to the convolution.
    """
    from keras import layers

    filters = _positive_int(filters, "filters")
    if kind == "transpose3":
        return layers.Conv2DTranspose(
            filters, 3, strides=2, padding="same", use_bias=False, kernel_initializer=kernel_initializer, name=name
        )(x)
    if kind == "transpose4":
        return layers.Conv2DTranspose(
            filters, 4, strides=2, padding="same", use_bias=False, kernel_initializer=kernel_initializer, name=name
        )(x)
    if kind == "resize":
        x = layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_resize")(x)
        return layers.Conv2D(
            filters, 3, padding="same", use_bias=False, kernel_initializer=kernel_initializer, name=name
        )(x)
    raise ValueError(f"kind={kind!r}: must be one of {UPSAMPLERS}")


def dcgan_generator(
    kind: str = "transpose4",
    latent_dim: int = 100,
    base_side: int = 7,
    filters: tuple[int, int] = (128, 64),
    channels: int = 1,
) -> Any:
    """A DCGAN-style generator for 28 × 28 images (Radford, Metz and Chintala, 2016), upsampling by ``kind``.

    ``latent_dim`` noise → ``Dense`` to a ``base_side × base_side × filters[0]`` block (the paper's
    "project and reshape"), batch normalization, ReLU → one :func:`upsample` to ``filters[1]`` maps,
    batch normalization, ReLU → one :func:`upsample` to ``channels`` maps with ``tanh`` and no batch
    normalization (the paper's guidelines: batch norm everywhere except the generator's output, ReLU
    inside, tanh at the output). Output side ``4 · base_side`` pixels, values in (-1, 1).
    """
    import keras
    from keras import layers

    latent_dim = _positive_int(latent_dim, "latent_dim")
    base_side = _positive_int(base_side, "base_side")
    channels = _positive_int(channels, "channels")
    if kind not in UPSAMPLERS:
        raise ValueError(f"kind={kind!r}: must be one of {UPSAMPLERS}")
    if len(filters) != 2:
        raise ValueError(f"filters={filters!r}: give two map counts")
    init = keras.initializers.RandomNormal(stddev=0.02)  # the paper's N(0, 0.02) initialization
    z = keras.Input((latent_dim,), name="z")
    x = layers.Dense(base_side * base_side * filters[0], use_bias=False, kernel_initializer=init, name="project")(z)
    x = layers.Reshape((base_side, base_side, filters[0]), name="reshape")(x)
    x = layers.ReLU(name="relu0")(layers.BatchNormalization(name="bn0")(x))
    x = upsample(x, filters[1], kind, "up1", init)
    x = layers.ReLU(name="relu1")(layers.BatchNormalization(name="bn1")(x))
    x = upsample(x, channels, kind, "up2", init)
    image = layers.Activation("tanh", name="tanh")(x)
    return keras.Model(z, image, name=f"generator_{kind}")
