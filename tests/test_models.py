"""Each model trains its tiny preset on a release (and on its thesis-profile twin) and is scored on the
release's hidden test sets end to end; the leaderboard puts them beside the thesis's recomputed rows."""

import json

import dagster as dg
import pytest

from wildbench_assets.resources.artifacts import sha256_file
from wildbench_assets.summary import read_table

from .conftest import SHARED
from .helpers import latest_checks, run_all

RELEASE, THESIS = "2026.11", "2026.11-thesis"


@pytest.fixture(scope="module")
def trained(world_copy):
    """The demo world's copy (labels, then two releases cut from them: the default and the thesis profile),
    then every model trained and scored on each: what `wildbench run` does after `wildbench release`."""
    instance = world_copy.instance()
    _, outcome = run_all(world_copy.archive, world_copy.data, instance=instance, selection=None, detector="manifest")
    assert not outcome.get("failure"), outcome
    return instance, world_copy.data


def test_without_a_release_no_model_is_trained(fresh_world):
    """`wildbench run` plans training per release: on the world's two releases, and nothing once there is none."""
    from wildbench_assets import runner

    defs, instance = fresh_world.defs(), fresh_world.instance()

    def planned() -> list:
        plan = runner.plan_pipeline(defs, instance, defs.resources["archive"].open())
        return plan.todo.get(dg.AssetKey("model_weights"), [])

    assert len(planned()) == 6  # three models on each release
    for name in fresh_world.releases:
        instance.delete_dynamic_partition("releases", name)
    assert planned() == []


@pytest.mark.parametrize("model", ["yolov8", "megadetector", "fasterrcnn"])
def test_tiny_preset_trains_on_the_release_and_is_stored_with_its_card(trained, model):
    instance, data = trained
    folder = data / "artifacts" / "models" / RELEASE / model
    card = json.loads((folder / "card.json").read_text())
    assert card["sha256"] == sha256_file(folder / "weights.pt") and card["release"] == RELEASE
    assert card["settings"]["epochs"] == 1 and card["classes"][19] == "ovar" and card["code_version"]
    assert card["losses"] and all(v is None or v == v for row in card["losses"] for v in row.values())
    assert not list(folder.parent.glob(".work-*"))  # the scratch folder is gone


def test_training_data_is_the_release_manifest(trained):
    """A release's datasets hold exactly its train and val images with their frozen boxes, and no test image."""
    from wildbench_assets.lib.releases import read_manifest

    _instance, data = trained
    manifest = read_manifest((data / "artifacts" / "releases" / RELEASE / "manifest.csv").read_bytes())
    root = data / "artifacts" / "datasets" / RELEASE
    for split in ("train", "val"):
        coco = json.loads((root / split / "coco.json").read_text())
        rows = manifest[manifest.split == split]
        assert sorted(i["source_path"] for i in coco["images"]) == sorted(rows.path)
        assert len(coco["annotations"]) == sum(len(json.loads(b)) for b in rows.boxes)
    assert sorted(p.name for p in root.iterdir()) == ["dataset.yaml", "train", "val"]


