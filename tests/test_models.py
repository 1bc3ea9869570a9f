"""Each model trains its tiny preset and is evaluated end to end; the leaderboard puts them beside the
thesis's recomputed rows."""

import json

import pytest

from wildbench_assets.resources.artifacts import sha256_file
from wildbench_assets.summary import read_table

from .helpers import latest_checks, run_all
from .test_metrics import SEED


@pytest.fixture(scope="module")
def trained(demo_archive, tmp_path_factory):
    data = tmp_path_factory.mktemp("models")
    instance, outcome = run_all(demo_archive, data, selection=None, detector="manifest")
    assert not outcome.get("failure"), outcome
    return instance, data


@pytest.mark.parametrize("model", ["yolov8", "megadetector", "fasterrcnn"])
def test_tiny_preset_trains_and_is_stored_with_its_card(trained, model):
    instance, data = trained
    folder = data / "artifacts" / "models" / model
    card = json.loads((folder / "card.json").read_text())
    assert card["sha256"] == sha256_file(folder / "weights.pt")
    assert card["settings"]["epochs"] == 1 and card["classes"][19] == "ovar" and card["code_version"]
    assert card["losses"] and all(v is None or v == v for row in card["losses"] for v in row.values())
    assert not list(folder.parent.glob(".work-*"))  # the scratch folder is gone


def test_evaluation_and_leaderboard(trained):
    instance, data = trained
    evaluation = read_table(data, "model_evaluation")
    assert set(evaluation.model) == {"yolov8", "megadetector", "fasterrcnn"}
    for column in ("map_50_95", "map_50", "precision_weighted", "recall_weighted", "f1_weighted", "accuracy"):
        assert evaluation[column].between(0, 1).all(), column
    assert (evaluation.images_per_s > 0).all()
    test_images = len(json.loads((data / "artifacts" / "datasets" / "test" / "coco.json").read_text())["images"])
    assert (evaluation.images == test_images).all()
    for column in ("seen_map_50", "seen_accuracy"):  # seen cameras (test_seen) beside unseen ones (test)
        assert evaluation[column].between(0, 1).all(), column
    assert ((evaluation.seen_map_50 - evaluation.map_50) == evaluation.gap_map_50).all()
    assert all(set(json.loads(p)) == {"snieves", "donana"} for p in evaluation.per_park)
    for name in ("predictions_match_test_split", "metrics_in_range"):
        assert all(e.passed for e in latest_checks(instance, "model_evaluation")[name]), name
    board = read_table(data, "leaderboard")
    assert board.model.is_unique
    if SEED.is_dir():
        thesis = board.set_index("model").loc["YOLOv8s (thesis)"]
        assert round(thesis.f1_weighted, 4) == 0.9073 and thesis.map_50_95 != thesis.map_50_95  # no boxes: no mAP


