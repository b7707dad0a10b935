"""numpy_cnn against TensorFlow: seeded sweeps of random cases, a loop reference, hand examples, bad input.

Each sweep draws ``CASES`` random configurations (batch, sizes, channels, odd and even kernels, strides up to
larger than the kernel, dilations, every padding form, inputs exactly the size of the effective kernel) in
float32 and float64, compares with TensorFlow, asserts that every category was drawn, and prints the number
of cases and the largest absolute difference (``pytest -s`` shows it).
"""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest

from cnn_helpers import numpy_cnn as nc
from cnn_helpers import runtime

runtime.import_tensorflow_quietly()
import tensorflow as tf  # noqa: E402

CASES = 1_000
#: Tolerances per dtype (values are O(1) to O(10), sums of at most a few hundred products).
TOL = {np.float32: {"rtol": 1e-5, "atol": 1e-5}, np.float64: {"rtol": 1e-12, "atol": 1e-12}}


# ----------------------------------------------------------------------------------- random configurations


def tf_padding(padding, pads):
    """The padding argument of tf.nn.conv2d for ours: the string, or the explicit NHWC list."""
    if isinstance(padding, str):
        return padding.upper()
    (t, b), (left, r) = pads
    return [[0, 0], [t, b], [left, r], [0, 0]]


def pair_or_int(rng, pair):
    """Pass an (h, w) pair, or an int when both are equal (half of the time), to exercise both forms."""
    return int(pair[0]) if pair[0] == pair[1] and rng.random() < 0.5 else (int(pair[0]), int(pair[1]))


def random_padding(rng, k_eff, strides, hw, max_pad):
    """(padding argument, explicit pads, kind) with explicit pads below ``max_pad`` (a pair)."""
    kind = rng.choice(["valid", "same", "int", "tuple"])
    if kind in ("valid", "same"):
        padding = str(kind) if rng.random() < 0.7 else str(kind).upper()
        return padding, nc._pads(padding, hw, k_eff, strides), str(kind)
    if kind == "int":
        p = int(rng.integers(0, min(max_pad) + 1))
        return p, ((p, p), (p, p)), "int"
    pads = tuple(tuple(int(v) for v in rng.integers(0, m + 1, 2)) for m in max_pad)
    return pads, pads, "tuple"


def conv_case(rng, counts):
    """A random valid conv2d configuration; ``counts`` records the categories drawn."""
    while True:
        dtype = np.float32 if rng.random() < 0.5 else np.float64
        n, c_in, c_out = (int(v) for v in rng.integers(1, [4, 5, 5]))
        k = tuple(int(v) for v in rng.integers(1, 6, 2))
        strides = tuple(int(v) for v in rng.integers(1, 5, 2))
        dil = tuple(int(v) for v in rng.choice([1, 1, 1, 2, 3], 2))
        k_eff = tuple(d * (kk - 1) + 1 for d, kk in zip(dil, k))
        hw = tuple(int(v) for v in rng.integers(1, 13, 2))
        padding, pads, kind = random_padding(rng, k_eff, strides, hw, (3, 3))
        exact = kind != "same" and rng.random() < 0.2
        if exact:  # the padded input exactly the effective kernel: a single output position per axis
            hw = tuple(ke - a - b for ke, (a, b) in zip(k_eff, pads))
            if min(hw) < 1:
                continue
        if any(n_ + a + b < ke for n_, (a, b), ke in zip(hw, pads, k_eff)):
            counts["rejected (kernel larger than padded input)"] += 1
            continue
        counts[kind] += 1
        counts[np.dtype(dtype).name] += 1
        counts["odd kernel" if k[0] % 2 else "even kernel"] += 1
        counts["stride > kernel"] += strides[0] > k[0] or strides[1] > k[1]
        counts["dilation > 1"] += max(dil) > 1
        counts["dilation > 1 and stride > 1"] += max(dil) > 1 and max(strides) > 1
        counts["input exactly the effective kernel"] += exact
        counts["batch > 1"] += n > 1
        counts["C_in = 1"] += c_in == 1
        counts["1x1 kernel"] += k == (1, 1)
        x = rng.normal(size=(n, *hw, c_in)).astype(dtype)
        kernel = rng.normal(size=(*k, c_in, c_out)).astype(dtype)
        bias = rng.normal(size=c_out).astype(dtype)
        args = {"strides": pair_or_int(rng, strides), "padding": padding, "dilations": pair_or_int(rng, dil)}
        tf_args = {"strides": list(strides), "padding": tf_padding(padding, pads), "dilations": list(dil)}
        return x, kernel, bias, args, tf_args, pads


