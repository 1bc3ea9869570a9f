"""Score predictions against ground truth with the same metrics as the leaderboard.

Truth: a COCO Camera Traps json (images + annotations with absolute-pixel boxes; categories named by
species code, common or scientific name) or an image-level CSV `image_id,label` (species code or `emp`).
Predictions: MegaDetector batch output (format 1.6; `detection_categories` named by species), COCO
results json (`[{image_id, category_id, bbox, score}]`, category ids of the truth file), or an
image-level CSV `image_id,label`. Boxes on both sides give detection metrics (COCO mAP) as well.
"""

from __future__ import annotations

import csv
import io
import json
import math
import posixpath
from dataclasses import asdict, dataclass, field

from wildbench_assets.lib import bootstrap
from wildbench_assets.lib.annotations import Box
from wildbench_assets.lib.inventory import species_aliases
from wildbench_assets.lib.metrics import EMPTY, coco_map, image_class, image_id_sort_key, image_level, mean_matched_iou
from wildbench_assets.taxonomy import EMPTY as EMPTY_SPECIES


class ScoringError(ValueError):
    """A truth or prediction file that cannot be scored, with the reason. `reached_truth`: it failed after
    the truth was read (its outcome may depend on hidden labels: a submission's limit charges it)."""

    reached_truth = False


@dataclass
class Truth:
    labels: dict[str, int]                               # image id -> class index (-1 empty)
    boxes: list[dict] = field(default_factory=list)      # COCO-style ground truth, category = class index + 1
    sizes: dict[str, tuple[int, int]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)       # images by their id in the truth file (COCO's tie order)


@dataclass
class Predictions:
    detections: dict[str, list[tuple[int, float, Box | None]]]  # image id -> (class index, conf, normalised box)
    image_labels: dict[str, int] | None = None                  # image-level CSV
    lists_every_image: bool = True  # COCO results cannot say "looked, found nothing": absent = no detections


def _confidence(value, where: str) -> float:
    """A detection's confidence: a finite number in [0, 1] (NaN, negatives or >1 would corrupt the
    ranking every AP is computed from)."""
    conf = float(value)
    if not math.isfinite(conf) or not 0.0 <= conf <= 1.0:
        raise ScoringError(f"{where}: confidence {value!r} is not a number in [0, 1]")
    return conf


def _bbox(values, where: str) -> list[float]:
    box = [float(v) for v in values]
    if len(box) != 4 or not all(math.isfinite(v) for v in box) or box[2] < 0 or box[3] < 0:
        raise ScoringError(f"{where}: bbox {values!r} is not [x, y, width, height] with finite, non-negative sizes")
    return box


def _key(name: str) -> str:
    """Images are matched by path without extension, or by bare file stem."""
    return posixpath.splitext(str(name).replace("\\", "/"))[0]


def _resolver(class_names: list[str], species: list[tuple[str, str, str]]):
    aliases = species_aliases(species)
    index = {code: i for i, code in enumerate(class_names)}

    def resolve(name: str) -> int:
        key = str(name).strip().lower()
        if key in (EMPTY_SPECIES, "empty", "blank", "-1"):
            return EMPTY
        code = aliases.get(key, str(name).strip())
        if code not in index:
            raise ScoringError(f"unknown class {name!r}; expected a species code of the taxonomy or 'emp'")
        return index[code]

    return resolve


def _csv_labels(text: str, resolve) -> dict[str, int]:
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows or not {"image_id", "label"} <= set(rows[0]):
        raise ScoringError("an image-level CSV needs the header image_id,label")
    labels = {}
    for line, row in enumerate(rows, start=2):
        key = _key(row["image_id"])
        if key in labels:
            raise ScoringError(f"line {line}: image {row['image_id']!r} appears twice")
        labels[key] = resolve(row["label"])
    return labels


