"""New archive arrivals: fingerprints, the ingest plan, the resumable listing and the `archive_arrivals` sensor.

Fast: tiny files on a temp folder, an ephemeral instance, only `raw_images` (a listing, no inference) is
ever materialized.
"""

from __future__ import annotations

import json
import logging
import os
import random
from collections import namedtuple
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pytest

from wildbench_assets import sensors
from wildbench_assets.assets.ingest import INGEST_BACKFILL, raw_images
from wildbench_assets.ingest_state import stored_fingerprints
from wildbench_assets.lib.arrivals import (
    EMPTY_FINGERPRINT,
    SAFE_PARK,
    ArchiveScan,
    Fingerprint,
    fingerprint_of,
    partition_fingerprint,
    plan_ingest,
)
from wildbench_assets.lib.inventory import arrival_day
from wildbench_assets.partitions import (
    ARRIVAL_DAY,
    PARK,
    arrival_day_partitions,
    park_day_key,
    park_day_partitions,
    park_partitions,
    partition_chunks,
)
from wildbench_assets.resources.archive import ArchiveResource, LocalArchive
from wildbench_assets.resources.day_keys import DAY_KEYS_TAG, DayKeyLists
from wildbench_assets.resources.parquet_io import ParquetIOManager
from wildbench_assets.resources.taxonomy import TaxonomyResource
from wildbench_assets.sensors import arrivals_sensor, scan_archive

Obj = namedtuple("Obj", "key etag last_modified")

UTC = UTC
MAY1, MAY2, MAY3 = (datetime(2024, 5, d, 12, tzinfo=UTC) for d in (1, 2, 3))


def s3_sorted(keys):
    """Keys in the order S3 lists them: byte order of the UTF-8 key."""
    return sorted(keys, key=lambda k: k.encode())


def put(root: Path, key: str, when: datetime, data: bytes = b"\xff\xd8jpg") -> None:
    """Write an archive object whose arrival (mtime) is `when`."""
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (when.timestamp(), when.timestamp()))


# ---------------------------------------------------------------------------------------------- fingerprints

OBJECTS = [Obj(f"donana/lyn/cam{i % 3}/img{i}.jpg", f"etag{i}", MAY1 + timedelta(minutes=i)) for i in range(10)]


def test_fingerprint_is_order_independent_and_mergeable():
    """Listing order does not matter, and two halves merged give the fingerprint of the whole."""
    whole = fingerprint_of(OBJECTS)
    shuffled = OBJECTS[:]
    random.Random(7).shuffle(shuffled)
    assert fingerprint_of(shuffled) == whole

    first, second = Fingerprint(), Fingerprint()
    for o in OBJECTS[:4]:
        first.add(o.key, o.etag, o.last_modified)
    for o in OBJECTS[4:]:
        second.add(o.key, o.etag, o.last_modified)
    assert str(first) != whole
    first.merge(second)
    assert str(first) == whole
    assert first.count == 10 and first.newest_ns == int(OBJECTS[-1].last_modified.timestamp() * 1e9)


def test_fingerprint_changes_with_any_added_removed_or_rewritten_object():
    """A new etag, an extra object or a missing one each give a different fingerprint."""
    whole = fingerprint_of(OBJECTS)
    rewritten = [*OBJECTS[:3], OBJECTS[3]._replace(etag="other"), *OBJECTS[4:]]
    added = [*OBJECTS, Obj("donana/lyn/cam0/new.jpg", "e", MAY1)]  # older than the newest: only count/hash move
    removed = OBJECTS[1:]  # not the newest one either
    renamed = [OBJECTS[0]._replace(key="donana/lyn/cam9/img0.jpg"), *OBJECTS[1:]]
    variants = [fingerprint_of(v) for v in (rewritten, added, removed, renamed)]
    assert whole not in variants
    assert len(set(variants)) == 4
    # the hash alone notices a rewrite: same count and newest time
    assert variants[0].split("-")[:2] == whole.split("-")[:2]


def test_fingerprint_str_parse_round_trip():
    """`str` and `Fingerprint.parse` are inverses; nothing listed is EMPTY_FINGERPRINT."""
    text = fingerprint_of(OBJECTS)
    parsed = Fingerprint.parse(text)
    assert str(parsed) == text
    assert (parsed.count, parsed.newest_ns) == (10, int(OBJECTS[-1].last_modified.timestamp() * 1e9))
    assert Fingerprint.parse(EMPTY_FINGERPRINT) == Fingerprint()
    assert fingerprint_of([]) == EMPTY_FINGERPRINT == str(Fingerprint())


