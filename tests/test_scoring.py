"""`wildbench score`: the leaderboard's metrics from files, and clear rejections of bad files."""

import json

import pytest

from wildbench_assets.cli import main

TRUTH = {
    "images": [{"id": i, "file_name": f"donana/C1/img{i}.jpg", "width": 200, "height": 100} for i in range(1, 7)],
    "categories": [{"id": 0, "name": "empty"}, {"id": 1, "name": "sus"}, {"id": 2, "name": "Red Fox"}],
    "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 50, 40]},
        {"id": 2, "image_id": 2, "category_id": 1, "bbox": [100, 20, 60, 50]},
        {"id": 3, "image_id": 2, "category_id": 1, "bbox": [20, 20, 40, 40]},
        {"id": 4, "image_id": 3, "category_id": 2, "bbox": [50, 30, 30, 30]},
        {"id": 5, "image_id": 4, "category_id": 2, "bbox": [0, 0, 100, 80]},
        {"id": 6, "image_id": 5, "category_id": 0},
        {"id": 7, "image_id": 6, "category_id": 0},
    ],
}


def md_predictions(shift: float = 0.0) -> dict:
    images = []
    for image in TRUTH["images"]:
        detections = [{"category": "1" if a["category_id"] == 1 else "2", "conf": 0.9,
                       "bbox": [(a["bbox"][0] + shift) / 200, a["bbox"][1] / 100,
                                a["bbox"][2] / 200, a["bbox"][3] / 100]}
                      for a in TRUTH["annotations"] if a["image_id"] == image["id"] and a.get("bbox")]
        images.append({"file": image["file_name"], "detections": detections})
    return {"images": images, "detection_categories": {"1": "sus", "2": "vul"}, "info": {"format_version": "1.6"}}


def run_score(tmp_path, capsys, truth, predictions, name="pred.json"):
    (tmp_path / "truth.json").write_text(json.dumps(truth) if isinstance(truth, dict) else truth)
    (tmp_path / name).write_text(json.dumps(predictions) if not isinstance(predictions, str) else predictions)
    code = main(["score", "--truth", str(tmp_path / "truth.json"), "--predictions", str(tmp_path / name)])
    out = capsys.readouterr()
    return code, (json.loads(out.out) if code == 0 else out.err)


def test_perfect_megadetector_file_scores_one(tmp_path, capsys):
    code, result = run_score(tmp_path, capsys, TRUTH, md_predictions())
    assert code == 0
    assert result["detection"]["map_50_95"] == pytest.approx(1.0)
    assert result["image_level"]["accuracy"] == 1.0 and result["images"] == 6
    assert set(result["detection"]["per_class_ap"]) == {"sus", "vul"}


def test_shifted_boxes_lose_map_not_accuracy(tmp_path, capsys):
    code, result = run_score(tmp_path, capsys, TRUTH, md_predictions(shift=12))
    assert code == 0 and result["image_level"]["accuracy"] == 1.0
    assert 0 < result["detection"]["map_50_95"] < 0.8


def test_coco_results_and_csv_predictions(tmp_path, capsys):
    coco = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 0.8}
            for a in TRUTH["annotations"] if a.get("bbox")]
    code, result = run_score(tmp_path, capsys, TRUTH, coco)
    assert code == 0 and result["detection"]["map_50"] == pytest.approx(1.0)
    csv_text = "image_id,label\n" + "\n".join(
        f"donana/C1/img{i}.jpg,{label}" for i, label in enumerate(["sus", "sus", "vul", "sus", "emp", "emp"], 1))
    code, result = run_score(tmp_path, capsys, TRUTH, csv_text, name="pred.csv")
    assert code == 0 and result["image_level"]["accuracy"] == pytest.approx(5 / 6) and "detection" not in result


@pytest.mark.parametrize("predictions, message", [
    ("image_id,label\ndonana/C1/img1.jpg,sus\n", "disagree"),
    ("image_id,label\n" + "\n".join(f"donana/C1/img{i}.jpg,unicorn" for i in range(1, 7)), "unknown class"),
    ("image_id,guess\nx,sus\n", "image_id,label"),
    ("{not json", "not valid JSON"),
    ({"images": [], "something": 1}, "MegaDetector batch output"),
])
def test_bad_files_are_rejected_with_a_reason(tmp_path, capsys, predictions, message):
    name = "pred.csv" if isinstance(predictions, str) and not predictions.startswith("{") else "pred.json"
    code, err = run_score(tmp_path, capsys, TRUTH, predictions, name=name)
    assert code == 2 and message in err


HIDDEN = {  # a release's hidden truth: images by public id, with their test set and park
    "images": [{"id": i, "file_name": f"wb{i}.jpg", "width": 200, "height": 100, "test_set": test_set, "park": park}
               for i, (test_set, park) in enumerate([("test", "p1"), ("test", "p2"), ("test_seen", "p1")], 1)],
    "annotations": [{"id": i, "image_id": i, "category_id": c, "bbox": [20, 10, 40, 30]}
                    for i, c in [(1, 1), (2, 2), (3, 1)]],
    "categories": [{"id": 1, "name": "sus"}, {"id": 2, "name": "vul"}],
}
SPECIES = [("sus", "Sus scrofa", "Wild boar"), ("vul", "Vulpes vulpes", "Red fox")]


def _submission(raw, release="r1"):
    from wildbench_assets.lib.leaderboard import submission_findings

    truth = json.dumps(HIDDEN) if release else None
    return submission_findings("s1", raw, release, "default", truth, ["sus", "vul"], SPECIES, 0.2)


def test_a_submission_row_splits_unseen_seen_and_parks():
    found = _submission(b"image_id,label\nwb1,sus\nwb2,vul\nwb3,vul\n")  # the seen-camera image is wrong
    row = found.row
    assert (row["model"], row["release"], row["images"], row["seen_images"]) == ("submission:s1", "r1", 2, 1)
    assert row["accuracy"] == 1.0 and row["seen_accuracy"] == 0.0 and row["gap_accuracy"] == -1.0
    assert row["map_50"] is None  # image-level labels: no detection metric
    assert {park: v["images"] for park, v in json.loads(row["per_park"]).items()} == {"p1": 1, "p2": 1}
    assert found.in_range and found.scored["images"] == 3


@pytest.mark.parametrize("raw, release, message", [
    (None, "r1", "no s1.json or s1.csv"),
    (b"\xff\xfe\x00binary", "r1", "not UTF-8"),
    (b"image_id,label\nwb1,sus\n", None, "no benchmark release"),
    (b"image_id,label\nwb1,sus\n", "r1", "disagree"),
])
def test_a_submission_that_cannot_be_scored_says_why(raw, release, message):
    from wildbench_assets.lib.scoring import ScoringError

    with pytest.raises(ScoringError, match=message):
        _submission(raw, release)
