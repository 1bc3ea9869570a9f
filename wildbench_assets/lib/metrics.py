"""Detection and image-level metrics a benchmark can be trusted with.

- `coco_map`: COCO bbox evaluation (mAP@[.5:.95], mAP@.5, per-class AP) by pycocotools itself: the
  reference numbers, ties in confidence included. Every prediction is kept and ranked: no threshold.
- `iou_xyxy`: intersection over union of corner boxes, in one coordinate system, no "+1".
- `image_level`: the thesis's definition (an image's class is its most confident detection, empty
  when none is above the threshold), scored with scikit-learn.
"""

from __future__ import annotations

import contextlib
import io
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

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


def image_id_sort_key(key) -> tuple:
    """Image ids as pycocotools sorts them: numbers numerically (then anything else as text)."""
    return (0, key, "") if isinstance(key, int) else (1, 0, str(key))


def coco_map(ground_truth: list[dict], predictions: list[dict], image_order: list | None = None) -> DetectionMetrics:
    """COCO bbox evaluation by pycocotools itself (area "all", at most 100 detections per image), so the
    numbers are the reference numbers, ties in confidence included. `ground_truth`: dicts image_id,
    category_id, bbox [x, y, w, h] (+ iscrowd: ignored regions, as in COCO); `predictions`: image_id,
    category_id, bbox, score. Images without boxes need no entry. Confidence ties are broken by image
    order, as pycocotools does: `image_order` (the truth file's images sorted by id), else the ids sorted
    (numbers numerically). Categories without ground truth are left out of the means (-1 when none has any)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    categories = sorted({g["category_id"] for g in ground_truth} | {d["category_id"] for d in predictions})
    seen = {g["image_id"] for g in ground_truth} | {d["image_id"] for d in predictions}
    ordered = [i for i in (image_order or []) if i in seen]
    image_ids = ordered + sorted(seen - set(ordered), key=image_id_sort_key)
    index = {image: i + 1 for i, image in enumerate(image_ids)}  # pycocotools wants one id type
    truth = COCO()
    truth.dataset = {
        "images": [{"id": i} for i in index.values()],
        "categories": [{"id": c} for c in categories],
        "annotations": [{"id": n + 1, "image_id": index[g["image_id"]], "category_id": g["category_id"],
                         "bbox": [float(v) for v in g["bbox"]], "area": float(g["bbox"][2]) * float(g["bbox"][3]),
                         "iscrowd": int(g.get("iscrowd", 0))} for n, g in enumerate(ground_truth)],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        truth.createIndex()
        if not predictions:  # loadRes cannot take an empty list: every class with ground truth scores 0
            with_truth = sorted({g["category_id"] for g in ground_truth if not g.get("iscrowd")})
            zero = {c: 0.0 for c in with_truth}
            return DetectionMetrics(0.0 if zero else -1.0, 0.0 if zero else -1.0, zero, dict(zero),
                                    0.0 if zero else -1.0)
        result = truth.loadRes([{"image_id": index[d["image_id"]], "category_id": d["category_id"],
                                 "bbox": [float(v) for v in d["bbox"]], "score": float(d["score"])}
                                for d in predictions])
        evaluation = COCOeval(truth, result, "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
    precision = evaluation.eval["precision"][:, :, :, 0, -1]  # [iou, recall, class], area all, 100 detections
    recall = evaluation.eval["recall"][:, :, 0, -1]

    def mean_valid(values: np.ndarray) -> float:
        valid = values[values > -1]
        return float(valid.mean()) if valid.size else -1.0

    cats = evaluation.params.catIds
    present = [k for k in range(len(cats)) if recall[0, k] > -1]
    per_class = {int(cats[k]): mean_valid(precision[:, :, k]) for k in present}
    per_class50 = {int(cats[k]): mean_valid(precision[0, :, k]) for k in present}
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
