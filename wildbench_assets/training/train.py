"""Training any model of the benchmark: the one dispatch to its own trainer."""

from __future__ import annotations

from pathlib import Path

from wildbench_assets.training.common import TrainSettings


def train_model(model: str, datasets: Path, dataset_yaml: Path, workdir: Path, settings: TrainSettings,
                n_classes: int) -> tuple[Path, list[dict]]:
    """(weights file in workdir, per-epoch losses) from the model's own trainer."""
    if model == "yolov8":
        from wildbench_assets.training.yolo import train_yolov8

        return train_yolov8(dataset_yaml, workdir, settings, scale="n" if settings.architecture == "tiny" else "s")
    if model == "megadetector":
        from wildbench_assets.training.megadetector import train_megadetector

        return train_megadetector(dataset_yaml, workdir, settings,
                                  arch="yolov5n" if settings.architecture == "tiny" else "yolov5x6")
    from wildbench_assets.training.frcnn import train_fasterrcnn

    return train_fasterrcnn(datasets, workdir, settings, n_classes)
