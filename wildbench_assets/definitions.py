"""The Dagster definitions: `defs` for the local deployment; `build_defs("prod")` for production."""

from __future__ import annotations

import os

import dagster as dg

from wildbench_assets.assets import curation, exports, ingest, labels, models, requests
from wildbench_assets.automation import JOBS
from wildbench_assets.resources import build_resources
from wildbench_assets.sensors import custom_export_job, custom_export_requests, submission_job, submissions_sensor


def build_defs(deployment: str | None = None) -> dg.Definitions:
    deployment = deployment or os.environ.get("WILDBENCH_DEPLOYMENT", "local")
    return dg.Definitions(
        assets=dg.load_assets_from_modules([ingest, curation, labels, exports, requests, models]),
        asset_checks=[],
        jobs=[*JOBS, custom_export_job, submission_job],
        sensors=[custom_export_requests, submissions_sensor],
        resources=build_resources(deployment),
        executor=dg.in_process_executor,
    )


defs = build_defs()
