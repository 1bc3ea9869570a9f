"""Labels: detector boxes for every image of a split, cached per image content, in MegaDetector format."""

import json

import dagster as dg
import pandas as pd

from wildbench_assets import layout
from wildbench_assets.assets.checks import (
    Check,
    check_results,
    check_specs,
    counts_table,
    publish,
    rules_verdict,
    verdict,
)
from wildbench_assets.automation import when_inputs_changed
from wildbench_assets.config import LabelConfig
from wildbench_assets.execution import GPU_POOL, GPU_STEP
from wildbench_assets.lib import labels as lab
from wildbench_assets.lib.versions import table_version
from wildbench_assets.partitions import split_partitions
from wildbench_assets.resources.archive import ArchiveResource
from wildbench_assets.resources.artifacts import ArtifactStore
from wildbench_assets.resources.detector import DetectorResource
from wildbench_assets.resources.label_cache import LabelCache
from wildbench_assets.resources.labelling import label_images
from wildbench_assets.resources.taxonomy import TaxonomyResource

LABEL_CHECKS = {
    "one_row_per_image": Check("One label row per image of the split, none twice."),
    "boxes_inside_image": Check("Every box lies inside its image and has a positive width and height."),
    "confidences_in_range": Check("Every detection confidence is between 0 and 1."),
    "unlabelled_share": Check("The share of images the detector found no animal in stays within "
                              "max_unlabelled_share (warns).", blocking=False),
    "failed_share": Check("The share of images the detector failed on stays within max_failed_share (warns).",
                          blocking=False),
}


def _check_results(found: lab.LabelFindings, config: LabelConfig) -> list[dg.AssetCheckResult]:
    return check_results(
        LABEL_CHECKS,
        one_row_per_image=rules_verdict(found.row_rules),
        boxes_inside_image=verdict(found.outside_or_degenerate == 0, boxes=found.boxes,
                                   outside_or_degenerate=found.outside_or_degenerate),
        confidences_in_range=rules_verdict(found.confidence_rules),
        unlabelled_share=verdict(found.unlabelled_share <= config.max_unlabelled_share,
                                 unlabelled_share=found.unlabelled_share, no_detection=found.no_detection),
        failed_share=verdict(found.failed_share <= config.max_failed_share, failed_share=found.failed_share,
                             failed=found.failed),
    )


@dg.asset(
    partitions_def=split_partitions,
    group_name="labels",
    kinds={"pytorch", "parquet"},
    op_tags=GPU_STEP,
    pool=GPU_POOL,
    io_manager_key="parquet_io_manager",
    code_version="2",  # 2: empties are decoded too (a truncated one is a failed row)
    automation_condition=when_inputs_changed(),
    check_specs=check_specs("detection_labels", LABEL_CHECKS, split_partitions),
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
    md_file = layout.labels_batch_file(split)
    with artifacts.writing(md_file) as tmp:
        tmp.write_text(json.dumps(lab.md_batch_output(labels, model.identity, config.label_threshold), indent=1))
    stored = artifacts.describe(md_file)
    found = lab.label_findings(images, labels, config.label_threshold)
    return publish(context, dg.MaterializeResult(
        value=labels,
        data_version=dg.DataVersion(table_version(labels.drop(columns=["detections"]))),
        metadata={
            "images": len(labels),
            "boxes": found.boxes,
            "inferences": model.inferences,
            "cache_hits": found.animals - model.inferences - found.failed,
            "statuses": counts_table(found.statuses, "status", "images"),
            "detector": model.identity,
            "label_threshold": config.label_threshold,
            "megadetector_file": dg.MetadataValue.path(str(stored.path)),
            "megadetector_file_sha256": stored.sha256,
        },
        check_results=_check_results(found, config),
    ))