def test_every_model_is_scored_on_each_release_like_a_submission(trained):
    from wildbench_assets.lib import leaderboard as lb

    instance, data = trained
    evaluation = read_table(data, "model_evaluation")
    assert set(zip(evaluation.model, evaluation.release)) == {(m, r) for m in ("yolov8", "megadetector", "fasterrcnn")
                                                              for r in (RELEASE, THESIS)}
    assert set(zip(evaluation.release, evaluation.profile)) == {(RELEASE, "default"), (THESIS, "thesis")}
    for column in ("map_50_95", "map_50", "precision_weighted", "recall_weighted", "f1_weighted", "accuracy"):
        assert evaluation[column].between(0, 1).all(), column
    assert (evaluation.images_per_s > 0).all()
    for release, rows in evaluation.groupby("release"):
        truth = json.loads((data / "artifacts" / "releases" / release / "hidden" / "truth.coco.json").read_text())
        unseen = sum(i["test_set"] == "test" for i in truth["images"])
        assert (rows.images == unseen).all() and (rows.images + rows.seen_images == len(truth["images"])).all()
        predictions = json.loads((data / "artifacts" / "models" / release / "yolov8" /
                                  "test_predictions.coco.json").read_text())  # a submission's shape: public ids
        assert {p["image_id"] for p in predictions} <= {i["public_id"] for i in truth["images"]}
    default = evaluation[evaluation.release == RELEASE]
    for column in ("seen_map_50", "seen_accuracy"):  # seen cameras (test_seen) beside unseen ones (test)
        assert default[column].between(0, 1).all(), column
    assert ((default.seen_map_50 - default.map_50).round(lb.PUBLIC_DECIMALS) == default.gap_map_50).all()
    assert "per_park" not in default and "per_class_ap" not in default  # in its Dagster metadata only
    for name in ("predictions_match_test_split", "metrics_in_range"):
        assert all(e.passed for e in latest_checks(instance, "model_evaluation")[name]), name
    board = read_table(data, "leaderboard")
    assert not board.duplicated(["model", "release"]).any()
    assert len(board[board.source == "trained here"]) == 6  # the same model on both releases, side by side
    ours = board[board.source == "trained here"]
    for column in [c for c in ours.columns if c.removeprefix("seen_").removeprefix("gap_") in lb.HEADLINE]:
        values = ours[column].dropna().astype(float)  # a model's public row is rounded as a submission's
        assert (values == values.round(lb.PUBLIC_DECIMALS)).all(), column
    if (SHARED / "reference" / "seed-results").is_dir():  # the thesis rows ship; their numbers are checked there
        thesis = board.set_index("model").loc["YOLOv8s (thesis)"]
        assert round(thesis.f1_weighted, 4) == 0.9073 and thesis.map_50_95 != thesis.map_50_95  # no boxes: no mAP


def test_leaderboard_rows_carry_test_set_size_intervals_ties_and_event_accuracy(trained):
    """Every scored row: its unseen test set's images and sequences (from the release's manifest), event-level
    accuracy and 95 % bootstrap bounds around each headline number; rows of one release whose mAP@[.5:.95]
    intervals overlap name each other in `tied_with`, never a row of another release."""
    from wildbench_assets.lib.releases import read_manifest

    _instance, data = trained
    board = read_table(data, "leaderboard")
    scored = board[board.source == "trained here"]
    for release, rows in scored.groupby("release"):
        manifest = read_manifest((data / "artifacts" / "releases" / release / "manifest.csv").read_bytes())
        assert (rows.sequences == manifest[manifest.split == "test"].sequence.nunique()).all()
        assert (rows.sequences <= rows.images).all() and (rows.images > 0).all()
    for metric in ("map_50_95", "map_50", "accuracy", "event_accuracy"):
        low, high = scored[f"{metric}_low"], scored[f"{metric}_high"]
        assert (low <= scored[metric] + 1e-9).all() and (scored[metric] <= high + 1e-9).all(), metric
        assert low.between(0, 1).all() and high.between(0, 1).all(), metric
    for a in scored.itertuples():
        same = board[(board.release == a.release) & (board.index != a.Index)]
        overlapping = same[(same.map_50_95_low <= a.map_50_95_high) & (a.map_50_95_low <= same.map_50_95_high)]
        assert a.tied_with == "; ".join(sorted(overlapping.model)), (a.model, a.release)
    thesis = board[board.release == "thesis"]
    assert thesis.map_50_low.isna().all() and (thesis.tied_with == "").all()  # no sequences, no interval


def test_a_submission_before_any_release_is_rejected_with_its_reason(tmp_path):
    from .helpers import pipeline_defs

    defs, instance = pipeline_defs(tmp_path / "archive", tmp_path, detector="manifest"), dg.DagsterInstance.ephemeral()
    (tmp_path / "submissions").mkdir()
    (tmp_path / "submissions" / "early.csv").write_text("image_id,label\nwb0,emp\n")
    instance.add_dynamic_partitions("submissions", ["early"])
    early = defs.resolve_job_def("submission_job").execute_in_process(instance=instance, partition_key="early",
                                                                      raise_on_error=False)
    error = json.loads((tmp_path / "submissions" / "early.error.json").read_text())["error"]
    assert not early.success and "no benchmark release" in error


