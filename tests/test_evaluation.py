"""Evaluation metrics: hand-computed cases, brute-force definitions, and the argument checks."""

import itertools

import numpy as np
import pytest

from cnn_helpers import evaluation


def test_binary_report_matches_hand_counts():
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    s = np.array([0.9, 0.6, 0.2, 0.7, 0.1, 0.1, 0.3, 0.4])
    r = evaluation.binary_report(y, s, threshold=0.5)
    assert (r.tp, r.fp, r.fn, r.tn) == (2, 1, 1, 4)
    assert r.accuracy == pytest.approx(6 / 8)
    assert r.precision == pytest.approx(2 / 3) and r.recall == pytest.approx(2 / 3)
    assert r.f1 == pytest.approx(2 / 3)
    assert r.balanced_accuracy == pytest.approx((2 / 3 + 4 / 5) / 2)


def test_majority_classifier_accurate_but_useless():
    y = np.r_[np.ones(1), np.zeros(99)].astype(int)
    r = evaluation.binary_report(y, np.zeros(100))
    assert r.accuracy == pytest.approx(0.99)
    assert r.balanced_accuracy == pytest.approx(0.5)
    assert r.recall == 0 and np.isnan(r.precision)


def brute_roc_auc(y, s):
    pos, neg = s[y == 1], s[y == 0]
    wins = [(p > n) + 0.5 * (p == n) for p, n in itertools.product(pos, neg)]
    return float(np.mean(wins))


def brute_average_precision(y, s):
    total, prev_recall = 0.0, 0.0
    for t in sorted(set(s), reverse=True):
        pred = s >= t
        tp = np.sum(pred & (y == 1))
        recall = tp / y.sum()
        total += (recall - prev_recall) * tp / pred.sum()
        prev_recall = recall
    return total


@pytest.mark.parametrize("seed", range(5))
def test_auc_and_ap_match_their_definitions_with_ties(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 40)
    y[:2] = (0, 1)
    s = np.round(rng.random(40) + 0.5 * y, 1)  # coarse scores: many ties
    assert evaluation.roc_auc(y, s) == pytest.approx(brute_roc_auc(y, s))
    assert evaluation.average_precision(y, s) == pytest.approx(brute_average_precision(y, s))


def test_perfect_and_reversed_rankings():
    y = np.array([0, 0, 1, 1])
    assert evaluation.roc_auc(y, [0.1, 0.2, 0.8, 0.9]) == 1
    assert evaluation.roc_auc(y, [0.9, 0.8, 0.2, 0.1]) == 0
    assert evaluation.average_precision(y, [0.1, 0.2, 0.8, 0.9]) == 1
    with pytest.raises(ValueError, match="both classes"):
        evaluation.roc_auc([1, 1], [0.2, 0.3])


def test_best_threshold_maximizes_f1():
    rng = np.random.default_rng(3)
    y = (rng.random(200) < 0.1).astype(int)
    s = rng.random(200) * 0.6 + 0.4 * y
    t = evaluation.best_threshold(y, s)
    best = evaluation.binary_report(y, s, t).f1
    assert all(evaluation.binary_report(y, s, u).f1 <= best + 1e-12 for u in np.unique(s))


def test_balanced_accuracy_of_a_confusion_matrix():
    c = np.array([[8, 2], [1, 1]])
    assert evaluation.balanced_accuracy(c) == pytest.approx((0.8 + 0.5) / 2)
    with pytest.raises(ValueError, match="confusion"):
        evaluation.balanced_accuracy(np.ones((2, 3)))


def test_calibration_of_a_calibrated_and_an_overconfident_classifier():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.5, 1.0, 20_000)
    calibrated = (rng.random(p.size) < p).astype(int)  # class 1 with probability p
    assert evaluation.expected_calibration_error(p, calibrated) < 0.02
    overconfident = (rng.random(p.size) < 0.6).astype(int)
    ece = evaluation.expected_calibration_error(p, overconfident)
    assert ece == pytest.approx(np.mean(p) - 0.6, abs=0.02)
    r = evaluation.reliability(p, calibrated, bins=10)
    assert r.count.sum() == p.size and r.count[:5].sum() == 0


def test_dice_is_a_function_of_iou():
    rng = np.random.default_rng(0)
    for _ in range(20):
        a, b = rng.random((16, 16)) < 0.3, rng.random((16, 16)) < 0.5
        j = evaluation.iou(a, b)
        assert evaluation.dice(a, b) == pytest.approx(2 * j / (1 + j))
    assert np.isnan(evaluation.iou(np.zeros((2, 2)), np.zeros((2, 2))))
    with pytest.raises(ValueError, match="a, b"):
        evaluation.iou(np.ones((2, 2)), np.ones((3, 3)))


def test_argument_checks():
    with pytest.raises(ValueError, match="y_true"):
        evaluation.binary_report([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="y_true, scores"):
        evaluation.binary_report([0, 1], [0.1])
    with pytest.raises(ValueError, match="bins="):
        evaluation.reliability([0.2], [0], bins=0)
    with pytest.raises(ValueError, match="probabilities"):
        evaluation.expected_calibration_error([1.5], [1])
