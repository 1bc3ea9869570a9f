"""Training datasets (YOLO, VOC, COCO) and the split ZIPs of the thesis's layout."""

import zipfile

import dagster as dg
import pandas as pd

from wildbench_assets.assets.checks import publish
from wildbench_assets.automation import when_inputs_changed
from wildbench_assets.lib import datasets as ds
from wildbench_assets.lib import releases as rel
from wildbench_assets.lib.labels import LABELLED
from wildbench_assets.lib.splits import TEST_SETS
from wildbench_assets.lib.versions import table_version
from wildbench_assets.lib.zips import verify_zip
from wildbench_assets.partitions import split_partitions
from wildbench_assets.resources.archive import ArchiveResource
from wildbench_assets.resources.artifacts import ArtifactStore
from wildbench_assets.resources.dataset_writer import read_training_split, write_training_split
from wildbench_assets.resources.release_writer import open_stripped
from wildbench_assets.resources.taxonomy import TaxonomyResource

DATASET_CHECKS = {"files_present": True, "counts_add_up": True, "formats_agree": True}  # name -> blocking


def _dataset_checks(found: ds.DatasetFindings) -> list[dg.AssetCheckResult]:
    return [
        dg.AssetCheckResult(check_name="files_present", passed=found.missing == 0, metadata={"missing": found.missing}),
        dg.AssetCheckResult(check_name="counts_add_up", passed=found.counts_add_up,
                            metadata={"images": found.images, "label_files": found.label_files,
                                      "labelled": found.labelled, "left_out": dg.MetadataValue.json(found.left_out)}),
        dg.AssetCheckResult(check_name="formats_agree", passed=found.disagreements == 0,
                            metadata={"images_checked": found.labelled, "disagreements": found.disagreements}),
    ]


@dg.asset(
    partitions_def=split_partitions,
    group_name="labels",
    kinds={"yolo", "coco"},
    code_version="1",
    automation_condition=when_inputs_changed(),
    check_specs=[dg.AssetCheckSpec(name, asset="training_datasets", blocking=blocking)
                 for name, blocking in DATASET_CHECKS.items()],
)
def training_datasets(context: dg.AssetExecutionContext, archive: ArchiveResource, artifacts: ArtifactStore,
                      taxonomy: TaxonomyResource, detection_labels: pd.DataFrame):
    """The split as training data: YOLO images + txt labels + dataset.yaml (classes in the thesis's
    order), Pascal VOC xml (absolute pixel corners) and COCO json, under `artifacts/datasets/`. Every
    file is read back: present and non-empty, and the three formats agree on every box."""
    rows = ds.usable(detection_labels).to_dict("records")
    folder, dataset_yaml = write_training_split(artifacts, archive.open(), context.partition_key, rows,
                                                taxonomy.load().class_names)
    found = ds.dataset_findings(detection_labels, read_training_split(folder))
    return publish(context, dg.MaterializeResult(
        data_version=dg.DataVersion(table_version(detection_labels.drop(columns=["detections"]))),
        metadata={"path": dg.MetadataValue.path(str(folder)), "images": found.images, "labelled": found.labelled,
                  "empties": found.empties, "boxes": found.boxes, "left_out": dg.MetadataValue.json(found.left_out),
                  "dataset_yaml": dg.MetadataValue.path(str(dataset_yaml))},
        check_results=_dataset_checks(found),
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
