"""Inference on new arrivals: the promoted model over each newly ingested day of a park."""

import json

import dagster as dg
import pandas as pd

from wildbench_assets import layout
from wildbench_assets.assets.checks import (
    Check,
    check_results,
    check_specs,
    counts_table,
    png_markdown,
    publish,
    rules_verdict,
    verdict,
)
from wildbench_assets.automation import on_new_data
from wildbench_assets.config import PredictionConfig
from wildbench_assets.execution import GPU_POOL, GPU_STEP
from wildbench_assets.lib import predictions as pred
from wildbench_assets.lib.plots import bar_chart_png
from wildbench_assets.lib.versions import table_version
from wildbench_assets.partitions import ARRIVAL_DAY, PARK, park_day_partitions
from wildbench_assets.resources import model_store
from wildbench_assets.resources.archive import ArchiveResource
from wildbench_assets.resources.artifacts import ArtifactStore
from wildbench_assets.resources.detector import DetectorResource
from wildbench_assets.resources.label_cache import LabelCache
from wildbench_assets.resources.parquet_io import ParquetIOManager
from wildbench_assets.resources.predicting import predict_images
from wildbench_assets.resources.taxonomy import TaxonomyResource

PREDICTION_CHECKS = {
    "one_row_per_image": Check("One prediction row per image of the park and day."),
    "boxes_in_unit_square": Check("Every box is in normalized coordinates inside the unit square."),
    "scores_in_range": Check("Every score is between min_confidence and 1."),
    "megadetector_file_valid": Check("The MegaDetector batch-output file, as written, passes the format's validator.",
                                     blocking=False),
    "species_model_sees_detector_animals": Check(
        "Where the detector finds an animal, the species model answers too (a warning counts the images it missed).",
        blocking=False),
}
# Read to choose the promoted model, but not triggers: a newly promoted model does not re-predict every
# old day. `runner.NON_TRIGGERING` takes the same keys, so the CLI and the daemon agree.
MODEL_INPUT_KEYS = ("leaderboard", "model_weights")
MODEL_INPUTS = dg.AssetSelection.assets(*MODEL_INPUT_KEYS)


def _check_results(found: pred.PredictionFindings, missed: int, warnings: list[str]) -> list[dg.AssetCheckResult]:
    return check_results(
        PREDICTION_CHECKS,
        one_row_per_image=verdict(found.one_row_per_image, images=found.images, images_in_table=found.images_in_table),
        boxes_in_unit_square=rules_verdict(found.box_rules, holds=found.boxes_past_the_edge == 0,
                                           boxes_past_the_edge=found.boxes_past_the_edge),
        scores_in_range=rules_verdict(found.score_rules),
        megadetector_file_valid=verdict(not found.md_errors, errors=dg.MetadataValue.json(found.md_errors)),
        # a warning, not a stop: the animals are kept as `other animal`
        species_model_sees_detector_animals=verdict(not missed, images_missed=missed,
                                                    warnings=dg.MetadataValue.json(warnings)),
    )


@dg.asset(
    partitions_def=park_day_partitions,
    deps=[dg.AssetDep("leaderboard"), dg.AssetDep("model_weights", partition_mapping=dg.AllPartitionMapping())],
    group_name="inference",
    op_tags=GPU_STEP,
    pool=GPU_POOL,
    kinds={"pytorch", "parquet"},
    io_manager_key="parquet_io_manager",
    code_version="1",
    # New days are predicted as they arrive; a newly promoted model does not re-predict every old day.
    automation_condition=on_new_data(ignore=MODEL_INPUTS),
    check_specs=check_specs("new_image_predictions", PREDICTION_CHECKS, park_day_partitions),
)
def new_image_predictions(context: dg.AssetExecutionContext, config: PredictionConfig, archive: ArchiveResource,
                          artifacts: ArtifactStore, detector: DetectorResource, label_cache: LabelCache,
                          taxonomy: TaxonomyResource, parquet_io_manager: dg.ResourceParam[ParquetIOManager],
                          image_metadata: pd.DataFrame):
    """Species, score and box for every image that arrived on one day in one park, from the promoted
    model (the best of the most recently cut release that has one, `training.predict.promoted_model`, or
    `model` in config; with none promoted, the detector alone, species "animal", and metadata saying why;
an animal the detector finds that the species model does not place in Table 3.1 is `other animal`). A table with one row
    per detection (one `no detection` row for an image without any; unreadable images as `failed` rows
    with their reason) and a MegaDetector batch file (format 1.6, species as classifications) that
    Timelapse and AddaxAI open."""
    keys = context.partition_key.keys_by_dimension
    park, day = keys[PARK], keys[ARRIVAL_DAY]
    predictor = _predictor(config, artifacts, detector, taxonomy, parquet_io_manager)
    images = image_metadata.sort_values("path", ignore_index=True)
    items, inferences = predict_images(images, archive.open().read, predictor, label_cache, context.log)
    table = pred.predictions_table(items, predictor.class_names, predictor.name).assign(park=park, arrival_day=day)
    md_file = layout.predictions_batch_file(park, day)
    warnings = pred.answer_warnings(items, predictor.answer)
    missed = sum(1 for _path, p in items if p.get("species_model_missed"))
    for warning in warnings:
        context.log.warning(warning)
    with artifacts.writing(md_file) as tmp:
        tmp.write_text(json.dumps(pred.md_batch_document(items, predictor.class_names, predictor.identity,
                                                         predictor.answer, warnings, predictor.min_confidence),
                                  indent=1))
    stored = artifacts.describe(md_file)
    found = pred.prediction_findings(images, table, json.loads(stored.path.read_text()), config.min_confidence)
    return publish(context, dg.MaterializeResult(
        value=table,
        data_version=dg.DataVersion(table_version(table)),
        metadata={**_metadata(found, predictor, inferences, warnings, missed, f"{park} {day}"),
                  "megadetector_file": dg.MetadataValue.path(str(stored.path)),
                  "megadetector_file_sha256": stored.sha256},
        check_results=_check_results(found, missed, warnings),
    ))


def _predictor(config: PredictionConfig, artifacts: ArtifactStore, detector: DetectorResource,
               taxonomy: TaxonomyResource, parquet_io_manager: ParquetIOManager):
    """The promoted model (or config's `model`); the leaderboard is a declared dependency, and optional:
    none before any model was trained."""
    try:
        return model_store.load_chosen_predictor(artifacts, parquet_io_manager.load_partition("leaderboard"),
                                                 taxonomy.load().class_names, detector, config.min_confidence,
                                                 config.model, config.min_map_50)
    except FileNotFoundError as err:  # a model named in config that was never trained
        raise dg.Failure(str(err)) from err


def _metadata(found: pred.PredictionFindings, predictor, inferences: int, warnings: list[str], missed: int,
              title: str) -> dict:
    per_species = pd.Series(found.per_species, name="detections", dtype="int64").rename_axis("species").to_frame()
    plot = bar_chart_png(per_species, f"{title}: detections per species", "detections") if found.per_species else None
    return {
        "images": found.images,
        "detections": found.detections,
        "failed": found.statuses.get(pred.FAILED, 0),
        "inferences": inferences,
        "model": predictor.name,
        "answered_by": predictor.answer["answered_by"],
        "why": predictor.answer.get("why") or predictor.answer.get("why_no_species_model"),
        "warnings": dg.MetadataValue.json(warnings),
        "images_species_model_missed": missed,
        "statuses": counts_table(found.statuses, "status", "images"),
        "per_species": counts_table(found.per_species, "species", "detections"),
        **({"plot": png_markdown(plot, "detections per species")} if plot else {}),
    }
