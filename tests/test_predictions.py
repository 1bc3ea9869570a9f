"""Species predictions as people open them: the table, the MegaDetector 1.6 file, the promoted model."""

import json

import pandas as pd
from megadetector.postprocessing.validate_batch_results import validate_batch_results
from PIL import Image

from wildbench_assets.lib import predictions as pred
from wildbench_assets.training.predict import promoted_model

NAMES = ["bos", "caae", "caca"]
ITEMS = [
    ("a.jpg", {"width": 40, "height": 30, "failure": None, "detections": [
        {"category": "1", "conf": 0.9, "bbox": [0.1, 0.2, 0.3, 0.4], "classifications": [["2", 0.9]]},
        {"category": "1", "conf": 0.4, "bbox": [0.5, 0.5, 0.2, 0.2], "classifications": [["0", 0.4]]}]}),
    ("b.jpg", {"width": 40, "height": 30, "failure": None, "detections": []}),
    ("c.jpg", {"width": None, "height": None, "failure": "image decode failure: truncated", "detections": None}),
]


def test_one_row_per_detection_one_per_empty_or_failed_image():
    table = pred.predictions_table(ITEMS, NAMES, "yolov8")
    assert list(table.status) == ["predicted", "predicted", "no detection", "failed"]
    assert list(table.species[:2]) == ["caca", "bos"] and table.x.iloc[0] == 0.1
    assert table.failure.iloc[3].startswith("image decode failure")


def test_megadetector_file_is_valid_with_species_as_classifications():
    document = pred.md_batch_document(ITEMS, NAMES, "yolov8 abc")
    assert validate_batch_results(document)["validation_results"]["errors"] == []
    assert document["classification_categories"] == {"0": "bos", "1": "caae", "2": "caca"}
    failed = document["images"][2]
    assert failed["detections"] is None and failed["failure"]
    found = {"detections": [{"category": "1", "conf": 1, "bbox": [0, 0, 1, 1]}]}
    detector_only = pred.md_batch_document([("d.jpg", found)], NAMES, "detector")
    assert "classification_categories" not in detector_only
    assert isinstance(detector_only["images"][0]["detections"][0]["conf"], float)  # the validator insists


MDLITE = '{"backend": "mdlite", "weights": "0123456789abcdef", "min_conf": 0.05, "image_size": null}'


def test_megadetector_files_name_the_real_detector_and_the_threshold_to_read_them_at():
    """megadetector's own tools take their default threshold from `info.detector_metadata`: both of our
    writers (labels, predictions) give it, with the detector's real name and version."""
    from megadetector.detection.run_detector import get_typical_confidence_threshold_from_results

    from wildbench_assets.lib.labels import md_batch_output

    labels = pd.DataFrame([{"path": "p/a.jpg", "label_status": "labelled",
                            "detections": '[{"category": "1", "conf": 0.9, "bbox": [0.1, 0.2, 0.3, 0.4]}]',
                            "failure": None}])
    detector_only = f'{{"predictor": "detector", "detector": {json.dumps(MDLITE)}}}'
    for document, threshold in [(md_batch_output(labels, MDLITE, 0.35), 0.35),
                                (pred.md_batch_document(ITEMS[:2], NAMES, detector_only, threshold=0.15), 0.15)]:
        assert validate_batch_results(document)["validation_results"]["errors"] == []
        metadata = document["info"]["detector_metadata"]
        assert metadata["typical_detection_threshold"] == threshold
        assert get_typical_confidence_threshold_from_results(document) == threshold
        assert metadata["megadetector_version"].startswith("MegadetectorLite (YOLOX-tiny, zamba)")
        assert "yolox_tiny_640_20220528" in metadata["megadetector_version"]
        assert "0123456789abcdef" in metadata["megadetector_version"]
        assert (metadata["conf_digits"], metadata["coord_digits"]) == (4, 4)
    species = pred.md_batch_document(ITEMS, NAMES, '{"predictor": "yolov8", "weights": "ab"}', threshold=0.25)
    assert species["info"]["detector_metadata"]["megadetector_version"].startswith("yolov8 species model")


