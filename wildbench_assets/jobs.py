"""Jobs: named selections for the launchpad, sensors and `wildbench run`."""

import json
from datetime import UTC, datetime

import dagster as dg

from wildbench_assets import layout, settings
from wildbench_assets.lib.dataset_requests import expired_request_zips
from wildbench_assets.partitions import (
    model_release_partitions,
    park_day_partitions,
    park_partitions,
    release_partitions,
    request_partitions,
    split_partitions,
    submission_partitions,
)
from wildbench_assets.resources.artifacts import ArtifactStore
from wildbench_assets.resources.inbox import RequestInbox

ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.groups("ingest"),
    partitions_def=park_day_partitions,
    description="List one park's arrivals of one day and read their EXIF headers.",
)

curation_job = dg.define_asset_job(
    "curation_job",
    selection=dg.AssetSelection.assets("curated_images"),
    partitions_def=park_partitions,
    description="Species filter and burst cleaning of one park.",
)

splits_job = dg.define_asset_job(
    "splits_job",
    selection=dg.AssetSelection.assets("benchmark_splits"),
    partitions_def=split_partitions,
    description="One balanced, leak-free split of the benchmark.",
)

labels_job = dg.define_asset_job(
    "labels_job",
    selection=dg.AssetSelection.groups("labels"),
    partitions_def=split_partitions,
    description="Boxes and the ZIP archive of one split.",
)

training_datasets_job = dg.define_asset_job(
    "training_datasets_job",
    selection=dg.AssetSelection.assets("training_datasets"),
    partitions_def=release_partitions,
    description="A release's train and val splits as YOLO, VOC and COCO training data.",
)

models_job = dg.define_asset_job(
    "models_job",
    selection=dg.AssetSelection.assets("model_weights", "model_evaluation"),
    partitions_def=model_release_partitions,
    description="Train one model on one release and score it on the release's hidden test sets.",
)

leaderboard_job = dg.define_asset_job("leaderboard_job", selection=dg.AssetSelection.assets("leaderboard"))

release_job = dg.define_asset_job(
    "release_job",
    selection=dg.AssetSelection.assets("benchmark_release"),
    partitions_def=release_partitions,
    description="Cut a benchmark release (add its partition first), or verify that an existing one reproduces.",
)

custom_export_job = dg.define_asset_job(
    "custom_export_job",
    selection=dg.AssetSelection.assets("custom_export"),
    partitions_def=request_partitions,
    description="One custom dataset request (started by the custom_export_requests sensor).",
)

submission_job = dg.define_asset_job(
    "submission_job",
    selection=dg.AssetSelection.assets("submission_scores"),
    partitions_def=submission_partitions,
    description="Score one researcher's submission against the latest release (started by submissions_sensor).",
)

@dg.op(description="Delete custom-request ZIPs older than WILDBENCH_REQUEST_RETENTION_DAYS (default 30) and mark "
                  "their results expired, so a researcher is told to ask again instead of following a dead link.")
def delete_expired_request_zips(context: dg.OpExecutionContext, artifacts: ArtifactStore, inbox: RequestInbox):
    days = settings.request_retention_days()
    expired = expired_request_zips(artifacts.list(f"{layout.REQUESTS}/"), datetime.now(UTC), days,
                                   f"{layout.REQUESTS}/")
    for request_id in expired:
        artifacts.delete(layout.request_zip(request_id))
        result = json.loads(inbox.read_item(request_id, (".result.json",)) or b"{}")
        result = {k: v for k, v in result.items() if k not in ("url", "url_expires_at")}
        inbox.write_json(f"{request_id}.result.json", {**result, "request": request_id, "status": "expired",
                                                       "expired_at": datetime.now(UTC).isoformat()})
    context.log.info(f"{len(expired)} request ZIPs older than {days} days deleted")
    context.add_output_metadata({"deleted": len(expired), "retention_days": days})


@dg.job(description="The thesis's delete-custom-datasets: request ZIPs are kept for a configurable number of days.")
def delete_custom_datasets():
    delete_expired_request_zips()


JOBS = [ingest_job, curation_job, splits_job, labels_job, training_datasets_job, models_job, leaderboard_job,
        release_job, custom_export_job, submission_job, delete_custom_datasets]