def test_submissions_are_scored_against_the_latest_release_by_public_id(trained, world_copy):
    instance, data = trained
    defs = world_copy.defs()
    inbox = data / "submissions"
    inbox.mkdir(exist_ok=True)
    sensor = defs.resolve_sensor_def("submissions_sensor")
    job = defs.resolve_job_def("submission_job")

    truth = json.loads((data / "artifacts" / "releases" / "2026.11" / "hidden" / "truth.coco.json").read_text())
    classes = {a["image_id"]: a["category_id"] - 1 for a in truth["annotations"]}
    names = json.loads((data / "artifacts" / "models" / RELEASE / "yolov8" / "card.json").read_text())["classes"]
    rows = [f"{i['public_id']},{names[classes[i['id']]] if i['id'] in classes else 'emp'}" for i in truth["images"]]
    assert all(row.startswith("wb") for row in rows)
    (inbox / "oracle.csv").write_text("image_id,label\n" + "\n".join(rows) + "\n")
    (inbox / "partial.csv").write_text("image_id,label\n" + rows[0] + "\n")

    result = sensor(dg.build_sensor_context(instance=instance, resources=defs.resources))
    assert sorted(r.partition_key for r in result.run_requests) == ["oracle", "partial"]
    for request in result.dynamic_partitions_requests:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    assert job.execute_in_process(instance=instance, partition_key="oracle").success
    bad = job.execute_in_process(instance=instance, partition_key="partial", raise_on_error=False)
    refused = json.loads((inbox / "partial.error.json").read_text())
    assert not bad.success and "have no prediction" in refused["error"] and refused["counted"] is False
    scored = json.loads((inbox / "oracle.score.json").read_text())
    assert scored["test"]["accuracy"] == scored["test_seen"]["accuracy"] == 1.0 and scored["release"] == "2026.11"
    assert defs.resolve_job_def("leaderboard_job").execute_in_process(instance=instance).success
    board = read_table(data, "leaderboard")
    oracle = board.set_index("model").loc["submission:oracle"]
    assert oracle.accuracy == 1.0 and oracle.seen_accuracy == 1.0 and oracle.gap_accuracy == 0.0
    assert oracle.release == "2026.11" and oracle.images + oracle.seen_images == len(truth["images"])
    yolo = board[board.model == "yolov8"].set_index("release")
    assert yolo.loc[RELEASE, "images"] == oracle.images  # the model and the submission: one test set


def test_megadetector_fine_tunes_from_md_weights_with_frozen_layers(trained, tmp_path):
    """The fine-tuning path: start from a MegaDetector-v5-architecture checkpoint (here the one the tiny
    preset just trained, standing in for the 281 MB MDv5a) with the first 20 layers frozen."""
    import torch

    from wildbench_assets.training.common import PRESETS, TrainSettings
    from wildbench_assets.training.megadetector import train_megadetector

    _instance, data = trained
    start = data / "artifacts" / "models" / RELEASE / "megadetector" / "weights.pt"
    settings = TrainSettings(**{**PRESETS["tiny"].to_dict(), "pretrained": str(start), "freeze": 20})
    datasets = data / "artifacts" / "datasets" / RELEASE / "dataset.yaml"
    weights, losses = train_megadetector(datasets, tmp_path / "ft", settings,
                                         arch="yolov5n")
    before = torch.load(start, map_location="cpu", weights_only=False)["model"].float().state_dict()
    after = torch.load(weights, map_location="cpu", weights_only=False)["model"].float().state_dict()
    frozen = [k for k in before if k.startswith("model.0.") and k.endswith(".weight")]
    trainable = [k for k in before if k.startswith("model.24.") and k.endswith(".weight")]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)
    assert any(not torch.equal(before[k], after[k]) for k in trainable) and losses
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        train_megadetector(datasets, tmp_path / "x",
                           TrainSettings(**{**settings.to_dict(), "pretrained": str(tmp_path / "missing.pt")}))


def test_thesis_preset_builds_the_mdv5a_architecture():
    """MDv5a is YOLOv5x6: P6, four detection scales, the largest width and depth."""
    from yolov5.models.yolo import Model

    from wildbench_assets.training.megadetector import architecture_yaml

    model = Model(str(architecture_yaml("yolov5x6")), nc=24)
    assert model.model[-1].nl == 4 and model.model[-1].nc == 24
    assert sum(p.numel() for p in model.parameters()) > 80e6


