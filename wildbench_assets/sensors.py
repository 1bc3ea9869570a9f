"""Sensors: custom dataset requests dropped into the requests inbox start one run each."""

import json

import dagster as dg

from wildbench_assets.lib.requests import REQUEST_ID, request_id_of
from wildbench_assets.partitions import request_partitions
from wildbench_assets.resources.inbox import RequestInbox

MAX_RUNS_PER_TICK = 5

custom_export_job = dg.define_asset_job(
    "custom_export_job",
    selection=dg.AssetSelection.assets("custom_export"),
    partitions_def=request_partitions,
    description="One custom dataset request.",
)


@dg.sensor(job=custom_export_job, minimum_interval_seconds=15, default_status=dg.DefaultSensorStatus.RUNNING)
def custom_export_requests(context: dg.SensorEvaluationContext, inbox: RequestInbox):
    """Watches the requests inbox for `<id>.json`; starts one `custom_export` run per new request.
    Cursor: the (last-modified, key) of the newest request started, so it stays small."""
    cursor = json.loads(context.cursor) if context.cursor else {"after": ["", ""]}
    after = tuple(cursor["after"])
    store = inbox.open()
    new = sorted((o.last_modified.isoformat(), o.key, o.etag) for o in store.list()
                 if request_id_of(o.key) is not None and (o.last_modified.isoformat(), o.key) > after)
    run_requests, ids, skipped = [], [], []
    for modified, key, etag in new[:MAX_RUNS_PER_TICK]:
        request_id = request_id_of(key)
        after = (modified, key)
        if not REQUEST_ID.match(request_id) or "/" in key:
            skipped.append(key)
            inbox.write_json(f"{key[:-len('.json')]}.error.json",
                             {"error": "request ids are 1-64 letters, digits, '.', '_' or '-', at the inbox top"})
            continue
        ids.append(request_id)
        run_requests.append(dg.RunRequest(run_key=f"{request_id}:{etag}", partition_key=request_id,
                                          tags={"wildbench/request": request_id}))
    if skipped:
        context.log.warning(f"skipped malformed request names: {skipped}")
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=[request_partitions.build_add_request(ids)] if ids else [],
        cursor=json.dumps({"after": list(after)}),
    )
