"""Species predictions from a trained model (or the detector alone): one code path for
`model_evaluation`, `new_image_predictions`, `wildbench predict` and the portal's inference page.

The promoted model is the leaderboard's best model (by COCO mAP@[.5:.95]) of the most recently cut
default-profile release that has one earning promotion, with its weights present (`promoted_model`),
or one named explicitly; with none, the box detector alone (species "animal"), and the answer says why
(`promotion_refusal`). A species model runs beside the detector: an animal the detector finds and the
species model does not place in Table 3.1 is `other animal` (`lib.predictions.with_detector_animals`).
Every predictor carries `answer`: which model answered (name, release, weights sha256, or the detector's
name and version) and why. A model's files are `models/<release>/<model>/` in the artifact store.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from wildbench_assets.lib import predictions as answers
from wildbench_assets.lib.image_decode import decode_image
from wildbench_assets.resources.loaded_models import weights_sha256
from wildbench_assets.training.common import Prediction, TrainSettings
from wildbench_assets.training.registry import DETECTOR, MODEL_NAMES, PROMOTION_MIN_MAP_50, model_spec


def predict_with_model(model: str, weights: Path, images: list[Path], settings: TrainSettings,
                       n_classes: int) -> list[list[Prediction]]:
    """Every detection (confidence >= 0.001) of a model trained here, in original-image pixels."""
    return model_spec(model).predict(weights, images, settings, n_classes)


def promoted_model(leaderboard: pd.DataFrame | None, weights_present, min_map_50: float = PROMOTION_MIN_MAP_50,
                   model: str = "auto") -> tuple[str, str] | None:
    """(model, release) to predict with: the best model by mAP@[.5:.95] (then weighted F1) that earned
    promotion (mAP@.5 at least `min_map_50`: a barely trained model that finds nothing is worse than
    the detector alone) and whose weights exist (`weights_present(model, release)`), from the most
    recently cut release that has one (scores of different releases are not comparable; a
    thesis-profile release never counts: its scores are optimistic by construction); else None. A
    named `model` is that model on the most recently cut default-profile release it was trained on,
    whatever its score."""
    if leaderboard is None or leaderboard.empty or "source" not in leaderboard:
        return None
    ours = leaderboard[(leaderboard.source == "trained here") & leaderboard.model.isin(MODEL_NAMES)]
    if "profile" in ours:
        ours = ours[ours.profile != "thesis"]
    if model != "auto":
        ours = ours[ours.model == model]
    else:
        ours = ours[pd.to_numeric(ours.map_50, errors="coerce") >= min_map_50]
    newest = "release_cut_at" if "release_cut_at" in ours else "release"
    ours = ours.sort_values([newest, "map_50_95", "f1_weighted"], ascending=False, na_position="last")
    return next(((m, r) for m, r in zip(ours.model, ours.release) if weights_present(m, r)), None)


def _trained_here(leaderboard: pd.DataFrame | None) -> pd.DataFrame:
    if leaderboard is None or leaderboard.empty or "source" not in leaderboard:
        return pd.DataFrame(columns=["model", "release", "map_50"])
    return leaderboard[(leaderboard.source == "trained here") & leaderboard.model.isin(MODEL_NAMES)]


def promotion_refusal(leaderboard: pd.DataFrame | None, weights_present,
                      min_map_50: float = PROMOTION_MIN_MAP_50) -> str:
    """Why `promoted_model` (auto) promotes no species model, in words: none trained, only on
    thesis-profile releases, none passing the threshold (the best candidate's mAP@.5 against it), or
    the passing ones' weights gone."""
    ours = _trained_here(leaderboard)
    if ours.empty:
        return "no species model has been trained yet (the leaderboard has no model trained here)"
    default = ours[ours.profile != "thesis"] if "profile" in ours else ours
    if default.empty:
        return (f"species models were trained only on thesis-profile releases ({', '.join(sorted(set(ours.release)))}),"
                " whose scores are optimistic by construction, so none is promoted")
    scores = pd.to_numeric(default.map_50, errors="coerce")
    passing = default[scores >= min_map_50]
    if passing.empty:
        if scores.notna().any():
            best = default.loc[scores.idxmax()]
            return (f"no trained model passes the promotion threshold mAP@.5 >= {min_map_50:g}: the best candidate, "
                    f"{best.model} on release {best.release}, scores mAP@.5 {scores.max():.3f}")
        return "no trained model has a score yet (model_evaluation has not run)"
    missing = sorted({f"{m} on {r}" for m, r in zip(passing.model, passing.release) if not weights_present(m, r)})
    return f"the models that pass the promotion threshold have no weights stored ({', '.join(missing)})"


def promotion_reason(leaderboard: pd.DataFrame | None, model: str, release: str, min_map_50: float) -> str:
    """Why `promoted_model` (auto) chose (model, release), in words."""
    ours = _trained_here(leaderboard)
    row = ours[(ours.model == model) & (ours.release == release)]
    if row.empty:
        return f"promoted: the best model of release {release}"
    map_50, map_50_95 = (float(pd.to_numeric(row[c], errors="coerce").iloc[0]) for c in ("map_50", "map_50_95"))
    return (f"promoted: the best model by mAP@[.5:.95] ({map_50_95:.3f}) of release {release}, the most recently cut "
            f"default-profile release with one passing the threshold (mAP@.5 {map_50:.3f} >= {min_map_50:g})")


def decode_check(data: bytes) -> tuple[int, int]:
    """(width, height) after decoding every pixel strictly; raises on a corrupt, cut or non-image file."""
    return decode_image(data).size


@dataclass
class SpeciesPredictor:
    """Predicts over image files. `identity` names what a cached prediction is valid for."""

    name: str
    identity: str
    class_names: list[str]
    min_confidence: float
    weights: Path | None = None
    settings: TrainSettings | None = None
    detector: object | None = None  # a resources.detector.Detector, for the detector-only predictor
    companion: object | None = None  # the detector run beside a species model (`other animal`, warnings)
    answer: dict | None = None       # which model answered and why (`lib.predictions.answer_lines`)

    def predict_files(self, paths: list[Path]) -> list[dict]:
        """One prediction dict (width, height, detections, failure) per path, in order; an unreadable
        file is a failure, never an exception."""
        if self.detector is not None:
            found = {r.key: r for r in self.detector.run([str(p) for p in paths], lambda k: Path(k).read_bytes())}
            out = []
            for p in paths:
                r = found[str(p)]
                detections = [d.to_md() for d in r.detections if d.confidence >= self.min_confidence]
                out.append({"width": r.width, "height": r.height, "detections": detections, "failure": r.failure})
            return out
        sizes: dict[Path, tuple[int, int]] = {}
        failures: dict[Path, str] = {}
        for p in paths:
            try:
                sizes[p] = decode_check(p.read_bytes())
            except Exception as err:  # noqa: BLE001 - a bad image is a row with its reason
                failures[p] = f"image decode failure: {type(err).__name__}: {err}"
        readable = [p for p in paths if p in sizes]
        predicted = dict(zip(readable, predict_with_model(self.name, self.weights, readable, self.settings,
                                                          self.species_classes))) if readable else {}
        out = []
        for p in paths:
            if p in failures:
                out.append({"width": None, "height": None, "detections": None, "failure": failures[p]})
                continue
            width, height = sizes[p]
            detections = []
            for pred in sorted(predicted[p], key=lambda q: -q.confidence):
                if pred.confidence < self.min_confidence:
                    continue
                x1, y1, x2, y2 = (max(0.0, min(1.0, v / s)) for v, s in zip(pred.box, (width, height, width, height)))
                if x2 <= x1 or y2 <= y1:
                    continue
                detections.append({"category": "1", "conf": float(pred.confidence), "bbox": [x1, y1, x2 - x1, y2 - y1],
                                   "classifications": [[str(pred.class_index), float(pred.confidence)]]})
            out.append({"width": width, "height": height, "detections": detections, "failure": None})
        if self.companion is None or not readable:
            return out
        seen = {r.key: r for r in self.companion.run([str(p) for p in readable], lambda k: Path(k).read_bytes())}
        merged = []
        for p, o in zip(paths, out):
            found = seen.get(str(p))
            boxes = None if found is None or found.failure else [d.to_md() for d in found.detections]
            merged.append(answers.with_detector_animals(o, boxes, self.species_classes, self.min_confidence))
        return merged

    @property
    def species_classes(self) -> int:
        """The model's own classes (Table 3.1); `other animal`, if present, is the index after them."""
        return len([c for c in self.class_names if c != answers.OTHER_ANIMAL])


def detector_name(detector) -> str:
    """The detector by name and version (its identity: backend, weights sha256, thresholds)."""
    return detector.backend if detector.identity == detector.backend else f"{detector.backend} {detector.identity}"


def load_predictor(model_dir: Path | None, class_names: list[str], model: str | None, detector_resource,
                   min_confidence: float = 0.1, weights: Path | None = None, why: str | None = None,
                   release: str | None = None) -> SpeciesPredictor:
    """A trained model from its folder `model_dir` (weights.pt + card.json), an explicit weights file of
    one of our models (with the card beside it, if any), or — `model` None or "detector" — the detector
    resource alone. `why`: why this model answers (a species model) or why no species model does (the
    detector alone); it goes into the predictor's `answer`."""
    if model in (None, DETECTOR) and weights is None:
        loaded = detector_resource.load()
        answer = {"model": DETECTOR, "answered_by": f"detector only: {detector_name(loaded)}",
                  "detector": loaded.identity, "why_no_species_model": why or "the detector alone was asked for"}
        return SpeciesPredictor(DETECTOR, json.dumps({"predictor": DETECTOR, "detector": loaded.identity,
                                                      "min_conf": min_confidence}),
                                class_names, min_confidence, detector=loaded, answer=answer)
    model_spec(model)  # a ValueError naming the choices for an unknown model
    weights = Path(weights) if weights else model_dir / "weights.pt"
    card_path = weights.parent / "card.json"
    card = json.loads(card_path.read_text()) if card_path.exists() else {}
    if not weights.is_file():
        raise FileNotFoundError(f"no weights for {model} at {weights}: train it (model_weights) or pass --weights")
    settings = TrainSettings(**card["settings"]) if "settings" in card else TrainSettings()
    sha256 = weights_sha256(weights)
    companion = detector_resource.load() if detector_resource is not None else None
    identity = json.dumps({"predictor": model, "weights": sha256[:16], "imgsz": settings.imgsz,
                           "min_conf": min_confidence, "detector": companion.identity if companion else None})
    release = release or card.get("release")
    answer = {"model": model, "release": release, "weights_sha256": sha256,
              "answered_by": f"{model} trained on release {release or '(unknown)'} (weights sha256 {sha256[:12]}…)"
                             + (f", with the detector {detector_name(companion)} for 'other animal'" if companion
                                else ""),
              "detector": companion.identity if companion else None, "why": why or "asked for by name"}
    return SpeciesPredictor(model, identity, answers.answer_classes(card.get("classes") or class_names), min_confidence,
                            weights, settings, companion=companion, answer=answer)
