"""Species predictions on new photos, in the two shapes people open them in: a table (one row per
detection) and a MegaDetector batch file (format 1.6, species as `classifications`), plus the annotated
image of the thesis's inference page.

A prediction of one image is a dict: `width`, `height`, `detections` (MegaDetector detections: category
"1" animal, `conf`, normalised `bbox` [x, y, w, h], optional `classifications` [[class id, conf]]) and
`failure` (None, or why the image could not be read). Detections are sorted by confidence. A species
model's prediction also carries `detector_animals` (the detector's animal boxes on the image) and
`species_model_missed` (the detector found an animal, the species model no box at all).

Outcomes of a detection: a Table 3.1 species code; `other animal` (OTHER_ANIMAL): an animal box of the
detector that no species box of the species model overlaps (IoU >= MATCH_IOU) with at least the minimum
confidence, i.e. an animal the species model does not assign to a Table 3.1 species; or `animal`
(DETECTOR_ONLY): no species model answered at all, only the detector (the answer says why).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from wildbench_assets.lib.detectors import md_detector_metadata
from wildbench_assets.lib.expectations import Rule, RuleResult, validate_checks
from wildbench_assets.lib.labels import MD_CATEGORIES

DETECTOR_ONLY = "animal"  # the species of a detection when no species model is promoted yet
OTHER_ANIMAL = "other animal"  # an animal the species model does not place in Table 3.1 (see above)
MATCH_IOU = 0.5  # a detector box and a species box this alike are the same animal
PREDICTED, NO_DETECTION, FAILED = "predicted", "no detection", "failed"
PREDICTION_COLUMNS = ["path", "status", "species", "score", "x", "y", "w", "h", "failure", "model"]


def species_of(detection: dict, class_names: list[str]) -> str:
    classes = detection.get("classifications") or []
    if not classes:
        return DETECTOR_ONLY
    index = int(classes[0][0])
    return class_names[index] if index < len(class_names) else OTHER_ANIMAL


def answer_classes(species: list[str]) -> list[str]:
    """The classes a species model's answer uses: its Table 3.1 species, then `other animal`."""
    return [*species, OTHER_ANIMAL] if OTHER_ANIMAL not in species else list(species)


def box_iou(a: list[float], b: list[float]) -> float:
    """Intersection over union of two normalised [x, y, w, h] boxes."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def with_detector_animals(prediction: dict, detector_detections: list[dict] | None, other_index: int,
                          min_confidence: float, min_iou: float = MATCH_IOU) -> dict:
    """A species model's `prediction` of one image with the detector's view added: every detector
    animal box (conf >= `min_confidence`) that no species box overlaps (IoU >= `min_iou`) becomes an
    `other animal` detection (class `other_index`), so an animal is never lost because the species
    model has no Table 3.1 class for it; `detector_animals` and `species_model_missed` record what the
    detector saw. A failed image, or one the detector could not read, is left as it is."""
    if prediction.get("failure") or detector_detections is None:
        return prediction
    species = prediction.get("detections") or []
    animals = [d for d in detector_detections if str(d["category"]) == "1" and d["conf"] >= min_confidence]
    others = [{"category": "1", "conf": float(d["conf"]), "bbox": list(d["bbox"]),
               "classifications": [[str(other_index), float(d["conf"])]]}
              for d in animals if all(box_iou(d["bbox"], s["bbox"]) < min_iou for s in species)]
    return {**prediction, "detections": sorted([*species, *others], key=lambda d: -d["conf"]),
            "detector_animals": len(animals), "species_model_missed": bool(animals) and not species}


def answer_warnings(items: list[tuple[str, dict]], answer: dict) -> list[str]:
    """Warnings about an answer as a whole: the species model found no box on images in which the
    detector found an animal (counted). Empty when there is nothing to warn about."""
    missed = sum(1 for _path, p in items if p.get("species_model_missed"))
    if not missed:
        return []
    with_animals = sum(1 for _path, p in items if p.get("detector_animals"))
    return [f"the species model {answer.get('model')} found no box on {missed} of {with_animals} images in which "
            f"the detector found an animal: those animals are reported as '{OTHER_ANIMAL}'"]


def answer_lines(answer: dict, warnings: list[str]) -> list[str]:
    """The answer's provenance in words: which model answered, why (or why no species model), warnings."""
    lines = [f"answered by: {answer['answered_by']}"]
    if answer.get("why"):
        lines.append(f"why this model: {answer['why']}")
    if answer.get("why_no_species_model"):
        lines.append(f"no species model: {answer['why_no_species_model']} (every animal is reported as "
                     f"'{DETECTOR_ONLY}')")
    return lines + [f"warning: {w}" for w in warnings]


def prediction_rows(path: str, prediction: dict, class_names: list[str], model: str) -> list[dict]:
    """One row per detection; one `no detection` row for an image without any; a `failed` row with
    its reason for an image that could not be read."""
    base = {"path": path, "model": model, "failure": None, "species": None, "score": None,
            "x": None, "y": None, "w": None, "h": None}
    if prediction.get("failure"):
        return [{**base, "status": FAILED, "failure": prediction["failure"]}]
    detections = prediction.get("detections") or []
    if not detections:
        return [{**base, "status": NO_DETECTION}]
    return [{**base, "status": PREDICTED, "species": species_of(d, class_names), "score": float(d["conf"]),
             **dict(zip("xywh", map(float, d["bbox"])))} for d in detections]


