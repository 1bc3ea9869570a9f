"""Hostile archives, killed runs and broken submissions: every outcome is correct data or a named failure."""

import json
import math
import os
import signal
import subprocess
import sys
import time
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from wildbench_assets.cli import main
from wildbench_assets.lib.zips import ZipMember, write_zip
from wildbench_assets.resources.archive import LocalArchive, NotARegularFile
from wildbench_assets.resources.atomic import atomic_file
from wildbench_assets.resources.inbox import RequestInbox
from wildbench_assets.sensors import new_inbox_files

from .helpers import run_all
from .test_living_archive import _demo_images, _place
from .test_scoring import TRUTH, md_predictions, run_score

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SECRET = "db-password=hunter2"


@pytest.fixture
def archive_with_links(tmp_path):
    """Real demo photos plus: a link to a JPEG outside the archive, a link to a secret text file, a
    dangling link, a FIFO and a linked folder."""
    archive, outside = tmp_path / "archive", tmp_path / "outside"
    outside.mkdir()
    images = _demo_images(5, seed=11)
    day = datetime.now(UTC) - timedelta(days=1)
    _place(archive, images[:4], day, "a")
    (outside / "foreign.jpg").write_bytes(images[4].data)
    (outside / "secret.txt").write_text(SECRET)
    folder = archive / "snieves" / "capi" / "C01"
    folder.mkdir(parents=True, exist_ok=True)
    os.symlink(outside / "foreign.jpg", folder / "foreign.jpg")
    os.symlink(outside / "secret.txt", folder / "secret.jpg")
    os.symlink(outside / "nowhere.jpg", folder / "dangling.jpg")
    os.mkfifo(folder / "pipe.jpg")
    os.symlink(outside, archive / "snieves" / "capi" / "C09")
    return archive


def test_links_and_special_files_are_rows_never_read(archive_with_links, tmp_path):
    """An archive is a tree of regular files: links (to images, to secrets, dangling, to folders) and
    FIFOs are listed as `not a regular file`, never opened, never followed, never published."""
    store = LocalArchive(archive_with_links)
    listed = {o.key: o.kind for o in store.list()}  # a dangling link or a FIFO must not stop the listing
    assert listed["snieves/capi/C01/dangling.jpg"] == "symbolic link"
    assert listed["snieves/capi/C01/pipe.jpg"] == "special file"
    assert listed["snieves/capi/C09"] == "symbolic link"  # a linked folder is not walked into
    for key in ("snieves/capi/C01/secret.jpg", "snieves/capi/C01/pipe.jpg", "snieves/capi/C09/secret.txt",
                "../outside/secret.txt"):
        with pytest.raises((NotARegularFile, FileNotFoundError)):
            store.read(key)

    instance, outcome = run_all(archive_with_links, tmp_path / "data", selection=[
        "raw_images", "image_metadata", "curated_images", "benchmark_splits", "detection_labels", "split_archives"],
        detector="manifest")
    assert not outcome.get("failure"), outcome
    meta = pd.read_parquet(tmp_path / "data" / "image_metadata")
    links = meta[meta.path.str.contains("foreign|secret|dangling|pipe|C09")]
    assert len(links) == 5 and set(links.status) == {"not a regular file"}
    assert (links.bytes_read == 0).all()
    logs = " ".join(str(e) for run in instance.get_runs() for e in instance.all_logs(run.run_id))
    assert SECRET not in logs and SECRET not in meta.to_string()
    splits = pd.read_parquet(tmp_path / "data" / "benchmark_splits")
    assert not splits.path.str.contains("foreign|secret").any()
    for zip_path in (tmp_path / "data" / "artifacts" / "archives").glob("*.zip"):
        assert not any("foreign" in n for n in zipfile.ZipFile(zip_path).namelist())


def test_sd_card_folders_do_not_merge_cameras(tmp_path):
    """`D01/100RECNX/` and `D02/100RECNX/` are two cameras: same-second frames of one species in both
    are not a burst of one camera."""
    archive = tmp_path / "archive"
    image = _demo_images(1, seed=2)[0]
    for camera in ("D01", "D02"):
        target = archive / "donana" / "lyn" / camera / "100RECNX" / "IMG_0001.JPG"
        target.parent.mkdir(parents=True)
        target.write_bytes(image.data)
    run_all(archive, tmp_path / "data", selection=["raw_images", "image_metadata", "curated_images"])
    curated = pd.read_parquet(tmp_path / "data" / "curated_images")
    assert sorted(curated.camera) == ["donana/D01/100RECNX", "donana/D02/100RECNX"]


