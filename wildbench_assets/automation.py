"""Jobs, schedules and sensors."""

import dagster as dg

from wildbench_assets.partitions import park_day_partitions

ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.groups("ingest"),
    partitions_def=park_day_partitions,
    description="List one park's arrivals of one day and read their EXIF headers.",
)

JOBS = [ingest_job]
