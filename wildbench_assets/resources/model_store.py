"""A model's files in the artifact store (`layout.model_dir`): its card and weights, training into them from
the release's datasets (`layout.datasets_dir`), its predictions on the release's public test ZIPs."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import zipfile
from pathlib import Path

from wildbench_assets import layout
from wildbench_assets.lib.versions import combined_version
from wildbench_assets.resources.artifacts import ArtifactStore, sha256_file
from wildbench_assets.resources.release_store import ReleaseStore
from wildbench_assets.settings import PROJECT_ROOT
from wildbench_assets.training.common import TrainSettings
from wildbench_assets.training.registry import PROMOTION_MIN_MAP_50

WEIGHTS, CARD, PREDICTIONS = "weights.pt", "card.json", "test_predictions.coco.json"  # in a model's folder


def image_count(split_dir: Path) -> int:
    images = split_dir / "images"
    return sum(1 for _ in images.iterdir()) if images.is_dir() else 0


def training_yaml(datasets: Path, workdir: Path) -> Path:
    """dataset.yaml for the trainers, rooted where the datasets lie on this machine; with an empty val
    split they validate on train (their own val numbers are only logged: the benchmark's evaluation is
    on the release's hidden test sets)."""
    import yaml

    spec = yaml.safe_load((datasets / "dataset.yaml").read_text()) | {"path": str(datasets)}
    if not image_count(datasets / "val"):
        spec["val"] = spec["train"]
    target = workdir / "dataset.yaml"
    target.write_text(yaml.safe_dump(spec, sort_keys=False))
    return target


def training_input(artifacts: ArtifactStore, release: str, settings: TrainSettings, trainer_version: str) -> str:
    """What a training run depends on: the release's train/val datasets' content (COCO files name every
    image by a hash of its path, with its boxes), the settings and the trainer's code version."""
    files = [artifacts.path(f"{layout.datasets_dir(release)}/{split}/coco.json") for split in ("train", "val")]
    return combined_version(*(sha256_file(f) if f.exists() else "missing" for f in files),
                            json.dumps(settings.to_dict(), sort_keys=True), trainer_version)


def code_version() -> str:
    try:
        return subprocess.run(["git", "-C", str(PROJECT_ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        from importlib.metadata import version

        return f"wildbench-assets {version('wildbench-assets')}"


def stored_card(artifacts: ArtifactStore, model: str, release: str) -> dict:
    """The card of the model's stored weights; `{}` when no weights (or no card) are stored."""
    card = artifacts.path(layout.model_file(model, release, CARD))
    present = card.exists() and artifacts.path(layout.model_file(model, release, WEIGHTS)).exists()
    return json.loads(card.read_text()) if present else {}


def train_and_store(artifacts: ArtifactStore, model: str, release: str, settings: TrainSettings,
                    class_names: list[str], run_id: str, training_input: str) -> dict:
    """Train the model on the release's datasets, publish `weights.pt` then `card.json` (sha256, release,
    code version, settings, classes, seconds, losses, training input) atomically; return the card."""
    from wildbench_assets.training.train import train_model

    datasets = artifacts.path(layout.datasets_dir(release))
    workdir = artifacts.path(layout.training_workdir(model, run_id))
    workdir.mkdir(parents=True, exist_ok=True)
    relative = layout.model_file(model, release, WEIGHTS)
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
    card = {"model": model, "release": release, "sha256": stored.sha256, "code_version": code_version(),
            "settings": settings.to_dict(),
            "classes": class_names, "train_seconds": seconds, "losses": losses, "training_input": training_input}
    with artifacts.writing(layout.model_file(model, release, CARD)) as tmp:
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


def predict_public_test_sets(artifacts: ArtifactStore, model: str, release: str, card: dict,
                             n_classes: int) -> tuple[dict, float]:
    """(public id -> the model's predictions, seconds taken) over the images of the release's public
    test ZIPs: exactly what a researcher downloads (public ids, no EXIF), nothing the pipeline knows
    besides."""
    from wildbench_assets.lib.releases import HIDDEN_SPLITS, is_image_name
    from wildbench_assets.training.predict import predict_with_model

    releases = ReleaseStore(artifacts)
    with tempfile.TemporaryDirectory() as tmp:
        images: dict[str, Path] = {}
        for split in HIDDEN_SPLITS:  # only these objects are fetched (in S3: not the train and val ZIPs)
            with zipfile.ZipFile(releases.local_file(release, layout.download_name(split))) as zf:
                for name in filter(is_image_name, zf.namelist()):
                    images[Path(name).stem] = Path(zf.extract(name, Path(tmp) / split))
        if not images:
            return {}, 0.0
        started = time.perf_counter()
        predicted = predict_with_model(model, artifacts.path(layout.model_file(model, release, WEIGHTS)),
                                       list(images.values()), TrainSettings(**card["settings"]), n_classes)
        return dict(zip(images, predicted)), time.perf_counter() - started


def write_predictions(artifacts: ArtifactStore, model: str, release: str, results: list[dict]) -> None:
    with artifacts.writing(layout.model_file(model, release, PREDICTIONS)) as tmp:
        tmp.write_text(json.dumps(results))


def load_chosen_predictor(artifacts: ArtifactStore, leaderboard, class_names: list[str], detector,
                          min_confidence: float, model: str = "auto", min_map_50: float = PROMOTION_MIN_MAP_50,
                          weights: Path | None = None):
    """The predictor of `model`: `auto` is the promoted model (`training.predict.promoted_model`), or the
    detector alone when none earned promotion (its `answer` says why: `promotion_refusal`); `detector`
    the detector alone; a model name that model on the most recently cut release it was trained on (or
    an explicit `weights` file of it)."""
    from wildbench_assets.training.predict import (
        DETECTOR,
        load_predictor,
        promoted_model,
        promotion_reason,
        promotion_refusal,
    )

    def present(m, r):
        return artifacts.path(layout.model_file(m, r, WEIGHTS)).exists()

    if weights is not None:
        return load_predictor(None, class_names, model, detector, min_confidence, weights,
                              why=f"an explicit weights file ({Path(weights).name})")
    if model == DETECTOR:
        return load_predictor(None, class_names, model, detector, min_confidence,
                              why="the detector alone was asked for (model 'detector')")
    chosen = promoted_model(leaderboard, present, min_map_50, model)
    if chosen is None:
        if model != "auto":
            raise FileNotFoundError(f"no weights for {model} on any release: train it on one (`wildbench run` "
                                    "after `wildbench release`)")
        return load_predictor(None, class_names, DETECTOR, detector, min_confidence,
                              why=promotion_refusal(leaderboard, present, min_map_50))
    name, release = chosen
    why = promotion_reason(leaderboard, name, release, min_map_50) if model == "auto" else \
        f"asked for by name ({name}): the most recently cut default-profile release it was trained on"
    return load_predictor(artifacts.path(layout.model_dir(name, release)), class_names, name, detector, min_confidence,
                          why=why, release=release)