def test_submissions_are_scored_against_the_latest_release_by_public_id(trained, demo_archive):
    import dagster as dg

    from .helpers import pipeline_defs

    instance, data = trained
    defs = pipeline_defs(demo_archive, data, detector="manifest")
    inbox = data / "submissions"
    inbox.mkdir(exist_ok=True)
    (inbox / "early.csv").write_text("image_id,label\nwb0,emp\n")
    sensor = defs.resolve_sensor_def("submissions_sensor")
    result = sensor(dg.build_sensor_context(instance=instance, resources=defs.resources))
    for request in result.dynamic_partitions_requests:  # what the daemon does with the sensor's result
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    job = defs.resolve_job_def("submission_job")
    early = job.execute_in_process(instance=instance, partition_key="early", raise_on_error=False)
    assert not early.success and "no benchmark release" in json.loads((inbox / "early.error.json").read_text())["error"]

    instance.add_dynamic_partitions("releases", ["2026.11"])
    assert defs.resolve_job_def("release_job").execute_in_process(instance=instance, partition_key="2026.11").success
    truth = json.loads((data / "artifacts" / "releases" / "2026.11" / "hidden" / "truth.coco.json").read_text())
    classes = {a["image_id"]: a["category_id"] - 1 for a in truth["annotations"]}
    names = json.loads((data / "artifacts" / "models" / "yolov8" / "card.json").read_text())["classes"]
    rows = [f"{i['public_id']},{names[classes[i['id']]] if i['id'] in classes else 'emp'}" for i in truth["images"]]
    assert all(row.startswith("wb") for row in rows)
    (inbox / "oracle.csv").write_text("image_id,label\n" + "\n".join(rows) + "\n")
    (inbox / "partial.csv").write_text("image_id,label\n" + rows[0] + "\n")

    result = sensor(dg.build_sensor_context(instance=instance, resources=defs.resources,
                                            cursor=result.cursor))
    assert sorted(r.partition_key for r in result.run_requests) == ["oracle", "partial"]
    for request in result.dynamic_partitions_requests:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    assert job.execute_in_process(instance=instance, partition_key="oracle").success
    bad = job.execute_in_process(instance=instance, partition_key="partial", raise_on_error=False)
    assert not bad.success and "disagree" in json.loads((inbox / "partial.error.json").read_text())["error"]
    scored = json.loads((inbox / "oracle.score.json").read_text())
    assert scored["image_level"]["accuracy"] == 1.0 and scored["release"] == "2026.11"
    assert defs.resolve_job_def("leaderboard_job").execute_in_process(instance=instance).success
    board = read_table(data, "leaderboard").set_index("model")
    oracle = board.loc["submission:oracle"]
    assert oracle.accuracy == 1.0 and oracle.seen_accuracy == 1.0 and oracle.gap_accuracy == 0.0
    assert oracle.release == "2026.11" and oracle.images + oracle.seen_images == len(truth["images"])
    assert board.loc["yolov8", "release"] == "working"


def test_megadetector_fine_tunes_from_md_weights_with_frozen_layers(trained, tmp_path):
    """The fine-tuning path: start from a MegaDetector-v5-architecture checkpoint (here the one the tiny
    preset just trained, standing in for the 281 MB MDv5a) with the first 20 layers frozen."""
    import torch

    from wildbench_assets.training.common import PRESETS, TrainSettings
    from wildbench_assets.training.megadetector import train_megadetector

    _instance, data = trained
    start = data / "artifacts" / "models" / "megadetector" / "weights.pt"
    settings = TrainSettings(**{**PRESETS["tiny"].to_dict(), "pretrained": str(start), "freeze": 20})
    weights, losses = train_megadetector(data / "artifacts" / "datasets" / "dataset.yaml", tmp_path / "ft", settings,
                                         arch="yolov5n")
    before = torch.load(start, map_location="cpu", weights_only=False)["model"].float().state_dict()
    after = torch.load(weights, map_location="cpu", weights_only=False)["model"].float().state_dict()
    frozen = [k for k in before if k.startswith("model.0.") and k.endswith(".weight")]
    trainable = [k for k in before if k.startswith("model.24.") and k.endswith(".weight")]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)
    assert any(not torch.equal(before[k], after[k]) for k in trainable) and losses
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        train_megadetector(data / "artifacts" / "datasets" / "dataset.yaml", tmp_path / "x",
                           TrainSettings(**{**settings.to_dict(), "pretrained": str(tmp_path / "missing.pt")}))


def test_thesis_preset_builds_the_mdv5a_architecture():
    """MDv5a is YOLOv5x6: P6, four detection scales, the largest width and depth."""
    from yolov5.models.yolo import Model

    from wildbench_assets.training.megadetector import architecture_yaml

    model = Model(str(architecture_yaml("yolov5x6")), nc=24)
    assert model.model[-1].nl == 4 and model.model[-1].nc == 24
    assert sum(p.numel() for p in model.parameters()) > 80e6