def predictions_table(items: list[tuple[str, dict]], class_names: list[str], model: str) -> pd.DataFrame:
    rows = [row for path, prediction in items for row in prediction_rows(path, prediction, class_names, model)]
    frame = pd.DataFrame(rows, columns=PREDICTION_COLUMNS)
    for column in ("score", "x", "y", "w", "h"):
        frame[column] = frame[column].astype("float64")
    return frame


def md_batch_document(items: list[tuple[str, dict]], class_names: list[str], model: str,
                      answer: dict | None = None, warnings: list[str] | None = None,
                      threshold: float | None = None) -> dict:
    """MegaDetector batch output 1.6: failed images carry `failure` and `"detections": null`; the info
    block names which model answered and why (`answer`), the answer's `warnings`, and in
    `detector_metadata` the model's real name and the confidence its detections were kept at."""
    images = []
    used_classes = False
    for path, prediction in items:
        if prediction.get("failure"):
            images.append({"file": path, "failure": prediction["failure"], "detections": None})
            continue
        detections = []
        for d in prediction.get("detections") or []:
            out = {"category": str(d["category"]), "conf": float(round(d["conf"], 4)),
                   "bbox": [float(round(v, 4)) for v in d["bbox"]]}
            if d.get("classifications"):
                used_classes = True
                out["classifications"] = [[str(c), float(round(p, 4))] for c, p in d["classifications"]]
            detections.append(out)
        images.append({"file": path, "detections": detections})
    document = {
        "info": {"format_version": "1.6", "detector": model,
                 "detector_metadata": md_detector_metadata(model, threshold),
                 "detection_completion_time": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
                 **({"wildbench_answer": answer} if answer else {}),
                 **({"warnings": list(warnings)} if warnings is not None else {})},
        "detection_categories": dict(MD_CATEGORIES),
        "images": images,
    }
    if used_classes:
        document["classification_categories"] = {str(i): name for i, name in enumerate(class_names)}
    return document


def md_document_errors(document: dict) -> list[str]:
    """The errors the `megadetector` package's own validator finds (empty: valid)."""
    from megadetector.postprocessing.validate_batch_results import validate_batch_results

    return validate_batch_results(document)["validation_results"]["errors"]


@dataclass(frozen=True)
class PredictionFindings:
    """What a day's prediction checks are made of: the table against the images, the MegaDetector file."""

    images: int
    images_in_table: int
    one_row_per_image: bool         # every image in the table; one row each unless it has detections
    detections: int
    boxes_past_the_edge: int        # x + w or y + h beyond 1
    box_rules: list[RuleResult]     # x, y, w, h in [0, 1]
    score_rules: list[RuleResult]   # scores in [min_confidence, 1]
    md_errors: list[str]            # the MegaDetector validator's, of the file as written
    statuses: dict[str, int]        # status -> images
    per_species: dict[str, int]     # species -> detections

    @property
    def boxes_in_unit_square(self) -> bool:
        return self.boxes_past_the_edge == 0 and all(r.success for r in self.box_rules)


def prediction_findings(images: pd.DataFrame, table: pd.DataFrame, md_document: dict,
                        min_confidence: float) -> PredictionFindings:
    """Findings of `table` (from `predictions_table`) for `images`, and of the MegaDetector document."""
    detected = table[table.status == PREDICTED]
    found = validate_checks(detected, {
        "boxes": [Rule("expect_column_values_to_be_between", {"column": c, "min_value": 0.0, "max_value": 1.0})
                  for c in "xywh"],
        "scores": [Rule("expect_column_values_to_be_between",
                        {"column": "score", "min_value": min_confidence, "max_value": 1.0})],
    }, name="new_image_predictions")
    single = table[table.status != PREDICTED].path
    return PredictionFindings(
        images=len(images), images_in_table=int(table.path.nunique()),
        one_row_per_image=set(table.path) == set(images.path) and single.is_unique
        and not set(single) & set(detected.path),
        detections=len(detected),
        boxes_past_the_edge=int(((detected.x + detected.w > 1 + 1e-6) | (detected.y + detected.h > 1 + 1e-6)).sum()),
        box_rules=found["boxes"], score_rules=found["scores"], md_errors=md_document_errors(md_document),
        statuses={str(k): int(v) for k, v in table.drop_duplicates("path").status.value_counts().items()},
        per_species={str(k): int(v) for k, v in detected.species.value_counts().items()})


def annotate(image: Image.Image, prediction: dict, class_names: list[str]) -> Image.Image:
    """A copy of the image with every detection's box and `species score` drawn on it."""
    out = image.convert("RGB")
    draw = ImageDraw.Draw(out)
    width, height = out.size
    line = max(2, round(min(width, height) / 200))
    font = ImageFont.load_default(size=max(12, round(height / 30)))
    for d in prediction.get("detections") or []:
        x, y, w, h = d["bbox"]
        box = (x * width, y * height, (x + w) * width, (y + h) * height)
        draw.rectangle(box, outline=(255, 64, 0), width=line)
        text = f"{species_of(d, class_names)} {d['conf']:.2f}"
        left, top, right, bottom = draw.textbbox((box[0], box[1]), text, font=font)
        label_top = max(0, box[1] - (bottom - top) - 2 * line)
        draw.rectangle((box[0], label_top, box[0] + right - left + 2 * line, label_top + bottom - top + 2 * line),
                       fill=(255, 64, 0))
        draw.text((box[0] + line, label_top + line - top + box[1]), text, fill=(255, 255, 255), font=font)
    return out