def test_archive_scan_groups_by_park_and_utc_day_and_round_trips_json():
    """ArchiveScan: one fingerprint per (park, UTC day of mtime); root files are ignored, a park's manifest
    is part of that park's fingerprints (not an image of it), unsafe park names are counted aside; its JSON
    form (the sensor cursor) restores it exactly."""
    late = datetime(2024, 5, 1, 23, 30, tzinfo=timezone(timedelta(hours=-3)))  # 2024-05-02 02:30 UTC
    objects = [
        Obj("donana/lyn/c1/a.jpg", "1", MAY1), Obj("donana/lyn/c1/b.jpg", "2", late.astimezone(UTC)),
        Obj("snieves/sus/c2/c.jpg", "3", MAY1), Obj("README.txt", "4", MAY1),
        Obj("donana/manifest.json", "5", MAY1), Obj("bad|park/x/y.jpg", "6", MAY1), Obj("bad|park/z.jpg", "7", MAY1),
    ]
    scan = ArchiveScan.empty()
    assert scan.add(objects) == "bad|park/z.jpg"  # the last key seen, whatever it was
    manifests = {"donana/manifest.json": "5"}
    assert scan.fingerprints() == {
        ("donana", "2024-05-01"): partition_fingerprint(objects[:1], "donana", manifests),
        ("donana", "2024-05-02"): partition_fingerprint(objects[1:2], "donana", manifests),
        ("snieves", "2024-05-01"): fingerprint_of(objects[2:3]),
    }
    assert scan.fingerprints()[("donana", "2024-05-01")] != fingerprint_of(objects[:1])
    assert scan.rejected_parks == {"bad|park": 2}
    again = ArchiveScan.from_json(json.loads(json.dumps(scan.to_json())))
    assert again.fingerprints() == scan.fingerprints() and again.rejected_parks == scan.rejected_parks
    assert not SAFE_PARK.match("bad|park") and not SAFE_PARK.match("a/b") and SAFE_PARK.match("donana")


# ----------------------------------------------------------------------------------------------- plan_ingest

A, B, C = ("donana", "2024-05-01"), ("snieves", "2024-05-01"), ("donana", "2024-05-02")


def test_plan_requests_new_and_changed_partitions_only():
    """New (never stored) and changed (fingerprint differs) partitions run; unchanged ones do not."""
    plan = plan_ingest(current={A: "1-1-a", B: "1-1-b", C: "2-2-c"}, stored={A: "1-1-a", B: "1-1-old"})
    assert plan.to_run == [(*B, "1-1-b"), (*C, "2-2-c")]
    assert plan.unchanged == 1 and plan.deferred == 0 and plan.vanished == []


def test_plan_vanished_partition_is_reported_and_rerun_empty():
    """Stored but absent now: reported as vanished and requested with EMPTY_FINGERPRINT."""
    plan = plan_ingest(current={B: "1-1-b"}, stored={A: "3-3-a", B: "1-1-b"})
    assert plan.vanished == [A]
    assert plan.to_run == [(*A, EMPTY_FINGERPRINT)]


def test_plan_does_not_rerun_partition_already_ingested_empty():
    """A partition whose last ingest saw nothing, still absent, is neither requested nor reported."""
    plan = plan_ingest(current={}, stored={A: EMPTY_FINGERPRINT})
    assert plan.to_run == [] and plan.vanished == [] and plan.unchanged == 1


def test_plan_skips_pending_request_with_same_fingerprint():
    """A partition already requested with this fingerprint is not requested again; with an older one it is."""
    current = {A: "2-2-a", B: "1-1-b"}
    plan = plan_ingest(current, stored={}, pending={A: "2-2-a", B: "1-0-older"})
    assert plan.to_run == [(*B, "1-1-b")]
    vanished = plan_ingest({}, stored={A: "1-1-a"}, pending={A: EMPTY_FINGERPRINT})
    assert vanished.to_run == [] and vanished.vanished == [A]  # still reported, not re-requested


def test_plan_cap_takes_oldest_days_first_and_counts_the_rest():
    """At most `cap` partitions, ordered by day then park; the others are counted as deferred."""
    current = {("zpark", "2024-05-03"): "x", ("apark", "2024-05-03"): "x", ("zpark", "2024-05-01"): "x",
               ("mpark", "2024-05-02"): "x", ("apark", "2024-05-02"): "x"}
    plan = plan_ingest(current, stored={}, cap=3)
    assert [(p, d) for p, d, _ in plan.to_run] == [
        ("zpark", "2024-05-01"), ("apark", "2024-05-02"), ("mpark", "2024-05-02")]
    assert plan.deferred == 2
    assert len(plan_ingest(current, stored={}).to_run) == 5  # no cap: everything
    assert plan_ingest(current, stored={}, cap=0).deferred == 5


# --------------------------------------------------------------------------------------- LocalArchive.list

TRICKY_KEYS = [
    "a.jpg", "a/b.jpg", "a/b/c.jpg", "a/b-c.jpg", "a/b.jpg.bak", "a-b/c.jpg", "a b/c.jpg", "a0.jpg",
    "A.jpg", "ab/x.jpg", "a.jpeg/x.jpg", "a_/y.jpg", "b", "é/f.jpg", "z/y/x/w.jpg",
]


