#!/usr/bin/env bash
# `make container-smoke`: the compose stack of `make image`'s images, end to end, then torn down.
#   a demo archive is written into the SeaweedFS container's bucket -> the daemon's `archive_arrivals` sensor
#   ingests it and the automation sensor curates, splits and labels it, every step on the Celery workers ->
#   `wildbench release` cuts a release (as an operator does) -> the portal on 127.0.0.1 serves its test.zip
#   (a redirect to a presigned link on the S3 container's published port), checked as a ZIP and by sha256.
# Exits non-zero naming the stage that failed (the services' logs are printed first). Needs root podman.
# Settings for the smoke only (the production defaults stay in deploy/env.example): splits re-derived every
# minute instead of nightly, sensors every 5 s, the detector replaced by the demo archive's own boxes.
# WILDBENCH_SMOKE_KEEP=1 leaves the stack running for inspection (then: podman-compose -p wildbench-smoke ... down -v).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
export CONTAINERS_CONF="$root/deploy/containers.conf"
project="${WILDBENCH_SMOKE_PROJECT:-wildbench-smoke}"
deadline_s="${WILDBENCH_SMOKE_TIMEOUT_S:-900}"
started=$(date +%s)
work="$(mktemp -d -t wildbench-smoke.XXXXXX)"
compose=(podman-compose -p "$project" -f "$work/docker-compose.yml")

say() { printf '[container-smoke %4ds] %s\n' "$(($(date +%s) - started))" "$*"; }
fail() {
  echo "container-smoke: FAILED: $*" >&2
  for c in $(podman ps -a --filter "label=io.podman.compose.project=$project" --format '{{.Names}}'); do
    echo "----- $c (last 25 lines) -----" >&2
    podman logs --tail 25 "$c" >&2 2>&1 || true
  done
  exit 1
}
teardown() {
  if [ -n "${WILDBENCH_SMOKE_KEEP:-}" ]; then say "kept for inspection: project $project, files in $work"; return; fi
  say "tearing down"
  "${compose[@]}" down -v >/dev/null 2>&1 || true
  for v in $(podman volume ls -q --filter "label=io.podman.compose.project=$project"); do podman volume rm -f "$v" >/dev/null || true; done
  podman network rm -f "${project}_default" >/dev/null 2>&1 || true  # podman-compose 1.0.3's down leaves it
  rm -rf "$work"
}
trap teardown EXIT
in_container() { podman exec -i "${project}_$1_1" "${@:2}"; }

for image in wildbench wildbench-postgres wildbench-redis; do
  podman image exists "localhost/$image:latest" || fail "no image localhost/$image:latest: run \`make image\` first"
done
if [ -n "$(podman ps -a -q --filter "label=io.podman.compose.project=$project")" ]; then
  fail "containers of project $project exist already (another smoke running?); remove them with podman rm -f"
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
s3_port=$(free_port) web_port=$(free_port) portal_port=$(free_port)
secret() { head -c 18 /dev/urandom | base64 | tr -d '+/='; }
token=$(secret)
# A copy of the compose file beside its own .env (read for ${...} and by every service): a deploy/.env of
# the operator's is never read or touched.
cp "$root/deploy/docker-compose.yml" "$work/docker-compose.yml"
mkdir "$work/models"  # the gpu worker's read-only weights folder (empty: the smoke's detector needs none)
sed -e "s|^AWS_SECRET_ACCESS_KEY=.*|AWS_SECRET_ACCESS_KEY=$(secret)|" \
    -e "s|^DAGSTER_PG_PASSWORD=.*|DAGSTER_PG_PASSWORD=$(secret)|" \
    -e "s|^WILDBENCH_PORTAL_TOKEN=.*|WILDBENCH_PORTAL_TOKEN=$token|" \
    -e "s|^WILDBENCH_DETECTOR=.*|WILDBENCH_DETECTOR=manifest|" \
    -e "s|^WILDBENCH_S3_PUBLIC_ENDPOINT_URL=.*|WILDBENCH_S3_PUBLIC_ENDPOINT_URL=http://127.0.0.1:$s3_port|" \
    "$root/deploy/env.example" > "$work/.env"
cat >> "$work/.env" <<EOF
WILDBENCH_ARRIVALS_INTERVAL_S=5
WILDBENCH_AUTOMATION_INTERVAL_S=5
WILDBENCH_REFRESH_CRON=* * * * *
WILDBENCH_S3_PORT=$s3_port
WILDBENCH_WEBSERVER_PORT=$web_port
WILDBENCH_PORTAL_PORT=$portal_port
EOF

