"""The leaderboard's rows: a model trained on a release and a researcher's submission, both scored by
one function against the release's hidden truth (unseen and seen cameras, per park), and the thesis's
published rows; and the findings their checks are made of. Pure: the predictions, truth documents and
files' contents are handed in.

What a researcher sees of a score on hidden truth is `public_score`: headline metrics per test set, rounded.
Per-image, per-class, per-park and confusion output stays with the operator: a submission that gives each
test image its own class reads the hidden labels straight off any of them.
"""

from __future__ import annotations

import json
import math
import posixpath
from dataclasses import dataclass, field

import pandas as pd

from wildbench_assets.lib.bootstrap import ties
from wildbench_assets.lib.metrics import image_level
from wildbench_assets.lib.releases import ReleaseFacts, truth_groups
from wildbench_assets.lib.scoring import ScoringError, score
from wildbench_assets.taxonomy import EMPTY as EMPTY_SPECIES

HEADLINE = ("map_50_95", "map_50", "precision_weighted", "recall_weighted", "f1_weighted", "accuracy", "f1_macro",
            "precision_macro", "recall_macro", "mean_iou_matched")
# How far each headline number can be trusted (`lib.bootstrap`): the unseen test set's sequences, its
# event-level accuracy and 95 % bootstrap bounds resampling sequences. Aggregates, fine to publish.
INTERVAL_METRICS = ("map_50_95", "map_50", "accuracy", "event_accuracy")
UNCERTAINTY = ("sequences", "event_accuracy", *(f"{m}_{side}" for m in INTERVAL_METRICS for side in ("low", "high")))
LEADERBOARD_COLUMNS = ["model", "source", "release", "profile", "images", "map_50_95", "map_50", "precision_weighted",
                       "recall_weighted", "f1_weighted", "accuracy", "f1_macro", *UNCERTAINTY, "tied_with",
                       "seen_images", "seen_map_50_95",
                       "seen_map_50", "seen_accuracy", "seen_f1_weighted", "gap_map_50_95", "gap_map_50",
                       "gap_accuracy", "gap_f1_weighted"]
THESIS_ROWS = {"yolo": "YOLOv8s (thesis)", "megadetector": "MegaDetector fine-tuned (thesis)",
               "fasterrcnn": "Faster R-CNN (thesis)"}
UNSEEN, SEEN = "test", "test_seen"  # the two test sets: unseen cameras (the headline), training cameras
# Drill-down columns of a row scored on hidden truth: kept in model_evaluation (the operator's Dagster UI),
# never on the public leaderboard (the promoted model's per-image predictions are one /api/inference away).
BREAKDOWN_COLUMNS = ("per_class_ap", "per_park")
PUBLIC_DECIMALS = 3  # coarse enough that a macro average no longer spells out its per-class terms


def metric_columns(scored: dict | None, prefix: str = "") -> dict:
    """The leaderboard's metric columns of one score (None where nothing was scored)."""
    if not scored or not scored.get("image_level"):
        return {f"{prefix}{k}": None for k in HEADLINE}
    level, detection = scored["image_level"], scored.get("detection", {})
    return {f"{prefix}{k}": detection.get(k, level.get(k)) for k in HEADLINE}


def uncertainty_columns(scored: dict | None) -> dict:
    """A test set's sequences, event-level accuracy and interval bounds (None where not computed)."""
    found = (scored or {}).get("uncertainty", {})
    return {k: found.get(k) for k in UNCERTAINTY}


def seen_unseen_columns(unseen: dict | None, seen: dict | None) -> dict:
    """Unseen-camera metrics (the headline), seen-camera ones (`seen_`), and the gap (seen - unseen)."""
    row = {**metric_columns(unseen), **metric_columns(seen, "seen_")}
    for k in ("map_50", "map_50_95", "accuracy", "f1_weighted"):
        a, b = row[k], row[f"seen_{k}"]
        row[f"gap_{k}"] = None if a is None or b is None else b - a
    return row