@pytest.fixture
def tricky_archive(tmp_path) -> LocalArchive:
    for key in TRICKY_KEYS:
        put(tmp_path, key, MAY1)
    (tmp_path / "a" / ".wb-tmp-half-written").write_bytes(b"x")  # an unfinished write is never listed
    return LocalArchive(tmp_path)


def test_local_listing_is_in_s3_key_order(tricky_archive):
    """Keys come in S3's byte order ('a-b/…' < 'a.jpg' < 'a/b.jpg'), also under a prefix."""
    keys = [o.key for o in tricky_archive.list()]
    assert keys == s3_sorted(TRICKY_KEYS)
    assert keys.index("a-b/c.jpg") < keys.index("a.jpg") < keys.index("a/b.jpg")
    assert [o.key for o in tricky_archive.list("a/")] == s3_sorted(k for k in TRICKY_KEYS if k.startswith("a/"))


def test_local_listing_resumes_exactly_after_any_key(tricky_archive):
    """start_after = any listed key or any other string: the listing resumes right after it, so a listing
    cut anywhere and resumed is the full listing, without duplicates or gaps."""
    full = [o.key for o in tricky_archive.list()]
    cuts = [*full, "", "a", "a/", "a/b", "a/b/", "a-", "a.", "a.jpg/", "ab", "zz", "é", "0"]
    for cut in cuts:
        resumed = [o.key for o in tricky_archive.list(start_after=cut)]
        assert resumed == [k for k in full if k.encode() > cut.encode()], cut
        head = [k for k in full if k.encode() <= cut.encode()]
        assert head + resumed == full, cut
    under = [o.key for o in tricky_archive.list("a/", start_after="a/b.jpg")]
    assert under == ["a/b.jpg.bak", "a/b/c.jpg"]


# ----------------------------------------------------------------------------------------- scan_archive paging

BIG_PARKS, BIG_DAYS, PER_PARTITION = ("donana", "snieves"), (MAY1, MAY2, MAY3), 1800  # 10,800 objects: 3 pages


@pytest.fixture(scope="module")
def big_archive(tmp_path_factory) -> Path:
    """10,800 tiny objects: 2 parks x 3 days, spread over species/camera folders (keys interleave days)."""
    root = tmp_path_factory.mktemp("big-archive")
    for park in BIG_PARKS:
        for i in range(PER_PARTITION * len(BIG_DAYS)):
            when = BIG_DAYS[i % len(BIG_DAYS)] + timedelta(seconds=i)
            put(root, f"{park}/{('lyn', 'sus')[i % 2]}/cam{i % 7}/img{i:05d}.jpg", when, b"x")
    return root


def test_scan_archive_pages_over_ticks_and_matches_one_shot_scan(big_archive):
    """With no time budget the listing stops after each 5,000-object batch, keeps its place and partial
    fingerprints in the (JSON) cursor, and the paged result equals a one-shot scan and the per-partition
    fingerprints that raw_images computes. Other cursor entries survive."""
    store = LocalArchive(big_archive)
    listing = [o.key for o in store.list()]
    assert len(listing) == 10800

    scan, cursor = scan_archive(store, {"pending": {"x|y": "1"}}, budget_s=0)
    assert scan is None
    assert cursor["scan"]["after"] == listing[4999]
    assert cursor["pending"] == {"x|y": "1"}
    calls = 1
    while scan is None:
        assert cursor["scan"]["after"] == listing[5000 * calls - 1]  # each page starts where the last stopped
        scan, cursor = scan_archive(store, json.loads(json.dumps(cursor)), budget_s=0)
        calls += 1
        assert calls < 6
    assert calls == 3
    assert cursor == {"pending": {"x|y": "1"}}  # the finished listing leaves the cursor

    one_shot, rest = scan_archive(store, {}, budget_s=600)
    assert one_shot is not None and rest == {}
    assert scan.fingerprints() == one_shot.fingerprints()
    expected = {(park, arrival_day(day)): fingerprint_of(o for o in store.list(f"{park}/")
                                                         if arrival_day(o.last_modified) == arrival_day(day))
                for park in BIG_PARKS for day in BIG_DAYS}
    assert scan.fingerprints() == expected
    assert all(Fingerprint.parse(fp).count == PER_PARTITION for fp in expected.values())


def test_sensor_continues_a_long_listing_over_ticks(big_archive, monkeypatch):
    """The sensor requests nothing while the listing is unfinished, then every partition once it is."""
    original = sensors.scan_archive
    monkeypatch.setattr(sensors, "scan_archive", lambda store, cursor, **kw: original(store, cursor, budget_s=0, **kw))
    instance = dg.DagsterInstance.ephemeral()
    first = tick(instance, big_archive)
    assert not first.run_requests and registered(instance) == {park_partitions.name: [],
                                                               arrival_day_partitions.name: []}
    assert "scan" in json.loads(first.cursor)
    second = tick(instance, big_archive, first.cursor)
    assert not second.run_requests and "scan" in json.loads(second.cursor)
    third = tick(instance, big_archive, second.cursor)
    assert "scan" not in json.loads(third.cursor)
    assert requested(third, instance) == fingerprints_on_disk(big_archive)
    assert len(third.run_requests) == 2  # per park, one run over its three days


