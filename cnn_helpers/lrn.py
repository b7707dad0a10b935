"""Local response normalization (LRN, AlexNet 2012): a NumPy reference, the hyperparameter mapping, figures.

For activations ``a`` shaped ``(batch, height, width, channels)``, LRN divides each value by a power of the
energy of its neighbours *across channels*, at the same pixel::

    b[..., i] = a[..., i] / (bias + alpha * sum(a[..., j] ** 2 for j in window(i))) ** beta
    window(i) = max(0, i - depth_radius) .. min(channels - 1, i + depth_radius)

This is the formula of ``tf.nn.local_response_normalization`` and of the AlexNet paper (with its ``n`` =
2 · ``depth_radius`` + 1 channels, ``k`` = ``bias``, same ``alpha`` and ``beta``). Caffe and PyTorch divide
``alpha`` by ``n``; :func:`tf_arguments` converts either convention into TensorFlow's arguments.
"""

from __future__ import annotations

from typing import Literal

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

#: AlexNet's hyperparameters as its paper gives them: n = 5 channels, k = 2, α = 1e-4, β = 0.75.
ALEXNET = {"n": 5, "k": 2.0, "alpha": 1e-4, "beta": 0.75}


def _check(depth_radius: int, bias: float, alpha: float, beta: float) -> None:
    if int(depth_radius) != depth_radius or depth_radius < 0:
        raise ValueError(f"depth_radius={depth_radius!r}: must be an integer >= 0")
    if bias <= 0:
        raise ValueError(f"bias={bias!r}: must be > 0 (it keeps the denominator away from zero)")
    if alpha < 0:
        raise ValueError(f"alpha={alpha!r}: must be >= 0")
    if beta < 0:
        raise ValueError(f"beta={beta!r}: must be >= 0")


