"""Benchmark releases: frozen byte for byte, hidden test labels, a leak audit that catches a planted
near-duplicate, and a Camtrap DP package that validates."""

import io
import json
import shutil
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from wildbench_assets.lib import leak_audit
from wildbench_assets.lib.camtrap_dp import build_package, validate_package
from wildbench_assets.lib.releases import read_manifest
from wildbench_assets.lib.splits import SplitPlan, assign_splits
from wildbench_assets.taxonomy import Taxonomy

from .helpers import latest_checks, pipeline_defs, run_all

UP_TO_LABELS = ["raw_images", "image_metadata", "curated_images", "benchmark_splits", "detection_labels"]


def _cut(archive: Path, data: Path, instance, name: str):
    """Bring the labels up to date with the archive, then materialize release `name`."""
    _, outcome = run_all(archive, data, instance=instance, selection=UP_TO_LABELS, detector="manifest")
    assert not outcome.get("failure"), outcome
    instance.add_dynamic_partitions("releases", [name])
    defs = pipeline_defs(archive, data, detector="manifest")
    return defs.resolve_job_def("release_job").execute_in_process(instance=instance, partition_key=name,
                                                                  raise_on_error=False)


def _release(data: Path, name: str) -> Path:
    return data / "artifacts" / "releases" / name


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _add_with_boxes(archive: Path, park: str, images: list[tuple[str, bytes, list[tuple[str, list[float]]]]],
                    day: datetime):
    """Write images (key, bytes, [(species, COCO bbox)]) as arrivals of `day`, with their boxes in the
    park's own COCO Camera Traps manifest (`<park>/manifest.json`, merged with what is there)."""
    import os

    manifest_path = archive / park / "manifest.json"
    manifest = (json.loads(manifest_path.read_text()) if manifest_path.exists()
                else {"images": [], "annotations": [], "categories": []})
    categories = {c["name"]: c["id"] for c in manifest["categories"]}
    for key, data, boxes in images:
        path = archive / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (day.timestamp(), day.timestamp()))
        width, height = Image.open(io.BytesIO(data)).size
        relative = key.split("/", 1)[1]
        manifest["images"].append({"id": relative, "file_name": relative, "width": width, "height": height})
        for species, bbox in boxes:
            category = categories.setdefault(species, len(categories) + 1)
            manifest["annotations"].append({"id": f"{relative}-{len(manifest['annotations'])}", "image_id": relative,
                                            "category_id": category, "bbox": bbox})
    manifest["categories"] = [{"id": i, "name": n} for n, i in categories.items()]
    manifest_path.write_text(json.dumps(manifest))


def _camera_in(split: str, park: str) -> str:
    """A new camera folder name whose leakage group the default plan assigns to `split`."""
    return next(f"X{n:02d}" for n in range(100)
                if assign_splits(pd.Series([f"{park}/X{n:02d}"]), SplitPlan()).iloc[0] == split)


@pytest.fixture(scope="module")
def released(world_copy):
    """The demo world's copy (tests add images to its archive and cut later releases): release 2026.11 cut."""
    return world_copy.archive, world_copy.data, world_copy.instance()


def test_a_release_rebuilds_byte_for_byte_and_a_changed_file_fails_loudly(released):
    archive, data, instance = released
    folder = _release(data, "2026.11")
    before = _files(folder)
    defs = pipeline_defs(archive, data, detector="manifest")
    job = defs.resolve_job_def("release_job")
    assert job.execute_in_process(instance=instance, partition_key="2026.11").success
    assert _files(folder) == before
    assert latest_checks(instance, "benchmark_release")["reproducible"][-1].metadata["rebuilt"].value is True

    datasheet = folder / "datasheet.md"
    datasheet.write_text(datasheet.read_text() + "edited by hand\n")
    try:
        failed = job.execute_in_process(instance=instance, partition_key="2026.11", raise_on_error=False)
        assert not failed.success
        differs = latest_checks(instance, "benchmark_release")["reproducible"][-1]
        assert not differs.passed and differs.metadata["files_that_differ"].value == ["datasheet.md"]
    finally:
        datasheet.write_bytes(before["datasheet.md"])


