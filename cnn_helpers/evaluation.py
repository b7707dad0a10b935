"""Evaluation metrics computed from labels and scores, in NumPy: what a classifier's single accuracy hides.

* :func:`binary_report`: accuracy, balanced accuracy, precision, recall, F1 and the confusion counts of a
  binary classifier at one threshold.
* :func:`average_precision` (area under the precision-recall curve, step-wise as in the usual "AP") and
  :func:`roc_auc` (area under the ROC curve, ties counted one half), from scores without a threshold.
* :func:`best_threshold`: the threshold that maximizes F1 on a validation split ("threshold moving").
* :func:`balanced_accuracy`: the mean per-class recall of a multi-class confusion matrix.
* :func:`reliability` and :func:`expected_calibration_error`: is a predicted 0.9 right nine times in ten?
* :func:`iou` and :func:`dice`: overlap of two binary masks (for label maps with several classes, see
  ``segmentation.mean_iou``).

Conventions: labels are integers (binary: 1 = the positive, usually the minority class); scores and
probabilities are floats in ``[0, 1]`` (a higher score means "more positive"); every metric is a fraction in
``[0, 1]``; a metric that divides by zero (no positive prediction, no positive example) is NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _binary_inputs(y_true, scores) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim != 1 or s.shape != y.shape or y.size == 0:
        raise ValueError(f"y_true, scores: need two non-empty 1-D arrays of equal length, got {y.shape} and {s.shape}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("y_true: binary labels must be 0 or 1")
    if not np.isfinite(s).all():
        raise ValueError("scores: must be finite")
    return y.astype(np.int64), s


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b else float("nan")


@dataclass(frozen=True)
class BinaryReport:
    """Metrics of a binary classifier at one threshold (fractions; NaN where undefined).

    Attributes:
        threshold: scores ``>= threshold`` are predicted positive.
        tp, fp, fn, tn: confusion counts (true/false positives/negatives).
        accuracy: (tp + tn) / all.
        balanced_accuracy: mean of the recalls of both classes, (tp/(tp+fn) + tn/(tn+fp)) / 2.
        precision: tp / (tp + fp), of the examples called positive, the fraction that are.
        recall: tp / (tp + fn), of the positives, the fraction found.
        f1: harmonic mean of precision and recall, 2·tp / (2·tp + fp + fn).
    """

    threshold: float
    tp: int
    fp: int
    fn: int
    tn: int
    accuracy: float
    balanced_accuracy: float
    precision: float
    recall: float
    f1: float


def binary_report(y_true, scores, threshold: float = 0.5) -> BinaryReport:
    """:class:`BinaryReport` of ``scores >= threshold`` against ``y_true`` (0/1)."""
    y, s = _binary_inputs(y_true, scores)
    pred = s >= threshold
    tp = int(np.sum(pred & (y == 1)))
    fp = int(np.sum(pred & (y == 0)))
    fn = int(np.sum(~pred & (y == 1)))
    tn = int(np.sum(~pred & (y == 0)))
    recall = _ratio(tp, tp + fn)
    specificity = _ratio(tn, tn + fp)
    return BinaryReport(
        threshold=float(threshold), tp=tp, fp=fp, fn=fn, tn=tn,
        accuracy=(tp + tn) / y.size,
        balanced_accuracy=float(np.nanmean([recall, specificity])),
        precision=_ratio(tp, tp + fp), recall=recall, f1=_ratio(2 * tp, 2 * tp + fp + fn),
    )


def average_precision(y_true, scores) -> float:
    """Area under the precision-recall curve as the step sum ``Σ (R_k − R_{k−1}) · P_k`` over thresholds.

    The thresholds are the distinct scores, from the highest down (tied scores enter together). This is the
    non-interpolated "AP" of information retrieval; a random classifier scores about the positive fraction.
    Raises ValueError if there is no positive example.
    """
    y, s = _binary_inputs(y_true, scores)
    n_pos = int(y.sum())
    if n_pos == 0:
        raise ValueError("y_true: average precision needs at least one positive example")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s)), y.size - 1]  # index of the last element of each score
    tp = np.cumsum(y)[last_of_tie]
    predicted = last_of_tie + 1
    precision = tp / predicted
    recall = tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def roc_auc(y_true, scores) -> float:
    """Area under the ROC curve: the probability that a random positive scores above a random negative
    (ties count one half), computed from ranks. Raises ValueError unless both classes are present."""
    y, s = _binary_inputs(y_true, scores)
    n_pos, n_neg = int(y.sum()), int((1 - y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("y_true: ROC AUC needs both classes")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(y.size, dtype=np.float64)
    sorted_s = s[order]
    i = 0
    while i < y.size:  # average ranks over ties
        j = i
        while j + 1 < y.size and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def best_threshold(y_true, scores) -> float:
    """The threshold among the distinct scores that maximizes F1 (ties: the highest threshold).

    Choose it on a validation split, then apply it to the test split ("threshold moving").
    """
    y, s = _binary_inputs(y_true, scores)
    if y.sum() == 0:
        raise ValueError("y_true: choosing a threshold for F1 needs at least one positive example")
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s_sorted)), y.size - 1]
    tp = np.cumsum(y_sorted)[last_of_tie]
    predicted = last_of_tie + 1
    f1 = 2 * tp / (predicted + y.sum())
    return float(s_sorted[last_of_tie][int(np.argmax(f1))])  # argmax takes the first: the highest score


def balanced_accuracy(confusion) -> float:
    """Mean per-class recall of a confusion matrix (rows: true class, columns: predicted), over the classes
    that occur. Equals accuracy when every class has the same number of examples."""
    c = np.asarray(confusion, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] != c.shape[1] or c.size == 0:
        raise ValueError(f"confusion: need a square matrix, got shape {c.shape}")
    support = c.sum(axis=1)
    if not (support > 0).any():
        raise ValueError("confusion: the matrix is empty")
    return float(np.mean(np.diag(c)[support > 0] / support[support > 0]))


@dataclass(frozen=True)
class Reliability:
    """Per-bin confidence and accuracy of the predicted class (bins of equal width over ``[0, 1]``).

    Attributes:
        edges: ``bins + 1`` bin edges.
        confidence: mean top probability in each bin (NaN for an empty bin).
        accuracy: fraction of correct predictions in each bin (NaN for an empty bin).
        count: examples in each bin.
    """

    edges: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray


def _top_class(probabilities, labels) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels)
    if p.ndim == 1:  # binary: probability of class 1
        p = np.stack([1 - p, p], axis=1)
    if p.ndim != 2 or y.shape != (p.shape[0],) or p.shape[0] == 0:
        raise ValueError(f"probabilities, labels: need [N, K] (or [N]) and [N], got {p.shape} and {y.shape}")
    if (p < 0).any() or (p > 1).any():
        raise ValueError("probabilities: must lie in [0, 1]")
    return p.max(axis=1), (p.argmax(axis=1) == y).astype(np.float64)


def reliability(probabilities, labels, bins: int = 10) -> Reliability:
    """:class:`Reliability` of the predicted class's probability.

    Args:
        probabilities: ``[N, K]`` class probabilities, or ``[N]`` probabilities of class 1 (binary).
        labels: ``[N]`` true classes.
        bins: number of equal-width confidence bins over ``[0, 1]``.
    """
    if bins < 1:
        raise ValueError(f"bins={bins!r}: must be at least 1")
    confidence, correct = _top_class(probabilities, labels)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.bincount(which, weights=confidence, minlength=bins) / count
        acc = np.bincount(which, weights=correct, minlength=bins) / count
    return Reliability(edges, conf, acc, count)


def expected_calibration_error(probabilities, labels, bins: int = 10) -> float:
    """ECE: the mean over bins of ``|accuracy − confidence|``, weighted by the fraction of examples in each bin
    (Guo et al., 2017, with equal-width bins). 0 for a perfectly calibrated classifier."""
    r = reliability(probabilities, labels, bins)
    filled = r.count > 0
    return float(np.sum(r.count[filled] * np.abs(r.accuracy[filled] - r.confidence[filled])) / r.count.sum())


# ----------------------------------------------------------------------------------------- segmentation


def _masks(a, b) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"a, b: need two non-empty masks of the same shape, got {a.shape} and {b.shape}")
    return a, b


def iou(a, b) -> float:
    """Intersection over union (Jaccard index) of two binary masks; NaN when both are empty."""
    a, b = _masks(a, b)
    return _ratio(np.sum(a & b), np.sum(a | b))


def dice(a, b) -> float:
    """Dice coefficient (F1 of the pixels) 2|A∩B| / (|A| + |B|) of two binary masks; NaN when both are empty."""
    a, b = _masks(a, b)
    return _ratio(2 * np.sum(a & b), np.sum(a) + np.sum(b))