# ------------------------------------------------------------------------------------------------- the sensor


class Collect(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]):
        super().__init__(logging.DEBUG)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def warnings_in(records: list[logging.LogRecord]) -> str:
    return "\n".join(r.getMessage() for r in records if r.levelno >= logging.WARNING)


def tick(instance, root: Path, cursor: str | None = None, logs: list | None = None) -> dg.SensorResult:
    """One evaluation of archive_arrivals, as the daemon would run it; its log records go to `logs`."""
    context = dg.build_sensor_context(instance=instance, cursor=cursor,
                                      resources={"archive": ArchiveResource(uri=str(root)),
                                                 "day_keys": DayKeyLists(uri=str(day_keys_folder(root)))})
    if logs is not None:  # the sensor's logger does not propagate to the root logger (caplog)
        context.log.addHandler(Collect(logs))
    result = arrivals_sensor()(context)
    assert isinstance(result, dg.SensorResult)
    return result


def day_keys_folder(root: Path) -> Path:
    """The sensor's key lists for an archive: beside it, never inside it (it would be listed)."""
    return root.parent / f"{root.name}-day-keys"


def requested(result: dg.SensorResult, instance) -> dict[tuple[str, str], str]:
    """(park, day) -> fingerprint of each partition the run requests cover, checking their shape on the way:
    one partition, or a range of them as the run will resolve it, retried by Dagster if it fails."""
    pending = json.loads(result.cursor)["pending"]
    found = {}
    for request in result.run_requests:
        assert request.tags["wildbench/trigger"] == "archive_arrivals" and request.tags[DAY_KEYS_TAG] == "1"
        assert request.tags["dagster/max_retries"] == "2"
        if request.partition_key is not None:
            dims = request.partition_key.keys_by_dimension
            parts = [(dims[PARK], dims[ARRIVAL_DAY])]
            assert request.tags["wildbench/fingerprint"] == pending["|".join(parts[0])][0]
            assert request.run_key.startswith(f"{parts[0][0]}|{parts[0][1]}|{request.tags['wildbench/fingerprint']}|")
        else:
            with dg.partition_loading_context(dynamic_partitions_store=instance):  # registered by the tick
                keys = park_day_partitions.get_partition_keys_in_range(request.partition_key_range)
            dims = [park_day_partitions.get_partition_key_from_str(str(k)).keys_by_dimension for k in keys]
            parts = [(d[PARK], d[ARRIVAL_DAY]) for d in dims]
            assert 1 < len(parts) <= INGEST_BACKFILL.max_partitions_per_run
        for part in parts:
            assert part not in found
            found[part] = pending["|".join(part)][0]
    return found


def registered(instance) -> dict[str, list[str]]:
    """The parks and days registered so far, in the order they were added (the order ranges follow)."""
    return {name: list(instance.get_dynamic_partitions(name))
            for name in (park_partitions.name, arrival_day_partitions.name)}




def ingest(instance, root: Path, data: Path, parts) -> None:
    """Really materialize raw_images for the partitions (what the requested ingest runs would store)."""
    resources = {"archive": ArchiveResource(uri=str(root)), "taxonomy": TaxonomyResource(),
                 "parquet_io_manager": ParquetIOManager(base_dir=str(data)),
                 "day_keys": DayKeyLists(uri=str(day_keys_folder(root)))}
    for park, day in parts:
        result = dg.materialize([raw_images], partition_key=dg.MultiPartitionKey({PARK: park, ARRIVAL_DAY: day}),
                                instance=instance, resources=resources)
        assert result.success


def fingerprints_on_disk(root: Path) -> dict[tuple[str, str], str]:
    """Independently: each (park, day)'s fingerprint from a full listing, as raw_images computes it."""
    store = LocalArchive(root)
    parts = {(o.key.split("/", 1)[0], arrival_day(o.last_modified)) for o in store.list() if "/" in o.key}
    return {(p, d): fingerprint_of(o for o in store.list(f"{p}/") if arrival_day(o.last_modified) == d)
            for p, d in parts}


@pytest.fixture
def archive(tmp_path) -> Path:
    """Two parks, two arrival days each (three objects per partition)."""
    root = tmp_path / "archive"
    for park, species in (("donana", "lyn"), ("snieves", "sus")):
        for day in (MAY1, MAY2):
            for i in range(3):
                put(root, f"{park}/{species}/cam{i % 2}/{day:%d}-{i}.jpg", day + timedelta(minutes=i))
    return root


