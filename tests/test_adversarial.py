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


def many_weak_features(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two classes: feature 0 says the class with a wide margin (±1), features 1..40 each say it weakly (±0.1)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    sign = (2 * y - 1)[:, None].astype("float32")
    strong = sign * 1.0 + rng.normal(0, 0.1, size=(n, 1))
    weak = sign * 0.1 + rng.normal(0, 0.1, size=(n, 40))
    return np.concatenate([strong, weak], axis=1).astype("float32"), y


def dense_model(seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((41,))
    return keras.Model(inputs, keras.layers.Dense(2)(inputs))


def test_adversarial_training_resists_fgsm_better_than_ordinary_training():
    # Ordinary training leans on the 40 weak features, which an ε = 0.3 step per feature overturns;
    # FGSM training must rely on the strong one.
    x, y = many_weak_features(2000, seed=0)
    x_test, y_test = many_weak_features(500, seed=1)
    eps = 0.3
    accuracy = {}
    for weight in (0.0, 0.5):
        model = dense_model(seed=0)
        history = adversarial.train_adversarially(model, x, y, eps, epochs=15, batch_size=50,
                                                  adversarial_weight=weight, learning_rate=1e-2)
        assert len(history) == 15 and history[-1] < history[0]
        direction = adversarial.gradient_sign(model, x_test, y_test)
        accuracy[weight] = adversarial.accuracy_under(model, x_test, y_test, direction, [0.0, eps])
    assert accuracy[0.0][0.0] > 0.95 and accuracy[0.5][0.0] > 0.95  # both fit the clean data
    assert accuracy[0.5][eps] > accuracy[0.0][eps] + 0.2


@pytest.mark.parametrize("kwargs, match", [
    ({"epsilon": -0.1}, "epsilon"), ({"adversarial_weight": 1.5}, "adversarial_weight"),
    ({"epochs": 0}, "epochs"), ({"batch_size": 2.5}, "batch_size"), ({"clip": (1.0, 0.0)}, "clip"),
])
def test_train_adversarially_rejects_bad_arguments(kwargs, match):
    x, y = many_weak_features(10, seed=2)
    args = {"epsilon": 0.1, **kwargs}
    eps = args.pop("epsilon")
    with pytest.raises(ValueError, match=match):
        adversarial.train_adversarially(dense_model(seed=0), x, y, eps, **args)


def test_pgd_stays_in_the_ball_reduces_to_fgsm_and_is_at_least_as_strong():
    x, y = many_weak_features(300, seed=3)
    model = dense_model(seed=1)
    adversarial.train_adversarially(model, x, y, 0.0, epochs=5, batch_size=50, learning_rate=1e-2)
    eps = 0.15
    one = adversarial.pgd(model, x, y, eps, step=eps, steps=1, clip=(-2.0, 2.0))
    assert np.array_equal(one, adversarial.fgsm(model, x, y, eps, clip=(-2.0, 2.0)))
    many = adversarial.pgd(model, x, y, eps, step=eps / 4, steps=10, clip=(-2.0, 2.0))
    assert np.abs(many - x).max() <= eps + 1e-6 and many.min() >= -2.0 and many.max() <= 2.0
    correct = {name: np.mean(model.predict(a, verbose=0).argmax(1) == y) for name, a in
               (("clean", x), ("fgsm", one), ("pgd", many))}
    assert correct["pgd"] <= correct["fgsm"] < correct["clean"]
    with pytest.raises(ValueError, match="steps"):
        adversarial.pgd(model, x, y, eps, step=0.1, steps=0)