def test_the_public_test_download_holds_no_label(released):
    archive_dir, data, _instance = released
    folder = _release(data, "2026.11")
    manifest = read_manifest((folder / "manifest.csv").read_bytes())
    test_rows = manifest[manifest.split == "test"]
    with zipfile.ZipFile(folder / "downloads" / "test.zip") as archive:
        names = archive.namelist()
        listing = pd.read_csv(io.BytesIO(archive.read("images.csv")))
        first = test_rows.iloc[0]
        public = archive.read(f"images/{first.public_id}.jpg")
    original = (archive_dir / first.path).read_bytes()
    assert b"Exif" in original[:4096] and b"Exif" not in public[:4096]  # no camera make, model or date
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(public))), np.asarray(Image.open(io.BytesIO(original))))
    docs = ["README.md", "LICENSE", "classes.txt"]  # the release's, the same as in train.zip: no label
    assert sorted(names) == sorted(["images.csv", *docs, *(f"images/{p}.jpg" for p in test_rows.public_id)])
    images = [n for n in names if n.startswith("images/")]
    assert images == sorted(images)  # public-id order: the path order would group them by species
    assert list(listing.columns) == ["public_id", "file", "width", "height"]  # no park, species, camera, path
    species = set(Taxonomy().species_codes)
    assert not [n for n in names if set(n.replace(".", "/").split("/")) & species]
    truth = json.loads((folder / "hidden" / "truth.coco.json").read_text())
    assert sorted(i["public_id"] for i in truth["images"] if i["test_set"] == "test") == sorted(listing.public_id)
    with zipfile.ZipFile(folder / "downloads" / "test.zip") as archive:
        shown = {n: archive.read(n) for n in docs}
    with zipfile.ZipFile(folder / "downloads" / "train.zip") as archive:  # train keeps its labels
        assert any(n.startswith("labels/train/") and n.endswith(".txt") for n in archive.namelist())
        assert shown == {n: archive.read(n) for n in docs}


def test_a_download_trains_with_yolo_and_loads_in_pycocotools_and_torchvision(released, tmp_path):
    """As a researcher would: train.zip and val.zip unzipped into one new folder. Ultralytics accepts its
    dataset.yaml with the release's classes in the release's order and a one-epoch YOLO train runs; each
    split's COCO json loads in pycocotools and torchvision with the unzipped images. Before: no
    dataset.yaml, no class list, no README or licence."""
    from pycocotools.coco import COCO
    from torchvision.datasets import CocoDetection

    from wildbench_assets.resources.ultralytics_env import configure_ultralytics_offline

    _archive, data, _instance = released
    folder = _release(data, "2026.11")
    names = json.loads((folder / "release.json").read_text())["class_names"]
    manifest = read_manifest((folder / "manifest.csv").read_bytes())
    out = tmp_path / "wb"
    shared = {}
    for split in ("train", "val"):
        with zipfile.ZipFile(folder / "downloads" / f"{split}.zip") as archive:
            shared[split] = {n: archive.read(n) for n in ("dataset.yaml", "classes.txt", "README.md", "LICENSE")}
            assert all(not n.startswith("/") and ".." not in n for n in archive.namelist())
            archive.extractall(out)
    assert shared["train"] == shared["val"]  # one folder: the second unzip overwrites nothing with other bytes
    assert (out / "classes.txt").read_text().splitlines() == names
    readme, licence = (out / "README.md").read_text(), (out / "LICENSE").read_text()
    assert "release 2026.11" in readme and "yolo train data=" in readme and "wildbench score --release" in readme
    assert "not stated by the operator" in licence  # no licence is invented for someone else's photos

    configure_ultralytics_offline()
    from ultralytics import YOLO
    from ultralytics.data.utils import check_det_dataset

    checked = check_det_dataset(str(out / "dataset.yaml"))
    assert [checked["names"][i] for i in range(len(names))] == names and checked["nc"] == len(names)
    assert Path(checked["train"]) == (out / "images" / "train").resolve()
    labelled = manifest[manifest.split.isin(["train", "val"]) & (manifest.label_status == "labelled")]
    assert len(list((out / "labels").rglob("*.txt"))) == len(labelled)
    YOLO("yolov8n.yaml").train(data=str(out / "dataset.yaml"), epochs=1, imgsz=64, batch=2, workers=0, device="cpu",
                               project=str(tmp_path / "runs"), name="run", plots=False, verbose=False, amp=False)
    assert (tmp_path / "runs" / "run" / "weights" / "last.pt").is_file()

    for split in ("train", "val"):
        annotations = out / "annotations" / f"instances_{split}.json"
        coco = COCO(str(annotations))
        assert len(coco.getImgIds()) == int((manifest.split == split).sum())
        assert [c["name"] for c in coco.loadCats(sorted(coco.getCatIds()))] == names
        dataset = CocoDetection(str(out / "images" / split), str(annotations))
        index = next(i for i, image_id in enumerate(dataset.ids) if coco.getAnnIds(imgIds=image_id))
        image, targets = dataset[index]
        info = coco.loadImgs(dataset.ids[index])[0]
        row = manifest[manifest.path == info["source_path"]].iloc[0]
        assert image.size == (row.width, row.height)
        assert targets and {names[t["category_id"] - 1] for t in targets} == {row.species}


