"""Compare convolutions with dense layers (chapters 1 and 11), and max pooling with strided convolutions (chapter 4).

Everything here is plain NumPy arithmetic, except :func:`time_call`, which times any callable. Images and
feature maps are arrays shaped ``(batch, height, width, channels)`` (channels last, as in Keras); shifts are
in pixels; counts of operations are multiply–adds or comparisons; memory traffic is in bytes; spatial
frequencies are in cycles per pixel.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np


def _check_4d(name: str, array: np.ndarray) -> None:
    if array.ndim != 4:
        raise ValueError(f"{name}: expected (batch, height, width, channels), got shape {array.shape}")


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if int(value) != value or value < 1:
            raise ValueError(f"{name}={value!r}: must be a positive integer")


def dense_params(inputs: int, units: int, use_bias: bool = True) -> int:
    """Parameters of a ``Dense(units)`` layer on ``inputs`` numbers: one weight per connection, plus biases."""
    _check_positive(inputs=inputs, units=units)
    return inputs * units + (units if use_bias else 0)


def conv_params(kernel: int, channels_in: int, filters: int, use_bias: bool = True) -> int:
    """Parameters of a ``Conv2D(filters, kernel)`` layer: k·k·C_in weights per filter, plus one bias each.

    The count does not depend on the image size: the weights are shared by every position.
    """
    _check_positive(kernel=kernel, channels_in=channels_in, filters=filters)
    return kernel * kernel * channels_in * filters + (filters if use_bias else 0)


def conv_macs(out_height: int, out_width: int, kernel: int, channels_in: int, filters: int) -> int:
    """Multiply–adds of one image through a convolution: one k·k·C_in dot product per output value."""
    _check_positive(out_height=out_height, out_width=out_width, kernel=kernel, channels_in=channels_in,
                    filters=filters)
    return out_height * out_width * filters * kernel * kernel * channels_in


def locally_connected_params(
    out_height: int, out_width: int, kernel: int, channels_in: int, filters: int, use_bias: bool = True
) -> int:
    """Parameters of a convolution-shaped layer *without* weight sharing (a "locally connected" layer).

    Each of the ``out_height · out_width`` positions has its own ``filters`` filters of k·k·C_in weights (and
    its own biases): what a convolution would cost if every position learned its own copy of the filters.
    """
    _check_positive(out_height=out_height, out_width=out_width, kernel=kernel, channels_in=channels_in,
                    filters=filters)
    return out_height * out_width * conv_params(kernel, channels_in, filters, use_bias)


def max_pool_comparisons(out_height: int, out_width: int, pool: int, channels: int) -> int:
    """Comparisons of one image through a ``pool × pool`` max pooling: pool² − 1 per output value."""
    _check_positive(out_height=out_height, out_width=out_width, pool=pool, channels=channels)
    return out_height * out_width * channels * (pool * pool - 1)


def min_traffic_bytes(
    input_shape: tuple[int, ...], output_shape: tuple[int, ...], weights: int = 0, bytes_per_value: int = 4
) -> int:
    """Fewest bytes a layer moves to and from memory: every input value and weight read once, every output
    value written once.

    Real kernels may move more (re-reading inputs that fell out of cache); none can move less. With
    :func:`arithmetic_intensity` it says whether a layer is limited by memory traffic or by arithmetic.

    Args:
        input_shape: the input tensor's shape, batch included, e.g. ``(256, 28, 28, 64)``.
        output_shape: the output tensor's shape, batch included.
        weights: the number of parameters the layer reads (0 for a pooling layer).
        bytes_per_value: 4 for float32, 2 for float16.
    """
    for name, shape in (("input_shape", input_shape), ("output_shape", output_shape)):
        if not shape or any(int(d) != d or d < 1 for d in shape):
            raise ValueError(f"{name}={shape!r}: must be a non-empty tuple of positive integers")
    if int(weights) != weights or weights < 0:
        raise ValueError(f"weights={weights!r}: must be a non-negative integer")
    _check_positive(bytes_per_value=bytes_per_value)
    values = int(np.prod(input_shape, dtype=np.int64)) + int(np.prod(output_shape, dtype=np.int64)) + weights
    return values * bytes_per_value


def arithmetic_intensity(operations: int, traffic_bytes: int) -> float:
    """Operations per byte of memory traffic (e.g. multiply–adds per byte): the roofline model's x axis."""
    if operations < 0:
        raise ValueError(f"operations={operations!r}: must be >= 0")
    if traffic_bytes <= 0:
        raise ValueError(f"traffic_bytes={traffic_bytes!r}: must be > 0")
    return operations / traffic_bytes