def test_annotated_image_has_the_box_drawn():
    image = Image.new("RGB", (200, 100), (0, 0, 0))
    out = pred.annotate(image, ITEMS[0][1], NAMES)
    assert out.size == image.size and out.getpixel((20, 60)) != (0, 0, 0)  # left edge of the first box
    assert out.getpixel((150, 20)) == (0, 0, 0)  # far from every box


def test_only_a_model_that_earned_it_on_the_newest_release_is_promoted():
    def row(model, release, map_50_95, profile="default", source="trained here"):
        return {"model": model, "release": release, "profile": profile, "source": source, "map_50_95": map_50_95,
                "map_50": None if map_50_95 is None else 2 * map_50_95, "f1_weighted": 0.5}

    board = pd.DataFrame([
        row("yolov8", "2026.12", 0.30), row("fasterrcnn", "2026.12", 0.35),
        row("megadetector", "2026.11", 0.60),  # better, but on an older release: not comparable
        row("megadetector", "2026.12-thesis", 0.90, profile="thesis"),  # optimistic by construction
        row("YOLOv8s (thesis)", "thesis", None, "thesis", "thesis per-image results"),
    ])
    assert promoted_model(board, lambda m, r: True) == ("fasterrcnn", "2026.12")
    assert promoted_model(board, lambda m, r: m != "fasterrcnn") == ("yolov8", "2026.12")  # weights missing
    assert promoted_model(board, lambda m, r: True, model="megadetector") == ("megadetector", "2026.11")
    assert promoted_model(board[board.release != "2026.12"], lambda m, r: True) == ("megadetector", "2026.11")
    cut = board.assign(release_cut_at=board.release.map({"2026.12": "2026-12-01", "2026.11": "2026-11-01"}))
    renamed = cut.assign(release=cut.release.replace({"2026.12": "final"}))  # newest by cut time, not by name
    assert promoted_model(renamed.assign(release=renamed.release.replace({"2026.11": "z-older"})),
                          lambda m, r: True) == ("fasterrcnn", "final")
    barely = board.assign(map_50=0.001, map_50_95=0.0001)
    assert promoted_model(barely, lambda m, r: True) is None  # a tiny model that finds nothing: the detector
    assert promoted_model(None, lambda m, r: True) is None


def test_prediction_findings_hold_for_a_good_day_and_name_each_fault():
    images = pd.DataFrame({"path": ["a.jpg", "b.jpg", "c.jpg"]})
    table = pred.predictions_table(ITEMS, NAMES, "yolov8")
    document = pred.md_batch_document(ITEMS, NAMES, "yolov8 abc")
    found = pred.prediction_findings(images, table, document, 0.1)
    assert found.one_row_per_image and found.boxes_in_unit_square and found.md_errors == []
    assert all(r.success for r in found.score_rules) and found.detections == 2
    assert found.statuses == {"predicted": 1, "no detection": 1, "failed": 1}  # per image, not per row
    assert found.per_species == {"caca": 1, "bos": 1} and found.images_in_table == 3

    assert not pred.prediction_findings(images.iloc[:2], table, document, 0.1).one_row_per_image  # c.jpg extra
    doubled = pd.concat([table, table[table.path == "b.jpg"]])  # two `no detection` rows for one image
    assert not pred.prediction_findings(images, doubled, document, 0.1).one_row_per_image
    past_edge = table.assign(x=table.x.where(table.index != 0, 0.9))  # a.jpg's first box, 0.3 wide: past the edge
    edge = pred.prediction_findings(images, past_edge, document, 0.1)
    assert edge.boxes_past_the_edge == 1 and not edge.boxes_in_unit_square
    assert not pred.prediction_findings(images, table, document, 0.5).score_rules[0].success  # 0.4 below 0.5
    assert pred.prediction_findings(images, table, {"images": []}, 0.1).md_errors  # not a batch file