def neighbourhood_energy(x: np.ndarray, depth_radius: int) -> np.ndarray:
    """Sum of squares over the window of ``2 · depth_radius + 1`` channels centred on each channel.

    The window is clipped at the first and last channel. Same shape as ``x`` (channels last), float64.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 1 or x.shape[-1] < 1:
        raise ValueError(f"x: needs a channel axis (last), got shape {x.shape}")
    if int(depth_radius) != depth_radius or depth_radius < 0:
        raise ValueError(f"depth_radius={depth_radius!r}: must be an integer >= 0")
    channels = x.shape[-1]
    squares = np.concatenate([np.zeros((*x.shape[:-1], 1)), np.cumsum(x**2, axis=-1)], axis=-1)
    idx = np.arange(channels)
    high = np.minimum(idx + depth_radius, channels - 1) + 1
    low = np.maximum(idx - depth_radius, 0)
    return squares[..., high] - squares[..., low]


def local_response_normalization(
    x: np.ndarray,
    depth_radius: int = 2,
    bias: float = 2.0,
    alpha: float = 1e-4,
    beta: float = 0.75,
) -> np.ndarray:
    """LRN over the last axis, in float64, with TensorFlow's argument names (defaults: AlexNet's values).

    Note that ``tf.nn.local_response_normalization``'s own defaults are different (5, 1, 1, 0.5).

    Args:
        x: activations, channels last (any leading shape).
        depth_radius: channels on each side of the centre channel in the window (AlexNet: 2, i.e. n = 5).
        bias: the constant ``k`` in the denominator (AlexNet: 2).
        alpha: the scale of the neighbours' sum of squares, not divided by the window size (AlexNet: 1e-4).
        beta: the exponent (AlexNet: 0.75).
    """
    _check(depth_radius, bias, alpha, beta)
    x = np.asarray(x, dtype=np.float64)
    return x / gain_denominator(x, depth_radius, bias, alpha, beta)


def gain_denominator(x: np.ndarray, depth_radius: int, bias: float, alpha: float, beta: float) -> np.ndarray:
    """The divisor ``(bias + alpha · energy) ** beta`` applied to each value (1 would leave it unchanged)."""
    _check(depth_radius, bias, alpha, beta)
    return (bias + alpha * neighbourhood_energy(x, depth_radius)) ** beta


def tf_arguments(
    n: int, k: float, alpha: float, beta: float, convention: Literal["alexnet", "caffe"] = "alexnet"
) -> dict[str, float]:
    """Convert LRN hyperparameters from a paper or framework into ``tf.nn.local_response_normalization``'s.

    Args:
        n: the window size in channels (odd: the centre channel and as many on each side).
        k: the bias.
        alpha: the scale as written in the source.
        beta: the exponent.
        convention: ``"alexnet"`` when the source multiplies the plain sum of squares by ``alpha`` (the AlexNet
            paper, TensorFlow); ``"caffe"`` when it multiplies their *mean*, i.e. uses ``alpha / n`` (Caffe,
            PyTorch's ``torch.nn.LocalResponseNorm``).

    Returns:
        ``{"depth_radius": ..., "bias": ..., "alpha": ..., "beta": ...}``, ready for ``**`` in TensorFlow.
    """
    if int(n) != n or n < 1 or n % 2 == 0:
        raise ValueError(f"n={n!r}: the window must be an odd number of channels >= 1")
    if convention not in ("alexnet", "caffe"):
        raise ValueError(f"convention={convention!r}: use 'alexnet' or 'caffe'")
    tf_alpha = alpha if convention == "alexnet" else alpha / n
    result = {"depth_radius": (n - 1) // 2, "bias": float(k), "alpha": float(tf_alpha), "beta": float(beta)}
    _check(result["depth_radius"], result["bias"], result["alpha"], result["beta"])
    return result


def plot_channel_profile(before: np.ndarray, after: np.ndarray, bias: float, beta: float, title: str) -> Figure:
    """Two panels for one pixel: its activations across channels, and how much LRN kept of each.

    The right panel shows ``after / before`` relative to ``bias ** -beta``, the factor a channel with silent
    neighbours gets: 1 means "not inhibited", lower means its neighbours pushed it down.
    """
    before = np.asarray(before, dtype=np.float64)
    after = np.asarray(after, dtype=np.float64)
    if before.ndim != 1 or before.shape != after.shape:
        raise ValueError(f"before, after: must be 1-D and of the same length, got {before.shape}, {after.shape}")
    channels = np.arange(len(before))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
    ax1.bar(channels, before, color="lightgray", label="before LRN")
    ax1.bar(channels, after, color="tab:blue", label="after LRN")
    ax1.set_xlabel("channel (feature map)")
    ax1.set_ylabel("activation")
    ax1.set_title("Activations at one pixel")
    ax1.legend()
    active = before > 0
    kept = np.full_like(before, np.nan)
    kept[active] = after[active] / before[active] * bias**beta
    ax2.bar(channels, np.nan_to_num(kept), color="tab:red")
    ax2.axhline(1.0, color="black", lw=0.8, ls="--")
    ax2.set_ylim(0, 1.05)
    ax2.set_xlabel("channel (feature map)")
    ax2.set_ylabel("fraction kept (1 = not inhibited)")
    ax2.set_title(f"Kept, relative to $k^{{-\\beta}}$ = {bias ** -beta:.2f} (silent neighbours)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_gain_vs_energy(
    energy: np.ndarray, kept: np.ndarray, bias: float, alpha: float, beta: float, title: str
) -> Figure:
    """Scatter of the factor each value was multiplied by against its neighbourhood energy, with the formula.

    Args:
        energy: sum of squares over each value's window (see :func:`neighbourhood_energy`).
        kept: ``after / before`` for the same values.
    """
    energy = np.asarray(energy, dtype=np.float64).ravel()
    kept = np.asarray(kept, dtype=np.float64).ravel()
    if energy.shape != kept.shape:
        raise ValueError(f"kept: {kept.size} values for {energy.size} energies")
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.scatter(energy, kept, s=2, alpha=0.3, label="measured (TensorFlow)")
    grid = np.linspace(0, energy.max(), 200)
    ax.plot(grid, (bias + alpha * grid) ** -beta, "k--", label=r"$(k + \alpha E)^{-\beta}$")
    ax.set_xlabel("energy of the neighbouring channels E = Σ a² (activation units²)")
    ax.set_ylabel("factor applied by LRN (b / a)")
    ax.set_title(title)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig
