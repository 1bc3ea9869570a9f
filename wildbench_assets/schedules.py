"""Schedules: a new benchmark release each month (by default) when the labelled splits changed; expired
custom-request downloads deleted daily."""

from datetime import UTC, datetime

import dagster as dg

from wildbench_assets import settings
from wildbench_assets.ingest_state import labels_fingerprint
from wildbench_assets.jobs import delete_custom_datasets, release_job
from wildbench_assets.partitions import release_partitions
from wildbench_assets.resources.release_store import next_release_name


def last_release_fingerprint(instance: dg.DagsterInstance) -> str | None:
    """The labels fingerprint the latest cut release was made from (None: no release yet)."""
    records = instance.fetch_materializations(dg.AssetKey("benchmark_release"), limit=1).records
    if not records:
        return None
    value = records[0].asset_materialization.metadata.get("labels_fingerprint")
    return None if value is None else str(value.value)


def release_if_labels_changed(context: dg.ScheduleEvaluationContext):
    """Cut the month's release when the labelled splits changed since the last one."""
    current = labels_fingerprint(context.instance)
    if not current:
        return dg.SkipReason("nothing is labelled yet: no release to cut")
    if current == last_release_fingerprint(context.instance):
        return dg.SkipReason("the labelled splits are unchanged since the last release")
    name = next_release_name(context.instance.get_dynamic_partitions(release_partitions.name),
                             context.scheduled_execution_time or datetime.now(UTC))
    # Schedules cannot return partition requests; the partition must exist before its run is resolved.
    context.instance.add_dynamic_partitions(release_partitions.name, [name])
    return dg.RunRequest(run_key=f"release-{name}", partition_key=name)


def build_schedules() -> list[dg.ScheduleDefinition]:
    """The schedules, their crons read from the environment now (when definitions are built)."""
    monthly_release = dg.schedule(
        name="monthly_release", job=release_job, cron_schedule=settings.release_cron(), execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Cut the month's benchmark release when the labelled splits changed since the last one "
                    "(WILDBENCH_RELEASE_CRON; default 03:00 UTC on the 1st).")(release_if_labels_changed)
    request_retention = dg.ScheduleDefinition(
        name="request_retention", job=delete_custom_datasets, cron_schedule=settings.retention_cron(),
        execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Delete custom-request ZIPs past WILDBENCH_REQUEST_RETENTION_DAYS (WILDBENCH_RETENTION_CRON; "
                    "default 04:30 UTC daily).")
    return [monthly_release, request_retention]
