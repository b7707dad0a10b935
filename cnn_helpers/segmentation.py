"""Semantic segmentation (chapter 8): a synthetic dataset, encoder–decoder and U-Net models, mean IoU, figures.

The dataset is generated in code, deterministically from a seed: shapes (circles, squares, triangles) of random
colours and sizes on a textured, noisy background, with a label for every pixel. Class ``0`` is the
background; :data:`CLASS_NAMES` lists all classes.

Units: sizes are in pixels; images are float32 in [0, 1], masks are uint8 class indices.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

CLASS_NAMES = ("background", "circle", "square", "triangle")
#: Colour of each class in mask figures (RGB in [0, 1]).
CLASS_COLORS = ((0.15, 0.15, 0.15), (0.89, 0.47, 0.20), (0.30, 0.60, 0.85), (0.45, 0.75, 0.35))
UPSAMPLINGS = ("transpose", "bilinear")


def _positive_int(value: Any, argument: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{argument}={value!r}: must be a positive integer")
    return int(value)


def _shape_mask(kind: int, yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, r: float) -> np.ndarray:
    """Boolean mask of one shape of 'radius' r (pixels) centred at (cy, cx)."""
    if kind == 1:  # circle of radius r
        return (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2
    if kind == 2:  # axis-aligned square of side 1.7 r: area 2.89 r², about 0.92 of the circle's
        half = 0.85 * r
        return (np.abs(yy - cy) <= half) & (np.abs(xx - cx) <= half)
    # upward equilateral triangle inscribed in a circle of radius 1.25 r: area (3√3/4)(1.25 r)² ≈ 2.03 r²,
    # about 0.65 of the circle's. Its apex lies 1.25 r above the centre, so with a centre less than 1.25 r
    # from the top edge (centres are at least r from every edge) the triangle is clipped by the image's top.
    rr = 1.25 * r
    top = cy - rr
    bottom = cy + rr / 2
    half_width = (yy - top) / (bottom - top) * (rr * np.sqrt(3) / 2)
    return (yy >= top) & (yy <= bottom) & (np.abs(xx - cx) <= half_width)


def make_dataset(
    n: int,
    size: int = 64,
    seed: int = 0,
    max_shapes: int = 3,
    radius: tuple[float, float] = (0.08, 0.22),
    noise: float = 0.08,
    min_contrast: float = 0.3,
    return_instances: bool = False,
) -> tuple[np.ndarray, ...]:
    """Generate ``n`` images of shapes on a textured background, with per-pixel labels.

    Each image has a smooth random texture (a sum of three random sinusoids around a random colour), 1 to
    ``max_shapes`` shapes (circle, square or upward triangle, uniformly) of random colour, size and position,
    later shapes covering earlier ones, and Gaussian pixel noise on top.

    Args:
        n: number of images.
        size: side of the square images, pixels.
        seed: seed of the NumPy generator; the same arguments always give the same arrays.
        max_shapes: largest number of shapes per image.
        radius: range of the shapes' radius as fractions of ``size``.
        noise: standard deviation of the pixel noise (images are in [0, 1]).
        min_contrast: a shape's colour differs from the background's base colour by at least this much in
            one channel at least (so no shape is invisible).
        return_instances: also return which shape each pixel shows (the arrays above are the same either
            way: the flag draws no extra random numbers).

    Returns:
        ``images`` float32 ``(n, size, size, 3)`` in [0, 1] and ``masks`` uint8 ``(n, size, size)`` holding
        class indices into :data:`CLASS_NAMES`; with ``return_instances``, a third array ``instances``
        uint8 ``(n, size, size)``: ``0`` for background, ``k`` for the ``k``-th shape drawn in that image
        (``k >= 1``). A shape's visible area in pixels is the count of its ``k``; a shape entirely covered
        by later ones has none.
    """
    n = _positive_int(n, "n")
    size = _positive_int(size, "size")
    max_shapes = _positive_int(max_shapes, "max_shapes")
    if size < 16:
        raise ValueError(f"size={size}: use at least 16 pixels")
    lo, hi = radius
    if not 0 < lo <= hi < 0.5:
        raise ValueError(f"radius={radius!r}: need 0 < low <= high < 0.5 (fractions of size)")
    if noise < 0:
        raise ValueError(f"noise={noise!r}: must be >= 0")
    if not 0 <= min_contrast <= 0.5:
        raise ValueError(f"min_contrast={min_contrast!r}: must be in [0, 0.5]")
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    images = np.empty((n, size, size, 3), np.float32)
    masks = np.zeros((n, size, size), np.uint8)
    instances = np.zeros((n, size, size), np.uint8)
    for i in range(n):
        base = rng.uniform(0.2, 0.8, size=3)
        texture = np.zeros((size, size), np.float32)
        for _ in range(3):
            fy, fx = rng.uniform(-0.4, 0.4, size=2)
            texture += np.sin(fy * yy + fx * xx + rng.uniform(0, 2 * np.pi)).astype(np.float32)
        image = base + 0.08 * texture[..., None] * rng.uniform(-1, 1, size=3)
        for k in range(1, int(rng.integers(1, max_shapes + 1)) + 1):
            kind = int(rng.integers(1, len(CLASS_NAMES)))
            r = rng.uniform(lo, hi) * size
            cy, cx = rng.uniform(r, size - r, size=2)
            inside = _shape_mask(kind, yy, xx, cy, cx, r)
            colour = rng.uniform(0, 1, size=3)
            while np.abs(colour - base).max() < min_contrast:  # redraw colours too close to the background
                colour = rng.uniform(0, 1, size=3)
            image[inside] = colour
            masks[i][inside] = kind
            instances[i][inside] = k
        image += rng.normal(0, noise, size=image.shape)
        images[i] = np.clip(image, 0, 1)
    if return_instances:
        return images, masks, instances
    return images, masks


def receptive_field(model: Any) -> int:
    """Side, in input pixels, of the receptive field of one output pixel of a 2-D Keras model.

    Walks the model's layers from input to output with the usual recursion: a layer of window ``k``,
    stride ``s`` and dilation ``d`` grows the field by ``(k - 1) · d · j`` pixels, where ``j`` is the
    distance in input pixels between neighbouring positions of its input, and multiplies ``j`` by ``s``.
    Handled: ``Conv2D`` (and other layers with ``kernel_size``/``strides``/``dilation_rate``), max and
    average pooling, ``Conv2DTranspose`` (``k × k`` window at stride ``s``: each output position depends
    on ``ceil(k / s)`` inputs per axis, and ``j`` is divided by ``s``), ``UpSampling2D`` (nearest: one
    input; bilinear: two), layers that keep positions (batch normalization, activations, dropout) and
    merges (``Concatenate``, ``Add``...), which take the widest field of their inputs. The result is the
    field of an output pixel far from the borders (with "same" padding a border pixel sees less of the
    image), assuming square windows and strides.

    Raises:
        ValueError: ``model`` contains a layer this function does not know how to handle, or its merges
            join maps of different resolutions.
    """
    import keras

    # id(tensor) -> (field side, jump between neighbouring positions), input pixels
    fields: dict[int, tuple[float, float]] = {id(t): (1.0, 1.0) for t in model.inputs}

    def first(value: Any) -> int:
        return int(value[0]) if isinstance(value, (tuple, list)) else int(value)

    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        node_inputs = layer.input if isinstance(layer.input, (list, tuple)) else [layer.input]
        known = [fields[id(t)] for t in node_inputs]
        field = max(f for f, _ in known)
        jumps = {j for _, j in known}
        if len(jumps) != 1:
            raise ValueError(f"model: layer {layer.name!r} merges maps of different resolutions")
        (jump,) = jumps
        if isinstance(layer, keras.layers.Conv2DTranspose):
            k, s = first(layer.kernel_size), first(layer.strides)
            field, jump = field + (-(-k // s) - 1) * jump, jump / s
        elif isinstance(layer, keras.layers.UpSampling2D):
            extra = 1 if layer.interpolation == "bilinear" else 0
            field, jump = field + extra * jump, jump / first(layer.size)
        elif hasattr(layer, "kernel_size") or hasattr(layer, "pool_size"):
            k = first(getattr(layer, "kernel_size", None) or layer.pool_size)
            d = first(getattr(layer, "dilation_rate", 1))
            field, jump = field + (k - 1) * d * jump, jump * first(layer.strides)
        elif not isinstance(
            layer,
            (
                keras.layers.BatchNormalization,
                keras.layers.Activation,
                keras.layers.ReLU,
                keras.layers.Dropout,
                keras.layers.Concatenate,
                keras.layers.Add,
            ),
        ):
            raise ValueError(f"model: layer {layer.name!r} ({type(layer).__name__}) is not handled")
        fields[id(layer.output)] = (field, jump)
    return round(fields[id(model.outputs[0])][0])


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Pixel confusion matrix: entry ``[t, p]`` counts pixels of true class ``t`` predicted as ``p``."""
    n_classes = _positive_int(n_classes, "n_classes")
    y_true = np.asarray(y_true).ravel().astype(np.int64)
    y_pred = np.asarray(y_pred).ravel().astype(np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_pred: {y_pred.size} labels for {y_true.size} true labels")
    for name, labels in (("y_true", y_true), ("y_pred", y_pred)):
        if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
            raise ValueError(f"{name}: labels must be in [0, {n_classes - 1}]")
    return np.bincount(y_true * n_classes + y_pred, minlength=n_classes**2).reshape(n_classes, n_classes)


def iou_per_class(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Intersection over union of each class, ``TP / (TP + FP + FN)`` over all pixels given.

    A class absent from both ``y_true`` and ``y_pred`` gets ``nan`` (its IoU is undefined).
    """
    cm = confusion(y_true, y_pred, n_classes).astype(np.float64)
    tp = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / union, np.nan)


def mean_iou(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """Mean of :func:`iou_per_class` over the classes present in ``y_true`` or ``y_pred``.

    Pixels of all images are pooled (as ``keras.metrics.MeanIoU`` does), not averaged per image.
    """
    return float(np.nanmean(iou_per_class(y_true, y_pred, n_classes)))


def boundary_pixels(masks: np.ndarray, width: int = 1) -> np.ndarray:
    """Boolean array marking pixels within ``width`` pixels (chessboard distance) of a label change.

    Args:
        masks: ``(..., height, width)`` label maps.
        width: half-width of the boundary band, pixels.
    """
    masks = np.asarray(masks)
    width = _positive_int(width, "width")
    if masks.ndim < 2:
        raise ValueError(f"masks: need at least 2 dimensions, got shape {masks.shape}")
    h, w = masks.shape[-2:]
    pad = [(0, 0)] * (masks.ndim - 2) + [(width, width), (width, width)]
    padded = np.pad(masks, pad, mode="edge")
    edge = np.zeros(masks.shape, bool)
    for dy in range(-width, width + 1):
        for dx in range(-width, width + 1):
            shifted = padded[..., width + dy : width + dy + h, width + dx : width + dx + w]
            edge |= shifted != masks
    return edge


def pool_and_upsample(images: np.ndarray, times: int) -> np.ndarray:
    """Halve the resolution ``times`` times (2 × 2 average pooling), then resize back (bilinear).

    Mimics what an encoder of ``times`` stride-2 steps keeps of an image, and what a decoder without skip
    connections can rebuild from it. ``times = 0`` returns the images unchanged (as float32).

    Args:
        images: ``(n, height, width, channels)``; height and width must be multiples of ``2**times``.
    """
    import tensorflow as tf

    images = np.asarray(images, np.float32)
    if images.ndim != 4:
        raise ValueError(f"images: must be (n, height, width, channels), got shape {images.shape}")
    if isinstance(times, bool) or not isinstance(times, (int, np.integer)) or times < 0:
        raise ValueError(f"times={times!r}: must be a non-negative integer")
    factor = 2**times
    n, h, w, c = images.shape
    if h % factor or w % factor:
        raise ValueError(f"times={times}: height {h} and width {w} must be multiples of {factor}")
    if times == 0:
        return images.copy()
    small = images.reshape(n, h // factor, factor, w // factor, factor, c).mean(axis=(2, 4))
    return tf.image.resize(small, (h, w), method="bilinear").numpy()


MASK_RULES = ("majority", "centre")


def downsample_masks(masks: np.ndarray, factor: int, rule: str = "majority") -> np.ndarray:
    """Keep one label per ``factor × factor`` block and repeat it over the block.

    What a model that outputs one hard label per block (at ``1/factor`` of the resolution) can at best
    produce, blown back up to full size without finer detail.

    Args:
        masks: ``(..., height, width)`` label maps (non-negative integers).
        factor: side of the blocks, pixels; height and width must be multiples of it.
        rule: ``"majority"``: the block's most frequent label (ties go to the smaller label), the single
            label that gets the most pixels of the block right; ``"centre"``: the label of the pixel at
            ``(factor // 2, factor // 2)`` in the block, i.e. a nearest-neighbour subsampling.
    """
    masks = np.asarray(masks)
    factor = _positive_int(factor, "factor")
    if rule not in MASK_RULES:
        raise ValueError(f"rule={rule!r}: must be one of {MASK_RULES}")
    if masks.ndim < 2:
        raise ValueError(f"masks: need at least 2 dimensions, got shape {masks.shape}")
    h, w = masks.shape[-2:]
    if h % factor or w % factor:
        raise ValueError(f"factor={factor}: height {h} and width {w} must be multiples of it")
    if rule == "centre":
        centre = factor // 2
        small = masks[..., centre::factor, centre::factor]
    else:
        if masks.size and masks.min() < 0:
            raise ValueError("masks: labels must be non-negative integers")
        blocks = masks.reshape(*masks.shape[:-2], h // factor, factor, w // factor, factor)
        labels = np.arange(int(masks.max()) + 1 if masks.size else 1)
        counts = (blocks[..., None] == labels).sum(axis=(-4, -2))  # (..., h/f, w/f, labels)
        small = counts.argmax(axis=-1).astype(masks.dtype)
    return np.repeat(np.repeat(small, factor, axis=-2), factor, axis=-1)


def parameter_count(
    input_channels: int = 3,
    n_classes: int = len(CLASS_NAMES),
    filters: Sequence[int] = (16, 32, 64),
    skips: bool = False,
    upsampling: str = "transpose",
    batch_norm: bool = True,
) -> int:
    """Parameters of :func:`encoder_decoder` with these arguments, counted by hand (no model is built).

    The same total as Keras's ``count_params()``, batch normalization's moving mean and variance included:
    a 3 × 3 convolution from ``c`` to ``f`` maps has ``9·c·f`` weights (plus ``f`` biases without batch
    normalization, or ``4·f`` batch-normalization numbers with it); a 2 × 2 transposed convolution has
    ``4·c·f + f``; a skip connection adds the encoder's ``f`` maps to the decoder convolution's inputs.
    """
    c = _positive_int(input_channels, "input_channels")
    n_classes = _positive_int(n_classes, "n_classes")
    if not filters:
        raise ValueError("filters: give at least one level")
    filters = [_positive_int(f, f"filters[{i}]") for i, f in enumerate(filters)]
    if upsampling not in UPSAMPLINGS:
        raise ValueError(f"upsampling={upsampling!r}: must be one of {UPSAMPLINGS}")

    def conv(c_in: int, f: int) -> int:
        return 9 * c_in * f + (4 * f if batch_norm else f)

    total = 0
    for f in filters:
        total += conv(c, f)
        c = f
    total += conv(c, 2 * filters[-1])
    c = 2 * filters[-1]
    for f in reversed(filters):
        if upsampling == "transpose":
            total += 4 * c * f + f
            c = f
        total += conv(c + (f if skips else 0), f)
        c = f
    return total + c * n_classes + n_classes


def widen_to_match(
    n_params: int,
    filters: Sequence[int],
    steps: int = 64,
    **build: Any,
) -> tuple[int, ...]:
    """Filters of an :func:`encoder_decoder` widened uniformly to about ``n_params`` parameters.

    Tries every width multiplier ``1 + k / steps`` for ``k = 0 … steps`` (up to twice as wide), each filter
    count rounded to an integer, and returns the filters whose :func:`parameter_count` is closest to
    ``n_params`` (the narrowest on a tie). Used to compare models of equal capacity, e.g. an encoder–decoder
    against a U-Net, whose skip connections add decoder weights.

    Args:
        n_params: the parameter count to match.
        filters: the starting filters (multiplier 1).
        steps: how finely the multipliers between 1 and 2 are tried.
        build: further keyword arguments of :func:`parameter_count` (``input_channels``, ``n_classes``,
            ``skips``, ``upsampling``, ``batch_norm``).
    """
    n_params = _positive_int(n_params, "n_params")
    steps = _positive_int(steps, "steps")
    if not filters:
        raise ValueError("filters: give at least one level")
    best: tuple[int, tuple[int, ...]] | None = None
    for k in range(steps + 1):
        widened = tuple(max(1, round(f * (1 + k / steps))) for f in filters)
        gap = abs(parameter_count(filters=widened, **build) - n_params)
        if best is None or gap < best[0]:
            best = (gap, widened)
    assert best is not None
    return best[1]


def encoder_decoder(
    input_shape: tuple[int, int, int] = (64, 64, 3),
    n_classes: int = len(CLASS_NAMES),
    filters: Sequence[int] = (16, 32, 64),
    skips: bool = False,
    upsampling: str = "transpose",
    batch_norm: bool = True,
    name: str | None = None,
) -> Any:
    """A small encoder–decoder for segmentation; with ``skips=True`` it is a U-Net.

    Encoder: per entry ``f`` of ``filters``, a 3 × 3 ``Conv2D`` (ReLU, "same") then 2 × 2 max pooling, so the
    bottleneck (another 3 × 3 ``Conv2D`` of ``2 · filters[-1]`` maps) is at ``1 / 2**len(filters)`` of the
    resolution. Decoder: per level, back up, a ×2 upsampling (``"transpose"``: ``Conv2DTranspose`` 2 × 2,
    stride 2; ``"bilinear"``: ``UpSampling2D`` then nothing learned), optionally concatenated with the encoder's
    feature maps of that resolution (the skip connection), then a 3 × 3 ``Conv2D``. A final 1 × 1 ``Conv2D``
    outputs ``n_classes`` logits per pixel. With ``batch_norm``, every 3 × 3 convolution is followed by batch
    normalization before its ReLU (faster, steadier training).
    """
    import keras
    from keras import layers

    if len(input_shape) != 3:
        raise ValueError(f"input_shape={input_shape!r}: must be (height, width, channels)")
    for i, n in enumerate(input_shape):
        _positive_int(n, f"input_shape[{i}]")
    if not filters:
        raise ValueError("filters: give at least one level")
    for i, n in enumerate(filters):
        _positive_int(n, f"filters[{i}]")
    _positive_int(n_classes, "n_classes")
    if upsampling not in UPSAMPLINGS:
        raise ValueError(f"upsampling={upsampling!r}: must be one of {UPSAMPLINGS}")
    factor = 2 ** len(filters)
    if input_shape[0] % factor or input_shape[1] % factor:
        raise ValueError(f"input_shape={input_shape!r}: height and width must be multiples of {factor}")
    def conv(x: Any, f: int, name: str) -> Any:
        if not batch_norm:
            return layers.Conv2D(f, 3, padding="same", activation="relu", name=name)(x)
        x = layers.Conv2D(f, 3, padding="same", use_bias=False, name=name)(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
        return layers.Activation("relu", name=f"{name}_relu")(x)

    inputs = keras.Input(shape=input_shape)
    x = inputs
    encoded = []
    for i, f in enumerate(filters, start=1):
        x = conv(x, f, f"enc{i}")
        encoded.append(x)
        x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = conv(x, 2 * filters[-1], "bottleneck")
    for i in reversed(range(len(filters))):
        f = filters[i]
        if upsampling == "transpose":
            x = layers.Conv2DTranspose(f, 2, strides=2, name=f"up{i + 1}")(x)
        else:
            x = layers.UpSampling2D(2, interpolation="bilinear", name=f"up{i + 1}")(x)
        if skips:
            x = layers.Concatenate(name=f"skip{i + 1}")([x, encoded[i]])
        x = conv(x, f, f"dec{i + 1}")
    outputs = layers.Conv2D(n_classes, 1, name="logits")(x)
    default = ("unet" if skips else "encoder_decoder") + ("" if upsampling == "transpose" else "_bilinear")
    return keras.Model(inputs, outputs, name=name or default)


def unet(
    input_shape: tuple[int, int, int] = (64, 64, 3),
    n_classes: int = len(CLASS_NAMES),
    filters: Sequence[int] = (16, 32, 64),
    upsampling: str = "transpose",
    batch_norm: bool = True,
    name: str | None = None,
) -> Any:
    """:func:`encoder_decoder` with skip connections (U-Net style, Ronneberger et al., 2015)."""
    return encoder_decoder(
        input_shape, n_classes, filters, skips=True, upsampling=upsampling, batch_norm=batch_norm, name=name
    )


def colorize(masks: np.ndarray) -> np.ndarray:
    """RGB images (float in [0, 1]) of label maps, one :data:`CLASS_COLORS` entry per class."""
    masks = np.asarray(masks)
    if masks.size and (masks.min() < 0 or masks.max() >= len(CLASS_COLORS)):
        raise ValueError(f"masks: labels must be in [0, {len(CLASS_COLORS) - 1}]")
    return np.asarray(CLASS_COLORS)[masks]


def plot_masks(
    images: np.ndarray,
    true_masks: np.ndarray,
    predictions: Mapping[str, np.ndarray],
    title: str,
    scores: Mapping[str, Sequence[float]] | None = None,
) -> Any:
    """One row per image: the image, its true mask, then each model's predicted mask.

    Args:
        images: ``(n, h, w, 3)`` in [0, 1].
        true_masks: ``(n, h, w)`` class indices.
        predictions: model name → ``(n, h, w)`` predicted class indices.
        title: the figure's title.
        scores: optional model name → each image's mean IoU, shown under each predicted mask.
    Returns:
        The Matplotlib figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    n = len(images)
    if n == 0 or len(true_masks) != n:
        raise ValueError(f"true_masks: {len(true_masks)} masks for {n} images (need n >= 1)")
    for label, pred in predictions.items():
        if len(pred) != n:
            raise ValueError(f"predictions[{label!r}]: {len(pred)} masks for {n} images")
    columns = ["image", "true mask", *predictions]
    fig, axes = plt.subplots(n, len(columns), figsize=(1.9 * len(columns), 1.9 * n + 0.8), squeeze=False)
    for row in range(n):
        panels = [images[row], colorize(true_masks[row])] + [colorize(p[row]) for p in predictions.values()]
        for col, (ax, panel) in enumerate(zip(axes[row], panels, strict=True)):
            ax.imshow(panel, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(columns[col], fontsize=9)
            label = columns[col]
            if scores is not None and label in scores:
                ax.set_xlabel(f"mean IoU {scores[label][row]:.2f}", fontsize=8)
    handles = [Patch(color=c, label=name) for c, name in zip(CLASS_COLORS, CLASS_NAMES, strict=True)]
    fig.legend(handles=handles, loc="lower center", ncol=len(CLASS_NAMES), fontsize=8, frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def original_unet_output_size(size: int, depth: int = 4, convs: int = 2, kernel: int = 3) -> int:
    """Side, pixels, of the map that the original (valid-padded) U-Net outputs for a ``size``-pixel tile.

    Follows Ronneberger, Fischer and Brox (2015): per level, ``convs`` unpadded ``kernel × kernel``
    convolutions (each removes ``kernel - 1`` pixels) then a 2 × 2 max pooling of stride 2 on the way down;
    at the bottom ``convs`` more convolutions; per level on the way up a 2 × 2 up-convolution (doubles the
    side) then ``convs`` convolutions. For ``depth=4`` (the paper) the output side is ``size - 184``: a
    572-pixel tile gives 388.

    Raises:
        ValueError: a pooling would receive an odd side (the paper chooses tiles so that every pooling
            halves an even side, for seamless tiling) or a side would fall below 1 pixel; bad arguments.
    """
    size = _positive_int(size, "size")
    depth = _positive_int(depth, "depth")
    convs = _positive_int(convs, "convs")
    kernel = _positive_int(kernel, "kernel")
    side = size
    for level in range(depth):
        side -= convs * (kernel - 1)
        if side < 2 or side % 2:
            raise ValueError(f"size={size}: level {level + 1} would pool an odd or too small side ({side} px)")
        side //= 2
    side -= convs * (kernel - 1)
    for _ in range(depth):
        if side < 1:
            break
        side = 2 * side - convs * (kernel - 1)
    if side < 1:
        raise ValueError(f"size={size}: too small, the output would be empty")
    return side


def original_unet(
    input_size: int = 572,
    n_classes: int = 2,
    base_filters: int = 64,
    depth: int = 4,
    padding: str = "valid",
    input_channels: int = 1,
    name: str | None = None,
) -> Any:
    """The U-Net of Ronneberger, Fischer and Brox (2015), "U-Net: Convolutional Networks for Biomedical
    Image Segmentation", in Keras.

    Contracting path: per level, two 3 × 3 convolutions (ReLU) then 2 × 2 max pooling, the number of maps
    doubling per level from ``base_filters`` (64 in the paper, 1024 at the bottom). Expansive path: per
    level, a 2 × 2 up-convolution (``Conv2DTranspose``, stride 2) that halves the maps, concatenation with
    the contracting path's maps of that level, two 3 × 3 convolutions (ReLU); a final 1 × 1 convolution
    gives ``n_classes`` scores per pixel. With ``padding="valid"`` (the paper) the convolutions are
    unpadded, the encoder's maps are larger than the decoder's and are centre-cropped (``Cropping2D``
    layers named ``crop{level}``) before the concatenation; with ``"same"`` nothing is cropped and the
    output has the input's size (the common re-implementation).

    Args:
        input_size: side of the square input tile, pixels (572 in the paper; ``None`` for any size, with
            ``"same"`` padding only).
        n_classes: output maps (2 in the paper: cell / background).
        base_filters: maps of the first level.
        depth: number of poolings (4 in the paper).
        padding: ``"valid"`` or ``"same"``.
        input_channels: 1 for the paper's grey-level microscopy images.
    """
    import keras
    from keras import layers

    if padding not in ("valid", "same"):
        raise ValueError(f"padding={padding!r}: must be 'valid' or 'same'")
    depth = _positive_int(depth, "depth")
    base_filters = _positive_int(base_filters, "base_filters")
    n_classes = _positive_int(n_classes, "n_classes")
    input_channels = _positive_int(input_channels, "input_channels")
    if input_size is None and padding == "valid":
        raise ValueError("input_size=None: the valid-padded U-Net needs a size to compute its crops")
    if input_size is not None:
        input_size = _positive_int(input_size, "input_size")
        if padding == "valid":
            original_unet_output_size(input_size, depth)  # raises on a size that does not tile
        elif input_size % 2**depth:
            raise ValueError(f"input_size={input_size}: with 'same' padding it must be a multiple of {2**depth}")

    def double_conv(x: Any, f: int, tag: str) -> Any:
        x = layers.Conv2D(f, 3, padding=padding, activation="relu", name=f"{tag}_conv1")(x)
        return layers.Conv2D(f, 3, padding=padding, activation="relu", name=f"{tag}_conv2")(x)

    inputs = keras.Input((input_size, input_size, input_channels), name="tile")
    x = inputs
    skips = []
    for level in range(1, depth + 1):
        x = double_conv(x, base_filters * 2 ** (level - 1), f"down{level}")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"pool{level}")(x)
    x = double_conv(x, base_filters * 2**depth, "bottom")
    for level in range(depth, 0, -1):
        f = base_filters * 2 ** (level - 1)
        x = layers.Conv2DTranspose(f, 2, strides=2, name=f"upconv{level}")(x)
        skip = skips[level - 1]
        if padding == "valid":
            extra = skip.shape[1] - x.shape[1]
            skip = layers.Cropping2D(extra // 2, name=f"crop{level}")(skip)
        x = layers.Concatenate(name=f"concat{level}")([skip, x])
        x = double_conv(x, f, f"up{level}")
    outputs = layers.Conv2D(n_classes, 1, name="scores")(x)
    return keras.Model(inputs, outputs, name=name or f"unet_{padding}")