def test_the_operators_licence_is_in_every_download_and_frozen_at_the_cut(demo_archive, tmp_path, monkeypatch):
    """The terms the operator states at the cut (`wildbench release --licence`, the run config or
    WILDBENCH_DATA_LICENCE) are the LICENSE of every download; stated otherwise later, `--verify` still
    reproduces the cut's."""
    from wildbench_assets.cli import main

    archive, data = tmp_path / "archive", tmp_path / "data"
    shutil.copytree(demo_archive, archive, symlinks=True)
    for key, value in {"DAGSTER_HOME": str(tmp_path / "home"), "WILDBENCH_DATA": str(data),
                       "WILDBENCH_DETECTOR": "manifest"}.items():
        monkeypatch.setenv(key, value)
    terms = "CC BY-NC 4.0, (c) Example Park Authority 2026"
    assert main(["release", "--archive", str(archive), "--name", "2026.11", "--licence", terms]) == 0
    folder = _release(data, "2026.11")
    for split in ("train", "val", "test", "test_seen"):
        with zipfile.ZipFile(folder / "downloads" / f"{split}.zip") as download:
            assert terms in download.read("LICENSE").decode()
            assert "as the operator stated it" in download.read("README.md").decode()
    before = _files(folder)
    monkeypatch.setenv("WILDBENCH_DATA_LICENCE", "other terms")
    assert main(["release", "--archive", str(archive), "--name", "2026.11", "--verify"]) == 0
    assert _files(folder) == before


def test_test_seen_shares_cameras_with_train_but_no_sequence(released):
    _archive, data, _instance = released
    manifest = read_manifest((_release(data, "2026.11") / "manifest.csv").read_bytes())
    seen, trained = manifest[manifest.split == "test_seen"], manifest[manifest.split.isin(["train", "val"])]
    assert len(seen) and seen.camera.isin(trained.camera).all()
    assert not seen.sequence.isin(trained.sequence).any()
    assert not manifest[manifest.split == "test"].camera.isin(trained.camera).any()  # unseen cameras
    with zipfile.ZipFile(_release(data, "2026.11") / "downloads" / "test_seen.zip") as archive:
        assert len([n for n in archive.namelist() if n.endswith(".jpg")]) == len(seen)


def test_the_release_validates_as_camtrap_dp_and_a_broken_one_does_not(released, tmp_path):
    _archive, data, _instance = released
    package = _release(data, "2026.11") / "camtrap-dp"
    assert validate_package(package) == []
    media = pd.read_csv(package / "media.csv")
    manifest = read_manifest((_release(data, "2026.11") / "manifest.csv").read_bytes())
    assert set(media.mediaID) <= set(manifest[manifest.split.isin(["train", "val"])].public_id)  # tests stay hidden
    observations = pd.read_csv(package / "observations.csv")
    hidden = set(manifest[manifest.split.isin(["test", "test_seen"])].public_id)
    assert len(observations) and not set(observations.mediaID) & hidden
    # every filePath is an entry of the public ZIP its row names, and every observation has its sequence
    downloads = _release(data, "2026.11") / "downloads"
    entries = {z: set(zipfile.ZipFile(downloads / z).namelist()) for z in ("train.zip", "val.zip")}
    for path, comment in zip(media.filePath, media.mediaComments):
        assert path in entries[comment.split("in ")[-1]]
    sequences = dict(zip(manifest.public_id, manifest.sequence))
    assert observations.eventID.notna().all()
    assert all(sequences[m] == e for m, e in zip(observations.mediaID, observations.eventID))
    boxes = observations[observations.observationType == "animal"]
    assert len(boxes) and (boxes.classificationMethod == "human").all()  # this release's boxes are the manifest's
    broken = tmp_path / "broken"
    shutil.copytree(package, broken)
    observations = pd.read_csv(broken / "observations.csv")
    observations.loc[observations.observationType == "animal", "bboxX"] = 1.5
    observations.to_csv(broken / "observations.csv", index=False)
    problems = validate_package(broken)
    assert problems and all("bboxX" in p or "observations" in p for p in problems)