def load_truth(text: str, class_names: list[str], species: list[tuple[str, str, str]]) -> Truth:
    resolve = _resolver(class_names, species)
    if text.lstrip().startswith(("{", "[")):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as err:
            raise ScoringError(f"truth is not valid JSON: {err}") from err
        if not isinstance(doc, dict) or "images" not in doc:
            raise ScoringError("truth json must be COCO Camera Traps (with 'images')")
        categories = {c["id"]: resolve(c["name"]) for c in doc.get("categories", [])}
        images = {i["id"]: i for i in doc["images"]}
        labels = {_key(i["file_name"]): EMPTY for i in images.values()}
        sizes = {_key(i["file_name"]): (int(i.get("width") or 0), int(i.get("height") or 0)) for i in images.values()}
        boxes, counts = [], {}
        for a in doc.get("annotations", []):
            if a.get("image_id") not in images:
                raise ScoringError(f"annotation {a.get('id')} names an unknown image {a.get('image_id')!r}")
            key = _key(images[a["image_id"]]["file_name"])
            cls = categories.get(a.get("category_id"))
            if cls is None:
                raise ScoringError(f"annotation {a.get('id')} has an unknown category {a.get('category_id')!r}")
            if cls == EMPTY:
                continue
            counts.setdefault(key, []).append(cls)
            if a.get("bbox"):
                boxes.append({"id": len(boxes) + 1, "image_id": key, "category_id": cls + 1,
                              "bbox": [float(v) for v in a["bbox"]], "iscrowd": int(a.get("iscrowd", 0))})
        for key, classes in counts.items():
            labels[key] = max(set(classes), key=classes.count)
        order = [_key(images[i]["file_name"]) for i in sorted(images, key=image_id_sort_key)]
        return Truth(labels, boxes, sizes, order)
    return Truth(_csv_labels(text, resolve))


def load_predictions(text: str, truth_doc_categories: dict[int, int] | None, class_names: list[str],
                     species: list[tuple[str, str, str]]) -> Predictions:
    resolve = _resolver(class_names, species)
    stripped = text.lstrip()
    if not stripped.startswith(("{", "[")):
        return Predictions({}, _csv_labels(text, resolve))
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise ScoringError(f"predictions are not valid JSON: {err}") from err
    detections: dict[str, list] = {}
    if isinstance(doc, dict) and "images" in doc and "detection_categories" in doc:  # MegaDetector 1.6
        categories = {k: resolve(v) for k, v in doc["detection_categories"].items()}
        for image in doc["images"]:
            key = _key(image["file"])
            if key in detections:  # a second entry would silently replace the first one's detections
                raise ScoringError(f"image {image['file']!r} appears twice in the MegaDetector file")
            if image.get("failure"):
                detections[key] = []
                continue
            found = []
            for d in image.get("detections") or []:
                if d["category"] not in categories:
                    raise ScoringError(f"{image['file']}: category {d['category']!r} not in detection_categories")
                where = f"{image['file']}"
                found.append((categories[d["category"]], _confidence(d["conf"], where),
                              Box.from_md(_bbox(d["bbox"], where))))
            detections[key] = found
        return Predictions(detections)
    if isinstance(doc, list):  # COCO results
        if truth_doc_categories is None:
            raise ScoringError("COCO results need a COCO Camera Traps truth file (for the category ids)")
        for d in doc:
            if not isinstance(d, dict) or not {"image_id", "category_id", "bbox", "score"} <= set(d):
                raise ScoringError("COCO results entries need image_id, category_id, bbox and score")
            if d["category_id"] not in truth_doc_categories:
                raise ScoringError(f"COCO result with unknown category_id {d['category_id']!r}")
            where = f"COCO result for image {d['image_id']!r}"
            detections.setdefault(str(d["image_id"]), []).append(
                (truth_doc_categories[d["category_id"]], _confidence(d["score"], where),
                 tuple(_bbox(d["bbox"], where))))
        return Predictions(detections, lists_every_image=False)
    raise ScoringError("predictions must be MegaDetector batch output 1.6, COCO results json or an image_id,label CSV")