def test_sensor_requests_every_new_partition_and_registers_parks_and_days(archive):
    """First tick: one run per (park, day) that holds objects, keyed by its fingerprint, and the new parks
    and days added as dynamic partitions. A second tick with its cursor requests nothing."""
    instance = dg.DagsterInstance.ephemeral()
    result = tick(instance, archive)
    assert requested(result, instance) == fingerprints_on_disk(archive)
    assert set(requested(result, instance)) == {(p, d) for p in ("donana", "snieves")
                                                for d in ("2024-05-01", "2024-05-02")}
    assert registered(instance) == {park_partitions.name: ["donana", "snieves"],
                                    arrival_day_partitions.name: ["2024-05-01", "2024-05-02"]}

    again = tick(instance, archive, result.cursor)
    assert again.run_requests == [] and registered(instance)[arrival_day_partitions.name] == [
        "2024-05-01", "2024-05-02"]  # nothing registered twice


def test_sensor_after_ingest_requests_only_what_changed(archive, tmp_path):
    """Once raw_images is materialized, its stored data versions match: even a fresh cursor requests
    nothing. Then an added object re-requests just its partition (new run key, once), and a day whose
    objects all vanished is re-requested empty and warned about, until the empty ingest is stored."""
    instance = dg.DagsterInstance.ephemeral()
    first = tick(instance, archive)
    ingest(instance, archive, tmp_path / "data", requested(first, instance))
    assert stored_fingerprints(instance) == requested(first, instance)

    fresh = tick(instance, archive)  # empty cursor: only the instance's data versions say what is done
    assert fresh.run_requests == []
    settled = tick(instance, archive, first.cursor)  # the pending runs have finished: dropped from the cursor
    assert settled.run_requests == [] and json.loads(settled.cursor)["pending"] == {}

    put(archive, "donana/lyn/cam0/late.jpg", MAY1 + timedelta(hours=5))
    changed = tick(instance, archive, settled.cursor)
    day = ("donana", "2024-05-01")
    assert requested(changed, instance) == {day: fingerprints_on_disk(archive)[day]}
    old_keys = {r.run_key for r in first.run_requests}
    assert changed.run_requests[0].run_key not in old_keys
    assert tick(instance, archive, changed.cursor).run_requests == []  # pending: not requested twice
    ingest(instance, archive, tmp_path / "data", requested(changed, instance))
    assert tick(instance, archive, changed.cursor).run_requests == []

    for path in (archive / "snieves").rglob("02-*.jpg"):
        path.unlink()
    logs = []
    gone = tick(instance, archive, changed.cursor, logs)
    assert requested(gone, instance) == {("snieves", "2024-05-02"): EMPTY_FINGERPRINT}
    assert "park=snieves day=2024-05-02 vanished" in warnings_in(logs)
    assert tick(instance, archive, gone.cursor).run_requests == []
    ingest(instance, archive, tmp_path / "data", requested(gone, instance))  # the day's tables become empty
    assert stored_fingerprints(instance)[("snieves", "2024-05-02")] == EMPTY_FINGERPRINT
    logs = []
    after = tick(instance, archive, logs=logs)
    assert after.run_requests == [] and warnings_in(logs) == ""


def test_sensor_reingests_a_park_whose_manifest_changed(archive, tmp_path):
    """A park's manifest is part of its partitions' fingerprints: a corrected one re-requests every day of
    that park (and no other park), once; raw_images stores the same fingerprint, so then nothing is due."""
    put(archive, "donana/manifest.json", MAY1, coco_manifest({f"lyn/cam{i % 2}/01-{i}.jpg": "lyn" for i in range(3)}))
    instance = dg.DagsterInstance.ephemeral()
    first = tick(instance, archive)
    ingest(instance, archive, tmp_path / "data", requested(first, instance))
    assert tick(instance, archive).run_requests == []

    put(archive, "donana/manifest.json", MAY3,  # corrected (same size): a new etag, as on S3 or an edited file
        coco_manifest({f"lyn/cam{i % 2}/01-{i}.jpg": "vul" for i in range(3)}))
    changed = tick(instance, archive, first.cursor)
    assert set(requested(changed, instance)) == {("donana", "2024-05-01"), ("donana", "2024-05-02")}
    assert tick(instance, archive, changed.cursor).run_requests == []  # pending: not twice
    ingest(instance, archive, tmp_path / "data", requested(changed, instance))
    assert tick(instance, archive).run_requests == []


