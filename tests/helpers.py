"""Running the real pipeline in tests: the project's definitions with real resources on temp folders."""

from pathlib import Path

import dagster as dg
import pandas as pd

from wildbench_assets.definitions import build_defs
from wildbench_assets.resources.archive import ArchiveResource
from wildbench_assets.resources.artifacts import ArtifactStore
from wildbench_assets.resources.day_keys import DayKeyLists
from wildbench_assets.resources.detector import DetectorResource
from wildbench_assets.resources.inbox import RequestInbox
from wildbench_assets.resources.label_cache import LabelCache
from wildbench_assets.resources.parquet_io import ParquetIOManager
from wildbench_assets.resources.taxonomy import TaxonomyResource
from wildbench_assets.runner import run_pipeline


def pipeline_defs(uri, data_dir, endpoint=None, detector="mdlite", inbox=None, submissions=None,
                  artifacts: ArtifactStore | None = None) -> dg.Definitions:
    return build_defs("local", resources={
        "inbox": RequestInbox(uri=str(inbox or f"{data_dir}/requests")),
        "submissions": RequestInbox(uri=str(submissions or f"{data_dir}/submissions")),
        "archive": ArchiveResource(uri=str(uri), endpoint_url=endpoint),
        "taxonomy": TaxonomyResource(),
        "parquet_io_manager": ParquetIOManager(base_dir=str(data_dir)),
        "artifacts": artifacts or ArtifactStore(base_dir=str(data_dir)),
        "label_cache": LabelCache(base_dir=str(data_dir)),
        "day_keys": DayKeyLists(uri=f"{data_dir}/day_keys"),
        "detector": DetectorResource(backend=detector),
    })


UP_TO_SPLITS = ["raw_images", "image_metadata", "curated_images", "benchmark_splits"]


def run_all(uri, data_dir, instance=None, selection=UP_TO_SPLITS, config_by_asset=None, detector="mdlite",
            force=False):
    """(instance, outcome) after the selected stages ran over every partition of the archive
    (default: up to the splits; selection=None runs everything)."""
    defs = pipeline_defs(uri, data_dir, detector=detector)
    instance = instance or dg.DagsterInstance.ephemeral()
    _plan, outcome = run_pipeline(defs, instance, defs.resources["archive"].open(), selection=selection,
                                  config_by_asset=config_by_asset, force=force)
    return instance, outcome


def latest_checks(instance, asset: str) -> dict[str, list]:
    """check name -> evaluations recorded for the asset, oldest first."""
    from dagster import DagsterEventType, EventRecordsFilter

    events = instance.get_event_records(EventRecordsFilter(event_type=DagsterEventType.ASSET_CHECK_EVALUATION))
    by_name: dict[str, list] = {}
    for record in sorted(events, key=lambda r: r.storage_id):
        evaluation = record.event_log_entry.dagster_event.event_specific_data
        if evaluation.asset_key == dg.AssetKey(asset):
            by_name.setdefault(evaluation.check_name, []).append(evaluation)
    return by_name


def instance_at(folder) -> dg.DagsterInstance:
    """A persistent SQLite instance in `folder` (copy the folder to copy the instance with its data)."""
    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return dg.DagsterInstance.from_config(str(folder))


def cut_release(defs: dg.Definitions, instance, name: str, profile: str = "default"):
    """Register release `name` and materialize it (what `wildbench release` does after bringing labels up
    to date); the run's result."""
    instance.add_dynamic_partitions("releases", [name])
    return defs.resolve_job_def("release_job").execute_in_process(
        instance=instance, partition_key=name, raise_on_error=False,
        run_config={"ops": {"benchmark_release": {"config": {"profile": profile}}}})


def nearest_neighbour_predictions(archive: Path, manifest: pd.DataFrame) -> str:
    """A 'model' that memorises its release's training images: each test image gets the species of the
    train/val image nearest in pixels (a 32 x 24 grey thumbnail). What a burst leak rewards."""
    import numpy as np
    from PIL import Image

    def thumbnail(path: str) -> np.ndarray:
        with Image.open(archive / path) as image:
            return np.asarray(image.convert("L").resize((32, 24)), dtype=np.float32).ravel()

    known = manifest[manifest.split.isin(["train", "val"])]
    train = np.stack([thumbnail(p) for p in known.path])
    rows = []
    for row in manifest[manifest.split.isin(["test", "test_seen"])].itertuples(index=False):
        nearest = int(np.argmin(((train - thumbnail(row.path)) ** 2).sum(axis=1)))
        rows.append(f"{row.public_id},{known.species.iloc[nearest]}")
    return "image_id,label\n" + "\n".join(rows) + "\n"
