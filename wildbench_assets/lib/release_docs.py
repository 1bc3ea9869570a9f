"""The documents every download of a release carries: `dataset.yaml` (ultralytics), `classes.txt`, `README.md`
and `LICENSE`. Pure functions of the frozen manifest and facts, so a rebuild writes the same bytes.

Layout after `unzip -o train.zip -d wb && unzip -o val.zip -d wb` (the shared documents are identical):
`wb/dataset.yaml`, `wb/images/{train,val}/…`, `wb/labels/{train,val}/…`, `wb/voc/…`, `wb/annotations/…`.
`dataset.yaml` names both splits: with only one ZIP unzipped ultralytics stops, naming the missing folder
(a yaml that trained on train alone would validate on its own training images without saying so).
"""

from __future__ import annotations

import pandas as pd

from wildbench_assets.lib.datasets import dataset_yaml
from wildbench_assets.lib.releases import HIDDEN_SPLITS, PUBLIC_SPLITS, RELEASE_SPLITS, SPLIT_MEANINGS, ReleaseFacts

LICENCE_NOT_STATED = "not stated by the operator"


def release_docs(manifest: pd.DataFrame, facts: ReleaseFacts, manifest_sha256: str) -> dict[str, str]:
    """name -> text of the release's documents (`lib.releases.TRAINING_DOCS`)."""
    names = list(facts.class_names)
    return {"dataset.yaml": f"# WildBench release {facts.release}: `yolo train data=dataset.yaml` after unzipping "
                            "train.zip and val.zip here\n"
                            + dataset_yaml(names, train="images/train", val="images/val"),
            "classes.txt": "".join(f"{name}\n" for name in names),
            "README.md": readme(manifest, facts, manifest_sha256),
            "LICENSE": licence_text(facts)}


def licence_text(facts: ReleaseFacts) -> str:
    """The terms the operator stated at the cut, or a plain statement that none were stated: the photos
    belong to the archive's owner, and no licence is invented for them."""
    head = f"WildBench release {facts.release}: terms of use of the images and labels\n\n"
    if facts.licence:
        return head + facts.licence.strip() + "\n"
    return head + (
        "The images are camera-trap photographs from the archive this WildBench instance was built from. They\n"
        "belong to that archive's owner and are distributed under the owner's terms; the labels (species from\n"
        "the archive, boxes from a detector) are derived from them and follow the same terms.\n\n"
        f"Those terms were {LICENCE_NOT_STATED} when this release was cut: ask the operator of this WildBench\n"
        "instance before using or redistributing these files.\n\n"
        "Operators: state the terms in $WILDBENCH_DATA_LICENCE, `wildbench release --licence \"...\"` or the\n"
        "`licence` field of the benchmark_release run config when cutting a release; they are frozen with it.\n")


def readme(manifest: pd.DataFrame, facts: ReleaseFacts, manifest_sha256: str) -> str:
    per_split = {s: int((manifest.split == s).sum()) for s in RELEASE_SPLITS}
    release = facts.release
    secret = facts.profile == "default"
    lines = [
        f"# WildBench release {release}", "",
        f"A camera-trap object-detection benchmark: one box class per species, {len(facts.class_names)} classes. "
        f"Cut {facts.cut_at} (code version `{facts.code_version}`, profile `{facts.profile}`); manifest sha256 "
        f"`{manifest_sha256}`.", "",
        "| download | images | labels |", "|---|---|---|",
        *(f"| {s}.zip | {per_split[s]} | YOLO txt, Pascal VOC xml, COCO json |" for s in PUBLIC_SPLITS),
        *(f"| {s}.zip | {per_split[s]} | none (hidden; named by public id) |" for s in HIDDEN_SPLITS), "",
        "## Classes", "",
        "In this order everywhere: YOLO class index = line of `classes.txt` - 1 = COCO `category_id` - 1.", "",
        *(f"- {i}: `{name}`" for i, name in enumerate(facts.class_names)), "",
        "## What a training download holds", "",
        "Unzip `train.zip` and `val.zip` into one folder (`unzip -o`: both carry the same `dataset.yaml`, "
        "`classes.txt`, `README.md` and `LICENSE`):", "",
        "- `images/<split>/<park>/<species>/<id>.jpg`: the images, as in the archive (EXIF kept)",
        "- `labels/<split>/<park>/<species>/<id>.txt`: YOLO `class cx cy w h`, normalised; an empty image "
        "has no label file (a background image)",
        "- `voc/<split>/<park>/<species>/<id>.xml`: Pascal VOC, absolute pixel corners",
        "- `annotations/instances_<split>.json`: COCO, `file_name` relative to `images/<split>`; "
        "`annotations/manifest_<split>.json`: each image's archive path, park, species and sha256",
        "- `dataset.yaml`: ultralytics' dataset file (train `images/train`, val `images/val`, the classes above); "
        "it needs both ZIPs unzipped", "",
        "## How to use it", "",
        "```bash",
        "unzip -o train.zip -d wb && unzip -o val.zip -d wb",
        "yolo train data=wb/dataset.yaml model=yolov8s.pt epochs=20 imgsz=640",
        "```", "",
        "```python",
        "from pycocotools.coco import COCO",
        "from torchvision.datasets import CocoDetection",
        "coco = COCO('wb/annotations/instances_train.json')",
        "train = CocoDetection('wb/images/train', 'wb/annotations/instances_train.json')",
        "```", "",
        "## How the splits were made", "",
        f"- Leakage grouping: `{facts.split_by}` (seed {facts.split_seed}): {SPLIT_MEANINGS[facts.split_by]}.",
        "- `test`: cameras no training image comes from (the headline); `test_seen`: sequences of training "
        "cameras that share no burst with train or val.",
        *(f"- Bursts at {park}: {r['mode']} rule, frames closer than {r['interval_s']} s to the last kept one "
          "dropped." for park, r in sorted(facts.burst_rules.items())),
        f"- Boxes: machine-made by detector `{facts.detector}`, kept at confidence >= {facts.label_threshold}; "
        "species from the archive.",
        *([] if secret else ["- This release reproduces the thesis's construction: its test labels are not "
                             "secret (see the datasheet)."]), "",
        "## Test sets and submitting", "",
        "`test.zip` and `test_seen.zip` hold images named by public id (`images/wb<16 hex>.jpg`, EXIF stripped) "
        "and `images.csv` (`public_id,file,width,height`); their labels are hidden. Public ids are keyed per "
        "release: the same photo has another id in another release. Unzip each test set into its own folder.", "",
        "Predict both test sets and submit one file covering them, with images named by public id: MegaDetector "
        "1.6 or COCO results json (category ids as above, + 1), or a CSV `image_id,label` (species code or "
        f"`emp`). Submit it on the portal, or `wildbench score --release {release} --predictions FILE --submit "
        "ID`. Only aggregates per test set are reported.", "",
        "## Licence", "",
        f"See `LICENSE`: {'as the operator stated it at the cut' if facts.licence else LICENCE_NOT_STATED + '.'}", "",
        "## How to cite", "",
        f"WildBench camera-trap benchmark, release {release} (manifest sha256 `{manifest_sha256}`), built from "
        "the archive and method of the thesis it reproduces; cite the release id and the manifest sha256.", "",
    ]
    return "\n".join(lines)