def roofline_seconds(
    operations: int, traffic_bytes: int, ops_per_second: float, bytes_per_second: float
) -> float:
    """Lower bound on a layer's run time (seconds): the longer of its arithmetic at ``ops_per_second`` and its
    memory traffic at ``bytes_per_second`` (the roofline model, Williams, Waterman & Patterson, 2009).

    A layer whose traffic term is the larger is *memory-bound*: faster arithmetic would not speed it up.
    """
    if operations < 0 or traffic_bytes < 0:
        raise ValueError(f"operations={operations!r}, traffic_bytes={traffic_bytes!r}: must be >= 0")
    if ops_per_second <= 0:
        raise ValueError(f"ops_per_second={ops_per_second!r}: must be > 0")
    if bytes_per_second <= 0:
        raise ValueError(f"bytes_per_second={bytes_per_second!r}: must be > 0")
    return max(operations / ops_per_second, traffic_bytes / bytes_per_second)


def binomial_filter(size: int) -> np.ndarray:
    """A ``size × size`` binomial blur (a low-pass filter) whose weights sum to 1, as a float32 array.

    The outer product of a row of Pascal's triangle with itself: size 2 is the 2 × 2 box (average pooling's
    weights), size 3 is ``[1, 2, 1]ᵀ[1, 2, 1] / 16``. Zhang (2019) blurs with such filters before subsampling.
    """
    _check_positive(size=size)
    row = np.array([1.0])
    for _ in range(size - 1):
        row = np.convolve(row, [1.0, 1.0])
    kernel = np.outer(row, row)
    return (kernel / kernel.sum()).astype(np.float32)


def high_frequency_fraction(maps: np.ndarray, factor: int = 2) -> float:
    """Share of the maps' energy at spatial frequencies that subsampling by ``factor`` cannot represent.

    Keeping every ``factor``-th row and column can only represent frequencies below ``1 / (2 · factor)``
    cycles per pixel along each axis (the sampling theorem); energy at or above it, along either axis, aliases
    into lower frequencies. The energy is the squared magnitude of each map's 2-D discrete Fourier transform,
    summed over the batch and channels; 0 means the maps are smooth enough to subsample without aliasing.

    Args:
        maps: array shaped ``(batch, height, width, channels)``, not all zeros.
        factor: the subsampling factor (the stride), at least 2.
    """
    maps = np.asarray(maps, dtype=np.float64)
    _check_4d("maps", maps)
    if int(factor) != factor or factor < 2:
        raise ValueError(f"factor={factor!r}: must be an integer >= 2")
    power = np.abs(np.fft.fft2(maps, axes=(1, 2))) ** 2
    total = power.sum()
    if total == 0:
        raise ValueError("maps: is all zeros, the fraction is undefined")
    fy = np.abs(np.fft.fftfreq(maps.shape[1]))[:, None]
    fx = np.abs(np.fft.fftfreq(maps.shape[2]))[None, :]
    cutoff = 1.0 / (2 * factor)
    high = (fy >= cutoff - 1e-12) | (fx >= cutoff - 1e-12)
    return float(power[:, high, :].sum() / total)


