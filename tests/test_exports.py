"""training_datasets (of a release) and split_archives for real on the demo archive (manifest boxes:
ground truth)."""

import json
import zipfile

import pytest
import yaml
from dagster import AssetKey

from wildbench_assets.lib.datasets import read_back_yolo
from wildbench_assets.lib.labels import image_id
from wildbench_assets.lib.zips import ZipMember, verify_zip, write_zip
from wildbench_assets.summary import read_table

from .helpers import cut_release, latest_checks


@pytest.fixture(scope="module")
def exported(world_copy):
    """The demo world's copy: split_archives made, release 2026.11 cut and its training_datasets made."""
    instance = world_copy.instance()
    assert "2026.11" in instance.get_materialized_partitions(AssetKey("training_datasets"))
    return instance, world_copy.data


def test_yolo_voc_coco_datasets_of_a_release(exported):
    instance, data = exported
    root = data / "artifacts" / "datasets" / "2026.11"
    spec = yaml.safe_load((root / "dataset.yaml").read_text())
    assert spec["names"][19] == "ovar" and len(spec["names"]) == 24 and spec["train"] == "train/images"
    labels = read_table(data, "detection_labels")  # the release was cut from them: the same rows and boxes
    for split in ("train", "val"):
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
    assert not (root / "test").exists() and not (root / "test_seen").exists()  # test labels stay hidden
    for name in ("files_present", "counts_add_up", "formats_agree", "images_match_release"):
        assert all(e.passed for e in latest_checks(instance, "training_datasets")[name]), name


def test_a_release_image_changed_in_the_archive_fails_its_training_data(fresh_world):
    """The datasets of a release are its published bytes: an archive image overwritten after the cut
    fails `images_match_release`, and nothing of the split is published."""
    import shutil

    from wildbench_assets.lib.releases import read_manifest

    archive, data, instance, defs = fresh_world.archive, fresh_world.data, fresh_world.instance(), fresh_world.defs()
    assert cut_release(defs, instance, "2026.12").success  # a release whose datasets are not made yet
    manifest = read_manifest((data / "artifacts" / "releases" / "2026.12" / "manifest.csv").read_bytes())
    changed = archive / manifest[manifest.split == "train"].path.iloc[0]
    changed.unlink()  # (the copy's files may be links to the session's archive)
    shutil.copyfile(archive / manifest[manifest.split == "train"].path.iloc[1], changed)  # other bytes, same name
    result = defs.resolve_job_def("training_datasets_job").execute_in_process(instance=instance,
                                                                              partition_key="2026.12",
                                                                              raise_on_error=False)
    assert not result.success
    check = latest_checks(instance, "training_datasets")["images_match_release"][-1]
    assert not check.passed and check.metadata["images_whose_bytes_differ"].value == 1
    assert not (data / "artifacts" / "datasets" / "2026.12").exists()


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


def _split_labels():
    """Label rows of a split: a labelled image with two boxes, an empty, one without a box, a failed one."""
    import pandas as pd

    from wildbench_assets.lib.labels import label_row

    def image(path, species):
        return {"path": path, "park": "p1", "species": species, "class_index": 0 if species == "bos" else -1,
                "width": 200, "height": 100, "sha256": "0" * 64}

    boxes = [{"category": "1", "conf": 0.9, "bbox": [0.1, 0.1, 0.2, 0.3]},
             {"category": "1", "conf": 0.8, "bbox": [0.5, 0.4, 0.3, 0.3]}]
    return pd.DataFrame([label_row(image("c/a.jpg", "bos"), boxes, None, 0.5),
                         label_row(image("c/b.jpg", "emp"), [], None, 0.5),
                         label_row(image("c/c.jpg", "bos"), [], None, 0.5),
                         label_row(image("c/d.jpg", "bos"), None, "corrupt", 0.5)])


def _written(labels, names=("bos",)):
    """The files `write_training_split` writes for `labels`, as `read_training_split` returns them."""
    from wildbench_assets.lib import datasets as ds

    rows = ds.usable(labels).to_dict("records")
    labelled = [r for r in rows if r["label_status"] == "labelled"]
    return ds.WrittenSplit(
        image_bytes={f"images/{image_id(r['path'])}": 10 for r in rows},
        yolo_texts={f"labels/{ds.stem_of(r['path'])}.txt": ds.yolo_text(r) for r in labelled},
        voc_texts={f"voc/{ds.stem_of(r['path'])}.xml": ds.voc_text(r, list(names)) for r in labelled},
        coco=ds.coco_document(rows, list(names), "train"))


def test_dataset_findings_agree_on_faithful_files_and_catch_each_fault():
    from dataclasses import replace

    from wildbench_assets.lib.datasets import dataset_findings, stem_of

    labels = _split_labels()
    written = _written(labels)
    found = dataset_findings(labels, written)
    assert (found.images, found.labelled, found.empties, found.boxes) == (2, 1, 1, 2)
    assert found.left_out == {"no detection": 1, "failed": 1}
    assert found.missing == 0 and found.counts_add_up and found.disagreements == 0

    stem = stem_of("c/a.jpg")
    shifted = written.yolo_texts[f"labels/{stem}.txt"].replace("0 0.200000", "0 0.300000", 1)
    assert shifted != written.yolo_texts[f"labels/{stem}.txt"]
    assert dataset_findings(labels, replace(written, yolo_texts={f"labels/{stem}.txt": shifted})).disagreements == 1
    one_box_voc = replace(written, voc_texts={})  # VOC file lost: both boxes are missing from one format
    assert dataset_findings(labels, one_box_voc).disagreements == 2
    empty_image = replace(written, image_bytes={**written.image_bytes, f"images/{image_id('c/b.jpg')}": 0})
    assert dataset_findings(labels, empty_image).missing == 1
    extra_label = replace(written, yolo_texts={**written.yolo_texts, "labels/x.txt": "0 0.5 0.5 0.1 0.1\n"})
    assert not dataset_findings(labels, extra_label).counts_add_up
