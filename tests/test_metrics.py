import ast
import contextlib
import io

import numpy as np
import pytest

from wildbench_assets.lib.metrics import coco_map, image_class, image_level, iou_xyxy, mean_matched_iou, thesis_iou

from .conftest import shared_path


def fixture(seed: int):
    """Several classes, crowded images (many overlapping animals), empties, crowd regions, duplicates,
    misses and low-confidence junk."""
    rng = np.random.default_rng(seed)
    images = [{"id": i, "width": 640, "height": 480} for i in range(1, 41)]
    gts, dts = [], []
    for image in images:
        if image["id"] % 7 == 0:
            continue  # empty image: predictions here are pure false positives
        for _ in range(rng.integers(1, 9 if image["id"] % 5 == 0 else 3)):
            x, y = rng.uniform(0, 500), rng.uniform(0, 380)
            w, h = rng.uniform(10, 140), rng.uniform(10, 100)
            gts.append({"id": len(gts) + 1, "image_id": image["id"], "category_id": int(rng.integers(1, 5)),
                        "bbox": [x, y, w, h], "area": w * h, "iscrowd": int(rng.random() < 0.05)})
    for g in gts:
        if rng.random() < 0.85:
            x, y, w, h = g["bbox"]
            jitter = rng.normal(0, 6, 4)
            cat = g["category_id"] if rng.random() < 0.9 else int(rng.integers(1, 5))
            dts.append({"image_id": g["image_id"], "category_id": cat, "score": float(rng.uniform(0.05, 1)),
                        "bbox": [x + jitter[0], y + jitter[1], max(2, w + jitter[2]), max(2, h + jitter[3])]})
            if rng.random() < 0.2:  # a duplicate
                dts.append({**dts[-1], "score": float(rng.uniform(0, 0.5))})
    for image in images:
        for _ in range(rng.integers(0, 3)):  # junk
            dts.append({"image_id": image["id"], "category_id": int(rng.integers(1, 5)),
                        "score": float(rng.uniform(0, 0.3)),
                        "bbox": [float(rng.uniform(0, 600)), float(rng.uniform(0, 440)), 30.0, 30.0]})
    return images, gts, dts


def pycocotools_map(images, gts, dts):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    truth = COCO()
    truth.dataset = {"images": images, "annotations": gts,
                     "categories": [{"id": c} for c in range(1, 5)]}
    with contextlib.redirect_stdout(io.StringIO()):
        truth.createIndex()
        result = truth.loadRes([dict(d) for d in dts])
        evaluation = COCOeval(truth, result, "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    precision = evaluation.eval["precision"][:, :, :, 0, 2]  # area all, maxDets 100
    per_class = {}
    for k, cat in enumerate(evaluation.params.catIds):
        values = precision[:, :, k]
        if (values > -1).any():
            per_class[cat] = float(values[values > -1].mean())
    return evaluation.stats[0], evaluation.stats[1], per_class


def test_average_precision_by_hand():
    """One class, two animals, three detections ranked TP, FP, TP: precision 1 up to recall 0.5, then
    2/3 up to recall 1; COCO's 101-point AP = (51 * 1 + 50 * 2/3) / 101 at every IoU threshold."""
    gts = [{"image_id": "a", "category_id": 1, "bbox": [0, 0, 10, 10]},
           {"image_id": "b", "category_id": 1, "bbox": [20, 20, 10, 10]}]
    dts = [{"image_id": "a", "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9},
           {"image_id": "a", "category_id": 1, "bbox": [50, 50, 10, 10], "score": 0.8},
           {"image_id": "b", "category_id": 1, "bbox": [20, 20, 10, 10], "score": 0.7}]
    expected = (51 + 50 * 2 / 3) / 101
    result = coco_map(gts, dts)
    assert result.map_50 == pytest.approx(expected) and result.map_50_95 == pytest.approx(expected)
    assert coco_map(gts, []).map_50 == 0.0  # nothing predicted: zero, not an error


def test_tied_scores_give_the_reference_number():
    """Detectors write scores rounded to 4 decimals: ties must be ranked exactly as pycocotools does."""
    images, gts, dts = fixture(3)
    for d in dts:
        d["score"] = round(d["score"], 1)  # many ties
    ours = coco_map(gts, dts)
    map_50_95, map_50, _ = pycocotools_map(images, gts, dts)
    assert (ours.map_50_95, ours.map_50) == (map_50_95, map_50)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_map_equals_pycocotools(seed):
    images, gts, dts = fixture(seed)
    ours = coco_map(gts, dts)
    map_50_95, map_50, per_class = pycocotools_map(images, gts, dts)
    assert ours.map_50_95 == pytest.approx(map_50_95, abs=1e-6)
    assert ours.map_50 == pytest.approx(map_50, abs=1e-6)
    assert ours.per_class_ap.keys() == per_class.keys()
    for cat, ap in per_class.items():
        assert ours.per_class_ap[cat] == pytest.approx(ap, abs=1e-6)


def test_map_ranks_by_confidence_and_is_perfect_only_when_earned():
    gts = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10]},
           {"image_id": 2, "category_id": 1, "bbox": [0, 0, 10, 10]}]
    perfect = [{"image_id": i, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9} for i in (1, 2)]
    assert coco_map(gts, perfect).map_50_95 == pytest.approx(1.0)
    junk_first = perfect + [{"image_id": 3, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.99}]
    junk_last = perfect + [{"image_id": 3, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.01}]
    assert coco_map(gts, junk_last).map_50 == pytest.approx(1.0)
    assert coco_map(gts, junk_first).map_50 < 0.9  # the same boxes, ranked worse, score worse