def shift_images(images: np.ndarray, dy: int, dx: int, fill: float = 0.0) -> np.ndarray:
    """Translate a batch of images by ``dy`` pixels down and ``dx`` pixels right, filling with ``fill``.

    Unlike ``np.roll``, nothing wraps around: what leaves the frame is lost, what enters it is ``fill``.

    Args:
        images: array shaped ``(batch, height, width, channels)``.
        dy: rows to move down (negative: up).
        dx: columns to move right (negative: left).
        fill: the value of the pixels that enter the frame.
    """
    images = np.asarray(images)
    _check_4d("images", images)
    height, width = images.shape[1:3]
    if abs(dy) >= height or abs(dx) >= width:
        raise ValueError(f"dy={dy}, dx={dx}: a shift must be smaller than the image ({height} × {width})")
    out = np.full_like(images, fill)
    src_y = slice(max(0, -dy), height - max(0, dy))
    dst_y = slice(max(0, dy), height - max(0, -dy))
    src_x = slice(max(0, -dx), width - max(0, dx))
    dst_x = slice(max(0, dx), width - max(0, -dx))
    out[:, dst_y, dst_x, :] = images[:, src_y, src_x, :]
    return out


def random_shifts(images: np.ndarray, distance: int, seed: int = 0) -> np.ndarray:
    """Shift each image by ``distance`` pixels in one of 8 directions (up, down-right, ...), chosen at random.

    Diagonal moves go ``distance`` pixels along both axes. The same ``seed`` gives the same directions.
    """
    images = np.asarray(images)
    _check_4d("images", images)
    if distance < 0:
        raise ValueError(f"distance={distance!r}: must be >= 0")
    directions = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
    choice = np.random.default_rng(seed).integers(len(directions), size=len(images))
    out = np.empty_like(images)
    for i, (dy, dx) in enumerate(directions):
        idx = np.flatnonzero(choice == i)
        if idx.size:
            out[idx] = shift_images(images[idx], dy * distance, dx * distance)
    return out


def relative_change(reference: np.ndarray, other: np.ndarray) -> float:
    """‖other − reference‖ / ‖reference‖ (Frobenius norms over the whole array): 0 means unchanged."""
    reference = np.asarray(reference, dtype=np.float64)
    other = np.asarray(other, dtype=np.float64)
    if reference.shape != other.shape:
        raise ValueError(f"other: shape {other.shape} differs from reference's {reference.shape}")
    norm = np.linalg.norm(reference)
    if norm == 0:
        raise ValueError("reference: is all zeros, a relative change is undefined")
    return float(np.linalg.norm(other - reference) / norm)


def interior(array: np.ndarray, margin: int) -> np.ndarray:
    """Drop ``margin`` pixels on each side of a ``(batch, height, width, channels)`` array."""
    array = np.asarray(array)
    _check_4d("array", array)
    if margin < 0 or 2 * margin >= min(array.shape[1:3]):
        raise ValueError(f"margin={margin!r}: must be >= 0 and leave some pixels of {array.shape[1:3]}")
    if margin == 0:
        return array
    return array[:, margin:-margin, margin:-margin, :]


def equivariance_error(
    layer: Callable[[np.ndarray], Any], images: np.ndarray, dy: int, dx: int, margin: int
) -> float:
    """Largest |layer(shift(x)) − shift(layer(x))| away from the borders, for a stride-1 layer.

    A layer is translation-equivariant when shifting its input shifts its output the same way; the result is
    then 0 up to float rounding. Only the interior (``margin`` pixels in from each side) is compared, because
    what enters the frame at the edge (zeros in the input) need not map to zeros in the output.
    """
    images = np.asarray(images, dtype=np.float32)
    out = np.asarray(layer(images))
    out_of_shifted = np.asarray(layer(shift_images(images, dy, dx)))
    if out.shape[1:3] != images.shape[1:3]:
        raise ValueError(f"layer: output size {out.shape[1:3]} differs from the input's; use stride 1, 'same'")
    shifted_out = shift_images(out, dy, dx)
    return float(np.max(np.abs(interior(out_of_shifted, margin) - interior(shifted_out, margin))))


