"""MegaDetector v5 fine-tuning: the YOLOv5 architecture of MegaDetector, trained by the `yolov5` package
(ultralytics-yolov5 0.1.1, the code MegaDetector v5 was trained with), from a configured MD weights file
with the first `freeze` layers frozen (thesis: 20), or the same architecture from its yaml when no weights
are configured (yolov5x6 is MDv5a's; the tiny preset uses yolov5n).

The package's `train.run` would check git, pip-install requirements and download fonts and a model for
its AMP check; `train.train` is called directly instead, with the fonts placed locally and the AMP check
(which downloads yolov5n.pt) answered by the device type.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
from pathlib import Path

from wildbench_assets.resources.loaded_models import LOADED
from wildbench_assets.training.common import TrainSettings, pick_device


def _dataset_yaml(dataset_yaml: Path, out_dir: Path, max_images: int | None) -> Path:
    import yaml

    spec = yaml.safe_load(dataset_yaml.read_text())
    root = Path(spec.get("path") or dataset_yaml.parent)  # no path: the file's folder
    names = [spec["names"][i] for i in sorted(spec["names"])]
    train = str(root / spec["train"])
    if max_images:
        listing = out_dir / "train_subset.txt"
        listing.write_text("".join(f"{p}\n" for p in sorted((root / spec["train"]).iterdir())[:max_images]))
        train = str(listing)
    target = out_dir / "yolov5-data.yaml"
    target.write_text(yaml.safe_dump({"train": train, "val": str(root / spec["val"]), "nc": len(names),
                                      "names": names}, sort_keys=False))
    return target


def _offline(config_dir: Path) -> None:
    """Fonts where yolov5 looks for them, so nothing is downloaded."""
    import matplotlib

    config_dir.mkdir(parents=True, exist_ok=True)
    font = Path(matplotlib.__file__).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
    for name in ("Arial.ttf", "Arial.Unicode.ttf"):
        if not (config_dir / name).exists():
            shutil.copy(font, config_dir / name)
    os.environ["YOLOV5_CONFIG_DIR"] = str(config_dir)


def architecture_yaml(arch: str) -> Path:
    """The yolov5 package's yaml of an architecture (P6 models such as MDv5a's yolov5x6 live in hub/)."""
    import yolov5

    models = Path(yolov5.__file__).parent / "models"
    for candidate in (models / f"{arch}.yaml", models / "hub" / f"{arch}.yaml"):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"no {arch}.yaml in the yolov5 package")


def train_megadetector(dataset_yaml: Path, out_dir: Path, settings: TrainSettings,
                       arch: str = "yolov5x6") -> tuple[Path, list[dict]]:
    out_dir.mkdir(parents=True, exist_ok=True)
    _offline(out_dir.parent / ".yolov5-config")
    import yolov5
    from yolov5 import train as yolo_train
    from yolov5.utils.callbacks import Callbacks
    from yolov5.utils.torch_utils import select_device

    package = Path(yolov5.__file__).parent
    device_name = pick_device(settings.device)
    if settings.pretrained and not Path(settings.pretrained).is_file():
        raise FileNotFoundError(f"MegaDetector weights {settings.pretrained} not found (nothing is downloaded)")
    cfg = None if settings.pretrained else architecture_yaml(arch)
    opt = argparse.Namespace(
        weights=settings.pretrained or "", cfg="" if settings.pretrained else str(cfg),
        data=str(_dataset_yaml(dataset_yaml, out_dir, settings.max_train_images)),
        hyp=str(package / "data" / "hyps" / "hyp.scratch-low.yaml"), epochs=settings.epochs, batch_size=settings.batch,
        imgsz=settings.imgsz, rect=False, resume=False, nosave=False, noval=False, noautoanchor=True, noplots=True,
        evolve=None, bucket="", cache=None, image_weights=False, device=device_name.replace("cuda:", ""),
        multi_scale=False, single_cls=False, optimizer="SGD", sync_bn=False, workers=0,
        project=str(out_dir), name="run", exist_ok=True, quad=False, cos_lr=False, label_smoothing=0.0,
        patience=100, freeze=[settings.freeze if settings.pretrained else 0], save_period=-1, seed=0,
        local_rank=-1, entity=None, upload_dataset=False, bbox_interval=-1, artifact_alias="latest",
        save_dir=str(out_dir / "run"), mlflow_model_name=None, mlflow_url=None, neptune_token=None,
        neptune_project=None, s3_upload_dir=None, upload_dataset_dir=None,
    )
    (out_dir / "run").mkdir(parents=True, exist_ok=True)
    yolo_train.check_amp = lambda model: device_name != "cpu"  # the original downloads yolov5n.pt
    device = select_device(opt.device, batch_size=opt.batch_size)
    # yolov5 0.1.1 pickles whole models; torch >= 2.6 loads weights-only by default. These are our own
    # checkpoints (or the configured MD file), so full loading is allowed for this call only.
    previous = os.environ.get("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
    os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"
    try:
        yolo_train.train(opt.hyp, opt, device, Callbacks())
    finally:
        if previous is None:
            os.environ.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)
        else:
            os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = previous
    run = out_dir / "run"
    losses = []
    if (run / "results.csv").exists():
        with open(run / "results.csv") as handle:
            for row in csv.DictReader(handle):
                row = {k.strip(): v.strip() for k, v in row.items()}
                losses.append({"epoch": int(row["epoch"]) + 1, "box_loss": float(row["train/box_loss"]),
                               "obj_loss": float(row["train/obj_loss"]), "cls_loss": float(row["train/cls_loss"])})
    weights = out_dir / "weights.pt"
    shutil.copy(run / "weights" / "last.pt", weights)
    return weights, losses


def predict_megadetector(weights: Path, images: list[Path], imgsz: int, device: str = "auto"):
    """Every detection (confidence >= 0.001, at most 100 per image) in original-image pixels."""
    import numpy as np
    import torch
    from PIL import Image
    from yolov5.utils.augmentations import letterbox
    from yolov5.utils.general import non_max_suppression, scale_coords

    from wildbench_assets.training.common import Prediction

    device_name = pick_device(device)
    def load():
        checkpoint = torch.load(weights, map_location="cpu", weights_only=False)  # our own checkpoint
        return (checkpoint.get("ema") or checkpoint["model"]).float().eval().to(device_name)

    model = LOADED.get("megadetector-finetuned", weights, load, device_name)
    stride = int(model.stride.max())
    out = []
    with torch.inference_mode():
        for path in images:
            with Image.open(path) as image:
                original = np.asarray(image.convert("RGB"))
            padded = letterbox(original, imgsz, stride=stride, auto=False)[0]
            tensor = torch.from_numpy(np.ascontiguousarray(padded.transpose(2, 0, 1))).float().div(255)
            pred = non_max_suppression(model(tensor[None].to(device_name))[0], conf_thres=0.001, iou_thres=0.6,
                                       max_det=100)[0]
            if len(pred):
                pred[:, :4] = scale_coords(tensor.shape[1:], pred[:, :4], original.shape).round()
            out.append([Prediction(int(c), float(s), tuple(float(v) for v in box))
                        for *box, s, c in pred.tolist()])
    return out
