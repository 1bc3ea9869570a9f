"""The thesis protocol's optimism, measured: the same models on a default release and on a thesis-profile
release cut from the same archive, side by side in one run.

Builds the demo archive in a temp folder (manifest boxes as labels), cuts `gap` (default profile: camera
grouping, burst-aware) and `gap-thesis` (the thesis's random image split), then on each
- trains and scores a detector through the real assets (training_datasets, model_weights,
  model_evaluation, leaderboard) with the same settings;
- scores a nearest-neighbour memoriser (each test image gets the species of the nearest train/val
  thumbnail) as a submission, by the same scoring;
and prints both releases' rows and their difference.

    .venv/bin/python bench/bench_thesis_gap.py [--model yolov8] [--epochs 30] [--imgsz 320]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers import (  # noqa: E402  (the same pipeline the tests run)
    cut_release,
    nearest_neighbour_predictions,
    pipeline_defs,
    run_all,
)
from wildbench_assets.cli import main as cli  # noqa: E402
from wildbench_assets.lib.releases import read_manifest  # noqa: E402
from wildbench_assets.partitions import model_release_key  # noqa: E402
from wildbench_assets.summary import read_table  # noqa: E402

SHOWN = ["images", "map_50", "map_50_95", "accuracy", "f1_weighted", "seen_map_50", "seen_accuracy"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="yolov8", choices=["yolov8", "megadetector", "fasterrcnn"])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--events-per-camera", type=int, default=8)
    args = parser.parse_args()
    import torch

    train = {"preset": "tiny", "epochs": args.epochs, "imgsz": args.imgsz, "batch": args.batch,
             "max_train_images": 100_000}
    with tempfile.TemporaryDirectory(prefix="bench-gap-") as tmp:
        archive, data = Path(tmp, "archive"), Path(tmp, "data")
        os.environ["WILDBENCH_DATA"] = str(data)
        cli(["demo-archive", str(archive), "--events-per-camera", str(args.events_per_camera)])
        instance, outcome = run_all(archive, data, selection=["raw_images", "image_metadata", "curated_images",
                                                              "benchmark_splits", "detection_labels"],
                                    detector="manifest")
        assert not outcome.get("failure"), outcome
        defs = pipeline_defs(archive, data, detector="manifest")
        seconds = {}
        for release, profile in (("gap", "default"), ("gap-thesis", "thesis")):
            assert cut_release(defs, instance, release, profile).success
            assert defs.resolve_job_def("training_datasets_job").execute_in_process(
                instance=instance, partition_key=release).success
            started = time.perf_counter()
            assert defs.resolve_job_def("models_job").execute_in_process(
                instance=instance, partition_key=model_release_key(args.model, release),
                run_config={"ops": {"model_weights": {"config": train}}}).success
            seconds[release] = time.perf_counter() - started
            inbox = data / "submissions"
            inbox.mkdir(exist_ok=True)
            manifest = read_manifest((data / "artifacts" / "releases" / release / "manifest.csv").read_bytes())
            (inbox / f"memoriser-{release}.release").write_text(release + "\n")
            (inbox / f"memoriser-{release}.csv").write_text(nearest_neighbour_predictions(archive, manifest))
            instance.add_dynamic_partitions("submissions", [f"memoriser-{release}"])
            assert defs.resolve_job_def("submission_job").execute_in_process(
                instance=instance, partition_key=f"memoriser-{release}").success
        assert defs.resolve_job_def("leaderboard_job").execute_in_process(instance=instance).success
        board = read_table(data, "leaderboard")
        board = board.assign(model=board.model.str.replace(r"submission:memoriser-.*", "memoriser", regex=True))
        rows = {name: board[board.model == name].set_index("release")[SHOWN].astype(float)
                for name in (args.model, "memoriser")}
        splits = {r: read_manifest((data / "artifacts" / "releases" / r / "manifest.csv").read_bytes())
                  .split.value_counts().to_dict() for r in seconds}

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"cuda={torch.cuda.is_available()}")
    print(f"{args.model}: {args.epochs} epochs at {args.imgsz} px, batch {args.batch}, every train image; "
          f"demo archive with {args.events_per_camera} events per camera")
    for release in seconds:
        sizes = "/".join(str(splits[release].get(s, 0)) for s in ("train", "val", "test", "test_seen"))
        print(f"  {release}: train/val/test/test_seen {sizes}; {args.model} trained and scored in "
              f"{seconds[release]:.1f} s")
    for name, table in rows.items():
        for release, row in table.iterrows():
            print(f"  {name:12s} {release:12s} " + "  ".join(f"{k} {v:.3f}" for k, v in row.items() if v == v))
        gap = table.loc["gap-thesis"] - table.loc["gap"]
        print(f"  {name:12s} thesis - default: " + "  ".join(f"{k} {v:+.3f}" for k, v in gap.items() if v == v))
    return 0


if __name__ == "__main__":
    sys.exit(main())
