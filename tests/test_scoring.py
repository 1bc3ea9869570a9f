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