def breakdowns(scored: dict | None) -> dict:
    """Per-class AP and per-park metrics as JSON columns (the leaderboard's drill-down)."""
    if not scored:
        return {"per_class_ap": "{}", "per_park": "{}"}
    per_park = {park: {k: v for k, v in metric_columns(part).items() if k in ("map_50", "map_50_95", "accuracy",
                                                                                "f1_weighted")}
                | {"images": part.get("images", 0)} for park, part in scored.get("groups", {}).items()}
    return {"per_class_ap": json.dumps(scored.get("detection", {}).get("per_class_ap", {}), sort_keys=True),
            "per_park": json.dumps(per_park, sort_keys=True)}


def headline_values(row: dict) -> list[float]:
    """The row's headline metrics, unseen and seen, that were computed."""
    return [v for k, v in row.items() if k.removeprefix("seen_") in HEADLINE and v is not None]


def all_in_range(values: list[float]) -> bool:
    """Every metric a finite number in [0, 1] (never a NaN on the leaderboard)."""
    return all(math.isfinite(v) and 0 <= v <= 1 for v in values)


def numeric_metadata(row: dict) -> dict:
    """The row's numbers (the values the UI charts across runs)."""
    return {k: v for k, v in row.items() if isinstance(v, (int, float)) and v is not None}


def thesis_rows(shipped: dict) -> list[dict]:
    """The thesis's three published rows, recomputed from its per-image results (`shipped`: stem ->
    {"true", "pred"}). Image level only: those results hold no boxes to compute a real mAP from; they
    were scored on the thesis's own random split, which leaks bursts between train and test."""
    rows = []
    for stem, name in THESIS_ROWS.items():
        values = shipped[stem]
        metrics = image_level(values["true"], values["pred"])
        rows.append({"model": name, "source": "thesis per-image results (its random split)", "release": "thesis",
                     "profile": "thesis", "images": len(values["true"]), "map_50_95": None, "map_50": None,
                     "precision_weighted": metrics.precision_weighted, "recall_weighted": metrics.recall_weighted,
                     "f1_weighted": metrics.f1_weighted, "accuracy": metrics.accuracy, "f1_macro": metrics.f1_macro})
    return rows


def coco_results(predicted: dict[str, list]) -> list[dict]:
    """COCO results of per-image predictions (public id -> `training.common.Prediction`s, pixel corners),
    as a researcher would submit them: image_id = public id, category = class index + 1,
    bbox = [x, y, width, height]."""
    return [{"image_id": public_id, "category_id": p.class_index + 1, "score": p.confidence,
             "bbox": [p.box[0], p.box[1], p.box[2] - p.box[0], p.box[3] - p.box[1]]}
            for public_id, found in sorted(predicted.items()) for p in found]


def release_score(truth: str, predictions: str, class_names: list[str], species: list[tuple[str, str, str]],
                  threshold: float, sequences: dict[str, str] | None = None) -> dict:
    """Predictions scored against a release's hidden truth: overall, per test set and per park of the
    unseen-camera one, with each test set's bootstrap intervals resampling its `sequences` (hidden
    image file name -> sequence: `releases.truth_sequences`). The one scoring of models and submissions.
    Raises `ScoringError`."""
    groups = {name: keys for name, keys in truth_groups(json.loads(truth)).items() if keys}
    public_ids = {posixpath.splitext(k)[0] for name in (UNSEEN, SEEN) for k in groups.get(name, ())}
    return score(truth, predictions, class_names, species, threshold, groups, public_ids, sequences, (UNSEEN, SEEN))


def _rounded(value, decimals: int):
    return value if value is None or isinstance(value, int) else round(float(value), decimals)


