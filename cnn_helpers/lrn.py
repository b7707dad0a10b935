"""Local response normalization (LRN, AlexNet 2012): a NumPy reference, the hyperparameter mapping, figures.

For activations ``a`` shaped ``(batch, height, width, channels)``, LRN divides each value by a power of the
energy of a window of channels *at the same pixel*, the value's own channel included::

    b[..., i] = a[..., i] / (bias + alpha * sum(a[..., j] ** 2 for j in window(i))) ** beta
    window(i) = max(0, i - depth_radius) .. min(channels - 1, i + depth_radius)

This is the formula of ``tf.nn.local_response_normalization`` and of the AlexNet paper (with its ``n`` =
2 · ``depth_radius`` + 1 channels, ``k`` = ``bias``, same ``alpha`` and ``beta``). Caffe and PyTorch divide
``alpha`` by ``n``; :func:`tf_arguments` converts either convention into TensorFlow's arguments.

The factor ``b / a`` splits into three parts (:func:`gain_factors`): the constant ``bias ** -beta``, what the
value's own square costs it, and what its neighbours' squares cost it. Only the last is lateral inhibition.

Units: activations are in the units of the layer's output (whatever scale its input and weights give them);
energies are sums of squared activations (activation units²); factors are dimensionless.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, NamedTuple

import keras
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf
from matplotlib.figure import Figure

#: AlexNet's hyperparameters as its paper gives them: n = 5 channels, k = 2, α = 1e-4, β = 0.75.
ALEXNET = {"n": 5, "k": 2.0, "alpha": 1e-4, "beta": 0.75}

#: Caffe's reference AlexNet (BVLC ``models/bvlc_alexnet``): ``local_size: 5``, ``alpha: 0.0001``, ``beta: 0.75``,
#: and ``k`` left at Caffe's default of 1. Caffe's convention (``alpha / n``): pass ``convention="caffe"`` to
#: :func:`tf_arguments`. Not the paper's LRN: its ``k`` is 1, not 2.
BVLC_ALEXNET = {"n": 5, "k": 1.0, "alpha": 1e-4, "beta": 0.75}

#: The percentile of the energies that :func:`plot_gain_curves` marks inside each sample's band.
BAND_PERCENTILE = 99


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

    The window includes the centre channel itself and is clipped at the first and last channel. Same shape as
    ``x`` (channels last), float64, in activation units².
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
        alpha: the scale of the window's sum of squares, not divided by the window size (AlexNet: 1e-4),
            in 1 / activation units².
        beta: the exponent (AlexNet: 0.75).
    """
    _check(depth_radius, bias, alpha, beta)
    x = np.asarray(x, dtype=np.float64)
    return x / gain_denominator(x, depth_radius, bias, alpha, beta)


def gain_denominator(x: np.ndarray, depth_radius: int, bias: float, alpha: float, beta: float) -> np.ndarray:
    """The divisor ``(bias + alpha · energy) ** beta`` applied to each value (1 would leave it unchanged)."""
    _check(depth_radius, bias, alpha, beta)
    return (bias + alpha * neighbourhood_energy(x, depth_radius)) ** beta


class GainFactors(NamedTuple):
    """The factor ``b / a = (k + α E) ** -β`` of each value, split into three parts whose product it is.

    Attributes:
        constant: ``k ** -β``, what every value gets even when its whole window is silent (a scalar).
        own: ``(k / (k + α a²)) ** β``, what the value's own square costs it (1 for a value near 0).
        neighbours: ``((k + α a²) / (k + α E)) ** β``, what the *other* channels of its window cost it: the
            fraction it keeps compared with the same value whose neighbours are silent (1 = not inhibited).
    """

    constant: float
    own: np.ndarray
    neighbours: np.ndarray


def gain_factors(
    x: np.ndarray, depth_radius: int = 2, bias: float = 2.0, alpha: float = 1e-4, beta: float = 0.75
) -> GainFactors:
    """Split the factor LRN multiplies each value by into constant × own × neighbours (see :class:`GainFactors`).

    ``constant * own * neighbours`` equals ``local_response_normalization(x) / x`` wherever ``x != 0``. The
    arrays have ``x``'s shape (channels last), float64. Arguments as in :func:`local_response_normalization`.
    """
    _check(depth_radius, bias, alpha, beta)
    x = np.asarray(x, dtype=np.float64)
    with_own = bias + alpha * x**2
    everything = bias + alpha * neighbourhood_energy(x, depth_radius)
    return GainFactors(
        constant=float(bias**-beta),
        own=(bias / with_own) ** beta,
        neighbours=(with_own / everything) ** beta,
    )


