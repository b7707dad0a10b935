"""Convolution and pooling from scratch in NumPy, with TensorFlow's conventions (interview questions 43 and 44).

Layouts are TensorFlow's: inputs ``x`` are NHWC ``(batch, height, width, channels)``, kernels HWIO
``(kernel_height, kernel_width, in_channels, out_channels)``. Sizes are in pixels.

* :func:`conv2d` equals ``tf.nn.conv2d`` (plus a bias): it is a **cross-correlation** (the kernel is not
  flipped), as in every deep-learning library.
* :func:`conv2d_backward` returns the gradients ``tf.GradientTape`` gives for the same forward pass.
* :func:`max_pool2d` and :func:`avg_pool2d` equal ``tf.nn.max_pool2d`` and ``tf.nn.avg_pool2d``.

Arguments shared by all four:

* ``strides``, ``dilations``, ``pool_size``: an int or an ``(h, w)`` pair of positive ints.
* ``padding``: ``"valid"`` (none), ``"same"`` (TensorFlow's rule: output side ``ceil(n / s)``, total padding
  ``max((out - 1)·s + k_eff - n, 0)``, the odd pixel at the **bottom/right**), an int ``p`` (``p`` on every
  side) or ``((top, bottom), (left, right))``. Convolution pads with zeros. Pooling never lets a padded cell
  into a window: max pooling pads with ``-inf`` (a padded cell never wins) and average pooling divides by the
  number of real cells, which is what TensorFlow does for ``"same"``; explicit pads follow the same rule.
* The effective kernel is ``k_eff = d·(k - 1) + 1``; the output side is ``(n + pad - k_eff) // s + 1``.

Sizes use floor division, never ``int()``. An effective kernel (or pooling window) larger than the padded
input raises ``ValueError``. TensorFlow is not consistent there (2.21, x86 CPU): its Eigen kernels (float64,
or ``TF_ENABLE_ONEDNN_OPTS=0``) return an empty map, while its default oneDNN float32 kernels return a 2 × 2
map of uninitialised values (zeros, or garbage such as 3e-41) for a 2 × 2 input, a 3 × 3 kernel and stride 2
(convolution) or abort (max pooling). An empty result is almost always a bug upstream, so we refuse. Every
bad argument raises ``ValueError`` naming it, before NumPy can fail with a broadcasting error.

Implementation, vectorized over the batch and every output position: the convolution sums ``kh·kw`` matrix
products, one per kernel tap, of the strided slice of the padded input that the tap reads (all windows at
once) with the tap's ``(C_in, C_out)`` weights; unlike the im2col form (copy every window into a
``(positions, kh·kw·C_in)`` matrix, then one product) it never builds a copy ``kh·kw`` times the input's
size. Pooling reduces a zero-copy
``numpy.lib.stride_tricks.sliding_window_view`` of the windows with ``max``/``sum``; the kernel gradient
contracts that view with ``grad_out`` (``tensordot``); the input gradient scatters ``grad_out · kernelᵀ``
back, one kernel tap at a time (``kh·kw`` vectorized additions).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from cnn_helpers.receptive_field import same_padding

__all__ = ["conv2d", "conv2d_backward", "max_pool2d", "avg_pool2d"]

Pair = tuple[int, int]
Pads = tuple[Pair, Pair]
Padding = str | int | Sequence[Sequence[int]]


# ------------------------------------------------------------------------------------------- arguments


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _pair(value: Any, name: str) -> Pair:
    """``value`` as an ``(h, w)`` pair of positive ints; ``ValueError`` naming ``name`` otherwise."""
    if _is_int(value):
        pair = (int(value), int(value))
    elif isinstance(value, Sequence | np.ndarray) and len(value) == 2 and all(_is_int(v) for v in value):
        pair = (int(value[0]), int(value[1]))
    else:
        raise ValueError(f"{name}={value!r}: must be a positive int or an (h, w) pair of positive ints")
    if min(pair) < 1:
        raise ValueError(f"{name}={value!r}: sizes must be positive")
    return pair


def _array(x: Any, name: str, rank: int) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != rank:
        layout = {4: "(N, H, W, C)" if name != "kernel" else "(kh, kw, C_in, C_out)", 1: "(C_out,)"}[rank]
        raise ValueError(f"{name}: expected rank {rank} {layout}, got shape {a.shape}")
    if a.dtype.kind not in "biuf":
        raise ValueError(f"{name}: expected a real numeric array, got dtype {a.dtype}")
    return a


def _float(a: np.ndarray, *others: np.ndarray) -> np.dtype:
    """The floating dtype of a result: the common type of the arrays, ints and bools promoted to float64."""
    dtype = np.result_type(a, *others)
    return dtype if dtype.kind == "f" else np.dtype(np.float64)


def _pads(padding: Padding, hw: Pair, k_eff: Pair, strides: Pair) -> Pads:
    """Explicit ``((top, bottom), (left, right))`` pads for any accepted ``padding``."""
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return (0, 0), (0, 0)
        if mode == "same":
            # TensorFlow's rule (the extra pixel bottom/right), one implementation for the whole package
            return same_padding(hw[0], k_eff[0], strides[0]), same_padding(hw[1], k_eff[1], strides[1])
        raise ValueError(f"padding={padding!r}: use 'valid', 'same', an int or ((top, bottom), (left, right))")
    if _is_int(padding):
        if padding < 0:
            raise ValueError(f"padding={padding!r}: must be non-negative")
        p = int(padding)
        return (p, p), (p, p)
    ok = (
        isinstance(padding, Sequence | np.ndarray)
        and len(padding) == 2
        and all(isinstance(p, Sequence | np.ndarray) and len(p) == 2 and all(_is_int(v) for v in p) for p in padding)
    )
    if not ok:
        raise ValueError(f"padding={padding!r}: use 'valid', 'same', an int or ((top, bottom), (left, right))")
    (top, bottom), (left, right) = ((int(a), int(b)) for a, b in padding)
    if min(top, bottom, left, right) < 0:
        raise ValueError(f"padding={padding!r}: pads must be non-negative")
    return (top, bottom), (left, right)


def _out_sizes(hw: Pair, pads: Pads, k_eff: Pair, strides: Pair, what: str, padding: Padding) -> Pair:
    sizes = []
    for axis, (n, (a, b), k, s) in enumerate(zip(hw, pads, k_eff, strides)):
        padded = n + a + b
        if padded < k:
            side = "height" if axis == 0 else "width"
            raise ValueError(
                f"{what}: effective {side} {k} is larger than the padded input {side} {padded} "
                f"(input {n} + padding {a}+{b} with padding={padding!r})"
            )
        sizes.append((padded - k) // s + 1)
    return sizes[0], sizes[1]


def _check_x(x: Any) -> np.ndarray:
    x = _array(x, "x", 4)
    if min(x.shape[1:]) < 1:
        raise ValueError(f"x: height, width and channels must be positive, got shape {x.shape}")
    return x


def _windows(xp: np.ndarray, k: Pair, k_eff: Pair, strides: Pair, dilations: Pair, out: Pair) -> np.ndarray:
    """``(N, H_out, W_out, C, kh, kw)`` view of the windows of the padded input (no copy)."""
    view = sliding_window_view(xp, k_eff, axis=(1, 2))
    (sh, sw), (dh, dw), (ho, wo) = strides, dilations, out
    return view[:, : (ho - 1) * sh + 1 : sh, : (wo - 1) * sw + 1 : sw, :, ::dh, ::dw][..., : k[0], : k[1]]


def _pad(x: np.ndarray, pads: Pads, value: float | int = 0) -> np.ndarray:
    if pads == ((0, 0), (0, 0)):
        return x
    return np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)), constant_values=value)


def _conv_geometry(x, kernel, strides, padding, dilations):
    x = _check_x(x)
    kernel = _array(kernel, "kernel", 4)
    if min(kernel.shape) < 1:
        raise ValueError(f"kernel: every dimension must be positive, got shape {kernel.shape}")
    if kernel.shape[2] != x.shape[3]:
        raise ValueError(
            f"kernel: has {kernel.shape[2]} input channels (shape {kernel.shape}) but x has {x.shape[3]} "
            f"(shape {x.shape}); the layout is HWIO (kh, kw, C_in, C_out)"
        )
    strides = _pair(strides, "strides")
    dilations = _pair(dilations, "dilations")
    k = (kernel.shape[0], kernel.shape[1])
    k_eff = (dilations[0] * (k[0] - 1) + 1, dilations[1] * (k[1] - 1) + 1)
    hw = (x.shape[1], x.shape[2])
    pads = _pads(padding, hw, k_eff, strides)
    out = _out_sizes(hw, pads, k_eff, strides, "kernel", padding)
    return x, kernel, strides, dilations, k, k_eff, pads, out


# ----------------------------------------------------------------------------------------- convolution


def conv2d(
    x: Any,
    kernel: Any,
    bias: Any = None,
    strides: int | Pair = 1,
    padding: Padding = "valid",
    dilations: int | Pair = 1,
) -> np.ndarray:
    """2-D cross-correlation of a batch, as ``tf.nn.conv2d(x, kernel, strides, padding, dilations=…) + bias``.

    ``y[n, i, j, o] = bias[o] + Σ_{a, b, c} x_pad[n, i·sh + a·dh, j·sw + b·dw, c] · kernel[a, b, c, o]``: the
    kernel is not flipped (a true convolution would use ``kernel[::-1, ::-1]``).

    Args:
        x: input ``(N, H, W, C_in)``.
        kernel: weights ``(kh, kw, C_in, C_out)``.
        bias: ``(C_out,)`` or ``None``.
        strides: step between windows, pixels (int or ``(h, w)``).
        padding: ``"valid"``, ``"same"``, an int or ``((top, bottom), (left, right))``; zeros are padded.
        dilations: spacing between kernel taps, pixels (int or ``(h, w)``); 1 is an ordinary kernel.

    Returns:
        ``(N, H_out, W_out, C_out)`` in the common floating dtype of the inputs (float32 stays float32;
        integer inputs give float64).

    Raises:
        ValueError: naming the argument: wrong rank, channel mismatch, a non-positive size, a bias of the wrong
            shape, an unknown padding, or an effective kernel larger than the padded input.
    """
    x, kernel, strides, dilations, k, k_eff, pads, out = _conv_geometry(x, kernel, strides, padding, dilations)
    arrays = [x, kernel]
    if bias is not None:
        bias = _array(bias, "bias", 1)
        if bias.shape != (kernel.shape[3],):
            raise ValueError(f"bias: expected shape ({kernel.shape[3]},) (C_out of kernel), got {bias.shape}")
        arrays.append(bias)
    dtype = _float(*arrays)
    xp = _pad(x.astype(dtype, copy=False), pads)
    kernel = kernel.astype(dtype, copy=False)
    # One matrix product per kernel tap (a, b): the strided slice of the input that tap reads, for every
    # output position at once, times the tap's (C_in, C_out) weights. Summing kh·kw such products avoids
    # copying every window into an im2col matrix (kh·kw times the input's size).
    (sh, sw), (dh, dw), (ho, wo) = strides, dilations, out
    y = np.zeros((x.shape[0], ho, wo, kernel.shape[3]), dtype)
    for a in range(k[0]):
        rows = slice(a * dh, a * dh + (ho - 1) * sh + 1, sh)
        for b in range(k[1]):
            cols = slice(b * dw, b * dw + (wo - 1) * sw + 1, sw)
            y += xp[:, rows, cols, :] @ kernel[a, b]
    if bias is not None:
        y += bias.astype(dtype, copy=False)
    return y


def conv2d_backward(
    grad_out: Any,
    x: Any,
    kernel: Any,
    strides: int | Pair = 1,
    padding: Padding = "valid",
    dilations: int | Pair = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of a loss through :func:`conv2d`, given ``grad_out = ∂loss/∂y``.

    ``grad_kernel[a, b, c, o] = Σ_{n, i, j} x_pad[n, i·sh + a·dh, j·sw + b·dw, c] · grad_out[n, i, j, o]``;
    ``grad_x`` sends each ``grad_out[n, i, j] · kernel[a, b]ᵀ`` back to the input pixel tap ``(a, b)`` read, and
    drops what lands on padding; ``grad_bias`` sums ``grad_out`` over batch and positions. Pixels no window
    reads (stride larger than the kernel, or a remainder that "valid" drops) get zero.

    Args:
        grad_out: ``(N, H_out, W_out, C_out)``, the shape :func:`conv2d` returns for these arguments.
        x, kernel, strides, padding, dilations: as given to :func:`conv2d`.

    Returns:
        ``(grad_x (N, H, W, C_in), grad_kernel (kh, kw, C_in, C_out), grad_bias (C_out,))``, the values
        ``tf.GradientTape`` gives for ``x``, ``kernel`` and a bias.
    """
    x, kernel, strides, dilations, k, k_eff, pads, out = _conv_geometry(x, kernel, strides, padding, dilations)
    grad_out = _array(grad_out, "grad_out", 4)
    expected = (x.shape[0], out[0], out[1], kernel.shape[3])
    if grad_out.shape != expected:
        raise ValueError(f"grad_out: expected shape {expected} (the output of conv2d), got {grad_out.shape}")
    dtype = _float(x, kernel, grad_out)
    x, kernel, grad_out = (a.astype(dtype, copy=False) for a in (x, kernel, grad_out))
    xp = _pad(x, pads)
    win = _windows(xp, k, k_eff, strides, dilations, out)  # (N, Ho, Wo, C, kh, kw)
    grad_kernel = np.tensordot(win, grad_out, axes=((0, 1, 2), (0, 1, 2)))  # (C, kh, kw, O)
    grad_kernel = np.ascontiguousarray(grad_kernel.transpose(1, 2, 0, 3))
    grad_bias = grad_out.sum(axis=(0, 1, 2))
    grad_xp = np.zeros(xp.shape, dtype)
    (sh, sw), (dh, dw), (ho, wo) = strides, dilations, out
    for a in range(k[0]):
        rows = slice(a * dh, a * dh + (ho - 1) * sh + 1, sh)
        for b in range(k[1]):
            cols = slice(b * dw, b * dw + (wo - 1) * sw + 1, sw)
            grad_xp[:, rows, cols, :] += grad_out @ kernel[a, b].T
    (top, _), (left, _) = pads
    grad_x = grad_xp[:, top : top + x.shape[1], left : left + x.shape[2], :]
    return np.ascontiguousarray(grad_x), grad_kernel, grad_bias