wait_for() {  # seconds what command...
  local until=$(($(date +%s) + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$until" ] || fail "$what"
    sleep 2
  done
}

say "starting postgres, redis, s3 (project $project, S3 on 127.0.0.1:$s3_port)"
"${compose[@]}" up -d postgres redis s3 >"$work/up.log" 2>&1 || { cat "$work/up.log" >&2; fail "podman-compose up"; }
wait_for 120 "PostgreSQL did not accept connections within 120 s" \
  in_container postgres pg_isready -h 127.0.0.1 -U dagster
wait_for 120 "the S3 server did not answer on 127.0.0.1:$s3_port within 120 s" \
  curl -s -o /dev/null "http://127.0.0.1:$s3_port/"
wait_for 60 "redis did not answer PING" in_container redis redis-cli ping

say "creating the buckets and writing a demo archive into s3://wildbench/archive"
"${compose[@]}" up -d buckets >>"$work/up.log" 2>&1 || { cat "$work/up.log" >&2; fail "podman-compose up buckets"; }
[ "$(podman wait "${project}_buckets_1")" = 0 ] || fail "the one-shot buckets service failed"
in_container s3 wildbench demo-archive s3://wildbench/archive --events-per-camera 4 \
  || fail "writing the demo archive into the bucket"

say "starting the code server, webserver, daemon, workers and portal"
"${compose[@]}" up -d >>"$work/up.log" 2>&1 || { cat "$work/up.log" >&2; fail "podman-compose up"; }
wait_for 180 "the portal did not answer on 127.0.0.1:$portal_port within 180 s" \
  curl -fs -o /dev/null "http://127.0.0.1:$portal_port/"

say "waiting for the daemon: arrivals sensor -> ingest -> curation -> splits -> labels, on the Celery workers"
pipeline_state() {  # prints `labelled=<splits> failed=<runs>`; the instance is PostgreSQL, read from the daemon
  in_container daemon python - <<'PY'
import dagster as dg
from wildbench_assets.ingest_state import labels_fingerprint
with dg.DagsterInstance.get() as instance:
    failed = [f"{r.job_name}[{r.tags.get('dagster/partition', '')}]" for r in instance.get_runs()
              if r.status == dg.DagsterRunStatus.FAILURE]
    labelled = [part.split("=")[0] for part in labels_fingerprint(instance).split(",") if part]
    print(f"labelled={','.join(labelled)} failed={','.join(failed)} runs={len(instance.get_runs())}")
PY
}
until=$(($(date +%s) + deadline_s))
while :; do
  state=$(pipeline_state 2>/dev/null || echo "labelled= failed= runs=?")
  case "$state" in *"failed= "*) ;; *) fail "a run failed: $state" ;; esac
  labelled=${state#labelled=}; labelled=${labelled%% *}
  [ "$labelled" = "test,test_seen,train,val" ] && break
  [ "$(date +%s)" -lt "$until" ] || fail "the pipeline did not label every split within ${deadline_s} s ($state)"
  sleep 10
done
say "every split labelled ($state)"
workers=$(in_container daemon python - <<'PY'
import dagster as dg
with dg.DagsterInstance.get() as instance:
    found = set()
    for run in instance.get_runs():
        for record in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
            data = record.dagster_event.engine_event_data
            if data and "Celery worker" in data.metadata:
                found.add(f"{record.dagster_event.step_key}@{data.metadata['Celery worker'].value.split('@')[0]}")
    print(" ".join(sorted(found)))
PY
) || fail "reading which workers ran the steps"
case " $workers " in *" image_metadata@cpu"*) ;; *) fail "image_metadata did not run on the cpu worker: $workers" ;; esac
case " $workers " in *" detection_labels@gpu"*) ;; *) fail "detection_labels did not run on the gpu worker: $workers" ;; esac
say "steps ran on the Celery workers: $workers"

release=smoke
say "cutting release $release (wildbench release, in the daemon's container)"
in_container daemon wildbench release --name "$release" || fail "wildbench release --name $release"

say "downloading the release's test.zip through the portal on 127.0.0.1:$portal_port"
curl -fsS "http://127.0.0.1:$portal_port/api/datasets/$release" -o "$work/datasheet.json" \
  || fail "the portal does not list release $release"
curl -fsS -o /dev/null -w '%{http_code} %{redirect_url}\n' "http://127.0.0.1:$portal_port/api/datasets/$release/test.zip" \
  >"$work/redirect" || fail "the portal's download of test.zip"
read -r code location <"$work/redirect"
[ "$code" = 307 ] && [[ "$location" == "http://127.0.0.1:$s3_port/"* ]] \
  || fail "the portal answered $code -> '$location', not a redirect to the S3 container's published port"
curl -fsS -o "$work/test.zip" "$location" || fail "the presigned link $location"
stored=$(in_container daemon python - "$release" <<'PY'
import hashlib, os, sys
from wildbench_assets.resources.archive import open_archive
store = open_archive(os.environ["WILDBENCH_DATA"], os.environ["WILDBENCH_S3_ENDPOINT_URL"])
print(hashlib.sha256(store.read(f"artifacts/releases/{sys.argv[1]}/downloads/test.zip")).hexdigest())
PY
) || fail "reading the release's test.zip from the bucket"
python3 - "$work/test.zip" "$stored" <<'PY' || fail "the downloaded test.zip is not the release's"
import hashlib, sys, zipfile
path, stored = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(path) as archive:
    assert archive.testzip() is None, "a corrupt ZIP"
    images = [n for n in archive.namelist() if n.lower().endswith((".jpg", ".jpeg"))]
assert images, "no images in test.zip"
digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
assert digest == stored, f"sha256 {digest} != the bucket's {stored}"
print(f"test.zip: {len(images)} images, sha256 {digest[:16]}... as in the bucket")
PY
say "PASSED: archive in S3 -> daemon sensor -> Celery workers -> release $release -> portal download"
