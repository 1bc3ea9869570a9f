"""From detections to labels: every animal box above the threshold, one row per image."""

from __future__ import annotations

import hashlib
import json
import posixpath
from datetime import UTC, datetime

import pandas as pd

from wildbench_assets.lib.annotations import Box
from wildbench_assets.taxonomy import EMPTY as EMPTY_SPECIES

LABELLED, NO_DETECTION, EMPTY, FAILED = "labelled", "no detection", "empty", "failed"
ANIMAL = "1"
MD_CATEGORIES = {"1": "animal", "2": "person", "3": "vehicle"}


def image_id(path: str) -> str:
    """A file name unique within any archive: base names repeat across cameras (IMG_0001.JPG)."""
    return f"{hashlib.sha1(path.encode()).hexdigest()[:10]}_{posixpath.basename(path)}"


def label_boxes(detections: list[dict], threshold: float) -> list[list[float]]:
    """[x, y, w, h, conf] (normalised, MegaDetector order) of every animal detection >= threshold."""
    return [[*d["bbox"], d["conf"]] for d in detections if d["category"] == ANIMAL and d["conf"] >= threshold]


LABEL_COLUMNS = ["path", "park", "species", "camera", "split", "class_index", "sha256", "width", "height",
                 "label_status", "failure", "n_boxes", "boxes", "detections"]


def label_row(image: dict, detections: list[dict] | None, failure: str | None, threshold: float) -> dict:
    """One output row; `image` carries path/park/species/split/class_index/sha256/width/height."""
    if failure is not None:
        status, boxes = FAILED, []
    elif image["species"] == EMPTY_SPECIES:
        status, boxes = EMPTY, []
    else:
        boxes = label_boxes(detections or [], threshold)
        status = LABELLED if boxes else NO_DETECTION
    return {**image, "label_status": status, "failure": failure, "n_boxes": len(boxes),
            "boxes": json.dumps(boxes), "detections": json.dumps(detections or [])}


def boxes_of(row) -> list[tuple[Box, float]]:
    return [(Box.from_md(b[:4]), b[4]) for b in json.loads(row["boxes"])]


def md_batch_output(labels: pd.DataFrame, detector: str) -> dict:
    """MegaDetector batch output format 1.6, openable in Timelapse and AddaxAI."""
    images = []
    for row in labels.itertuples(index=False):
        if row.label_status == FAILED:
            images.append({"file": row.path, "failure": row.failure})
        else:
            images.append({"file": row.path, "detections": json.loads(row.detections)})
    return {
        "images": images,
        "detection_categories": MD_CATEGORIES,
        "info": {"format_version": "1.6", "detector": detector,
                 "detection_completion_time": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")},
    }