def test_a_park_folder_that_cannot_be_a_partition_key_is_skipped(tmp_path, monkeypatch, capsys):
    archive = tmp_path / "archive"
    _place(archive, _demo_images(2, seed=4), datetime.now(UTC), "a")
    bad = archive / "bad|park" / "sus" / "C1"
    bad.mkdir(parents=True)
    (bad / "x.jpg").write_bytes(b"\xff\xd8")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("WILDBENCH_DATA", str(tmp_path / "data"))
    code = main(["run", "--archive", str(archive), "--select", "raw_images,image_metadata"])  # in process
    err = capsys.readouterr().err
    assert code == 0, err[-2000:]
    assert "'bad|park'/ skipped" in err
    with dg.DagsterInstance.from_config(str(tmp_path / "home")) as instance:
        assert instance.get_dynamic_partitions("parks") == ["snieves"]


def test_inbox_files_moved_in_with_old_mtimes_are_still_new(tmp_path):
    """The inbox sensors track what they started, not the newest time: `mv`/`cp -p`/`rsync -a` keep an
    old mtime, and the request must still run; an answered request is not started again."""
    inbox = RequestInbox(uri=str(tmp_path))
    store = inbox.open()
    store.write("first.json", b"{}")
    files, cursor = new_inbox_files(store, None, (".json",), 5)
    assert [f[0] for f in files] == ["first"]
    store.write("old.json", b"{}")
    past = time.time() - 30 * 86400
    os.utime(tmp_path / "old.json", (past, past))
    files, cursor = new_inbox_files(store, cursor, (".json",), 5)
    assert [f[0] for f in files] == ["old"]
    assert new_inbox_files(store, cursor, (".json",), 5)[0] == []  # started, not again
    inbox.write_json("old.result.json", {"status": "done"})
    files, cursor = new_inbox_files(store, cursor, (".json",), 5)
    assert files == [] and "old" not in json.loads(cursor)["started"]


@pytest.mark.parametrize("request_id", ["../../etc/passwd", "..", "a/b", ""])
def test_request_status_and_fetch_refuse_crafted_ids(tmp_path, monkeypatch, capsys, request_id):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("WILDBENCH_DATA", str(tmp_path / "data"))
    for action in ("status", "fetch"):
        assert main(["request", action, "--id", request_id]) == 2
        assert "request rejected" in capsys.readouterr().err


def test_fetch_refuses_a_result_that_points_outside(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("WILDBENCH_DATA", str(tmp_path / "data"))
    (tmp_path / "secret.zip").write_bytes(b"PK")
    inbox = tmp_path / "data" / "requests"
    inbox.mkdir(parents=True)
    (inbox / "r1.result.json").write_text(json.dumps({"zip": str(tmp_path / "secret.zip")}))
    assert main(["request", "fetch", "--id", "r1", "--dest", str(tmp_path / "out.zip")]) == 2
    assert "refusing" in capsys.readouterr().err and not (tmp_path / "out.zip").exists()


def _md_with(conf) -> dict:
    doc = md_predictions()
    doc["images"][0]["detections"][0]["conf"] = conf
    return doc


@pytest.mark.parametrize("predictions, message", [
    (_md_with(math.nan), "not a number in [0, 1]"),
    (_md_with(-0.2), "not a number in [0, 1]"),
    (_md_with(1.5), "not a number in [0, 1]"),
    ({"images": [{"detections": []}], "detection_categories": {"1": "sus"}}, "missing key"),
    ({"images": "nope", "detection_categories": {"1": "sus"}}, "not in any accepted shape"),
    ([{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3], "score": 0.5}], "bbox"),
    ([1, 2, 3], "COCO results entries need"),
    ({"images": [], "detection_categories": []}, "not in any accepted shape"),
])
def test_malformed_submissions_are_named_never_a_traceback(tmp_path, capsys, predictions, message):
    payload = json.dumps(predictions).replace("NaN", "NaN")  # json.dumps writes NaN, as careless tools do
    code, err = run_score(tmp_path, capsys, TRUTH, payload)
    assert code == 2 and message in err and "Traceback" not in err


def test_binary_submission_is_rejected(tmp_path, capsys):
    (tmp_path / "truth.json").write_text(json.dumps(TRUTH))
    (tmp_path / "pred.json").write_bytes(bytes(range(256)) * 4)
    code = main(["score", "--truth", str(tmp_path / "truth.json"), "--predictions", str(tmp_path / "pred.json")])
    assert code == 2 and "not UTF-8" in capsys.readouterr().err


