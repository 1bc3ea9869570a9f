"""Labels: detector boxes for every image of a split, cached per image content, in MegaDetector format."""

import json

import dagster as dg
import pandas as pd

from wildbench_assets.assets.checks import counts_table, publish, rules_check
from wildbench_assets.assets.ingest import load_manifests
from wildbench_assets.automation import when_inputs_changed
from wildbench_assets.config import LabelConfig
from wildbench_assets.lib import labels as lab
from wildbench_assets.lib.annotations import Box
from wildbench_assets.lib.expectations import Rule, validate
from wildbench_assets.lib.versions import table_version
from wildbench_assets.partitions import split_partitions
from wildbench_assets.resources.archive import ArchiveResource
from wildbench_assets.resources.artifacts import ArtifactStore
from wildbench_assets.resources.detector import ANIMAL, Detection, DetectorResource
from wildbench_assets.resources.label_cache import COLUMNS as CACHE_COLUMNS
from wildbench_assets.resources.label_cache import LabelCache, detections_from_json, detections_to_json
from wildbench_assets.resources.taxonomy import TaxonomyResource
from wildbench_assets.taxonomy import EMPTY as EMPTY_SPECIES

CHECKPOINT_EVERY = 64  # new boxes appended to the label cache this often
LABEL_CHECKS = ["one_row_per_image", "boxes_inside_image", "confidences_in_range", "unlabelled_share",
                "failed_share"]


def _manifest_detections(store, parks, taxonomy) -> dict[str, tuple]:
    boxes = {}
    for park in parks:
        for key, entry in load_manifests(store, park, taxonomy).items():
            if entry.width and entry.height:
                boxes[key] = tuple(Detection(ANIMAL, 1.0, Box.from_coco([x, y, w, h], entry.width, entry.height))
                                   for _species, x, y, w, h in entry.boxes)
    return boxes


@dg.asset(
    partitions_def=split_partitions,
    group_name="labels",
    kinds={"pytorch", "parquet"},
    io_manager_key="parquet_io_manager",
    code_version="1",
    automation_condition=when_inputs_changed(),
    check_specs=[dg.AssetCheckSpec(name, asset="detection_labels", blocking=name in ("one_row_per_image",
                 "boxes_inside_image", "confidences_in_range")) for name in LABEL_CHECKS],
)
def detection_labels(context: dg.AssetExecutionContext, config: LabelConfig, archive: ArchiveResource,
                     detector: DetectorResource, label_cache: LabelCache, artifacts: ArtifactStore,
                     taxonomy: TaxonomyResource, benchmark_splits: pd.DataFrame):
    """Boxes for every image of the split: each animal detection at or above `label_threshold` (not only
    the top one). An animal image where the detector finds nothing is flagged `no detection`, a file
    that cannot be decoded `failed`; empties get no boxes. Results are cached per image content hash,
    so re-runs and other splits re-use every box already computed. Also written as a MegaDetector
    batch output file (format 1.6)."""
    store, tax = archive.open(), taxonomy.load()
    split = context.partition_key
    images = benchmark_splits.sort_values("path", ignore_index=True)
    labels, model = label_images(images.assign(split=split), store, detector, label_cache, tax,
                                 config.label_threshold, context.log, name=split)
    animals = images[images.species != EMPTY_SPECIES]

    md_file = f"labels/{split}.megadetector-1.6.json"
    with artifacts.writing(md_file) as tmp:
        tmp.write_text(json.dumps(lab.md_batch_output(labels, model.identity), indent=1))
    stored = artifacts.describe(md_file)

    statuses = labels.label_status.value_counts().to_dict()
    n_animals = max(1, len(animals))
    unlabelled = statuses.get(lab.NO_DETECTION, 0) / n_animals
    failed = statuses.get(lab.FAILED, 0) / max(1, len(labels))
    all_boxes = [(box, conf) for row in labels.to_dict("records") for box, conf in lab.boxes_of(row)]
    outside = sum(not box.is_valid() for box, _ in all_boxes)
    confs = pd.DataFrame({"conf": pd.Series([c for _, c in all_boxes], dtype="float64")})
    results_gx = validate(labels, [
        Rule("expect_table_row_count_to_equal", {"value": len(images)}),
        Rule("expect_column_values_to_be_unique", {"column": "path"}),
        Rule("expect_column_values_to_be_in_set", {"column": "label_status",
                                                    "value_set": [lab.LABELLED, lab.NO_DETECTION, lab.EMPTY,
                                                                  lab.FAILED]}),
    ], name="detection_labels")
    conf_results = validate(confs, [Rule("expect_column_values_to_be_between",
                                         {"column": "conf", "min_value": config.label_threshold, "max_value": 1.0})],
                            name="detection_confidences")
    checks = [
        rules_check("one_row_per_image", results_gx),
        dg.AssetCheckResult(check_name="boxes_inside_image", passed=outside == 0,
                            metadata={"boxes": len(all_boxes), "outside_or_degenerate": outside}),
        rules_check("confidences_in_range", conf_results),
        dg.AssetCheckResult(check_name="unlabelled_share", passed=unlabelled <= config.max_unlabelled_share,
                            severity=dg.AssetCheckSeverity.WARN,
                            metadata={"unlabelled_share": unlabelled,
                                      "no_detection": statuses.get(lab.NO_DETECTION, 0)}),
        dg.AssetCheckResult(check_name="failed_share", passed=failed <= config.max_failed_share,
                            severity=dg.AssetCheckSeverity.WARN,
                            metadata={"failed_share": failed, "failed": statuses.get(lab.FAILED, 0)}),
    ]
    return publish(context, dg.MaterializeResult(
        value=labels,
        data_version=dg.DataVersion(table_version(labels.drop(columns=["detections"]))),
        metadata={
            "images": len(labels),
            "boxes": len(all_boxes),
            "inferences": model.inferences,
            "cache_hits": len(animals) - model.inferences - statuses.get(lab.FAILED, 0),
            "statuses": counts_table(statuses, "status", "images"),
            "detector": model.identity,
            "label_threshold": config.label_threshold,
            "megadetector_file": dg.MetadataValue.path(str(stored.path)),
            "megadetector_file_sha256": stored.sha256,
        },
        check_results=checks,
    ))