def test_sensor_caps_partitions_per_tick_and_requests_the_rest_later(archive, monkeypatch):
    """With a cap of 2 partitions, four new partitions take two ticks (oldest day first), then nothing is left."""
    monkeypatch.setattr(sensors, "MAX_INGEST_PARTITIONS_PER_TICK", 2)
    instance = dg.DagsterInstance.ephemeral()
    first = tick(instance, archive)
    assert set(requested(first, instance)) == {("donana", "2024-05-01"), ("snieves", "2024-05-01")}
    second = tick(instance, archive, first.cursor)
    assert set(requested(second, instance)) == {("donana", "2024-05-02"), ("snieves", "2024-05-02")}
    assert registered(instance)[arrival_day_partitions.name] == ["2024-05-01", "2024-05-02"]  # by the first tick
    third = tick(instance, archive, second.cursor)
    assert third.run_requests == []
    assert {**requested(first, instance), **requested(second, instance)} == fingerprints_on_disk(archive)


def test_sensor_caps_runs_per_tick_and_leaves_the_rest_unpublished(archive, monkeypatch):
    """One run a tick: the oldest day's partitions go in one run (a range over the parks), the newer day
    waits, neither requested nor marked pending, and comes next tick."""
    monkeypatch.setattr(sensors, "MAX_INGEST_RUNS_PER_TICK", 1)
    instance = dg.DagsterInstance.ephemeral()
    logs = []
    first = tick(instance, archive, logs=logs)
    [request] = first.run_requests
    assert request.partition_key is None and request.partition_key_range is not None
    taken = requested(first, instance)
    assert sorted(taken) == [("donana", "2024-05-01"), ("snieves", "2024-05-01")]
    assert sorted(json.loads(first.cursor)["pending"]) == sorted(f"{p}|{d}" for p, d in taken)
    assert "2 more changed partitions wait for the next tick" in "\n".join(r.getMessage() for r in logs)
    second = tick(instance, archive, first.cursor)
    assert set(requested(second, instance)) == set(fingerprints_on_disk(archive)) - set(taken)
    assert {**taken, **requested(second, instance)} == fingerprints_on_disk(archive)


def test_sensor_skips_park_folders_that_cannot_be_partition_keys(archive):
    """Objects under `bad|park/` are skipped with a warning: no run, no partition key containing '|'."""
    put(archive, "bad|park/lyn/cam0/x.jpg", MAY1)
    put(archive, "bad|park/lyn/cam0/y.jpg", MAY2)
    put(archive, "loose.jpg", MAY1)  # at the root: belongs to no park
    instance = dg.DagsterInstance.ephemeral()
    logs = []
    result = tick(instance, archive, logs=logs)
    assert {p for p, _ in requested(result, instance)} == {"donana", "snieves"}
    assert registered(instance)[park_partitions.name] == ["donana", "snieves"]  # no key containing '|'
    assert "2 objects under 'bad|park'/ skipped" in warnings_in(logs)


def test_sensor_reingests_a_day_restored_after_it_vanished(archive, tmp_path):
    """A day is ingested, all its objects are moved away (ingested empty), then moved back unchanged
    (`mv`, `rsync -a`, or an S3 undelete keep mtimes/etags). The day must be re-ingested: its request
    needs a run key no earlier run of this sensor carries, or the daemon skips it as already done."""
    instance = dg.DagsterInstance.ephemeral()
    part = ("donana", "2024-05-01")

    def ingest_as_daemon(result):  # the runs the daemon launches carry the sensor's run key and tags
        for request in result.run_requests:
            assert dg.materialize(
                [raw_images], partition_key=request.partition_key, instance=instance,
                tags={**request.tags, "dagster/run_key": request.run_key, "dagster/sensor_name": "archive_arrivals"},
                resources={"archive": ArchiveResource(uri=str(archive)), "taxonomy": TaxonomyResource(),
                           "parquet_io_manager": ParquetIOManager(base_dir=str(tmp_path / "data")),
                           "day_keys": DayKeyLists(uri=str(day_keys_folder(archive)))},
            ).success

    first = tick(instance, archive)
    ingest_as_daemon(first)

    aside = tmp_path / "aside"
    aside.mkdir()
    moved = sorted((archive / "donana").rglob("01-*.jpg"))
    for path in moved:
        os.rename(path, aside / path.name)
    gone = tick(instance, archive, first.cursor)
    assert requested(gone, instance) == {part: EMPTY_FINGERPRINT}
    ingest_as_daemon(gone)
    assert stored_fingerprints(instance)[part] == EMPTY_FINGERPRINT

    for path in moved:
        os.rename(aside / path.name, path)
    back = tick(instance, archive, gone.cursor)
    # the planner does want to re-ingest it
    assert requested(back, instance) == {part: requested(first, instance)[part]}
    run_key = back.run_requests[0].run_key
    assert not instance.get_runs(filters=dg.RunsFilter(tags={"dagster/run_key": run_key}))


# ------------------------------------------------------------------ changes `wildbench run` must not miss

def wildbench_run(archive: Path, home: Path, capsys, *args: str) -> tuple[int, str]:
    """`wildbench run --archive …` in process on the instance and data folder under `home`: (exit code, output)."""
    from wildbench_assets.cli import main

    code = main(["run", "--archive", str(archive), *args])
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.fixture
def cli_home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("WILDBENCH_DATA", str(tmp_path / "data"))
    return tmp_path