def test_iou_by_hand():
    assert iou_xyxy([[0, 0, 2, 2]], [[1, 1, 3, 3]])[0, 0] == pytest.approx(1 / 7)
    assert iou_xyxy([[0, 0, 1, 1]], [[2, 2, 3, 3]])[0, 0] == 0
    assert iou_xyxy([[0, 0, 4, 2]], [[0, 0, 4, 2]])[0, 0] == pytest.approx(1.0)
    assert iou_xyxy([[0, 0, 4, 4]], [[1, 1, 3, 3]])[0, 0] == pytest.approx(4 / 16)


def test_the_thesis_iou_is_not_an_iou():
    a, b = (0.5, 0.5, 0.2, 0.2), (0.7, 0.5, 0.2, 0.2)  # YOLO cx cy w h: two boxes side by side, no overlap
    assert thesis_iou(a, b) > 0.7  # what the thesis would report as overlap
    corners = lambda c: [c[0] - c[2] / 2, c[1] - c[3] / 2, c[0] + c[2] / 2, c[1] + c[3] / 2]  # noqa: E731
    assert iou_xyxy([corners(a)], [corners(b)])[0, 0] == 0


def test_image_class_is_the_most_confident_detection():
    assert image_class([(3, 0.4), (5, 0.9), (3, 0.8)], 0.5) == 5
    assert image_class([(3, 0.4)], 0.5) == -1


def test_thesis_rows_ship_with_the_package_and_reproduce_its_numbers():
    """No folder beside the checkout needed: the per-image results are package data."""
    from wildbench_assets.assets.models import thesis_rows

    rows = {r["model"]: r for r in thesis_rows()}
    yolo = rows["YOLOv8s (thesis)"]
    assert (round(yolo["precision_weighted"], 4), round(yolo["f1_weighted"], 4)) == (0.9163, 0.9073)
    assert round(rows["Faster R-CNN (thesis)"]["accuracy"], 4) == 0.7633 and yolo["images"] == 24697


def test_thesis_published_image_level_numbers_reproduce():
    values = {}
    for line in (shared_path("reference/seed-results") / "yolo_values.txt").read_text().splitlines():
        key, raw = line.split(":", 1)
        values[key.strip()] = ast.literal_eval(raw.strip())
    metrics = image_level(values["True vals"], values["Pred vals"])
    assert round(metrics.precision_weighted, 4) == 0.9163
    assert round(metrics.recall_weighted, 4) == 0.9057
    assert round(metrics.f1_weighted, 4) == 0.9073
    assert round(metrics.accuracy, 4) == 0.9057
    assert -1 in metrics.labels and len(metrics.confusion) == len(metrics.labels)


def test_mean_iou_of_matched_boxes_by_hand():
    gts = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10]},
           {"image_id": 1, "category_id": 1, "bbox": [20, 0, 10, 10]}]
    preds = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 5], "score": 0.9},     # IoU 0.5 with the first
             # first taken: IoU 0 with the second
             {"image_id": 1, "category_id": 1, "bbox": [1, 0, 10, 10], "score": 0.8},
             {"image_id": 1, "category_id": 2, "bbox": [20, 0, 10, 10], "score": 0.99},  # wrong class: no match
             {"image_id": 1, "category_id": 1, "bbox": [20, 0, 10, 8], "score": 0.5}]    # IoU 0.8 with the second
    mean, pairs = mean_matched_iou(gts, preds)
    assert pairs == 2 and mean == pytest.approx((0.5 + 0.8) / 2)
