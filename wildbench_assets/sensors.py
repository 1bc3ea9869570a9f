"""Sensors: new trap images in the archive, custom dataset requests and submissions in their inboxes,
and the automation sensor that evaluates the assets' automation conditions."""

import hashlib
import json
import time

import dagster as dg

from wildbench_assets import settings
from wildbench_assets.assets.ingest import INGEST_BACKFILL
from wildbench_assets.ingest_state import latest_ingest_ids, stored_fingerprints
from wildbench_assets.jobs import custom_export_job, ingest_job, submission_job
from wildbench_assets.lib.arrivals import ArchiveScan, plan_ingest
from wildbench_assets.lib.dataset_requests import PROGRESS_SUFFIX, REQUEST_ID
from wildbench_assets.partitions import (
    arrival_day_partitions,
    park_day_key,
    park_day_partitions,
    park_partitions,
    partition_chunks,
    range_tags,
    request_partitions,
    submission_partitions,
)
from wildbench_assets.resources.archive import ArchiveResource
from wildbench_assets.resources.day_keys import DAY_KEYS_TAG, DayKeyLists, ListingSpill
from wildbench_assets.resources.inbox import RequestInbox

MAX_RUNS_PER_TICK = 5


# A tick must stay well inside Dagster's 60 s sensor evaluation limit: past this budget the listing
# stops and the next tick resumes it after the last key seen (the partial fingerprints ride in the cursor).
LISTING_BUDGET_S = 20.0
LISTING_PAGE = 5000  # objects per page: the budget is checked, and a spill page written, once per page
# A tick requests at most this many partitions (each gets its key list written first: ~20 ms a list on S3)
# in at most this many runs, each run a contiguous range of up to the ingest's BackfillPolicy size.
MAX_INGEST_PARTITIONS_PER_TICK = 300
MAX_INGEST_RUNS_PER_TICK = 25


def scan_archive(store, cursor: dict, budget_s: float = LISTING_BUDGET_S,
                 spill: ListingSpill | None = None) -> tuple[ArchiveScan | None, dict]:
    """(the whole archive's scan if this call finished it, else None; the cursor to keep). With `spill`,
    every page is also kept aside (its place rides in the cursor), so the days that changed get key lists."""
    state = cursor.get("scan") or {}
    scan = ArchiveScan.from_json(state) if state else ArchiveScan.empty()
    after = state.get("after")
    deadline = time.monotonic() + budget_s
    listing = store.list(start_after=after)
    while True:
        batch = [o for _, o in zip(range(LISTING_PAGE), listing)]
        last = scan.add(batch)
        if spill is not None:
            spill.add(batch)
        after = last or after
        if len(batch) < LISTING_PAGE:
            return scan, {k: v for k, v in cursor.items() if k != "scan"}
        if time.monotonic() > deadline:
            kept = {"spill": spill.to_json()} if spill is not None else {}
            return None, {**cursor, "scan": {**scan.to_json(), "after": after, **kept}}


