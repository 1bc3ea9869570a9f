"""Rankings one can trust: the bootstrap intervals (resampling sequences) of the same models on a default
release and on a thesis-profile release cut from the same demo archive, side by side.

Builds the demo archive in a temp folder (manifest boxes as labels), cuts `gap` (default profile) and
`gap-thesis` (the thesis's random image split), then on each
- scores a nearest-neighbour memoriser (each test image gets the species of the nearest train/val
  thumbnail) as a submission;
- with `--epochs N` (N > 0) also trains and scores a detector through the real assets;
and prints each row's test-set size (images, sequences), the headline metrics with their 95 % intervals,
event-level accuracy, the leaderboard's tie marks, and whether the thesis-profile gain leaves the default
release's interval (the intervals of two independent test sets not overlapping).

    .venv/bin/python bench/bench_rankings.py [--epochs 60 --imgsz 256 --model yolov8]
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

RELEASES = (("gap", "default"), ("gap-thesis", "thesis"))
METRICS = ("map_50", "map_50_95", "accuracy", "event_accuracy")


def _cell(row, metric: str) -> str:
    value, low, high = row[metric], row[f"{metric}_low"], row[f"{metric}_high"]
    if value is None or value != value:
        return "—"
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="yolov8", choices=["yolov8", "megadetector", "fasterrcnn"])
    parser.add_argument("--epochs", type=int, default=0, help="0: the memoriser only (no training)")
    parser.add_argument("--imgsz", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--events-per-camera", type=int, default=8)
    args = parser.parse_args()

    train = {"preset": "tiny", "epochs": args.epochs, "imgsz": args.imgsz, "batch": args.batch,
             "max_train_images": 100_000}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-rankings-") as tmp:
        archive, data = Path(tmp, "archive"), Path(tmp, "data")
        os.environ["WILDBENCH_DATA"] = str(data)
        cli(["demo-archive", str(archive), "--events-per-camera", str(args.events_per_camera)])
        instance, outcome = run_all(archive, data, selection=["raw_images", "image_metadata", "curated_images",
                                                              "benchmark_splits", "detection_labels"],
                                    detector="manifest")
        assert not outcome.get("failure"), outcome
        defs = pipeline_defs(archive, data, detector="manifest")
        scoring_s = {}
        for release, profile in RELEASES:
            assert cut_release(defs, instance, release, profile).success
            if args.epochs:
                assert defs.resolve_job_def("training_datasets_job").execute_in_process(
                    instance=instance, partition_key=release).success
                assert defs.resolve_job_def("models_job").execute_in_process(
                    instance=instance, partition_key=model_release_key(args.model, release),
                    run_config={"ops": {"model_weights": {"config": train}}}).success
            inbox = data / "submissions"
            inbox.mkdir(exist_ok=True)
            manifest = read_manifest((data / "artifacts" / "releases" / release / "manifest.csv").read_bytes())
            (inbox / f"memoriser-{release}.release").write_text(release + "\n")
            (inbox / f"memoriser-{release}.csv").write_text(nearest_neighbour_predictions(archive, manifest))
            instance.add_dynamic_partitions("submissions", [f"memoriser-{release}"])
            clock = time.perf_counter()
            assert defs.resolve_job_def("submission_job").execute_in_process(
                instance=instance, partition_key=f"memoriser-{release}").success
            scoring_s[release] = time.perf_counter() - clock
        assert defs.resolve_job_def("leaderboard_job").execute_in_process(instance=instance).success
        board = read_table(data, "leaderboard")
    board = board[board.release.isin([r for r, _p in RELEASES])]
    board = board.assign(model=board.model.str.replace(r"submission:memoriser-.*", "memoriser", regex=True))
    board = board.astype(object).where(board.notna(), None)

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; demo archive, {args.events_per_camera} events "
          f"per camera; {f'{args.model} {args.epochs} epochs at {args.imgsz} px' if args.epochs else 'no training'}; "
          f"{time.perf_counter() - started:.0f} s in all")
    print("scoring a submission, intervals included: " + ", ".join(f"{r} {s:.2f} s" for r, s in scoring_s.items()))
    print("| model | release | images / sequences | " + " | ".join(METRICS) + " | tied with |")
    for row in board.sort_values(["model", "release"]).to_dict("records"):
        print(f"| {row['model']} | {row['release']} | {row['images']} / {row['sequences']} | "
              + " | ".join(_cell(row, m) for m in METRICS) + f" | {row['tied_with'] or '—'} |")
    for name, rows in board.groupby("model"):
        by = {r["release"]: r for r in rows.to_dict("records")}
        if set(by) != {"gap", "gap-thesis"}:
            continue
        for metric in METRICS:
            default, thesis = by["gap"], by["gap-thesis"]
            if default[metric] is None or thesis[metric] is None:
                continue
            separate = thesis[f"{metric}_low"] > default[f"{metric}_high"] or \
                default[f"{metric}_low"] > thesis[f"{metric}_high"]
            print(f"{name} {metric}: thesis - default {thesis[metric] - default[metric]:+.3f}; intervals "
                  f"{'do not overlap: the gap survives' if separate else 'overlap: within the noise'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
