"""The benchmark's models, in one registry: each model's name (its partition key, config and CLI choice),
trainer, predictor and the architecture each preset gives it. `partitions.model_partitions`,
`config.PredictionConfig.model`, `wildbench predict --model`, `train.train_model` and
`predict.predict_with_model` all derive from `MODEL_REGISTRY`; adding a model is one entry here.

Trainers and predictors import their framework when called, so reading the registry costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from wildbench_assets.training.common import Prediction, TrainSettings

DETECTOR = "detector"  # not a model of the registry: the box detector alone (species "animal")
AUTO = "auto"          # the promoted model (`predict.promoted_model`)
PROMOTION_MIN_MAP_50 = 0.1  # `auto` promotes a trained model only with at least this mAP@.5 on its release

Trainer = Callable[[Path, Path, Path, TrainSettings, int, str], tuple[Path, list[dict]]]
Predictor = Callable[[Path, list[Path], TrainSettings, int], list[list[Prediction]]]


@dataclass(frozen=True)
class ModelSpec:
    name: str          # the partition key, config choice and CLI choice
    title: str
    train: Trainer     # (datasets, dataset.yaml, workdir, settings, n_classes, architecture) -> (weights, losses)
    predict: Predictor  # (weights, images, settings, n_classes) -> every detection per image
    architectures: dict[str, str] = field(default_factory=dict)  # settings.architecture -> what is trained

    def architecture(self, settings: TrainSettings) -> str:
        return self.architectures[settings.architecture]


def _train_yolov8(datasets, dataset_yaml, workdir, settings, n_classes, architecture):
    from wildbench_assets.training.yolo import train_yolov8

    return train_yolov8(dataset_yaml, workdir, settings, scale=architecture)


def _predict_yolov8(weights, images, settings, n_classes):
    from wildbench_assets.training.yolo import predict_yolo

    return predict_yolo(weights, images, settings.imgsz, settings.device)


def _train_megadetector(datasets, dataset_yaml, workdir, settings, n_classes, architecture):
    from wildbench_assets.training.megadetector import train_megadetector

    return train_megadetector(dataset_yaml, workdir, settings, arch=architecture)


def _predict_megadetector(weights, images, settings, n_classes):
    from wildbench_assets.training.megadetector import predict_megadetector

    return predict_megadetector(weights, images, settings.imgsz, settings.device)


def _train_fasterrcnn(datasets, dataset_yaml, workdir, settings, n_classes, architecture):
    from wildbench_assets.training.frcnn import train_fasterrcnn

    return train_fasterrcnn(datasets, workdir, settings, n_classes)  # reads settings.architecture itself


def _predict_fasterrcnn(weights, images, settings, n_classes):
    from wildbench_assets.training.frcnn import predict_fasterrcnn

    return predict_fasterrcnn(weights, images, n_classes, settings)


MODEL_REGISTRY: dict[str, ModelSpec] = {spec.name: spec for spec in (
    ModelSpec("yolov8", "YOLOv8 (ultralytics)", _train_yolov8, _predict_yolov8, {"full": "s", "tiny": "n"}),
    ModelSpec("megadetector", "MegaDetector v5 fine-tuned (yolov5)", _train_megadetector, _predict_megadetector,
              {"full": "yolov5x6", "tiny": "yolov5n"}),
    ModelSpec("fasterrcnn", "Faster R-CNN (torchvision)", _train_fasterrcnn, _predict_fasterrcnn,
              {"full": "fasterrcnn_resnet50_fpn_v2", "tiny": "fasterrcnn_mobilenet_v3_large_320_fpn"}),
)}
MODEL_NAMES: tuple[str, ...] = tuple(MODEL_REGISTRY)
PREDICTOR_CHOICES: tuple[str, ...] = (AUTO, DETECTOR, *MODEL_NAMES)  # what `predict` may be asked for


def model_spec(name: str) -> ModelSpec:
    """The registered model `name`; a ValueError naming the choices for any other name."""
    try:
        return MODEL_REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; expected one of {(*MODEL_NAMES, DETECTOR)}") from None
