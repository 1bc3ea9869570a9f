"""Benchmark releases: frozen byte for byte, hidden test labels, a leak audit that catches a planted
near-duplicate, and a Camtrap DP package that validates."""

import io
import json
import shutil
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
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
def released(demo_archive, tmp_path_factory):
    """A copy of the demo archive (tests add images to it), labelled, and release 2026.11 cut from it."""
    root = tmp_path_factory.mktemp("releases")
    archive = root / "archive"
    shutil.copytree(demo_archive, archive, symlinks=True)
    instance = dg.DagsterInstance.ephemeral()
    result = _cut(archive, root / "data", instance, "2026.11")
    assert result.success
    return archive, root / "data", instance


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
    assert sorted(names) == sorted(["images.csv", *(f"images/{p}.jpg" for p in test_rows.public_id)])
    assert names[:-1] == sorted(names[:-1])  # public-id order: the path order would group them by species
    assert list(listing.columns) == ["public_id", "file", "width", "height"]  # no park, species, camera, path
    species = set(Taxonomy().species_codes)
    assert not [n for n in names if set(n.replace(".", "/").split("/")) & species]
    truth = json.loads((folder / "hidden" / "truth.coco.json").read_text())
    assert sorted(i["public_id"] for i in truth["images"] if i["test_set"] == "test") == sorted(listing.public_id)
    with zipfile.ZipFile(folder / "downloads" / "train.zip") as archive:  # train keeps its labels
        assert any(n.endswith(".txt") for n in archive.namelist())


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
        build_package(manifest, Taxonomy(), "r", "2026-01-01T00:00:00Z")


def test_the_release_command_cuts_verifies_and_cuts_only_on_change(demo_archive, tmp_path):
    """`wildbench release` as an operator runs it: labels brought up to date, the month's release cut;
    a second cut of the same name refused; --verify rebuilds it; --if-changed does nothing when nothing
    changed."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home"), "WILDBENCH_DATA": str(tmp_path / "data"),
           "WILDBENCH_DETECTOR": "manifest"}
    wildbench = [str(Path(sys.executable).parent / "wildbench"), "release", "--archive", str(demo_archive)]

    def run(*extra):
        return subprocess.run([*wildbench, *extra], env=env, capture_output=True, text=True, timeout=600)

    cut = run("--name", "2026.11")
    assert cut.returncode == 0, cut.stderr[-2000:]
    assert "release 2026.11 cut" in cut.stdout and (_release(tmp_path / "data", "2026.11") / "datasheet.md").exists()
    again = run("--name", "2026.11")
    assert again.returncode == 2 and "immutable" in again.stderr
    verified = run("--verify")
    assert verified.returncode == 0 and "reproduces byte for byte" in verified.stdout
    unchanged = run("--if-changed")
    assert unchanged.returncode == 0 and "unchanged since release 2026.11" in unchanged.stdout
    assert sorted(p.name for p in (tmp_path / "data" / "artifacts" / "releases").iterdir()) == ["2026.11"]


def test_release_findings_name_what_is_wrong():
    """The checks' logic at its own seam: a tampered file, a broken seal, counts that disagree, a leaking
    test download."""
    from wildbench_assets.lib.releases import release_findings

    manifest = pd.DataFrame({"split": ["train", "train", "test"]})
    good = release_findings(manifest, "abc", None, {"a": "1"}, None, None,
                            {"train": ["x/y/1.jpg", "x/y/2.jpg", "x/y/1.txt"], "test": ["images/wb1.jpg"]},
                            {"test": ["images/wb1.jpg", "images.csv"]}, {"lyn", "emp"}, 0, "camera",
                            {"written": True, "problems": []})
    assert good.sealed and good.counts_add_up and not good.files_that_differ and not good.label_leaks
    bad = release_findings(manifest, "abc", "def", {"a": "1", "b": "2"}, {"a": "9"}, {"train": 2, "test": 2},
                           {"train": ["1.jpg"], "test": ["images/wb1.jpg"]},
                           {"test": ["images/wb1.jpg", "lyn/wb2.jpg", "labels/wb1.txt"]}, {"lyn", "emp"}, 1, "image",
                           {"written": False, "problems": ["no coordinates"]})
    assert not bad.sealed and bad.files_that_differ == ["a", "b"] and not bad.counts_add_up
    assert bad.label_leaks == ["test.zip: lyn/wb2.jpg", "test.zip: labels/wb1.txt",
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