def coco_manifest(labels: dict[str, str], locations: dict[str, str] | None = None) -> bytes:
    """A COCO Camera Traps manifest: file name -> species code (one box each), optional locations."""
    codes = sorted(set(labels.values()))
    return json.dumps({
        "images": [{"id": name, "file_name": name, **({"location": locations[name]} if locations else {})}
                   for name in labels],
        "annotations": [{"id": i, "image_id": name, "category_id": codes.index(code) + 1, "bbox": [1, 1, 5, 5]}
                        for i, (name, code) in enumerate(labels.items())],
        "categories": [{"id": i + 1, "name": code} for i, code in enumerate(codes)],
    }).encode()


def test_run_ingests_again_when_a_manifest_is_corrected(cli_home, capsys):
    """A corrected manifest (one image relabelled) changes no image, but it changes what the images are:
    `wildbench run` re-ingests the park instead of answering `nothing to do`."""
    import pandas as pd

    archive = cli_home / "archive"
    for i in range(3):
        put(archive, f"donana/cam0/{i}.jpg", MAY1 + timedelta(minutes=i))
    put(archive, "donana/manifest.json", MAY1, coco_manifest({f"cam0/{i}.jpg": "lyn" for i in range(3)}))
    assert wildbench_run(archive, cli_home, capsys, "--select", "raw_images")[0] == 0
    assert "nothing to do" in wildbench_run(archive, cli_home, capsys, "--select", "raw_images")[1]

    put(archive, "donana/manifest.json", MAY1,  # same arrival time, one label corrected
        coco_manifest({"cam0/0.jpg": "lyn", "cam0/1.jpg": "sus", "cam0/2.jpg": "lyn"}))
    code, out = wildbench_run(archive, cli_home, capsys, "--select", "raw_images")
    assert code == 0 and "nothing to do" not in out
    table = pd.read_parquet(cli_home / "data" / "raw_images").set_index("path")
    assert table.loc["donana/cam0/1.jpg", "species"] == "sus"
    assert "nothing to do" in wildbench_run(archive, cli_home, capsys, "--select", "raw_images")[1]


def test_run_remakes_a_deleted_or_garbage_parquet_partition(cli_home, capsys):
    """A stored table the instance says is current but whose file was deleted, or overwritten with
    garbage, is named and materialized again (with what reads it), never `nothing to do`."""
    import pandas as pd

    archive = cli_home / "archive"
    for i in range(3):
        put(archive, f"donana/lyn/cam0/{i}.jpg", MAY1 + timedelta(minutes=i))
    select = ("--select", "raw_images,image_metadata")
    assert wildbench_run(archive, cli_home, capsys, *select)[0] == 0
    raw, metadata = (cli_home / "data" / name / "donana" / "2024-05-01.parquet" for name in ("raw_images",
                                                                                         "image_metadata"))
    expected = pd.read_parquet(metadata)

    metadata.unlink()
    code, out = wildbench_run(archive, cli_home, capsys, *select)
    assert code == 0 and "nothing to do" not in out and f"{metadata} is missing" in out
    assert pd.read_parquet(metadata).path.tolist() == expected.path.tolist()

    raw.write_bytes(b"not parquet at all")
    code, out = wildbench_run(archive, cli_home, capsys, *select)
    assert code == 0 and f"{raw} is not a Parquet file" in out
    assert len(pd.read_parquet(raw)) == 3 and len(pd.read_parquet(metadata)) == 3
    assert "nothing to do" in wildbench_run(archive, cli_home, capsys, *select)[1]


def test_cameras_in_card_folders_under_a_manifest_stay_apart(cli_home, capsys):
    """`D01/100RECNX/` and `D02/100RECNX/` under a park's manifest (no `location`, no species folder) are two
    cameras: the same-second frames of one species in each are both kept, not burst-cleaned as one camera."""
    import pandas as pd
    from PIL import Image

    from wildbench_assets.lib.demo_archive import encode_jpeg, exif_bytes

    archive = cli_home / "archive"
    taken = datetime(2024, 4, 2, 6, 30)
    names = [f"{camera}/100RECNX/IMG_{i:04d}.JPG" for camera in ("D01", "D02") for i in range(2)]
    for name in names:
        i = int(name[-6:-4])
        image = Image.new("RGB", (64, 48), (40 * i + 20, 90, 60))
        put(archive, f"donana/{name}", MAY1, encode_jpeg(image, exif_bytes(taken + timedelta(seconds=30 * i),
                                                                           "RECONYX", "HC600", "colon")))
    put(archive, "donana/manifest.json", MAY1, coco_manifest(dict.fromkeys(names, "sus")))
    code, out = wildbench_run(archive, cli_home, capsys, "--select", "raw_images,image_metadata,curated_images")
    assert code == 0, out
    curated = pd.read_parquet(cli_home / "data" / "curated_images")
    assert sorted(curated.path) == sorted(f"donana/{n}" for n in names)  # no frame lost
    assert curated.groupby("camera").size().to_dict() == {"donana/D01/100RECNX": 2, "donana/D02/100RECNX": 2}


