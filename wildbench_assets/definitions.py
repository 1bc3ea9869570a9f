"""The Dagster definitions: `defs` for the deployment the environment names (built when Dagster loads it,
not at import); `build_defs("prod")` for production, `build_defs(resources=...)` for tests."""

from __future__ import annotations

import dagster as dg

from wildbench_assets import execution, settings
from wildbench_assets.assets import curation, exports, inference, ingest, labels, models, releases, requests
from wildbench_assets.automation import with_refresh_cron
from wildbench_assets.jobs import JOBS
from wildbench_assets.resources import build_resources
from wildbench_assets.schedules import build_schedules
from wildbench_assets.sensors import build_sensors


def build_defs(deployment: str | None = None, resources: dict | None = None) -> dg.Definitions:
    """The project's definitions, with the settings the environment holds now; `resources` replaces some of
    the deployment's (tests point them at temp folders)."""
    deployment = deployment or settings.deployment()
    assets = dg.load_assets_from_modules([ingest, curation, labels, exports, releases, requests, models, inference])
    return dg.Definitions(
        assets=with_refresh_cron(list(assets), settings.refresh_cron()),
        jobs=JOBS,
        sensors=build_sensors(),
        schedules=build_schedules(),
        resources={**build_resources(deployment), **(resources or {})},
        executor=execution.executor(),
    )


@dg.definitions
def defs() -> dg.Definitions:
    """What `dagster dev`, the daemon, the code server and Celery workers load (workspace.yaml)."""
    return build_defs()