def test_prod_without_its_environment_says_what_is_missing(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WILDBENCH", "AWS_"))}
    env.update({"WILDBENCH_DEPLOYMENT": "prod", "DAGSTER_HOME": str(tmp_path)})
    done = subprocess.run([str(BIN / "wildbench"), "run"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "WILDBENCH_ARCHIVE" in done.stderr and "Traceback" not in done.stderr
    assert not Path("WILDBENCH_ARCHIVE").exists()


def test_zips_are_byte_identical_across_runs(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"\xff\xd8 not really a jpeg \xff\xd9")
    members = [ZipMember("p/s/a.jpg", source="a.jpg"), ZipMember("p/s/a.txt", text="0 0.5 0.5 0.1 0.1\n")]
    for name in ("one.zip", "two.zip"):
        write_zip(str(tmp_path / name), members, lambda key: open(tmp_path / key, "rb"))
        time.sleep(1.1)  # a second apart: entry times would differ if they were taken from the clock
    assert (tmp_path / "one.zip").read_bytes() == (tmp_path / "two.zip").read_bytes()


def test_temp_files_of_a_killed_writer_are_swept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".wb-tmp-{dead.stdout.strip()}-abc.zip"
    stale.write_bytes(b"half a zip")
    mine = tmp_path / f".wb-tmp-{os.getpid()}-live.zip"
    mine.write_bytes(b"being written")
    with atomic_file(tmp_path / "train.zip") as tmp:
        tmp.write_bytes(b"whole")
    assert not stale.exists() and mine.exists() and (tmp_path / "train.zip").read_bytes() == b"whole"


_ZIP_WRITER = """
import sys, time, io
from pathlib import Path
from wildbench_assets.lib.zips import ZipMember, write_zip
from wildbench_assets.resources.atomic import atomic_file

folder, delay = Path(sys.argv[1]), float(sys.argv[2])

class Slow(io.BytesIO):
    def read(self, size=-1):
        time.sleep(delay)  # a slow object store: the kill lands mid-write
        return super().read(min(size, 4096) if size and size > 0 else 4096)

members = [ZipMember(f"p/s/{i}.jpg", source=str(i)) for i in range(200)]
with atomic_file(folder / "test.zip") as tmp:
    write_zip(str(tmp), members, lambda key: Slow(bytes(range(256)) * 64))
"""


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGINT])
def test_a_zip_write_killed_midway_leaves_no_zip_and_the_rerun_cleans_up(tmp_path, signum):
    """A writer killed inside a ZIP write never leaves `test.zip` (half or whole) and its temp is gone
    once the next writer in the folder finishes: SIGINT removes it at once, SIGKILL at the next write."""
    # 0.05 s a 4 KiB read: a whole write takes ~40 s, so the kill lands mid-write even on a loaded machine
    writer = subprocess.Popen([sys.executable, "-c", _ZIP_WRITER, str(tmp_path), "0.05"], cwd=ROOT)
    assert _wait_until(lambda: any(p.stat().st_size > 0 for p in tmp_path.glob(".wb-tmp-*")), 60)
    writer.send_signal(signum)
    writer.wait(30)
    assert not (tmp_path / "test.zip").exists()
    if signum == signal.SIGINT:
        assert writer.returncode != 0 and not list(tmp_path.glob(".wb-tmp-*"))
    else:
        assert list(tmp_path.glob(".wb-tmp-*"))  # what a SIGKILL leaves, until the next write
    subprocess.run([sys.executable, "-c", _ZIP_WRITER, str(tmp_path), "0"], cwd=ROOT, check=True)
    assert not list(tmp_path.glob(".wb-tmp-*"))
    with zipfile.ZipFile(tmp_path / "test.zip") as archive:
        assert archive.testzip() is None and len(archive.namelist()) == 200


def test_a_failed_blocking_check_leaves_the_last_good_table(demo_archive, tmp_path):
    """Splits re-made with another seed leak against the stored ones: the check fails, the step fails
    naming it, and the stored table is the good one, not the leaking one."""
    instance, _ = run_all(demo_archive, tmp_path, config_by_asset={"benchmark_splits": {"seed": 1, "by": "image"}})
    before = (tmp_path / "benchmark_splits" / "train.parquet").read_bytes()
    _, outcome = run_all(demo_archive, tmp_path, instance=instance, selection=["benchmark_splits"], force=True,
                         config_by_asset={"benchmark_splits": {"by": "image", "seed": 2}})
    assert outcome["failure"]
    assert (tmp_path / "benchmark_splits" / "train.parquet").read_bytes() == before
    failed = next(r for r in instance.get_runs() if r.status == dg.DagsterRunStatus.FAILURE)
    [step] = instance.all_logs(failed.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    assert "blocking checks failed: splits_disjoint" in step.dagster_event.step_failure_data.error.to_string()
    # Its evaluations name the split they judged and mark no materialization: the stored one was not judged.
    judged = [e.dagster_event.event_specific_data
              for e in instance.all_logs(failed.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)]
    disjoint = next(e for e in judged if e.check_name == "splits_disjoint")
    assert not disjoint.passed and disjoint.metadata["written"].value is False
    assert {e.partition for e in judged} == {failed.tags["dagster/partition"]}
    assert all(e.target_materialization_data is None for e in judged)


def _start_run(archive: Path, tmp_path: Path, detector: str, select: str):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home"), "WILDBENCH_DATA": str(tmp_path / "data"),
           "WILDBENCH_DETECTOR": detector}
    log = open(tmp_path / f"run-{time.monotonic_ns()}.log", "w")
    process = subprocess.Popen([str(BIN / "wildbench"), "run", "--archive", str(archive), "--select", select],
                               env=env, stdout=log, stderr=subprocess.STDOUT)
    return process, env


def _wait_until(predicate, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.services
def test_sigkill_during_labelling_then_the_rerun_resumes_and_cleans_up(demo_archive, tmp_path):
    """SIGKILL mid-labelling: the next `wildbench run` marks the orphaned run failed (the queue is not
    held forever), resumes from the boxes already cached, and leaves no temp file behind."""
    select = "raw_images,image_metadata,curated_images,benchmark_splits,detection_labels"
    process, env = _start_run(demo_archive, tmp_path, "mdlite", select)
    cache = tmp_path / "data" / "label_cache"
    assert _wait_until(lambda: any(cache.rglob("*.parquet")), 300), "no label checkpoint was written"
    process.send_signal(signal.SIGKILL)
    process.wait(30)
    kept = {path for segment in cache.rglob("*.parquet") for path in pd.read_parquet(segment, columns=["path"]).path}
    with dg.DagsterInstance.from_config(str(tmp_path / "home")) as instance:
        orphaned = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
        assert orphaned
    done = subprocess.run([str(BIN / "wildbench"), "run", "--archive", str(demo_archive), "--select", select],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "left STARTED by a killed wildbench process" in done.stderr
    with dg.DagsterInstance.from_config(str(tmp_path / "home")) as instance:
        assert not instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
        # the killed run's claim on the detector's pool is released with it, not only after a timeout
        assert orphaned[0].run_id not in instance.event_log_storage.get_concurrency_info("gpu").active_run_ids
        records = instance.fetch_materializations(dg.AssetKey("detection_labels"), limit=10).records
        # the killed run may have recorded a whole split before the kill; only what the rerun computed counts
        rerun = [r for r in records if r.run_id != orphaned[0].run_id]
        inferences = sum(r.asset_materialization.metadata["inferences"].value for r in rerun)
        labelled = pd.read_parquet(tmp_path / "data" / "detection_labels")
        assert kept and inferences <= len(labelled) - len(kept)  # what the killed run computed was not redone
    assert not [p for p in (tmp_path / "data").rglob(".wb-tmp-*")]


@pytest.mark.services
def test_ctrl_c_stops_the_whole_run(demo_archive, tmp_path):
    """Ctrl-C while the detector labels the first split: the process exits 130 at once, the other splits
    are not labelled, and no run is left STARTED."""
    select = "raw_images,image_metadata,curated_images,benchmark_splits,detection_labels"
    process, _ = _start_run(demo_archive, tmp_path, "mdlite", select)
    train = tmp_path / "data" / "benchmark_splits" / "train.parquet"
    assert _wait_until(train.exists, 240)  # the same run labels the train split next (~10 s on this CPU)
    time.sleep(2)
    process.send_signal(signal.SIGINT)
    assert process.wait(60) == 130
    with dg.DagsterInstance.from_config(str(tmp_path / "home")) as instance:
        assert len(instance.get_materialized_partitions(dg.AssetKey("detection_labels"))) < 3
        assert not instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))


def test_a_jpeg_cut_inside_its_scan_is_a_failed_image_not_a_grey_half(tmp_path):
    """A JPEG cut inside its scan data with an end marker appended passes the header check, but the
    labelling stage decodes every pixel strictly and marks it failed (Pillow alone fills it grey)."""
    import io

    import numpy as np
    from PIL import Image

    from wildbench_assets.resources.detector import DetectorResource

    pixels = (np.random.default_rng(0).random((240, 320, 3)) * 255).astype("uint8")
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
    whole = buffer.getvalue()
    (tmp_path / "whole.jpg").write_bytes(whole)
    (tmp_path / "cut.jpg").write_bytes(whole[: len(whole) // 2] + b"\xff\xd9")
    Image.open(tmp_path / "cut.jpg").load()  # Pillow alone does not object
    detector = DetectorResource(backend="manifest").load({})
    results = {r.key: r for r in detector.run(["whole.jpg", "cut.jpg"], LocalArchive(tmp_path).read)}
    assert results["whole.jpg"].failure is None
    assert "corrupt JPEG data" in results["cut.jpg"].failure


def test_restored_files_with_new_mtimes_are_not_counted_twice(tmp_path):
    """A restore (`cp -r`) gives every file a new mtime, so a new arrival day: the day the files left is
    re-ingested as empty, and curation sees each image once."""
    archive, data = tmp_path / "archive", tmp_path / "data"
    images = _demo_images(4, seed=8)
    keys = _place(archive, images, datetime.now(UTC) - timedelta(days=3), "a")
    instance, outcome = run_all(archive, data, selection=["raw_images", "image_metadata", "curated_images"])
    assert not outcome.get("failure")
    now = time.time()
    for key in keys:
        os.utime(archive / key, (now, now))
    _, outcome = run_all(archive, data, instance=instance, selection=["raw_images", "image_metadata",
                                                                       "curated_images"])
    assert not outcome.get("failure"), outcome
    raw = pd.read_parquet(data / "raw_images")
    assert len(raw) == len(keys) and raw.path.is_unique
    curated = pd.read_parquet(data / "curated_images")
    assert curated.path.is_unique and set(curated.path) <= set(keys)


@pytest.mark.services
def test_two_concurrent_runs_on_one_data_folder_both_succeed_with_whole_outputs(demo_archive, tmp_path):
    """Two `wildbench run`s at once on one instance and data folder: both succeed, every table reads,
    every ZIP verifies, and no temp file is left (each output is published by rename)."""
    select = "raw_images,image_metadata,curated_images,benchmark_splits,detection_labels,split_archives"
    first, env = _start_run(demo_archive, tmp_path, "manifest", select)
    second, _ = _start_run(demo_archive, tmp_path, "manifest", select)
    assert first.wait(600) == 0 and second.wait(600) == 0
    data = tmp_path / "data"
    for asset in ("raw_images", "image_metadata", "curated_images", "benchmark_splits", "detection_labels"):
        assert len(pd.read_parquet(data / asset)) > 0
    splits = pd.read_parquet(data / "benchmark_splits")
    unseen = splits[splits.split != "test_seen"]  # test_seen shares cameras with train by design
    assert splits.path.is_unique and (unseen.groupby("group").split.nunique() == 1).all()
    for name in ("train", "val", "test"):
        with zipfile.ZipFile(data / "artifacts" / "archives" / f"{name}.zip") as archive:
            assert archive.testzip() is None
    assert not list(data.rglob(".wb-tmp-*"))


# --- issue 18, item 7: every failure answered, named, never a traceback ---------------------------------


@pytest.mark.parametrize("threshold", ["nan", "inf", "-0.1", "1.5"])
def test_a_threshold_outside_0_1_is_refused_not_printed_as_invalid_json(tmp_path, capsys, threshold):
    (tmp_path / "truth.json").write_text(json.dumps(TRUTH))
    (tmp_path / "pred.json").write_text(json.dumps(md_predictions()))
    code = main(["score", "--truth", str(tmp_path / "truth.json"), "--predictions", str(tmp_path / "pred.json"),
                 f"--threshold={threshold}"])
    out = capsys.readouterr()
    assert code == 2 and "threshold" in out.err and "[0, 1]" in out.err and out.out == ""


def test_a_megadetector_file_that_lists_an_image_twice_is_refused(tmp_path, capsys):
    """A second entry for the same file would silently replace the first one's detections (COCO results
    may repeat an image: those are several boxes)."""
    doc = md_predictions()
    doc["images"].append({"file": doc["images"][0]["file"], "detections": []})
    code, err = run_score(tmp_path, capsys, TRUTH, doc)
    assert code == 2 and "appears twice" in err and doc["images"][0]["file"] in err


@pytest.mark.parametrize("url", ["file:///{secret}", "http://elsewhere.example/b/data/artifacts/requests/r1.zip",
                                 "ftp://127.0.0.1:9/b/data/artifacts/requests/r1.zip",
                                 "http://127.0.0.1:9/b/data/artifacts/requests/other.zip"])
def test_fetch_follows_only_a_link_to_the_requests_zip_on_the_configured_endpoint(tmp_path, monkeypatch, capsys,
                                                                                  url):
    """A result file's `url` is followed only to this request's ZIP on the configured S3 endpoint over
    http(s): a `file://` result (or another host, scheme or object) is refused and nothing is copied."""
    secret = tmp_path / "shadow"
    secret.write_text(SECRET)
    inbox = tmp_path / "requests"
    inbox.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("WILDBENCH_DATA", "s3://b/data")
    monkeypatch.setenv("WILDBENCH_REQUESTS", str(inbox))
    monkeypatch.setenv("WILDBENCH_S3_ENDPOINT_URL", "http://127.0.0.1:9")
    (inbox / "r1.result.json").write_text(json.dumps({"status": "done", "url": url.format(secret=secret)}))
    target = tmp_path / "out.zip"
    assert main(["request", "fetch", "--id", "r1", "--dest", str(target)]) == 2
    assert "refusing" in capsys.readouterr().err and not target.exists()
    # the store's own link is followed (here nothing listens on the endpoint: a named download failure)
    (inbox / "r1.result.json").write_text(json.dumps(
        {"status": "done", "url": "http://127.0.0.1:9/b/data/artifacts/requests/r1.zip?X-Amz-Signature=x"}))
    assert main(["request", "fetch", "--id", "r1", "--dest", str(target)]) == 1
    assert "download failed" in capsys.readouterr().err


@pytest.mark.parametrize("name, value, message", [
    ("WILDBENCH_DEPLOYMENT", "production", "WILDBENCH_DEPLOYMENT='production' is not one of local, prod"),
    ("WILDBENCH_ARRIVALS_INTERVAL_S", "often", "WILDBENCH_ARRIVALS_INTERVAL_S='often' is not a whole number"),
    ("WILDBENCH_S3_ENDPOINT_URL", "key:secret@minio", "WILDBENCH_S3_ENDPOINT_URL is not an http(s)"),
    ("WILDBENCH_RELEASE_CRON", "monthly", "WILDBENCH_RELEASE_CRON='monthly' is not a cron expression"),
    ("WILDBENCH_DOWNLOAD_EXPIRY_S", "-5", "WILDBENCH_DOWNLOAD_EXPIRY_S='-5' is not a whole number"),
])
def test_an_invalid_setting_is_one_line_naming_the_variable(tmp_path, name, value, message):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home"), "WILDBENCH_DATA": str(tmp_path / "data"),
           name: value}
    done = subprocess.run([str(BIN / "wildbench"), "run", "--archive", str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and message in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "secret" not in done.stderr


def test_the_portal_in_prod_without_its_environment_refuses_to_start(tmp_path):
    """As `wildbench run` does: exit 2 naming what is missing, instead of serving 200s and 500s."""
    from .services import free_port

    env = {k: v for k, v in os.environ.items() if not k.startswith(("WILDBENCH", "AWS_"))}
    env.update({"WILDBENCH_DEPLOYMENT": "prod", "DAGSTER_HOME": str(tmp_path)})
    done = subprocess.run([str(BIN / "wildbench"), "portal", "--port", str(free_port())], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "WILDBENCH_DATA" in done.stderr and "Traceback" not in done.stderr


def test_a_corrupt_instance_database_is_named(tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    (home / "history").mkdir(parents=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    (home / "history" / "runs.db").write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 16)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("WILDBENCH_DATA", str(tmp_path / "data"))
    (tmp_path / "archive").mkdir()
    assert main(["run", "--archive", str(tmp_path / "archive")]) == 2
    err = capsys.readouterr().err
    assert "cannot be read" in err and str(home / "history" / "runs.db") in err and "Traceback" not in err


def test_a_corrupt_parquet_file_is_named(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WILDBENCH_DATA", str(tmp_path / "data"))
    table = tmp_path / "data" / "raw_images" / "donana"
    table.mkdir(parents=True)
    (table / "2024-03-01.parquet").write_bytes(b"PAR1 garbage, not a table")
    assert main(["summary"]) == 2
    err = capsys.readouterr().err
    assert f"{table / '2024-03-01.parquet'} is not a readable Parquet file" in err and "Traceback" not in err


def test_a_step_reading_a_corrupt_parquet_partition_fails_naming_it(tmp_path, monkeypatch, capsys):
    """`wildbench run` prints why a run failed: the step and the file it could not read."""
    archive, data = tmp_path / "archive", tmp_path / "data"
    _place(archive, _demo_images(4, seed=3), datetime.now(UTC) - timedelta(days=1), "a")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("WILDBENCH_DATA", str(data))
    assert main(["run", "--archive", str(archive), "--select", "raw_images,image_metadata"]) == 0
    [partition] = sorted((data / "image_metadata").rglob("*.parquet"))
    partition.write_bytes(b"PAR1 not a table any more")
    capsys.readouterr()
    assert main(["run", "--archive", str(archive), "--select", "curated_images"]) == 1
    err = capsys.readouterr().err
    assert f"{partition} is not a readable Parquet file" in err and "curated_images" in err


def _jpeg_claiming(width: int, height: int) -> bytes:
    """A small JPEG whose header claims width x height (a decompression bomb's shape: nothing to decode)."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), "green").save(buffer, "JPEG")
    data = bytearray(buffer.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5: sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


def test_portal_uploads_are_capped_in_pixels_before_any_decoding(tmp_path):
    """A 144-megapixel photo is refused by its header (413), and so are photos that add up to too many
    pixels in one request; neither is decoded."""
    from fastapi.testclient import TestClient

    from wildbench_assets.portal.app import MAX_PIXELS_PER_REQUEST, create_app

    from .helpers import pipeline_defs

    token = "t0ken"
    client = TestClient(create_app(pipeline_defs(tmp_path / "archive", tmp_path / "data"), token=token))
    auth = {"Authorization": f"Bearer {token}"}
    huge = client.post("/api/inference", headers=auth,
                       files={"files": ("huge.jpg", _jpeg_claiming(12000, 12000), "image/jpeg")})
    assert huge.status_code == 413 and "12000x12000" in huge.json()["error"]
    side = int((MAX_PIXELS_PER_REQUEST / 3) ** 0.5)  # each photo allowed, three together too many
    many = [("files", (f"{i}.jpg", _jpeg_claiming(side, side), "image/jpeg")) for i in range(4)]
    refused = client.post("/api/inference", headers=auth, files=many)
    assert refused.status_code == 413 and "per request" in refused.json()["error"]


def test_inbox_requests_that_are_not_utf8_too_deep_or_links_are_answered(fresh_world, tmp_path):
    """Each such request ends with `<id>.error.json` giving the reason; a link is never followed (the
    valid request it points to is not run)."""
    instance = fresh_world.instance()
    data = fresh_world.data
    inbox, outside = tmp_path / "inbox", tmp_path / "outside.json"
    inbox.mkdir()
    (inbox / "latin1.json").write_bytes('{"species": ["sus"], "note": "Doñana"}'.encode("latin-1"))
    (inbox / "deep.json").write_bytes(b"[" * 100_000 + b"]" * 100_000)
    outside.write_text(json.dumps({"species": ["sus"], "limit": 2}))
    os.symlink(outside, inbox / "linked.json")
    defs = fresh_world.defs(inbox=inbox)
    result = defs.resolve_sensor_def("custom_export_requests")(
        dg.build_sensor_context(instance=instance, resources=defs.resources))
    assert sorted(r.partition_key for r in result.run_requests) == ["deep", "latin1", "linked"]
    for request in result.dynamic_partitions_requests:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    job = defs.resolve_job_def("custom_export_job")
    reasons = {"latin1": "not UTF-8 text (byte 32", "deep": "nested too deeply", "linked": "not a regular file"}
    for request_id, reason in reasons.items():
        run = job.execute_in_process(instance=instance, partition_key=request_id, raise_on_error=False)
        assert not run.success
        assert reason in json.loads((inbox / f"{request_id}.error.json").read_text())["error"]
    assert not (inbox / "linked.result.json").exists() and not (data / "artifacts" / "requests" / "linked.zip").exists()


def test_ctrl_c_during_release_exits_130(demo_archive, tmp_path):
    """Ctrl-C while `wildbench release` brings its inputs up to date: exit 130 (a stopped command), not 1
    (a failure), and no release is cut."""
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home"), "WILDBENCH_DATA": str(tmp_path / "data"),
           "WILDBENCH_DETECTOR": "mdlite"}
    with open(tmp_path / "release.log", "w") as log:
        process = subprocess.Popen([str(BIN / "wildbench"), "release", "--archive", str(demo_archive),
                                    "--name", "c1"], env=env, stdout=log, stderr=subprocess.STDOUT)
        assert _wait_until((tmp_path / "data" / "raw_images").exists, 240)
        time.sleep(1)
        process.send_signal(signal.SIGINT)
        assert process.wait(120) == 130, (tmp_path / "release.log").read_text()[-3000:]
    assert not (tmp_path / "data" / "artifacts" / "releases" / "c1").exists()


LONG = 246  # characters of a file name: with the published name's 11-character prefix, past NAME_MAX (255)


@pytest.fixture(scope="module")
def hostile_release(demo_archive, tmp_path_factory):
    """A release cut (`wildbench release`) from the demo archive with every Doñana file renamed to a
    246-character name and every Sierra de las Nieves empty scene cut inside its scan data (an end
    marker appended, so its header reads whole): (archive, data folder, cut paths, exit code)."""
    import io
    import shutil

    root = tmp_path_factory.mktemp("hostile-release")
    archive, data = root / "archive", root / "data"
    shutil.copytree(demo_archive, archive)
    (archive / "manifest.json").unlink()  # species and cameras from the folders, for the renamed files too
    for path in sorted((archive / "donana").rglob("*.jpg")):
        stamp = path.stat()
        target = path.with_name(path.stem.rjust(LONG - 4, "x") + ".jpg")
        path.rename(target)
        os.utime(target, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    cut = []
    for path in sorted((archive / "snieves" / "emp").rglob("*.jpg")):
        whole = path.read_bytes()
        stamp = path.stat()
        path.write_bytes(whole[: len(whole) // 2] + b"\xff\xd9")
        os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
        cut.append(path.relative_to(archive).as_posix())
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DAGSTER_HOME", str(root / "home"))
        env.setenv("WILDBENCH_DATA", str(data))
        env.setenv("WILDBENCH_DETECTOR", "mdlite")
        env.setattr(sys, "stdout", io.StringIO())  # the run's table of steps: not the test's output
        code = main(["release", "--archive", str(archive), "--name", "h1"])
    return archive, data, cut, code


def test_a_246_character_file_name_is_published_shortened_and_extracts(hostile_release, tmp_path):
    """The release is cut and every download extracts (the published name keeps the path digest, the
    name's start and its suffix within 120 bytes); the manifest keeps the archive path."""
    _archive, data, _cut, code = hostile_release
    assert code == 0
    release = data / "artifacts" / "releases" / "h1"
    manifest = pd.read_csv(release / "manifest.csv")
    long_paths = [p for p in manifest.path if len(p.rsplit("/", 1)[1]) == LONG]
    assert long_paths and set(manifest.split[manifest.path.isin(long_paths)]) & {"train", "val"}
    for download in sorted((release / "downloads").glob("*.zip")):
        with zipfile.ZipFile(download) as archive:
            archive.extractall(tmp_path / download.stem)  # OSError (name too long) before the fix
            assert all(len(n.rsplit("/", 1)[-1].encode()) <= 120 for n in archive.namelist())
    assert any(len(p.name) > 100 for p in (tmp_path / "train").rglob("*.jpg"))


def test_a_truncated_empty_scene_is_a_failed_label_never_published(hostile_release):
    """Empties are not inferred on, but they are published, so each is decoded strictly: a cut one is a
    failed row of detection_labels with its reason and is in no release file."""
    _archive, data, cut, code = hostile_release
    assert code == 0
    labels = pd.read_parquet(data / "detection_labels")
    failed = labels[labels.path.isin(cut)]
    assert len(failed) and (failed.label_status == "failed").all()
    assert failed.failure.str.contains("corrupt JPEG data").all()
    manifest = pd.read_csv(data / "artifacts" / "releases" / "h1" / "manifest.csv")
    assert not set(manifest.path) & set(cut) and (manifest.species == "emp").any()


# --- issue 18, item 8: releases on real photos ------------------------------------------------------------


@pytest.mark.slow
def test_a_release_of_real_photos_without_capture_times_is_cut_without_camtrap_dp(tmp_path, capsys, samples):
    """Real photos often reach an archive with their EXIF stripped (7 of the 11 samples): undated images
    cannot be Camtrap DP media, and a package with no media has no temporal coverage either, which the
    profile requires. The release is cut; Camtrap DP is left out with the reason (a warning), not written
    invalid (a blocking failure that refused the whole release)."""
    from .helpers import latest_checks

    archive = tmp_path / "archive"
    for folder, name in (("snieves/ovar/C11", "snieves-sheep-ovar.jpg"), ("snieves/vul/C12", "cfz-01.jpg"),
                         ("snieves/vul/C12", "cfz-02.jpg"), ("donana/lyn/D11", "dzf-01.jpg"),
                         ("donana/lyn/D11", "dzf-02.jpg"), ("donana/cer/D12", "missed-bird.jpg"),
                         ("donana/cer/D13", "tegu.jpg")):
        (archive / folder).mkdir(parents=True, exist_ok=True)
        (archive / folder / name).write_bytes((samples / name).read_bytes())
    home = tmp_path / "home"
    env = {"DAGSTER_HOME": str(home), "WILDBENCH_DATA": str(tmp_path / "data"), "WILDBENCH_DETECTOR": "mdlite"}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        code = main(["release", "--archive", str(archive), "--name", "real1"])
    out = capsys.readouterr()
    assert code == 0, out.err[-3000:]
    assert "warnings: camtrap_dp_valid" in out.out
    release = tmp_path / "data" / "artifacts" / "releases" / "real1"
    manifest = pd.read_csv(release / "manifest.csv", keep_default_na=False)
    assert (manifest.split.isin(["train", "val"]) & (manifest.captured_at == "")).any()
    assert not (release / "camtrap-dp").exists()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        check = latest_checks(instance, "benchmark_release")["camtrap_dp_valid"][-1]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert "capture time" in json.dumps(check.metadata["problems"].value)
