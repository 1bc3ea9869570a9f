"""Per-day key lists: the sensor writes the day's keys before requesting its run, the run reads only them,
and `wildbench run` ingests many days per run (raw_images' BackfillPolicy) with every partition recorded.

Fast: tiny files on a temp folder, ephemeral instances, only the ingest assets."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from tests.helpers import pipeline_defs
from tests.test_arrivals import (
    MAY1,
    MAY2,
    MAY3,
    day_keys_folder,
    fingerprints_on_disk,
    put,
    requested,
    tick,
)
from wildbench_assets.assets.ingest import PARK_LISTING, image_metadata, raw_images
from wildbench_assets.ingest_state import stored_fingerprints
from wildbench_assets.lib.arrivals import EMPTY_FINGERPRINT
from wildbench_assets.resources.archive import ArchiveResource, LocalArchive
from wildbench_assets.resources.day_keys import DAY_KEYS_TAG, DayKeyLists
from wildbench_assets.resources.parquet_io import ParquetIOManager
from wildbench_assets.resources.taxonomy import TaxonomyResource
from wildbench_assets.runner import plan_pipeline, run_plan

DAY1, DAY2, DAY3 = "2024-05-01", "2024-05-02", "2024-05-03"


@pytest.fixture
def archive(tmp_path) -> Path:
    """Two parks; donana on three days, snieves on two (three objects each); keys of all days interleave."""
    root = tmp_path / "archive"
    for park, species, days in (("donana", "lyn", (MAY1, MAY2, MAY3)), ("snieves", "sus", (MAY1, MAY2))):
        for day in days:
            for i in range(3):
                put(root, f"{park}/{species}/cam{i % 2}/{i}-{day:%d}.jpg", day + timedelta(minutes=i))
    return root


@pytest.fixture
def listed(monkeypatch, archive) -> list[str]:
    """Every key of the archive the real LocalArchive yields from `list`, in order (other stores, such as
    the key lists', are not counted)."""
    keys: list[str] = []
    real = LocalArchive.list

    def counting(self, prefix="", start_after=None):
        for o in real(self, prefix, start_after):
            if self.root == archive.resolve():
                keys.append(o.key)
            yield o

    monkeypatch.setattr(LocalArchive, "list", counting)
    return keys


def resources(root: Path, data: Path) -> dict:
    return {"archive": ArchiveResource(uri=str(root)), "taxonomy": TaxonomyResource(),
            "parquet_io_manager": ParquetIOManager(base_dir=str(data)),
            "day_keys": DayKeyLists(uri=str(day_keys_folder(root)))}


def run_request(instance, root: Path, data: Path, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    """What the daemon does with a request of the sensor: a run of the ingest assets with its tags."""
    result = dg.materialize([raw_images, image_metadata], partition_key=request.partition_key, instance=instance,
                            resources=resources(root, data), tags=request.tags)
    assert result.success
    return result


def raw_metadata(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    return {str(e.partition): {k: v.value for k, v in e.event_specific_data.materialization.metadata.items()}
            for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey("raw_images")}


def test_a_sensor_requested_run_reads_only_its_days_keys(archive, tmp_path, listed):
    """The tick lists the archive once, writes each requested day's key list and asks for one run per park
    over its days (a partition range, raw_images' BackfillPolicy); the run then lists nothing of the
    archive: each day's table is exactly its objects, its fingerprint what the tick saw."""
    instance = dg.DagsterInstance.ephemeral()
    result = tick(instance, archive)
    fingerprints = requested(result, instance)
    assert len(listed) == 15  # the tick's one listing of the whole archive
    assert len(result.run_requests) == 2  # one run a park
    request = next(r for r in result.run_requests if r.partition_key_range.end.endswith("|donana"))
    assert request.partition_key is None and request.tags[DAY_KEYS_TAG] == "1"

    listed.clear()
    run = run_request(instance, archive, tmp_path / "data", request)
    assert listed == []  # not one key of the archive was listed, of these days or another
    tables = run.output_for_node("raw_images")  # partition -> its table
    for day in (MAY1, MAY2, MAY3):
        paths = tables[f"{day:%Y-%m-%d}|donana"].path
        assert sorted(paths) == sorted(f"donana/lyn/cam{i % 2}/{i}-{day:%d}.jpg" for i in range(3))
    meta = raw_metadata(run)
    assert sorted(meta) == [f"{day}|donana" for day in (DAY1, DAY2, DAY3)]
    for day in (DAY1, DAY2, DAY3):
        assert meta[f"{day}|donana"]["listing"] == "key list" and meta[f"{day}|donana"]["objects_listed"] == 3
        assert meta[f"{day}|donana"]["fingerprint"] == fingerprints[("donana", day)]
    assert stored_fingerprints(instance) == {("donana", d): fingerprints[("donana", d)] for d in (DAY1, DAY2, DAY3)}
    assert sum(len(t) for t in run.output_for_node("image_metadata").values()) == 9
    assert tick(instance, archive, result.cursor).run_requests == []  # the other park's run is still pending


def test_a_manual_run_lists_the_park_and_says_so(archive, tmp_path, listed):
    """Without the sensor's tag (a materialization from the UI) the run lists its park, filters the day,
    and its metadata says why; the table and fingerprint are the same as from the key list."""
    instance = dg.DagsterInstance.ephemeral()
    tick(instance, archive)  # registers the parks and days
    listed.clear()
    key = dg.MultiPartitionKey({"park": "donana", "arrival_day": DAY2})
    run = dg.materialize([raw_images], partition_key=key, instance=instance,
                         resources=resources(archive, tmp_path / "data"))
    assert sorted(listed) == sorted(k for k in fingerprints_keys(archive) if k.startswith("donana/"))
    meta = raw_metadata(run)[str(key)]
    assert meta["listing"] == PARK_LISTING and meta["objects_listed"] == 9
    assert meta["fingerprint"] == fingerprints_on_disk(archive)[("donana", DAY2)]


def fingerprints_keys(root: Path) -> list[str]:
    return [p.relative_to(root).as_posix() for p in root.rglob("*.jpg")]


def test_a_vanished_day_gets_an_empty_key_list_and_an_empty_table(archive, tmp_path):
    """Every object of a day moves away: the tick requests it with the empty fingerprint, writes an empty
    key list, and the run stores an empty table without failing."""
    instance = dg.DagsterInstance.ephemeral()
    first = tick(instance, archive)
    data = tmp_path / "data"
    for request in first.run_requests:
        run_request(instance, archive, data, request)
    for path in (archive / "snieves").rglob("*-02.jpg"):
        path.unlink()
    gone = tick(instance, archive, first.cursor)
    assert requested(gone, instance) == {("snieves", DAY2): EMPTY_FINGERPRINT}
    objects, fingerprint = DayKeyLists(uri=str(day_keys_folder(archive))).open().read("snieves", DAY2)
    assert objects == [] and fingerprint == EMPTY_FINGERPRINT
    run = run_request(instance, archive, data, gone.run_requests[0])
    assert run.output_for_node("raw_images").empty and run.output_for_node("image_metadata").empty
    assert stored_fingerprints(instance)[("snieves", DAY2)] == EMPTY_FINGERPRINT
    assert tick(instance, archive).run_requests == []


def test_a_listing_spread_over_ticks_still_writes_whole_key_lists(archive, monkeypatch):
    """A listing cut after every page keeps its spilled pages across ticks (their place in the cursor);
    the key lists written at its end hold every object of each day, and the pages are gone."""
    from tests.test_arrivals import sensors

    original = sensors.scan_archive
    monkeypatch.setattr(sensors, "scan_archive", lambda store, cursor, **kw: original(store, cursor, budget_s=0, **kw))
    monkeypatch.setattr(sensors, "LISTING_PAGE", 4)
    instance = dg.DagsterInstance.ephemeral()
    cursor, result, ticks = None, None, 0
    while ticks < 10:
        result, ticks = tick(instance, archive, cursor), ticks + 1
        cursor = result.cursor
        if result.run_requests:
            break
    assert ticks == 4  # 15 objects, 4 a page
    assert requested(result, instance) == fingerprints_on_disk(archive)
    keys = DayKeyLists(uri=str(day_keys_folder(archive))).open()
    for (park, day), fingerprint in fingerprints_on_disk(archive).items():
        objects, stored = keys.read(park, day)
        assert stored == fingerprint and len(objects) == 3
        assert all(o.key.startswith(f"{park}/") and o.key.endswith(f"-{day[-2:]}.jpg") for o in objects)
    assert not list((day_keys_folder(archive) / "scans").rglob("*.parquet"))


def test_wildbench_run_ingests_many_days_per_run_and_records_each(archive, tmp_path):
    """`wildbench run` over five new days: raw_images and image_metadata run as one run per park (the
    BackfillPolicy's ranges), every partition has its own materialization, fingerprint and check
    evaluations; afterwards the sensor finds nothing to do, and a new day is one small run."""
    data = tmp_path / "data"
    defs = pipeline_defs(archive, data)
    instance = dg.DagsterInstance.ephemeral()
    store = LocalArchive(archive)
    plan = plan_pipeline(defs, instance, store, {"raw_images", "image_metadata"})
    assert len(plan.todo[dg.AssetKey("raw_images")]) == 5
    outcome = run_plan(defs, instance, plan, log_level="WARNING")
    assert not outcome.get("failure"), outcome
    assert len(outcome["success"]) == 2  # donana's three days, snieves' two: one run each

    assert stored_fingerprints(instance) == fingerprints_on_disk(archive)
    for asset, count in (("raw_images", 5), ("image_metadata", 5)):
        assert len(instance.get_materialized_partitions(dg.AssetKey(asset))) == count
        tables = pd.read_parquet(data / asset)
        assert len(tables) == 15 and tables.path.is_unique
    checks = {}
    for line in outcome["success"]:
        for record in instance.get_records_for_run(line.rsplit(": ", 1)[1],
                                                   of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records:
            e = record.event_log_entry.dagster_event.event_specific_data
            checks.setdefault(e.partition, []).append(e.check_name)
    assert len(checks) == 5 and all(len(names) == 9 for names in checks.values())  # 4 raw + 5 metadata checks

    tick(instance, archive)  # registers the parks and days
    assert tick(instance, archive).run_requests == []
    put(archive, "snieves/sus/cam0/new.jpg", MAY3)
    plan = plan_pipeline(defs, instance, store, {"raw_images", "image_metadata"})
    assert plan.todo[dg.AssetKey("raw_images")] == ["2024-05-03|snieves"]
    outcome = run_plan(defs, instance, plan, log_level="WARNING")
    assert len(outcome["success"]) == 1 and not outcome.get("failure")
