"""Materialize the pipeline through a real Dagster instance, partition by partition, so runs show in the UI."""

from __future__ import annotations

import os
import shutil
from collections import defaultdict
from pathlib import Path

import dagster as dg

from wildbench_assets.lib.inventory import arrival_day, is_manifest
from wildbench_assets.lib.splits import SPLITS
from wildbench_assets.partitions import arrival_day_partitions, model_partitions, park_day_key, park_partitions
from wildbench_assets.resources.archive import Archive
from wildbench_assets.settings import PROJECT_ROOT, default_dagster_home


def prepare_dagster_home() -> Path:
    """`$DAGSTER_HOME` (default: `.dagster_home/` in the checkout) holding the repo's dagster.yaml."""
    home = Path(default_dagster_home())
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def archive_partitions(store: Archive) -> list[tuple[str, str]]:
    """Sorted (park, arrival day) pairs that hold at least one object."""
    pairs = {(o.key.split("/", 1)[0], arrival_day(o.last_modified))
             for o in store.list() if "/" in o.key and not is_manifest(o.key)}
    return sorted(pairs)


def register_partitions(instance: dg.DagsterInstance, pairs: list[tuple[str, str]]) -> None:
    for definition, values in ((park_partitions, {p for p, _ in pairs}), (arrival_day_partitions, {d for _, d in pairs})):
        known = set(instance.get_dynamic_partitions(definition.name))
        new = sorted(values - known)
        if new:
            instance.add_dynamic_partitions(definition.name, new)


STAGES: list[tuple[str, list[str]]] = [
    ("ingest_job", ["raw_images", "image_metadata"]),
    ("curation_job", ["curated_images"]),
    ("splits_job", ["benchmark_splits"]),
    ("labels_job", ["detection_labels", "training_datasets", "split_archives"]),
    ("models_job", ["model_weights", "model_evaluation"]),
    ("leaderboard_job", ["leaderboard"]),
]
ASSET_ORDER = [asset for _job, assets in STAGES for asset in assets]


def stage_partitions(job_name: str, pairs: list[tuple[str, str]]) -> list:
    if job_name == "ingest_job":
        return [park_day_key(park, day) for park, day in pairs]
    if job_name == "curation_job":
        return sorted({park for park, _ in pairs})
    if job_name == "models_job":
        return list(model_partitions.get_partition_keys())
    if job_name == "leaderboard_job":
        return [None]
    return list(SPLITS)  # splits_job, labels_job


def run_pipeline(defs: dg.Definitions, instance: dg.DagsterInstance, pairs: list[tuple[str, str]],
                 selection: list[str] | None = None, log_level: str = "INFO",
                 config_by_asset: dict[str, dict] | None = None) -> dict[str, list[str]]:
    """Stage by stage, one run per partition; returns run labels by outcome. A failed stage stops the
    stages after it (they would read incomplete inputs); the other partitions of that stage still run.
    `config_by_asset`: run config of assets by name, e.g. {"benchmark_splits": {"by": "sequence"}}."""
    outcome: dict[str, list[str]] = defaultdict(list)
    for job_name, assets in STAGES:
        chosen = [a for a in assets if selection is None or a in selection]
        if not chosen:
            continue
        job = defs.resolve_job_def(job_name)
        ops = {a: {"config": cfg} for a, cfg in (config_by_asset or {}).items() if a in chosen}
        for key in stage_partitions(job_name, pairs):
            result = job.execute_in_process(
                instance=instance, partition_key=key,
                asset_selection=[dg.AssetKey(a) for a in chosen] if len(chosen) < len(assets) else None,
                raise_on_error=False, tags={"wildbench/trigger": "cli"},
                run_config={"loggers": {"console": {"config": {"log_level": log_level}}}, "ops": ops},
            )
            outcome["success" if result.success else "failure"].append(f"{job_name} {key}: {result.run_id}")
        if outcome.get("failure"):
            break
    return dict(outcome)
