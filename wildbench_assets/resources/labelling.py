"""Labelling images with the detector: boxes from the label cache when this detector has seen an object
or its content, the detector for the rest, checkpointed into the cache as it goes."""

import hashlib
import json
from collections.abc import Mapping

import pandas as pd

from wildbench_assets.lib import labels as lab
from wildbench_assets.lib.annotations import Box
from wildbench_assets.resources.detector import ANIMAL, Detection, DetectorResource
from wildbench_assets.resources.label_cache import (
    Computed,
    LabelCache,
    cached_inference,
    detections_from_json,
    detections_to_json,
)
from wildbench_assets.resources.manifests import load_manifests
from wildbench_assets.taxonomy import EMPTY as EMPTY_SPECIES


def _manifest_detections(store, parks, taxonomy) -> dict[str, tuple]:
    boxes = {}
    for park in parks:
        for key, entry in load_manifests(store, park, taxonomy).items():
            if entry.width and entry.height:
                boxes[key] = tuple(Detection(ANIMAL, 1.0, Box.from_coco([x, y, w, h], entry.width, entry.height))
                                   for _species, x, y, w, h in entry.boxes)
    return boxes


DECODED = "strict-decode"  # label cache identity of empties that decoded whole (no detector involved)


def _decoded_empties(empties: pd.DataFrame, store, label_cache: LabelCache, log, name: str) -> dict[str, dict]:
    """path -> result for empty images: no detector runs on them, but they are published too, so each is
    decoded strictly once (a truncated empty scene is a failed row, never a half-grey photo in a
    release); what decoded whole is remembered by (path, etag) in the label cache."""
    from wildbench_assets.lib.image_decode import UndecodableImage, decode_image

    def decode(todo: list[str]):
        for path in todo:
            try:
                data = store.read(path)
                width, height = decode_image(data).size
            except (UndecodableImage, OSError) as err:
                yield Computed(path, None, None, None, None, {"failure": f"image decode failure: {err}"})
                continue
            sha = hashlib.sha256(data).hexdigest()
            yield Computed(path, sha, width, height, "[]", {"sha256": sha, "width": width, "height": height,
                                                             "detections": [], "failure": None})

    hits, computed = cached_inference(label_cache, DECODED, empties.path, empties.etag, decode, log,
                                      f"{name} (empty images)")
    return {**{path: {"sha256": hit.sha256, "width": hit.width, "height": hit.height, "detections": [],
                      "failure": None} for path, hit in hits.items()},
            **{path: c.result for path, c in computed.items()}}


class _ParsedContents(Mapping):
    """The label cache's content index as the detector wants it: sha256 -> detections, parsed on a hit."""

    def __init__(self, index):
        self._index = index

    def __getitem__(self, sha):
        return detections_from_json(self._index[sha])

    def __contains__(self, sha):
        return sha in self._index

    def __iter__(self):
        return iter(self._index)

    def __len__(self):
        return len(self._index)


def label_images(images: pd.DataFrame, store, detector: DetectorResource, label_cache: LabelCache, tax,
                 threshold: float, log, name: str, progress=None):
    """(one label row per image, the detector used). Boxes come from the label cache when this detector
    has seen the object (same etag) or its content (same sha256); only new images are inferred on.
    `images` needs path, etag, park, species, camera, split, width, height. `progress(done, total)` is
    told how many of the images to read are done, now and then."""
    animals = images[images.species != EMPTY_SPECIES]
    manifest = (_manifest_detections(store, sorted(images.park.unique()), tax)
                if detector.backend == "manifest" else None)
    model = detector.load(manifest)

    def detect(to_run: list[str]):
        known_sha = _ParsedContents(label_cache.contents(model.identity)) if to_run else {}
        for found in model.run(to_run, store.read, known=known_sha):
            yield Computed(found.key, found.sha256, found.width, found.height,
                           detections_to_json(found.detections) if found.failure is None else None,
                           {"sha256": found.sha256, "width": found.width, "height": found.height,
                            "detections": [d.to_md() for d in found.detections], "failure": found.failure})

    hits, computed = cached_inference(label_cache, model.identity, animals.path, animals.etag, detect, log,
                                      f"{name} (animal images)", progress)
    results = {path: {"sha256": hit.sha256, "width": hit.width, "height": hit.height,  # unchanged: not even read
                      "detections": json.loads(hit.detections), "failure": None} for path, hit in hits.items()}
    results.update({path: c.result for path, c in computed.items()})
    log.info(f"{name}: {model.inferences} inferences")
    results.update(_decoded_empties(images[images.species == EMPTY_SPECIES], store, label_cache, log, name))
    rows = []
    for image in images.itertuples(index=False):
        found = results.get(image.path, {})
        base = {"path": image.path, "park": image.park, "species": image.species, "camera": image.camera,
                "split": image.split,
                "class_index": tax.class_index(image.species) if image.species != EMPTY_SPECIES else -1,
                "sha256": found.get("sha256"), "width": found.get("width") or image.width,
                "height": found.get("height") or image.height}
        rows.append(lab.label_row(base, found.get("detections"), found.get("failure"), threshold))
    labels = pd.DataFrame(rows, columns=lab.LABEL_COLUMNS)  # columns even for an empty split
    labels["width"] = labels["width"].astype("Int64")
    labels["height"] = labels["height"].astype("Int64")
    for path in labels.path[labels.label_status == lab.NO_DETECTION].head(20):
        log.warning(f"{path}: no animal detection >= {threshold}")
    return labels, model
