"""Tests of cnn_helpers.capsules: the squash non-linearity and routing-by-agreement (Sabour et al., 2017)."""

from __future__ import annotations

import numpy as np
import pytest

from cnn_helpers import capsules


def test_squash_maps_length_and_keeps_direction():
    direction = np.array([0.6, 0.8])
    for length in (0.1, 1.0, 3.0, 100.0):
        v = capsules.squash(length * direction)
        expected = length**2 / (1 + length**2)
        assert np.linalg.norm(v) == pytest.approx(expected, rel=1e-6)
        assert v / np.linalg.norm(v) == pytest.approx(direction)
    assert np.linalg.norm(capsules.squash(np.zeros(4))) == 0.0


def test_squash_acts_along_the_given_axis():
    s = np.arange(12, dtype=float).reshape(3, 4)
    by_rows = capsules.squash(s, axis=1)
    by_columns = capsules.squash(s.T, axis=0).T
    assert by_rows == pytest.approx(by_columns)
    assert np.all(np.linalg.norm(by_rows, axis=1) < 1)


def test_one_iteration_keeps_uniform_coupling():
    u_hat = np.random.default_rng(0).normal(size=(5, 4, 3))
    r = capsules.route(u_hat, iterations=1)
    assert r.coupling == pytest.approx(np.full((5, 4), 0.25))
    # each parent squashes the sum of the predictions it receives, each weighted by 1 / parents
    assert r.outputs == pytest.approx(capsules.squash(u_hat.sum(axis=0) / 4))


def test_routing_favours_the_parent_the_children_agree_on_but_stays_soft():
    rng = np.random.default_rng(1)
    u_hat = rng.normal(0, 0.3, size=(12, 3, 6))
    u_hat[:, 1] = 0.5 * rng.normal(size=6) + rng.normal(0, 0.02, size=(12, 6))
    r = capsules.route(u_hat, iterations=3)
    assert r.history.shape == (3, 12, 3)
    assert r.coupling.sum(axis=1) == pytest.approx(np.ones(12))
    assert r.coupling[:, 1].mean() > 0.4 > r.history[0][0, 1]  # agreement raised the share from 1/3
    assert np.argmax(np.linalg.norm(r.outputs, axis=1)) == 1
    assert r.coupling.min() > 0  # soft: every child still feeds every parent


def test_logits_are_the_accumulated_agreements():
    u_hat = np.random.default_rng(2).normal(size=(4, 2, 3))
    r2 = capsules.route(u_hat, iterations=2)
    v1 = capsules.route(u_hat, iterations=1).outputs
    assert r2.logits == pytest.approx(np.einsum("ijd,jd->ij", u_hat, v1))


@pytest.mark.parametrize("shape", [(3, 4), (0, 2, 2), (2, 3, 4, 5)])
def test_route_rejects_bad_shapes(shape):
    with pytest.raises(ValueError, match="u_hat"):
        capsules.route(np.zeros(shape))


@pytest.mark.parametrize("iterations", [0, -1, 2.5])
def test_route_rejects_bad_iterations(iterations):
    with pytest.raises(ValueError, match="iterations"):
        capsules.route(np.zeros((2, 2, 2)), iterations=iterations)


def test_squash_rejects_bad_arguments():
    with pytest.raises(ValueError, match="eps"):
        capsules.squash(np.ones(3), eps=0)
    with pytest.raises(ValueError, match="s:"):
        capsules.squash(np.float64(1.0))