def test_images_arriving_later_change_only_the_next_release(released):
    archive, data, instance = released
    old = read_manifest((_release(data, "2026.11") / "manifest.csv").read_bytes())
    before = _files(_release(data, "2026.11"))
    sample = old[(old.split == "train") & (old.label_status == "labelled")].iloc[0]
    camera = _camera_in("train", sample.park)
    photo = Image.open(archive / sample.path)
    added = []
    for frame in range(3):  # a new camera's three frames an hour apart (three sequences, no burst)
        shifted = np.roll(np.asarray(photo), 40 * (frame + 1), axis=1)
        buffer = io.BytesIO()
        Image.fromarray(shifted).save(buffer, "JPEG", quality=85)
        key = f"{sample.park}/{sample.species}/{camera}/new_{frame}.jpg"
        added.append((key, buffer.getvalue(), [(sample.species, [10.0, 10.0, 80.0, 60.0])]))
    _add_with_boxes(archive, sample.park, added, datetime.now(UTC) - timedelta(hours=2))

    assert _cut(archive, data, instance, "2026.12").success
    new = read_manifest((_release(data, "2026.12") / "manifest.csv").read_bytes())
    assert _files(_release(data, "2026.11")) == before  # the published release did not move
    kept = new[new.path.isin(old.path)].reset_index(drop=True)
    assert set(new.path) - set(old.path) == {key for key, _d, _b in added}
    assert set(old.path) - set(new.path) == set()
    ignored = ["sequence", "public_id"]
    pd.testing.assert_frame_equal(kept.drop(columns=ignored), old.drop(columns=ignored))
    assert not set(kept.public_id) & set(old.public_id)  # ids are keyed per release


def test_the_leak_audit_fails_a_release_with_a_planted_near_duplicate(released):
    """The same photo re-encoded at 80 % size, filed under a camera that lands in test: a cross-split
    near-duplicate the camera grouping cannot see. The cut fails and publishes nothing."""
    archive, data, instance = released
    old = read_manifest((_release(data, "2026.11") / "manifest.csv").read_bytes())
    sample = old[(old.split == "train") & (old.label_status == "labelled")].iloc[1]
    photo = Image.open(archive / sample.path)
    smaller = photo.resize((int(photo.width * 0.8), int(photo.height * 0.8)), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    smaller.save(buffer, "JPEG", quality=70)
    x, y, w, h = json.loads(sample.boxes)[0][:4]
    box = [x * smaller.width, y * smaller.height, w * smaller.width, h * smaller.height]
    camera = _camera_in("test", sample.park)
    key = f"{sample.park}/{sample.species}/{camera}/planted.jpg"
    _add_with_boxes(archive, sample.park, [(key, buffer.getvalue(), [(sample.species, box)])],
                    datetime.now(UTC) - timedelta(hours=1))
    try:
        result = _cut(archive, data, instance, "2026.13")
        assert not result.success
        audit = latest_checks(instance, "benchmark_release")["no_near_duplicates_across_splits"][-1]
        assert not audit.passed and audit.metadata["straddling_train_and_test"].value >= 1
        assert not _release(data, "2026.13").exists()
    finally:
        (archive / key).unlink()


def test_near_pairs_finds_every_pair_within_the_distance():
    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 2**63, size=400, dtype=np.uint64)
    hashes[10] = hashes[3] ^ np.uint64(0b1011)       # 3 bits apart
    hashes[200] = hashes[100] ^ np.uint64(1 << 40)   # 1 bit apart
    found = leak_audit.near_pairs(hashes, 4)
    brute = [(i, j, int(bin(int(hashes[i]) ^ int(hashes[j])).count("1"))) for i in range(400) for j in range(i + 1, 400)
             if bin(int(hashes[i]) ^ int(hashes[j])).count("1") <= 4]
    assert found == brute and (3, 10, 3) in found and (100, 200, 1) in found


