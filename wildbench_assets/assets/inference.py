"""Inference on new arrivals: the promoted model over each newly ingested day of a park."""

import hashlib
import json
import tempfile
from pathlib import Path

import dagster as dg
import pandas as pd

from wildbench_assets.assets.checks import counts_table, png_markdown, publish, rules_check
from wildbench_assets.automation import on_new_data
from wildbench_assets.config import PredictionConfig
from wildbench_assets.execution import GPU_STEP, gpu_pool
from wildbench_assets.lib import predictions as pred
from wildbench_assets.lib.expectations import Rule, validate_checks
from wildbench_assets.lib.image_header import UNREADABLE
from wildbench_assets.lib.labels import image_id
from wildbench_assets.lib.plots import bar_chart_png
from wildbench_assets.lib.versions import table_version
from wildbench_assets.partitions import ARRIVAL_DAY, PARK, park_day_partitions
from wildbench_assets.resources.archive import ArchiveResource
from wildbench_assets.resources.artifacts import ArtifactStore
from wildbench_assets.resources.detector import DetectorResource
from wildbench_assets.resources.label_cache import LabelCache
from wildbench_assets.resources.labelling import CHECKPOINT_EVERY
from wildbench_assets.resources.parquet_io import ParquetIOManager
from wildbench_assets.resources.taxonomy import TaxonomyResource
from wildbench_assets.training.predict import DETECTOR, load_predictor, promoted_model

PREDICTION_CHECKS = ["one_row_per_image", "boxes_in_unit_square", "scores_in_range", "megadetector_file_valid"]
# Read to choose the promoted model, but not triggers: a newly promoted model does not re-predict every
# old day. `runner.NON_TRIGGERING` takes the same keys, so the CLI and the daemon agree.
MODEL_INPUT_KEYS = ("leaderboard", "model_weights")
MODEL_INPUTS = dg.AssetSelection.assets(*MODEL_INPUT_KEYS)


def validate_md_document(document: dict) -> list[str]:
    """The errors the `megadetector` package's own validator finds (empty: valid)."""
    from megadetector.postprocessing.validate_batch_results import validate_batch_results

    return validate_batch_results(document)["validation_results"]["errors"]


def predict_images(images: pd.DataFrame, read, predictor, label_cache: LabelCache, log) -> tuple[list, int]:
    """([(path, prediction)] in `images` order, inferences made). Predictions are cached per
    (predictor identity, image content): an unchanged object (same etag) is not even read, the same
    content under another path is not inferred on again."""
    cached = label_cache.load(predictor.identity)
    by_etag = {(p, e): d for p, e, d in zip(cached.path, cached.etag, cached.detections)}
    by_sha = dict(zip(cached.sha256, cached.detections))
    found: dict[str, dict] = {}
    inferences = 0
    todo = []
    for path, etag, status, reason in images[["path", "etag", "status", "reason"]].itertuples(index=False):
        if status in UNREADABLE:
            found[path] = {"width": None, "height": None, "detections": None, "failure": f"{status}: {reason}"}
        elif (path, etag) in by_etag:
            found[path] = json.loads(by_etag[(path, etag)])
        else:
            todo.append((path, etag))
    with tempfile.TemporaryDirectory(prefix="wildbench-predict-") as tmp:
        for start in range(0, len(todo), CHECKPOINT_EVERY):
            chunk, files, new_rows = todo[start:start + CHECKPOINT_EVERY], [], []
            for path, etag in chunk:
                try:
                    data = read(path)
                except OSError as err:
                    found[path] = {"width": None, "height": None, "detections": None,
                                   "failure": f"image access failure: {err}"}
                    continue
                sha = hashlib.sha256(data).hexdigest()
                if sha in by_sha:
                    found[path] = json.loads(by_sha[sha])
                    new_rows.append((path, etag, sha, by_sha[sha]))
                    continue
                local = Path(tmp, image_id(path))
                local.write_bytes(data)
                files.append((path, etag, sha, local))
            for (path, etag, sha, local), prediction in zip(files, predictor.predict_files([f[3] for f in files])):
                found[path] = prediction
                local.unlink()
                if prediction["failure"] is None:
                    inferences += 1
                    text = json.dumps(prediction)
                    by_sha[sha] = text
                    new_rows.append((path, etag, sha, text))
            label_cache.append(predictor.identity, pd.DataFrame(
                [{"path": p, "etag": e, "sha256": s, "width": json.loads(t)["width"], "height": json.loads(t)["height"],
                  "detections": t} for p, e, s, t in new_rows]))
            log.info(f"{min(start + CHECKPOINT_EVERY, len(todo))}/{len(todo)} images predicted "
                     f"({inferences} inferences)")
    return [(path, found[path]) for path in images.path], inferences


