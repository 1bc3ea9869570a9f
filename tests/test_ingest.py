"""raw_images and image_metadata materialized for real on the demo archive (local folder and S3)."""

import json
import shutil

import dagster as dg
import pandas as pd
import pytest

from wildbench_assets.assets.ingest import METADATA_CHECKS, RAW_CHECKS, image_metadata, raw_images
from wildbench_assets.definitions import build_defs
from wildbench_assets.lib import image_header as hdr
from wildbench_assets.partitions import park_day_key
from wildbench_assets.resources.archive import ArchiveResource, LocalArchive, open_archive
from wildbench_assets.resources.day_keys import DayKeyLists
from wildbench_assets.resources.parquet_io import ParquetIOManager
from wildbench_assets.resources.taxonomy import TaxonomyResource
from wildbench_assets.runner import archive_partitions, register_partitions
from wildbench_assets.summary import read_table


def materialize_all(uri, data_dir, endpoint=None, run_config=None):
    archive = ArchiveResource(uri=uri, endpoint_url=endpoint)
    resources = {"archive": archive, "taxonomy": TaxonomyResource(),
                 "parquet_io_manager": ParquetIOManager(base_dir=str(data_dir)),
                 "day_keys": DayKeyLists(uri=f"{data_dir}/day_keys")}
    instance = dg.DagsterInstance.ephemeral()
    pairs = archive_partitions(archive.open())
    register_partitions(instance, pairs)
    results = [dg.materialize([raw_images, image_metadata], partition_key=park_day_key(park, day), instance=instance,
                              resources=resources, run_config=run_config, raise_on_error=False)
               for park, day in pairs]
    return pairs, results


def checks_by_name(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    return {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}


def test_demo_archive_is_listed_and_every_bad_input_recorded(demo_archive, tmp_path):
    pairs, results = materialize_all(str(demo_archive), tmp_path)
    assert {p for p, _ in pairs} == {"snieves", "donana"} and len({d for _, d in pairs}) == 2
    assert all(r.success for r in results)
    raw, meta = read_table(tmp_path, "raw_images"), read_table(tmp_path, "image_metadata")
    on_disk = [o.key for o in LocalArchive(demo_archive).list() if o.key != "manifest.json"]
    assert sorted(raw.path) == sorted(on_disk)  # nothing lost, nothing invented
    assert sorted(meta.path) == sorted(on_disk)
    status = dict(zip(meta.path, meta.status))
    assert status["snieves/sus/C01/broken_corrupt.jpg"] == hdr.CORRUPT
    assert status["donana/cer/D01/broken_truncated.jpg"] == hdr.TRUNCATED
    assert status["snieves/vul/C02/broken_empty.jpg"] == hdr.EMPTY_FILE
    assert status["donana/dam/D02/notes.jpg"] == hdr.NOT_AN_IMAGE
    assert status["snieves/capi/C03/no_exif.jpg"] == hdr.NO_EXIF_DATE
    assert status["donana/sus/D03/clock_reset.jpg"] == hdr.IMPLAUSIBLE_DATE
    assert meta.loc[meta.status != hdr.OK, "reason"].notna().all()
    good = meta[meta.status == hdr.OK]
    assert len(good) == len(meta) - 6 and good.captured_at.notna().all()
    assert (raw.species_source == "manifest").sum() == len(raw) - 8  # bad inputs and `xyz` are not in the manifest
    from wildbench_assets.lib.demo_archive import CAMERAS

    cameras = {f"{park}/{camera}" for park, by_park in CAMERAS.items() for camera in by_park}
    assert set(raw.camera) == cameras


def test_checks_judge_the_partition(demo_archive, tmp_path):
    _pairs, results = materialize_all(str(demo_archive), tmp_path)
    evaluations = [checks_by_name(r) for r in results]
    unknown = [e[("raw_images", "known_species")] for e in evaluations]
    assert sum(not e.passed for e in unknown) == 1  # only snieves' newest day holds the `xyz` folder
    failing = next(e for e in unknown if not e.passed)
    assert failing.severity == dg.AssetCheckSeverity.WARN
    assert failing.metadata["unknown_species"].data == {"xyz": 2}
    for e in evaluations:  # every declared check reported, and only those
        assert {(a, n) for a, n in e} == {("raw_images", n) for n in RAW_CHECKS} | {
            ("image_metadata", n) for n in METADATA_CHECKS}
        for name in ("unique_paths", "listing_complete", "known_parks"):
            assert e[("raw_images", name)].passed
        for name in ("one_row_per_raw_image", "valid_statuses", "plausible_capture_dates", "readable_dimensions"):
            assert e[("image_metadata", name)].passed, name


def test_each_check_evaluation_judges_its_own_partition_and_materialization(demo_archive, tmp_path):
    """Two partitions, then the first again: every evaluation names the partition it judged and targets
    the materialization its own run made (not the partition's previous one, nor none)."""
    archive = ArchiveResource(uri=str(demo_archive))
    resources = {"archive": archive, "taxonomy": TaxonomyResource(),
                 "parquet_io_manager": ParquetIOManager(base_dir=str(tmp_path)),
                 "day_keys": DayKeyLists(uri=f"{tmp_path}/day_keys")}
    instance = dg.DagsterInstance.ephemeral()
    pairs = archive_partitions(archive.open())
    register_partitions(instance, pairs)
    first, second = park_day_key(*pairs[0]), park_day_key(*pairs[1])
    for key in (first, second, first):
        result = dg.materialize([raw_images, image_metadata], partition_key=key, instance=instance,
                                resources=resources)
        evaluations = result.get_asset_check_evaluations()
        assert len(evaluations) == len(raw_images.check_specs) + len(image_metadata.check_specs)
        for e in evaluations:
            [made] = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=e.asset_key, asset_partitions=[key]), limit=1).records
            assert made.run_id == result.run_id
            assert e.partition == key, e.check_name
            target = e.target_materialization_data
            assert target is not None and (target.run_id, target.storage_id) == (result.run_id, made.storage_id)


