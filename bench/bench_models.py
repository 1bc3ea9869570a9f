"""Training time per epoch and inference images/s of each model on this machine, at stated sizes.

Builds the demo archive's training datasets in a temp folder (manifest boxes, one release cut), then
for each model configuration trains one epoch on the same N train images and predicts the images of the
release's public test ZIP.

    .venv/bin/python bench/bench_models.py [--train-images 24]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers import cut_release, pipeline_defs, run_all  # noqa: E402  (the same pipeline the tests run)
from wildbench_assets.cli import main as cli  # noqa: E402
from wildbench_assets.training.common import TrainSettings  # noqa: E402

CONFIGS = [
    ("yolov8", "yolov8n", 128, "tiny"),
    ("yolov8", "yolov8s", 640, "full"),
    ("megadetector", "yolov5n", 128, "tiny"),
    ("megadetector", "yolov5x6", 640, "full"),
    ("fasterrcnn", "mobilenet_v3_large_320_fpn", 320, "tiny"),
    ("fasterrcnn", "resnet50_fpn_v2", 640, "full"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train-images", type=int, default=24)
    args = parser.parse_args()
    import torch

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-models-") as tmp:
        archive, data = Path(tmp, "archive"), Path(tmp, "data")
        os.environ["WILDBENCH_DATA"] = str(data)
        cli(["demo-archive", str(archive)])
        instance, _ = run_all(archive, data, selection=["raw_images", "image_metadata", "curated_images",
                                                        "benchmark_splits", "detection_labels"], detector="manifest")
        assert cut_release(pipeline_defs(archive, data, detector="manifest"), instance, "bench").success
        _, outcome = run_all(archive, data, instance=instance, selection=["training_datasets"], detector="manifest")
        assert not outcome.get("failure"), outcome
        datasets = data / "artifacts" / "datasets" / "bench"
        with zipfile.ZipFile(data / "artifacts" / "releases" / "bench" / "downloads" / "test.zip") as zf:
            zf.extractall(Path(tmp, "test"))
        test_images = sorted(Path(tmp, "test", "images").iterdir())
        for model, arch, size, kind in CONFIGS:
            settings = TrainSettings(epochs=1, imgsz=size, batch=8 if model == "yolov8" else 2,
                                     max_train_images=args.train_images, architecture=kind, device="auto")
            out = Path(tmp, f"{arch}-{size}")
            started = time.perf_counter()
            if model == "yolov8":
                from wildbench_assets.training.yolo import predict_yolo, train_yolov8

                weights, _ = train_yolov8(datasets / "dataset.yaml", out, settings, scale=arch[-1])
                train_s = time.perf_counter() - started
                started = time.perf_counter()
                predict_yolo(weights, test_images, size)
            elif model == "megadetector":
                from wildbench_assets.training.megadetector import predict_megadetector, train_megadetector

                weights, _ = train_megadetector(datasets / "dataset.yaml", out, settings, arch=arch)
                train_s = time.perf_counter() - started
                started = time.perf_counter()
                predict_megadetector(weights, test_images, size)
            else:
                from wildbench_assets.training.frcnn import predict_fasterrcnn, train_fasterrcnn

                weights, _ = train_fasterrcnn(datasets, out, settings, 24)
                train_s = time.perf_counter() - started
                started = time.perf_counter()
                predict_fasterrcnn(weights, test_images, 24, settings)
            infer = len(test_images) / (time.perf_counter() - started)
            checkpoint = torch.load(weights, map_location="cpu", weights_only=False)  # our own file
            params = sum(p.numel() for p in checkpoint["model"].parameters()) if model != "fasterrcnn" else \
                sum(v.numel() for v in checkpoint.values())
            rows.append({"model": model, "architecture": arch, "imgsz": size, "params_m": round(params / 1e6, 2),
                         "train_images": args.train_images, "epoch_s": round(train_s, 1),
                         "infer_images_per_s": round(infer, 2), "test_images": len(test_images)})
            print(json.dumps(rows[-1]), flush=True)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"\n{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} on {device}")
    for r in rows:
        print(f"  {r['architecture']:28s} {r['imgsz']:4d} px  {r['params_m']:6.2f} M params  "
              f"1 epoch on {r['train_images']} images {r['epoch_s']:7.1f} s  "
              f"inference {r['infer_images_per_s']:6.2f} img/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
