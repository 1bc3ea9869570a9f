"""Training datasets of a release (YOLO, VOC, COCO) and the working splits' ZIPs in the thesis's layout."""

import zipfile

import dagster as dg
import pandas as pd

from wildbench_assets import layout
from wildbench_assets.assets.checks import Check, check_results, check_specs, publish, verdict
from wildbench_assets.automation import when_inputs_changed
from wildbench_assets.ingest_state import cut_release_facts
from wildbench_assets.lib import datasets as ds
from wildbench_assets.lib import releases as rel
from wildbench_assets.lib.labels import LABELLED
from wildbench_assets.lib.splits import TEST_SETS
from wildbench_assets.lib.versions import combined_version, table_version
from wildbench_assets.lib.zips import verify_zip
from wildbench_assets.partitions import release_partitions, split_partitions
from wildbench_assets.resources.archive import ArchiveResource
from wildbench_assets.resources.artifacts import ArtifactStore, sha256_file
from wildbench_assets.resources.dataset_writer import write_training_split
from wildbench_assets.resources.release_store import ReleaseStore
from wildbench_assets.resources.release_writer import open_stripped
from wildbench_assets.resources.taxonomy import TaxonomyResource

DATASET_CHECKS = {
    "files_present": Check("Every image and label file written is present and non-empty."),
    "counts_add_up": Check("Images and label files per split match the release manifest (empties have no label "
                           "file)."),
    "formats_agree": Check("YOLO, Pascal VOC and COCO agree on every box."),
    "images_match_release": Check("Every image's bytes are the ones the release was cut from (manifest sha256)."),
}
ARCHIVE_CHECKS = {
    "zip_verified": Check("The ZIP opens and every entry's CRC verifies."),
    "counts_add_up": Check("The ZIP holds one image per usable label row and one label file per labelled image."),
    "public_test_has_no_labels": Check("A test set's public ZIP holds no label file and no species name."),
    "images_stored": Check("Images are stored, not re-deflated."),
}


def _dataset_checks(found: dict[str, ds.DatasetFindings], changed: list[str]) -> list[dg.AssetCheckResult]:
    json_ = dg.MetadataValue.json
    return check_results(
        DATASET_CHECKS,
        images_match_release=verdict(not changed, images_whose_bytes_differ=len(changed), sample=json_(changed[:20])),
        files_present=verdict(all(f.missing == 0 for f in found.values()),
                              missing=json_({s: f.missing for s, f in found.items()})),
        counts_add_up=verdict(all(f.counts_add_up for f in found.values()),
                              **{s: json_({"images": f.images, "image_files": f.image_files, "labelled": f.labelled,
                                           "label_files": f.label_files, "left_out": f.left_out})
                                 for s, f in found.items()}),
        formats_agree=verdict(all(f.disagreements == 0 for f in found.values()),
                              images_checked=sum(f.labelled for f in found.values()),
                              disagreements=sum(f.disagreements for f in found.values())),
    )


@dg.asset(
    partitions_def=release_partitions,
    deps=["benchmark_release"],
    group_name="models",
    kinds={"yolo", "coco"},
    code_version="3",
    automation_condition=when_inputs_changed(inputs_required=True),
    check_specs=check_specs("training_datasets", DATASET_CHECKS, release_partitions),
)
def training_datasets(context: dg.AssetExecutionContext, archive: ArchiveResource, artifacts: ArtifactStore):
    """A release's train and val splits as training data, read from its frozen manifest (so models
    trained on a release learn exactly what it published): YOLO images + txt labels + dataset.yaml
    (the release's frozen class list), Pascal VOC xml (absolute pixel corners) and COCO json, under
    `datasets/<release>/`. Its test sets stay hidden: models are scored on the release's public test
    ZIPs against its hidden truth, as submissions are. Every file is read back: present and non-empty,
    the three formats agree on every box, and every image's bytes are the ones the release was cut
    from (its manifest's sha256). The folder is staged and replaces the old one whole only when the
    blocking checks pass."""
    release = context.partition_key
    facts = cut_release_facts(artifacts, release)
    manifest = ReleaseStore(artifacts).manifest(release)
    store, class_names = archive.open(), facts.class_names  # the classes frozen with the release
    found, written, changed = {}, {}, []
    with artifacts.staged_dir(layout.datasets_dir(release), seal="dataset.yaml") as staged:
        for split in rel.PUBLIC_SPLITS:
            rows = rel.training_rows(manifest, split, class_names)
            written[split], digests = write_training_split(staged.path, store, split, rows, class_names)
            found[split] = ds.dataset_findings(ds.labels_frame(rows), written[split])
            changed += [r["path"] for r in rows if digests[r["path"]] != r["sha256"]]  # the archive moved on
        (staged.path / "dataset.yaml").write_text(ds.dataset_yaml(class_names))
        coco_digests = [sha256_file(staged.path / s / "coco.json") for s in rel.PUBLIC_SPLITS]
        result = dg.MaterializeResult(
            data_version=dg.DataVersion(combined_version(*coco_digests)),
            metadata={"path": dg.MetadataValue.path(artifacts.uri(layout.datasets_dir(release))),
                      **{f"{s}_images": f.images for s, f in found.items()},
                      **{f"{s}_boxes": f.boxes for s, f in found.items()},
                      "empties": sum(f.empties for f in found.values())},
            check_results=_dataset_checks(found, changed))
        for event in publish(context, result):
            if isinstance(event, dg.MaterializeResult):  # checks passed: the datasets become visible whole
                staged.publish()
            yield event


@dg.asset(
    partitions_def=split_partitions,
    group_name="labels",
    kinds={"zip"},
    code_version="2",  # 2: public test images stripped of all metadata, every format
    automation_condition=when_inputs_changed(),
    check_specs=check_specs("split_archives", ARCHIVE_CHECKS, split_partitions),
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
        artifacts.publish_zip(layout.labelled_test_archive(split), labelled_members, store.open_stream)
        stored, names = artifacts.publish_zip(layout.split_archive(split), public, open_stripped(store))  # no EXIF
    else:
        stored, names = artifacts.publish_zip(layout.split_archive(split), labelled_members, store.open_stream)
    with zipfile.ZipFile(stored.path) as zf:
        infos = zf.infolist()
    images = [i for i in infos if i.filename.lower().endswith((".jpg", ".jpeg", ".png"))]
    labels = [i for i in infos if i.filename.endswith(".txt")]
    n_labelled = 0 if hidden else sum(r["label_status"] == LABELLED for r in rows)
    leaks = rel.label_leaks(names, tax.species_codes) if hidden else []
    checks = check_results(
        ARCHIVE_CHECKS,
        zip_verified=verdict(verify_zip(str(stored.path), names) is None, entries=len(infos)),
        counts_add_up=verdict(len(images) == len(rows) and len(labels) == n_labelled, images=len(images),
                              label_files=len(labels), labelled=n_labelled),
        public_test_has_no_labels=verdict(not leaks, test_set=hidden,
                                          suspect_entries=dg.MetadataValue.json(leaks[:20])),
        images_stored=verdict(all(i.compress_type == zipfile.ZIP_STORED for i in images),
                              deflated_images=sum(i.compress_type != zipfile.ZIP_STORED for i in images)),
    )
    return publish(context, dg.MaterializeResult(
        data_version=dg.DataVersion(table_version(detection_labels.drop(columns=["detections"]))),
        metadata={**stored.metadata(), "images": len(images), "label_files": len(labels)},
        check_results=checks,
    ))