def pool_case(rng, counts):
    """A random valid pooling configuration; ``counts`` records the categories drawn."""
    while True:
        dtype = np.float32 if rng.random() < 0.5 else np.float64
        n, c = (int(v) for v in rng.integers(1, [4, 4]))
        pool = tuple(int(v) for v in rng.integers(1, 5, 2))
        strides = None if rng.random() < 0.25 else tuple(int(v) for v in rng.integers(1, 6, 2))
        eff_strides = pool if strides is None else strides
        hw = tuple(int(v) for v in rng.integers(1, 13, 2))
        padding, pads, kind = random_padding(rng, pool, eff_strides, hw, tuple(p - 1 for p in pool))
        exact = kind != "same" and rng.random() < 0.2
        if exact:
            hw = tuple(p - a - b for p, (a, b) in zip(pool, pads))
            if min(hw) < 1:
                continue
        if any(n_ + a + b < p for n_, (a, b), p in zip(hw, pads, pool)):
            counts["rejected (window larger than padded input)"] += 1
            continue
        counts[kind] += 1
        counts[np.dtype(dtype).name] += 1
        counts["strides=None"] += strides is None
        counts["overlapping windows"] += eff_strides[0] < pool[0] or eff_strides[1] < pool[1]
        counts["stride > window"] += eff_strides[0] > pool[0] or eff_strides[1] > pool[1]
        counts["input exactly the window"] += exact
        counts["all-negative input"] += False
        x = rng.normal(size=(n, *hw, c)).astype(dtype)
        if rng.random() < 0.2:  # catches zero padding in max pooling
            x = -np.abs(x) - 1
            counts["all-negative input"] += 1
        args = {"pool_size": pair_or_int(rng, pool), "strides": strides if strides is None
                else pair_or_int(rng, strides), "padding": padding}
        return x, pool, eff_strides, pads, kind, args


def tf_reference(fn, arrays, *args, exact=False):
    """``fn(*arrays, *args)`` (a list of NumPy arrays computed by TensorFlow), and whether it came from float64.

    TensorFlow 2.21's oneDNN float32 convolution on CPU returns wrong values (garbage up to ~1e20) for a few
    shapes (seen: batch > 1, C_in = 1, strides (1, s > 1), a single output column); its float64 path is right.
    So in float32 the reference is computed twice: when TensorFlow's float32 result disagrees with its own
    float64 result, the float64 one is the reference and the case is counted.
    """
    out = fn(*arrays, *args)
    if arrays[0].dtype != np.float32:
        return out, False
    out64 = fn(*(a.astype(np.float64) for a in arrays), *args)
    same = all((np.array_equal(a, b) if exact else np.allclose(a, b, **TOL[np.float32])) for a, b in zip(out, out64))
    return (out, False) if same else (out64, True)


def report(name, counts, max_diff, required):
    missing = [c for c in required if counts[c] < 10]
    assert not missing, f"{name}: categories drawn fewer than 10 times: {missing} ({dict(counts)})"
    # The float64 fallback must stay an exception, or the float32 comparison would not be against TF float32.
    assert counts["TF float32 wrong, compared with TF float64"] <= 0.05 * counts["float32"]
    print(f"\n{name}: {CASES} random cases; max |ours - TF| "
          + ", ".join(f"{k} {v:.3g}" for k, v in max_diff.items()) + f"; categories {dict(counts)}")


CONV_CATEGORIES = ["valid", "same", "int", "tuple", "float32", "float64", "odd kernel", "even kernel",
                   "stride > kernel", "dilation > 1", "dilation > 1 and stride > 1",
                   "input exactly the effective kernel", "batch > 1", "C_in = 1", "1x1 kernel"]
