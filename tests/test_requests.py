"""Custom dataset requests: validation, and a request end to end through the sensor and a real run."""

import json
import os
import zipfile

import dagster as dg
import pandas as pd
import pytest

from wildbench_assets.cli import main
from wildbench_assets.lib.dataset_requests import RequestError, parse_spec, request_id_of, select_images
from wildbench_assets.taxonomy import Taxonomy

from .helpers import pipeline_defs, run_all

TAX = Taxonomy()


def spec(**raw):
    return parse_spec(raw, TAX.species_codes, TAX.park_codes)


@pytest.mark.parametrize("raw, message", [
    ({"species": ["sus", "unicorn"]}, "unknown species"),
    ({"parks": ["yellowstone"]}, "unknown parks"),
    ({"start_date": "2024-13-01"}, "not a date"),
    ({"start_date": "2024-05-02", "end_date": "2024-05-01"}, "after end_date"),
    ({"limit": 0}, "limit"),
    ({"offset": -3}, "offset"),
    ({"formats": ["tfrecord"]}, "unknown formats"),
    ({"colour": "red"}, "unknown fields"),
    ({"include_empties": "yes"}, "include_empties"),
])
def test_malformed_requests_say_what_is_wrong(raw, message):
    with pytest.raises(RequestError, match=message):
        spec(**raw)


def test_selection_filters_orders_and_pages():
    t0 = pd.Timestamp("2024-03-01")
    curated = pd.DataFrame({
        "path": [f"p{i}" for i in range(6)], "park": ["snieves", "donana"] * 3,
        "species": ["sus", "sus", "vul", "emp", "sus", "cer"],
        "captured_at": [t0 + pd.Timedelta(days=d) for d in (5, 1, 2, 3, 4, 0)],
        "camera": [f"c{i}" for i in range(6)],
    })
    assert list(select_images(curated, spec(species=["sus"])).path) == ["p1", "p4", "p0"]
    assert list(select_images(curated, spec(species=["sus"], offset=1, limit=1)).path) == ["p4"]
    assert list(select_images(curated, spec(parks=["donana"], include_empties=True)).path) == ["p5", "p1", "p3"]
    assert list(select_images(curated, spec(start_date="2024-03-03", end_date="2024-03-05")).path) == ["p2", "p4"]
    hidden = curated.iloc[[4]].assign(split="test_seen")
    assert list(select_images(curated, spec(species=["sus"]), [hidden]).path) == ["p1", "p0"]
    with pytest.raises(RequestError, match="no image matches"):
        select_images(curated, spec(species=["lyn"]))
    assert request_id_of("req-1.json") == "req-1" and request_id_of("req-1.result.json") is None


def test_requests_withhold_test_cameras_and_hidden_sequences_whole():
    """Not only the hidden images: every image of an unseen test camera (its empties look exactly like its
    hidden images), every frame of a hidden sequence — also one added since, that opens the burst — for
    the current splits and each release alike; a camera that is also public in that set stays requestable."""
    from wildbench_assets.lib.dataset_requests import withheld_mask

    t0 = pd.Timestamp("2024-03-01 06:00")
    at = [t0, t0 + pd.Timedelta(seconds=30), t0 + pd.Timedelta(hours=5), t0 - pd.Timedelta(seconds=40),
          t0 + pd.Timedelta(days=2), t0, t0 + pd.Timedelta(days=1), pd.NaT, pd.NaT]
    images = pd.DataFrame({
        "path": [f"p{i}" for i in range(9)],
        "camera": ["seen", "seen", "seen", "seen", "seen", "unseen", "unseen", "seen", "other"],
        "captured_at": at,
    })
    release = pd.DataFrame({  # as a manifest holds it: strings, "" when undated
        "split": ["train", "test_seen", "test", "val"], "path": ["p4", "p0", "p5", "p8"],
        "camera": ["seen", "seen", "unseen", "other"],
        "captured_at": [str(at[4]).replace(" ", "T"), str(t0).replace(" ", "T"), str(t0).replace(" ", "T"), ""],
    })
    withheld = withheld_mask(images, [release])
    # p0 hidden, p1 its burst, p3 an earlier frame of it; p5/p6 the unseen camera (p6 never selected)
    assert list(images.path[withheld]) == ["p0", "p1", "p3", "p5", "p6"]
    current = pd.DataFrame({"split": ["test", "train"], "path": ["p7", "p2"], "camera": ["seen", "seen"],
                            "captured_at": [pd.NaT, at[2]]})  # split by sequence: a test burst of a seen camera
    assert list(images.path[withheld_mask(images, [release, current])]) == ["p0", "p1", "p3", "p5", "p6", "p7"]
    assert not withheld_mask(images, []).any()
    # a burst whose first frame (named by the manifest's sequence key) lies beyond one gap of its selected ones
    start = t0 - pd.Timedelta(seconds=200)
    opener = pd.concat([images, pd.DataFrame({"path": ["p9"], "camera": ["seen"], "captured_at": [start]})],
                       ignore_index=True)
    keyed = release.assign(sequence=["seen@x", f"seen@{start:%Y-%m-%dT%H:%M:%S}", "unseen@x", "other@undated"])
    assert "p9" not in set(opener.path[withheld_mask(opener, [release])])
    assert "p9" in set(opener.path[withheld_mask(opener, [keyed])])


