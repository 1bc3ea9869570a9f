"""Training any model of the benchmark: the one dispatch to its own trainer."""

from __future__ import annotations

from pathlib import Path

from wildbench_assets.training.common import TrainSettings
from wildbench_assets.training.registry import model_spec


def train_model(model: str, datasets: Path, dataset_yaml: Path, workdir: Path, settings: TrainSettings,
                n_classes: int) -> tuple[Path, list[dict]]:
    """(weights file in workdir, per-epoch losses) from the model's own trainer (`registry.MODEL_REGISTRY`)."""
    spec = model_spec(model)
    return spec.train(datasets, dataset_yaml, workdir, settings, n_classes, spec.architecture(settings))
