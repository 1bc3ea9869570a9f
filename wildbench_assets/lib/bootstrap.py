"""How far a score on a small test set can be trusted: bootstrap confidence intervals that resample
whole sequences (bursts), event-level accuracy, and ties between leaderboard rows.

Frames of one burst are near-copies, so a test set of 30 images in 6 bursts holds about 6 independent
observations, not 30: resampling images would give intervals far too narrow. Each resample draws as many
sequences as the test set has, with replacement, and weighs every image by how often its sequence was
drawn (the cluster bootstrap). Intervals are percentile intervals over `RESAMPLES` resamples with a
fixed `SEED`, so a score's interval is the same every time it is computed.

AP on a resample is COCO's (101 recall points, greedy matching per image and class at each IoU
threshold, at most 100 detections per image and class) on the weighted multiset of images: matches are
made once per image (they do not depend on other images), only the accumulation is weighted.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

SEED = 19
RESAMPLES = 1000
LEVEL = 0.95
IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)
MAX_DETS = 100
EMPTY = -1


def sequence_weights(sequences: list[str], resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """(resamples, images): how often each image is in each resample when whole sequences are drawn
    with replacement (as many draws as there are sequences). An image with no sequence is its own."""
    units = [s if s else f"\0image{i}" for i, s in enumerate(sequences)]
    names, unit_of = np.unique(np.asarray(units, dtype=object), return_inverse=True)
    if not len(units):
        return np.zeros((resamples, 0))
    draws = np.random.default_rng(seed).integers(0, len(names), size=(resamples, len(names)))
    counts = np.zeros((resamples, len(names)))
    np.add.at(counts, (np.arange(resamples)[:, None], draws), 1)
    return counts[:, unit_of]


def percentile_interval(values: np.ndarray, level: float = LEVEL) -> tuple[float, float] | None:
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if not values.size:
        return None
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def weighted_accuracy(correct: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Accuracy of each resample (rows of `weights`); NaN for a resample that drew nothing."""
    total = weights.sum(axis=1)
    hits = weights @ np.asarray(correct, dtype=float)
    return np.divide(hits, total, out=np.full(len(total), np.nan), where=total > 0)


