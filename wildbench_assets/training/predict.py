"""Species predictions from a trained model (or the detector alone): one code path for
`model_evaluation`, `new_image_predictions`, `wildbench predict` and the portal's inference page.

The promoted model is the leaderboard's best model (by COCO mAP@[.5:.95]) of the most recently cut
default-profile release that has one earning promotion, with its weights present (`promoted_model`),
or one named explicitly; with none, the box detector alone (species "animal"). A model's files are
`models/<release>/<model>/` in the artifact store.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from wildbench_assets.lib.image_decode import decode_image
from wildbench_assets.training.common import Prediction, TrainSettings

MODELS = ("yolov8", "megadetector", "fasterrcnn")
DETECTOR = "detector"


def predict_with_model(model: str, weights: Path, images: list[Path], settings: TrainSettings,
                       n_classes: int) -> list[list[Prediction]]:
    """Every detection (confidence >= 0.001) of a model trained here, in original-image pixels."""
    if model == "yolov8":
        from wildbench_assets.training.yolo import predict_yolo

        return predict_yolo(weights, images, settings.imgsz, settings.device)
    if model == "megadetector":
        from wildbench_assets.training.megadetector import predict_megadetector

        return predict_megadetector(weights, images, settings.imgsz, settings.device)
    from wildbench_assets.training.frcnn import predict_fasterrcnn

    return predict_fasterrcnn(weights, images, n_classes, settings)


def promoted_model(leaderboard: pd.DataFrame | None, weights_present, min_map_50: float = 0.1,
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
    ours = leaderboard[(leaderboard.source == "trained here") & leaderboard.model.isin(MODELS)]
    if "profile" in ours:
        ours = ours[ours.profile != "thesis"]
    if model != "auto":
        ours = ours[ours.model == model]
    else:
        ours = ours[pd.to_numeric(ours.map_50, errors="coerce") >= min_map_50]
    newest = "release_cut_at" if "release_cut_at" in ours else "release"
    ours = ours.sort_values([newest, "map_50_95", "f1_weighted"], ascending=False, na_position="last")
    return next(((m, r) for m, r in zip(ours.model, ours.release) if weights_present(m, r)), None)


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
                                                          len(self.class_names)))) if readable else {}
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
        return out


def load_predictor(model_dir: Path | None, class_names: list[str], model: str | None, detector_resource,
                   min_confidence: float = 0.1, weights: Path | None = None) -> SpeciesPredictor:
    """A trained model from its folder `model_dir` (weights.pt + card.json), an explicit weights file of
    one of our models (with the card beside it, if any), or — `model` None or "detector" — the detector
    resource alone."""
    if model in (None, DETECTOR) and weights is None:
        loaded = detector_resource.load()
        return SpeciesPredictor(DETECTOR, json.dumps({"predictor": DETECTOR, "detector": loaded.identity,
                                                      "min_conf": min_confidence}),
                                class_names, min_confidence, detector=loaded)
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; expected one of {(*MODELS, DETECTOR)}")
    weights = Path(weights) if weights else model_dir / "weights.pt"
    card_path = weights.parent / "card.json"
    card = json.loads(card_path.read_text()) if card_path.exists() else {}
    if not weights.is_file():
        raise FileNotFoundError(f"no weights for {model} at {weights}: train it (model_weights) or pass --weights")
    settings = TrainSettings(**card["settings"]) if "settings" in card else TrainSettings()
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:16]
    identity = json.dumps({"predictor": model, "weights": digest, "imgsz": settings.imgsz, "min_conf": min_confidence})
    return SpeciesPredictor(model, identity, card.get("classes") or class_names, min_confidence, weights, settings)
