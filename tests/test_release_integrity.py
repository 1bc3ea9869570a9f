"""Release integrity across releases, through `wildbench release` and the published folders as a researcher
reads them: no image hidden in one release is published with a label in another (another profile, a later
release), public test ids lead to no published digest, a burst that gains a frame stays where it was
published, and a release id means one content forever (a lost folder is rebuilt byte for byte)."""

import hashlib
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

from wildbench_assets.cli import main
from wildbench_assets.lib.demo_archive import exif_bytes
from wildbench_assets.lib.releases import is_image_name, read_manifest
from wildbench_assets.lib.splits import stable_unit

from .helpers import WORLD_RELEASE, WORLD_THESIS
from .test_releases import _add_with_boxes, _camera_in

DEFAULT, THESIS = WORLD_RELEASE, WORLD_THESIS


@pytest.fixture(scope="module")
def world(world_copy):
    """The demo world's copy: the default release 2026.11 cut from the demo archive, then its thesis-profile
    release 2026.11-thesis (tests add images and cut later releases in it)."""
    return world_copy.archive, world_copy.data, world_copy.env


@pytest.fixture
def release(world, monkeypatch):
    """`wildbench release ARGS...` against the world's instance: its exit code."""
    archive, _data, env = world
    for key, value in env.items():
        monkeypatch.setenv(key, value)

    def run(*args: str) -> int:
        return main(["release", "--archive", str(archive), *args])
    return run


def _folder(data: Path, name: str) -> Path:
    return data / "artifacts" / "releases" / name


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _pixels(data: bytes) -> str:
    return hashlib.sha256(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).tobytes()).hexdigest()


def _download(data: Path, name: str, split: str) -> dict[str, bytes]:
    """entry -> bytes of a release's public download."""
    with zipfile.ZipFile(_folder(data, name) / "downloads" / f"{split}.zip") as archive:
        return {n: archive.read(n) for n in archive.namelist()}


def _labelled_pixels(data: Path, name: str) -> set[str]:
    """The decoded pixels of every image a release publishes with a label (train and val ZIPs)."""
    return {_pixels(b) for split in ("train", "val") for n, b in _download(data, name, split).items()
            if is_image_name(n)}


def _hidden_pixels(data: Path, name: str) -> set[str]:
    return {_pixels(b) for split in ("test", "test_seen") for n, b in _download(data, name, split).items()
            if is_image_name(n)}


def _manifest(data: Path, name: str) -> pd.DataFrame:
    return read_manifest((_folder(data, name) / "manifest.csv").read_bytes())


def test_the_thesis_release_publishes_no_label_hidden_in_the_default_release(world):
    """The thesis profile splits the same images otherwise; before, 17 of the default release's 23 hidden
    test images were in its train/val ZIPs with their labels."""
    _archive, data, _env = world
    hidden, published = _hidden_pixels(data, DEFAULT), _labelled_pixels(data, THESIS)
    assert hidden and published and not hidden & published
    # Nor any frame of the default release's unseen test cameras or of its test_seen sequences (its record).
    default, thesis = _manifest(data, DEFAULT), _manifest(data, THESIS)
    public = thesis[thesis.split.isin(["train", "val"])]
    assert not public.camera.isin(default.camera[default.split == "test"]).any()
    assert not public.path.isin(default.path[default.split == "test_seen"]).any()
    sheet = json.loads((_folder(data, THESIS) / "datasheet.json").read_text())
    other = sheet["other_releases"]
    assert DEFAULT in other["compared_with"] and other["withheld"]["images"] > 0
    text = (_folder(data, THESIS) / "datasheet.md").read_text()
    assert f"{other['withheld']['images']} images hidden in another release" in text
    # The thesis's own leak (bursts in its train and its test) is still what it measures, and its datasheet
    # says its test labels are not secret (the default release publishes most of them).
    trained = set(thesis.sequence[thesis.split.isin(["train", "val"])])
    assert trained & set(thesis.sequence[thesis.split == "test"])
    assert other["test_labels_published_elsewhere"] > 0 and "test labels are not secret" in text


def _test_images(data: Path, name: str, splits=("test",)) -> list[bytes]:
    return [b for split in splits for n, b in _download(data, name, split).items() if is_image_name(n)]


def _no_thesis_test_image_is_hidden_in(data: Path, thesis: str, default: str) -> None:
    """No image of the thesis release's public test ZIP is byte-, pixel- or pHash-identical to one of the
    default release's hidden test images: the thesis datasheet's per-species test counts, less what the
    default release labels in train/val, would otherwise name their labels (notes/attack/thesis_residual)."""
    from wildbench_assets.lib.leak_audit import perceptual_hash

    hidden = _test_images(data, default, ("test", "test_seen"))
    shown = _test_images(data, thesis)
    assert hidden and shown
    assert not {hashlib.sha256(b).hexdigest() for b in hidden} & {hashlib.sha256(b).hexdigest() for b in shown}
    assert not {_pixels(b) for b in hidden} & {_pixels(b) for b in shown}
    hashes = [{h for b in images if (h := perceptual_hash(b)) is not None} for images in (hidden, shown)]
    assert hashes[0] and not hashes[0] & hashes[1]


