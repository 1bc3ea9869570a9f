"""Which detector made a set of boxes, named truthfully for people and for other tools.

A detector's identity (resources/detector.py) is `manifest`, or JSON with its backend, weights sha256 and
thresholds; a release joins several with ` | `. The MegaDetector batch *format* is used whatever the
backend, so the files say which detector really made the boxes and at which threshold they are meant to
be read (`info.detector_metadata`, which megadetector's tools read for their default threshold).
"""

from __future__ import annotations

import json

NAMES = {
    "mdlite": "MegadetectorLite (YOLOX-tiny, zamba)",
    "megadetector": "MegaDetector",
    "manifest": "the archive's own boxes (COCO Camera Traps manifest)",
}
VERSIONS = {"mdlite": "yolox_tiny_640_20220528"}  # the one checkpoint the zamba wheel ships
CONF_DIGITS = COORD_DIGITS = 4  # what our MegaDetector files round confidences and coordinates to


def _fields(identity: str) -> dict:
    """The identity's JSON fields; a predictor's identity (training/predict.py) answers with its detector's
    when the detector alone answered."""
    first = (identity or "").split(" | ")[0].strip()
    try:
        fields = json.loads(first)
    except ValueError:
        return {"backend": first}
    if not isinstance(fields, dict):
        return {"backend": first}
    if fields.get("predictor") == "detector" and fields.get("detector"):
        return _fields(str(fields["detector"]))
    return fields


def backend_of(identity: str) -> str:
    """The backend named by an identity (a backend name is its own identity); `unknown` if none."""
    fields = _fields(identity)
    if fields.get("predictor"):
        return str(fields["predictor"])
    return str(fields.get("backend") or "unknown")


def display_name(identity_or_backend: str) -> str:
    """`MegadetectorLite (YOLOX-tiny, zamba)`, `MegaDetector`, ... for a backend or an identity."""
    backend = backend_of(identity_or_backend)
    if _fields(identity_or_backend).get("predictor"):
        return f"{backend} species model (WildBench)"
    return NAMES.get(backend, backend)


def version_of(identity: str) -> str:
    """The detector's version: its checkpoint (where known) and weights sha256 prefix; `` for manifest."""
    fields = _fields(identity)
    parts = [VERSIONS.get(str(fields.get("backend")), ""),
             f"weights sha256 {fields['weights']}" if fields.get("weights") else ""]
    return ", ".join(p for p in parts if p)


def is_machine(identity: str) -> bool:
    """Whether boxes of this identity were drawn by a model (not by people, as a manifest's are); with
    several detectors, a model drew some, so they cannot all be called human."""
    return any(backend_of(one) not in ("manifest", "unknown", "none") for one in (identity or "").split(" | "))


def classified_by(identity: str) -> str:
    """`<name> <version>` of whoever drew the boxes (Camtrap DP `classifiedBy`); each of a release's
    detectors, ` | `-joined, when its splits were labelled by more than one."""
    named = [f"{display_name(one)} {version_of(one)}".strip() for one in (identity or "").split(" | ")]
    return " | ".join(dict.fromkeys(named))


def md_detector_metadata(identity: str, threshold: float | None) -> dict:
    """`info.detector_metadata` of a MegaDetector 1.6 file: our detector's real identity and the
    threshold the boxes are meant to be read at (the label threshold, or the prediction confidence)."""
    metadata = {"megadetector_version": classified_by(identity),
                "conf_digits": CONF_DIGITS, "coord_digits": COORD_DIGITS}
    if threshold is not None:
        metadata["typical_detection_threshold"] = float(threshold)
    return metadata