POOL_CATEGORIES = ["valid", "same", "int", "tuple", "float32", "float64", "strides=None", "overlapping windows",
                   "stride > window", "input exactly the window", "all-negative input"]


# ---------------------------------------------------------------------------------------- sweeps vs TF


def tf_conv(x, kernel, bias, tf_args):
    return [(tf.nn.conv2d(x, kernel, **tf_args) + bias).numpy()]


def dilate_kernel(kernel, dilations):
    """The kernel with d - 1 zeros between taps (differentiable): a dilated convolution as an ordinary one."""
    kh, kw, _, _ = kernel.shape
    dh, dw = dilations
    rows, cols = np.meshgrid(np.arange(kh) * dh, np.arange(kw) * dw, indexing="ij")
    shape = [dh * (kh - 1) + 1, dw * (kw - 1) + 1, *kernel.shape[2:]]
    return tf.scatter_nd(np.stack([rows, cols], axis=-1), kernel, shape)


def tape_gradients(x, kernel, bias, grad_out, tf_args):
    """∂loss/∂(x, kernel, bias) by tf.GradientTape for loss = Σ conv(x) · grad_out (so that ∂loss/∂y = grad_out).

    Some of TensorFlow's CPU gradient kernels refuse dilations > 1 ("Current CPU implementations do not yet
    support dilation rates larger than 1": float64, and float32 with explicit padding). There the same forward
    pass is written with the zero-inserted kernel and dilation 1, and the tape differentiates through that.
    """
    xt, kt, bt = (tf.Variable(a) for a in (x, kernel, bias))
    for dilated_op in (True, False):
        args = dict(tf_args)
        try:
            with tf.GradientTape() as tape:
                k = kt
                if not dilated_op:
                    k, args["dilations"] = dilate_kernel(kt, args["dilations"]), [1, 1]
                loss = tf.reduce_sum((tf.nn.conv2d(xt, k, **args) + bt) * grad_out)
            return [g.numpy() for g in tape.gradient(loss, [xt, kt, bt])]
        except tf.errors.InvalidArgumentError as err:
            if "dilation rates" not in str(err) or not dilated_op:
                raise
            ZERO_INSERTED.append(x.dtype.name)
    raise AssertionError("unreachable")


#: One entry per gradient computed through the zero-inserted kernel (its dtype).
ZERO_INSERTED: list[str] = []


def test_conv2d_matches_tf_conv2d_on_random_cases():
    rng = np.random.default_rng(2024)
    counts, max_diff = Counter(), {"float32": 0.0, "float64": 0.0}
    for _ in range(CASES):
        x, kernel, bias, args, tf_args, pads = conv_case(rng, counts)
        ours = nc.conv2d(x, kernel, bias, **args)
        (ref,), fallback = tf_reference(tf_conv, (x, kernel, bias), tf_args)
        counts["TF float32 wrong, compared with TF float64"] += fallback
        assert ours.dtype == x.dtype
        assert ours.shape == ref.shape, (args, x.shape, kernel.shape)
        np.testing.assert_allclose(ours, ref, **TOL[x.dtype.type], err_msg=str((args, x.shape, kernel.shape)))
        name = x.dtype.name
        max_diff[name] = max(max_diff[name], float(np.abs(ours - ref).max()))
    report("conv2d", counts, max_diff, CONV_CATEGORIES)


def test_conv2d_backward_matches_gradient_tape_on_random_cases():
    rng = np.random.default_rng(2025)
    counts, max_diff = Counter(), {"float32": 0.0, "float64": 0.0}
    for _ in range(CASES):
        x, kernel, bias, args, tf_args, pads = conv_case(rng, counts)
        grad_out = rng.normal(size=nc.conv2d(x, kernel, **args).shape).astype(x.dtype)
        before = len(ZERO_INSERTED)
        refs, fallback = tf_reference(tape_gradients, (x, kernel, bias, grad_out), tf_args)
        if max(tf_args["dilations"]) > 1 and x.dtype == np.float32:
            used_dilated_op = "float32" not in ZERO_INSERTED[before:] and not fallback
            counts["float32 dilated, TF's dilated op" if used_dilated_op else "float32 dilated, zero-inserted"] += 1
        counts["TF float32 wrong, compared with TF float64"] += fallback
        ours = nc.conv2d_backward(grad_out, x, kernel, **args)
        for name, o, r in zip(("grad_x", "grad_kernel", "grad_bias"), ours, refs):
            assert o.shape == r.shape and o.dtype == x.dtype, name
            np.testing.assert_allclose(o, r, **TOL[x.dtype.type], err_msg=f"{name} {args} {x.shape} {kernel.shape}")
            max_diff[x.dtype.name] = max(max_diff[x.dtype.name], float(np.abs(o - r).max()))
    report("conv2d_backward", counts, max_diff, CONV_CATEGORIES + ["float32 dilated, TF's dilated op"])


