"""training_datasets and split_archives for real on the demo archive (manifest boxes: ground truth)."""

import json
import zipfile

import pytest
import yaml

from wildbench_assets.lib.datasets import read_back_yolo
from wildbench_assets.lib.labels import image_id
from wildbench_assets.lib.zips import ZipMember, verify_zip, write_zip
from wildbench_assets.summary import read_table

from .helpers import latest_checks, run_all


@pytest.fixture(scope="module")
def exported(demo_archive, tmp_path_factory):
    data = tmp_path_factory.mktemp("exported")
    instance, outcome = run_all(demo_archive, data, selection=None, detector="manifest")
    assert not outcome.get("failure"), outcome
    return instance, data


def test_yolo_voc_coco_datasets(exported):
    instance, data = exported
    root = data / "artifacts" / "datasets"
    spec = yaml.safe_load((root / "dataset.yaml").read_text())
    assert spec["names"][19] == "ovar" and len(spec["names"]) == 24 and spec["train"] == "train/images"
    labels = read_table(data, "detection_labels")
    for split in ("train", "val", "test"):
        rows = labels[(labels.split == split) & labels.label_status.isin(["labelled", "empty"])]
        images = sorted(p.name for p in (root / split / "images").iterdir())
        assert images == sorted(image_id(p) for p in rows.path)
        labelled = rows[rows.label_status == "labelled"]
        assert len(list((root / split / "labels").iterdir())) == len(labelled)
        for row in labelled.itertuples():
            label_file = root / split / "labels" / (image_id(row.path).rsplit(".", 1)[0] + ".txt")
            lines = read_back_yolo(label_file.read_text())
            assert len(lines) == row.n_boxes and {c for c, _ in lines} == {row.class_index}
        coco = json.loads((root / split / "coco.json").read_text())
        assert len(coco["images"]) == len(rows) and len(coco["annotations"]) == labelled.n_boxes.sum()
    for name in ("files_present", "counts_add_up", "formats_agree"):
        assert all(e.passed for e in latest_checks(instance, "training_datasets")[name]), name


@pytest.mark.parametrize("split, zip_path", [("train", "archives/train.zip"),
                                             ("test", "hidden/test_labelled.zip")])
def test_split_zip_has_the_thesis_layout(exported, split, zip_path):
    instance, data = exported
    labels = read_table(data, "detection_labels")
    with zipfile.ZipFile(data / "artifacts" / zip_path) as zf:
        names = zf.namelist()
        manifest = json.loads(zf.read("manifest.json"))
        infos = {i.filename: i for i in zf.infolist()}
    rows = labels[(labels.split == split) & labels.label_status.isin(["labelled", "empty"])]
    expected = {f"{r.park}/{r.species}/{image_id(r.path)}" for r in rows.itertuples()}
    assert {n for n in names if n.endswith(".jpg")} == expected
    empties = rows[rows.species == "emp"]
    for r in empties.itertuples():  # no label file for empties
        assert f"{r.park}/emp/{image_id(r.path).rsplit('.', 1)[0]}.txt" not in names
    assert all(infos[n].compress_type == zipfile.ZIP_STORED for n in expected)
    assert manifest["split"] == split and len(manifest["images"]) == len(rows)
    for name in ("zip_verified", "counts_add_up", "public_test_has_no_labels", "images_stored"):
        assert all(e.passed for e in latest_checks(instance, "split_archives")[name]), name


@pytest.mark.parametrize("split", ["test", "test_seen"])
def test_the_public_test_zips_hold_images_and_a_list_but_no_label(exported, split):
    _instance, data = exported
    labels = read_table(data, "detection_labels")
    rows = labels[(labels.split == split) & labels.label_status.isin(["labelled", "empty"])]
    with zipfile.ZipFile(data / "artifacts" / "archives" / f"{split}.zip") as zf:
        names = zf.namelist()
        listing = zf.read("images.csv").decode().splitlines()
    assert listing[0] == "public_id,file,width,height" and len(listing) == len(rows) + 1
    assert sorted(n for n in names if n != "images.csv") == sorted(f"images/{line.split(',')[0]}.jpg"
                                                                   for line in listing[1:])
    assert not [n for n in names if n.endswith((".txt", ".xml", ".json"))]


def test_zip_verification_catches_damage(tmp_path):
    source = tmp_path / "a.jpg"
    source.write_bytes(b"\xff\xd8" + bytes(range(256)) * 64 + b"\xff\xd9")
    target = tmp_path / "x.zip"
    names = write_zip(str(target), [ZipMember("p/s/a.jpg", source="a.jpg"),
                                    ZipMember("p/s/a.txt", text="0 .5 .5 .1 .1\n")],
                      lambda key: open(tmp_path / key, "rb"))
    assert verify_zip(str(target), names) is None
    assert "entries differ" in verify_zip(str(target), names + ["p/s/b.jpg"])
    data = bytearray(target.read_bytes())
    data[200] ^= 0xFF  # flip a byte inside the stored image
    target.write_bytes(bytes(data))
    assert "CRC" in verify_zip(str(target), names)