def test_request_file_through_sensor_and_run(world_copy, tmp_path, monkeypatch, capsys):
    # The world's copy: its instance knows the parks the curated tables come from. Requests hand out only
    # train/val images, never one a release hides.
    instance, data = world_copy.instance(), world_copy.data
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    defs = world_copy.defs(inbox=inbox)
    sensor = defs.resolve_sensor_def("custom_export_requests")
    (inbox / "boar-2024.json").write_text(json.dumps({"parks": ["snieves"], "species": ["sus"], "limit": 5,
                                                      "formats": ["yolo", "voc", "coco"]}))
    (inbox / "unicorns.json").write_text(json.dumps({"species": ["unicorn"]}))

    context = dg.build_sensor_context(instance=instance, resources=defs.resources)
    result = sensor(context)
    assert sorted(r.partition_key for r in result.run_requests) == ["boar-2024", "unicorns"]
    assert len({r.run_key for r in result.run_requests}) == 2
    for request in result.dynamic_partitions_requests:  # what the daemon does with the sensor's result
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    again = sensor(dg.build_sensor_context(instance=instance, resources=defs.resources, cursor=result.cursor))
    assert not again.run_requests  # nothing new: the second tick starts nothing

    job = defs.resolve_job_def("custom_export_job")
    ok = job.execute_in_process(instance=instance, partition_key="boar-2024", raise_on_error=False)
    assert ok.success
    answer = json.loads((inbox / "boar-2024.result.json").read_text())
    assert answer["status"] == "done" and 1 <= answer["images"] <= 5
    assert answer["selected"] == 5 and answer["images"] + sum(answer["dropped"].values()) == 5
    assert answer["summary"].startswith(f"5 images selected, {answer['images']} packed")
    monkeypatch.setenv("WILDBENCH_REQUESTS", str(inbox))
    monkeypatch.setenv("WILDBENCH_DATA", str(data))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    capsys.readouterr()
    assert main(["request", "status", "--id", "boar-2024"]) == 0
    said = capsys.readouterr()
    assert json.loads(said.out)["summary"] == answer["summary"] and answer["summary"] in said.err
    with zipfile.ZipFile(answer["zip"]) as zf:
        names = zf.namelist()
        manifest = json.loads(zf.read("manifest.json"))
    images = [n for n in names if n.endswith(".jpg")]
    assert images and all(n.startswith("snieves/sus/") for n in images)
    assert {n[:-4] for n in names if n.endswith(".txt")} == {n[:-4] for n in names if n.endswith(".xml")}
    assert "coco.json" in names and manifest["limit"] == 5

    # The request replaced by another (its file copied in with an older mtime): its content is new, it runs.
    answered = sensor(dg.build_sensor_context(instance=instance, resources=defs.resources, cursor=again.cursor))
    assert not answered.run_requests
    replaced = inbox / "boar-2024.json"
    replaced.write_text(json.dumps({"parks": ["snieves"], "species": ["sus"], "limit": 3}))
    os.utime(replaced, (1_600_000_000, 1_600_000_000))
    rerun_tick = sensor(dg.build_sensor_context(instance=instance, resources=defs.resources, cursor=answered.cursor))
    assert [r.partition_key for r in rerun_tick.run_requests] == ["boar-2024"]
    assert rerun_tick.run_requests[0].run_key not in {r.run_key for r in result.run_requests}
    assert job.execute_in_process(instance=instance, partition_key="boar-2024", raise_on_error=False).success
    assert json.loads((inbox / "boar-2024.result.json").read_text())["images"] == 3
    replaced.write_text(json.dumps({"parks": ["snieves"], "species": ["sus"], "limit": 5,
                                    "formats": ["yolo", "voc", "coco"]}))
    assert job.execute_in_process(instance=instance, partition_key="boar-2024", raise_on_error=False).success

    bad = job.execute_in_process(instance=instance, partition_key="unicorns", raise_on_error=False)
    assert not bad.success
    error = json.loads((inbox / "unicorns.error.json").read_text())["error"]
    assert "unknown species ['unicorn']" in error
    assert "unknown species" in bad.get_step_failure_events()[0].step_failure_data.error.message

    # Re-execution needs no config: the first run stored the spec.
    (inbox / "boar-2024.json").unlink()
    (inbox / "boar-2024.result.json").unlink()
    rerun = job.execute_in_process(instance=instance, partition_key="boar-2024", raise_on_error=False)
    assert rerun.success and json.loads((inbox / "boar-2024.result.json").read_text())["images"] == answer["images"]