def test_camtrap_dp_is_refused_for_a_park_without_coordinates():
    from wildbench_assets.lib.camtrap_dp import CamtrapDPUnavailable

    manifest = pd.DataFrame([{"public_id": "wb1", "split": "train", "path": "x/emp/C1/a.jpg", "park": "x",
                              "camera": "x/C1", "captured_at": "2024-01-01T00:00:00", "species": "emp",
                              "boxes": "[]"}])
    with pytest.raises(CamtrapDPUnavailable, match="'x'"):
        build_package(manifest, Taxonomy(), "r", "2026-01-01T00:00:00Z",
                      {"x/emp/C1/a.jpg": ("train.zip", "x/emp/a.jpg")}, "manifest")


def _photo(public_id: str, split: str, species: str, camera: str, sequence: str, boxes: str) -> dict:
    return {"public_id": public_id, "split": split, "path": f"snieves/{species}/{camera}/{public_id}.jpg",
            "park": "snieves", "camera": f"snieves/{camera}", "sequence": sequence,
            "captured_at": "2024-05-01T10:00:00", "species": species, "boxes": boxes}


def test_camtrap_dp_links_sequences_zips_and_who_drew_the_boxes_and_no_test_image(tmp_path):
    """The package as frictionless reads it, unchanged, against the shipped Camtrap DP 1.0.2 profile:
    eventID is the sequence, filePath the image's path inside its public ZIP, detector boxes are
    `machine` by the detector and its version, coordinates say they are the park's centre, and a hidden
    test image is in no table."""
    box = "[[0.1, 0.2, 0.3, 0.4, 0.9]]"
    manifest = pd.DataFrame([_photo("wb1", "train", "lyn", "C1", "snieves/C1/s1", box),
                             _photo("wb2", "val", "emp", "C2", "snieves/C2/s7", "[]"),
                             _photo("wb3", "test", "sus", "C3", "snieves/C3/s2", box)])
    zipped = {manifest.path[0]: ("train.zip", "snieves/lyn/wb1.jpg"),
              manifest.path[1]: ("val.zip", "snieves/emp/wb2.jpg")}
    mdlite = '{"backend": "mdlite", "weights": "0123456789abcdef", "min_conf": 0.05, "image_size": null}'
    drawn_by = {}
    for folder, identity, method in [("detector", mdlite, "machine"), ("manifest", "manifest", "human")]:
        package = tmp_path / folder
        package.mkdir()
        for name, data in build_package(manifest, Taxonomy(), "r1", "2026-01-01T00:00:00Z", zipped, identity).items():
            (package / name).write_bytes(data)
        assert json.loads((package / "datapackage.json").read_text())["profile"].endswith(
            "/camtrap-dp/1.0.2/camtrap-dp-profile.json")
        assert validate_package(package) == []
        media = pd.read_csv(package / "media.csv")
        observations = pd.read_csv(package / "observations.csv")
        deployments = pd.read_csv(package / "deployments.csv")
        assert list(media.mediaID) == ["wb1", "wb2"] and set(observations.mediaID) == {"wb1", "wb2"}
        assert "snieves/C3" not in set(deployments.deploymentID)  # the test camera is nowhere
        assert list(media.filePath) == ["snieves/lyn/wb1.jpg", "snieves/emp/wb2.jpg"]
        assert list(media.mediaComments) == ["split:train; in train.zip", "split:val; in val.zip"]
        assert dict(zip(observations.mediaID, observations.eventID)) == {"wb1": "snieves/C1/s1", "wb2": "snieves/C2/s7"}
        animal = observations[observations.observationType == "animal"].iloc[0]
        assert animal.classificationMethod == method
        drawn_by[folder] = animal.classifiedBy
        blank = observations[observations.observationType == "blank"].iloc[0]
        assert blank.classificationMethod == "human"  # empty by the archive's folders, not by a detector
        assert deployments.deploymentComments.str.contains("park's centre").all()
    assert drawn_by["detector"].startswith("MegadetectorLite") and "yolox_tiny_640_20220528" in drawn_by["detector"]
    assert "0123456789abcdef" in drawn_by["detector"] and "COCO Camera Traps manifest" in drawn_by["manifest"]