def test_no_thesis_test_image_is_a_hidden_image_of_the_default_release(world):
    """Before, the thesis release's test ZIP held the default release's hidden test images, and its datasheet
    counted them per species and park: a residual attack labelled them. Now they are withheld from every split
    of the thesis release, and its datasheet says how many."""
    _archive, data, _env = world
    _no_thesis_test_image_is_hidden_in(data, THESIS, DEFAULT)
    other = json.loads((_folder(data, THESIS) / "datasheet.json").read_text())["other_releases"]
    assert other["withheld_from_test"] > 0
    assert f"{other['withheld_from_test']} test images hidden in another release are withheld" in \
        (_folder(data, THESIS) / "datasheet.md").read_text()


def test_public_test_ids_lead_to_no_published_digest(world):
    """Train/val ZIPs list their images' sha256; a test id that was a prefix of a content digest could be
    matched to any release's published digests. Ids are keyed per release with a secret never published."""
    _archive, data, _env = world
    digests = set()
    for name in (DEFAULT, THESIS):
        for split in ("train", "val"):
            listing = json.loads(_download(data, name, split)[f"annotations/manifest_{split}.json"])
            digests |= {row["sha256"] for row in listing["images"]}
    for name in (DEFAULT, THESIS):
        manifest = _manifest(data, name)
        hidden = manifest[manifest.split.isin(["test", "test_seen"])]
        ids = {n.split("/")[1].split(".")[0] for split in ("test", "test_seen")
               for n in _download(data, name, split) if is_image_name(n)}
        assert ids == set(hidden.public_id)
        assert not ids & {"wb" + d[:16] for d in digests | set(hidden.sha256)}
        published = b"".join(p.read_bytes() for p in _folder(data, name).rglob("*") if p.is_file()
                             and "hidden" not in p.parts)
        key = (data / "artifacts" / "hidden" / "releases" / name / "id_key").read_text().strip()
        assert len(key) == 64 and key.encode() not in published  # kept only in the hidden store
    assert not set(_manifest(data, DEFAULT).public_id) & set(_manifest(data, THESIS).public_id)


def test_a_lost_release_folder_is_rebuilt_byte_for_byte_never_re_cut(world, release, capsys):
    """`rm -rf releases/2026.11`, new images arrive, `wildbench release --name 2026.11`: the recorded cut comes
    back byte for byte (before: a different 2026.11 with the new images). Without its hidden record it fails,
    naming why."""
    archive, data, _env = world
    folder, record = _folder(data, DEFAULT), data / "artifacts" / "hidden" / "releases" / DEFAULT
    before, kept_record = _files(folder), _files(record)
    manifest = _manifest(data, DEFAULT)
    sample = manifest[(manifest.split == "train") & (manifest.label_status == "labelled")].iloc[0]
    camera = _camera_in("train", sample.park)
    photo = (archive / sample.path).read_bytes()
    key = f"{sample.park}/{sample.species}/{camera}/late_arrival.jpg"
    _add_with_boxes(archive, sample.park, [(key, photo, [(sample.species, [10.0, 10.0, 80.0, 60.0])])],
                    datetime.now(UTC) - timedelta(hours=3))
    try:
        shutil.rmtree(folder)
        capsys.readouterr()
        assert release("--name", DEFAULT) == 0
        assert "rebuilt byte for byte from its recorded cut" in capsys.readouterr().out
        assert _files(folder) == before

        shutil.rmtree(folder)  # an image it was cut from is overwritten in the archive: no rebuild from other bytes
        changed = archive / manifest[manifest.split == "test"].path.iloc[0]
        original = changed.read_bytes()
        changed.unlink()  # (the copy's files may be links to the session's archive)
        changed.write_bytes(photo)
        try:
            assert release("--name", DEFAULT) == 1
            assert "gone or changed in the archive" in capsys.readouterr().err and not folder.exists()
        finally:
            changed.write_bytes(original)

        shutil.rmtree(record)
        assert release("--name", DEFAULT) == 1
        err = capsys.readouterr().err
        assert "was cut" in err and "cannot be rebuilt" in err and "never cut again" in err
        assert not folder.exists()
    finally:
        for target, files in ((folder, before), (record, kept_record)):
            shutil.rmtree(target, ignore_errors=True)
            for name, content in files.items():
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                (target / name).write_bytes(content)


