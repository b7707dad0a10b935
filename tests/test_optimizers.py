"""Tests of cnn_helpers.optimizers: decoupled decay is scale-independent, L2 under Adam is not."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from cnn_helpers import optimizers

SCALES = [1e-3, 1.0, 1e3]


def test_adam_without_decay_is_scale_invariant():
    w = optimizers.noisy_steps(lambda: keras.optimizers.Adam(1e-2), SCALES, 50)
    np.testing.assert_allclose(w, w[1], rtol=1e-3)
    assert not np.allclose(w, 1.0)


def test_adamw_decays_every_scale_alike_and_l2_does_not():
    adamw = optimizers.noisy_steps(lambda: keras.optimizers.AdamW(1e-2, weight_decay=0.1), SCALES, 100)
    free = optimizers.noisy_steps(lambda: keras.optimizers.Adam(1e-2), SCALES, 100)
    l2 = optimizers.noisy_steps(lambda: keras.optimizers.Adam(1e-2), SCALES, 100, l2=0.1)
    np.testing.assert_allclose(adamw, adamw[1], rtol=1e-3)
    assert np.all(adamw < free)
    assert l2[0] < 0.5 < l2[2]  # the small-gradient weight is decayed far more
    assert l2[2] == pytest.approx(free[2], rel=1e-3)


def test_sgd_l2_equals_sgd_weight_decay():
    a = optimizers.noisy_steps(lambda: keras.optimizers.SGD(1e-2), SCALES, 50, l2=0.1)
    b = optimizers.noisy_steps(lambda: keras.optimizers.SGD(1e-2, weight_decay=0.1), SCALES, 50)
    np.testing.assert_allclose(a, b, rtol=1e-5)


def test_errors_name_the_argument():
    make = lambda: keras.optimizers.SGD(1e-2)  # noqa: E731
    with pytest.raises(ValueError, match="gradient_scales"):
        optimizers.noisy_steps(make, [0.0], 5)
    with pytest.raises(ValueError, match="steps"):
        optimizers.noisy_steps(make, [1.0], 0)
    with pytest.raises(ValueError, match="l2"):
        optimizers.noisy_steps(make, [1.0], 5, l2=-1)