def tf_max_pool(x, pool, strides, pads, kind):
    x = tf.constant(x)  # tf.nn.max_pool2d may turn a float64 NumPy array into float32: give it a tensor
    if kind in ("valid", "same"):
        return [tf.nn.max_pool2d(x, list(pool), list(strides), kind.upper()).numpy()]
    padded = tf.pad(x, [[0, 0], list(pads[0]), list(pads[1]), [0, 0]], constant_values=-np.inf)
    return [tf.nn.max_pool2d(padded, list(pool), list(strides), "VALID").numpy()]


def tf_avg_pool(x, pool, strides, pads, kind):
    x = tf.constant(x)
    if kind in ("valid", "same"):
        return [tf.nn.avg_pool2d(x, list(pool), list(strides), kind.upper()).numpy()]
    # Explicit pads: the sum over the real cells divided by their count, both from a VALID pool of padded arrays.
    paddings = [[0, 0], list(pads[0]), list(pads[1]), [0, 0]]
    area = pool[0] * pool[1]
    sums = tf.nn.avg_pool2d(tf.pad(x, paddings), list(pool), list(strides), "VALID") * area
    counts = tf.nn.avg_pool2d(tf.pad(tf.ones_like(x), paddings), list(pool), list(strides), "VALID") * area
    return [(sums / tf.round(counts)).numpy()]


def test_max_pool2d_equals_tf_max_pool2d_exactly_on_random_cases():
    rng = np.random.default_rng(2026)
    counts, max_diff = Counter(), {"float32": 0.0, "float64": 0.0}
    for _ in range(CASES):
        x, pool, strides, pads, kind, args = pool_case(rng, counts)
        ours = nc.max_pool2d(x, **args)
        (ref,), fallback = tf_reference(tf_max_pool, (x,), pool, strides, pads, kind, exact=True)
        counts["TF float32 wrong, compared with TF float64"] += fallback
        assert ours.dtype == x.dtype and ours.shape == ref.shape, (args, x.shape)
        np.testing.assert_array_equal(ours, ref, err_msg=str((args, x.shape)))
        max_diff[x.dtype.name] = max(max_diff[x.dtype.name], float(np.abs(ours - ref).max()))
    report("max_pool2d", counts, max_diff, POOL_CATEGORIES)


def test_avg_pool2d_matches_tf_avg_pool2d_on_random_cases():
    rng = np.random.default_rng(2027)
    counts, max_diff = Counter(), {"float32": 0.0, "float64": 0.0}
    for _ in range(CASES):
        x, pool, strides, pads, kind, args = pool_case(rng, counts)
        ours = nc.avg_pool2d(x, **args)
        (ref,), fallback = tf_reference(tf_avg_pool, (x,), pool, strides, pads, kind)
        counts["TF float32 wrong, compared with TF float64"] += fallback
        assert ours.dtype == x.dtype and ours.shape == ref.shape, (args, x.shape)
        np.testing.assert_allclose(ours, ref, **TOL[x.dtype.type], err_msg=str((args, x.shape)))
        max_diff[x.dtype.name] = max(max_diff[x.dtype.name], float(np.abs(ours - ref).max()))
    report("avg_pool2d", counts, max_diff, POOL_CATEGORIES)


# ------------------------------------------------------------------------------------- loop reference


