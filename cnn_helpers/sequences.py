"""Sequences of frames generated in code: a moving ball (frame stacks, as DQN's input) and a moving blob.

Both tasks need *time*: one frame shows where the object is, not where it is going. Generated
deterministically from a seed.

Units: positions and sizes in pixels (row ``y``, column ``x``, from the top-left corner); velocities in
pixels per frame; frames are float32 in [0, 1].
"""

from __future__ import annotations

from typing import Any

import numpy as np

DIRECTIONS = ("left", "right")


def _positive_int(value: Any, argument: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{argument}={value!r}: must be a positive integer")
    return int(value)


def ball_frame_stacks(
    n: int,
    size: int = 84,
    frames: int = 4,
    ball: int = 2,
    max_speed: float = 3.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stacks of the last ``frames`` frames of a square ball moving in a straight line, and its next position.

    Like DQN's input (Mnih et al., 2015: the last 4 preprocessed 84 × 84 frames stacked as channels), but
    with one ``ball × ball`` white square on black. The velocity is uniform in ``[-max_speed, max_speed]``
    per axis (pixels per frame). The position in the *latest* frame is drawn uniformly, independently of the
    velocity, far enough from the edges (``max(frames - 1, 1) · max_speed`` pixels) that every earlier
    position and the next one stay inside; earlier positions are ``latest - (frames - 1 - t) · velocity``.
    So the latest frame alone says nothing about the velocity (a ball near an edge is not more likely to
    be moving towards it). Positions are rounded to whole pixels when drawn.

    Returns:
        ``stacks`` float32 ``(n, size, size, frames)`` (channel ``frames - 1`` is the latest frame) and
        ``targets`` float32 ``(n, 2)``: the ball's top-left ``(y, x)`` in the *next* frame, pixels,
        unrounded; ``velocities`` float32 ``(n, 2)``: ``(vy, vx)``, pixels per frame.
    """
    n = _positive_int(n, "n")
    size = _positive_int(size, "size")
    frames = _positive_int(frames, "frames")
    ball = _positive_int(ball, "ball")
    if max_speed < 0:
        raise ValueError(f"max_speed={max_speed!r}: must be >= 0")
    margin = max_speed * max(frames - 1, 1)  # pixels the ball can travel away from the latest position
    if size - ball - 2 * margin < 1:
        raise ValueError(f"size={size}: too small for a {ball}-pixel ball moving {margin:g} px around its position")
    rng = np.random.default_rng(seed)
    velocity = rng.uniform(-max_speed, max_speed, size=(n, 2))
    # the latest position, independent of the velocity; the earlier ones are derived from it
    latest = rng.uniform(margin, size - ball - margin, size=(n, 2))
    stacks = np.zeros((n, size, size, frames), np.float32)
    for t in range(frames):
        pos = np.rint(latest - (frames - 1 - t) * velocity).astype(int)
        for i, (y, x) in enumerate(pos):
            stacks[i, y : y + ball, x : x + ball, t] = 1.0
    targets = (latest + velocity).astype(np.float32)
    return stacks, targets, velocity.astype(np.float32)


def moving_blob_sequences(
    n: int,
    frames: int = 8,
    size: int = 28,
    sigma: float = 2.0,
    speed: int = 2,
    noise: float = 0.05,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Sequences of a Gaussian blob moving left or right, labelled with its direction.

    The blob (standard deviation ``sigma`` pixels) starts at a random row and column and moves ``speed``
    pixels per frame horizontally, to the left (label 0) or right (label 1) with equal probability; the
    start column is drawn so that the whole path stays inside the frame, and its distribution is the mirror
    image of itself, so a right-moving sequence played backwards looks like a left-moving one. Gaussian
    pixel noise of standard deviation ``noise`` is added. Any model that ignores the order of the frames
    therefore cannot beat chance.

    Returns:
        ``sequences`` float32 ``(n, frames, size, size, 1)`` and ``labels`` int ``(n,)`` indexing
        :data:`DIRECTIONS`.
    """
    n = _positive_int(n, "n")
    frames = _positive_int(frames, "frames")
    size = _positive_int(size, "size")
    speed = _positive_int(speed, "speed")
    if sigma <= 0:
        raise ValueError(f"sigma={sigma!r}: must be > 0")
    if noise < 0:
        raise ValueError(f"noise={noise!r}: must be >= 0")
    margin = int(np.ceil(2 * sigma))
    span = speed * (frames - 1)
    if size - 2 * margin - span < 1:
        raise ValueError(f"size={size}: too small for {frames} frames at {speed} px/frame")
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=n)
    rows = rng.uniform(margin, size - 1 - margin, size=n)
    first = rng.uniform(margin, size - 1 - margin - span, size=n)  # leftmost column of the path
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    sequences = np.empty((n, frames, size, size, 1), np.float32)
    for i in range(n):
        columns = first[i] + speed * np.arange(frames)
        if labels[i] == 0:
            columns = columns[::-1]
        for t, cx in enumerate(columns):
            blob = np.exp(-((yy - rows[i]) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))
            sequences[i, t, :, :, 0] = blob
    sequences += rng.normal(0, noise, size=sequences.shape).astype(np.float32)
    return np.clip(sequences, 0, 1), labels