def list_arrivals(context: dg.SensorEvaluationContext, archive: ArchiveResource, day_keys: DayKeyLists):
    """The `archive_arrivals` sensor's evaluation. Lists the archive and starts one ingest run per new or
    changed (park, arrival day): changed means its fingerprint (count, newest modification, hash of keys +
    etags and of the park's manifests' etags, `lib.arrivals.partition_fingerprint`) differs from the data
    version the last ingest of that partition stored. New parks and days are registered as partitions; a
    day whose objects vanished is re-ingested (its tables become empty) and reported. The run key
    carries the fingerprint and the partition's last ingest, so each change of a day is ingested once.
    Changed partitions go into runs of contiguous ranges (up to the ingest's BackfillPolicy, 100 a run): at
    most 300 partitions in 25 runs a tick; a long listing is continued over several ticks. Before
    requesting a run, each day's key list is written (`resources/day_keys.py`), so the run reads that
    day's objects only."""
    cursor = json.loads(context.cursor) if context.cursor else {}
    store = archive.open()
    spill = day_keys.open().spill((cursor.get("scan") or {}).get("spill"))
    scan, cursor = scan_archive(store, cursor, spill=spill)
    if scan is None:
        context.log.info(f"listing continues next tick after {cursor['scan']['after']!r}")
        return dg.SensorResult(cursor=json.dumps(cursor))
    for park, count in scan.rejected_parks.items():
        context.log.warning(f"{count} objects under {park!r}/ skipped: a park folder name must match "
                            "[A-Za-z0-9][A-Za-z0-9_.-]* (it becomes a partition key)")
    current = scan.fingerprints()
    stored = stored_fingerprints(context.instance)
    # A request stays pending until an ingest of its partition lands (the partition's latest storage id
    # moves on); the run key names that id too, so the same content arriving again after a vanish
    # (files moved away and back) is a new request, not a run key the daemon skips as done.
    landed = latest_ingest_ids(context.instance)
    pending = {tuple(k.split("|", 1)): v for k, v in cursor.get("pending", {}).items()}
    pending = {p: (fp, after) for p, (fp, after) in pending.items() if landed.get(p, 0) == after}
    plan = plan_ingest(current, stored, {p: fp for p, (fp, _after) in pending.items()},
                       MAX_INGEST_PARTITIONS_PER_TICK)
    for park, day in plan.vanished:
        context.log.warning(f"every object of park={park} day={day} vanished from {store.uri}: re-ingesting "
                            "it so its tables become empty")
    known_parks = set(context.instance.get_dynamic_partitions(park_partitions.name))
    known_days = set(context.instance.get_dynamic_partitions(arrival_day_partitions.name))
    new_parks, new_days = sorted({p for p, _ in current} - known_parks), sorted({d for _, d in current} - known_days)
    # Registered here rather than as the result's partition requests (which the daemon applies after the
    # tick): a range is resolved again when its run starts, against the partitions' order then, so the
    # order must be fixed before the ranges are cut.
    for name, added in ((park_partitions.name, new_parks), (arrival_day_partitions.name, new_days)):
        if added:
            context.instance.add_dynamic_partitions(name, added)
            context.log.info(f"registered {len(added)} new {name}: {added[:5]}{' …' if len(added) > 5 else ''}")
    requests, to_run, deferred = ingest_requests(context.instance, plan.to_run, landed)
    if plan.deferred + deferred:
        context.log.info(f"{plan.deferred + deferred} more changed partitions wait for the next tick")
    spill.publish({(park, day): fp for park, day, fp in to_run})  # before the runs that read them
    pending.update({(park, day): (fp, landed.get((park, day), 0)) for park, day, fp in to_run})
    cursor["pending"] = {f"{p}|{d}": list(v) for (p, d), v in pending.items()}
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor))


def ingest_requests(instance, to_run: list[tuple[str, str, str]], landed: dict):
    """(run requests, the (park, day, fingerprint) they cover, how many were left for the next tick).
    One run per contiguous range of changed partitions; a one-partition run is an ordinary partition
    request. The run key names each partition's fingerprint and last ingest, so each change of a day is
    ingested once. A failed run is retried by Dagster (`dagster/max_retries`); after that its partitions
    wait for their content to change, or for `wildbench run`."""
    by_key = {str(park_day_key(park, day)): (park, day, fp) for park, day, fp in to_run}
    chunks = partition_chunks(park_day_partitions, list(by_key), INGEST_BACKFILL.max_partitions_per_run or 1,
                              instance)
    oldest_first = {key: i for i, key in enumerate(by_key)}  # `to_run` is oldest day first
    chunks.sort(key=lambda chunk: min(oldest_first[k] for k in chunk))
    taken = chunks[:MAX_INGEST_RUNS_PER_TICK]
    requests, covered = [], []
    for chunk in taken:
        parts = [by_key[k] for k in chunk]
        covered += parts
        keys = [f"{park}|{day}|{fp}|after-{landed.get((park, day), 0)}" for park, day, fp in parts]
        tags = {"wildbench/trigger": "archive_arrivals", DAY_KEYS_TAG: "1", "dagster/max_retries": "2"}
        if len(chunk) == 1:
            requests.append(dg.RunRequest(run_key=keys[0], partition_key=park_day_key(*parts[0][:2]),
                                          tags={**tags, "wildbench/fingerprint": parts[0][2]}))
        else:
            digest = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]
            requests.append(dg.RunRequest(run_key=f"{chunk[0]}..{chunk[-1]}|{len(chunk)}|{digest}",
                                          tags={**tags, **range_tags(chunk)}))
    return requests, covered, sum(len(c) for c in chunks[len(taken):])


def arrivals_sensor() -> dg.SensorDefinition:
    """`archive_arrivals`, listing every WILDBENCH_ARRIVALS_INTERVAL_S seconds (read when it is built)."""
    return dg.sensor(name="archive_arrivals", job=ingest_job, minimum_interval_seconds=settings.arrivals_interval_s(),
                     default_status=dg.DefaultSensorStatus.RUNNING, description=list_arrivals.__doc__)(list_arrivals)


