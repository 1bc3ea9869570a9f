"""Predicting a day's new images with the promoted model, cached per (predictor, image content) in the
label cache, checkpointed as it goes."""

import hashlib
import json
import tempfile
from pathlib import Path

import pandas as pd

from wildbench_assets.lib.image_header import UNREADABLE
from wildbench_assets.lib.labels import image_id
from wildbench_assets.resources.label_cache import LabelCache
from wildbench_assets.resources.labelling import CHECKPOINT_EVERY


def predict_images(images: pd.DataFrame, read, predictor, label_cache: LabelCache, log) -> tuple[list, int]:
    """([(path, prediction)] in `images` order, inferences made). Predictions are cached per
    (predictor identity, image content): an unchanged object (same etag) is not even read, the same
    content under another path is not inferred on again."""
    cached = label_cache.lookup(predictor.identity, images.path)  # only these images, not the whole cache
    by_etag = {(p, e): d for p, e, d in zip(cached.path, cached.etag, cached.detections)}
    by_sha = label_cache.contents(predictor.identity)  # read only if some image has to be read
    found: dict[str, dict] = {}
    inferences = 0
    todo = []
    for path, etag, status, reason in images[["path", "etag", "status", "reason"]].itertuples(index=False):
        if status in UNREADABLE:
            found[path] = {"width": None, "height": None, "detections": None, "failure": f"{status}: {reason}"}
        elif (path, etag) in by_etag:
            found[path] = json.loads(by_etag[(path, etag)])
        else:
            todo.append((path, etag))
    with tempfile.TemporaryDirectory(prefix="wildbench-predict-") as tmp:
        for start in range(0, len(todo), CHECKPOINT_EVERY):
            chunk, files, new_rows = todo[start:start + CHECKPOINT_EVERY], [], []
            for path, etag in chunk:
                try:
                    data = read(path)
                except OSError as err:
                    found[path] = {"width": None, "height": None, "detections": None,
                                   "failure": f"image access failure: {err}"}
                    continue
                sha = hashlib.sha256(data).hexdigest()
                if sha in by_sha:
                    found[path] = json.loads(by_sha[sha])
                    new_rows.append((path, etag, sha, by_sha[sha]))
                    continue
                local = Path(tmp, image_id(path))
                local.write_bytes(data)
                files.append((path, etag, sha, local))
            for (path, etag, sha, local), prediction in zip(files, predictor.predict_files([f[3] for f in files])):
                found[path] = prediction
                local.unlink()
                if prediction["failure"] is None:
                    inferences += 1
                    text = json.dumps(prediction)
                    by_sha[sha] = text
                    new_rows.append((path, etag, sha, text))
            label_cache.append(predictor.identity, pd.DataFrame(
                [{"path": p, "etag": e, "sha256": s, "width": json.loads(t)["width"], "height": json.loads(t)["height"],
                  "detections": t} for p, e, s, t in new_rows]))
            log.info(f"{min(start + CHECKPOINT_EVERY, len(todo))}/{len(todo)} images predicted "
                     f"({inferences} inferences)")
    return [(path, found[path]) for path in images.path], inferences