def test_every_check_in_the_definitions_says_what_it_judges():
    graph = build_defs("local").resolve_asset_graph()
    specs = [graph.get_check_spec(key) for key in graph.asset_check_keys]
    assert len(specs) >= 50
    assert not [s.key.to_user_string() for s in specs if not (s.description or "").strip()]


def test_failed_share_warns_above_the_configured_rate(demo_archive, tmp_path):
    config = {"ops": {"image_metadata": {"config": {"max_failed_share": 0.0}}}}
    _pairs, results = materialize_all(str(demo_archive), tmp_path, run_config=config)
    shares = [checks_by_name(r)[("image_metadata", "failed_share")] for r in results]
    assert any(not s.passed for s in shares) and all(s.severity == dg.AssetCheckSeverity.WARN for s in shares)
    assert all(r.success for r in results)  # a warning does not stop the run


def test_malformed_manifest_fails_loudly(demo_archive, tmp_path):
    broken = tmp_path / "archive"
    shutil.copytree(demo_archive, broken)
    (broken / "manifest.json").write_text(json.dumps({"not": "coco"}))
    _pairs, results = materialize_all(str(broken), tmp_path / "data")
    assert not any(r.success for r in results)
    failure = results[0].get_step_failure_events()[0].step_failure_data.error
    assert "manifest" in failure.message and "malformed" in failure.message


