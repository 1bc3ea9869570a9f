"""The living archive: the daemon finds new trap images by itself, `wildbench run` does only what is
stale, tiny archives run end to end, and `wildbench predict` answers for photos on disk."""

import json
import os
import re
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from wildbench_assets.cli import main
from wildbench_assets.lib.demo_archive import generate_demo_archive
from wildbench_assets.partitions import park_day_key

from .helpers import cut_release, pipeline_defs, run_all
from .services import dagster_dev

ROOT = Path(__file__).resolve().parents[1]
TICK_S = 5  # the sensors' interval in the daemon test


def _demo_images(count: int, seed: int) -> list:
    """Real JPEGs of the demo generator (bad inputs and the manifest left out)."""
    normal = re.compile(r"^snieves/(?!emp/)[a-z]+/C\d\d/C\d\d_\d{8}_\d{6}\.jpg$")
    return [o for o in generate_demo_archive(events_per_camera=2, seed=seed) if normal.match(o.key)][:count]


def _place(archive: Path, objects, day: datetime, tag: str) -> list[str]:
    """Write objects under the archive as if they arrived on `day` (their mtime); file names tagged so
    days never collide."""
    keys = []
    stamp = day.timestamp()
    for obj in objects:
        key = obj.key.replace(".jpg", f"-{tag}.jpg")
        path = archive / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(obj.data)
        os.utime(path, (stamp, stamp))
        keys.append(key)
    return keys


def _materializations(instance, asset: str) -> dict[str, int]:
    """partition -> number of materializations of the asset."""
    records = instance.fetch_materializations(dg.AssetKey(asset), limit=10_000).records
    counts: dict[str, int] = {}
    for record in records:
        key = record.asset_materialization.partition
        counts[key] = counts.get(key, 0) + 1
    return counts