def public_score(scored: dict, decimals: int = PUBLIC_DECIMALS) -> dict:
    """All a researcher is shown of a `release_score`: per test set (unseen cameras, seen cameras) the
    image count, the headline metrics, the sequence count, event-level accuracy and 95 % interval bounds,
    rounded to `decimals`. Nothing per image, sequence, class or park."""
    groups = scored.get("groups", {})
    return {"threshold": scored["threshold"], "decimals": decimals,
            **{name: {"images": groups[name]["images"] if groups.get(name) else 0,
                      **{k: _rounded(v, decimals) for k, v in {**metric_columns(groups.get(name)),
                                                               **uncertainty_columns(groups.get(name))}.items()}}
               for name in (UNSEEN, SEEN)}}


def public_row(model: str, source: str, release: str, profile: str | None, public: dict) -> dict:
    """The leaderboard row of a `public_score`: unseen cameras (the headline), seen ones and the gap."""
    unseen, seen = public[UNSEEN], public[SEEN]
    row = {**{k: unseen[k] for k in HEADLINE}, **{k: unseen.get(k) for k in UNCERTAINTY},
           **{f"seen_{k}": seen[k] for k in HEADLINE}, "seen_event_accuracy": seen.get("event_accuracy")}
    for k in ("map_50", "map_50_95", "accuracy", "f1_weighted"):
        a, b = row[k], row[f"seen_{k}"]
        row[f"gap_{k}"] = None if a is None or b is None else round(b - a, public["decimals"])
    return {"model": model, "source": source, "release": release, "profile": profile, "images": unseen["images"],
            "seen_images": seen["images"], **row}


def release_row(model: str, source: str, release: str, profile: str | None, scored: dict | None) -> dict:
    """The leaderboard row of a release score: unseen cameras (the headline), seen ones and the gap,
    per-class AP and per park (None: nothing scored)."""
    by_group = (scored or {}).get("groups", {})
    unseen, seen = by_group.get(UNSEEN), by_group.get(SEEN)
    parks = {name.removeprefix("park:"): part for name, part in by_group.items() if name.startswith("park:")}
    return {"model": model, "source": source, "release": release, "profile": profile,
            "images": unseen["images"] if unseen else 0, "seen_images": seen["images"] if seen else 0,
            **seen_unseen_columns(unseen, seen), **uncertainty_columns(unseen),
            "seen_event_accuracy": uncertainty_columns(seen)["event_accuracy"],
            **breakdowns({**unseen, "groups": parks} if unseen else None)}


@dataclass(frozen=True)
class EvaluationFindings:
    """What `model_evaluation` records and checks: the leaderboard row of a model trained on a release."""

    row: dict
    unseen: dict | None             # the unseen-camera score (None: nothing scored)
    images: dict[str, int]          # test set -> images in the release's hidden truth
    predicted: dict[str, int]       # test set -> of those, images the model was run on
    in_range: bool                  # every headline metric in [0, 1]
    metrics_checked: int
    detail: dict = field(default_factory=dict)  # the unrounded row with breakdowns: operators only (metadata)

    @property
    def predictions_match(self) -> bool:
        return self.predicted == self.images

    @property
    def note(self) -> str | None:
        """Why no unseen-camera metric could be computed (None: it was)."""
        return self.row["note"]


