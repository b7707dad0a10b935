"""Object detection on a grid, without anchors (YOLOv1-style): boxes, targets, decoding, NMS and AP.

A fully convolutional network looks at an image and outputs, for every cell of an ``S × S`` grid, a score
"an object's centre is in this cell", the box (centre offset within the cell, height and width) and a
class. This module turns boxes into such targets and back, suppresses duplicates (non-maximum suppression)
and scores detections with the average precision (AP) at an IoU threshold.

Boxes are ``(y0, x0, y1, x1)`` in pixels, ``y1``/``x1`` exclusive (a one-pixel box is ``(y, x, y+1, x+1)``).
Grid targets have :data:`TARGET_CHANNELS` channels: objectness (0/1), centre offset ``(dy, dx)`` within the
cell (fractions of a cell, in [0, 1)), height and width (fractions of the image), class index.
"""

from __future__ import annotations

from typing import Any

import numpy as np

TARGET_CHANNELS = 6


def _positive_int(value: Any, argument: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{argument}={value!r}: must be a positive integer")
    return int(value)


def boxes_from_instances(masks: np.ndarray, instances: np.ndarray) -> list[np.ndarray]:
    """The bounding box and class of every visible shape, per image.

    Args:
        masks: ``(n, h, w)`` class per pixel (0: background), as ``segmentation.make_dataset`` returns.
        instances: ``(n, h, w)`` shape index per pixel (0: none), its ``return_instances`` array.

    Returns:
        One float array ``(k, 5)`` per image: ``y0, x0, y1, x1`` (pixels, end exclusive) and class, for the
        ``k`` shapes with at least one visible pixel (a shape entirely covered by later ones has no box).
    """
    masks = np.asarray(masks)
    instances = np.asarray(instances)
    if masks.shape != instances.shape or masks.ndim != 3:
        raise ValueError(f"instances: shape {instances.shape} must equal masks' {masks.shape}, (n, h, w)")
    result = []
    for mask, inst in zip(masks, instances):
        rows = []
        for k in np.unique(inst[inst > 0]):
            ys, xs = np.nonzero(inst == k)
            label = np.bincount(mask[ys, xs]).argmax()
            rows.append((ys.min(), xs.min(), ys.max() + 1, xs.max() + 1, label))
        result.append(np.asarray(rows, np.float32).reshape(-1, 5))
    return result


def iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box of ``boxes_a`` ``(m, 4)`` with every box of ``boxes_b`` ``(k, 4)``.

    Returns:
        ``(m, k)`` array in [0, 1]; boxes of zero area have IoU 0 with everything.
    """
    a = np.asarray(boxes_a, np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, np.float64).reshape(-1, 4)
    top = np.maximum(a[:, None, 0], b[None, :, 0])
    left = np.maximum(a[:, None, 1], b[None, :, 1])
    bottom = np.minimum(a[:, None, 2], b[None, :, 2])
    right = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(bottom - top, 0, None) * np.clip(right - left, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def encode_grid(boxes: list[np.ndarray], image_size: int, grid: int) -> tuple[np.ndarray, int]:
    """Grid targets for a batch: each box is assigned to the cell that holds its centre.

    As in YOLOv1, a cell holds one object: when several centres fall in one cell, the largest box is kept
    and the others are lost (counted in the second return value).

    Args:
        boxes: per image, ``(k, 5)`` boxes and classes from :func:`boxes_from_instances`.
        image_size: side of the square images, pixels.
        grid: cells per side; ``image_size`` must be a multiple of it.

    Returns:
        ``targets`` float32 ``(n, grid, grid, TARGET_CHANNELS)`` and the number of boxes lost to shared cells.
    """
    image_size = _positive_int(image_size, "image_size")
    grid = _positive_int(grid, "grid")
    if image_size % grid:
        raise ValueError(f"grid={grid}: image_size {image_size} must be a multiple of it")
    cell = image_size / grid
    targets = np.zeros((len(boxes), grid, grid, TARGET_CHANNELS), np.float32)
    area = np.zeros((len(boxes), grid, grid))
    lost = 0
    for i, image_boxes in enumerate(boxes):
        for y0, x0, y1, x1, label in np.asarray(image_boxes).reshape(-1, 5):
            cy, cx = (y0 + y1) / 2, (x0 + x1) / 2
            row, col = min(int(cy // cell), grid - 1), min(int(cx // cell), grid - 1)
            box_area = (y1 - y0) * (x1 - x0)
            if targets[i, row, col, 0]:
                lost += 1
                if box_area <= area[i, row, col]:
                    continue
            area[i, row, col] = box_area
            targets[i, row, col] = (1, cy / cell - row, cx / cell - col, (y1 - y0) / image_size,
                                    (x1 - x0) / image_size, label)
    return targets, lost


def decode_grid(
    objectness: np.ndarray, boxes: np.ndarray, classes: np.ndarray, image_size: int, threshold: float = 0.05
) -> list[np.ndarray]:
    """Detections from a grid network's outputs, per image.

    Args:
        objectness: ``(n, S, S)`` probabilities that a centre lies in the cell.
        boxes: ``(n, S, S, 4)``: ``dy, dx`` (fraction of a cell), ``h, w`` (fraction of the image).
        classes: ``(n, S, S)`` predicted class index.
        image_size: side of the images, pixels.
        threshold: cells with a lower objectness are dropped.

    Returns:
        One ``(k, 6)`` array per image: ``y0, x0, y1, x1`` (pixels), class, score.
    """
    image_size = _positive_int(image_size, "image_size")
    objectness = np.asarray(objectness)
    if objectness.ndim != 3 or objectness.shape[1] != objectness.shape[2]:
        raise ValueError(f"objectness: must be (n, S, S), got shape {objectness.shape}")
    grid = objectness.shape[1]
    cell = image_size / grid
    rows, cols = np.mgrid[0:grid, 0:grid]
    result = []
    for score, box, label in zip(objectness, np.asarray(boxes), np.asarray(classes)):
        keep = score >= threshold
        cy = (rows[keep] + box[keep, 0]) * cell
        cx = (cols[keep] + box[keep, 1]) * cell
        h, w = box[keep, 2] * image_size, box[keep, 3] * image_size
        result.append(np.stack([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2, label[keep], score[keep]], 1))
    return result


def nms(detections: np.ndarray, iou_threshold: float = 0.5) -> np.ndarray:
    """Non-maximum suppression per class: keep the best-scoring box, drop boxes of its class that overlap it
    by more than ``iou_threshold``, repeat.

    Args:
        detections: ``(k, 6)``: ``y0, x0, y1, x1``, class, score.

    Returns:
        The kept rows, by decreasing score.
    """
    if not 0 <= iou_threshold <= 1:
        raise ValueError(f"iou_threshold={iou_threshold!r}: must be in [0, 1]")
    detections = np.asarray(detections, np.float64).reshape(-1, 6)
    order = np.argsort(-detections[:, 5], kind="stable")
    detections = detections[order]
    keep = np.ones(len(detections), bool)
    for i in range(len(detections)):
        if not keep[i]:
            continue
        same = (detections[:, 4] == detections[i, 4]) & keep
        same[: i + 1] = False
        overlap = iou(detections[i, :4], detections[same, :4])[0]
        keep[np.flatnonzero(same)[overlap > iou_threshold]] = False
    return detections[keep]


def average_precision(
    detections: list[np.ndarray], truths: list[np.ndarray], label: int, iou_threshold: float = 0.5
) -> float:
    """Average precision of one class: the area under its precision–recall curve, computed as the PASCAL
    VOC development kit does from 2010 (all-point interpolation, VOC matching).

    Detections of class ``label`` over all images are sorted by score. Each is compared with the true box
    of that class in its image that it overlaps most (matched or not, as VOC does): it is a true positive
    if that overlap is at least ``iou_threshold`` and that box is not yet matched; otherwise (too little
    overlap, or a duplicate of an already detected box) a false positive. (COCO-style greedy matching to
    the best *unmatched* box would count some of these duplicates as hits.)

    Args:
        detections: per image, ``(k, 6)`` rows ``y0, x0, y1, x1, class, score``.
        truths: per image, ``(m, 5)`` rows ``y0, x0, y1, x1, class``.

    Returns:
        AP in [0, 1]; ``nan`` if the class has no true box.
    """
    if len(detections) != len(truths):
        raise ValueError(f"detections: {len(detections)} images for {len(truths)} images of truths")
    if not 0 < iou_threshold <= 1:
        raise ValueError(f"iou_threshold={iou_threshold!r}: must be in (0, 1]")
    scored = []  # (score, image, box)
    n_true = 0
    for i, (det, truth) in enumerate(zip(detections, truths)):
        det = np.asarray(det).reshape(-1, 6)
        truth = np.asarray(truth).reshape(-1, 5)
        n_true += int((truth[:, 4] == label).sum())
        scored += [(row[5], i, row[:4]) for row in det if row[4] == label]
    if n_true == 0:
        return float("nan")
    scored.sort(key=lambda item: -item[0])
    matched = [np.zeros(len(np.asarray(t).reshape(-1, 5)), bool) for t in truths]
    hits = np.zeros(len(scored))
    for j, (_, i, box) in enumerate(scored):
        truth = np.asarray(truths[i]).reshape(-1, 5)
        candidates = np.flatnonzero(truth[:, 4] == label)
        if not len(candidates):
            continue
        overlaps = iou(box, truth[candidates, :4])[0]
        best = candidates[int(overlaps.argmax())]
        if overlaps.max() >= iou_threshold and not matched[i][best]:
            matched[i][best] = True
            hits[j] = 1
    tp = np.cumsum(hits)
    recall = tp / n_true
    precision = tp / np.arange(1, len(scored) + 1)
    # all-point interpolation: precision made non-increasing, integrated over recall
    recall = np.concatenate([[0.0], recall, [recall[-1] if len(recall) else 0.0]])
    precision = np.concatenate([[0.0], precision, [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.flatnonzero(recall[1:] != recall[:-1])
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def grid_loss(y_true: Any, y_pred: Any) -> Any:
    """Loss of a grid detector, for ``model.compile(loss=...)``.

    ``y_true`` holds the :func:`encode_grid` targets; ``y_pred`` has ``5 + C`` channels: an objectness
    logit, ``dy, dx`` (squashed by a sigmoid into the cell), ``h, w`` (sigmoid: fractions of the image) and
    ``C`` class logits. Binary cross-entropy of objectness over all cells, plus, in the cells that hold an
    object only, five times the squared error of the box and the class cross-entropy (like YOLOv1, whose
    box term is weighted by 5; it uses squared errors throughout and square roots of the sizes).
    """
    from keras import ops

    obj = y_true[..., 0]
    obj_loss = ops.mean(ops.binary_crossentropy(obj, y_pred[..., 0], from_logits=True))
    box_error = ops.sum((ops.sigmoid(y_pred[..., 1:5]) - y_true[..., 1:5]) ** 2, axis=-1)
    labels = ops.cast(y_true[..., 5], "int32")
    class_loss = ops.sparse_categorical_crossentropy(labels, y_pred[..., 5:], from_logits=True)
    n_obj = ops.maximum(ops.sum(obj), 1.0)
    return obj_loss + ops.sum(obj * (5.0 * box_error + class_loss)) / n_obj