def test_the_release_command_cuts_verifies_and_cuts_only_on_change(fresh_world, capsys):
    """`wildbench release` as an operator runs it (in this process: what is tested is the command, not the
    process): labels brought up to date, the month's release cut; a second cut of the same name refused;
    --verify rebuilds it; --if-changed does nothing when nothing changed."""
    def run(*extra):
        code = fresh_world.cli("release", "--archive", str(fresh_world.archive), *extra, quiet=False)
        return code, capsys.readouterr()

    code, cut = run("--name", "2026.12")
    assert code == 0, cut.err[-2000:]
    assert "release 2026.12 cut" in cut.out and (fresh_world.release_dir("2026.12") / "datasheet.md").exists()
    code, again = run("--name", "2026.12")
    assert code == 2 and "immutable" in again.err
    code, verified = run("--verify")
    assert code == 0 and "release 2026.12 reproduces byte for byte" in verified.out
    code, unchanged = run("--if-changed")
    assert code == 0 and "unchanged since release 2026.12" in unchanged.out
    assert sorted(p.name for p in fresh_world.release_dir("2026.12").parent.iterdir()) == [
        "2026.11", "2026.11-thesis", "2026.12"]


def test_release_findings_name_what_is_wrong():
    """The checks' logic at its own seam: a tampered file, a broken seal, counts that disagree, a leaking
    test download."""
    from wildbench_assets.lib.releases import release_findings

    manifest = pd.DataFrame({"split": ["train", "train", "test"]})
    good = release_findings(manifest, "abc", None, {"a": "1"}, None, None,
                            {"train": ["x/y/1.jpg", "x/y/2.jpg", "x/y/1.txt"], "test": ["images/wb1.jpg"]},
                            {"test": ["images/wb1.jpg", "images.csv", "README.md", "LICENSE", "classes.txt"]},
                            {"lyn", "emp"}, 0, "camera",
                            {"written": True, "problems": []})
    assert good.sealed and good.counts_add_up and not good.files_that_differ and not good.label_leaks
    bad = release_findings(manifest, "abc", "def", {"a": "1", "b": "2"}, {"a": "9"}, {"train": 2, "test": 2},
                           {"train": ["1.jpg"], "test": ["images/wb1.jpg"]},
                           {"test": ["images/wb1.jpg", "lyn/wb2.jpg", "labels/wb1.txt", "lyn/README.md"]},
                           {"lyn", "emp"}, 1, "image",
                           {"written": False, "problems": ["no coordinates"]})
    assert not bad.sealed and bad.files_that_differ == ["a", "b"] and not bad.counts_add_up
    assert bad.label_leaks == ["test.zip: lyn/wb2.jpg", "test.zip: labels/wb1.txt", "test.zip: lyn/README.md",
                               "test.zip: entries are not in public-id order"] and not bad.leaks_block


def test_release_facts_read_what_they_know_and_name_what_is_missing():
    from wildbench_assets.lib.releases import ReleaseFacts

    facts = ReleaseFacts(release="r", cut_at="2026-11-28T00:00:00Z", labels_fingerprint="", code_version="1",
                         detector="d", label_threshold=0.2, split_by="camera", split_seed=0, burst_rules={},
                         class_names=["sus"], max_distance=2)
    text = facts.to_json()
    assert ReleaseFacts.from_json(text) == facts
    assert ReleaseFacts.from_json(text.replace('"release": "r"', '"release": "r", "later_fact": 1')) == facts
    with pytest.raises(ValueError, match="class_names"):
        ReleaseFacts.from_json(text.replace('"class_names": [\n  "sus"\n ],', ''))