def peak_activation(bias: float, alpha: float, beta: float) -> float:
    """The activation at which a lone value's output ``a · (k + α a²) ** -β`` is largest (neighbours silent).

    Above it, a *larger* activation comes out *smaller*: the output falls like ``a ** (1 - 2β)``. The peak is
    at ``sqrt(k / (α (2β - 1)))`` for ``β > 1/2``; for ``β <= 1/2`` (or ``α = 0``) the output never falls and
    the result is ``inf``. In activation units.
    """
    _check(0, bias, alpha, beta)
    if beta <= 0.5 or alpha == 0:
        return float("inf")
    return float(np.sqrt(bias / (alpha * (2 * beta - 1))))


def max_gain(bias: float, beta: float) -> float:
    """The largest factor ``b / a`` LRN can apply to any activation: ``bias ** -beta`` (dimensionless).

    The divisor ``(k + α·E) ** β`` is at least ``k ** β`` because the window's energy ``E >= 0``, so
    ``|b| <= |a| · k ** -β`` for every activation, whatever its neighbours; the bound is approached only as the
    whole window falls silent. With AlexNet's ``k = 2, β = 0.75`` it is ``2 ** -0.75 ≈ 0.59``: LRN divides, it
    never amplifies, as long as ``k >= 1``.
    """
    _check(0, bias, 0.0, beta)
    return float(bias**-beta)


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


@keras.saving.register_keras_serializable(package="cnn_helpers")
class LocalResponseNormalization(keras.layers.Layer):
    """A Keras layer computing ``tf.nn.local_response_normalization`` (Keras 3 has no LRN layer of its own).

    It has no weights; it saves and reloads with its four hyperparameters (TensorFlow's names; defaults:
    AlexNet's values). Inputs are 4-D, channels last.
    """

    def __init__(
        self, depth_radius: int = 2, bias: float = 2.0, alpha: float = 1e-4, beta: float = 0.75, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        _check(depth_radius, bias, alpha, beta)
        self.depth_radius = int(depth_radius)
        self.bias = float(bias)
        self.alpha = float(alpha)
        self.beta = float(beta)

    def call(self, inputs):
        return tf.nn.local_response_normalization(
            inputs, depth_radius=self.depth_radius, bias=self.bias, alpha=self.alpha, beta=self.beta
        )

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "depth_radius": self.depth_radius,
            "bias": self.bias,
            "alpha": self.alpha,
            "beta": self.beta,
        }


