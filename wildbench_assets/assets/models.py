"""Models: trained weights per model, their evaluation on the test split, and the leaderboard."""

import json
import math
import shutil
import subprocess
import time
from pathlib import Path

import dagster as dg
import pandas as pd

from wildbench_assets.assets.checks import frame_markdown, png_markdown, publish
from wildbench_assets.automation import when_inputs_changed
from wildbench_assets.config import EvaluationConfig, TrainConfig
from wildbench_assets.ingest_state import latest_release, release_profile
from wildbench_assets.lib.metrics import image_level
from wildbench_assets.lib.plots import bar_chart_png, confusion_png
from wildbench_assets.lib.releases import RELEASE_SUFFIX, named_release, truth_groups
from wildbench_assets.lib.scoring import ScoringError, score
from wildbench_assets.lib.splits import TEST_SETS
from wildbench_assets.lib.versions import combined_version, table_version
from wildbench_assets.partitions import model_partitions, submission_partitions
from wildbench_assets.resources.artifacts import ArtifactStore
from wildbench_assets.resources.inbox import RequestInbox
from wildbench_assets.resources.taxonomy import TaxonomyResource
from wildbench_assets.settings import PROJECT_ROOT
from wildbench_assets.taxonomy import EMPTY as EMPTY_SPECIES
from wildbench_assets.training.common import PRESETS, TrainSettings
from wildbench_assets.training.predict import predict_with_model

TRAINING_CODE_VERSION = "1"
# Training reads train + val; evaluation and submissions read test. Each declares exactly that.
TRAIN_AND_VAL = dg.SpecificPartitionsPartitionMapping(["train", "val"])
TEST_SETS_ONLY = dg.SpecificPartitionsPartitionMapping(list(TEST_SETS))


def _image_count(split_dir: Path) -> int:
    images = split_dir / "images"
    return sum(1 for _ in images.iterdir()) if images.is_dir() else 0


def _training_yaml(datasets: Path, workdir: Path) -> Path:
    """dataset.yaml for the trainers; with an empty val split they validate on train (their own val
    numbers are only logged: the benchmark's evaluation is on the test split)."""
    import yaml

    spec = yaml.safe_load((datasets / "dataset.yaml").read_text())
    if not _image_count(datasets / "val"):
        spec["val"] = spec["train"]
    target = workdir / "dataset.yaml"
    target.write_text(yaml.safe_dump(spec, sort_keys=False))
    return target


def _training_input(artifacts: ArtifactStore, settings: TrainSettings) -> str:
    """What a training run depends on: the train/val datasets' content (COCO files name every image by
    a hash of its path, with its boxes), the settings and the trainer's code version."""
    from wildbench_assets.resources.artifacts import sha256_file

    files = [artifacts.path(f"datasets/{split}/coco.json") for split in ("train", "val")]
    return combined_version(*(sha256_file(f) if f.exists() else "missing" for f in files),
                            json.dumps(settings.to_dict(), sort_keys=True), TRAINING_CODE_VERSION)


def _settings(config: TrainConfig) -> TrainSettings:
    base = PRESETS[config.preset].to_dict()
    overrides = {k: v for k, v in config.model_dump().items() if k in base and v is not None}
    return TrainSettings(**{**base, **overrides, "device": config.device})


