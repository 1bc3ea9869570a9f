"""Sensors: custom dataset requests dropped into the requests inbox start one run each."""

import json

import dagster as dg

from wildbench_assets.lib.requests import REQUEST_ID
from wildbench_assets.partitions import request_partitions, submission_partitions
from wildbench_assets.resources.inbox import RequestInbox

MAX_RUNS_PER_TICK = 5

custom_export_job = dg.define_asset_job(
    "custom_export_job",
    selection=dg.AssetSelection.assets("custom_export"),
    partitions_def=request_partitions,
    description="One custom dataset request.",
)


def new_inbox_files(store, cursor: str | None, suffixes: tuple[str, ...], limit: int):
    """(files after the cursor, oldest first, at most `limit`; the new cursor). Files are (id, key, etag)
    for `<id><suffix>` at the inbox top; the cursor is the (last-modified, key) of the newest one taken."""
    after = tuple(json.loads(cursor)["after"]) if cursor else ("", "")
    found = []
    for o in store.list():
        name = o.key.rsplit("/", 1)[-1]
        suffix = next((s for s in suffixes if name.endswith(s)), None)
        if suffix is None or any(name.endswith(x) for x in (".error.json", ".result.json", ".score.json")):
            continue
        if (o.last_modified.isoformat(), o.key) > after:
            found.append((o.last_modified.isoformat(), o.key, o.etag, name[: -len(suffix)]))
    found.sort()
    taken = found[:limit]
    if taken:
        after = (taken[-1][0], taken[-1][1])
    return [(i, k, e) for _m, k, e, i in taken], json.dumps({"after": list(after)})


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
    """Watches the requests inbox for `<id>.json`; starts one `custom_export` run per new request.
    Deterministic run keys (id + etag), a small cursor, at most 5 runs a tick."""
    return _runs_for(context, inbox, request_partitions, "wildbench/request", (".json",))


submission_job = dg.define_asset_job(
    "submission_job",
    selection=dg.AssetSelection.assets("submission_scores"),
    partitions_def=submission_partitions,
    description="Score one researcher's submission on the test split.",
)


@dg.sensor(job=submission_job, minimum_interval_seconds=15, default_status=dg.DefaultSensorStatus.RUNNING)
def submissions_sensor(context: dg.SensorEvaluationContext, submissions: RequestInbox):
    """Watches the submissions location for `<id>.json` (MegaDetector 1.6 or COCO results) or `<id>.csv`
    (image_id,label); starts one `submission_scores` run per new file."""
    return _runs_for(context, submissions, submission_partitions, "wildbench/submission", (".json", ".csv"))