def label_images(images: pd.DataFrame, store, detector: DetectorResource, label_cache: LabelCache, tax,
                 threshold: float, log, name: str, progress=None):
    """(one label row per image, the detector used). Boxes come from the label cache when this detector
    has seen the object (same etag) or its content (same sha256); only new images are inferred on.
    `images` needs path, etag, park, species, camera, split, width, height. `progress(done, total)` is
    told how many of the images to read are done, now and then."""
    animals = images[images.species != EMPTY_SPECIES]
    manifest = (_manifest_detections(store, sorted(images.park.unique()), tax)
                if detector.backend == "manifest" else None)
    model = detector.load(manifest)
    cached = label_cache.load(model.identity)
    by_etag = {(p, e): row for p, e, row in zip(cached.path, cached.etag, cached.itertuples(index=False))}
    known_sha = {row.sha256: detections_from_json(row.detections) for row in cached.itertuples(index=False)}
    results: dict[str, dict] = {}
    to_run = []
    for path, etag in zip(animals.path, animals.etag):
        hit = by_etag.get((path, etag))
        if hit is not None:  # unchanged object: not even read
            results[path] = {"sha256": hit.sha256, "width": hit.width, "height": hit.height,
                             "detections": json.loads(hit.detections), "failure": None}
        else:
            to_run.append(path)
    log.info(f"{name}: {len(animals)} animal images, {len(animals) - len(to_run)} from the label cache, "
             f"{len(to_run)} to read")
    new_rows = []
    etags = dict(zip(animals.path, animals.etag))
    for done, found in enumerate(model.run(to_run, store.read, known=known_sha), start=1):
        results[found.key] = {"sha256": found.sha256, "width": found.width, "height": found.height,
                              "detections": [d.to_md() for d in found.detections], "failure": found.failure}
        if found.failure is None:
            new_rows.append({"path": found.key, "etag": etags[found.key], "sha256": found.sha256,
                             "width": found.width, "height": found.height,
                             "detections": detections_to_json(found.detections)})
        if len(new_rows) >= CHECKPOINT_EVERY:  # a killed run keeps what it computed: the next one resumes
            label_cache.append(model.identity, pd.DataFrame(new_rows, columns=CACHE_COLUMNS))
            new_rows = []
        if done % 100 == 0:
            log.info(f"{name}: {done}/{len(to_run)} images read, {model.inferences} inferences")
        if progress is not None and (done % 16 == 0 or done == len(to_run)):
            progress(done, len(to_run))
    label_cache.append(model.identity, pd.DataFrame(new_rows, columns=CACHE_COLUMNS))
    rows = []
    for image in images.itertuples(index=False):
        found = results.get(image.path, {})
        base = {"path": image.path, "park": image.park, "species": image.species, "camera": image.camera,
                "split": image.split,
                "class_index": tax.class_index(image.species) if image.species != EMPTY_SPECIES else -1,
                "sha256": found.get("sha256"), "width": found.get("width") or image.width,
                "height": found.get("height") or image.height}
        rows.append(lab.label_row(base, found.get("detections"), found.get("failure"), threshold))
    labels = pd.DataFrame(rows, columns=lab.LABEL_COLUMNS)  # columns even for an empty split
    labels["width"] = labels["width"].astype("Int64")
    labels["height"] = labels["height"].astype("Int64")
    for path in labels.path[labels.label_status == lab.NO_DETECTION].head(20):
        log.warning(f"{path}: no animal detection >= {threshold}")
    return labels, model
