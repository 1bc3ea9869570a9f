"""The Dagster definitions: `defs` for the local deployment; `build_defs("prod")` for production."""

from __future__ import annotations

import dagster as dg

from wildbench_assets import execution, settings
from wildbench_assets.assets import curation, exports, inference, ingest, labels, models, releases, requests
from wildbench_assets.jobs import JOBS
from wildbench_assets.resources import build_resources
from wildbench_assets.schedules import monthly_release, request_retention
from wildbench_assets.sensors import archive_arrivals, automation, custom_export_requests, submissions_sensor


def build_defs(deployment: str | None = None, resources: dict | None = None) -> dg.Definitions:
    """The project's definitions; `resources` replaces some of the deployment's (tests point them at
    temp folders)."""
    deployment = deployment or settings.deployment()
    return dg.Definitions(
        assets=dg.load_assets_from_modules([ingest, curation, labels, exports, releases, requests, models, inference]),
        asset_checks=[],
        jobs=JOBS,
        sensors=[archive_arrivals, automation, custom_export_requests, submissions_sensor],
        schedules=[monthly_release, request_retention],
        resources={**build_resources(deployment), **(resources or {})},
        executor=execution.executor(),
    )


defs = build_defs()
