"""Writing a split's training data (images, YOLO, VOC, COCO, dataset.yaml) into the artifact store, and
reading it back for the checks."""

import json
import shutil
from pathlib import Path

from wildbench_assets.lib import datasets as ds
from wildbench_assets.lib.labels import LABELLED, image_id
from wildbench_assets.resources.artifacts import ArtifactStore


def write_training_split(artifacts: ArtifactStore, store, root: str, split: str, rows: list[dict],
                         class_names: list[str]) -> tuple[Path, Path]:
    """(the split's folder, dataset.yaml): `<root>/<split>/` replaced whole with the images of `rows`
    (streamed from the archive), a YOLO txt and a VOC xml per labelled image and coco.json; then the
    shared `<root>/dataset.yaml`."""
    with artifacts.writing_dir(f"{root}/{split}") as folder:
        for sub in ("images", "labels", "voc"):
            (folder / sub).mkdir()
        for row in rows:
            name = image_id(row["path"])
            with store.open_stream(row["path"]) as src, open(folder / "images" / name, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            stem = ds.stem_of(row["path"])
            if row["label_status"] == LABELLED:
                (folder / "labels" / f"{stem}.txt").write_text(ds.yolo_text(row))
                (folder / "voc" / f"{stem}.xml").write_text(ds.voc_text(row, class_names))
        (folder / "coco.json").write_text(ds.dumps(ds.coco_document(rows, class_names, split)))
    dataset_root = artifacts.path(root)
    with artifacts.writing(f"{root}/dataset.yaml") as tmp:
        tmp.write_text(ds.dataset_yaml(str(dataset_root), class_names))
    return artifacts.path(f"{root}/{split}"), dataset_root / "dataset.yaml"


def read_training_split(folder: Path) -> ds.WrittenSplit:
    """What the split's files hold, as written."""
    def texts(sub: str) -> dict[str, str]:
        return {f"{sub}/{p.name}": p.read_text() for p in sorted((folder / sub).iterdir())}

    coco = folder / "coco.json"
    return ds.WrittenSplit(
        image_bytes={f"images/{p.name}": p.stat().st_size for p in sorted((folder / "images").iterdir())},
        yolo_texts=texts("labels"), voc_texts=texts("voc"),
        coco=json.loads(coco.read_text()) if coco.exists() else {"images": [], "annotations": []})