@pytest.mark.services
def test_s3_archive_gives_the_same_tables_with_ranged_reads(demo_archive, tmp_path, s3_env):
    local_pairs, _ = materialize_all(str(demo_archive), tmp_path / "local")
    store = open_archive("s3://wildbench-test/archive", endpoint_url=s3_env)
    store.client.create_bucket(Bucket="wildbench-test")
    for obj in LocalArchive(demo_archive).list():
        store.write(obj.key, (demo_archive / obj.key).read_bytes())
    pairs, results = materialize_all("s3://wildbench-test/archive", tmp_path / "s3", endpoint=s3_env)
    assert all(r.success for r in results) and {p for p, _ in pairs} == {"snieves", "donana"}
    local = read_table(tmp_path / "local", "image_metadata").sort_values("path", ignore_index=True)
    remote = read_table(tmp_path / "s3", "image_metadata").sort_values("path", ignore_index=True)
    columns = ["path", "park", "species", "camera", "status", "captured_at", "width", "height", "camera_model"]
    pd.testing.assert_frame_equal(local[columns], remote[columns])
    big = remote[remote.bytes > 32 * 1024]
    assert (big.bytes_read < big.bytes).all()


def test_definitions_build_and_every_job_resolves(monkeypatch, tmp_path):
    monkeypatch.setenv("WILDBENCH_DATA", str(tmp_path))
    defs = build_defs("local")
    for job in defs.resolve_all_job_defs():
        assert job.name
    assert defs.resolve_job_def("ingest_job").partitions_def is not None
    graph = defs.resolve_asset_graph()
    for key in graph.toposorted_asset_keys:
        assert graph.get(key).check_keys, f"{key.to_user_string()} has no data-quality checks"
    assert {s.name for s in defs.sensors} == {"archive_arrivals", "wildbench_automation", "custom_export_requests",
                                              "submissions_sensor"}
    prod = build_defs("prod")  # every location from the environment, resolved at run time
    assert prod.resolve_job_def("models_job").partitions_def is not None
    with pytest.raises(ValueError):
        build_defs("nowhere")


def test_unknown_park_is_reported_not_dropped(demo_archive, tmp_path):
    archive = tmp_path / "archive"
    shutil.copytree(demo_archive, archive)
    stray = archive / "zoo" / "sus" / "Z01" / "visitor.jpg"
    stray.parent.mkdir(parents=True)
    shutil.copy(next((archive / "donana" / "sus").rglob("*.jpg")), stray)
    pairs, results = materialize_all(str(archive), tmp_path / "data")
    assert "zoo" in {p for p, _ in pairs}
    zoo = [r for (p, _d), r in zip(pairs, results) if p == "zoo"][0]
    check = checks_by_name(zoo)[("raw_images", "known_parks")]
    assert not check.passed and check.metadata["unknown_parks"].data == {"zoo": 1}
    assert "zoo/sus/Z01/visitor.jpg" in set(read_table(tmp_path / "data", "image_metadata").path)


@pytest.mark.services
def test_cli_demo_archive_and_run_on_s3(tmp_path, s3_env, monkeypatch):
    from wildbench_assets.cli import main

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("WILDBENCH_DATA", str(tmp_path / "data"))
    store = open_archive("s3://wildbench-cli/demo", endpoint_url=s3_env)
    store.client.create_bucket(Bucket="wildbench-cli")
    assert main(["demo-archive", "s3://wildbench-cli/demo", "--events-per-camera", "2",
                 "--endpoint-url", s3_env]) == 0
    assert main(["run", "--archive", "s3://wildbench-cli/demo", "--endpoint-url", s3_env]) == 0
    meta = read_table(tmp_path / "data", "image_metadata")
    listed = [o.key for o in store.list() if o.key != "manifest.json"]
    assert sorted(meta.path) == sorted(listed)
    assert meta.status.value_counts()[hdr.TRUNCATED] == 1


def test_any_stage_opens_with_pandas_in_one_call(demo_archive, tmp_path):
    materialize_all(str(demo_archive), tmp_path)
    for asset in ("raw_images", "image_metadata"):
        table = pd.read_parquet(tmp_path / asset)  # every partition at once, as the README says
        assert len(table) == len(read_table(tmp_path, asset)) and table.park.notna().all()
