"""Tests of cnn_helpers.adversarial: FGSM against the analytic gradient of a linear model, and its control."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from cnn_helpers import adversarial


def linear_model(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6,))
    return keras.Model(inputs, keras.layers.Dense(3)(inputs))


def test_gradient_sign_matches_the_analytic_gradient():
    # logits z = x W + b; the cross-entropy's gradient with respect to x is (softmax(z) - onehot(y)) Wᵀ.
    model = linear_model()
    w, b = model.layers[-1].get_weights()
    x = np.random.default_rng(0).normal(size=(5, 6)).astype("float32")
    y = np.array([0, 1, 2, 1, 0])
    z = x @ w + b
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    expected = np.sign((p - np.eye(3)[y]) @ w.T)
    assert np.array_equal(adversarial.gradient_sign(model, x, y, batch_size=2), expected)


def test_fgsm_raises_the_loss_more_than_random_signs_and_respects_epsilon_and_clip():
    model = linear_model(seed=1)
    x = np.random.default_rng(1).uniform(-0.5, 0.5, size=(64, 6)).astype("float32")
    y = model.predict(x, verbose=0).argmax(axis=1)  # all correct at ε = 0
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    eps = 0.3
    adv = adversarial.fgsm(model, x, y, eps, clip=(-0.6, 0.6))
    noisy = adversarial.perturb(x, adversarial.random_signs(x.shape, seed=0), eps, clip=(-0.6, 0.6))
    assert np.abs(adv - x).max() <= eps + 1e-6
    assert adv.min() >= -0.6 and adv.max() <= 0.6
    assert float(loss(y, model(adv))) > float(loss(y, model(noisy))) > 0
    acc = adversarial.accuracy_under(model, x, y, adversarial.gradient_sign(model, x, y), [0.0, eps])
    assert acc[0.0] == 1.0 and acc[eps] < 1.0


def test_perturb_with_zero_epsilon_is_the_identity():
    x = np.random.default_rng(2).normal(size=(3, 4)).astype("float32")
    assert np.array_equal(adversarial.perturb(x, np.ones_like(x), 0.0), x)


def test_pixels_to_input_units():
    assert adversarial.pixels_to_input_units(1, -1.0, 1.0) == pytest.approx(2 / 255)
    assert adversarial.pixels_to_input_units(255, 0.0, 1.0) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="low"):
        adversarial.pixels_to_input_units(1, 1.0, -1.0)


def test_random_signs_are_plus_or_minus_one_and_seeded():
    r = adversarial.random_signs((100, 3), seed=5)
    assert set(np.unique(r)) == {-1.0, 1.0}
    assert np.array_equal(r, adversarial.random_signs((100, 3), seed=5))


def test_arguments_are_checked():
    model = linear_model()
    x = np.zeros((2, 6), "float32")
    with pytest.raises(ValueError, match="epsilon"):
        adversarial.fgsm(model, x, np.array([0, 1]), -0.1)
    with pytest.raises(ValueError, match="labels"):
        adversarial.gradient_sign(model, x, np.array([0]))
    with pytest.raises(ValueError, match="direction"):
        adversarial.perturb(x, np.ones((2, 5)), 0.1)
    with pytest.raises(ValueError, match="clip"):
        adversarial.perturb(x, np.ones_like(x), 0.1, clip=(1.0, 0.0))
    with pytest.raises(ValueError, match="epsilons"):
        adversarial.accuracy_under(model, x, np.array([0, 1]), np.ones_like(x), [])
