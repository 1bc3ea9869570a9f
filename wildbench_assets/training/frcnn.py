"""Faster R-CNN through torchvision: `fasterrcnn_resnet50_fpn_v2` (the thesis's), or the 320-px
MobileNetV3 FPN for the tiny preset (~3 s a step instead of ~14-45 s on a 2-core CPU)."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from wildbench_assets.resources.loaded_models import LOADED
from wildbench_assets.training.common import Prediction, TrainSettings, pick_device


def build_model(num_classes: int, architecture: str, pretrained: str | None = None):
    import torch
    from torchvision.models import detection

    builder = detection.fasterrcnn_resnet50_fpn_v2 if architecture == "full" else \
        detection.fasterrcnn_mobilenet_v3_large_320_fpn
    model = builder(weights=None, weights_backbone=None, num_classes=num_classes + 1)  # + background
    if pretrained:
        if not Path(pretrained).is_file():
            raise FileNotFoundError(f"pretrained weights {pretrained} not found (nothing is downloaded)")
        state = torch.load(pretrained, map_location="cpu", weights_only=True)
        state = {k: v for k, v in state.items() if not k.startswith("roi_heads.box_predictor")}  # new classes
        model.load_state_dict(state, strict=False)
    return model


def _samples(split_dir: Path, limit: int | None):
    doc = json.loads((split_dir / "coco.json").read_text())
    boxes: dict[int, list] = {}
    for a in doc["annotations"]:
        x, y, w, h = a["bbox"]
        boxes.setdefault(a["image_id"], []).append(([x, y, x + w, y + h], a["category_id"]))
    images = sorted(doc["images"], key=lambda i: i["file_name"])[:limit] if limit else doc["images"]
    return [(split_dir / i["file_name"], boxes.get(i["id"], [])) for i in images]


def _tensor(path: Path, size: int | None = None):
    import numpy as np
    import torch

    with Image.open(path) as image:
        array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1)


def train_fasterrcnn(dataset_root: Path, out_dir: Path, settings: TrainSettings,
                     num_classes: int) -> tuple[Path, list[dict]]:
    import torch

    out_dir.mkdir(parents=True, exist_ok=True)
    device = pick_device(settings.device)
    model = build_model(num_classes, settings.architecture, settings.pretrained).to(device)
    model.transform.min_size = (settings.imgsz,)
    model.transform.max_size = max(settings.imgsz, int(settings.imgsz * 1.34))
    samples = _samples(dataset_root / "train", settings.max_train_images)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=0.005, momentum=0.9, weight_decay=5e-4)
    generator = torch.Generator().manual_seed(0)
    losses = []
    model.train()
    for epoch in range(settings.epochs):
        order = torch.randperm(len(samples), generator=generator).tolist()
        total, steps = 0.0, 0
        for start in range(0, len(order), settings.batch):
            batch = [samples[i] for i in order[start:start + settings.batch]]
            images = [_tensor(path).to(device) for path, _ in batch]
            targets = [{"boxes": torch.tensor([b for b, _ in anns], dtype=torch.float32).reshape(-1, 4).to(device),
                        "labels": torch.tensor([c for _, c in anns], dtype=torch.int64).to(device)}
                       for _, anns in batch]
            loss = sum(model(images, targets).values())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total, steps = total + float(loss.detach()), steps + 1
        losses.append({"epoch": epoch + 1, "loss": total / max(1, steps)})
    weights = out_dir / "weights.pt"
    torch.save(model.state_dict(), weights)
    return weights, losses


def predict_fasterrcnn(weights: Path, images: list[Path], num_classes: int,
                       settings: TrainSettings) -> list[list[Prediction]]:
    import torch

    device = pick_device(settings.device)
    def load():
        model = build_model(num_classes, settings.architecture)
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        model.transform.min_size = (settings.imgsz,)
        model.transform.max_size = max(settings.imgsz, int(settings.imgsz * 1.34))
        model.roi_heads.score_thresh = 0.001  # keep low-confidence detections: mAP needs the ranking
        return model.eval().to(device)

    model = LOADED.get("fasterrcnn", weights, load, num_classes, settings.architecture, settings.imgsz, device)
    out = []
    with torch.inference_mode():
        for start in range(0, len(images), 4):
            batch = [_tensor(p).to(device) for p in images[start:start + 4]]
            for result in model(batch):
                out.append([Prediction(int(c) - 1, float(s), tuple(float(v) for v in b))
                            for b, s, c in zip(result["boxes"].tolist(), result["scores"].tolist(),
                                               result["labels"].tolist())])
    return out