def score(truth_text: str, predictions_text: str, class_names: list[str], species: list[tuple[str, str, str]],
          threshold: float = 0.2, groups: dict[str, set[str]] | None = None,
          public_ids: set[str] | None = None, sequences: dict[str, str] | None = None,
          intervals: tuple[str, ...] = ()) -> dict:
    """Every metric the leaderboard shows, as a JSON-able dict; with `groups` (name -> image keys, e.g.
    the unseen- and seen-camera test sets, or parks), the same metrics for each group under "groups".
    The groups named in `intervals` also get "uncertainty" (`lib.bootstrap`): event-level accuracy and
    95 % bootstrap intervals, resampling the sequences of `sequences` (image key -> sequence id; an
    image without one is its own sequence).
    A file of the wrong shape (missing keys, wrong types, binary data) is a ScoringError naming what is
    wrong, never a traceback. With `public_ids` (a release's public test listing), images are named by
    public id only (`<id>` or `<id>.<ext>`): anything else is refused, and coverage is checked against
    those ids before the truth is read, so a failing file learns nothing the listing does not say."""
    if not isinstance(threshold, int | float) or not 0.0 <= threshold <= 1.0:  # also refuses NaN
        raise ScoringError(f"threshold {threshold!r} is not a number in [0, 1]")
    progress: dict = {}
    try:
        return _score(truth_text, predictions_text, class_names, species, threshold, groups or {}, public_ids,
                      progress, {_key(k): v for k, v in (sequences or {}).items()}, intervals)
    except ScoringError as err:
        err.reached_truth = bool(progress)
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
        what = f"missing key {err}" if isinstance(err, KeyError) else f"{type(err).__name__}: {err}"
        failed = ScoringError(f"a file is not in any accepted shape ({what})")
        failed.reached_truth = bool(progress)
        raise failed from err


def _score(truth_text: str, predictions_text: str, class_names: list[str], species: list[tuple[str, str, str]],
           threshold: float, groups: dict[str, set[str]], public_ids: set[str] | None = None,
           progress: dict | None = None, sequences: dict[str, str] | None = None,
           intervals: tuple[str, ...] = ()) -> dict:
    coco_categories = None
    if truth_text.lstrip().startswith("{"):
        doc = json.loads(truth_text)
        resolve = _resolver(class_names, species)
        coco_categories = {c["id"]: resolve(c["name"]) for c in doc.get("categories", [])}
        id_to_key = {i["id"]: _key(i["file_name"]) for i in doc["images"]}
    predictions = load_predictions(predictions_text, coco_categories, class_names, species)
    if public_ids is not None:
        _check_public_ids(predictions, public_ids)
    elif predictions.detections and coco_categories is not None:  # COCO results use the truth's image ids
        predictions.detections = {id_to_key.get(_coerce(k, id_to_key), k): v for k, v in predictions.detections.items()}
    (progress if progress is not None else {})["reached_truth"] = True
    truth = load_truth(truth_text, class_names, species)
    if public_ids is not None:  # pycocotools' tie order: public-id order, whatever ids an older truth has
        truth.order = sorted(truth.order)
    if not predictions.lists_every_image:
        predictions.detections = {k: predictions.detections.get(k, []) for k in truth.labels} | predictions.detections
    predicted_keys = set(predictions.image_labels or predictions.detections)
    missing = sorted(set(truth.labels) - predicted_keys)
    unknown = sorted(predicted_keys - set(truth.labels))
    if missing or unknown:
        raise ScoringError(f"predictions and truth disagree: {len(missing)} truth images without a prediction "
                           f"(e.g. {missing[:3]}), {len(unknown)} predicted images not in the truth "
                           f"(e.g. {unknown[:3]})")
    result = _metrics(truth, predictions, class_names, threshold)
    if groups:
        result["groups"] = {name: _metrics(*_restricted(truth, predictions, keys), class_names, threshold)
                            for name, keys in groups.items()}
        for name in intervals:
            if name in groups and result["groups"][name]["images"]:
                result["groups"][name]["uncertainty"] = _uncertainty(
                    *_restricted(truth, predictions, groups[name]), threshold, sequences or {})
    return result


def _check_public_ids(predictions: Predictions, public_ids: set[str]) -> None:
    """Images named by anything but a public id (a COCO integer id, an archive path) are refused, and
    so is a file that misses public ids: both judged from the public listing alone (the error names
    only the sender's own keys and public ids), never from the hidden truth."""
    def by_id(found: dict) -> dict:  # `images/<id>.jpg` (the ZIP's member name) is the public id too
        renamed = {posixpath.basename(_key(k)) if posixpath.dirname(_key(k)) == "images" else _key(k): v
                   for k, v in found.items()}
        if len(renamed) < len(found):
            raise ScoringError("an image is named twice (by its id and by its file name)")
        return renamed

    if predictions.image_labels is not None:
        predictions.image_labels = by_id(predictions.image_labels)
    predictions.detections = by_id(predictions.detections)
    named = set(predictions.image_labels or predictions.detections)
    unknown = sorted(named - public_ids)
    missing = sorted(public_ids - named) if predictions.lists_every_image else []
    if unknown or missing:
        raise ScoringError(f"images must be named by the public ids of the release's public test ZIPs "
                           f"(`<id>` or `<id>.jpg`, as in their image list): {len(unknown)} named images are not "
                           f"among them (e.g. {[str(k)[:40] for k in unknown[:3]]}), {len(missing)} public ids "
                           f"have no prediction (e.g. {missing[:3]})")