def _iou_xywh(d: np.ndarray, g: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """pycocotools' bbox IoU; against a crowd region, intersection over the detection's area."""
    x1 = np.maximum(d[:, None, 0], g[None, :, 0])
    y1 = np.maximum(d[:, None, 1], g[None, :, 1])
    x2 = np.minimum(d[:, None, 0] + d[:, None, 2], g[None, :, 0] + g[None, :, 2])
    y2 = np.minimum(d[:, None, 1] + d[:, None, 3], g[None, :, 1] + g[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_d = (d[:, 2] * d[:, 3])[:, None]
    union = np.where(crowd[None, :], area_d, area_d + (g[:, 2] * g[:, 3])[None, :] - inter)
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


@dataclass(frozen=True)
class _ClassMatches:
    image: np.ndarray         # (n,) image index of each detection, in COCO's ranking order
    tp: np.ndarray            # (iou thresholds, n) 1: matched a box at that threshold
    fp: np.ndarray            # (iou thresholds, n) 1: matched nothing (0 for both: matched a crowd region)
    gt_per_image: np.ndarray  # (images,) boxes of this class per image (crowd regions not counted)


@dataclass(frozen=True)
class DetectionMatches:
    """Every detection matched once (per image, class and IoU threshold); `ap` weighs them per resample."""

    classes: dict[int, _ClassMatches]

    def ap(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mAP@.5, mAP@[.5:.95]) of each resample (rows of `weights`): the mean over classes with at
        least one box in the resample (NaN when no class has one)."""
        at50, at_all = [], []
        for matches in self.classes.values():
            npig = weights @ matches.gt_per_image
            precision = np.zeros((len(weights), len(IOU_THRESHOLDS)))
            for b, w in enumerate(weights):
                if npig[b] <= 0 or not len(matches.image):
                    continue
                wd = w[matches.image]
                tps, fps = np.cumsum(matches.tp * wd, axis=1), np.cumsum(matches.fp * wd, axis=1)
                drawn = tps + fps
                pr = np.divide(tps, drawn, out=np.zeros_like(tps), where=drawn > 0)
                rc = tps / npig[b]
                envelope = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
                n = rc.shape[1]
                for t in range(len(IOU_THRESHOLDS)):  # COCO: the envelope at the first point reaching each recall
                    found = np.searchsorted(rc[t], RECALL_POINTS, side="left")
                    precision[b, t] = np.where(found < n, envelope[t][np.minimum(found, n - 1)], 0.0).mean()
            precision[npig <= 0] = np.nan
            at50.append(precision[:, 0])
            at_all.append(precision.mean(axis=1))
        if not at50:
            nothing = np.full(len(weights), np.nan)
            return nothing, nothing
        with warnings.catch_warnings():  # a resample with no box of any class: NaN, left out of its interval
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(np.column_stack(at50), axis=1), np.nanmean(np.column_stack(at_all), axis=1)


def _match_image(truth: np.ndarray, crowd: np.ndarray, found: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """pycocotools' `evaluateImg` for one image and class (area all): (tp, fp) per threshold and
    detection, detections in confidence order; a detection matched to a crowd region is neither."""
    order = np.argsort(crowd, kind="stable")  # real boxes before crowd regions, as COCO sorts them
    truth, crowd = truth[order], crowd[order]
    ious = _iou_xywh(np.asarray([d["bbox"] for d in found], dtype=float), truth, crowd)
    tp, fp = np.zeros((len(IOU_THRESHOLDS), len(found))), np.zeros((len(IOU_THRESHOLDS), len(found)))
    for t, threshold in enumerate(IOU_THRESHOLDS):
        taken = np.zeros(len(truth), bool)
        for k in range(len(found)):
            best, m = min(threshold, 1 - 1e-10), -1
            for j in range(len(truth)):
                if taken[j] and not crowd[j]:
                    continue
                if m > -1 and not crowd[m] and crowd[j]:
                    break
                if ious[k, j] < best:
                    continue
                best, m = ious[k, j], j
            if m < 0:
                fp[t, k] = 1
            else:
                taken[m] = True
                tp[t, k] = 0 if crowd[m] else 1
    return tp, fp


def match_detections(ground_truth: list[dict], predictions: list[dict], images: list,
                     tie_order: list | None = None) -> DetectionMatches:
    """COCO's matching (area all, crowd regions ignored) of `predictions` (image_id, category_id, bbox
    xywh, score) to `ground_truth` (image_id, category_id, bbox, iscrowd) over `images` (the columns of
    the weights `ap` is given); confidence ties are broken in `tie_order` (COCO's: the truth file's image
    order; default `images`)."""
    index = {image: i for i, image in enumerate(images)}
    rank = {image: i for i, image in enumerate(tie_order or images)}
    by_rank = [rank.get(image, len(rank)) for image in images]
    gts, dts = defaultdict(list), defaultdict(list)
    for g in ground_truth:
        if g["image_id"] in index:
            gts[(g["category_id"], index[g["image_id"]])].append(g)
    for d in predictions:
        if d["image_id"] in index:
            dts[(d["category_id"], index[d["image_id"]])].append(d)
    classes = {}
    # a class with no real box has no AP (COCO leaves it out of the mean)
    for category in sorted({c for (c, _i), boxes in gts.items() if any(not g.get("iscrowd") for g in boxes)}):
        per_image = np.zeros(len(images))
        rows: list[tuple[float, int, int, np.ndarray, np.ndarray]] = []
        for i in range(len(images)):
            boxes = gts.get((category, i), [])
            truth = np.asarray([g["bbox"] for g in boxes], dtype=float).reshape(-1, 4)
            crowd = np.asarray([bool(g.get("iscrowd")) for g in boxes], dtype=bool)
            per_image[i] = int((~crowd).sum())
            found = sorted(dts.get((category, i), []), key=lambda d: -d["score"])[:MAX_DETS]
            if found:
                tp, fp = _match_image(truth, crowd, found)
                rows += [(found[k]["score"], i, k, tp[:, k], fp[:, k]) for k in range(len(found))]
        # COCO: images in their order, then a stable sort on -score
        order = sorted(range(len(rows)), key=lambda n: (-rows[n][0], by_rank[rows[n][1]], rows[n][2]))
        empty = np.zeros((len(IOU_THRESHOLDS), 0))
        classes[category] = _ClassMatches(
            image=np.asarray([rows[n][1] for n in order], dtype=int),
            tp=np.column_stack([rows[n][3] for n in order]) if order else empty,
            fp=np.column_stack([rows[n][4] for n in order]) if order else empty,
            gt_per_image=per_image)
    return DetectionMatches(classes)


def event_outcomes(sequences: list[str], image_classes: list[int], correct: list[bool]) -> dict[str, bool]:
    """Each sequence's event-level outcome, the field's majority vote over a burst (MegaDetector's sequence
    smoothing: deer/deer/elk/deer is a deer): right when more than half of the frames that name an animal
    name the right one (all its frames when none does, i.e. an empty burst called empty). Stated through
    each frame's correctness alone, so it tells a submitter nothing about hidden labels that per-image
    accuracy does not (a class vote against a per-sequence truth would: issue 18's relabelling test)."""
    votes: dict[str, list[bool]] = defaultdict(list)
    fallback: dict[str, list[bool]] = defaultdict(list)
    for sequence, cls, right in zip(sequences, image_classes, correct):
        fallback[sequence].append(bool(right))
        if cls != EMPTY:
            votes[sequence].append(bool(right))
    return {s: sum(v) * 2 > len(v) for s, frames in fallback.items() for v in [votes.get(s) or frames]}


@dataclass(frozen=True)
class Uncertainty:
    """A test set's size in sequences, its event-level accuracy, and 95 % intervals of its headline metrics."""

    sequences: int
    event_accuracy: float | None
    intervals: dict[str, tuple[float, float] | None]  # metric -> (low, high)

    def as_dict(self) -> dict:
        return {"sequences": self.sequences, "event_accuracy": self.event_accuracy,
                **{f"{k}_{side}": None if v is None else v[n]
                   for k, v in self.intervals.items() for n, side in enumerate(("low", "high"))}}


def uncertainty(sequences: list[str], true_classes: list[int], image_classes: list[int],
                matches: DetectionMatches | None, resamples: int = RESAMPLES, seed: int = SEED) -> Uncertainty:
    """Intervals of accuracy, event-level accuracy and (with `matches`) mAP@.5 and mAP@[.5:.95] over the
    images of one test set (lists aligned with `matches`' images), resampling whole sequences."""
    sequences = [s if s else f"\0image{i}" for i, s in enumerate(sequences)]
    weights = sequence_weights(sequences, resamples, seed)
    correct = np.asarray(true_classes) == np.asarray(image_classes)
    outcomes = event_outcomes(sequences, image_classes, list(correct))
    names = sorted(outcomes)
    event_correct = np.asarray([outcomes[s] for s in names], dtype=float)
    # the same draws, counted per sequence: an event's weight is its sequence's draws
    first = {s: i for i, s in reversed(list(enumerate(sequences)))}
    event_weights = weights[:, [first[s] for s in names]] if names else np.zeros((resamples, 0))
    intervals = {"accuracy": percentile_interval(weighted_accuracy(correct, weights)),
                 "event_accuracy": percentile_interval(weighted_accuracy(event_correct, event_weights))}
    if matches is not None:
        at50, at_all = matches.ap(weights)
        intervals |= {"map_50": percentile_interval(at50), "map_50_95": percentile_interval(at_all)}
    return Uncertainty(len(names), float(event_correct.mean()) if names else None, intervals)


TIE_METRICS = ("map_50_95", "map_50", "accuracy")  # the ranking's order: the first metric both rows have


def ties(rows: list[dict]) -> list[list[int]]:
    """For each row (dicts with `release` and `<metric>_low`/`_high`), the rows of the same release whose
    95 % interval overlaps its own on the first of `TIE_METRICS` both have an interval of."""
    tied: list[list[int]] = [[] for _ in rows]
    for a, first in enumerate(rows):
        for b, second in enumerate(rows):
            if a == b or first.get("release") != second.get("release"):
                continue
            for metric in TIE_METRICS:
                bounds = [r.get(f"{metric}_{side}") for r in (first, second) for side in ("low", "high")]
                if any(v is None or v != v for v in bounds):
                    continue
                low_a, high_a, low_b, high_b = bounds
                if low_a <= high_b and low_b <= high_a:
                    tied[a].append(b)
                break
    return tied
