"""Grad-CAM (Selvaraju et al., *Grad-CAM: Visual Explanations from Deep Networks via Gradient-based Localization*,
2017) and an occlusion check of where a classifier looks.

For a class *c* with score ``y^c`` (the logit, before the softmax) and the maps ``A^k`` of a convolutional layer,
Grad-CAM weights each map by the spatial mean of its gradient, ``α_k = mean_ij ∂y^c / ∂A^k_ij``, and keeps the
positive part of the weighted sum: ``L = ReLU(Σ_k α_k A^k)``, at the layer's resolution (upsample it to overlay
it on the image). Any convolutional layer can be used; the last one is the usual choice.

Images and maps are channels-last arrays; cell sizes and image sides are in pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _layer(model: Any, layer_name: str) -> Any:
    try:
        return model.get_layer(layer_name)
    except ValueError as err:
        raise ValueError(f"layer_name={layer_name!r}: no such layer in model {model.name!r}") from err


def grad_cam(model: Any, images: np.ndarray, layer_name: str, class_index: int | Sequence[int] | None = None,
             batch_size: int = 32, *, relu: bool = True) -> np.ndarray:
    """Grad-CAM maps of ``model`` for ``images`` at the layer ``layer_name``.

    Args:
        model: a functional Keras model whose output is class *scores* (logits, not probabilities, as in the
            paper) and which contains ``layer_name`` directly (not inside a nested model).
        images: a batch ``(N, H, W, C)`` in the model's input range.
        layer_name: a layer with a 4-D output ``(N, h, w, K)``.
        class_index: the class explained, one for all images or one per image; ``None``: each image's
            predicted class.
        batch_size: images per gradient computation.
        relu: apply the paper's final ReLU (default). ``False`` returns the signed sum ``Σ_k α_k A^k``, which
            still orders the cells that the ReLU sets to zero (useful to rank all cells, e.g. for occlusion).

    Returns:
        ``(N, h, w)`` float32 maps in the units of ``α · A`` (not normalized); non-negative when ``relu``.
    """
    import keras
    import tensorflow as tf

    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"images: expected a non-empty (N, H, W, C) batch, got shape {images.shape}")
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}: must be at least 1")
    layer = _layer(model, layer_name)
    if len(layer.output.shape) != 4:
        raise ValueError(f"layer_name={layer_name!r}: output shape {layer.output.shape} is not (N, h, w, K)")
    n_classes = int(model.output.shape[-1])
    if class_index is None:
        targets = None
    else:
        targets = np.broadcast_to(np.asarray(class_index, dtype=np.int64), (len(images),))
        if targets.min() < 0 or targets.max() >= n_classes:
            raise ValueError(f"class_index={class_index!r}: must lie in [0, {n_classes})")
    split = keras.Model(model.input, [layer.output, model.output])

    cams = []
    for start in range(0, len(images), batch_size):
        x = tf.constant(images[start:start + batch_size])
        with tf.GradientTape() as tape:
            a, scores = split(x, training=False)
            if targets is None:
                t = tf.argmax(scores, axis=1)
            else:
                t = tf.constant(targets[start:start + batch_size])
            chosen = tf.gather(scores, t, axis=1, batch_dims=1)
        grads = tape.gradient(chosen, a)  # one image's score depends only on its own maps
        alpha = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
        weighted = tf.reduce_sum(alpha * a, axis=-1)
        cams.append((tf.nn.relu(weighted) if relu else weighted).numpy())
    return np.concatenate(cams).astype(np.float32)


def upsample(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of ``(N, h, w)`` maps to ``(N, *size)`` (pixels), to overlay them on the images."""
    import tensorflow as tf

    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim != 3:
        raise ValueError(f"maps: expected (N, h, w), got shape {maps.shape}")
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"size={size!r}: need (height, width) in pixels, both >= 1")
    return tf.image.resize(maps[..., None], size, method="bilinear").numpy()[..., 0]


def normalize(maps: np.ndarray) -> np.ndarray:
    """Each ``(h, w)`` map divided by its maximum (maps that are all zero stay zero): values in [0, 1]."""
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim != 3:
        raise ValueError(f"maps: expected (N, h, w), got shape {maps.shape}")
    peak = maps.max(axis=(1, 2), keepdims=True)
    return np.where(peak > 0, maps / np.where(peak > 0, peak, 1), 0).astype(np.float32)


def occlude_cells(images: np.ndarray, cell_scores: np.ndarray, k: int, fill: float) -> np.ndarray:
    """Replace, in each image, the ``k`` grid cells with the highest score by the value ``fill``.

    Args:
        images: ``(N, H, W, C)``; ``H`` and ``W`` must be multiples of the grid's ``h`` and ``w``.
        cell_scores: ``(N, h, w)``, one score per cell of an ``h × w`` grid over the image (e.g. a Grad-CAM map at
            its own resolution, or random numbers for a random choice of cells). Ties keep the first cells in
            row-major order.
        k: cells to occlude per image, ``0 ≤ k ≤ h · w``.
        fill: the value written into occluded pixels (in the images' units, e.g. mid-grey).

    Returns:
        A copy of ``images`` with the cells filled.
    """
    images = np.asarray(images)
    cell_scores = np.asarray(cell_scores)
    if images.ndim != 4 or cell_scores.ndim != 3 or len(images) != len(cell_scores):
        raise ValueError(f"images, cell_scores: need (N, H, W, C) and (N, h, w), got {images.shape} and "
                         f"{cell_scores.shape}")
    n, height, width, _ = images.shape
    _, h, w = cell_scores.shape
    if height % h or width % w:
        raise ValueError(f"cell_scores: a {h} × {w} grid does not divide {height} × {width} images")
    if int(k) != k or not 0 <= k <= h * w:
        raise ValueError(f"k={k!r}: must be an integer in [0, {h * w}]")
    ch, cw = height // h, width // w
    out = images.copy()
    order = np.argsort(-cell_scores.reshape(n, -1), axis=1, kind="stable")[:, :k]
    for i in range(n):
        for cell in order[i]:
            r, c = divmod(int(cell), w)
            out[i, r * ch:(r + 1) * ch, c * cw:(c + 1) * cw] = fill
    return out


def overlay_figure(images: np.ndarray, maps: np.ndarray, titles: Sequence[str], *, title: str,
                   columns: int = 4) -> Any:
    """Images (pixels in [0, 255]) with maps in [0, 1] of the same size drawn over them (jet, half transparent)."""
    import matplotlib.pyplot as plt

    images, maps = np.asarray(images), np.asarray(maps)
    if len(images) == 0 or images.shape[:3] != maps.shape or len(titles) != len(images):
        raise ValueError(f"images, maps, titles: need N images, N maps of the same size and N titles, got "
                         f"{images.shape}, {maps.shape}, {len(titles)}")
    rows = -(-len(images) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.8 * rows + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, m, text in zip(axes.flat, images, maps, titles):
        ax.imshow(np.clip(image, 0, 255).astype(np.uint8))
        im = ax.imshow(m, cmap="jet", alpha=0.45, vmin=0, vmax=1)
        ax.set_title(text, fontsize=8)
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.7, label="Grad-CAM / its maximum")
    fig.suptitle(title)
    return fig
