"""Capsules and routing-by-agreement, as Sabour, Frosst & Hinton state them (*Dynamic Routing Between Capsules*, 2017).

A capsule outputs a vector: its length (in ``[0, 1)``) is the probability that the entity it stands for is present,
its orientation the entity's instantiation parameters. Each lower capsule *i* makes a prediction
``u_hat[i, j]`` for every higher capsule *j* (in the paper, its output times a learned transformation matrix
``W_ij``). Routing decides how much of each prediction reaches each parent:

* coupling coefficients ``c[i, :] = softmax(b[i, :])`` over the parents (``b`` starts at zero: equal shares);
* each parent sums the predictions it receives, ``s_j = Σ_i c[i, j] · u_hat[i, j]``, and squashes the sum,
  ``v_j = squash(s_j)``;
* each logit grows by the agreement of prediction and output, ``b[i, j] += u_hat[i, j] · v_j``;

repeated for a few iterations (the paper compares one and three). The routing is *soft*: every coefficient stays
strictly positive, so every child sends part of its output to every parent. Plain NumPy; vectors are along the last
axis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def squash(s: np.ndarray, axis: int = -1, eps: float = 1e-9) -> np.ndarray:
    """The paper's non-linearity: ``v = |s|² / (1 + |s|²) · s / |s|`` along ``axis``.

    It keeps each vector's direction and maps its length ``|s|`` to ``|s|² / (1 + |s|²)``, in ``[0, 1)``: short
    vectors shrink to almost zero, long ones to just below one. ``eps`` (same units as ``s``) avoids 0 / 0.
    """
    s = np.asarray(s, dtype=np.float64)
    if s.ndim == 0:
        raise ValueError("s: need at least one axis holding the vectors")
    if eps <= 0:
        raise ValueError(f"eps={eps!r}: must be positive")
    norm2 = np.sum(s * s, axis=axis, keepdims=True)
    return s * (norm2 / (1.0 + norm2)) / np.sqrt(norm2 + eps)


@dataclass(frozen=True)
class Routing:
    """The result of :func:`route`.

    Attributes:
        outputs: the parents' output vectors ``v``, shape ``(parents, dim)``; their lengths lie in ``[0, 1)``.
        coupling: the final coupling coefficients ``c``, shape ``(children, parents)``; each row sums to 1.
        logits: the final routing logits ``b``, shape ``(children, parents)``.
        history: the coupling coefficients used at each iteration, shape ``(iterations, children, parents)``.
    """

    outputs: np.ndarray
    coupling: np.ndarray
    logits: np.ndarray
    history: np.ndarray


def _softmax(b: np.ndarray) -> np.ndarray:
    e = np.exp(b - b.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def route(u_hat: np.ndarray, iterations: int = 3) -> Routing:
    """Routing-by-agreement (the paper's Procedure 1) for one layer of capsules.

    Args:
        u_hat: the children's predictions for the parents, shape ``(children, parents, dim)``.
        iterations: routing iterations ``r`` (at least 1; the paper compares 1 and 3). With ``r = 1`` the
            coefficients stay at their uniform start, ``1 / parents``.

    Returns:
        A :class:`Routing`.
    """
    u_hat = np.asarray(u_hat, dtype=np.float64)
    if u_hat.ndim != 3 or 0 in u_hat.shape:
        raise ValueError(f"u_hat: expected a non-empty (children, parents, dim) array, got shape {u_hat.shape}")
    if int(iterations) != iterations or iterations < 1:
        raise ValueError(f"iterations={iterations!r}: must be a positive integer")
    children, parents, _ = u_hat.shape
    b = np.zeros((children, parents))
    history = []
    for r in range(iterations):
        c = _softmax(b)
        history.append(c)
        v = squash(np.einsum("ij,ijd->jd", c, u_hat))
        if r < iterations - 1:
            b = b + np.einsum("ijd,jd->ij", u_hat, v)
    return Routing(outputs=v, coupling=c, logits=b, history=np.stack(history))