# --------------------------------------------------------------------------------------------- pooling


def _pool_geometry(x, pool_size, strides, padding):
    x = _check_x(x)
    pool = _pair(pool_size, "pool_size")
    strides = pool if strides is None else _pair(strides, "strides")
    hw = (x.shape[1], x.shape[2])
    pads = _pads(padding, hw, pool, strides)
    for (a, b), p in zip(pads, pool):
        if max(a, b) >= p:
            raise ValueError(
                f"padding={padding!r}: a pad of {max(a, b)} ≥ the window {p} would make a window of padding only"
            )
    out = _out_sizes(hw, pads, pool, strides, "pool_size", padding)
    return x, pool, strides, pads, out


def max_pool2d(
    x: Any, pool_size: int | Pair = 2, strides: int | Pair | None = None, padding: Padding = "valid"
) -> np.ndarray:
    """Max over each window and channel, as ``tf.nn.max_pool2d(x, pool_size, strides, padding)``.

    Padded cells hold ``-inf`` (the smallest value of an integer dtype), so they never win: with "same",
    an all-negative input gives negative outputs, never the 0 that zero padding would produce.

    Args:
        x: input ``(N, H, W, C)``; any real dtype, which the output keeps.
        pool_size: window, pixels (int or ``(h, w)``).
        strides: step between windows, pixels; ``None`` means ``pool_size`` (as in Keras).
        padding: ``"valid"``, ``"same"``, an int or ``((top, bottom), (left, right))``; each pad must be smaller
            than the window.

    Returns:
        ``(N, H_out, W_out, C)``. A NaN in a window makes that output NaN (NumPy's ``max``); TensorFlow's CPU
        kernel (2.21) skips NaNs instead, so the two differ on NaN input.
    """
    x, pool, strides, pads, out = _pool_geometry(x, pool_size, strides, padding)
    fill = -np.inf if x.dtype.kind == "f" else (np.iinfo(x.dtype).min if x.dtype.kind in "iu" else False)
    xp = _pad(x, pads, fill)
    return _windows(xp, pool, pool, strides, (1, 1), out).max(axis=(4, 5))


