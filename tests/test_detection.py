"""Tests of cnn_helpers.detection against hand-computed boxes, IoUs and precision-recall curves."""

from __future__ import annotations

import numpy as np
import pytest

from cnn_helpers import detection, segmentation


def test_iou_by_hand():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[0, 0, 10, 10], [5, 5, 15, 15], [20, 20, 30, 30], [0, 0, 10, 5]])
    assert np.allclose(detection.iou(a, b), [[1, 25 / 175, 0, 0.5]])


def test_boxes_from_instances():
    masks = np.zeros((1, 8, 8), np.uint8)
    instances = np.zeros((1, 8, 8), np.uint8)
    masks[0, 1:3, 2:6], instances[0, 1:3, 2:6] = 2, 1
    masks[0, 5:8, 0:1], instances[0, 5:8, 0:1] = 3, 2
    (boxes,) = detection.boxes_from_instances(masks, instances)
    assert boxes.tolist() == [[1, 2, 3, 6, 2], [5, 0, 8, 1, 3]]


def test_encode_decode_round_trip_and_shared_cells():
    boxes = [np.array([[0, 0, 8, 8, 1], [16, 20, 32, 30, 2], [1, 1, 6, 7, 3]], np.float32)]
    targets, lost = detection.encode_grid(boxes, image_size=32, grid=4)
    assert lost == 1  # boxes 0 and 2 both have their centre in cell (0, 0); the larger is kept
    assert targets[0, ..., 0].sum() == 2
    assert targets[0, 0, 0, 5] == 1
    decoded = detection.decode_grid(targets[..., 0], targets[..., 1:5], targets[..., 5], 32, threshold=0.5)[0]
    assert sorted(map(tuple, decoded[:, :5].round(4).tolist())) == [(0, 0, 8, 8, 1), (16, 20, 32, 30, 2)]


def test_nms_keeps_the_best_of_overlapping_boxes_per_class():
    det = np.array([
        [0, 0, 10, 10, 1, 0.9],
        [1, 1, 11, 11, 1, 0.8],  # overlaps the first (IoU 0.68): dropped
        [1, 1, 11, 11, 2, 0.7],  # other class: kept
        [20, 20, 30, 30, 1, 0.6],
    ])
    kept = detection.nms(det, 0.5)
    assert kept[:, 5].tolist() == [0.9, 0.7, 0.6]
    assert len(detection.nms(det, 0.9)) == 4


def test_average_precision_by_hand():
    truths = [np.array([[0, 0, 10, 10, 1], [20, 20, 30, 30, 1]])]
    perfect = [np.array([[0, 0, 10, 10, 1, 0.9], [20, 20, 30, 30, 1, 0.8]])]
    assert detection.average_precision(perfect, truths, 1) == pytest.approx(1.0)
    # a false positive ranked first, then the two hits: precision 1/2 and 2/3 at recalls 1/2 and 1; the
    # interpolated precision at recall 1/2 is the best at any higher recall, 2/3
    ranked = [np.array([[50, 50, 60, 60, 1, 0.95], [0, 0, 10, 10, 1, 0.9], [20, 20, 30, 30, 1, 0.8]])]
    assert detection.average_precision(ranked, truths, 1) == pytest.approx(2 / 3)
    # hit, false positive, hit: precision 1 at recall 1/2, 2/3 at recall 1
    mixed = [np.array([[0, 0, 10, 10, 1, 0.9], [50, 50, 60, 60, 1, 0.85], [20, 20, 30, 30, 1, 0.8]])]
    assert detection.average_precision(mixed, truths, 1) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    # a duplicate of a matched box is a false positive
    dup = [np.array([[0, 0, 10, 10, 1, 0.9], [0, 0, 10, 10, 1, 0.85]])]
    assert detection.average_precision(dup, truths, 1) == pytest.approx(0.5)
    assert np.isnan(detection.average_precision(perfect, truths, 2))
    # VOC matching: a detection is compared with the true box it overlaps most; if that box is already
    # matched it is a false positive, even when it overlaps another, unmatched box enough (greedy matching
    # to the best unmatched box would count it as a hit and give 1.0 here)
    close = [np.array([[0, 0, 10, 10, 1], [0, 2, 10, 12, 1]])]
    shifted = [np.array([[0, 0, 10, 10, 1, 0.9], [0, 0.5, 10, 10.5, 1, 0.8]])]  # 2nd: IoU .905 vs .739
    assert detection.average_precision(shifted, close, 1) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="iou_threshold"):
        detection.average_precision(perfect, truths, 1, iou_threshold=0)


def test_boxes_of_generated_shapes_fit_their_pixels():
    _, masks, instances = segmentation.make_dataset(5, size=32, seed=0, return_instances=True)
    boxes = detection.boxes_from_instances(masks, instances)
    for mask, box_rows in zip(masks, boxes):
        for y0, x0, y1, x1, label in box_rows.astype(int):
            assert (mask[y0:y1, x0:x1] == label).any()
            assert y1 <= 32 and x1 <= 32 and y0 < y1 and x0 < x1


def test_grid_loss_is_lower_for_the_right_answer():
    targets, _ = detection.encode_grid([np.array([[0, 0, 8, 8, 1]], np.float32)], 16, 2)
    logit = lambda p: np.log(p / (1 - p))  # noqa: E731
    good = np.zeros((1, 2, 2, 9), np.float32)
    good[..., 0] = -6
    good[0, 0, 0, 0] = 6
    good[0, 0, 0, 1:5] = logit(np.clip(targets[0, 0, 0, 1:5], 0.01, 0.99))
    good[0, 0, 0, 5 + 1] = 6
    bad = good.copy()
    bad[0, 0, 0, 5 + 1], bad[0, 0, 0, 5 + 2] = 0, 6
    assert float(detection.grid_loss(targets, good)) < float(detection.grid_loss(targets, bad))
