"""Predicting a day's new images with the promoted model, cached per (predictor, image content) in the
label cache, checkpointed as it goes."""

import hashlib
import json
import tempfile
from pathlib import Path

import pandas as pd

from wildbench_assets.lib.image_header import UNREADABLE
from wildbench_assets.lib.labels import image_id
from wildbench_assets.resources.label_cache import CHECKPOINT_EVERY, Computed, LabelCache, cached_inference


def predict_images(images: pd.DataFrame, read, predictor, label_cache: LabelCache, log) -> tuple[list, int]:
    """([(path, prediction)] in `images` order, inferences made). Predictions are cached per
    (predictor identity, image content): an unchanged object (same etag) is not even read, the same
    content under another path is not inferred on again."""
    unreadable = images.status.isin(UNREADABLE)
    found = {path: {"width": None, "height": None, "detections": None, "failure": f"{status}: {reason}"}
             for path, status, reason in zip(images.path[unreadable], images.status[unreadable],
                                             images.reason[unreadable])}
    by_sha = label_cache.contents(predictor.identity)  # read only if some image has to be read
    inferences = 0

    def predict(todo: list[str]):
        nonlocal inferences
        with tempfile.TemporaryDirectory(prefix="wildbench-predict-") as tmp:
            for start in range(0, len(todo), CHECKPOINT_EVERY):  # one predictor batch per checkpoint
                files = []
                for path in todo[start:start + CHECKPOINT_EVERY]:
                    try:
                        data = read(path)
                    except OSError as err:
                        yield _computed(path, None, {"width": None, "height": None, "detections": None,
                                                     "failure": f"image access failure: {err}"})
                        continue
                    sha = hashlib.sha256(data).hexdigest()
                    if sha in by_sha:  # same content under another path
                        yield _computed(path, sha, json.loads(by_sha[sha]))
                        continue
                    local = Path(tmp, image_id(path))
                    local.write_bytes(data)
                    files.append((path, sha, local))
                for (path, sha, local), prediction in zip(files, predictor.predict_files([f[2] for f in files])):
                    local.unlink()
                    if prediction["failure"] is None:
                        inferences += 1
                        by_sha[sha] = json.dumps(prediction)
                    yield _computed(path, sha, prediction)

    readable = images[~unreadable]
    hits, computed = cached_inference(label_cache, predictor.identity, readable.path, readable.etag, predict, log,
                                      "prediction")
    found.update({path: json.loads(hit.detections) for path, hit in hits.items()})
    found.update({path: c.result for path, c in computed.items()})
    log.info(f"prediction: {inferences} inferences")
    return [(path, found[path]) for path in images.path], inferences


def _computed(path: str, sha: str | None, prediction: dict) -> Computed:
    """A prediction as the cache keeps it: the whole prediction, when it did not fail."""
    text = json.dumps(prediction) if prediction.get("failure") is None else None
    return Computed(path, sha, prediction.get("width"), prediction.get("height"), text, prediction)