def avg_pool2d(
    x: Any, pool_size: int | Pair = 2, strides: int | Pair | None = None, padding: Padding = "valid"
) -> np.ndarray:
    """Mean over each window and channel, as ``tf.nn.avg_pool2d(x, pool_size, strides, padding)``.

    Padded cells are left out of both the sum and the count (TensorFlow's "same"): a corner window of a
    3 × 3 "same" pool averages its 4 real pixels, not 9 values of which 5 are zeros.

    Args:
        x: input ``(N, H, W, C)``; floating dtypes are kept, integers give float64.
        pool_size, strides, padding: as for :func:`max_pool2d`.

    Returns:
        ``(N, H_out, W_out, C)``.
    """
    x, pool, strides, pads, out = _pool_geometry(x, pool_size, strides, padding)
    dtype = _float(x)
    xp = _pad(x.astype(dtype, copy=False), pads)
    sums = _windows(xp, pool, pool, strides, (1, 1), out).sum(axis=(4, 5))
    counts = []
    for n, (a, _), p, s, o in zip(x.shape[1:3], pads, pool, strides, out):
        start = np.arange(o) * s - a  # first input pixel of each window, in unpadded coordinates
        counts.append(np.minimum(start + p, n) - np.maximum(start, 0))
    count = np.outer(counts[0], counts[1]).astype(dtype)
    return sums / count[None, :, :, None]

