"""detection_labels for real: the MegadetectorLite detector, the cache, the manifest backend, MD 1.6."""

import json
import shutil

import pandas as pd
import pytest

from wildbench_assets.config import LabelConfig
from wildbench_assets.lib.labels import FAILED, LABELLED
from wildbench_assets.lib.predictions import md_document_errors
from wildbench_assets.resources.archive import LocalArchive
from wildbench_assets.resources.detector import DetectorResource
from wildbench_assets.summary import read_table

from .helpers import instance_at, latest_checks, run_all

LABELS = ["detection_labels"]


@pytest.fixture(scope="module")
def split_data(demo_archive, tmp_path_factory):
    """The demo archive run up to the splits once; each test copies the data dir."""
    data = tmp_path_factory.mktemp("split-data")
    _, outcome = run_all(demo_archive, data, instance=instance_at(data / "dagster_home"))
    assert not outcome.get("failure")
    return data


def test_labels_are_cached_second_run_does_no_inference(demo_archive, split_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(split_data, data)
    instance, outcome = run_all(demo_archive, data, instance=instance_at(data / "dagster_home"), selection=LABELS)
    assert not outcome.get("failure"), outcome
    first = read_table(data, "detection_labels")
    animals = first[first.species != "emp"]
    assert set(first.path) == set(read_table(data, "benchmark_splits").path)
    assert (animals.label_status == LABELLED).mean() > 0.3  # a real detector finds the drawn animals
    assert (first[first.species == "emp"].n_boxes == 0).all()
    inferences = [e.metadata["inferences"].value for e in _materializations(instance)]
    assert sum(inferences) == len(animals)
    instance, _ = run_all(demo_archive, data, instance=instance, selection=LABELS, force=True)
    assert [e.metadata["inferences"].value for e in _materializations(instance)] == [0, 0, 0, 0]
    second = read_table(data, "detection_labels")
    pd.testing.assert_frame_equal(first.drop(columns="sha256"), second.drop(columns="sha256"))
    for check in ("one_row_per_image", "boxes_inside_image", "confidences_in_range"):
        assert all(e.passed for e in latest_checks(instance, "detection_labels")[check]), check


def test_megadetector_file_and_multi_animal_labels(demo_archive, split_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(split_data, data)
    run_all(demo_archive, data, instance=instance_at(data / "dagster_home"), selection=LABELS, detector="manifest")
    labels = read_table(data, "detection_labels")
    raw = read_table(data, "raw_images")
    in_manifest = set(raw.path[raw.species_source == "manifest"])
    animals = labels[labels.species != "emp"]
    assert (animals[animals.path.isin(in_manifest)].label_status == LABELLED).all()  # a box for every animal
    assert (animals[~animals.path.isin(in_manifest)].label_status == "no detection").all()  # plain test images
    assert animals.n_boxes.max() == 2  # multi-animal images keep every box, not just the top one
    md = json.loads((data / "artifacts" / "labels" / "train.megadetector-1.6.json").read_text())
    assert md["info"]["format_version"] == "1.6" and md["detection_categories"]["1"] == "animal"
    assert md["info"]["detector_metadata"]["typical_detection_threshold"] == LabelConfig().label_threshold
    assert md["info"]["detector_metadata"]["megadetector_version"].startswith("the archive's own boxes")
    assert md_document_errors(md) == []  # megadetector's own validator
    train = labels[labels.split == "train"]
    assert {i["file"] for i in md["images"]} == set(train.path)
    for image in md["images"]:
        for det in image["detections"]:
            x, y, w, h = det["bbox"]
            assert 0 <= x and 0 <= y and x + w <= 1.0001 and y + h <= 1.0001 and det["category"] == "1"


def test_a_broken_image_is_a_failed_row_not_a_crash(demo_archive, split_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(split_data, data)
    archive = tmp_path / "archive"
    shutil.copytree(demo_archive, archive)
    victim = read_table(data, "benchmark_splits").query("species != 'emp'").path.iloc[0]
    (archive / victim).write_bytes((archive / victim).read_bytes()[:400])  # damaged after curation
    instance, outcome = run_all(archive, data, instance=instance_at(data / "dagster_home"), selection=LABELS)
    assert not outcome.get("failure"), outcome
    labels = read_table(data, "detection_labels").set_index("path")
    assert labels.loc[victim, "label_status"] == FAILED and "decode" in labels.loc[victim, "failure"]


def test_mdlite_finds_the_animals_in_real_photos(samples):
    store = LocalArchive(samples)
    detector = DetectorResource(backend="mdlite").load()
    results = {r.key: r for r in detector.run(["idaho-cougar.jpg", "snieves-sheep-ovar.jpg",
                                               "orinoquia-ocelot.jpg", "nacti-crane.jpg"], store.read)}
    for key, result in results.items():
        assert result.failure is None and result.detections, key
        assert result.detections[0].confidence >= 0.4, key
    sheep = results["snieves-sheep-ovar.jpg"].detections[0].box
    # The thesis's own box for this photo (Figure 3.8, VOC 744..1804 x 74..820 on 1920x1080).
    thesis = (744 / 1920, 74 / 1080, 1804 / 1920, 820 / 1080)
    inter_w = min(sheep.x2, thesis[2]) - max(sheep.x1, thesis[0])
    inter_h = min(sheep.y2, thesis[3]) - max(sheep.y1, thesis[1])
    inter = max(0, inter_w) * max(0, inter_h)
    union = sheep.width * sheep.height + (thesis[2] - thesis[0]) * (thesis[3] - thesis[1]) - inter
    assert inter / union > 0.6


def _materializations(instance):
    from dagster import AssetKey, DagsterEventType, EventRecordsFilter

    records = instance.get_event_records(EventRecordsFilter(event_type=DagsterEventType.ASSET_MATERIALIZATION,
                                                            asset_key=AssetKey("detection_labels")))
    from wildbench_assets.lib.splits import SPLITS

    latest = sorted(records, key=lambda r: r.storage_id)[-len(SPLITS):]
    return [r.event_log_entry.dagster_event.event_specific_data.materialization for r in latest]


def test_megadetector_backend_runs_through_the_megadetector_package(tmp_path):
    """The `megadetector` package's own loading and batched inference, on a tiny ultralytics detector
    built here (the real MDv5a is a 281 MB download; the code path is the same)."""
    from wildbench_assets.resources.ultralytics_env import configure_ultralytics_offline

    configure_ultralytics_offline(tmp_path / "ultralytics")
    import yaml
    from ultralytics import YOLO
    from ultralytics.utils import ROOT

    # MegaDetector's three classes (animal, person, vehicle): a yolov8n with nc=3.
    cfg = yaml.safe_load((ROOT / "cfg" / "models" / "v8" / "yolov8.yaml").read_text()) | {"nc": 3}
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "yolov8n.yaml").write_text(yaml.safe_dump(cfg))
    weights = tmp_path / "tiny-detector.pt"  # a neutral name: megadetector guesses types from names
    YOLO(str(tmp_path / "cfg" / "yolov8n.yaml")).save(str(weights))
    detector = DetectorResource(backend="megadetector", weights_path=str(weights), model_type="ultralytics",
                                inference_threshold=0.0, image_size=320).load()
    images = tmp_path / "images"
    images.mkdir()
    from PIL import Image

    for i in range(3):
        Image.effect_noise((320, 240), 50).convert("RGB").save(images / f"{i}.jpg")
    (images / "bad.jpg").write_bytes(b"not a jpeg")
    store = LocalArchive(images)
    results = {r.key: r for r in detector.run(["0.jpg", "1.jpg", "bad.jpg", "2.jpg"], store.read)}
    assert results["bad.jpg"].failure and "decode" in results["bad.jpg"].failure
    for key in ("0.jpg", "1.jpg", "2.jpg"):
        assert results[key].failure is None and results[key].width == 320
        assert all(d.box.is_valid() and d.category in {"1", "2", "3"} for d in results[key].detections)
    assert detector.inferences == 3 and '"backend": "megadetector"' in detector.identity
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        DetectorResource(backend="megadetector").load()


def test_label_cache_compacts_segments_without_losing_entries(tmp_path):
    """Many runs' segments fold into one file on load; every entry stays, duplicates go."""
    from wildbench_assets.resources.label_cache import COMPACT_AFTER, LabelCache

    cache = LabelCache(base_dir=str(tmp_path))
    rows = [{"path": f"p{i}.jpg", "etag": "e", "sha256": f"s{i}", "width": 4, "height": 3, "detections": "[]"}
            for i in range(COMPACT_AFTER + 4)]
    for row in rows:
        cache.append("detector-x", pd.DataFrame([row]))
    cache.append("detector-x", pd.DataFrame(rows[:2]))  # the same images again
    folder = next((tmp_path / "label_cache").iterdir())
    assert len(list(folder.glob("*.parquet"))) == COMPACT_AFTER + 5
    loaded = cache.load("detector-x")
    assert sorted(loaded.path) == sorted(r["path"] for r in rows)
    assert len(list(folder.glob("*.parquet"))) == 1
    cache.append("detector-x", pd.DataFrame([{**rows[0], "path": "new.jpg", "sha256": "s-new"}]))
    assert len(cache.load("detector-x")) == len(rows) + 1


def test_label_cache_lookup_answers_as_a_full_load_and_reads_only_what_it_needs(tmp_path):
    """A step's lookup returns exactly the cached rows of its paths, before and after compaction, and
    turns only those rows into Python; the content index is read only when asked."""
    from wildbench_assets.resources.label_cache import COMPACT_AFTER, ROW_GROUP_ROWS, LabelCache

    total = 3 * ROW_GROUP_ROWS
    rows = pd.DataFrame({"path": [f"park/day-{i % 40:02d}/{i:06d}.jpg" for i in range(total)], "etag": "e",
                         "sha256": [f"s{i}" for i in range(total)], "width": 4, "height": 3,
                         "detections": [f'[{{"n": {i}}}]' for i in range(total)]})
    changed = rows.iloc[:2].assign(etag="e2")  # two objects re-uploaded since (same content)
    wanted = ["park/day-00/000000.jpg", "park/day-07/000047.jpg", "park/day-07/090007.jpg", "not/cached.jpg"]
    every = pd.concat([rows, changed], ignore_index=True)
    expected = every[every.path.isin(wanted)].sort_values(["path", "etag"], ignore_index=True)
    cache = LabelCache(base_dir=str(tmp_path))
    for part in range(COMPACT_AFTER - 1):
        cache.append("detector-x", rows.iloc[part::COMPACT_AFTER - 1])
    cache.append("detector-x", changed)
    folder = next((tmp_path / "label_cache").iterdir())
    for state in ("segments", "compacting", "compacted"):
        probe = LabelCache(base_dir=str(tmp_path))
        found = probe.lookup("detector-x", wanted).sort_values(["path", "etag"], ignore_index=True)
        pd.testing.assert_frame_equal(found, expected, check_dtype=False)
        if state == "segments":
            assert probe.rows_read == len(expected) == 4  # one path with two etags, one path never cached
            assert len(list(folder.glob("*.parquet"))) == COMPACT_AFTER
            cache.append("detector-x", changed)  # duplicate segments: over the limit, the next lookup compacts
            cache.append("detector-x", changed)
        elif state == "compacted":  # one file sorted by path: row groups whose path range misses are not read
            assert probe.rows_read == 4 and len(list(folder.glob("*.parquet"))) == 1
            assert probe.bytes_read < sum(f.stat().st_size for f in folder.glob("*.parquet")) / 2
    assert probe.lookup("detector-x", []).empty
    index = probe.contents("detector-x")
    assert not index.loaded and probe.rows_read == 4
    assert index["s47"] == '[{"n": 47}]' and "s-unknown" not in index and index.loaded
    assert len(cache.load("detector-x")) == total + len(changed)


def _label_rows(threshold=0.5):
    """Four images as `label_row` makes them: two boxes (one past the right edge), no box, empty, failed."""
    from wildbench_assets.lib.labels import label_row

    def det(conf, bbox):
        return {"category": "1", "conf": conf, "bbox": bbox}

    images = pd.DataFrame({"path": ["a.jpg", "b.jpg", "c.jpg", "d.jpg"], "species": ["bos", "bos", "emp", "caca"]})
    rows = [label_row({"path": "a.jpg", "species": "bos"}, [det(0.9, [0.1, 0.1, 0.2, 0.2]),
                                                           det(0.6, [0.9, 0.1, 0.3, 0.2]),
                                                           det(0.3, [0.1, 0.5, 0.2, 0.2])], None, threshold),
            label_row({"path": "b.jpg", "species": "bos"}, [det(0.2, [0.1, 0.1, 0.2, 0.2])], None, threshold),
            label_row({"path": "c.jpg", "species": "emp"}, [], None, threshold),
            label_row({"path": "d.jpg", "species": "caca"}, None, "image decode failure", threshold)]
    return images, pd.DataFrame(rows)


def test_label_findings_count_boxes_shares_and_rule_breaks():
    from wildbench_assets.lib.labels import NO_DETECTION, label_findings

    images, labels = _label_rows()
    found = label_findings(images, labels, 0.5)
    assert found.statuses == {LABELLED: 1, NO_DETECTION: 1, "empty": 1, FAILED: 1}
    assert (found.animals, found.boxes, found.outside_or_degenerate) == (3, 2, 1)  # below-threshold box not a label
    assert found.unlabelled_share == pytest.approx(1 / 3)  # of the animal images, not of all
    assert found.failed_share == pytest.approx(1 / 4)
    assert all(r.success for r in found.row_rules) and all(r.success for r in found.confidence_rules)

    stricter = label_findings(images, labels, 0.7)  # a box kept under another threshold is out of range
    assert not stricter.confidence_rules[0].success and stricter.confidence_rules[0].unexpected_count == 1
    doubled = label_findings(images.iloc[:3], pd.concat([labels, labels.iloc[:1]]), 0.5)
    assert [r.success for r in doubled.row_rules] == [False, False, True]  # row count, unique paths


def test_cached_inference_computes_only_changed_objects_and_a_killed_run_resumes(tmp_path):
    """The one cache-then-infer loop of labelling, empties' decoding and prediction."""
    import logging

    from wildbench_assets.resources.label_cache import CHECKPOINT_EVERY, Computed, LabelCache, cached_inference

    cache, log = LabelCache(base_dir=str(tmp_path)), logging.getLogger("test")
    paths = [f"p{i}.jpg" for i in range(CHECKPOINT_EVERY + 10)]
    asked = []

    def compute(todo, fail_after=None):
        for n, path in enumerate(todo):
            if n == fail_after:
                raise RuntimeError("killed")
            asked.append(path)
            failed = path == "p3.jpg"
            yield Computed(path, f"sha-{path}", 4, 3, None if failed else "[]", {"failed": failed})

    with pytest.raises(RuntimeError):  # killed after the first checkpoint and a few more
        cached_inference(cache, "det", paths, ["e"] * len(paths), lambda t: compute(t, CHECKPOINT_EVERY + 5), log, "t")
    assert len(asked) == CHECKPOINT_EVERY + 5
    asked.clear()
    hits, computed = cached_inference(cache, "det", paths, ["e"] * len(paths), compute, log, "t")
    # the checkpoint's CHECKPOINT_EVERY images come from the cache (the failure among them is never cached)
    assert set(hits) == set(paths[:CHECKPOINT_EVERY + 1]) - {"p3.jpg"}
    assert asked == ["p3.jpg", *paths[CHECKPOINT_EVERY + 1:]] and set(computed) == set(asked)
    asked.clear()
    etags = ["e"] * len(paths)
    etags[0] = "changed"  # a changed object is read again
    hits, computed = cached_inference(cache, "det", paths, etags, compute, log, "t")
    assert asked == ["p0.jpg", "p3.jpg"] and len(hits) == len(paths) - 2
