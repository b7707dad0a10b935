"""Figures shared by the chapters. Each function returns the Matplotlib figure it draws."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
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
