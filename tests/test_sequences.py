"""Tests of cnn_helpers.sequences: shapes, determinism, and that the tasks need the frames' order."""

from __future__ import annotations

import numpy as np
import pytest

from cnn_helpers import sequences


def test_ball_frame_stacks_follow_the_velocity():
    stacks, targets, velocity = sequences.ball_frame_stacks(20, size=40, frames=4, max_speed=2, seed=3)
    again = sequences.ball_frame_stacks(20, size=40, frames=4, max_speed=2, seed=3)
    assert np.array_equal(stacks, again[0]) and np.array_equal(targets, again[1])
    assert stacks.shape == (20, 40, 40, 4) and targets.shape == velocity.shape == (20, 2)
    assert (stacks.sum(axis=(1, 2)) == 4).all()  # one 2 x 2 ball per frame
    for i in range(20):
        ys, xs = np.nonzero(stacks[i, :, :, 3])
        latest = np.array([ys.min(), xs.min()])
        assert np.all(np.abs(latest + velocity[i] - targets[i]) <= 0.5 + 1e-6)  # rounding only
    assert (targets >= 0).all() and (targets <= 38).all()


def test_latest_ball_position_says_nothing_about_the_velocity():
    # the latest position is drawn independently of the velocity: no correlation between them, on
    # either axis (deriving the latest position as start + 3 v, with the start independent, gives about 0.3)
    stacks, _, velocity = sequences.ball_frame_stacks(3000, frames=4, max_speed=3, seed=5)
    weights = stacks[:, :, :, 3]
    latest = np.stack([(weights.sum(2) * np.arange(84)).sum(1), (weights.sum(1) * np.arange(84)).sum(1)], 1)
    latest /= weights.sum(axis=(1, 2))[:, None]
    for axis in range(2):
        assert abs(np.corrcoef(latest[:, axis], velocity[:, axis])[0, 1]) < 0.06
    first = stacks[:, :, :, 0]
    earliest = (first.sum(1) * np.arange(84)).sum(1) / first.sum(axis=(1, 2))
    assert np.corrcoef(earliest, velocity[:, 1])[0, 1] < -0.2  # the earlier frames do carry it


def test_ball_frame_stacks_reject_bad_arguments():
    with pytest.raises(ValueError, match="size"):
        sequences.ball_frame_stacks(2, size=10, max_speed=3)
    with pytest.raises(ValueError, match="n="):
        sequences.ball_frame_stacks(0)


def test_moving_blob_direction_is_in_the_order_only():
    seqs, labels = sequences.moving_blob_sequences(400, noise=0.0, seed=1)
    assert seqs.shape == (400, 8, 28, 28, 1) and set(np.unique(labels)) == {0, 1}
    columns = (seqs[..., 0].sum(axis=2) * np.arange(28)).sum(-1) / seqs[..., 0].sum(axis=(2, 3))
    moving_right = np.diff(columns, axis=1).mean(axis=1) > 0
    assert np.array_equal(moving_right, labels == 1)
    # order-free statistics (the mean frame) do not separate the classes: compare mean blob column
    mean_column = columns.mean(axis=1)
    gap = abs(mean_column[labels == 1].mean() - mean_column[labels == 0].mean())
    assert gap < 1.0


def test_moving_blob_rejects_bad_arguments():
    with pytest.raises(ValueError, match="sigma"):
        sequences.moving_blob_sequences(2, sigma=0)
    with pytest.raises(ValueError, match="size"):
        sequences.moving_blob_sequences(2, size=12, frames=8)
