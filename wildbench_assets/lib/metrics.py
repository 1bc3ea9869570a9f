"""Detection and image-level metrics a benchmark can be trusted with.

- `coco_map`: COCO bbox evaluation (mAP@[.5:.95], mAP@.5, per-class AP), re-implemented in numpy
  step for step after pycocotools' `evaluateImg` + `accumulate` (greedy matching by confidence,
  101-point interpolated precision envelope, at most 100 detections per image and class); tested equal
  to pycocotools to 1e-6. Every prediction is kept and ranked: no threshold.
- `iou_xyxy`: intersection over union of corner boxes, in one coordinate system, no "+1".
- `image_level`: the thesis's definition (an image's class is its most confident detection, empty
  when none is above the threshold), scored with scikit-learn.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)
MAX_DETS = 100
EMPTY = -1


def iou_xyxy(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (n, 4) and (m, 4) corner boxes -> (n, m)."""
    a, b = np.asarray(a, dtype=float).reshape(-1, 4), np.asarray(b, dtype=float).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _iou_xywh(dt: np.ndarray, gt: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """pycocotools' bbox IoU: xywh boxes; against a crowd box, intersection over the detection's area."""
    d = np.column_stack([dt[:, 0], dt[:, 1], dt[:, 0] + dt[:, 2], dt[:, 1] + dt[:, 3]])
    g = np.column_stack([gt[:, 0], gt[:, 1], gt[:, 0] + gt[:, 2], gt[:, 1] + gt[:, 3]])
    x1 = np.maximum(d[:, None, 0], g[None, :, 0])
    y1 = np.maximum(d[:, None, 1], g[None, :, 1])
    x2 = np.minimum(d[:, None, 2], g[None, :, 2])
    y2 = np.minimum(d[:, None, 3], g[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_d = dt[:, 2] * dt[:, 3]
    area_g = gt[:, 2] * gt[:, 3]
    union = np.where(crowd[None, :], area_d[:, None], area_d[:, None] + area_g[None, :] - inter)
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


@dataclass(frozen=True)
class DetectionMetrics:
    map_50_95: float
    map_50: float
    per_class_ap: dict[int, float]      # AP@[.5:.95] per category present in the ground truth
    per_class_ap50: dict[int, float]
    recall_50_95: float


def _match_image(gt: list[dict], dt: list[dict]):
    """pycocotools evaluateImg for one image and class, area 'all': (dt scores, matches, dt ignore, gt ignore)."""
    gt_ignore = np.array([bool(g.get("iscrowd", 0)) for g in gt], dtype=bool)  # COCOeval: ignore = iscrowd
    order = np.argsort(gt_ignore, kind="mergesort")
    gt = [gt[i] for i in order]
    gt_ignore = gt_ignore[order]
    crowd = np.array([bool(g.get("iscrowd", 0)) for g in gt], dtype=bool)
    dt_order = np.argsort([-d["score"] for d in dt], kind="mergesort")[:MAX_DETS]
    dt = [dt[i] for i in dt_order]
    t_count, d_count, g_count = len(IOU_THRESHOLDS), len(dt), len(gt)
    gt_matched = np.zeros((t_count, g_count))
    dt_matched = np.zeros((t_count, d_count))
    dt_ignore = np.zeros((t_count, d_count), dtype=bool)
    if d_count and g_count:
        ious = _iou_xywh(np.array([d["bbox"] for d in dt], float), np.array([g["bbox"] for g in gt], float), crowd)
        for t, threshold in enumerate(IOU_THRESHOLDS):
            for di in range(d_count):
                best = min(threshold, 1 - 1e-10)
                m = -1
                for gi in range(g_count):
                    if gt_matched[t, gi] > 0 and not crowd[gi]:
                        continue
                    if m > -1 and not gt_ignore[m] and gt_ignore[gi]:
                        break
                    if ious[di, gi] < best:
                        continue
                    best, m = ious[di, gi], gi
                if m == -1:
                    continue
                dt_ignore[t, di] = gt_ignore[m]
                dt_matched[t, di] = 1
                gt_matched[t, m] = 1
    return np.array([d["score"] for d in dt]), dt_matched, dt_ignore, gt_ignore


def coco_map(ground_truth: list[dict], predictions: list[dict]) -> DetectionMetrics:
    """`ground_truth`: dicts image_id, category_id, bbox [x, y, w, h] (+ iscrowd: ignored, as in COCO);
    `predictions`: image_id, category_id, bbox, score. Images without boxes need no entry."""
    gts, dts = defaultdict(list), defaultdict(list)
    for g in ground_truth:
        gts[(g["image_id"], g["category_id"])].append(g)
    for d in predictions:
        dts[(d["image_id"], d["category_id"])].append(d)
    categories = sorted({c for _, c in gts} | {c for _, c in dts})
    images = sorted({i for i, _ in gts} | {i for i, _ in dts}, key=str)
    precision = -np.ones((len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS), len(categories)))
    recall = -np.ones((len(IOU_THRESHOLDS), len(categories)))
    for k, category in enumerate(categories):
        per_image = [_match_image(gts.get((i, category), []), dts.get((i, category), []))
                     for i in images if (i, category) in gts or (i, category) in dts]
        gt_ignore = np.concatenate([p[3] for p in per_image]) if per_image else np.zeros(0, bool)
        positives = int(np.count_nonzero(~gt_ignore))
        if positives == 0:
            continue
        scores = np.concatenate([p[0] for p in per_image])
        order = np.argsort(-scores, kind="mergesort")
        matched = np.concatenate([p[1] for p in per_image], axis=1)[:, order]
        ignored = np.concatenate([p[2] for p in per_image], axis=1)[:, order]
        tps = np.logical_and(matched, ~ignored)
        fps = np.logical_and(~matched.astype(bool), ~ignored)
        tp_sum = np.cumsum(tps, axis=1).astype(float)
        fp_sum = np.cumsum(fps, axis=1).astype(float)
        for t, (tp, fp) in enumerate(zip(tp_sum, fp_sum)):
            n = len(tp)
            rc = tp / positives
            pr = tp / (fp + tp + np.spacing(1))
            recall[t, k] = rc[-1] if n else 0
            pr = pr.tolist()
            for i in range(n - 1, 0, -1):  # precision envelope
                if pr[i] > pr[i - 1]:
                    pr[i - 1] = pr[i]
            q = np.zeros(len(RECALL_THRESHOLDS))
            indices = np.searchsorted(rc, RECALL_THRESHOLDS, side="left")
            for ri, pi in enumerate(indices):
                if pi < n:
                    q[ri] = pr[pi]
            precision[t, :, k] = q

    def mean_valid(values: np.ndarray) -> float:
        valid = values[values > -1]
        return float(valid.mean()) if valid.size else -1.0

    per_class = {int(c): mean_valid(precision[:, :, k]) for k, c in enumerate(categories) if recall[0, k] > -1}
    per_class50 = {int(c): mean_valid(precision[0, :, k]) for k, c in enumerate(categories) if recall[0, k] > -1}
    return DetectionMetrics(mean_valid(precision), mean_valid(precision[0]), per_class, per_class50,
                            mean_valid(recall))


@dataclass(frozen=True)
class ImageLevelMetrics:
    accuracy: float
    precision_weighted: float
    recall_weighted: float
    f1_weighted: float
    precision_macro: float
    recall_macro: float
    f1_macro: float
    per_class_f1: dict[int, float]
    labels: list[int]
    confusion: list[list[int]]


def image_level(truth: list[int], predicted: list[int]) -> ImageLevelMetrics:
    """Classification of images (class index, -1 = empty), as the thesis scored its models."""
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    if len(truth) != len(predicted):
        raise ValueError(f"{len(truth)} true labels but {len(predicted)} predictions")
    labels = sorted(set(truth) | set(predicted))
    weighted = precision_recall_fscore_support(truth, predicted, average="weighted", zero_division=0)
    macro = precision_recall_fscore_support(truth, predicted, average="macro", zero_division=0)
    _p, _r, f1, _s = precision_recall_fscore_support(truth, predicted, labels=labels, zero_division=0)
    return ImageLevelMetrics(
        accuracy=float(accuracy_score(truth, predicted)),
        precision_weighted=float(weighted[0]), recall_weighted=float(weighted[1]), f1_weighted=float(weighted[2]),
        precision_macro=float(macro[0]), recall_macro=float(macro[1]), f1_macro=float(macro[2]),
        per_class_f1={int(label): float(v) for label, v in zip(labels, f1)},
        labels=labels, confusion=confusion_matrix(truth, predicted, labels=labels).tolist(),
    )


def image_class(detections: list[tuple[int, float]], threshold: float) -> int:
    """The thesis's rule: the class of the most confident detection at or above `threshold`, else empty."""
    above = [(conf, cls) for cls, conf in detections if conf >= threshold]
    return max(above)[1] if above else EMPTY


def thesis_iou(yolo_a: tuple[float, float, float, float], yolo_b: tuple[float, float, float, float]) -> float:
    """The thesis's published "IoU", reproduced to explain its numbers: YOLO (cx, cy, w, h) boxes
    treated as corners (x1, y1, x2, y2), with a one-pixel "+1" on normalised coordinates. Not an IoU."""
    ax1, ay1, ax2, ay2 = yolo_a
    bx1, by1, bx2, by2 = yolo_b
    inter = max(0, min(ax2, bx2) - max(ax1, bx1) + 1) * max(0, min(ay2, by2) - max(ay1, by1) + 1)
    area_a = (ax2 - ax1 + 1) * (ay2 - ay1 + 1)
    area_b = (bx2 - bx1 + 1) * (by2 - by1 + 1)
    return inter / float(area_a + area_b - inter)


def mean_matched_iou(ground_truth: list[dict], predictions: list[dict],
                     iou_threshold: float = 0.5) -> tuple[float, int]:
    """(mean IoU, matched pairs): per image and class, predictions in confidence order each take the
    unmatched ground-truth box they overlap most, when that IoU reaches the threshold (COCO's matching
    at one threshold). Boxes are [x, y, w, h] in one pixel space; crowd regions are left out."""
    gts, dts = defaultdict(list), defaultdict(list)
    for g in ground_truth:
        if not g.get("iscrowd"):
            gts[(g["image_id"], g["category_id"])].append(g["bbox"])
    for d in predictions:
        dts[(d["image_id"], d["category_id"])].append(d)
    matched: list[float] = []
    for key, truth in gts.items():
        found = sorted(dts.get(key, []), key=lambda d: -d["score"])[:MAX_DETS]
        if not found:
            continue
        ious = _iou_xywh(np.array([d["bbox"] for d in found], float), np.array(truth, float),
                         np.zeros(len(truth), bool))
        taken = np.zeros(len(truth), bool)
        for row in ious:
            row = np.where(taken, -1, row)
            best = int(row.argmax())
            if row[best] >= iou_threshold:
                taken[best] = True
                matched.append(float(row[best]))
    return (float(np.mean(matched)) if matched else 0.0), len(matched)
