"""Running the real pipeline in tests: the project's definitions with real resources on temp folders, and the
demo world (the demo archive labelled, both releases cut, their datasets) built once and copied per module."""

import io
import json
import os
import shutil
import sys
from contextlib import redirect_stdout
from dataclasses import dataclass, field
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
    # By time, then storage id: a copied SQLite instance (the demo world's) keeps each run's events in its own
    # file, so storage ids order the evaluations of one run, not those of different runs.
    for record in sorted(events, key=lambda r: (r.event_log_entry.timestamp, r.storage_id)):
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


# --- the demo world --------------------------------------------------------------------------------------

UP_TO_LABELS = [*UP_TO_SPLITS, "detection_labels"]
WORLD_RELEASE, WORLD_THESIS = "2026.11", "2026.11-thesis"  # the default and the thesis profile's release
WORLD_DETECTOR = "manifest"  # the archive's own boxes: ground truth, and no model to load
WORLD_READY = "world.json"   # written last: a world without it is a build that did not finish


@dataclass
class World:
    """A labelled archive and its pipeline's outputs on disk: `archive/` (a copy of the demo archive),
    `data/` ($WILDBENCH_DATA), `home/` ($DAGSTER_HOME: a SQLite instance holding every run and cut)."""

    root: Path
    releases: tuple[str, ...] = (WORLD_RELEASE, WORLD_THESIS)
    instances: list = field(default_factory=list, repr=False)

    @property
    def archive(self) -> Path:
        return self.root / "archive"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def env(self) -> dict[str, str]:
        """The environment under which `wildbench` commands act on this world."""
        return {"DAGSTER_HOME": str(self.home), "WILDBENCH_DATA": str(self.data),
                "WILDBENCH_ARCHIVE": str(self.archive), "WILDBENCH_DETECTOR": WORLD_DETECTOR}

    def release_dir(self, name: str = WORLD_RELEASE) -> Path:
        return self.data / "artifacts" / "releases" / name

    def defs(self, detector: str = WORLD_DETECTOR, **kwargs) -> dg.Definitions:
        return pipeline_defs(self.archive, self.data, detector=detector, **kwargs)

    def instance(self) -> dg.DagsterInstance:
        """This world's instance (one per World object, opened on first use)."""
        if not self.instances:
            self.instances.append(dg.DagsterInstance.from_config(str(self.home)))
        return self.instances[0]

    def close(self) -> None:
        while self.instances:
            self.instances.pop().dispose()

    def cli(self, *argv: str, quiet: bool = True) -> int:
        """`wildbench ARGV...` in this process, in this world's environment (its exit code); the run's table
        of steps is dropped unless quiet=False."""
        from wildbench_assets.cli import main

        saved = {key: os.environ.get(key) for key in self.env}
        os.environ.update(self.env)
        try:
            if not quiet:
                return main(list(argv))
            with redirect_stdout(io.StringIO()):
                return main(list(argv))
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def copy_to(self, root: Path) -> "World":
        """A copy that may be changed freely: its files are its own, its instance opens at the new place (the
        SQLite storage lies under DAGSTER_HOME and dagster.yaml names no absolute path) and the archive keeps
        its modification times, so nothing is stale after the copy."""
        self.close()
        for part in ("archive", "data", "home"):
            shutil.copytree(self.root / part, root / part, symlinks=True)
        return World(root, self.releases)

    def fingerprint(self) -> dict[str, list[int]]:
        """Every file's size and modification time: what any change to the world changes."""
        found = {}
        for part in ("archive", "data", "home"):
            for path in sorted((self.root / part).rglob("*")):
                if not path.is_dir():
                    stat = path.lstat()
                    found[str(path.relative_to(self.root))] = [stat.st_size, stat.st_mtime_ns]
        return found

    def changes_since(self, recorded: dict[str, list[int]]) -> list[str]:
        now = self.fingerprint()
        return sorted(k for k in set(now) | set(recorded) if now.get(k) != recorded.get(k))


def build_world(root: Path) -> World:
    """The demo world in `root`, as an operator makes it: the demo archive (the `demo_archive` fixture's),
    `wildbench release` cuts 2026.11 (labels brought up to date first) and 2026.11-thesis (the thesis profile),
    then the working splits' ZIPs, both releases' training datasets and the leaderboard (the thesis's rows)."""
    world = World(root)
    assert world.cli("demo-archive", str(world.archive), "--events-per-camera", "4") == 0
    assert world.cli("release", "--archive", str(world.archive), "--name", WORLD_RELEASE) == 0
    assert world.cli("release", "--archive", str(world.archive), "--name", WORLD_THESIS, "--profile", "thesis") == 0
    instance = world.instance()
    _, outcome = run_all(world.archive, world.data, instance=instance, detector=WORLD_DETECTOR,
                         selection=["split_archives", "training_datasets"])
    assert not outcome.get("failure"), outcome
    assert world.defs().resolve_job_def("leaderboard_job").execute_in_process(instance=instance).success
    world.close()
    (root / WORLD_READY).write_text(json.dumps({"releases": list(world.releases), "python": sys.version}))
    return world