def conv_loop(x, kernel, bias, strides, pads, dil):
    """Four nested loops over the output, straight from the definition (cross-correlation)."""
    (sh, sw), (dh, dw) = strides, dil
    xp = np.pad(x.astype(np.float64), ((0, 0), pads[0], pads[1], (0, 0)))
    kh, kw, _, c_out = kernel.shape
    ho = (xp.shape[1] - (dh * (kh - 1) + 1)) // sh + 1
    wo = (xp.shape[2] - (dw * (kw - 1) + 1)) // sw + 1
    y = np.zeros((x.shape[0], ho, wo, c_out))
    for n, i, j, o in itertools.product(range(x.shape[0]), range(ho), range(wo), range(c_out)):
        total = 0.0 if bias is None else float(bias[o])
        for a, b in itertools.product(range(kh), range(kw)):
            total += float(xp[n, i * sh + a * dh, j * sw + b * dw, :] @ kernel[a, b, :, o])
        y[n, i, j, o] = total
    return y


def pool_loop(x, pool, strides, pads, reduce):
    """Pooling by loops over the real cells of each window (padded cells never count)."""
    (ph, pw), (sh, sw), ((t, b), (left, r)) = pool, strides, pads
    ho = (x.shape[1] + t + b - ph) // sh + 1
    wo = (x.shape[2] + left + r - pw) // sw + 1
    y = np.zeros((x.shape[0], ho, wo, x.shape[3]))
    for i, j in itertools.product(range(ho), range(wo)):
        r0, c0 = i * sh - t, j * sw - left
        window = x[:, max(r0, 0) : r0 + ph, max(c0, 0) : c0 + pw, :]
        y[:, i, j, :] = reduce(window, axis=(1, 2))
    return y


def test_vectorized_functions_agree_with_the_loop_reference():
    rng = np.random.default_rng(7)
    counts = Counter()
    for _ in range(40):
        x, kernel, bias, args, tf_args, pads = conv_case(rng, counts)
        ref = conv_loop(x, kernel, bias, tuple(tf_args["strides"]), pads, tuple(tf_args["dilations"]))
        np.testing.assert_allclose(nc.conv2d(x, kernel, bias, **args), ref, **TOL[x.dtype.type])
    for _ in range(40):
        x, pool, strides, pads, _kind, args = pool_case(rng, counts)
        np.testing.assert_array_equal(nc.max_pool2d(x, **args), pool_loop(x, pool, strides, pads, np.max))
        np.testing.assert_allclose(nc.avg_pool2d(x, **args), pool_loop(x, pool, strides, pads, np.mean),
                                   **TOL[x.dtype.type])


# ----------------------------------------------------------------------------------- worked examples


def test_hand_worked_5x5_example():
    x = np.arange(25.0).reshape(1, 5, 5, 1)  # rows 0..4, 5..9, …, 20..24
    ones = np.ones((3, 3, 1, 1))
    # Top-left window: 0+1+2 + 5+6+7 + 10+11+12 = 54; one column right adds 9, one row down adds 45.
    expected = np.array([[54, 63, 72], [99, 108, 117], [144, 153, 162]], float)
    np.testing.assert_array_equal(nc.conv2d(x, ones)[0, :, :, 0], expected)
    np.testing.assert_array_equal(nc.conv2d(x, ones, strides=2)[0, :, :, 0], expected[::2, ::2])
    np.testing.assert_array_equal(nc.max_pool2d(x, 2)[0, :, :, 0], [[6, 8], [16, 18]])
    # "same" 2x2 pool, stride 2 on 5 pixels: pads (0, 1); the last row/column windows hold 2 real cells, not 4.
    np.testing.assert_array_equal(nc.avg_pool2d(x, 2, padding="same")[0, :, :, 0],
                                  [[3, 5, 6.5], [13, 15, 16.5], [20.5, 22.5, 24]])


def test_conv2d_is_cross_correlation_not_convolution():
    impulse = np.zeros((1, 5, 5, 1))
    impulse[0, 2, 2, 0] = 1.0
    kernel = np.arange(1.0, 10.0).reshape(3, 3, 1, 1)  # not symmetric
    response = nc.conv2d(impulse, kernel, padding="same")[0, 1:4, 1:4, 0]
    # Cross-correlating an impulse draws the kernel upside down and mirrored; a convolution would draw it as is.
    np.testing.assert_array_equal(response, kernel[::-1, ::-1, 0, 0])
    assert not np.array_equal(response, kernel[:, :, 0, 0])
    # A true convolution is a cross-correlation with the flipped kernel.
    flipped = nc.conv2d(impulse, kernel[::-1, ::-1], padding="same")[0, 1:4, 1:4, 0]
    np.testing.assert_array_equal(flipped, kernel[:, :, 0, 0])


