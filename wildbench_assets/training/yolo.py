"""YOLOv8 through ultralytics: from configured pretrained weights (yolov8s, as the thesis) or the yaml."""

from __future__ import annotations

import csv
import shutil
import threading
from pathlib import Path

from wildbench_assets.resources.loaded_models import LOADED
from wildbench_assets.training.common import Prediction, TrainSettings, pick_device


def _subset_yaml(dataset_yaml: Path, out_dir: Path, max_images: int | None) -> Path:
    """dataset.yaml as is, or one whose train split is the first `max_images` images (tiny preset)."""
    if not max_images:
        return dataset_yaml
    import yaml

    spec = yaml.safe_load(dataset_yaml.read_text())
    root = Path(spec.get("path") or dataset_yaml.parent)  # no path: the file's folder
    images = sorted((root / spec["train"]).iterdir())[:max_images]
    listing = out_dir / "train_subset.txt"
    listing.write_text("".join(f"{p}\n" for p in images))
    spec["train"] = str(listing)
    target = out_dir / "dataset.yaml"
    target.write_text(yaml.safe_dump(spec, sort_keys=False))
    return target


def train_yolov8(dataset_yaml: Path, out_dir: Path, settings: TrainSettings,
                 scale: str = "s") -> tuple[Path, list[dict]]:
    """(weights file, per-epoch losses). Pretrained weights when configured, else yolov8<scale>.yaml."""
    from wildbench_assets.resources.ultralytics_env import configure_ultralytics_offline

    configure_ultralytics_offline()
    from ultralytics import YOLO

    out_dir.mkdir(parents=True, exist_ok=True)
    if settings.pretrained and not Path(settings.pretrained).is_file():
        raise FileNotFoundError(f"pretrained weights {settings.pretrained} not found (nothing is downloaded)")
    model = YOLO(settings.pretrained or f"yolov8{scale}.yaml")
    model.train(data=str(_subset_yaml(dataset_yaml, out_dir, settings.max_train_images)), epochs=settings.epochs,
                imgsz=settings.imgsz, batch=settings.batch, device=pick_device(settings.device),
                project=str(out_dir), name="run", exist_ok=True, plots=False, workers=0, verbose=False,
                amp=pick_device(settings.device) != "cpu")
    run = out_dir / "run"
    with open(run / "results.csv") as handle:
        losses = [{k.strip(): float(v) for k, v in row.items() if v.strip()} for row in csv.DictReader(handle)]
    weights = out_dir / "weights.pt"
    shutil.copy(run / "weights" / "last.pt", weights)
    return weights, [{"epoch": int(r["epoch"]), "box_loss": r.get("train/box_loss"),
                      "cls_loss": r.get("train/cls_loss")}
                     for r in losses]


def predict_yolo(weights: Path, images: list[Path], imgsz: int, device: str = "auto") -> list[list[Prediction]]:
    from wildbench_assets.resources.ultralytics_env import configure_ultralytics_offline

    configure_ultralytics_offline()
    from ultralytics import YOLO

    model, in_use = LOADED.get("yolov8", weights, lambda: (YOLO(str(weights)), threading.Lock()))
    out = []
    with in_use:  # an ultralytics model's predictor is not safe to share between threads at once
        for start in range(0, len(images), 16):
            results = model.predict([str(p) for p in images[start:start + 16]], imgsz=imgsz, conf=0.001,
                                    device=pick_device(device), verbose=False, max_det=100)
            for result in results:
                boxes = result.boxes
                out.append([Prediction(int(c), float(s), tuple(float(v) for v in b))
                            for b, s, c in zip(boxes.xyxy.tolist(), boxes.conf.tolist(), boxes.cls.tolist())])
    return out