def test_a_cut_keeps_every_earlier_release_s_hidden_labels_hidden():
    """The cross-release rule at its own seam: a train burst that gained an earlier frame (a new sequence
    key, held out as test_seen) stays public; a public image of an earlier unseen test camera or hidden
    sequence is withheld; what is left has no conflict."""
    from wildbench_assets.lib.releases import CutRecord, cross_release_conflicts, keep_hidden_labels_hidden

    def row(path, split, camera, at):
        return {"path": path, "split": split, "camera": camera, "captured_at": at, "sha256": path * 32}

    earlier = CutRecord("r1", pd.DataFrame([
        row("a1", "train", "A", "2024-01-01T10:00:30"), row("a2", "train", "A", "2024-01-01T10:01:00"),
        row("b1", "test", "B", "2024-01-01T10:00:00"), row("c1", "test_seen", "C", "2024-01-02T10:00:00"),
        row("c2", "train", "C", "2024-01-03T10:00:00")]), "camera", "2026-01-01T00:00:00Z")
    new = pd.DataFrame([
        row("a0", "test_seen", "A", "2024-01-01T10:00:00"), row("a1", "test_seen", "A", "2024-01-01T10:00:30"),
        row("a2", "test_seen", "A", "2024-01-01T10:01:00"), row("b2", "train", "B", "2024-02-01T10:00:00"),
        row("c1x", "val", "C", "2024-01-02T10:01:00"), row("c2", "train", "C", "2024-01-03T10:00:00"),
        row("d1", "test", "D", "2024-01-03T10:00:00")])
    found = cross_release_conflicts(new, "camera", [earlier]).set_index("path")
    assert sorted(found.index) == ["a0", "a1", "a2", "b2", "c1x"]
    assert "unseen test camera" in found.reason["b2"] and "hidden sequence" in found.reason["c1x"]
    kept, summary = keep_hidden_labels_hidden(new, "camera", [earlier])
    assert dict(zip(kept.path, kept.split)) == {"a0": "train", "a1": "train", "a2": "train", "c2": "train",
                                                "d1": "test"}
    assert summary["kept_public"]["images"] == 3 and summary["withheld"]["images"] == 2
    assert cross_release_conflicts(kept, "camera", [earlier]).empty
    # A by-image split (the thesis profile) leaks bursts by design: its test labels are not secret. It is
    # bound by the others (withholds their hidden images), binds none, and its own published tests are counted.
    thesis = CutRecord("t", pd.DataFrame([row("c2", "test", "C", "2024-01-03T10:00:00")]), "image", "2026")
    assert cross_release_conflicts(new[new.path == "c2"], "camera", [thesis]).empty
    as_thesis = new.assign(split=["test", "test", "train", "train", "val", "test", "train"])
    kept, summary = keep_hidden_labels_hidden(as_thesis, "image", [earlier])
    assert dict(zip(kept.path, kept.split)) == {"a0": "test", "a1": "test", "a2": "train", "c2": "test",
                                                "d1": "train"}
    assert summary["withheld"]["images"] == 2 and summary["test_labels_published_elsewhere"] == 2
    # Its datasheet counts its test images per species and park, so they are as good as published: an image
    # another release hides is withheld from its test set too (before: kept there, only counted) ...
    leaking = pd.concat([as_thesis, pd.DataFrame([row("b1", "test", "B", "2024-01-01T10:00:00")])],
                        ignore_index=True)
    kept, summary = keep_hidden_labels_hidden(leaking, "image", [earlier])
    assert "b1" not in set(kept.path) and summary["withheld_from_test"] == 1
    assert cross_release_conflicts(kept, "image", [earlier]).binding.sum() == 0
    # ... and a later release may not hide one of its test images.
    later = cross_release_conflicts(pd.DataFrame([row("c2", "test_seen", "C", "2024-01-03T10:00:00")]), "camera",
                                    [thesis])
    assert list(later.path) == ["c2"] and later.binding.all()


def test_public_ids_are_keyed_per_release():
    from wildbench_assets.lib.releases import new_id_key, public_ids

    digests = pd.Series(["ab" * 32, "ab" * 32, "cd" * 32])
    one, two = public_ids(digests, new_id_key()), public_ids(digests, new_id_key())
    assert one[1] == one[0] + "-2" and not set(one) & set(two)
    assert not set(one) & {"wb" + d[:16] for d in digests}