def plot_channel_profile(
    before: np.ndarray, title: str, depth_radius: int = 2, bias: float = 2.0, alpha: float = 1e-4,
    beta: float = 0.75,
) -> Figure:
    """Two panels for one pixel: its activations across channels before and after LRN, and what the
    neighbours cost each one (:attr:`GainFactors.neighbours`: 1 = not inhibited).

    Args:
        before: the activations of one pixel, one per channel (1-D), before LRN.
        title: the figure's title.
        depth_radius, bias, alpha, beta: as in :func:`local_response_normalization`.
    """
    before = np.asarray(before, dtype=np.float64)
    if before.ndim != 1 or before.size < 1:
        raise ValueError(f"before: must be a non-empty 1-D array of channels, got shape {before.shape}")
    after = local_response_normalization(before, depth_radius, bias, alpha, beta)
    factors = gain_factors(before, depth_radius, bias, alpha, beta)
    channels = np.arange(len(before))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
    ax1.bar(channels, before, color="lightgray", label="before LRN")
    ax1.bar(channels, after, color="tab:blue", label="after LRN")
    ax1.set_xlabel("channel (feature map)")
    ax1.set_ylabel("activation (layer output units)")
    ax1.set_title("Activations at one pixel")
    ax1.legend()
    active = before > 0
    ax2.bar(channels[active], factors.neighbours[active], color="tab:red")
    ax2.axhline(1.0, color="black", lw=0.8, ls="--")
    ax2.set_ylim(0, 1.05)
    ax2.set_xlim(-0.5, len(before) - 0.5)
    ax2.set_xlabel("channel (feature map); active channels only")
    ax2.set_ylabel("kept vs. silent neighbours")
    ax2.set_title("What the neighbouring channels cost each activation")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_gain_curves(
    samples: Mapping[str, np.ndarray],
    title: str,
    depth_radius: int = 2,
    alpha: float = 1e-4,
    beta: float = 0.75,
    biases: tuple[float, ...] = (1.0, 2.0),
) -> Figure:
    """The factor LRN applies as a function of the window's energy, for several ``k``, over real energies.

    Left: ``(k + α E) ** -β`` against the energy ``E`` of the window (log scale), one curve per ``k`` in
    ``biases``; for each sample of real activations, a band from the median to the largest energy of its
    active (> 0) values, with the :data:`BAND_PERCENTILE`-th percentile marked. Right: the output
    ``a · (k + α a²) ** -β`` of a lone activation (neighbours silent) against ``a``, with the peak of
    :func:`peak_activation` and each sample's largest activation marked.

    Args:
        samples: label → activations (channels last), e.g. a layer's outputs on a few images.
        title: the figure's title.
        depth_radius, alpha, beta: as in :func:`local_response_normalization`.
        biases: the values of ``k`` to draw.
    """
    if not samples:
        raise ValueError("samples: give at least one label → activations")
    if not biases:
        raise ValueError("biases: give at least one value of k")
    for k in biases:
        _check(depth_radius, k, alpha, beta)
    stats = {}
    for label, acts in samples.items():
        acts = np.asarray(acts, dtype=np.float64)
        active = acts > 0
        if not active.any():
            raise ValueError(f"samples[{label!r}]: no active (> 0) value")
        energy = neighbourhood_energy(acts, depth_radius)[active]
        stats[label] = (*np.percentile(energy, [50, BAND_PERCENTILE, 100]), float(acts.max()))
    low = max(min(s[0] for s in stats.values()) / 10, 1e-6)
    high = max(max(s[2] for s in stats.values()) * 10, 10 * max(biases) / max(alpha, 1e-12))
    grid = np.geomspace(low, high, 400)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.4))
    for k, style in zip(biases, ["-", "--", ":", "-."]):
        ax1.plot(grid, (k + alpha * grid) ** -beta, "k" + style, label=f"k = {k:g}")
        ax1.axvline(k / alpha, color="dimgray", lw=1.0, ls=style)
    for (label, (median, p99, top, _)), colour in zip(stats.items(), colours):
        ax1.axvspan(median, top, color=colour, alpha=0.25, label=f"{label}: median → max (line: p{BAND_PERCENTILE})")
        ax1.axvline(p99, color=colour, lw=1.2)
    ax1.set_xscale("log")
    ax1.set_ylim(0, 1.05)
    ax1.set_xlabel("energy of the window E = Σ a² (activation units², log scale)")
    ax1.set_ylabel("factor applied, b / a")
    ax1.set_title(f"Gain (k + αE)$^{{-β}}$, α = {alpha:g}, β = {beta:g}; grey: E = k / α", fontsize=10)
    ax1.legend(fontsize=8, loc="lower left")
    ax1.grid(alpha=0.3, which="both")
    a_max = max(max(s[3] for s in stats.values()), 3 * peak_activation(max(biases), alpha, beta)
                if np.isfinite(peak_activation(max(biases), alpha, beta)) else 0.0)
    a_grid = np.linspace(0, a_max, 400)
    for k, style in zip(biases, ["-", "--", ":", "-."]):
        peak = peak_activation(k, alpha, beta)
        ax2.plot(a_grid, a_grid * (k + alpha * a_grid**2) ** -beta, "k" + style, label=f"k = {k:g}")
        if np.isfinite(peak):
            ax2.plot([peak], [peak * (k + alpha * peak**2) ** -beta], "ko", ms=4)
    for (label, (_, _, _, largest)), colour in zip(stats.items(), colours):
        ax2.axvline(largest, color=colour, lw=1.2, label=f"{label}: largest a")
    ax2.set_xlabel("activation a, neighbours silent (activation units)")
    ax2.set_ylabel("output b (activation units)")
    ax2.set_title("A lone activation: the output peaks (dot), then falls", fontsize=10)
    ax2.legend(fontsize=8, loc="lower right")
    ax2.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
