"""Labels: detector boxes for every image of a split, cached per image content, in MegaDetector format."""

import json

import dagster as dg
import pandas as pd

from wildbench_assets.assets.checks import counts_table, publish, rules_check
from wildbench_assets.automation import when_inputs_changed
from wildbench_assets.config import LabelConfig
from wildbench_assets.execution import GPU_STEP, gpu_pool
from wildbench_assets.lib import labels as lab
from wildbench_assets.lib.expectations import Rule, validate
from wildbench_assets.lib.versions import table_version
from wildbench_assets.partitions import split_partitions
from wildbench_assets.resources.archive import ArchiveResource
from wildbench_assets.resources.artifacts import ArtifactStore
from wildbench_assets.resources.detector import DetectorResource
from wildbench_assets.resources.label_cache import LabelCache
from wildbench_assets.resources.labelling import label_images
from wildbench_assets.resources.taxonomy import TaxonomyResource
from wildbench_assets.taxonomy import EMPTY as EMPTY_SPECIES

LABEL_CHECKS = ["one_row_per_image", "boxes_inside_image", "confidences_in_range", "unlabelled_share",
                "failed_share"]


@dg.asset(
    partitions_def=split_partitions,
    group_name="labels",
    kinds={"pytorch", "parquet"},
    op_tags=GPU_STEP,
    pool=gpu_pool(),
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
