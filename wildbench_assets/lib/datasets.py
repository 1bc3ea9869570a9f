"""Training datasets of a release's train and val splits: YOLO (txt + dataset.yaml), Pascal VOC xml, COCO.

Layout under `datasets/<release>/`: `<split>/images/<id>.jpg`, `<split>/labels/<id>.txt` (YOLO:
ultralytics maps `/images/` to `/labels/`), `<split>/voc/<id>.xml`, `<split>/coco.json`, and
`dataset.yaml` naming train and val (relative to its folder) and the release's classes. Empties get an
image and no label file (YOLO's background images). The same rows make the thesis-layout ZIPs
(`archive_members`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd
import yaml

from wildbench_assets.lib.annotations import Box, parse_voc_xml, voc_xml, yolo_line
from wildbench_assets.lib.labels import EMPTY, LABELLED, boxes_of, image_id


def usable(labels: pd.DataFrame) -> pd.DataFrame:
    """The rows that go into training data: labelled animals and empties."""
    return labels[labels.label_status.isin([LABELLED, EMPTY])].sort_values("path", ignore_index=True)


def yolo_text(row: dict) -> str:
    return "\n".join(yolo_line(int(row["class_index"]), box) for box, _conf in boxes_of(row)) + "\n"


def voc_text(row: dict, class_names: list[str]) -> str:
    objects = [(class_names[int(row["class_index"])], box) for box, _conf in boxes_of(row)]
    return voc_xml(image_id(row["path"]), int(row["width"]), int(row["height"]), objects)


def coco_document(rows: list[dict], class_names: list[str], split: str) -> dict:
    images, annotations = [], []
    for number, row in enumerate(rows, start=1):
        width, height = int(row["width"]), int(row["height"])
        images.append({"id": number, "file_name": f"images/{image_id(row['path'])}", "width": width,
                       "height": height, "source_path": row["path"], "park": row["park"]})
        for box, conf in boxes_of(row):
            x, y, w, h = box.to_coco(width, height)
            annotations.append({"id": len(annotations) + 1, "image_id": number,
                                "category_id": int(row["class_index"]) + 1, "bbox": [x, y, w, h],
                                "area": round(w * h, 2), "iscrowd": 0, "score": conf})
    return {"info": {"description": f"WildBench {split} split"}, "images": images, "annotations": annotations,
            "categories": [{"id": i + 1, "name": name} for i, name in enumerate(class_names)]}


def dataset_yaml(class_names: list[str], train: str = "train/images", val: str = "val/images") -> str:
    """The splits relative to the file's own folder (no `path`: ultralytics then resolves them against the
    yaml's folder, wherever it was unzipped; the trainers' copy sets `path` to where it lies)."""
    return yaml.safe_dump({"train": train, "val": val, "names": dict(enumerate(class_names))}, sort_keys=False)


def read_back_yolo(text: str) -> list[tuple[int, Box]]:
    from wildbench_assets.lib.annotations import parse_yolo_line

    return [parse_yolo_line(line) for line in text.splitlines() if line.strip()]


def coco_boxes_by_file(document: dict) -> dict[str, list[Box]]:
    sizes = {i["id"]: (i["file_name"], i["width"], i["height"]) for i in document["images"]}
    out: dict[str, list[Box]] = {name: [] for name, _w, _h in sizes.values()}
    for a in document["annotations"]:
        name, width, height = sizes[a["image_id"]]
        out[name].append(Box.from_coco(a["bbox"], width, height))
    return out


def dumps(document: dict) -> str:
    return json.dumps(document, indent=1)


FORMATS = ("yolo", "voc", "coco")


def archive_members(rows: list[dict], class_names: list[str], formats: tuple[str, ...] | list[str] = ("yolo",),
                    extra: dict | None = None) -> list:
    """ZIP members in the thesis's layout: `<park>/<species>/<id>.jpg`, with `<id>.txt` (YOLO) and/or
    `<id>.xml` (VOC) for labelled images, `coco.json` if asked, and `manifest.json` always."""
    from wildbench_assets.lib.zips import ZipMember, manifest_json, member_name

    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ValueError(f"unknown formats {sorted(unknown)}; expected some of {FORMATS}")
    members, manifest_rows = [], []
    for row in rows:
        name = member_name(row["park"], row["species"], image_id(row["path"]))
        stem = name.rsplit(".", 1)[0]
        members.append(ZipMember(name, source=row["path"]))
        if row["label_status"] == LABELLED:
            if "yolo" in formats:
                members.append(ZipMember(stem + ".txt", text=yolo_text(row)))
            if "voc" in formats:
                members.append(ZipMember(stem + ".xml", text=voc_text(row, class_names)))
        manifest_rows.append({"file": name, "source": row["path"], "park": row["park"], "species": row["species"],
                              "sha256": row["sha256"], "boxes": [b.to_md() + [c] for b, c in boxes_of(row)]})
    if "coco" in formats:
        document = coco_document(rows, class_names, (extra or {}).get("split", "export"))
        for image, row in zip(document["images"], rows):
            image["file_name"] = member_name(row["park"], row["species"], image_id(row["path"]))
        members.append(ZipMember("coco.json", text=dumps(document)))
    members.append(ZipMember("manifest.json",
                             text=manifest_json(manifest_rows, {**(extra or {}), "images": len(rows)})))
    return members


def download_members(rows: list[dict], class_names: list[str], split: str, shared: list,
                     extra: dict | None = None) -> list:
    """A release's train/val download in the layout ultralytics, pycocotools and torchvision read after a
    plain unzip (train.zip and val.zip unzip into one folder without clashing):
    `images/<split>/<park>/<species>/<id>.jpg`, `labels/<split>/.../<stem>.txt` (YOLO: ultralytics maps
    `/images/` to `/labels/`), `voc/<split>/.../<stem>.xml`, `annotations/instances_<split>.json` (COCO,
    `file_name` relative to `images/<split>`), `annotations/manifest_<split>.json`, then `shared` (the
    release's dataset.yaml, classes.txt, README.md and LICENSE: the same bytes in every download)."""
    from wildbench_assets.lib.zips import ZipMember, manifest_json, member_name

    members, manifest_rows = [], []
    for row in rows:
        inner = member_name(row["park"], row["species"], image_id(row["path"]))
        stem = inner.rsplit(".", 1)[0]
        members.append(ZipMember(f"images/{split}/{inner}", source=row["path"]))
        if row["label_status"] == LABELLED:
            members.append(ZipMember(f"labels/{split}/{stem}.txt", text=yolo_text(row)))
            members.append(ZipMember(f"voc/{split}/{stem}.xml", text=voc_text(row, class_names)))
        manifest_rows.append({"file": f"images/{split}/{inner}", "source": row["path"], "park": row["park"],
                              "species": row["species"], "sha256": row["sha256"],
                              "boxes": [b.to_md() + [c] for b, c in boxes_of(row)]})
    document = coco_document(rows, class_names, split)
    for image, row in zip(document["images"], rows):
        image["file_name"] = member_name(row["park"], row["species"], image_id(row["path"]))
    document["info"]["image_folder"] = f"images/{split}"
    members.append(ZipMember(f"annotations/instances_{split}.json", text=dumps(document)))
    members.append(ZipMember(f"annotations/manifest_{split}.json",
                             text=manifest_json(manifest_rows, {**(extra or {}), "images": len(rows)})))
    return [*members, *shared]


def formats_disagreement(yolo: list, coco: list, voc: list, expected: int, width: int, height: int) -> int:
    """How many boxes of one image the three formats (read back as normalised `Box`es) disagree on: a
    corner more than a pixel apart, or a box present in one format and missing in another. Also counts
    a box count that differs from `expected`."""
    tolerance = 1.0 / min(width, height)
    count = max(len(yolo), len(coco), len(voc), expected)
    agree = 0
    for a, b, c in zip(yolo, coco, voc):
        corners = [(a.x1, b.x1, c.x1), (a.y1, b.y1, c.y1), (a.x2, b.x2, c.x2), (a.y2, b.y2, c.y2)]
        if all(max(v) - min(v) <= tolerance for v in corners):
            agree += 1
    return count - agree


@dataclass(frozen=True)
class WrittenSplit:
    """A training split as read back from its files (names relative to the split's folder)."""

    image_bytes: dict[str, int]     # images/<id> -> size
    yolo_texts: dict[str, str]      # labels/<stem>.txt -> text
    voc_texts: dict[str, str]       # voc/<stem>.xml -> text
    coco: dict                      # coco.json


@dataclass(frozen=True)
class DatasetFindings:
    """What a training split's checks are made of: its labels against the files written for them."""

    images: int                     # usable rows: labelled animals and empties
    labelled: int
    boxes: int                      # boxes of the labelled rows
    left_out: dict[str, int]        # label_status -> rows not written (no detection, failed)
    missing: int                    # usable images with no or an empty image file
    image_files: int
    label_files: int
    disagreements: int              # boxes the YOLO, VOC and COCO files disagree on

    @property
    def empties(self) -> int:
        return self.images - self.labelled

    @property
    def counts_add_up(self) -> bool:
        return self.label_files == self.labelled and self.image_files == self.images


def stem_of(path: str) -> str:
    """The file stem an image's label files go by."""
    return image_id(path).rsplit(".", 1)[0]


LABEL_COLUMNS = ["path", "park", "species", "label_status", "class_index", "n_boxes", "width", "height", "boxes"]


def labels_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows as the labels table `dataset_findings` reads (with its columns when there is no row)."""
    return pd.DataFrame(rows).reindex(columns=list(dict.fromkeys([*LABEL_COLUMNS, *(rows[0] if rows else [])])))


def dataset_findings(labels: pd.DataFrame, written: WrittenSplit) -> DatasetFindings:
    """Read-back findings: every usable image present and non-empty, one YOLO file per labelled image,
    and the three formats agreeing on every box (`formats_disagreement`)."""
    rows = usable(labels).to_dict("records")
    labelled = [r for r in rows if r["label_status"] == LABELLED]
    coco = coco_boxes_by_file(written.coco)
    disagree = 0
    for row in labelled:
        stem = stem_of(row["path"])
        yolo = [box for _cls, box in read_back_yolo(written.yolo_texts.get(f"labels/{stem}.txt", ""))]
        voc_text = written.voc_texts.get(f"voc/{stem}.xml")
        voc = [box for _name, box in parse_voc_xml(voc_text)[2]] if voc_text else []
        disagree += formats_disagreement(yolo, coco.get(f"images/{image_id(row['path'])}", []), voc,
                                         int(row["n_boxes"]), int(row["width"]), int(row["height"]))
    statuses = labels.label_status.value_counts()
    return DatasetFindings(
        images=len(rows), labelled=len(labelled), boxes=int(sum(r["n_boxes"] for r in labelled)),
        left_out={str(k): int(v) for k, v in statuses.items() if k not in (LABELLED, EMPTY)},
        missing=sum(not written.image_bytes.get(f"images/{image_id(r['path'])}") for r in rows),
        image_files=len(written.image_bytes), label_files=len(written.yolo_texts), disagreements=disagree)