def test_run_config_becomes_settings_through_one_function():
    """`TrainConfig` names only settings (one home: `TrainSettings`); unset fields keep the preset's."""
    import typing
    from dataclasses import fields

    from wildbench_assets.config import TrainConfig
    from wildbench_assets.training.common import PRESETS, TrainSettings

    assert set(TrainConfig.model_fields) - {"preset"} <= {f.name for f in fields(TrainSettings)}
    assert set(typing.get_args(TrainConfig.model_fields["preset"].annotation)) == set(PRESETS)
    assert TrainConfig().settings() == PRESETS["tiny"]
    custom = TrainConfig(preset="thesis", epochs=3, device="cpu").settings()
    assert (custom.epochs, custom.device, custom.imgsz, custom.architecture) == (3, "cpu", 640, "full")
    with pytest.raises(ValueError, match="not training settings"):
        TrainSettings.from_preset("tiny", learning_rate=0.1)


def test_weights_findings_need_finite_losses():
    from wildbench_assets.lib.weights import WeightsFindings

    ok = WeightsFindings(None, [{"epoch": 1, "box": 0.5, "cls": None}, {"epoch": 2, "box": 0.4, "cls": 0.3}])
    assert ok.loadable and ok.loss_finite and list(ok.curve.index) == [1, 2]
    assert not WeightsFindings(None, [{"epoch": 1, "box": float("nan")}]).loss_finite
    assert not WeightsFindings(None, [{"epoch": 1, "box": None}]).loss_finite  # nothing recorded
    assert not WeightsFindings("truncated file", []).loadable


NAMES = ["sus", "vul"]
SPECIES = [("sus", "Sus scrofa", "Wild boar"), ("vul", "Vulpes vulpes", "Red fox")]


def _truth(test_sets):
    """A release's hidden truth: one 200x100 image per (test set, park), one sus box each, by public id."""
    images = [{"id": i, "file_name": f"wb{i}.jpg", "public_id": f"wb{i}", "width": 200, "height": 100,
               "park": park, "test_set": test_set} for i, (test_set, park) in enumerate(test_sets, 1)]
    return json.dumps({"images": images,
                       "annotations": [{"id": i, "image_id": i, "category_id": 1, "bbox": [20, 10, 40, 30]}
                                       for i in range(1, len(images) + 1)],
                       "categories": [{"id": 1, "name": "sus"}, {"id": 2, "name": "vul"}]})


def _facts(release="2026.11"):
    from wildbench_assets.lib.releases import ReleaseFacts

    return ReleaseFacts(release=release, cut_at="2026-11-28T00:00:00Z", labels_fingerprint="", code_version="1",
                        detector="manifest", label_threshold=0.2, split_by="camera", split_seed=0, burst_rules={},
                        class_names=NAMES, max_distance=4)