def test_1x1_kernel_is_a_per_pixel_matrix_product():
    rng = np.random.default_rng(1)
    x, kernel = rng.normal(size=(2, 4, 3, 5)), rng.normal(size=(1, 1, 5, 6))
    np.testing.assert_allclose(nc.conv2d(x, kernel), x @ kernel[0, 0], rtol=1e-12)


@pytest.mark.parametrize(("n", "k", "s", "pads"), [(6, 3, 2, (0, 1)), (6, 4, 1, (1, 2)), (5, 3, 2, (1, 1)),
                                                 (7, 1, 3, (0, 0)), (4, 2, 3, (0, 1))])
def test_same_padding_puts_the_extra_pixel_bottom_right(n, k, s, pads):
    rng = np.random.default_rng(n * k * s)
    x, kernel = rng.normal(size=(1, n, n, 2)), rng.normal(size=(k, k, 2, 3))
    assert nc._pads("same", (n, n), (k, k), (s, s)) == (pads, pads)
    np.testing.assert_allclose(nc.conv2d(x, kernel, strides=s, padding="same"),
                               nc.conv2d(x, kernel, strides=s, padding=(pads, pads)), rtol=1e-12)
    assert nc.conv2d(x, kernel, strides=s, padding="same").shape[1] == -(-n // s)


def test_explicit_pads_equal_to_sames_give_tf_same_pooling():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 7, 6, 3)).astype(np.float32)
    pads = nc._pads("same", (7, 6), (3, 3), (2, 2))
    np.testing.assert_array_equal(nc.max_pool2d(x, 3, 2, pads), tf.nn.max_pool2d(x, 3, 2, "SAME").numpy())
    np.testing.assert_allclose(nc.avg_pool2d(x, 3, 2, pads), tf.nn.avg_pool2d(x, 3, 2, "SAME").numpy(), rtol=1e-6)


def test_stride_larger_than_kernel_skips_pixels_and_their_gradient_is_zero():
    x, kernel = np.ones((1, 5, 5, 1)), np.ones((1, 1, 1, 1))
    y = nc.conv2d(x, kernel, strides=3)
    assert y.shape == (1, 2, 2, 1)
    grad_x, _, _ = nc.conv2d_backward(np.ones_like(y), x, kernel, strides=3)
    read = np.zeros((5, 5))
    read[::3, ::3] = 1
    np.testing.assert_array_equal(grad_x[0, :, :, 0], read)


def test_non_contiguous_inputs_and_mixed_dtypes():
    rng = np.random.default_rng(4)
    big = rng.normal(size=(2, 14, 12, 6))
    x = big[:, ::2, 1::2, ::2]  # a strided view
    kernel = np.asfortranarray(rng.normal(size=(3, 2, 3, 4)))
    assert not x.flags.c_contiguous
    np.testing.assert_allclose(nc.conv2d(x, kernel), nc.conv2d(np.ascontiguousarray(x), np.ascontiguousarray(kernel)))
    np.testing.assert_array_equal(nc.max_pool2d(x, 2), nc.max_pool2d(np.ascontiguousarray(x), 2))
    assert nc.conv2d(x.astype(np.float32), kernel.astype(np.float32)).dtype == np.float32
    assert nc.conv2d(x.astype(np.float32), kernel).dtype == np.float64
    assert nc.conv2d(np.ones((1, 3, 3, 1), int), np.ones((3, 3, 1, 1), int)).dtype == np.float64


def test_max_pool_keeps_integer_dtypes_and_never_picks_padding():
    x = -np.arange(1, 26, dtype=np.int32).reshape(1, 5, 5, 1)
    y = nc.max_pool2d(x, 2, padding="same")
    assert y.dtype == np.int32
    assert (y < 0).all()  # zero padding would have produced zeros on the last row and column
    np.testing.assert_array_equal(y, tf.nn.max_pool2d(x.astype(np.float32), 2, 2, "SAME").numpy().astype(np.int32))
    assert (nc.max_pool2d(-np.ones((1, 3, 3, 1)), 3, 1, "same") == -1).all()