def relative_equivariance_error(
    layer: Callable[[np.ndarray], Any], images: np.ndarray, dy: int, dx: int, margin: int, stride: int = 1
) -> float:
    """How far ``layer`` is from translation-equivariance for the shift ``(dy, dx)``, relative to its output.

    Compares ``layer(shift(x))`` with ``layer(x)`` shifted by ``(oy, ox)`` output positions and returns the
    smallest relative change ‖layer(shift(x)) − shift(layer(x))‖ / ‖shift(layer(x))‖ over the candidate
    output shifts ``oy ∈ {⌊dy/stride⌋, ⌈dy/stride⌉}`` (and the same for ``ox``), away from the borders. For a
    stride-1 layer the only candidate is the input shift itself; for a layer with total stride ``stride``, a
    shift by a multiple of the stride should move the output by ``shift / stride`` positions, while any other
    shift has no integer output shift that reproduces it. 0 (up to float rounding) means equivariant.

    Args:
        layer: maps a ``(batch, height, width, channels)`` array to a ``(batch, ⌈height/stride⌉,
            ⌈width/stride⌉, maps)`` array (``"same"`` padding).
        images: ``(batch, height, width, channels)``.
        dy, dx: the input shift in pixels (down, right).
        margin: output positions dropped on each side before comparing (border effects).
        stride: the layer's total stride (output pixels are ``stride`` input pixels apart).
    """
    images = np.asarray(images, dtype=np.float32)
    _check_4d("images", images)
    _check_positive(stride=stride)
    out = np.asarray(layer(images))
    out_of_shifted = np.asarray(layer(shift_images(images, dy, dx)))
    expected = tuple(-(-n // stride) for n in images.shape[1:3])
    if out.shape[1:3] != expected:
        raise ValueError(f"stride={stride}: output size {out.shape[1:3]} is not ⌈input / stride⌉ = {expected}")
    candidates_y = sorted({dy // stride, -(-dy // stride)})
    candidates_x = sorted({dx // stride, -(-dx // stride)})
    target = interior(out_of_shifted, margin)
    return min(
        relative_change(interior(shift_images(out, oy, ox), margin), target)
        for oy in candidates_y
        for ox in candidates_x
    )


def linear_map_matrix(fn: Callable[[np.ndarray], Any], input_shape: tuple[int, int, int]) -> np.ndarray:
    """The matrix of a linear map (e.g. a convolution without bias or activation) on one image.

    Applies ``fn`` to every basis image (a single 1 among zeros) of shape ``input_shape`` (height, width,
    channels) and stacks the flattened outputs, so that ``fn(x).ravel() == matrix @ x.ravel()`` for a linear
    ``fn``. Returns an array of shape ``(output values, input values)``. Meant for small inputs: it calls
    ``fn`` on a batch of H·W·C images.
    """
    if len(input_shape) != 3:
        raise ValueError(f"input_shape={input_shape!r}: must be (height, width, channels)")
    _check_positive(height=input_shape[0], width=input_shape[1], channels=input_shape[2])
    n = int(np.prod(input_shape))
    basis = np.eye(n, dtype=np.float32).reshape(n, *input_shape)
    outputs = np.asarray(fn(basis), dtype=np.float64).reshape(n, -1)
    return outputs.T


def channel_contrast_share(kernel: np.ndarray) -> np.ndarray:
    """Per filter, the share of a convolution kernel's energy that differs between input channels.

    Splits each filter ``w`` (a ``(k, k, C_in)`` slice of a Keras kernel ``(k, k, C_in, filters)``) into its
    channel mean ``w̄`` (repeated over the channels) and the rest ``w − w̄``, and returns
    ``‖w − w̄‖² / ‖w‖²`` (dimensionless, in [0, 1]) for every filter. On an input whose channels are equal
    (a gray image given as R = G = B) the rest sums to zero over the channels and contributes nothing, so
    for an RGB first layer this is the share of the filter that only colour contrasts can excite. For
    independent random weights its expected value is about ``(C_in − 1) / C_in``.

    Raises:
        ValueError: if ``kernel`` is not 4-D, has fewer than two input channels, or a filter is all zero.
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim != 4:
        raise ValueError(f"kernel: expected (height, width, channels_in, filters), got shape {kernel.shape}")
    if kernel.shape[2] < 2:
        raise ValueError(f"kernel: needs at least 2 input channels, got shape {kernel.shape}")
    energy = (kernel**2).sum(axis=(0, 1, 2))
    if np.any(energy == 0):
        raise ValueError(f"kernel: filters {np.flatnonzero(energy == 0).tolist()} are all zero")
    rest = kernel - kernel.mean(axis=2, keepdims=True)
    return (rest**2).sum(axis=(0, 1, 2)) / energy


def shift_sensitivity(
    layer: Callable[[np.ndarray], Any], images: np.ndarray, shifts: list[tuple[int, int]]
) -> list[float]:
    """For each ``(dy, dx)`` in ``shifts``: the relative change of ``layer``'s output when its input shifts.

    0 means the output did not change at all (invariance); about 1.4 is what two unrelated outputs of the same
    size and energy give. Outputs are compared position by position, without re-aligning them.
    """
    images = np.asarray(images, dtype=np.float32)
    _check_4d("images", images)
    reference = np.asarray(layer(images))
    return [relative_change(reference, np.asarray(layer(shift_images(images, dy, dx)))) for dy, dx in shifts]


def time_call(fn: Callable[[], Any], repeats: int = 5, warmup: int = 1, statistic: str = "median") -> float:
    """Wall-clock seconds of ``fn()`` over ``repeats`` calls, after ``warmup`` calls that are not timed.

    Args:
        fn: the callable to time (it should block until its work is done, e.g. end in ``.numpy()``).
        repeats: timed calls.
        warmup: untimed calls first (graph tracing, memory allocation, caches).
        statistic: ``"median"`` (typical time) or ``"min"`` (best time: on a machine shared with other jobs,
            which can only slow a call down, the least disturbed one).
    """
    _check_positive(repeats=repeats)
    return time_interleaved({"fn": fn}, rounds=repeats, warmup=warmup, statistic=statistic)["fn"]


def time_interleaved(
    calls: Mapping[str, Callable[[], Any]], rounds: int = 7, warmup: int = 1, statistic: str = "min"
) -> dict[str, float]:
    """Wall-clock seconds of each callable in ``calls``, timed in turn, round after round.

    On a machine shared with other jobs the load changes from second to second; timing the callables one
    after another in every round exposes them all to the same changes, so their ratios are steadier than
    when each is timed in a block of its own.

    Args:
        calls: name -> callable (each should block until its work is done, e.g. end in ``.numpy()``).
        rounds: timed calls of each callable.
        warmup: untimed rounds first.
        statistic: ``"min"`` (the least disturbed call, the default) or ``"median"``.

    Returns:
        name -> seconds, in the order of ``calls``.
    """
    if not calls:
        raise ValueError("calls: is empty, nothing to time")
    _check_positive(rounds=rounds)
    if warmup < 0:
        raise ValueError(f"warmup={warmup!r}: must be >= 0")
    if statistic not in ("median", "min"):
        raise ValueError(f"statistic={statistic!r}: must be 'median' or 'min'")
    for _ in range(warmup):
        for fn in calls.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, fn in calls.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    reduce = np.min if statistic == "min" else np.median
    return {name: float(reduce(t)) for name, t in times.items()}