def evaluation_findings(model: str, release: ReleaseFacts, card: dict, truth: str, predicted: dict[str, list],
                        seconds: float, species: list[tuple[str, str, str]], threshold: float,
                        sequences: dict[str, str] | None = None) -> EvaluationFindings:
    """A model trained on `release` (`card`: `{}` when nothing was trained), its predictions per public id
    of the release's public test ZIPs (made in `seconds`), scored as a submission of them would be, with
    the release's frozen classes."""
    document = json.loads(truth)
    groups = truth_groups(document)
    test_sets = {name: {posixpath.splitext(k)[0] for k in keys} for name, keys in groups.items()
                 if name in (UNSEEN, SEEN)}
    images = {name: len(keys) for name, keys in test_sets.items()}
    ran = {name: len(keys & set(predicted)) for name, keys in test_sets.items()}
    scored = None
    if card and document["images"]:
        scored = release_score(truth, json.dumps(coco_results(predicted)), release.class_names, species, threshold,
                               sequences)
    detail = release_row(model, "trained here", release.release, release.profile, scored)
    # the public row is a submission's (`public_row`): per-image predictions are one /api/inference away, so
    # unrounded macro metrics would solve for per-class true positives
    row = {k: v for k, v in detail.items() if k not in BREAKDOWN_COLUMNS}
    if scored:
        row |= public_row(model, "trained here", release.release, release.profile, public_score(scored))
    why = "no weights were trained (empty train split)" if not card else "the unseen-camera test set has no images"
    settings = card.get("settings", {})
    row |= {"release_cut_at": release.cut_at,
            "images_per_s": len(predicted) / seconds if predicted and seconds else None,
            "imgsz": settings.get("imgsz"), "epochs": settings.get("epochs"),
            "weights_sha256": card.get("sha256"), "note": None if row["images"] else why}
    detail |= {k: row[k] for k in ("release_cut_at", "images_per_s", "imgsz", "epochs", "weights_sha256", "note")}
    values = headline_values(detail)
    return EvaluationFindings(row=row, unseen=scored["groups"].get(UNSEEN) if scored else None, images=images,
                              predicted=ran if card else images, in_range=all_in_range(values),
                              metrics_checked=len(values), detail=detail)


def tied_with(rows: list[dict]) -> list[str]:
    """Per leaderboard row, the models of its release whose 95 % interval overlaps its own (on the first
    of mAP@[.5:.95], mAP@.5, accuracy both rows have an interval of), "; "-joined ("" when none)."""
    return ["; ".join(sorted(str(rows[j]["model"]) for j in tied)) for tied in ties(rows)]


def per_class_frame(scored: dict) -> pd.DataFrame:
    """Per species: detection AP and image-level F1 (0 where a species has none)."""
    f1 = {k: v for k, v in scored["image_level"]["per_class_f1"].items() if k != EMPTY_SPECIES}
    return pd.DataFrame({"ap": scored.get("detection", {}).get("per_class_ap", {}), "f1": f1}).fillna(0)


def confusion_labels(scored: dict, class_names: list[str]) -> list[str]:
    """The confusion matrix's row/column names: species codes, `emp` for the empty class."""
    return [EMPTY_SPECIES if c == -1 else class_names[c] for c in scored["image_level"]["labels"]]


@dataclass(frozen=True)
class SubmissionFindings:
    """A scored submission: what it may be told (`public`: `<id>.score.json`, the portal) and its
    leaderboard row, made from that alone."""

    row: dict
    public: dict

    @property
    def in_range(self) -> bool:
        return all_in_range(headline_values(self.row))

    @property
    def range_error(self) -> str:
        return f"metrics out of range: { {k: self.row[k] for k in ('map_50_95', 'map_50', 'accuracy')} }"


def submission_findings(submission: str, raw: bytes | None, release: str | None, profile: str | None,
                        truth: str | None, class_names: list[str], species: list[tuple[str, str, str]],
                        threshold: float, sequences: dict[str, str] | None = None) -> SubmissionFindings:
    """A submission's file (`raw`: None when none arrived) scored against the hidden truth of `release`
    (None: no release cut yet) by `release_score`. Anything that cannot be scored raises `ScoringError`
    with a reason the researcher can act on."""
    if raw is None:
        raise ScoringError(f"no {submission}.json or {submission}.csv in the submissions inbox")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ScoringError("the file is not UTF-8 text (binary data?)") from err
    if release is None or truth is None:
        raise ScoringError("no benchmark release has been cut yet (`wildbench release`): submissions are "
                           "scored against a release's hidden test labels")
    public = public_score(release_score(truth, text, class_names, species, threshold, sequences))
    return SubmissionFindings(row=public_row(f"submission:{submission}", "submission", release, profile, public),
                              public=public)
