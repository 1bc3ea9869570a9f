"""Species predictions on new photos, in the two shapes people open them in: a table (one row per
detection) and a MegaDetector batch file (format 1.6, species as `classifications`), plus the annotated
image of the thesis's inference page.

A prediction of one image is a dict: `width`, `height`, `detections` (MegaDetector detections: category
"1" animal, `conf`, normalised `bbox` [x, y, w, h], optional `classifications` [[class id, conf]]) and
`failure` (None, or why the image could not be read). Detections are sorted by confidence.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from wildbench_assets.lib.labels import MD_CATEGORIES

DETECTOR_ONLY = "animal"  # the species of a detection when no species model is promoted yet
PREDICTED, NO_DETECTION, FAILED = "predicted", "no detection", "failed"
PREDICTION_COLUMNS = ["path", "status", "species", "score", "x", "y", "w", "h", "failure", "model"]


def species_of(detection: dict, class_names: list[str]) -> str:
    classes = detection.get("classifications") or []
    return class_names[int(classes[0][0])] if classes else DETECTOR_ONLY


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


def md_batch_document(items: list[tuple[str, dict]], class_names: list[str], model: str) -> dict:
    """MegaDetector batch output 1.6: failed images carry `failure` and `"detections": null`."""
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
                 "detection_completion_time": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")},
        "detection_categories": dict(MD_CATEGORIES),
        "images": images,
    }
    if used_classes:
        document["classification_categories"] = {str(i): name for i, name in enumerate(class_names)}
    return document


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
