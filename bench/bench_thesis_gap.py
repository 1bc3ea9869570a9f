"""The thesis protocol's optimism, measured: one model trained and scored on a default release and on a
thesis-profile release cut from the same archive, through the real assets (training_datasets,
model_weights, model_evaluation, leaderboard), side by side in one run.

Builds the demo archive in a temp folder (manifest boxes as labels), cuts `gap` (default profile: camera
grouping, burst-aware) and `gap-thesis` (the thesis's random image split), trains the model on each with
the same settings and prints both leaderboard rows and their difference.

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

from tests.helpers import cut_release, pipeline_defs, run_all  # noqa: E402  (the same pipeline the tests run)
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
        assert defs.resolve_job_def("leaderboard_job").execute_in_process(instance=instance).success
        board = read_table(data, "leaderboard")
        rows = board[board.model == args.model].set_index("release")[SHOWN].astype(float)
        splits = {r: read_manifest((data / "artifacts" / "releases" / r / "manifest.csv").read_bytes())
                  .split.value_counts().to_dict() for r in seconds}

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"cuda={torch.cuda.is_available()}")
    print(f"{args.model}: {args.epochs} epochs at {args.imgsz} px, batch {args.batch}, every train image; "
          f"demo archive with {args.events_per_camera} events per camera")
    for release, row in rows.iterrows():
        sizes = "/".join(str(splits[release].get(s, 0)) for s in ("train", "val", "test", "test_seen"))
        print(f"  {release:12s} train/val/test/test_seen {sizes}  train+score {seconds[release]:6.1f} s  " +
              "  ".join(f"{k} {v:.3f}" for k, v in row.items() if v == v))
    gap = rows.loc["gap-thesis"] - rows.loc["gap"]
    print("  thesis - default: " + "  ".join(f"{k} {v:+.3f}" for k, v in gap.items() if v == v))
    return 0


if __name__ == "__main__":
    sys.exit(main())