def test_evaluation_findings_score_a_model_as_a_submission():
    from wildbench_assets.lib import leaderboard as lb
    from wildbench_assets.training.common import Prediction

    right, wrong = Prediction(0, 0.9, (20, 10, 60, 40)), Prediction(1, 0.9, (20, 10, 60, 40))
    truth = _truth([("test", "p1"), ("test", "p2"), ("test_seen", "p1"), ("test_seen", "p2")])
    card = {"sha256": "ab", "settings": {"imgsz": 128, "epochs": 1}}
    predicted = {"wb1": [right], "wb2": [right], "wb3": [right], "wb4": [wrong]}
    assert lb.coco_results({"wb1": [right]}) == [{"image_id": "wb1", "category_id": 1, "score": 0.9,
                                                  "bbox": [20, 10, 40, 30]}]
    found = lb.evaluation_findings("yolov8", _facts(), card, truth, predicted, 0.5, SPECIES, 0.2)
    row = found.row
    assert (row["images"], row["seen_images"], row["release"], row["note"]) == (2, 2, "2026.11", None)
    assert (row["profile"], row["release_cut_at"]) == ("default", "2026-11-28T00:00:00Z")
    assert row["accuracy"] == 1.0 and row["seen_accuracy"] == 0.5 and row["gap_accuracy"] == -0.5
    assert row["map_50"] == pytest.approx(1.0) and row["gap_map_50"] < 0 and row["images_per_s"] == 8
    assert set(json.loads(found.detail["per_park"])) == {"p1", "p2"} and "per_park" not in row  # operators only
    assert found.predictions_match and found.in_range and found.metrics_checked == 2 * len(lb.HEADLINE)
    # the same predictions as a researcher's COCO results file give the same row
    submitted = lb.submission_findings("s", json.dumps(lb.coco_results(predicted)).encode(), "2026.11", "default",
                                       truth, NAMES, SPECIES, 0.2).row
    assert {k: submitted[k] for k in lb.HEADLINE} == {k: None if row[k] is None else round(row[k], lb.PUBLIC_DECIMALS)
                                                      for k in lb.HEADLINE}  # a researcher is told rounded ones

    short = lb.evaluation_findings("yolov8", _facts(), card, truth, {"wb1": [right]}, 1.0, SPECIES, 0.2)
    assert not short.predictions_match and short.predicted == {"test": 1, "test_seen": 0}  # the check fails
    nothing = lb.evaluation_findings("yolov8", _facts(), card, _truth([]), {}, 0.0, SPECIES, 0.2)
    assert nothing.note == "the unseen-camera test set has no images" and nothing.row["images_per_s"] is None
    untrained = lb.evaluation_findings("fasterrcnn", _facts(), {}, truth, {}, 0.0, SPECIES, 0.2)
    assert untrained.note.startswith("no weights were trained") and untrained.predictions_match
    assert untrained.metrics_checked == 0 and untrained.row["map_50"] is None


def test_a_models_leaderboard_row_is_rounded_as_a_submissions():
    """Issue 18 (attack review): a model's row held full-precision macro metrics; with the promoted model's
    predictions (/api/inference) and the datasheet's counts they solve for per-class hits. Its public row is
    now a submission's (`public_row`); the unrounded row stays in the operators' metadata (`detail`)."""
    from wildbench_assets.lib import leaderboard as lb
    from wildbench_assets.training.common import Prediction

    right, wrong = Prediction(0, 0.9, (20, 10, 60, 40)), Prediction(1, 0.9, (20, 10, 60, 40))
    truth = _truth([("test", "p1"), ("test", "p2"), ("test", "p1"), ("test_seen", "p1"), ("test_seen", "p2"),
                    ("test_seen", "p2")])
    predicted = {"wb1": [right], "wb2": [right], "wb3": [wrong], "wb4": [right], "wb5": [wrong], "wb6": [wrong]}
    found = lb.evaluation_findings("yolov8", _facts(), {"sha256": "ab"}, truth, predicted, 0.5, SPECIES, 0.2)
    assert found.row["accuracy"] == 0.667 and found.detail["accuracy"] == pytest.approx(2 / 3)
    metrics = [k for k in found.row if k.removeprefix("seen_").removeprefix("gap_") in lb.HEADLINE]
    assert len(metrics) == 2 * len(lb.HEADLINE) + 4
    assert all(found.row[k] is None or found.row[k] == round(found.row[k], lb.PUBLIC_DECIMALS) for k in metrics)
    assert any(found.detail[k] != found.row[k] for k in metrics)  # the full detail is the operators'
    assert not {"per_park", "per_class_ap"} & set(found.row)


def test_seen_unseen_gap_and_range():
    from wildbench_assets.lib import leaderboard as lb

    def scored(accuracy, map_50):
        return {"image_level": {"accuracy": accuracy}, "detection": {"map_50": map_50}}

    row = lb.seen_unseen_columns(scored(0.6, 0.5), scored(0.9, 0.8))
    assert row["gap_accuracy"] == pytest.approx(0.3) and row["gap_map_50"] == pytest.approx(0.3)
    assert row["gap_f1_weighted"] is None  # not scored on either side
    assert lb.seen_unseen_columns(scored(0.6, 0.5), None)["gap_accuracy"] is None
    assert not lb.all_in_range(lb.headline_values({**row, "seen_map_50": float("nan")}))
    assert not lb.all_in_range([1.2]) and lb.all_in_range(lb.headline_values(row))