def test_a_replaced_request_runs_again_whatever_its_mtime(tmp_path):
    """The requests sensor follows content, not times: a request answered, then replaced by one whose file
    carries an older mtime (`cp -p`, `rsync -a`), is started again (once); an unchanged one never is."""
    from wildbench_assets.resources.inbox import RequestInbox
    from wildbench_assets.sensors import custom_export_requests

    inbox = RequestInbox(uri=str(tmp_path))
    instance = dg.DagsterInstance.ephemeral()

    def tick(cursor=None):
        return custom_export_requests(dg.build_sensor_context(instance=instance, cursor=cursor,
                                                              resources={"inbox": inbox}))

    (tmp_path / "deer.json").write_text(json.dumps({"species": ["cer"]}))
    first = tick()
    assert [r.partition_key for r in first.run_requests] == ["deer"]
    inbox.write_json("deer.result.json", {"request": "deer", "status": "done"})  # what the run answers
    answered = tick(first.cursor)
    assert not answered.run_requests and not tick(answered.cursor).run_requests

    (tmp_path / "deer.json").write_text(json.dumps({"species": ["cer", "sus"]}))
    os.utime(tmp_path / "deer.json", (1_600_000_000, 1_600_000_000))  # older than its answer
    replaced = tick(answered.cursor)
    assert [r.partition_key for r in replaced.run_requests] == ["deer"]
    assert replaced.run_requests[0].run_key != first.run_requests[0].run_key
    assert not tick(replaced.cursor).run_requests  # started: not twice
    inbox.write_json("deer.result.json", {"request": "deer", "status": "done"})
    assert not tick(tick(replaced.cursor).cursor).run_requests


def test_the_launchpad_config_and_the_request_schema_are_one():
    """`ExportRequest` (the launchpad's form) offers exactly the fields a request file may hold, plus the
    label threshold: a field added to one and not the other fails here, not in a user's hands."""
    from wildbench_assets.config import ExportRequest
    from wildbench_assets.lib.dataset_requests import FIELDS

    assert set(ExportRequest.model_fields) - {"label_threshold"} == FIELDS