def _code_version() -> str:
    try:
        return subprocess.run(["git", "-C", str(PROJECT_ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        from importlib.metadata import version

        return f"wildbench-assets {version('wildbench-assets')}"


@dg.asset(
    partitions_def=model_partitions,
    deps=[dg.AssetDep("training_datasets", partition_mapping=TRAIN_AND_VAL)],
    group_name="models",
    kinds={"pytorch"},
    code_version=TRAINING_CODE_VERSION,
    automation_condition=when_inputs_changed(),
    check_specs=[dg.AssetCheckSpec("weights_loadable", asset="model_weights", blocking=True),
                 dg.AssetCheckSpec("loss_finite", asset="model_weights", blocking=True)],
)
def model_weights(context: dg.AssetExecutionContext, config: TrainConfig, artifacts: ArtifactStore,
                  taxonomy: TaxonomyResource):
    """Trained weights of one model on the benchmark's train split: `yolov8` (ultralytics; yolov8s from a
    configured pretrained file, else from its yaml), `megadetector` (the `yolov5` package's trainer:
    fine-tuned from a configured MD v5 weights file with the first 20 layers frozen, else yolov5x6 from
    its yaml) or `fasterrcnn` (torchvision resnet50_fpn_v2; the tiny preset uses the 320-px MobileNetV3
    FPN). Stored atomically with sha256, code version and config. Not retrained when the training
    data, settings and trainer are unchanged: the stored weights are re-published as they are."""
    model = context.partition_key
    settings = _settings(config)
    names = taxonomy.load().class_names
    datasets = artifacts.path("datasets")
    if not (datasets / "dataset.yaml").exists():
        raise dg.Failure("no training datasets: materialize training_datasets first")
    training_input = _training_input(artifacts, settings)
    card_path = artifacts.path(f"models/{model}/card.json")
    previous = json.loads(card_path.read_text()) if card_path.exists() else {}
    if previous.get("training_input") == training_input and artifacts.path(f"models/{model}/weights.pt").exists():
        context.log.info(f"{model}: training data, settings and trainer unchanged: not retrained")
        return _weights_result(context, artifacts, model, previous, settings, retrained=False)
    if not _image_count(datasets / "train"):  # a small archive can leave train empty: nothing to learn from
        context.log.warning(f"{model}: the train split has no images; no weights are trained")
        return publish(context, dg.MaterializeResult(
            data_version=dg.DataVersion("untrained"), metadata={"trained": False, "reason": "empty train split"},
            check_results=[dg.AssetCheckResult(check_name=n, passed=True, metadata={"note": "nothing trained"})
                           for n in ("weights_loadable", "loss_finite")]))
    workdir = artifacts.path(f"models/.work-{model}-{context.run_id[:8]}")  # concurrent runs never share one
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        started = time.perf_counter()
        trained, losses = _train(model, datasets, _training_yaml(datasets, workdir), workdir, settings, len(names))
        seconds = time.perf_counter() - started
        relative = f"models/{model}/weights.pt"
        with artifacts.writing(relative) as tmp:
            shutil.copyfile(trained, tmp)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    stored = artifacts.describe(relative)
    card = {"model": model, "sha256": stored.sha256, "code_version": _code_version(), "settings": settings.to_dict(),
            "classes": names, "train_seconds": seconds, "losses": losses, "training_input": training_input}
    with artifacts.writing(f"models/{model}/card.json") as tmp:
        tmp.write_text(json.dumps(card, indent=1))
    return _weights_result(context, artifacts, model, card, settings, retrained=True)


def _train(model: str, datasets: Path, dataset_yaml: Path, workdir: Path, settings: TrainSettings,
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


def _weights_result(context, artifacts: ArtifactStore, model: str, card: dict, settings: TrainSettings,
                    retrained: bool) -> dg.MaterializeResult:
    import math

    import torch

    stored = artifacts.describe(f"models/{model}/weights.pt")
    losses, seconds = card["losses"], card["train_seconds"]

    try:
        torch.load(stored.path, map_location="cpu", weights_only=False)  # our own checkpoint
        loadable = True
    except Exception as err:  # noqa: BLE001 - reported by the check
        context.log.error(f"weights do not load: {err}")
        loadable = False
    values = [v for row in losses for k, v in row.items() if k != "epoch" and v is not None]
    curve = pd.DataFrame(losses).set_index("epoch") if losses else pd.DataFrame()
    return publish(context, dg.MaterializeResult(
        data_version=dg.DataVersion(stored.sha256[:16]),
        metadata={**stored.metadata(), "retrained": retrained, "train_seconds": seconds, "epochs": settings.epochs,
                  "imgsz": settings.imgsz, "device": settings.device, "code_version": card["code_version"],
                  "settings": dg.MetadataValue.json(settings.to_dict()),
                  "loss_curve": png_markdown(bar_chart_png(curve, f"{model}: training loss per epoch", "loss"),
                                             "loss")},
        check_results=[
            dg.AssetCheckResult(check_name="weights_loadable", passed=loadable),
            dg.AssetCheckResult(check_name="loss_finite", passed=bool(values) and all(math.isfinite(v) for v in values),
                                metadata={"losses": dg.MetadataValue.json(losses)}),
        ],
    ))


HEADLINE = ("map_50_95", "map_50", "precision_weighted", "recall_weighted", "f1_weighted", "accuracy", "f1_macro",
            "precision_macro", "recall_macro", "mean_iou_matched")


def metric_columns(scored: dict | None, prefix: str = "") -> dict:
    """The leaderboard's metric columns of one score (None where nothing was scored)."""
    if not scored or not scored.get("image_level"):
        return {f"{prefix}{k}": None for k in HEADLINE}
    level, detection = scored["image_level"], scored.get("detection", {})
    return {f"{prefix}{k}": detection.get(k, level.get(k)) for k in HEADLINE}


def seen_unseen_columns(unseen: dict | None, seen: dict | None) -> dict:
    """Unseen-camera metrics (the headline), seen-camera ones (`seen_`), and the gap (seen - unseen)."""
    row = {**metric_columns(unseen), **metric_columns(seen, "seen_")}
    for k in ("map_50", "map_50_95", "accuracy", "f1_weighted"):
        a, b = row[k], row[f"seen_{k}"]
        row[f"gap_{k}"] = None if a is None or b is None else b - a
    return row


def breakdowns(scored: dict | None, class_names: list[str]) -> dict:
    """Per-class AP and per-park metrics as JSON columns (the leaderboard's drill-down)."""
    if not scored:
        return {"per_class_ap": "{}", "per_park": "{}"}
    per_park = {park: {k: v for k, v in metric_columns(part).items() if k in ("map_50", "map_50_95", "accuracy",
                                                                                "f1_weighted")}
                | {"images": part.get("images", 0)} for park, part in scored.get("groups", {}).items()}
    return {"per_class_ap": json.dumps(scored.get("detection", {}).get("per_class_ap", {}), sort_keys=True),
            "per_park": json.dumps(per_park, sort_keys=True)}


def _score_test_set(model: str, weights: Path, settings: TrainSettings, folder: Path, tax, threshold: float):
    """(score with per-park groups or None, COCO results, images/s, images predicted) of one model on one
    test set."""
    truth_doc = json.loads((folder / "coco.json").read_text()) if (folder / "coco.json").exists() else {"images": []}
    images = [folder / i["file_name"] for i in truth_doc["images"]]
    if not images:
        return None, [], None, 0
    started = time.perf_counter()
    predicted = predict_with_model(model, weights, images, settings, len(tax.class_names))
    images_per_s = len(images) / max(1e-9, time.perf_counter() - started)
    results = [{"image_id": image["id"], "category_id": p.class_index + 1, "score": p.confidence,
                "bbox": [p.box[0], p.box[1], p.box[2] - p.box[0], p.box[3] - p.box[1]]}
               for image, found in zip(truth_doc["images"], predicted) for p in found]
    parks: dict[str, set[str]] = {}
    for image in truth_doc["images"]:
        parks.setdefault(image.get("park", "?"), set()).add(image["file_name"])
    species = [(s.code, s.scientific_name, s.common_name) for s in tax.species]
    try:
        scored = score(json.dumps(truth_doc), json.dumps(results), tax.class_names, species, threshold, parks)
    except ScoringError as err:
        raise dg.Failure(f"{model}: predictions and the {folder.name} split disagree: {err}") from err
    return scored, results, images_per_s, len(predicted)


@dg.asset(
    partitions_def=model_partitions,
    deps=["model_weights", dg.AssetDep("training_datasets", partition_mapping=TEST_SETS_ONLY)],
    group_name="models",
    kinds={"pandas", "parquet"},
    io_manager_key="parquet_io_manager",
    code_version="2",
    automation_condition=when_inputs_changed(),
    check_specs=[dg.AssetCheckSpec("predictions_match_test_split", asset="model_evaluation", blocking=True),
                 dg.AssetCheckSpec("metrics_in_range", asset="model_evaluation", blocking=True)],
)
def model_evaluation(context: dg.AssetExecutionContext, config: EvaluationConfig, artifacts: ArtifactStore,
                     taxonomy: TaxonomyResource):
    """One model on both test sets: unseen cameras (`test`, the headline) and seen cameras (`test_seen`:
    training cameras, no shared burst), with the gap between them — COCO mAP@.5 and mAP@[.5:.95] with
    per-class AP (every prediction kept and ranked), the thesis's image-level metrics, a per-park
    breakdown, and inference images/s on this machine — scored by exactly the code of `wildbench score`."""
    model = context.partition_key
    tax = taxonomy.load()
    card_path = artifacts.path(f"models/{model}/card.json")
    trained = artifacts.path(f"models/{model}/weights.pt").exists() and card_path.exists()
    card = json.loads(card_path.read_text()) if trained else {}
    scored, speeds, images, predicted = {}, [], {}, {}
    if trained:
        settings = TrainSettings(**card["settings"])
        for test_set in TEST_SETS:
            scored[test_set], results, speed, predicted[test_set] = _score_test_set(
                model, artifacts.path(f"models/{model}/weights.pt"), settings, artifacts.path(f"datasets/{test_set}"),
                tax, config.image_threshold)
            images[test_set] = scored[test_set]["images"] if scored[test_set] else 0
            speeds += [speed] if speed else []
            with artifacts.writing(f"models/{model}/{test_set}_predictions.coco.json") as tmp:
                tmp.write_text(json.dumps(results))
    unseen, seen = scored.get("test"), scored.get("test_seen")
    if unseen is None:  # a small archive can leave the test set empty, or nothing trained: said so
        why = "no weights were trained (empty train split)" if not trained else "the test split has no images"
        context.log.warning(f"{model}: {why}; no unseen-camera metric can be computed")
    row = {"model": model, "source": "trained here", "release": WORKING_SPLIT, "images": images.get("test", 0),
           "seen_images": images.get("test_seen", 0), **seen_unseen_columns(unseen, seen),
           **breakdowns(unseen, tax.class_names),
           "images_per_s": sum(speeds) / len(speeds) if speeds else None,
           "imgsz": card.get("settings", {}).get("imgsz"), "epochs": card.get("settings", {}).get("epochs"),
           "weights_sha256": card.get("sha256"), "note": None if unseen else why}
    metrics = [v for k, v in row.items() if k.removeprefix("seen_") in HEADLINE and v is not None]
    in_range = all(math.isfinite(v) and 0 <= v <= 1 for v in metrics)
    metadata = {k: v for k, v in row.items() if isinstance(v, (int, float)) and v is not None}
    if unseen:
        level = unseen["image_level"]
        per_class = pd.DataFrame({"ap": unseen.get("detection", {}).get("per_class_ap", {}),
                                  "f1": {k: v for k, v in level["per_class_f1"].items() if k != EMPTY_SPECIES}}
                                 ).fillna(0)
        metadata |= {
            "per_class": frame_markdown(per_class),
            "per_park": dg.MetadataValue.json(json.loads(row["per_park"])),
            "per_class_plot": png_markdown(bar_chart_png(per_class, f"{model}: per-species AP and F1", "score"),
                                           "per-species AP and F1"),
            "confusion_matrix": png_markdown(confusion_png(
                level["confusion"], [EMPTY_SPECIES if c == -1 else tax.class_names[c] for c in level["labels"]],
                f"{model}: image-level confusion (row share)"), "confusion matrix")}
    table = pd.DataFrame([row])
    return publish(context, dg.MaterializeResult(
        value=table,
        data_version=dg.DataVersion(table_version(table.drop(columns=["images_per_s"]))),
        metadata=metadata,
        check_results=[
            dg.AssetCheckResult(check_name="predictions_match_test_split", passed=predicted == images,
                                metadata={"images": dg.MetadataValue.json(images),
                                          "predicted": dg.MetadataValue.json(predicted)}),
            dg.AssetCheckResult(check_name="metrics_in_range", passed=in_range,
                                metadata={"metrics_checked": len(metrics)}),
        ],
    ))


WORKING_SPLIT = "working"  # models trained and scored on the current splits, not on a frozen release
LEADERBOARD_COLUMNS = ["model", "source", "release", "images", "map_50_95", "map_50", "precision_weighted",
                       "recall_weighted", "f1_weighted", "accuracy", "f1_macro", "seen_images", "seen_map_50_95",
                       "seen_map_50", "seen_accuracy", "seen_f1_weighted", "gap_map_50_95", "gap_map_50",
                       "gap_accuracy", "gap_f1_weighted", "per_class_ap", "per_park"]
THESIS_ROWS = {"yolo": "YOLOv8s (thesis)", "megadetector": "MegaDetector fine-tuned (thesis)",
               "fasterrcnn": "Faster R-CNN (thesis)"}


THESIS_RESULTS = Path(__file__).resolve().parents[1] / "data" / "thesis_results.json.gz"


def thesis_rows(results_file: Path = THESIS_RESULTS) -> list[dict]:
    """The thesis's three published rows, recomputed from its per-image results, which ship inside the
    package (`data/thesis_results.json.gz`, with the sha256 of each original file): always present.
    Image level only: those results hold no boxes to compute a real mAP from; they were scored on the
    thesis's own random split, which leaks bursts between train and test."""
    import gzip

    shipped = json.loads(gzip.decompress(results_file.read_bytes()))["models"]
    rows = []
    for stem, name in THESIS_ROWS.items():
        values = shipped[stem]
        metrics = image_level(values["true"], values["pred"])
        rows.append({"model": name, "source": "thesis per-image results (its random split)", "release": "thesis",
                     "images": len(values["true"]), "map_50_95": None, "map_50": None,
                     "precision_weighted": metrics.precision_weighted, "recall_weighted": metrics.recall_weighted,
                     "f1_weighted": metrics.f1_weighted, "accuracy": metrics.accuracy, "f1_macro": metrics.f1_macro})
    return rows


@dg.asset(
    ins={"model_evaluation": dg.AssetIn(partition_mapping=dg.AllPartitionMapping()),
         "submission_scores": dg.AssetIn(partition_mapping=dg.AllPartitionMapping())},
    group_name="models",
    kinds={"pandas", "parquet"},
    io_manager_key="parquet_io_manager",
    code_version="1",
    automation_condition=when_inputs_changed(),
    check_specs=[dg.AssetCheckSpec("one_row_per_model", asset="leaderboard", blocking=True)],
)
def leaderboard(context: dg.AssetExecutionContext, model_evaluation: pd.DataFrame, submission_scores: pd.DataFrame):
    """Every model evaluated here and every scored submission, per release, next to the thesis's published
    rows recomputed from its per-image results: unseen-camera metrics (the headline), seen-camera ones and
    the gap, per-class AP and a per-park breakdown. Sorted by release, then mAP@[.5:.95], then weighted F1.
    Refreshed by automation whenever an evaluation or a submission score lands."""
    parts = [f for f in (model_evaluation, submission_scores, pd.DataFrame(thesis_rows())) if not f.empty]
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=LEADERBOARD_COLUMNS)
    table = table.reindex(columns=list(dict.fromkeys([*LEADERBOARD_COLUMNS, *table.columns])))
    table = table.sort_values(["release", "map_50_95", "f1_weighted"], ascending=[True, False, False],
                              na_position="last", ignore_index=True)
    shown = table[["model", "release", "map_50_95", "map_50", "seen_map_50", "gap_map_50", "accuracy",
                   "seen_accuracy", "gap_accuracy", "f1_weighted"]]
    views = {f"leaderboard {release}": dg.MetadataValue.md(rows.drop(columns="release").astype(object).round(4)
                                                           .to_markdown(index=False))
             for release, rows in shown.groupby("release", sort=True)}
    plot = bar_chart_png(shown.set_index("model")[["map_50", "seen_map_50", "f1_weighted"]].astype(float).fillna(0),
                         "leaderboard: mAP@.5 unseen vs seen cameras, image-level F1", "score")
    return publish(context, dg.MaterializeResult(
        value=table,
        data_version=dg.DataVersion(table_version(table.drop(columns=["images_per_s"], errors="ignore"))),
        metadata={"rows": len(table), "releases": dg.MetadataValue.json(sorted(table.release.dropna().unique())),
                  **views, "plot": png_markdown(plot, "leaderboard")},
        check_results=[dg.AssetCheckResult(check_name="one_row_per_model",
                                           passed=not table.duplicated(["model", "release"]).any(),
                                           metadata={"rows": len(table)})],
    ))


@dg.asset(
    partitions_def=submission_partitions,
    deps=[dg.AssetDep("benchmark_release", partition_mapping=dg.LastPartitionMapping())],
    group_name="models",
    kinds={"pandas", "parquet"},
    io_manager_key="parquet_io_manager",
    check_specs=[dg.AssetCheckSpec("metrics_in_range", asset="submission_scores", blocking=True)],
)
def submission_scores(context: dg.AssetExecutionContext, config: EvaluationConfig, artifacts: ArtifactStore,
                      taxonomy: TaxonomyResource, submissions: RequestInbox):
    """A researcher's predictions for the latest release's test set (or the release named by a
    `<id>.release` file beside it, e.g. a thesis-profile one) — MegaDetector batch output 1.6, COCO
    results json or an image-level CSV (`image_id,label`), images named by their public id (`wb...`, as
    in the public test ZIP) — scored against the release's hidden labels by exactly the code that scores
    our models. A file that cannot be scored is rejected with its reason (`<id>.error.json`)."""
    submission = context.partition_key
    tax = taxonomy.load()
    species = [(s.code, s.scientific_name, s.common_name) for s in tax.species]
    with submissions.answering(submission):  # any failure is answered with <id>.error.json
        store = submissions.open()
        raw = next((raw for raw in (store.read_optional(f"{submission}{s}") for s in (".json", ".csv"))
                    if raw is not None), None)
        try:
            if raw is None:
                raise ScoringError(f"no {submission}.json or {submission}.csv in the submissions inbox")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise ScoringError("the file is not UTF-8 text (binary data?)") from err
            named = store.read_optional(f"{submission}{RELEASE_SUFFIX}")  # the submission may name its release
            release = named_release(named) if named is not None else latest_release(context.instance, artifacts)
            if release is None:
                raise ScoringError("no benchmark release has been cut yet (`wildbench release`): submissions are "
                                   "scored against a release's hidden test labels")
            if release_profile(artifacts, release) is None:
                raise ScoringError(f"no release {release!r} has been cut (named by {submission}{RELEASE_SUFFIX})")
            truth = artifacts.path(f"releases/{release}/hidden/truth.coco.json").read_text()
            groups = {name: keys for name, keys in truth_groups(json.loads(truth)).items() if keys}
            scored = score(truth, text, tax.class_names, species, config.image_threshold, groups)
        except ScoringError as err:
            submissions.answer_error(submission, str(err), submission=submission)
            raise dg.Failure(f"submission {submission} rejected: {err}") from err
        by_group = scored.get("groups", {})
        unseen, seen = by_group.get("test"), by_group.get("test_seen")
        parks = {name.removeprefix("park:"): part for name, part in by_group.items() if name.startswith("park:")}
        row = {"model": f"submission:{submission}", "source": "submission", "release": release,
               "images": unseen["images"] if unseen else 0, "seen_images": seen["images"] if seen else 0,
               **seen_unseen_columns(unseen, seen),
               **breakdowns({**(unseen or {}), "groups": parks} if unseen else None, tax.class_names)}
        values = [v for k, v in row.items() if k.removeprefix("seen_") in HEADLINE and v is not None]
        if not all(math.isfinite(v) and 0 <= v <= 1 for v in values):  # never a NaN on the leaderboard
            error = f"metrics out of range: { {k: row[k] for k in ('map_50_95', 'map_50', 'accuracy')} }"
            submissions.answer_error(submission, error, submission=submission)
            raise dg.Failure(f"submission {submission}: {error}")
        submissions.write_json(f"{submission}.score.json", {"submission": submission, "release": release, **scored})
    return publish(context, dg.MaterializeResult(
        value=pd.DataFrame([row]),
        metadata={k: v for k, v in row.items() if isinstance(v, (int, float)) and v is not None},
        check_results=[dg.AssetCheckResult(check_name="metrics_in_range",
                                           passed=all(math.isfinite(v) and 0 <= v <= 1 for v in values))],
    ))
