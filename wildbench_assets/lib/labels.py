"""From detections to labels: every animal box above the threshold, one row per image."""

from __future__ import annotations

import hashlib
import json
import posixpath
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd

from wildbench_assets.lib.annotations import Box
from wildbench_assets.lib.detectors import md_detector_metadata
from wildbench_assets.lib.expectations import Rule, RuleResult, validate
from wildbench_assets.taxonomy import EMPTY as EMPTY_SPECIES

LABELLED, NO_DETECTION, EMPTY, FAILED = "labelled", "no detection", "empty", "failed"
ANIMAL = "1"
MD_CATEGORIES = {"1": "animal", "2": "person", "3": "vehicle"}


MAX_IMAGE_ID_BYTES = 120  # a published name extracts anywhere: NAME_MAX is 255 bytes, Windows paths ~260


def image_id(path: str) -> str:
    """A file name unique within any archive: base names repeat across cameras (IMG_0001.JPG). The
    digest of the whole archive path keeps it unique, so a long base name is shortened (its start and its
    suffix kept) rather than the image refused: the archive path stays in every manifest."""
    digest, base = hashlib.sha1(path.encode()).hexdigest()[:10], posixpath.basename(path)
    name = f"{digest}_{base}"
    if len(name.encode()) <= MAX_IMAGE_ID_BYTES:
        return name
    stem, suffix = posixpath.splitext(base)
    suffix = suffix[:16]
    room = MAX_IMAGE_ID_BYTES - len(digest) - 1 - len(suffix.encode())
    return f"{digest}_{stem.encode()[:room].decode('utf-8', 'ignore')}{suffix}"


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


def md_batch_output(labels: pd.DataFrame, detector: str, threshold: float | None = None) -> dict:
    """MegaDetector batch output format 1.6, openable in Timelapse and AddaxAI; `detector_metadata` names
    the detector that really made the boxes and the label threshold they were kept at."""
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
                 "detector_metadata": md_detector_metadata(detector, threshold),
                 "detection_completion_time": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")},
    }


@dataclass(frozen=True)
class LabelFindings:
    """What a split's label checks are made of, from its images and their label rows."""

    images: int                           # images of the split (one label row each is expected)
    animals: int                          # of them, not empty
    statuses: dict[str, int]              # label_status -> rows
    boxes: int                            # label boxes, all rows
    outside_or_degenerate: int            # boxes outside the unit square, or of no area
    row_rules: list[RuleResult]           # one row per image, unique paths, known statuses
    confidence_rules: list[RuleResult]    # every box's confidence in [threshold, 1]

    @property
    def no_detection(self) -> int:
        return self.statuses.get(NO_DETECTION, 0)

    @property
    def failed(self) -> int:
        return self.statuses.get(FAILED, 0)

    @property
    def unlabelled_share(self) -> float:
        """Animal images the detector found nothing in, of all animal images."""
        return self.no_detection / max(1, self.animals)

    @property
    def failed_share(self) -> float:
        return self.failed / max(1, sum(self.statuses.values()))


def label_findings(images: pd.DataFrame, labels: pd.DataFrame, threshold: float) -> LabelFindings:
    """Findings of `labels` (the rows `label_row` made) for the split's `images`."""
    boxes = [(box, conf) for row in labels.to_dict("records") for box, conf in boxes_of(row)]
    confidences = pd.DataFrame({"conf": pd.Series([conf for _box, conf in boxes], dtype="float64")})
    row_rules = validate(labels, [
        Rule("expect_table_row_count_to_equal", {"value": len(images)}),
        Rule("expect_column_values_to_be_unique", {"column": "path"}),
        Rule("expect_column_values_to_be_in_set", {"column": "label_status",
                                                    "value_set": [LABELLED, NO_DETECTION, EMPTY, FAILED]}),
    ], name="detection_labels")
    confidence_rules = validate(confidences, [Rule("expect_column_values_to_be_between",
                                                   {"column": "conf", "min_value": threshold, "max_value": 1.0})],
                                name="detection_confidences")
    return LabelFindings(
        images=len(images), animals=int((images.species != EMPTY_SPECIES).sum()),
        statuses={str(k): int(v) for k, v in labels.label_status.value_counts().items()},
        boxes=len(boxes), outside_or_degenerate=sum(not box.is_valid() for box, _conf in boxes),
        row_rules=row_rules, confidence_rules=confidence_rules)