def _earlier_first_frame(manifest: pd.DataFrame) -> tuple[pd.Series, datetime]:
    """A train frame and a time shortly before its burst's first frame such that the burst, starting then,
    would be held out as test_seen (a new sequence key) by the default split plan."""
    train = manifest[(manifest.split == "train") & (manifest.label_status == "labelled")]
    for _sequence, rows in train.groupby("sequence"):
        first = rows.sort_values("captured_at").iloc[0]
        start = datetime.fromisoformat(first.captured_at)
        for gap in range(5, 100):
            when = start - timedelta(seconds=gap)
            if stable_unit(pd.Series([f"{first.camera}@{when:%Y-%m-%dT%H:%M:%S}"]), 0, salt="seen")[0] < 0.1:
                return first, when
    raise AssertionError("no train burst found")


def test_a_burst_that_gains_an_earlier_frame_stays_public_in_the_next_release(world, release, capsys):
    """One earlier frame added to a published train burst gives it a new sequence key that the split holds
    out as test_seen; the next release keeps it in train (its labels are public already), so none of its
    hidden images was published with a label before. Then a recorded cut that does hide a published burst
    (as older code cut it) is refused by the blocking cross-release check and nothing is published."""
    archive, data, _env = world
    cut = _manifest(data, DEFAULT)
    first, when = _earlier_first_frame(cut)
    photo = Image.open(archive / first.path)
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=90, exif=exif_bytes(when, "RECONYX", "HC500 HYPERFIRE", "colon"))
    folder = Path(first.path).parent.as_posix()
    key = f"{folder}/early_{when:%Y%m%d_%H%M%S}.jpg"
    boxes = [(first.species, [10.0, 10.0, 60.0, 40.0])]
    _add_with_boxes(archive, first.park, [(key, buffer.getvalue(), boxes)], datetime.now(UTC) - timedelta(hours=2))

    assert release("--name", "2026.12") == 0
    later = _manifest(data, "2026.12")
    burst = later[later.path.isin(cut.path[cut.sequence == first.sequence]) | (later.path == key)]
    assert key in set(burst.path) and set(burst.split) == {"train"}  # before: test_seen, in 2026.11's train.zip
    hidden = _hidden_pixels(data, "2026.12")
    assert hidden and not hidden & _labelled_pixels(data, DEFAULT)
    assert not hidden & _labelled_pixels(data, THESIS)
    other = json.loads((_folder(data, "2026.12") / "datasheet.json").read_text())["other_releases"]
    assert other["kept_public"]["images"] >= len(burst)

    # A recorded cut that hides that published burst (what the code before this cut): never published.
    records = data / "artifacts" / "hidden" / "releases"
    shutil.copytree(records / "2026.12", records / "2026.13")
    leaking = later.assign(split=np.where(later.path.isin(burst.path), "test_seen", later.split))
    facts = json.loads((records / "2026.12" / "release.json").read_text())
    (records / "2026.13" / "release.json").write_text(json.dumps({**facts, "release": "2026.13",
                                                                  "cut_at": "2099-01-01T00:00:00Z"}, indent=1))
    buffer = io.StringIO()
    leaking.to_csv(buffer, index=False, lineterminator="\n")
    (records / "2026.13" / "manifest.csv").write_bytes(buffer.getvalue().encode())
    capsys.readouterr()
    try:
        assert release("--name", "2026.13") == 1
        assert "hidden_labels_stay_hidden" in capsys.readouterr().err
        assert not _folder(data, "2026.13").exists()
    finally:
        shutil.rmtree(records / "2026.13")


def test_a_thesis_release_cut_first_leaves_the_default_release_whole(demo_archive, tmp_path, monkeypatch):
    """Cut in the other order, the thesis release withholds the benchmark's current test sets already, so
    the default release cut after it hides its whole test sets and moves nothing to train."""
    archive, data = tmp_path / "archive", tmp_path / "data"
    shutil.copytree(demo_archive, archive, symlinks=True)
    for key, value in {"DAGSTER_HOME": str(tmp_path / "home"), "WILDBENCH_DATA": str(data),
                       "WILDBENCH_DETECTOR": "manifest"}.items():
        monkeypatch.setenv(key, value)
    assert main(["release", "--archive", str(archive), "--name", "t0", "--profile", "thesis"]) == 0
    assert main(["release", "--archive", str(archive), "--name", "d0"]) == 0
    other = json.loads((_folder(data, "d0") / "datasheet.json").read_text())["other_releases"]
    assert other["compared_with"] == ["t0"] and other["kept_public"]["images"] == other["withheld"]["images"] == 0
    hidden = _hidden_pixels(data, "d0")
    assert len(hidden) >= 10 and not hidden & _labelled_pixels(data, "t0")
    _no_thesis_test_image_is_hidden_in(data, "t0", "d0")
