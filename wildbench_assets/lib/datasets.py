"""Training datasets of one split: YOLO (txt + dataset.yaml), Pascal VOC xml, COCO json.

Layout under `datasets/`: `<split>/images/<id>.jpg`, `<split>/labels/<id>.txt` (YOLO: ultralytics maps
`/images/` to `/labels/`), `<split>/voc/<id>.xml`, `<split>/coco.json`, and `dataset.yaml` naming the
three splits and the classes in the thesis's order. Empties get an image and no label file (YOLO's
background images); animal images without a box, and failed images, are left out and counted.
"""

from __future__ import annotations

import json

import pandas as pd
import yaml

from wildbench_assets.lib.annotations import Box, voc_xml, yolo_line
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


def dataset_yaml(root: str, class_names: list[str]) -> str:
    return yaml.safe_dump({"path": root, "train": "train/images", "val": "val/images", "test": "test/images",
                           "names": dict(enumerate(class_names))}, sort_keys=False)


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
