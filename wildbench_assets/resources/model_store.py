"""A model's files in the artifact store (`models/<model>/`): its card and weights, training into them,
its predictions on the test sets."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

from wildbench_assets.lib.versions import combined_version
from wildbench_assets.resources.artifacts import ArtifactStore, sha256_file
from wildbench_assets.settings import PROJECT_ROOT
from wildbench_assets.training.common import TrainSettings


def image_count(split_dir: Path) -> int:
    images = split_dir / "images"
    return sum(1 for _ in images.iterdir()) if images.is_dir() else 0


def training_yaml(datasets: Path, workdir: Path) -> Path:
    """dataset.yaml for the trainers; with an empty val split they validate on train (their own val
    numbers are only logged: the benchmark's evaluation is on the test split)."""
    import yaml

    spec = yaml.safe_load((datasets / "dataset.yaml").read_text())
    if not image_count(datasets / "val"):
        spec["val"] = spec["train"]
    target = workdir / "dataset.yaml"
    target.write_text(yaml.safe_dump(spec, sort_keys=False))
    return target


def training_input(artifacts: ArtifactStore, settings: TrainSettings, trainer_version: str) -> str:
    """What a training run depends on: the train/val datasets' content (COCO files name every image by
    a hash of its path, with its boxes), the settings and the trainer's code version."""
    files = [artifacts.path(f"datasets/{split}/coco.json") for split in ("train", "val")]
    return combined_version(*(sha256_file(f) if f.exists() else "missing" for f in files),
                            json.dumps(settings.to_dict(), sort_keys=True), trainer_version)


def code_version() -> str:
    try:
        return subprocess.run(["git", "-C", str(PROJECT_ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        from importlib.metadata import version

        return f"wildbench-assets {version('wildbench-assets')}"


def stored_card(artifacts: ArtifactStore, model: str) -> dict:
    """The card of the model's stored weights; `{}` when no weights (or no card) are stored."""
    card = artifacts.path(f"models/{model}/card.json")
    present = card.exists() and artifacts.path(f"models/{model}/weights.pt").exists()
    return json.loads(card.read_text()) if present else {}


def train_and_store(artifacts: ArtifactStore, model: str, settings: TrainSettings, class_names: list[str],
                    run_id: str, training_input: str) -> dict:
    """Train the model on `datasets/`, publish `weights.pt` then `card.json` (sha256, code version,
    settings, classes, seconds, losses, training input) atomically; return the card."""
    from wildbench_assets.training.train import train_model

    datasets = artifacts.path("datasets")
    workdir = artifacts.path(f"models/.work-{model}-{run_id[:8]}")  # concurrent runs never share one
    workdir.mkdir(parents=True, exist_ok=True)
    relative = f"models/{model}/weights.pt"
    try:
        started = time.perf_counter()
        trained, losses = train_model(model, datasets, training_yaml(datasets, workdir), workdir, settings,
                                      len(class_names))
        seconds = time.perf_counter() - started
        with artifacts.writing(relative) as tmp:
            shutil.copyfile(trained, tmp)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    stored = artifacts.describe(relative)
    card = {"model": model, "sha256": stored.sha256, "code_version": code_version(), "settings": settings.to_dict(),
            "classes": class_names, "train_seconds": seconds, "losses": losses, "training_input": training_input}
    with artifacts.writing(f"models/{model}/card.json") as tmp:
        tmp.write_text(json.dumps(card, indent=1))
    return card


def weights_load_error(path: Path) -> str | None:
    """Why the weights file does not load (None: it does)."""
    import torch

    try:
        torch.load(path, map_location="cpu", weights_only=False)  # our own checkpoint
    except Exception as err:  # noqa: BLE001 - reported by the check
        return str(err)
    return None


def predict_test_set(artifacts: ArtifactStore, model: str, card: dict, test_set: str,
                     n_classes: int) -> tuple[dict, list, float]:
    """(the test set's COCO truth, the model's predictions per image in its order, seconds taken)."""
    from wildbench_assets.training.predict import predict_with_model

    truth = artifacts.path(f"datasets/{test_set}/coco.json")
    truth_doc = json.loads(truth.read_text()) if truth.exists() else {"images": []}
    if not truth_doc["images"]:
        return truth_doc, [], 0.0
    images = [truth.parent / i["file_name"] for i in truth_doc["images"]]
    started = time.perf_counter()
    predicted = predict_with_model(model, artifacts.path(f"models/{model}/weights.pt"), images,
                                   TrainSettings(**card["settings"]), n_classes)
    return truth_doc, predicted, time.perf_counter() - started


def write_predictions(artifacts: ArtifactStore, model: str, test_set: str, results: list[dict]) -> None:
    with artifacts.writing(f"models/{model}/{test_set}_predictions.coco.json") as tmp:
        tmp.write_text(json.dumps(results))