def _request_labels(rows):
    """Label rows of (path, park, species, boxes or None for a failed image)."""
    from wildbench_assets.lib.labels import label_row

    box = {"category": "1", "conf": 0.9, "bbox": [0.1, 0.1, 0.2, 0.2]}
    return pd.DataFrame([label_row({"path": path, "park": park, "species": species}, [box] * (boxes or 0),
                                   None if boxes is not None else "corrupt", 0.5)
                         for path, park, species, boxes in rows])


def test_the_live_count_says_how_many_already_labelled_images_would_be_left_out():
    from wildbench_assets.lib.dataset_requests import LEFT_OUT_NOTE, left_out_estimate

    labels = _request_labels([("a", "donana", "sus", 2), ("b", "donana", "sus", 0), ("c", "donana", "sus", 0),
                              ("z", "donana", "sus", 0)])
    selected = pd.DataFrame({"path": ["a", "b", "c", "new"]})
    estimate = left_out_estimate(selected, labels)
    assert estimate["labels_known"] == 3 and estimate["would_be_left_out"] == 2  # z is not selected, new unknown
    assert estimate["note"].startswith("Of the 3 of these images already labelled, 2 would be left out "
                                       "(2 no animal box from the detector)") and LEFT_OUT_NOTE in estimate["note"]
    unknown = left_out_estimate(selected, labels.iloc[:0])
    assert unknown["labels_known"] == 0 and unknown["note"].startswith("No labels computed yet")


def test_export_findings_compare_the_pack_with_the_request():
    from wildbench_assets.lib.dataset_requests import export_findings

    labels = _request_labels([("a", "donana", "sus", 2), ("b", "donana", "sus", 0), ("c", "donana", "emp", 0),
                              ("d", "donana", "sus", None)])
    request = spec(parks=["donana"], species=["sus"], include_empties=True, limit=4)
    names = ["donana/sus/a.jpg", "donana/sus/a.txt", "donana/emp/c.jpg", "manifest.json"]
    found = export_findings(labels, 4, request, names, None)
    assert (found.images, found.left_out) == (2, 2)  # no box, failed
    assert found.matches_request and found.counts_add_up and found.expected_label_files == 1
    # the result says what was selected, packed and dropped, and why
    outcome = found.outcome()
    assert outcome["selected"] == 4 and outcome["images"] == 2
    assert outcome["dropped"] == {"no animal box from the detector": 1, "unreadable image": 1,
                                  "byte-identical to an image the benchmark hides": 0}
    assert outcome["summary"] == ("4 images selected, 2 packed, 2 left out (1 no animal box from the detector, "
                                  "1 unreadable image)")
    assert not export_findings(labels, 5, request, names, None).counts_add_up  # a selected image unaccounted for

    assert not export_findings(labels, 4, spec(parks=["donana"], species=["sus"]), names, None).matches_request
    assert not export_findings(labels, 4, spec(parks=["snieves"], include_empties=True), names, None).matches_request
    assert not export_findings(labels, 5, request, names, None).matches_request  # more than the limit
    assert not export_findings(labels, 4, request, names[:1], None).counts_add_up  # a label file missing
    voc_only = export_findings(labels, 4, spec(include_empties=True, formats=["voc"]), names[:1], "bad CRC")
    assert voc_only.counts_add_up and voc_only.expected_label_files == 0 and voc_only.zip_problem == "bad CRC"