def test_an_animal_the_species_model_does_not_place_is_other_animal_and_counted():
    species = {"width": 40, "height": 30, "failure": None, "detections": [
        {"category": "1", "conf": 0.8, "bbox": [0.1, 0.1, 0.3, 0.3], "classifications": [["2", 0.8]]}]}
    seen = [{"category": "1", "conf": 0.9, "bbox": [0.12, 0.1, 0.3, 0.3]},   # the same animal: caca
            {"category": "1", "conf": 0.7, "bbox": [0.6, 0.5, 0.2, 0.2]},    # one the model left out
            {"category": "2", "conf": 0.9, "bbox": [0.0, 0.0, 0.1, 0.1]},    # a person: not an animal
            {"category": "1", "conf": 0.05, "bbox": [0.8, 0.8, 0.1, 0.1]}]   # below the minimum confidence
    classes = pred.answer_classes(NAMES)
    merged = pred.with_detector_animals(species, seen, len(NAMES), 0.1)
    table = pred.predictions_table([("a.jpg", merged)], classes, "yolov8")
    assert list(table.species) == ["caca", pred.OTHER_ANIMAL] and not merged["species_model_missed"]
    missed = pred.with_detector_animals({**species, "detections": []}, seen, len(NAMES), 0.1)
    assert missed["species_model_missed"] and missed["detector_animals"] == 2
    assert pred.predictions_table([("b.jpg", missed)], classes, "yolov8").species.tolist() == [pred.OTHER_ANIMAL] * 2
    items = [("a.jpg", merged), ("b.jpg", missed), ("c.jpg", pred.with_detector_animals(ITEMS[1][1], [], 3, 0.1))]
    answer = {"model": "yolov8", "answered_by": "yolov8 trained on release 2026.11", "why": "promoted"}
    [warning] = pred.answer_warnings(items, answer)
    assert "no box on 1 of 2 images" in warning and pred.OTHER_ANIMAL in warning
    document = pred.md_batch_document(items, classes, "yolov8 abc", answer, [warning])
    assert validate_batch_results(document)["validation_results"]["errors"] == []
    assert document["classification_categories"]["3"] == pred.OTHER_ANIMAL
    assert document["info"]["wildbench_answer"] == answer and document["info"]["warnings"] == [warning]
    assert any(line.startswith("warning: ") for line in pred.answer_lines(answer, [warning]))


def test_why_no_species_model_is_promoted_is_said_plainly():
    from wildbench_assets.training.predict import promotion_refusal

    def row(model, release, map_50, profile="default"):
        return {"model": model, "release": release, "profile": profile, "source": "trained here",
                "map_50": map_50, "map_50_95": map_50 / 2, "f1_weighted": 0.1}

    assert "no species model has been trained" in promotion_refusal(None, lambda m, r: True)
    thesis = pd.DataFrame([row("yolov8", "2026.11-thesis", 0.8, "thesis")])
    assert "only on thesis-profile releases (2026.11-thesis)" in promotion_refusal(thesis, lambda m, r: True)
    weak = pd.DataFrame([row("yolov8", "2026.11", 0.004), row("fasterrcnn", "2026.11", 0.02)])
    said = promotion_refusal(weak, lambda m, r: True, 0.1)
    assert "threshold mAP@.5 >= 0.1" in said and "fasterrcnn on release 2026.11" in said and "0.020" in said
    gone = pd.DataFrame([row("yolov8", "2026.11", 0.5)])
    assert promoted_model(gone, lambda m, r: False) is None
    assert "no weights stored (yolov8 on 2026.11)" in promotion_refusal(gone, lambda m, r: False)


def test_a_model_is_loaded_once_per_file_version_even_by_threads_at_once(tmp_path):
    """The process's model cache: eight threads asking at once load once; a retrained file (a new
    version at the same path) is loaded afresh; other settings are another model."""
    import os
    import threading
    import time

    from wildbench_assets.resources.loaded_models import LoadedModels

    cache, weights, made = LoadedModels(), tmp_path / "weights.pt", []
    weights.write_bytes(b"v1")

    def load():
        made.append(weights.read_bytes())
        time.sleep(0.05)  # a slow load: the other threads arrive while it runs
        return object()

    got = []
    threads = [threading.Thread(target=lambda: got.append(cache.get("m", weights, load))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert made == [b"v1"] and len({id(g) for g in got}) == 1 and cache.loads["m"] == 1
    assert cache.get("m", weights, load) is got[0]
    assert cache.get("m", weights, load, "cuda") is not got[0] and cache.loads["m"] == 2
    replacement = tmp_path / "new.pt"
    replacement.write_bytes(b"v2")
    os.replace(replacement, weights)  # retrained: written beside, renamed over
    assert cache.get("m", weights, load) is not got[0] and made[-1] == b"v2" and cache.loads["m"] == 3