def test_run_validates_and_applies_a_config_on_an_up_to_date_instance(cli_home, capsys):
    """`--config` on an up-to-date instance is validated (a bad one is refused, exit 2) and applied: what
    was made with another config is made again with it (here: a wider burst interval drops a frame);
    the same config again re-runs nothing and says so."""
    import pandas as pd
    from PIL import Image

    from wildbench_assets.lib.demo_archive import encode_jpeg, exif_bytes

    archive = cli_home / "archive"
    taken = datetime(2024, 4, 2, 6, 30)
    for i in range(3):
        image = Image.new("RGB", (64, 48), (40 * i + 20, 90, 60))
        put(archive, f"donana/lyn/cam0/{i}.jpg", MAY1,
            encode_jpeg(image, exif_bytes(taken + timedelta(seconds=5 * i), "RECONYX", "HC600", "colon")))
    select = ("--select", "raw_images,image_metadata,curated_images")
    assert wildbench_run(archive, cli_home, capsys, *select)[0] == 0
    curated = cli_home / "data" / "curated_images" / "donana.parquet"
    assert len(pd.read_parquet(curated)) == 3

    for bad in ('{"curated_images": {"mode": "bogus"}}', '{"curated_images": {"burst_interval": 9}}',
                '{"raw_images": {"anything": 1}}', '{"curated_images": {"burst_interval_s": -1}}'):
        code, out = wildbench_run(archive, cli_home, capsys, *select, "--config", bad)
        assert code == 2 and "--config" in out and "nothing to do" not in out, out

    wider = ("--config", '{"curated_images": {"burst_interval_s": 8}}')
    code, out = wildbench_run(archive, cli_home, capsys, *select, *wider)
    assert code == 0 and "nothing to do" not in out and "curated_images: --config differs" in out
    assert len(pd.read_parquet(curated)) == 2  # the frame 5 s after the first is a burst now
    code, out = wildbench_run(archive, cli_home, capsys, *select, *wider)
    assert "nothing to do" in out and "already made with this --config" in out


# ------------------------------------------------------------------------------------------ partition ranges

def _registered(parks: list[str], days: list[str]) -> dg.DagsterInstance:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(park_partitions.name, parks)
    instance.add_dynamic_partitions(arrival_day_partitions.name, days)
    return instance


def _cut(instance, pairs, size=100) -> list[list[tuple[str, str]]]:
    chunks = partition_chunks(park_day_partitions, [park_day_key(p, d) for p, d in pairs], size, instance)
    parsed = [[park_day_partitions.get_partition_key_from_str(k).keys_by_dimension for k in c] for c in chunks]
    return sorted([(d[PARK], d[ARRIVAL_DAY]) for d in chunk] for chunk in parsed)


def test_partition_ranges_never_span_a_partition_that_was_not_asked_for():
    """An unchanged day between two changed ones splits the range; ranges follow the order the days were
    registered in (a late-registered older day sorts after), and a range resolves to exactly its keys."""
    instance = _registered(["a"], ["d1", "d2", "d3", "d4", "d0"])  # d0 arrived (was registered) last
    assert _cut(instance, [("a", "d1"), ("a", "d2"), ("a", "d4")]) == [[("a", "d1"), ("a", "d2")], [("a", "d4")]]
    assert _cut(instance, [("a", "d4"), ("a", "d0")]) == [[("a", "d4"), ("a", "d0")]]  # adjacent in add order
    assert _cut(instance, [("a", "d1"), ("a", "d0")]) == [[("a", "d0")], [("a", "d1")]]
    many = [("a", d) for d in ("d1", "d2", "d3", "d4", "d0")]
    assert [len(c) for c in _cut(instance, many, size=2)] == [1, 2, 2]  # the run size caps a range


def test_partition_ranges_refuse_a_key_that_is_not_registered():
    """An unregistered day has no place in the order a range is resolved by: refused, never dropped."""
    instance = _registered(["a"], ["d1", "d2"])
    with pytest.raises(ValueError, match="missing"):
        partition_chunks(park_day_partitions, [park_day_key("a", "d1"), park_day_key("a", "d9")], 100, instance)


def test_the_shipped_instances_retry_failed_runs_when_asked(tmp_path):
    """The sensor's ingest runs ask for two retries; both instance configurations honour the tag."""
    import shutil

    from wildbench_assets.settings import PROJECT_ROOT

    for config in (PROJECT_ROOT / "dagster.yaml", PROJECT_ROOT / "deploy" / "dagster.yaml"):
        text = config.read_text()
        assert "run_retries:\n  enabled: true\n  max_retries: 0" in text, config
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 0
