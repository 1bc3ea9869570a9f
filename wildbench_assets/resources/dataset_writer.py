"""Writing a split's training data (images, YOLO, VOC, COCO) into a staging folder, and reading it back
for the checks."""

import hashlib
import json
from pathlib import Path

from wildbench_assets.lib import datasets as ds
from wildbench_assets.lib.labels import LABELLED, image_id


def write_training_split(folder: Path, store, split: str, rows: list[dict],
                         class_names: list[str]) -> tuple[ds.WrittenSplit, dict[str, str]]:
    """(what was written, read back; the sha256 of each image as copied, by archive path): `<folder>/<split>/`
    with the images of `rows` (streamed from the archive), a YOLO txt and a VOC xml per labelled image
    and coco.json. `folder` is a staging folder the caller publishes after its checks."""
    digests, root = {}, folder / split
    for sub in ("images", "labels", "voc"):
        (root / sub).mkdir(parents=True)
    for row in rows:
        name = image_id(row["path"])
        with store.open_stream(row["path"]) as src, open(root / "images" / name, "wb") as dst:
            digests[row["path"]] = copy_hashing(src, dst)
        stem = ds.stem_of(row["path"])
        if row["label_status"] == LABELLED:
            (root / "labels" / f"{stem}.txt").write_text(ds.yolo_text(row))
            (root / "voc" / f"{stem}.xml").write_text(ds.voc_text(row, class_names))
    (root / "coco.json").write_text(ds.dumps(ds.coco_document(rows, class_names, split)))
    return read_training_split(root), digests


def copy_hashing(src, dst) -> str:
    """Copy a stream in 1 MiB chunks; the sha256 of what was copied."""
    digest = hashlib.sha256()
    while chunk := src.read(1 << 20):
        digest.update(chunk)
        dst.write(chunk)
    return digest.hexdigest()


def read_training_split(folder: Path) -> ds.WrittenSplit:
    """What the split's files hold, as written (a folder absent, as an empty one synced from S3 is: empty)."""
    def files(sub: str) -> list[Path]:
        return sorted((folder / sub).iterdir()) if (folder / sub).is_dir() else []

    def texts(sub: str) -> dict[str, str]:
        return {f"{sub}/{p.name}": p.read_text() for p in files(sub)}

    coco = folder / "coco.json"
    return ds.WrittenSplit(
        image_bytes={f"images/{p.name}": p.stat().st_size for p in files("images")},
        yolo_texts=texts("labels"), voc_texts=texts("voc"),
        coco=json.loads(coco.read_text()) if coco.exists() else {"images": [], "annotations": []})
