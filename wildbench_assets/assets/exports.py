"""Training datasets (YOLO, VOC, COCO) and the split ZIPs of the thesis's layout."""

import json
import shutil
import zipfile

import dagster as dg
import pandas as pd

from wildbench_assets.assets.checks import publish
from wildbench_assets.automation import when_inputs_changed
from wildbench_assets.lib import datasets as ds
from wildbench_assets.lib import releases as rel
from wildbench_assets.lib.annotations import parse_voc_xml
from wildbench_assets.lib.labels import EMPTY, LABELLED, image_id
from wildbench_assets.lib.splits import TEST_SETS
from wildbench_assets.lib.versions import table_version
from wildbench_assets.lib.zips import verify_zip
from wildbench_assets.partitions import split_partitions
from wildbench_assets.resources.archive import ArchiveResource
from wildbench_assets.resources.artifacts import ArtifactStore
from wildbench_assets.resources.release_writer import open_stripped
from wildbench_assets.resources.taxonomy import TaxonomyResource


@dg.asset(
    partitions_def=split_partitions,
    group_name="labels",
    kinds={"yolo", "coco"},
    code_version="1",
    automation_condition=when_inputs_changed(),
    check_specs=[dg.AssetCheckSpec(n, asset="training_datasets", blocking=True)
                 for n in ("files_present", "counts_add_up", "formats_agree")],
)
def training_datasets(context: dg.AssetExecutionContext, archive: ArchiveResource, artifacts: ArtifactStore,
                      taxonomy: TaxonomyResource, detection_labels: pd.DataFrame):
    """The split as training data: YOLO images + txt labels + dataset.yaml (classes in the thesis's
    order), Pascal VOC xml (absolute pixel corners) and COCO json, under `artifacts/datasets/`."""
    store, names = archive.open(), taxonomy.load().class_names
    split = context.partition_key
    rows = ds.usable(detection_labels).to_dict("records")
    left_out = detection_labels.label_status.value_counts().drop([LABELLED, EMPTY], errors="ignore").to_dict()
    with artifacts.writing_dir(f"datasets/{split}") as folder:
        for sub in ("images", "labels", "voc"):
            (folder / sub).mkdir()
        for row in rows:
            name = image_id(row["path"])
            with store.open_stream(row["path"]) as src, open(folder / "images" / name, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            stem = name.rsplit(".", 1)[0]
            if row["label_status"] == LABELLED:
                (folder / "labels" / f"{stem}.txt").write_text(ds.yolo_text(row))
                (folder / "voc" / f"{stem}.xml").write_text(ds.voc_text(row, names))
        coco = ds.coco_document(rows, names, split)
        (folder / "coco.json").write_text(ds.dumps(coco))
    root = artifacts.path("datasets")
    with artifacts.writing("datasets/dataset.yaml") as tmp:
        tmp.write_text(ds.dataset_yaml(str(root), names))

    # Read everything back: files present and non-empty, and the three formats agree on every box.
    folder = root / split
    missing = [r["path"] for r in rows if not (folder / "images" / image_id(r["path"])).stat().st_size]
    labelled = [r for r in rows if r["label_status"] == LABELLED]
    label_files = sorted(p.name for p in (folder / "labels").iterdir())
    coco_boxes = ds.coco_boxes_by_file(json.loads((folder / "coco.json").read_text()))
    disagree = 0
    for row in labelled:
        stem = image_id(row["path"]).rsplit(".", 1)[0]
        yolo = [box for _cls, box in ds.read_back_yolo((folder / "labels" / f"{stem}.txt").read_text())]
        coco = coco_boxes[f"images/{image_id(row['path'])}"]
        _w, _h, voc = parse_voc_xml((folder / "voc" / f"{stem}.xml").read_text())
        disagree += ds.formats_disagreement(yolo, coco, [box for _name, box in voc], int(row["n_boxes"]),
                                            int(row["width"]), int(row["height"]))
    checks = [
        dg.AssetCheckResult(check_name="files_present", passed=not missing, metadata={"missing": len(missing)}),
        dg.AssetCheckResult(check_name="counts_add_up",
                            passed=len(label_files) == len(labelled)
                            and sum(1 for _ in (folder / "images").iterdir()) == len(rows),
                            metadata={"images": len(rows), "label_files": len(label_files),
                                      "labelled": len(labelled), "left_out": dg.MetadataValue.json(left_out)}),
        dg.AssetCheckResult(check_name="formats_agree", passed=disagree == 0,
                            metadata={"images_checked": len(labelled), "disagreements": disagree}),
    ]
    return publish(context, dg.MaterializeResult(
        data_version=dg.DataVersion(table_version(detection_labels.drop(columns=["detections"]))),
        metadata={"path": dg.MetadataValue.path(str(folder)), "images": len(rows), "labelled": len(labelled),
                  "empties": len(rows) - len(labelled), "boxes": int(sum(r["n_boxes"] for r in labelled)),
                  "left_out": dg.MetadataValue.json(left_out),
                  "dataset_yaml": dg.MetadataValue.path(str(root / "dataset.yaml"))},
        check_results=checks,
    ))


@dg.asset(
    partitions_def=split_partitions,
    group_name="labels",
    kinds={"zip"},
    code_version="1",
    automation_condition=when_inputs_changed(),
    check_specs=[dg.AssetCheckSpec(n, asset="split_archives", blocking=True)
                 for n in ("zip_verified", "counts_add_up", "public_test_has_no_labels", "images_stored")],
)
def split_archives(context: dg.AssetExecutionContext, archive: ArchiveResource, artifacts: ArtifactStore,
                   taxonomy: TaxonomyResource, detection_labels: pd.DataFrame):
    """`<split>.zip` in the thesis's layout: `<park>/<species>/<id>.jpg` + `<id>.txt` (no label file for
    empties) and a manifest.json; images streamed from the archive into the ZIP, stored not
    re-deflated, written to a temp name, verified (every CRC) and then renamed. The test sets' public
    ZIPs hold images named by public id and an image list, no label (`hidden/<split>_labelled.zip`
    keeps the labelled copy for maintainers)."""
    store, tax = archive.open(), taxonomy.load()
    split = context.partition_key
    rows = ds.usable(detection_labels).to_dict("records")
    labelled_members = ds.archive_members(rows, tax.class_names, ("yolo",), {"split": split})
    hidden = split in TEST_SETS
    if hidden:
        frame = rel.with_digests(ds.usable(detection_labels), lambda path: rel.sha256_hex(store.read(path)))
        public = rel.public_test_members(frame.assign(public_id=rel.public_ids(frame.sha256), split=split), split)
        artifacts.publish_zip(f"hidden/{split}_labelled.zip", labelled_members, store.open_stream)
        stored, names = artifacts.publish_zip(f"archives/{split}.zip", public, open_stripped(store))  # no EXIF
    else:
        stored, names = artifacts.publish_zip(f"archives/{split}.zip", labelled_members, store.open_stream)
    with zipfile.ZipFile(stored.path) as zf:
        infos = zf.infolist()
    images = [i for i in infos if i.filename.lower().endswith((".jpg", ".jpeg", ".png"))]
    labels = [i for i in infos if i.filename.endswith(".txt")]
    n_labelled = 0 if hidden else sum(r["label_status"] == LABELLED for r in rows)
    leaks = rel.label_leaks(names, tax.species_codes) if hidden else []
    checks = [
        dg.AssetCheckResult(check_name="zip_verified", passed=verify_zip(str(stored.path), names) is None,
                            metadata={"entries": len(infos)}),
        dg.AssetCheckResult(check_name="counts_add_up", passed=len(images) == len(rows) and len(labels) == n_labelled,
                            metadata={"images": len(images), "label_files": len(labels), "labelled": n_labelled}),
        dg.AssetCheckResult(check_name="public_test_has_no_labels", passed=not leaks,
                            metadata={"test_set": hidden, "suspect_entries": dg.MetadataValue.json(leaks[:20])}),
        dg.AssetCheckResult(check_name="images_stored",
                            passed=all(i.compress_type == zipfile.ZIP_STORED for i in images),
                            metadata={"deflated_images": sum(i.compress_type != zipfile.ZIP_STORED for i in images)}),
    ]
    return publish(context, dg.MaterializeResult(
        data_version=dg.DataVersion(table_version(detection_labels.drop(columns=["detections"]))),
        metadata={**stored.metadata(), "images": len(images), "label_files": len(labels)},
        check_results=checks,
    ))