def _wait_for(predicate, timeout: float, what: str, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(2)
    raise AssertionError(f"timed out waiting for {what}; dagster dev log tail:\n{log.read_text()[-4000:]}")


@pytest.mark.services
def test_daemon_discovers_new_days_and_recomputes_only_what_changed(tmp_path, monkeypatch):
    """`dagster dev` (webserver + daemon), no CLI call: two days are discovered and ingested (in one run);
    a third day copied in is ingested alone, its park re-curated and the day predicted; a quiet tick
    requests nothing; a late file in an existing day re-ingests that day once."""
    archive, home = tmp_path / "archive", tmp_path / "home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    today = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    day1, day2 = today - timedelta(days=2), today - timedelta(days=1)
    images = _demo_images(8, seed=3)
    _place(archive, images[:3], day1, "a")
    _place(archive, images[3:5], day2, "b")
    env = {**os.environ, "DAGSTER_HOME": str(home), "WILDBENCH_DATA": str(tmp_path / "data"),
           "WILDBENCH_ARCHIVE": str(archive), "WILDBENCH_ARRIVALS_INTERVAL_S": str(TICK_S),
           "WILDBENCH_AUTOMATION_INTERVAL_S": str(TICK_S)}
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    log_path = tmp_path / "dagster-dev.log"
    key = {d: str(park_day_key("snieves", d.strftime("%Y-%m-%d"))) for d in (day1, day2, today)}
    with dagster_dev(env, log_path):
        with dg.DagsterInstance.from_config(str(home)) as instance:
            _wait_for(lambda: {key[day1], key[day2]} <= set(_materializations(instance, "new_image_predictions")),
                      300, "both days ingested and predicted", log_path)
            assert set(_materializations(instance, "raw_images")) == {key[day1], key[day2]}
            curated_before = _materializations(instance, "curated_images").get("snieves", 0)
            assert curated_before >= 1

            _place(archive, images[5:8], today, "c")  # a new day arrives
            _wait_for(lambda: key[today] in _materializations(instance, "new_image_predictions"),
                      240, "the new day ingested and predicted", log_path)
            _wait_for(lambda: _materializations(instance, "curated_images").get("snieves", 0) > curated_before,
                      120, "the park re-curated", log_path)
            raw = _materializations(instance, "raw_images")
            predicted = _materializations(instance, "new_image_predictions")
            assert raw == {key[day1]: 1, key[day2]: 1, key[today]: 1}  # earlier days not redone
            assert predicted == {key[day1]: 1, key[day2]: 1, key[today]: 1}
            table = pd.read_parquet(tmp_path / "data" / "new_image_predictions" / "snieves" /
                                    f"{today:%Y-%m-%d}.parquet")
            assert table.path.nunique() == 3 and set(table.arrival_day) == {f"{today:%Y-%m-%d}"}

            _wait_for(lambda: not instance.get_runs(dg.RunsFilter(statuses=[
                dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED])),
                120, "the runs to finish", log_path)
            runs_before = len(instance.get_runs())
            time.sleep(4 * TICK_S)  # a negative claim needs ticks to pass: 4 of each sensor, nothing new
            assert len(instance.get_runs()) == runs_before

            late = _place(archive, [images[0]], day2, "late")[0]  # a late file lands in an ingested day
            _wait_for(lambda: _materializations(instance, "raw_images").get(key[day2]) == 2,
                      180, "the changed day re-ingested", log_path)
            time.sleep(3 * TICK_S)  # more ticks: the day must not be re-ingested a second time
            assert _materializations(instance, "raw_images") == {key[day1]: 1, key[day2]: 2, key[today]: 1}
            day2_rows = pd.read_parquet(tmp_path / "data" / "raw_images" / "snieves" / f"{day2:%Y-%m-%d}.parquet")
            assert late in set(day2_rows.path)
            runs = [r for r in instance.get_runs() if r.tags.get("wildbench/trigger") == "archive_arrivals"]
            assert len(runs) == 3 and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
            # the first two days went in one run (a partition range), each later change in its own
            ranges = [r for r in runs if "dagster/asset_partition_range_start" in r.tags]
            assert [(r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
                    for r in ranges] == [(key[day1], key[day2])]


@pytest.mark.slow
def test_tiny_archive_of_real_photos_runs_end_to_end_then_does_nothing(tmp_path, samples):
    """Four real photos in two parks: splits are tiny or empty, and every asset still materializes, a
    release of them included (empty splits, untrained models, empty test set are recorded as such).
    Another run then does no work."""
    archive = tmp_path / "archive"
    for folder, name in (("snieves/ovar/C01", "snieves-sheep-ovar.jpg"), ("snieves/cer/C02", "idaho-cougar.jpg"),
                         ("donana/lin/D01", "orinoquia-ocelot.jpg"), ("donana/lin/D01", "cfz-01.jpg")):
        (archive / folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(samples / name, archive / folder / name)
    instance = dg.DagsterInstance.ephemeral()
    _, outcome = run_all(archive, tmp_path / "data", instance=instance, selection=None)
    assert not outcome.get("failure"), outcome
    assert cut_release(pipeline_defs(archive, tmp_path / "data"), instance, "tiny").success
    _, outcome = run_all(archive, tmp_path / "data", instance=instance, selection=None)  # its datasets and models
    assert not outcome.get("failure"), outcome
    for asset in ("detection_labels", "training_datasets", "split_archives", "model_weights", "model_evaluation",
                  "leaderboard", "new_image_predictions"):
        assert instance.get_materialized_partitions(dg.AssetKey(asset)) or asset == "leaderboard"
    splits = pd.read_parquet(tmp_path / "data" / "benchmark_splits")
    assert set(splits.split) != {"train", "val", "test", "test_seen"}  # some split is empty, and that is fine
    _, again = run_all(archive, tmp_path / "data", instance=instance, selection=None)
    assert again == {}


@pytest.mark.slow
def test_wildbench_run_is_incremental(tmp_path, monkeypatch, capsys):
    """CLI: the second run on an unchanged archive materializes nothing; a new day runs ingest for that
    day, the curation of its park and its predictions, and nothing else."""
    archive, data = tmp_path / "archive", tmp_path / "data"
    today = datetime.now(UTC)
    images = _demo_images(6, seed=5)
    _place(archive, images[:3], today - timedelta(days=1), "a")
    for key, value in {"DAGSTER_HOME": str(tmp_path / "home"), "WILDBENCH_DATA": str(data),
                       "WILDBENCH_DETECTOR": "manifest"}.items():
        monkeypatch.setenv(key, value)

    def run():  # the command in this process: what is tested is what it plans, not the process
        code = main(["run", "--archive", str(archive),
                     "--select", "raw_images,image_metadata,curated_images,new_image_predictions"])
        return code, capsys.readouterr()

    code, first = run()
    assert code == 0, first.err[-3000:]
    code, second = run()
    assert code == 0 and "nothing to do" in second.out, second.out
    _place(archive, images[3:], today, "b")
    code, third = run()
    assert code == 0, third.err[-3000:]
    lines = {line.split()[0]: line for line in third.out.splitlines() if "to run," in line}
    assert "   1 to run,    1 up to date" in lines["raw_images"]
    assert "   1 to run" in lines["curated_images"]
    assert "   1 to run,    1 up to date" in lines["new_image_predictions"]
    assert "benchmark_splits" not in lines and "benchmark_splits         not selected" in third.out


@pytest.mark.slow
def test_predict_cli_on_real_photos(tmp_path, samples, monkeypatch, capsys):
    """`wildbench predict` on the real camera-trap photos with the detector alone (no model trained):
    the cougar gets a box, a non-image is a failure row, and the MegaDetector file validates."""
    from megadetector.postprocessing.validate_batch_results import validate_batch_results

    photos = tmp_path / "photos"
    shutil.copytree(samples, photos, ignore=shutil.ignore_patterns("*.md"))
    (photos / "sub").mkdir()
    shutil.copy(samples / "idaho-cougar.jpg", photos / "sub" / "idaho-cougar.jpg")  # same name, other folder
    (photos / "sub" / "notes.jpg").write_text("not a photo")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("WILDBENCH_DATA", str(tmp_path / "data"))
    out, annotated = tmp_path / "md.json", tmp_path / "annotated"
    code = main(["predict", str(photos), "--out", str(out), "--annotate", str(annotated)])  # in process
    done = capsys.readouterr()
    assert code == 0, done.err[-3000:]
    document = json.loads(out.read_text())
    assert validate_batch_results(document)["validation_results"]["errors"] == []
    by_file = {image["file"]: image for image in document["images"]}
    assert {"idaho-cougar.jpg", "sub/idaho-cougar.jpg", "sub/notes.jpg"} <= set(by_file)
    cougar = by_file["idaho-cougar.jpg"]["detections"]
    assert cougar and cougar[0]["conf"] > 0.5 and cougar[0]["category"] == "1"
    x, y, w, h = cougar[0]["bbox"]
    assert 0.4 < x + w / 2 < 0.8 and 0.5 < y + h / 2 < 0.9  # the cat stands right of centre, low
    assert by_file["sub/notes.jpg"]["detections"] is None and "decode" in by_file["sub/notes.jpg"]["failure"]
    assert ((annotated / "idaho-cougar.jpg").stat().st_size > 10_000
            and (annotated / "sub" / "idaho-cougar.jpg").exists())
    assert "failed" in done.out and "animal" in done.out
    # which model answered, and why no species model did, in the output and in the file
    assert "answered by: detector only: mdlite" in done.out
    assert "no species model: no species model has been trained yet" in done.out
    answer = document["info"]["wildbench_answer"]
    assert answer["model"] == "detector" and "no species model has been trained" in answer["why_no_species_model"]


def test_a_species_model_that_finds_nothing_is_named_warned_about_and_its_animals_kept(tmp_path, samples,
                                                                                     monkeypatch, capsys):
    """A species model that returns no box on real photos (an untrained YOLOv8, as the demo models behave
    on real photos) is named with its weights' sha256; each image in which the detector finds an animal
    is counted in a warning, and those animals are `other animal`, not lost."""
    import hashlib

    from wildbench_assets.resources.ultralytics_env import configure_ultralytics_offline

    configure_ultralytics_offline()
    from ultralytics import YOLO

    weights = tmp_path / "untrained.pt"
    YOLO("yolov8n.yaml").save(str(weights))  # built from its yaml: random weights, nothing downloaded
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("idaho-cougar.jpg", "orinoquia-ocelot.jpg"):
        shutil.copy(samples / name, photos / name)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("WILDBENCH_DATA", str(tmp_path / "data"))
    out = tmp_path / "md.json"
    code = main(["predict", str(photos), "--model", "yolov8", "--weights", str(weights), "--out", str(out)])
    done = capsys.readouterr()
    assert code == 0, done.err[-3000:]
    document = json.loads(out.read_text())
    answer = document["info"]["wildbench_answer"]
    assert answer["model"] == "yolov8" and answer["weights_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert f"answered by: yolov8 trained on release (unknown) (weights sha256 {answer['weights_sha256'][:12]}" \
        in done.out
    cougar = next(i for i in document["images"] if i["file"] == "idaho-cougar.jpg")["detections"]
    assert cougar and {document["classification_categories"][d["classifications"][0][0]] for d in cougar} \
        == {"other animal"}
    missed = sum(1 for i in document["images"] if i["detections"])
    [warning] = document["info"]["warnings"]
    assert missed >= 1 and f"found no box on {missed} of {missed} images" in warning
    assert f"warning: {warning}" in done.out and "other animal" in done.out


def test_a_lost_partition_file_is_an_error_not_a_smaller_table(tmp_path):
    """A partition the instance recorded as materialized whose Parquet file is gone must stop the
    curation with a named error, not shrink the curated table silently."""
    archive, data = tmp_path / "archive", tmp_path / "data"
    today = datetime.now(UTC)
    images = _demo_images(4, seed=9)
    _place(archive, images[:2], today - timedelta(days=1), "a")
    _place(archive, images[2:], today, "b")
    instance = dg.DagsterInstance.ephemeral()
    _, outcome = run_all(archive, data, instance=instance, selection=["raw_images", "image_metadata", "curated_images"])
    assert not outcome.get("failure")
    lost = data / "image_metadata" / "snieves" / f"{today - timedelta(days=1):%Y-%m-%d}.parquet"
    lost.unlink()
    _, outcome = run_all(archive, data, instance=instance, selection=["curated_images"], force=True)
    assert outcome["failure"] and outcome["failure"][0].startswith("curated_images snieves")
    failure = next(r for r in instance.get_runs() if r.status == dg.DagsterRunStatus.FAILURE)
    [step_failure] = instance.all_logs(failure.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    assert "1 materialized partitions have no file" in step_failure.dagster_event.step_failure_data.error.to_string()


def test_a_day_of_only_unreadable_files_materializes_empty_valid_results(tmp_path):
    """A new day whose files are all broken (empty, not an image, a cut JPEG): ingest records each with
    its reason, curation keeps nothing from it, predictions are failed rows — and nothing crashes."""
    archive, data = tmp_path / "archive", tmp_path / "data"
    day = datetime.now(UTC) - timedelta(days=1)
    good = _demo_images(1, seed=6)[0]
    folder = archive / "snieves" / "sus" / "C07"
    folder.mkdir(parents=True)
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.jpg").write_text("battery 20%")
    (folder / "cut.jpg").write_bytes(good.data[: len(good.data) // 3])
    for path in folder.iterdir():
        os.utime(path, (day.timestamp(), day.timestamp()))
    instance, outcome = run_all(archive, data, selection=["raw_images", "image_metadata", "curated_images",
                                                          "new_image_predictions"])
    assert not outcome.get("failure"), outcome
    meta = pd.read_parquet(data / "image_metadata")
    assert set(meta.status) == {"empty file", "not an image", "truncated"}
    assert len(pd.read_parquet(data / "curated_images")) == 0
    predictions = pd.read_parquet(data / "new_image_predictions")
    assert len(predictions) == 3 and set(predictions.status) == {"failed"} and predictions.failure.notna().all()
    # the day says which model answered and why no species model did
    [event] = instance.fetch_materializations(dg.AssetKey("new_image_predictions"), limit=1).records
    meta = {k: v.value for k, v in event.asset_materialization.metadata.items()}
    assert meta["answered_by"].startswith("detector only: mdlite") and meta["images_species_model_missed"] == 0
    assert "no species model has been trained yet" in meta["why"]
    document = json.loads(Path(meta["megadetector_file"]).read_text())
    assert document["info"]["wildbench_answer"]["answered_by"] == meta["answered_by"]