def _uncertainty(truth: Truth, predictions: Predictions, threshold: float, sequences: dict[str, str]) -> dict:
    """Event-level accuracy and bootstrap intervals of one test set (resampling its sequences)."""
    keys = sorted(truth.labels)
    if predictions.image_labels is not None:
        predicted = [predictions.image_labels[k] for k in keys]
    else:
        predicted = [image_class([(c, conf) for c, conf, _b in predictions.detections[k]], threshold) for k in keys]
    matches = None
    if truth.boxes and predictions.detections:
        matches = bootstrap.match_detections(truth.boxes, _coco_predictions(truth, predictions), keys, truth.order)
    return bootstrap.uncertainty([sequences.get(k, "") for k in keys], [truth.labels[k] for k in keys], predicted,
                                 matches).as_dict()


def _coco_predictions(truth: Truth, predictions: Predictions) -> list[dict]:
    """Detections as COCO results in the truth's pixel space (category = class index + 1)."""
    preds = []
    for key, found in predictions.detections.items():
        width, height = truth.sizes.get(key, (0, 0))
        for cls, conf, box in found:
            if isinstance(box, Box):
                if not (width and height):
                    raise ScoringError(f"{key}: the truth gives no image size to place normalised boxes")
                bbox = box.to_coco(width, height, digits=6)
            else:
                bbox = list(box)
            preds.append({"image_id": key, "category_id": cls + 1, "bbox": bbox, "score": conf})
    return preds


def _restricted(truth: Truth, predictions: Predictions, keys: set[str]) -> tuple[Truth, Predictions]:
    keys = {_key(k) for k in keys}
    return (Truth({k: v for k, v in truth.labels.items() if k in keys},
                  [b for b in truth.boxes if b["image_id"] in keys], truth.sizes,
                  [k for k in truth.order if k in keys]),
            Predictions({k: v for k, v in predictions.detections.items() if k in keys},
                        None if predictions.image_labels is None
                        else {k: v for k, v in predictions.image_labels.items() if k in keys},
                        predictions.lists_every_image))


def _metrics(truth: Truth, predictions: Predictions, class_names: list[str], threshold: float) -> dict:
    keys = sorted(truth.labels)
    if predictions.image_labels is not None:
        predicted = [predictions.image_labels[k] for k in keys]
    else:
        predicted = [image_class([(c, conf) for c, conf, _b in predictions.detections[k]], threshold) for k in keys]
    result = {"images": len(keys), "threshold": threshold,
              "image_level": asdict(image_level([truth.labels[k] for k in keys], predicted))}
    if truth.boxes and predictions.detections:
        preds = _coco_predictions(truth, predictions)
        detection = coco_map(truth.boxes, preds, truth.order)
        mean_iou, pairs = mean_matched_iou(truth.boxes, preds)
        result["detection"] = {"map_50_95": detection.map_50_95, "map_50": detection.map_50,
                               "mean_iou_matched": mean_iou, "matched_boxes": pairs,
                               "per_class_ap": {class_names[c - 1]: v for c, v in detection.per_class_ap.items()},
                               "per_class_ap50": {class_names[c - 1]: v for c, v in detection.per_class_ap50.items()}}
    result["image_level"]["per_class_f1"] = {(EMPTY_SPECIES if c == EMPTY else class_names[c]): v
                                             for c, v in result["image_level"]["per_class_f1"].items()}
    return result


def _coerce(key: str, id_to_key: dict):
    for candidate in (key, _int(key)):
        if candidate in id_to_key:
            return candidate
    return key


def _int(value: str):
    try:
        return int(value)
    except ValueError:
        return value