def test_requests_hand_out_only_assigned_images_never_a_hidden_copy_and_record_what_they_hand_out(
        fresh_world, tmp_path):
    """Before: a request handed out images the nightly splits had not placed yet (a new camera: tonight's
    unseen test camera), a byte-identical copy of a release's hidden image at another path, and left no
    trace of what it published, so a later release could hide it. Now the new camera's images are withheld
    (the result says why), the copy is left out with its reason, and the hand-out is recorded where the
    release cut's cross-release rule reads it."""
    import hashlib
    import io
    from datetime import UTC, datetime, timedelta

    from PIL import Image

    from wildbench_assets.lib import releases as rel
    from wildbench_assets.lib.dataset_requests import COPY_OF_HIDDEN, DROP_REASONS, NOT_ASSIGNED
    from wildbench_assets.lib.demo_archive import exif_bytes
    from wildbench_assets.resources.release_writer import cut_records
    from wildbench_assets.summary import read_table

    from .test_releases import _add_with_boxes

    archive, data, inbox = fresh_world.archive, fresh_world.data, tmp_path / "inbox"
    inbox.mkdir()
    instance = fresh_world.instance()
    splits = read_table(data, "benchmark_splits")
    train = splits[(splits.split == "train") & (splits.park == "snieves") & (splits.species == "sus")]
    train = train.sort_values("path")
    original = train.path.iloc[0]
    photo = (archive / original).read_bytes()
    # A cut release hides a byte-identical copy of `original` (at another path): `original` must not go out.
    hidden_copy = pd.DataFrame([{"public_id": "wb0", "split": "test", "path": "snieves/sus/ELSEWHERE/copy.jpg",
                                 "sha256": hashlib.sha256(photo).hexdigest(), "park": "snieves", "camera": "ELSEWHERE",
                                 "sequence": "", "captured_at": "", "species": "sus", "width": 1, "height": 1,
                                 "label_status": "labelled", "boxes": "[]"}])
    record = data / "artifacts" / "hidden" / "releases" / "r0"
    record.mkdir(parents=True)
    (record / "manifest.csv").write_bytes(rel.manifest_bytes(hidden_copy.reindex(columns=rel.MANIFEST_COLUMNS)))
    # A new camera arrives after tonight's splits: curated, but not assigned to any split yet.
    frames = []
    for i in range(3):  # hours apart: three bursts
        buffer = io.BytesIO()
        Image.open(archive / original).save(buffer, "JPEG", quality=90, exif=exif_bytes(
            datetime(2024, 5, 1, 6 + 3 * i), "RECONYX", "HC500 HYPERFIRE", "colon"))
        frames.append((f"snieves/sus/NEWCAM/new{i}.jpg", buffer.getvalue(), [("sus", [10.0, 10.0, 60.0, 40.0])]))
    _add_with_boxes(archive, "snieves", frames, datetime.now(UTC) - timedelta(hours=1))
    _instance, outcome = run_all(archive, data, instance, selection=["raw_images", "image_metadata", "curated_images"])
    assert not outcome.get("failure")
    assert read_table(data, "curated_images").path.str.contains("NEWCAM").sum() == 3

    defs = pipeline_defs(archive, data, detector="manifest", inbox=inbox)
    (inbox / "boar.json").write_text(json.dumps({"parks": ["snieves"], "species": ["sus"]}))
    job = defs.resolve_job_def("custom_export_job")
    instance.add_dynamic_partitions("requests", ["boar"])
    assert job.execute_in_process(instance=instance, partition_key="boar", raise_on_error=False).success
    answer = json.loads((inbox / "boar.result.json").read_text())
    with zipfile.ZipFile(answer["zip"]) as zf:
        packed = {n.rsplit("/", 1)[-1] for n in zf.namelist() if n.endswith(".jpg")}
        listed = json.loads(zf.read("manifest.json"))
    sources = {row["source"] for row in listed["images"]}
    assert packed and not any("NEWCAM" in p for p in sources) and original not in sources
    assert answer["withheld"][NOT_ASSIGNED] == 3 and "3 not yet assigned to train or val" in answer["summary"]
    assert answer["dropped"][DROP_REASONS[COPY_OF_HIDDEN]] == 1
    assert hashlib.sha256(photo).hexdigest() not in {row["sha256"] for row in listed["images"]}

    # What it handed out is recorded, and a release cut honours it as published with labels.
    handed = [r for r in cut_records(defs.resources["artifacts"], "next") if r.release == "request boar"]
    assert len(handed) == 1 and len(handed[0].manifest) == len(packed) == answer["images"]
    out = handed[0].manifest
    moved = out.iloc[:1].assign(split="test_seen")
    conflicts = rel.cross_release_conflicts(moved, "camera", handed)
    assert list(conflicts.path) == [out.path.iloc[0]] and conflicts.binding.all()