def automation_sensor() -> dg.AutomationConditionSensorDefinition:
    return dg.AutomationConditionSensorDefinition(
        "wildbench_automation",
        target=dg.AssetSelection.all(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=settings.automation_interval_s(),
        description="Evaluates the assets' automation conditions (see wildbench_assets/automation.py).",
    )


OUTCOME_SUFFIXES = (".error.json", ".result.json", ".score.json")


def new_inbox_files(store, cursor: str | None, suffixes: tuple[str, ...], limit: int):
    """(files to start now, oldest first, at most `limit`; the new cursor). Files are (id, key, etag) of
    `<id><suffix>` that have no outcome file (`<id>.result.json`, …) at least as new as themselves, or
    whose content (etag) differs from the one the outcome answered, and that were not already started
    with the same etag (the cursor keeps those until their outcome appears, then remembers which etag it
    answered). What was seen is tracked, not the newest time: a file moved in with an old mtime (`mv`,
    `cp -p`, `rsync -a`) is still new, and so is a request replaced by one with an older mtime."""
    state = json.loads(cursor) if cursor else {}
    started, answered = state.get("started", {}), state.get("answered", {})
    since = state.get("since", {})  # item -> time of the outcome it had when started (0: none)
    outcomes: dict[str, object] = {}
    found = []
    for o in store.list():
        name = o.key.rsplit("/", 1)[-1]
        if name.endswith(PROGRESS_SUFFIX):  # a run's progress report, neither a request nor an answer
            continue
        if name.endswith(OUTCOME_SUFFIXES):
            item = name[: -len(next(x for x in OUTCOME_SUFFIXES if name.endswith(x)))]
            outcomes[item] = max(outcomes.get(item, o.last_modified), o.last_modified)
            continue
        suffix = next((x for x in suffixes if name.endswith(x)), None)
        if suffix is not None:
            found.append((o.last_modified, o.key, o.etag, name[: -len(suffix)]))
    current = {item: (modified, etag) for modified, _key, etag, item in found}
    # an outcome newer than the one an item had when it was started answers the content that was started
    answered = {item: etag for item, etag in answered.items() if item in current}
    for item, etag in started.items():
        floor = since.get(item)
        if floor is None:  # a cursor from before `since` was kept: the file's own time, as before
            floor = current[item][0].timestamp() - 1e-6 if current.get(item, (0, None))[1] == etag else 0
        if item in current and item in outcomes and outcomes[item].timestamp() > floor:
            answered[item] = etag

    def waiting(modified, etag, item) -> bool:
        if item in answered:
            return answered[item] != etag  # content, not mtimes, says whether it was answered
        return not (item in outcomes and outcomes[item] >= modified)

    pending = [f for f in sorted(found) if waiting(f[0], f[2], f[3])]
    fresh = [f for f in pending if started.get(f[3]) != f[2]]
    taken = fresh[:limit]
    still = {item: etag for _m, _k, etag, item in pending if started.get(item) == etag}
    still.update({item: etag for _m, _k, etag, item in taken})
    since = {item: since.get(item, 0) for item in still}
    since.update({item: outcomes[item].timestamp() if item in outcomes else 0 for _m, _k, _e, item in taken})
    return [(i, k, e) for _m, k, e, i in taken], json.dumps({"started": still, "answered": answered,
                                                             "since": since})


def _runs_for(context, inbox: RequestInbox, partitions_def, tag: str, suffixes: tuple[str, ...]):
    files, cursor = new_inbox_files(inbox.open(), context.cursor, suffixes, MAX_RUNS_PER_TICK)
    run_requests, ids = [], []
    for item_id, key, etag in files:
        if not REQUEST_ID.match(item_id) or "/" in key:
            inbox.write_json(f"{item_id}.error.json",
                             {"error": "ids are 1-64 letters, digits, '.', '_' or '-', at the inbox top"})
            context.log.warning(f"skipped malformed name {key!r}")
            continue
        ids.append(item_id)
        run_requests.append(dg.RunRequest(run_key=f"{item_id}:{etag}", partition_key=item_id, tags={tag: item_id}))
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=[partitions_def.build_add_request(ids)] if ids else [],
        cursor=cursor,
    )


@dg.sensor(job=custom_export_job, minimum_interval_seconds=15, default_status=dg.DefaultSensorStatus.RUNNING)
def custom_export_requests(context: dg.SensorEvaluationContext, inbox: RequestInbox):
    """Watches the requests inbox for `<id>.json`; starts one `custom_export` run per request that has
    no outcome yet. Deterministic run keys (id + etag), a cursor of started requests, 5 runs a tick."""
    return _runs_for(context, inbox, request_partitions, "wildbench/request", (".json",))


@dg.sensor(job=submission_job, minimum_interval_seconds=15, default_status=dg.DefaultSensorStatus.RUNNING)
def submissions_sensor(context: dg.SensorEvaluationContext, submissions: RequestInbox):
    """Watches the submissions location for `<id>.json` (MegaDetector 1.6 or COCO results) or `<id>.csv`
    (image_id,label); starts one `submission_scores` run per new file."""
    return _runs_for(context, submissions, submission_partitions, "wildbench/submission", (".json", ".csv"))


def build_sensors() -> list[dg.SensorDefinition]:
    """Every sensor, intervals read from the environment now (when definitions are built)."""
    return [arrivals_sensor(), automation_sensor(), custom_export_requests, submissions_sensor]
