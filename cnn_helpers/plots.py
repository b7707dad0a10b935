"""Figures shared by the chapters. Each function returns the Matplotlib figure it draws."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

MB = 10**6


def memory_vs_batch(
    batch_sizes: Sequence[int],
    series: Mapping[str, Sequence[int]],
    title: str,
    measured: str | None = None,
) -> Figure:
    """Memory (MB = 10**6 bytes) against batch size, one line per series of byte counts.

    Args:
        batch_sizes: the x values (images per batch).
        series: label → bytes at each batch size, same length as ``batch_sizes``.
        title: the figure's title.
        measured: the label of the measured series, drawn with markers only and on top.
    """
    if not batch_sizes:
        raise ValueError("batch_sizes: give at least one batch size")
    for label, values in series.items():
        if len(values) != len(batch_sizes):
            raise ValueError(f"series[{label!r}]: {len(values)} values for {len(batch_sizes)} batch sizes")
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, values in series.items():
        mb = [v / MB for v in values]
        if label == measured:
            ax.plot(batch_sizes, mb, "o", markersize=8, color="black", label=label, zorder=3)
        else:
            ax.plot(batch_sizes, mb, "-", marker=".", label=label)
    ax.set_xlabel("batch size (images)")
    ax.set_ylabel("memory (MB = $10^6$ bytes)")
    ax.set_title(title)
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def stacked_bars(
    categories: Sequence[str],
    parts: Mapping[str, Sequence[int]],
    title: str,
    ylabel: str = "memory (MB = $10^6$ bytes)",
) -> Figure:
    """Stacked bars of byte counts (shown in MB), one bar per category and one colour per part."""
    if not categories:
        raise ValueError("categories: give at least one bar")
    fig, ax = plt.subplots(figsize=(7, 4.2))
    bottoms = [0.0] * len(categories)
    for label, values in parts.items():
        if len(values) != len(categories):
            raise ValueError(f"parts[{label!r}]: {len(values)} values for {len(categories)} categories")
        mb = [v / MB for v in values]
        ax.bar(categories, mb, bottom=bottoms, label=label)
        bottoms = [b + m for b, m in zip(bottoms, mb)]
    for x, total in enumerate(bottoms):
        ax.annotate(f"{total:,.1f}", (x, total), ha="center", va="bottom", fontsize=9)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------- first-layer filters (Q46)


def first_conv(model: Any) -> tuple[Any, np.ndarray]:
    """The first convolution of ``model`` and its filters as a ``(kh, kw, C_in, F)`` array.

    Walks ``model.layers`` in order and into nested models (a pretrained base inside a fine-tuned model), and
    stops at the first ``Conv2D`` (``Conv1D``/``Conv3D`` are not 2-D filters and are skipped),
    ``DepthwiseConv2D`` or ``SeparableConv2D``. Reads ``layer.kernel`` (``depthwise_kernel`` for
    ``SeparableConv2D``), so layers built with ``use_bias=False`` (MobileNetV2's ``Conv1``) work; a depthwise
    kernel ``(kh, kw, C_in, m)`` becomes ``C_in · m`` one-channel filters ``(kh, kw, 1, C_in · m)``, in the
    order of the layer's output channels.

    Returns:
        ``(layer, kernel)``, the kernel as a float NumPy array.

    Raises:
        ValueError: if ``model`` has no such layer (or is not built yet).
    """
    layer = _find_first_conv(model)
    if layer is None:
        raise ValueError(
            f"model: {getattr(model, 'name', model)!r} has no Conv2D, DepthwiseConv2D or SeparableConv2D layer"
        )
    if not layer.built:
        raise ValueError(f"model: layer {layer.name!r} is not built yet; call the model on an input first")
    variable = layer.depthwise_kernel if hasattr(layer, "depthwise_kernel") else layer.kernel
    kernel = np.asarray(variable.numpy(), dtype=np.float64)
    if _is_depthwise(layer):
        kh, kw, c_in, mult = kernel.shape
        kernel = kernel.reshape(kh, kw, 1, c_in * mult)
    return layer, kernel


def _is_depthwise(layer: Any) -> bool:
    import keras

    return isinstance(layer, keras.layers.SeparableConv2D | keras.layers.DepthwiseConv2D)


def _find_first_conv(model: Any) -> Any:
    import keras

    for layer in getattr(model, "layers", []):
        if _is_depthwise(layer) or (
            isinstance(layer, keras.layers.Conv2D) and not isinstance(layer, keras.layers.Conv2DTranspose)
        ):
            return layer
        if hasattr(layer, "layers"):
            found = _find_first_conv(layer)
            if found is not None:
                return found
    return None


def _ramps(kh: int, kw: int) -> np.ndarray:
    """Orthonormal basis of the linear ramps (a plane tilted in any direction) on a kh × kw grid: (kh·kw, r)."""
    u, v = np.meshgrid(np.arange(kh) - (kh - 1) / 2, np.arange(kw) - (kw - 1) / 2, indexing="ij")
    basis = [b.ravel() / np.linalg.norm(b) for b in (u, v) if np.linalg.norm(b) > 0]
    return np.stack(basis, axis=1)


#: A filter whose weight norm is below this fraction of the layer's largest is "dead" for :func:`edge_fit`.
DEAD_FRACTION = 1e-2


def edge_fit(kernel: Any, *, dead_below: float = DEAD_FRACTION) -> np.ndarray:
    """How much of each filter is an oriented edge: the fraction of its energy a tilted plane explains.

    Each filter (mean removed per input channel) is projected on the linear ramps ``a·row + b·column`` of its
    grid; the score is ``‖projection‖² / ‖filter‖²`` summed over input channels, in [0, 1]. A Sobel-like
    edge detector at any orientation scores about 0.9 (Sobel itself 8/9), a centre-surround blob or a
    checkerboard 0. A live filter with no variation (a constant) scores 0. For i.i.d. random weights (a
    random initialization) the expected score is :func:`edge_fit_chance`, e.g. 2/8 for 3 × 3 kernels.

    The score ignores scale, so a **dead** filter (weights that training drove to zero, e.g. 1e-21, whose
    shape is rounding noise) would get a meaningless score: a filter whose weight norm (before removing the
    mean) is below ``dead_below`` times the layer's largest filter norm scores NaN. Count live filters with
    ``np.isfinite(scores)`` and average with ``np.nanmean``. An all-zero kernel is all NaN.

    Args:
        kernel: ``(kh, kw, C_in, F)`` with ``kh · kw ≥ 3`` and a side of at least 2 pixels.
        dead_below: relative norm below which a filter is dead, in [0, 1); 0 scores every non-zero filter.

    Returns:
        ``(F,)`` scores in [0, 1], NaN for dead filters.
    """
    k = np.asarray(kernel, dtype=np.float64)
    if k.ndim != 4:
        raise ValueError(f"kernel: expected (kh, kw, C_in, F), got shape {k.shape}")
    if not 0 <= dead_below < 1:
        raise ValueError(f"dead_below={dead_below!r}: must be in [0, 1)")
    kh, kw, c_in, f = k.shape
    if kh * kw < 3 or max(kh, kw) < 2:
        raise ValueError(f"kernel: a {kh}×{kw} filter has no room for an edge (need kh·kw ≥ 3)")
    flat = k.reshape(kh * kw, c_in, f)
    norms = np.sqrt((flat**2).sum(axis=(0, 1)))
    live = norms > dead_below * norms.max(initial=0.0)
    flat = flat - flat.mean(axis=0, keepdims=True)
    energy = (flat**2).sum(axis=(0, 1))
    explained = (np.einsum("pb,pcf->bcf", _ramps(kh, kw), flat) ** 2).sum(axis=(0, 1))
    scores = np.where(energy > 0, explained / np.where(energy > 0, energy, 1), 0.0)
    return np.where(live, scores, np.nan)


def _check_grid(kh: int, kw: int) -> None:
    if kh * kw < 3 or max(kh, kw) < 2:
        raise ValueError(f"kh, kw: a {kh}×{kw} filter has no room for an edge (need kh·kw ≥ 3)")


def edge_fit_chance(kh: int, kw: int) -> float:
    """Expected :func:`edge_fit` of a filter of i.i.d. Gaussian weights: ramps / (kh·kw − 1) (2/8 for 3 × 3).

    The same for any number of input channels (see :func:`edge_fit_chance_above` for the spread).
    """
    _check_grid(kh, kw)
    return _ramps(kh, kw).shape[1] / (kh * kw - 1)


def edge_fit_chance_above(
    kh: int, kw: int, c_in: int, threshold: float, *, draws: int = 1_000_000, seed: int = 0
) -> float:
    """Probability that a filter of i.i.d. Gaussian weights has :func:`edge_fit` ``≥ threshold``.

    Unlike the mean, this depends on the number of input channels: the score of a random filter is
    Beta(r·C/2, (kh·kw − 1 − r)·C/2) distributed (r = number of ramps, 2 for a square grid; C = ``c_in``), a
    ratio of chi-square energies, so more channels concentrate it around the mean. For 3 × 3 filters and
    ``threshold=0.5``: 0.125 with one input channel (exactly (1 − 0.5)³), about 0.033 with three.
    Estimated from ``draws`` seeded Beta draws (standard error below 0.0005 for the default).

    Args:
        kh, kw: the filter's grid, in pixels.
        c_in: input channels per filter, ≥ 1.
        threshold: score threshold in [0, 1].
        draws: Monte Carlo draws, ≥ 1.
        seed: seed of the draws.
    """
    _check_grid(kh, kw)
    if not isinstance(c_in, int) or c_in < 1:
        raise ValueError(f"c_in={c_in!r}: must be a positive int")
    if not 0 <= threshold <= 1:
        raise ValueError(f"threshold={threshold!r}: must be in [0, 1]")
    if not isinstance(draws, int) or draws < 1:
        raise ValueError(f"draws={draws!r}: must be a positive int")
    r = _ramps(kh, kw).shape[1]
    a, b = r * c_in / 2, (kh * kw - 1 - r) * c_in / 2
    samples = np.random.default_rng(seed).beta(a, b, size=draws)
    return float((samples >= threshold).mean())


def _normalized(k: np.ndarray, normalize: str) -> np.ndarray:
    """Min–max to [0, 1], over all filters (``"global"``: keeps their relative strength) or per filter."""
    axes = None if normalize == "global" else (0, 1, 2)
    low, high = k.min(axis=axes, keepdims=True), k.max(axis=axes, keepdims=True)
    return (k - low) / np.maximum(high - low, np.finfo(np.float64).eps)


def first_layer_filters(
    model_or_kernel: Any,
    *,
    normalize: str = "global",
    channel_order: str = "RGB",
    ncols: int = 8,
    max_filters: int = 64,
    max_channels: int = 8,
    title: str | None = None,
    path: str | None = None,
) -> Figure:
    """Draw the filters of the first convolution of a model (or a kernel ``(kh, kw, C_in, F)`` given directly).

    Three input channels are drawn as one RGB image per filter (``channel_order="BGR"`` for caffe-style bases
    such as Keras' VGG16 and ResNet50, whose first layer sees BGR input); one channel as a grayscale image per
    filter; any other number as one grayscale panel per filter and input channel (a row per filter). Pixels
    are the weights min–max normalized to [0, 1] (``normalize="global"`` over all filters, keeping their
    relative strength; ``"per_filter"`` stretches each one), drawn with ``interpolation="nearest"``. Each
    panel's title gives the filter's :func:`edge_fit`.

    Args:
        model_or_kernel: a built Keras model (see :func:`first_conv`) or a 4-D array.
        normalize: ``"global"`` or ``"per_filter"``.
        channel_order: ``"RGB"`` or ``"BGR"``: the order of the kernel's input channels (3-channel kernels).
        ncols: panels per row (filters drawn as single images).
        max_filters: draw at most this many filters (the first ones).
        max_channels: per-channel panels: draw at most this many input channels.
        title: figure title; default names the layer and the kernel's shape.
        path: also save the figure there (PNG, 150 dpi).

    Returns:
        The figure; one axis per drawn filter (per filter and channel for the per-channel layout).
    """
    if normalize not in ("global", "per_filter"):
        raise ValueError(f"normalize={normalize!r}: use 'global' or 'per_filter'")
    if channel_order not in ("RGB", "BGR"):
        raise ValueError(f"channel_order={channel_order!r}: use 'RGB' or 'BGR'")
    for name, value in (("ncols", ncols), ("max_filters", max_filters), ("max_channels", max_channels)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r}: must be a positive int")
    if hasattr(model_or_kernel, "layers"):
        layer, kernel = first_conv(model_or_kernel)
        name = f"layer {layer.name!r}, "
    else:
        name, kernel = "", np.asarray(model_or_kernel, dtype=np.float64)
        if kernel.ndim != 4 or min(kernel.shape) < 1:
            raise ValueError(f"model_or_kernel: expected a model or a (kh, kw, C_in, F) kernel, got {kernel.shape}")
    kh, kw, c_in, f = kernel.shape
    shown = _normalized(kernel, normalize)[..., :max_filters]
    scores = edge_fit(kernel)[:max_filters] if kh * kw >= 3 and max(kh, kw) >= 2 else None
    n = shown.shape[-1]
    if c_in == 3 and channel_order == "BGR":
        shown = shown[:, :, ::-1, :]
    per_channel = c_in not in (1, 3)
    channels = min(c_in, max_channels)
    rows, cols = (n, channels) if per_channel else (math.ceil(n / ncols), min(ncols, n))
    panel = 1.1 if per_channel else 1.3
    width = max(panel * cols + 0.9, 4.5)
    fig, axes = plt.subplots(rows, cols, figsize=(width, panel * rows + 1.1), squeeze=False)
    image = None
    for i in range(n):
        if scores is None:
            label = f"{i}"
        else:
            label = f"{i} (" + ("dead" if np.isnan(scores[i]) else f"edge {scores[i]:.2f}") + ")"
        if per_channel:
            for c in range(channels):
                ax = axes[i, c]
                image = ax.imshow(shown[:, :, c, i], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                if c == 0:
                    ax.set_ylabel(f"filter {label}", fontsize=7)
                if i == 0:
                    ax.set_title(f"input channel {c}", fontsize=7)
            continue
        ax = axes.flat[i]
        if c_in == 3:
            ax.imshow(shown[:, :, :, i], interpolation="nearest")
        else:
            image = ax.imshow(shown[:, :, 0, i], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"filter {label}", fontsize=7)
    for ax in list(axes.flat)[n * (channels if per_channel else 1) :]:
        fig.delaxes(ax)
    if per_channel:
        what = f"one grayscale panel per input channel (first {channels} of {c_in})"
    else:
        what = f"{channel_order} colour" if c_in == 3 else "grayscale"
    lines = [
        title or f"First convolution: {name}{kh}×{kw} pixels, {c_in} input channels, {f} filters",
        f"{n} of {f} filters, {what}",
        f"weights min–max normalized to [0, 1] ({normalize.replace('_', ' ')}); edge = edge_fit score"
        + (f"; dead = norm below {100 * DEAD_FRACTION:g} % of the largest filter's" if scores is not None else ""),
    ]
    chars = int(width * 14)  # characters per line at font size 9
    fig.suptitle("\n".join(textwrap.fill(line, chars) for line in lines), fontsize=9)
    fig.tight_layout()
    if image is not None:
        fig.colorbar(image, ax=fig.axes, shrink=0.6, label="normalized weight (0 = min, 1 = max)")
    if path is not None:
        fig.savefig(path, dpi=150)
    return fig