@dg.asset(
    partitions_def=park_day_partitions,
    deps=[dg.AssetDep("leaderboard"), dg.AssetDep("model_weights", partition_mapping=dg.AllPartitionMapping())],
    group_name="inference",
    op_tags=GPU_STEP,
    pool=gpu_pool(),
    kinds={"pytorch", "parquet"},
    io_manager_key="parquet_io_manager",
    code_version="1",
    # New days are predicted as they arrive; a newly promoted model does not re-predict every old day.
    automation_condition=on_new_data(ignore=MODEL_INPUTS),
    check_specs=[dg.AssetCheckSpec(name, asset="new_image_predictions", blocking=name != "megadetector_file_valid")
                 for name in PREDICTION_CHECKS],
)
def new_image_predictions(context: dg.AssetExecutionContext, config: PredictionConfig, archive: ArchiveResource,
                          artifacts: ArtifactStore, detector: DetectorResource, label_cache: LabelCache,
                          taxonomy: TaxonomyResource, parquet_io_manager: dg.ResourceParam[ParquetIOManager],
                          image_metadata: pd.DataFrame):
    """Species, score and box for every image that arrived on one day in one park, from the promoted
    model (the leaderboard's best trained here, or `model` in config; with none trained, the detector
    alone, species "animal"). A table with one row per detection (one `no detection` row for an image
    without any; unreadable images as `failed` rows with their reason) and a MegaDetector batch file
    (format 1.6, species as classifications) that Timelapse and AddaxAI open."""
    keys = context.partition_key.keys_by_dimension
    park, day = keys[PARK], keys[ARRIVAL_DAY]
    tax = taxonomy.load()
    name = config.model
    if name == "auto":  # the leaderboard is a declared dependency; it is optional (none before any training)
        name = promoted_model(parquet_io_manager.load_partition("leaderboard"),
                              lambda m: artifacts.path(f"models/{m}/weights.pt").exists(),
                              config.min_map_50) or DETECTOR
    predictor = load_predictor(artifacts.path("models"), tax.class_names, name, detector, config.min_confidence)
    images = image_metadata.sort_values("path", ignore_index=True)
    items, inferences = predict_images(images, archive.open().read, predictor, label_cache, context.log)
    table = pred.predictions_table(items, predictor.class_names, predictor.name).assign(park=park, arrival_day=day)
    document = pred.md_batch_document(items, predictor.class_names, predictor.identity)
    md_file = f"predictions/{park}/{day}.megadetector-1.6.json"
    with artifacts.writing(md_file) as tmp:
        tmp.write_text(json.dumps(document, indent=1))
    stored = artifacts.describe(md_file)
    md_errors = validate_md_document(json.loads(stored.path.read_text()))

    detected = table[table.status == pred.PREDICTED]
    found = validate_checks(detected, {
        "boxes_in_unit_square": [Rule("expect_column_values_to_be_between",
                                      {"column": c, "min_value": 0.0, "max_value": 1.0}) for c in "xywh"],
        "scores_in_range": [Rule("expect_column_values_to_be_between",
                                 {"column": "score", "min_value": config.min_confidence, "max_value": 1.0})],
    }, name="new_image_predictions")
    overflow = int(((detected.x + detected.w > 1 + 1e-6) | (detected.y + detected.h > 1 + 1e-6)).sum())
    single = table[table.status != pred.PREDICTED].path
    per_species = detected.species.value_counts()
    checks = [
        dg.AssetCheckResult(check_name="one_row_per_image",
                            passed=set(table.path) == set(images.path) and single.is_unique
                            and not set(single) & set(detected.path),
                            metadata={"images": len(images), "images_in_table": int(table.path.nunique())}),
        rules_check("boxes_in_unit_square", found["boxes_in_unit_square"], metadata={"boxes_past_the_edge": overflow})
        if overflow == 0 else dg.AssetCheckResult(check_name="boxes_in_unit_square", passed=False,
                                                  metadata={"boxes_past_the_edge": overflow}),
        rules_check("scores_in_range", found["scores_in_range"]),
        dg.AssetCheckResult(check_name="megadetector_file_valid", passed=not md_errors,
                            metadata={"errors": dg.MetadataValue.json(md_errors)}),
    ]
    statuses = table.drop_duplicates("path").status.value_counts().to_dict()
    plot = bar_chart_png(per_species.rename("detections").to_frame(), f"{park} {day}: detections per species",
                         "detections") if len(per_species) else None
    return publish(context, dg.MaterializeResult(
        value=table,
        data_version=dg.DataVersion(table_version(table)),
        metadata={
            "images": len(images),
            "detections": len(detected),
            "failed": int(statuses.get(pred.FAILED, 0)),
            "inferences": inferences,
            "model": predictor.name,
            "statuses": counts_table(statuses, "status", "images"),
            "per_species": counts_table(per_species.to_dict(), "species", "detections"),
            **({"plot": png_markdown(plot, "detections per species")} if plot else {}),
            "megadetector_file": dg.MetadataValue.path(str(stored.path)),
            "megadetector_file_sha256": stored.sha256,
        },
        check_results=checks,
    ))