def test_max_pool_and_avg_pool_propagate_nan():
    x = np.array([[1.0, np.nan], [2.0, 3.0]]).reshape(1, 2, 2, 1)
    assert np.isnan(nc.max_pool2d(x, 2)).all()
    assert nc.avg_pool2d(x, 2).shape == (1, 1, 1, 1) and np.isnan(nc.avg_pool2d(x, 2)).all()


def test_channels_and_batch_are_pooled_independently():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(3, 6, 6, 4))
    whole = nc.max_pool2d(x, 3, 2, "same")
    for n, c in itertools.product(range(3), range(4)):
        one = x[n : n + 1, ..., c : c + 1]
        np.testing.assert_array_equal(whole[n : n + 1, ..., c : c + 1], nc.max_pool2d(one, 3, 2, "same"))


# ---------------------------------------------------------------------------------------------- errors

X = np.zeros((1, 5, 5, 3))
K = np.zeros((3, 3, 3, 2))


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: nc.conv2d(np.zeros((5, 5, 3)), K), "x"),
        (lambda: nc.conv2d(X, np.zeros((3, 3, 3))), "kernel"),
        (lambda: nc.conv2d(X, np.zeros((3, 3, 4, 2))), "kernel"),  # channel mismatch
        (lambda: nc.conv2d(X, np.zeros((0, 3, 3, 2))), "kernel"),
        (lambda: nc.conv2d(np.zeros((1, 0, 5, 3)), K), "x"),
        (lambda: nc.conv2d(X, K, bias=np.zeros(3)), "bias"),
        (lambda: nc.conv2d(X, K, bias=np.zeros((2, 1))), "bias"),
        (lambda: nc.conv2d(X, K, strides=0), "strides"),
        (lambda: nc.conv2d(X, K, strides=(1, -1)), "strides"),
        (lambda: nc.conv2d(X, K, strides=1.5), "strides"),
        (lambda: nc.conv2d(X, K, strides=(1, 2, 3)), "strides"),
        (lambda: nc.conv2d(X, K, dilations=0), "dilations"),
        (lambda: nc.conv2d(X, K, padding="full"), "padding"),
        (lambda: nc.conv2d(X, K, padding=-1), "padding"),
        (lambda: nc.conv2d(X, K, padding=(1, 2)), "padding"),
        (lambda: nc.conv2d(X, K, padding=((1, -1), (0, 0))), "padding"),
        (lambda: nc.conv2d(X, K, dilations=3), "kernel"),  # effective kernel 7 > 5
        (lambda: nc.conv2d(np.zeros((1, 2, 2, 3)), K, strides=2), "kernel"),  # the int() truncation case
        (lambda: nc.conv2d(np.zeros((1, 2, 5, 3)), K, padding=((0, 0), (1, 1))), "kernel"),
        (lambda: nc.conv2d(np.zeros((1, 5, 5, 3), complex), K), "x"),
        (lambda: nc.conv2d_backward(np.zeros((1, 3, 3, 3)), X, K), "grad_out"),
        (lambda: nc.conv2d_backward(np.zeros((1, 2, 3, 2)), X, K), "grad_out"),
        (lambda: nc.max_pool2d(np.zeros((5, 5)), 2), "x"),
        (lambda: nc.max_pool2d(X, 0), "pool_size"),
        (lambda: nc.max_pool2d(X, 2, strides=0), "strides"),
        (lambda: nc.max_pool2d(X, 6), "pool_size"),  # window larger than the input
        (lambda: nc.max_pool2d(np.zeros((1, 1, 2, 1)), 2), "pool_size"),  # TF returns an empty map here
        (lambda: nc.max_pool2d(X, 2, padding=2), "padding"),  # a window of padding only
        (lambda: nc.avg_pool2d(X, 2, padding="SAMEE"), "padding"),
        (lambda: nc.avg_pool2d(X, (2, 2, 2)), "pool_size"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        call()
