"""Production for real, on loopback: PostgreSQL run storage, SeaweedFS for every output and the step logs,
Celery workers on Redis running the steps. Runs are launched through the instance with Dagster's own CLI."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from dagster._serdes import serialize_value

from wildbench_assets.cli import main
from wildbench_assets.partitions import park_day_key
from wildbench_assets.resources.archive import open_archive

from .services import (
    S3_KEY,
    S3_SECRET,
    celery_worker,
    compose_service,
    free_port,
    production_env,
    publish_archive,
    redis_server,
    wait_for_port,
)

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
BUCKET = "wildbench-prod"

pytestmark = pytest.mark.services


@pytest.fixture
def prod_env(demo_archive, tmp_path, pg_database, seaweedfs, redis, monkeypatch):
    """The production deployment's environment (the names of deploy/env.example) over real servers, the
    demo archive uploaded to the bucket, and the park x day partitions registered."""
    prefix = tmp_path.name  # one prefix per test: the bucket is shared by the session's server
    env = production_env(tmp_path / "home", seaweedfs, redis, pg_database, BUCKET, prefix, tmp_path / "cache")
    for key, value in env.items():
        if key.startswith(("DAGSTER_", "WILDBENCH_", "AWS_")):
            monkeypatch.setenv(key, value)
    assert main(["buckets"]) == 0  # what the compose file's one-shot `buckets` service does
    store = open_archive(env["WILDBENCH_ARCHIVE"], seaweedfs, S3_KEY, S3_SECRET)
    pairs = publish_archive(demo_archive, store)
    return {"env": env, "store": store, "pairs": pairs, "data": f"{prefix}/data", "tmp": tmp_path}


def materialize(env: dict, select: str, partition: str, cwd: Path, timeout: int = 300) -> None:
    """A run launched through the instance by Dagster's CLI: the job's executor (Celery) runs its steps."""
    done = subprocess.run([str(BIN / "dagster"), "asset", "materialize", "-m", "wildbench_assets.definitions",
                           "--select", select, "--partition", partition], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]


def step_workers(instance: dg.DagsterInstance) -> dict[str, set[str]]:
    """Which Celery worker ran each step, from the runs' event records."""
    found: dict[str, set[str]] = {}
    for run in instance.get_runs():
        for record in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
            event = record.dagster_event
            worker = event.engine_event_data.metadata.get("Celery worker") if event.engine_event_data else None
            if worker is not None:
                found.setdefault(event.step_key, set()).add(worker.value)
    return found


def run_through_splits(env: dict, pairs, cwd: Path) -> None:
    """Ingest, curation and splits, each partition a run of its own (on the workers when `env` has a broker)."""
    for park, day in pairs:
        materialize(env, "raw_images,image_metadata", str(park_day_key(park, day)), cwd)
    for park in sorted({p for p, _ in pairs}):
        materialize(env, "curated_images", park, cwd)
    for split in ("train", "val", "test", "test_seen"):
        materialize(env, "benchmark_splits", split, cwd)


def in_process(env: dict) -> dict:
    return {k: v for k, v in env.items() if k != "WILDBENCH_CELERY_BROKER"}


def launch_labels(env: dict, cwd: Path) -> subprocess.Popen:
    """`detection_labels[test]` launched through the instance, left running (the fault tests strike meanwhile)."""
    return subprocess.Popen([str(BIN / "dagster"), "asset", "materialize", "-m", "wildbench_assets.definitions",
                             "--select", "detection_labels", "--partition", "test"], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_partitioned_runs_execute_on_celery_workers_and_write_only_to_the_bucket(prod_env, capsys):
    env, tmp = prod_env["env"], prod_env["tmp"]
    with celery_worker(env, "cpu", "cpu1", tmp / "cpu1.log"), celery_worker(env, "gpu", "gpu1", tmp / "gpu1.log"):
        run_through_splits(env, prod_env["pairs"], tmp)
        materialize(env, "detection_labels,split_archives", "test", tmp)
        # a custom request, answered with a presigned link to its ZIP in the bucket
        assert main(["request", "submit", "--id", "req-s3", "--formats", "yolo,coco"]) == 0
        with dg.DagsterInstance.get() as instance:
            instance.add_dynamic_partitions("requests", ["req-s3"])
        materialize(env, "custom_export", "req-s3", tmp)
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        runs = instance.get_runs()
        assert runs and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
        # secrets stay in the environment: not in run config, tags or any event record
        for run in runs:
            recorded = json.dumps([run.run_config, run.tags]) + "".join(
                serialize_value(record) for record in instance.all_logs(run.run_id))
            assert S3_SECRET not in recorded, run.run_id
        workers = step_workers(instance)
    # heavy steps on the GPU queue's worker, the rest on the CPU worker, nothing in the launching process
    assert {w.split("@")[0] for w in workers["detection_labels"]} == {"gpu1"}
    for step in ("raw_images", "image_metadata", "curated_images", "benchmark_splits", "split_archives"):
        assert {w.split("@")[0] for w in workers[step]} == {"cpu1"}, step

    client, data = prod_env["store"].client, prod_env["data"]
    keys = {o["Key"][len(data) + 1:] for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=BUCKET, Prefix=data + "/") for o in page.get("Contents", [])}
    for table in ("raw_images", "image_metadata", "curated_images", "benchmark_splits", "detection_labels"):
        assert any(k.startswith(f"{table}/") and k.endswith(".parquet") for k in keys), table
    assert "artifacts/archives/test.zip" in keys
    assert not any(".wb-tmp-" in k for k in keys)  # nothing half-written under any key
    labels = pd.read_parquet(io.BytesIO(client.get_object(Bucket=BUCKET, Key=f"{data}/detection_labels/test.parquet")
                                        ["Body"].read()))
    assert len(labels) > 0
    # a researcher opens a whole stage straight from the bucket, every partition at once
    from pyarrow import fs

    bucket_fs = fs.S3FileSystem(endpoint_override=env["WILDBENCH_S3_ENDPOINT_URL"].removeprefix("http://"),
                                scheme="http", access_key=S3_KEY, secret_key=S3_SECRET, region="us-east-1")
    metadata = pd.read_parquet(f"{BUCKET}/{data}/image_metadata", filesystem=bucket_fs)
    partitions = [pd.read_parquet(io.BytesIO(client.get_object(
        Bucket=BUCKET, Key=f"{data}/image_metadata/{park}/{day}.parquet")["Body"].read()))
        for park, day in prod_env["pairs"]]
    assert len(metadata) == sum(len(p) for p in partitions) > 0
    logs = client.list_objects_v2(Bucket=BUCKET, Prefix="compute-logs/").get("KeyCount", 0)
    assert logs > 0  # the steps' stdout/stderr went to the bucket too
    # nothing of the pipeline's on local disk but the cache of S3 copies and the instance's home
    assert sorted(p.name for p in tmp.iterdir() if p.is_dir()) <= ["cache", "home"]
    assert not (ROOT / "s3:").exists()

    # the researcher's download leaves the host over plain HTTP (no credentials), checked against its sha256
    capsys.readouterr()
    fetched = tmp / "fetched"
    fetched.mkdir()
    result = json.loads(open_archive(env["WILDBENCH_REQUESTS"], env["WILDBENCH_S3_ENDPOINT_URL"])
                        .read("req-s3.result.json"))
    assert result["zip"].startswith("s3://") and "Signature=" in result["url"] or "X-Amz-Signature=" in result["url"]
    assert main(["request", "fetch", "--id", "req-s3", "--dest", str(fetched)]) == 0
    with zipfile.ZipFile(fetched / "req-s3.zip") as archive:
        assert archive.testzip() is None and any(n.endswith(".txt") for n in archive.namelist())
    with urllib.request.urlopen(result["url"]) as response:  # the link itself, as any HTTP client uses it
        assert hashlib.sha256(response.read()).hexdigest() == result["sha256"]

    # retention: past the configured days the ZIP is deleted and the result says so
    retention = {**env, "WILDBENCH_REQUEST_RETENTION_DAYS": "0"}
    done = subprocess.run([str(BIN / "dagster"), "job", "execute", "-m", "wildbench_assets.definitions",
                           "-j", "delete_custom_datasets"], cwd=tmp, env=in_process(retention),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert not any(k.endswith("artifacts/requests/req-s3.zip") for k in (
        o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix=data + "/artifacts/requests/")
        .get("Contents", [])))
    assert main(["request", "fetch", "--id", "req-s3", "--dest", str(fetched / "again.zip")]) == 1
    assert "retention" in capsys.readouterr().err


def test_a_worker_killed_mid_step_hands_the_step_to_another_and_the_run_succeeds(prod_env):
    env, tmp, pairs = prod_env["env"], prod_env["tmp"], prod_env["pairs"]
    # the real detector, so the step lasts long enough to be killed inside; a short visibility timeout so
    # the step is handed on within the test (production: 6 h, longer than any step)
    env = {**env, "WILDBENCH_DETECTOR": "mdlite", "WILDBENCH_CELERY_VISIBILITY_S": "40"}
    run_through_splits(in_process(env), pairs, tmp)
    with celery_worker(env, "gpu", "gpua", tmp / "gpua.log") as first, \
            celery_worker(env, "gpu", "gpub", tmp / "gpub.log") as second:
        launched = launch_labels(env, tmp)
        workers = {"gpua": first, "gpub": second}
        deadline = time.monotonic() + 240
        running = None
        while running is None and time.monotonic() < deadline:  # the step has started on one worker
            with dg.DagsterInstance.get() as instance:
                found = step_workers(instance).get("detection_labels", set())
                started = [r for run in instance.get_runs() for r in
                           instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_START)]
            if found and started:
                running = next(iter(found)).split("@")[0]
            time.sleep(0.5)
        assert running is not None, launched.communicate(timeout=5)[0][-3000:]
        time.sleep(2)  # inside the step: the detector is loading or labelling
        os.killpg(workers[running].pid, signal.SIGKILL)
        output, _ = launched.communicate(timeout=300)
    assert launched.returncode == 0, output[-4000:]
    with dg.DagsterInstance.get() as instance:
        run = [r for r in instance.get_runs() if dg.AssetKey("detection_labels") in (r.asset_selection or ())][0]
        assert run.status == dg.DagsterRunStatus.SUCCESS
        ran_on = {w.split("@")[0] for w in step_workers(instance)["detection_labels"]}
    assert ran_on == {"gpua", "gpub"}  # started on the killed one, finished on the other
    client, data = prod_env["store"].client, prod_env["data"]
    keys = [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=data + "/")
            for o in page.get("Contents", [])]
    assert f"{data}/detection_labels/test.parquet" in keys
    assert not any(".wb-tmp-" in k for k in keys)
    assert not client.list_multipart_uploads(Bucket=BUCKET).get("Uploads")  # no half-uploaded object either


def test_s3_down_for_seconds_is_retried_and_down_for_good_fails_naming_the_endpoint(seaweedfs, tmp_path):
    import threading
    from urllib.parse import urlparse

    from .services import OutageProxy

    proxy = OutageProxy(urlparse(seaweedfs).port)
    try:
        store = open_archive("s3://wildbench-outage/data", proxy.url, S3_KEY, S3_SECRET)
        store.client.create_bucket(Bucket="wildbench-outage")
        proxy.take_down()
        threading.Timer(2.0, proxy.bring_back).start()
        started = time.monotonic()
        store.write("table.parquet", b"written once the server is back")  # retried with backoff meanwhile
        assert time.monotonic() - started >= 1.5
        assert store.read("table.parquet") == b"written once the server is back"
    finally:
        proxy.close()
    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(Exception) as failure:
        open_archive("s3://wildbench-outage/data", dead, S3_KEY, S3_SECRET, max_attempts=2).read("table.parquet")
    assert dead in str(failure.value)  # which server could not be reached, and nothing secret
    assert S3_SECRET not in str(failure.value)


def test_the_compose_topology_discovers_the_archive_and_runs_its_steps_on_workers(prod_env):
    """Code server, webserver, daemon and workers with the compose file's own commands: the daemon's sensor
    finds the archive in the bucket, queued runs are launched through the code server and their steps run
    on the Celery workers."""
    env, tmp = prod_env["env"], prod_env["tmp"]
    code_port, web_port = free_port(), free_port()
    env = {**env, "WILDBENCH_CODE_SERVER_HOST": "127.0.0.1", "WILDBENCH_CODE_SERVER_PORT": str(code_port),
           "WILDBENCH_ARRIVALS_INTERVAL_S": "5", "WILDBENCH_AUTOMATION_INTERVAL_S": "5"}
    ports = {"4000": code_port, "3000": web_port}
    with compose_service("code-server", env, tmp / "code-server.log", ports), \
            celery_worker(env, "cpu", "cpu1", tmp / "cpu1.log"):
        wait_for_port(code_port, 120)
        with compose_service("webserver", env, tmp / "webserver.log", ports), \
                compose_service("daemon", env, tmp / "daemon.log", ports):
            wait_for_port(web_port, 120)
            deadline, done = time.monotonic() + 480, False
            while not done and time.monotonic() < deadline:  # the sensor's ingest runs have ended
                time.sleep(3)
                with dg.DagsterInstance.get() as instance:
                    ingest = [r for r in instance.get_runs()
                              if r.tags.get("dagster/sensor_name") == "archive_arrivals"]
                    ingested = instance.get_materialized_partitions(dg.AssetKey("image_metadata"))
                done = bool(ingest) and all(
                    r.status in (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE) for r in ingest) \
                    and len(ingested) == len(prod_env["pairs"])
    assert done, (tmp / "daemon.log").read_text()[-3000:]
    with dg.DagsterInstance.get() as instance:
        ingest_runs = [r for r in instance.get_runs() if r.tags.get("dagster/sensor_name") == "archive_arrivals"]
        # one run over the parks' day (a partition range): S3 stamps every object with its upload day
        assert len(ingest_runs) < len(prod_env["pairs"])
        assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in ingest_runs)
        workers = step_workers(instance)
    assert {w.split("@")[0] for w in workers["image_metadata"]} == {"cpu1"}


def test_compose_file_names_every_setting_and_reserves_a_gpu():
    import re

    import yaml

    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())["services"]
    assert {"postgres", "redis", "s3", "code-server", "webserver", "daemon", "worker-cpu", "worker-gpu",
            "portal"} <= set(compose)
    devices = compose["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    template = {line.split("=", 1)[0] for line in (ROOT / "deploy" / "env.example").read_text().splitlines()
                if "=" in line and not line.startswith("#")}
    used = set(re.findall(r"\{env: (\w+)\}", (ROOT / "deploy" / "dagster.yaml").read_text()))
    used |= set(re.findall(r"\{env: (\w+)\}", (ROOT / "deploy" / "workspace.yaml").read_text()))
    used |= set(re.findall(r"EnvVar\(\"(\w+)\"\)", (ROOT / "wildbench_assets" / "resources" / "__init__.py")
                           .read_text()))
    used |= set(re.findall(r"\$\{(\w+)\}", (ROOT / "deploy" / "docker-compose.yml").read_text()))
    used.add("WILDBENCH_CELERY_BROKER")
    assert used <= template, used - template


def test_compose_builds_its_images_from_dockerfile_stages_and_publishes_on_loopback_only():
    """`make image` builds every image the compose file names (no registry image can be pulled here), and a
    published port never listens beyond 127.0.0.1."""
    import re

    import yaml

    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())["services"]
    stages = set(re.findall(r"^FROM \S+ AS (\S+)$", (ROOT / "Dockerfile").read_text(), flags=re.M))
    built = dict((image, stage) for stage, image in re.findall(
        r"^build (\S+) localhost/(\S+):latest$", (ROOT / "scripts" / "build-image.sh").read_text(), flags=re.M))
    for name, service in compose.items():
        image = service["image"].split(":")[0]
        assert built.get(image) == service["build"]["target"] and built[image] in stages, name
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)


def test_ranged_reads_sign_with_renewed_temporary_credentials(seaweedfs):
    """Temporary credentials that expire mid-run are renewed by boto3; the ranged reader must sign with the
    renewed ones, not with those it saw when it was built."""
    from datetime import UTC, datetime, timedelta

    import boto3
    import botocore.session
    from botocore.credentials import RefreshableCredentials

    from wildbench_assets.resources.s3_ranged import RangedGetter

    bucket = "wildbench-refresh"
    setup = open_archive(f"s3://{bucket}", seaweedfs, S3_KEY, S3_SECRET)
    if bucket not in {b["Name"] for b in setup.client.list_buckets()["Buckets"]}:
        setup.client.create_bucket(Bucket=bucket)
    setup.write("header.jpg", b"0123456789")

    def metadata(secret: str, expires_in: timedelta) -> dict:
        return {"access_key": S3_KEY, "secret_key": secret, "token": None,
                "expiry_time": (datetime.now(UTC) + expires_in).isoformat()}

    # issued before the run: a stale secret, valid for 20 more minutes
    credentials = RefreshableCredentials.create_from_metadata(
        metadata("stale-secret", timedelta(minutes=20)), method="sts-assume-role",
        refresh_using=lambda: metadata(S3_SECRET, timedelta(hours=1)))
    session = botocore.session.get_session()
    session._credentials = credentials
    client = boto3.Session(botocore_session=session).client("s3", endpoint_url=seaweedfs, region_name="us-east-1")
    getter = RangedGetter(client, bucket)
    credentials._expiry_time = datetime.now(UTC) - timedelta(seconds=1)  # time passes: they expire
    assert getter.get("header.jpg", "bytes=0-3") == b"0123"  # signed with the renewed secret


def test_redis_restarted_mid_run_ends_the_run_in_a_definite_state(prod_env):
    """The broker goes away while a step runs and comes back: the run must end (success, or failure with
    its reason), never hang."""
    env, tmp = prod_env["env"], prod_env["tmp"]
    run_through_splits(in_process(env), prod_env["pairs"], tmp)
    port, workdir = free_port(), tmp / "redis-restart"
    workdir.mkdir()
    broker = redis_server(workdir, port)
    env = {**env, "WILDBENCH_DETECTOR": "mdlite", "WILDBENCH_CELERY_BROKER": broker.__enter__()}
    try:
        with celery_worker(env, "gpu", "gpu1", tmp / "gpu1.log"):
            launched = launch_labels(env, tmp)
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline:
                with dg.DagsterInstance.get() as instance:
                    if any(instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_START)
                           for run in instance.get_runs()):
                        break
                time.sleep(0.5)
            broker.__exit__(None, None, None)  # Redis goes away mid-step ...
            time.sleep(3)
            broker = redis_server(workdir, port)
            broker.__enter__()  # ... and comes back where everyone expects it
            try:
                output, _ = launched.communicate(timeout=300)
            except subprocess.TimeoutExpired:
                launched.kill()
                pytest.fail("the run did not end within 300 s of Redis coming back")
    finally:
        broker.__exit__(None, None, None)
    with dg.DagsterInstance.get() as instance:
        (run,) = [r for r in instance.get_runs() if dg.AssetKey("detection_labels") in (r.asset_selection or ())]
        assert run.status in (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE), run.status
        if run.status == dg.DagsterRunStatus.FAILURE:  # a failure says why
            failures = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
            assert failures and failures[0].user_message, output[-3000:]
    assert (launched.returncode == 0) == (run.status == dg.DagsterRunStatus.SUCCESS)


def test_a_staged_folder_in_s3_is_published_whole_and_replaces_the_old_one(seaweedfs, tmp_path):
    from wildbench_assets.resources.artifacts import ArtifactStore

    bucket = "wildbench-staged"
    client = open_archive(f"s3://{bucket}", seaweedfs, S3_KEY, S3_SECRET).client
    if bucket not in {b["Name"] for b in client.list_buckets()["Buckets"]}:
        client.create_bucket(Bucket=bucket)
    store = ArtifactStore(base_dir=f"s3://{bucket}/{tmp_path.name}", cache_dir=str(tmp_path / "cache"),
                          endpoint_url=seaweedfs, aws_access_key_id=S3_KEY, aws_secret_access_key=S3_SECRET)
    for files in ({"a.txt": "1", "sub/b.txt": "2", "manifest.csv": "m1"}, {"a.txt": "3", "manifest.csv": "m2"}):
        with store.staged_dir("releases/r1", seal="manifest.csv") as staged:
            for name, text in files.items():
                (staged.path / name).parent.mkdir(parents=True, exist_ok=True)
                (staged.path / name).write_text(text)
            assert not any(o.key.endswith(".wb-tmp") for o in store.list("releases/"))
            staged.publish()
        keys = {o.key for o in store.list("releases/r1/")}
        assert keys == {f"releases/r1/{name}" for name in files}  # the old folder's extra file is gone
    other = ArtifactStore(base_dir=store.base_dir, cache_dir=str(tmp_path / "elsewhere"), endpoint_url=seaweedfs,
                          aws_access_key_id=S3_KEY, aws_secret_access_key=S3_SECRET)  # another machine
    folder = other.path("releases/r1")
    assert (folder / "manifest.csv").read_text() == "m2" and not (folder / "sub").exists()
    with store.staged_dir("releases/r2", seal="manifest.csv") as staged:
        (staged.path / "manifest.csv").write_text("never published: its checks failed")
    assert not list(store.list("releases/r2"))


def test_models_train_and_score_on_a_release_whose_artefacts_live_in_s3(demo_archive, seaweedfs, tmp_path):
    """training_datasets, model_weights and model_evaluation with the artifact store in the bucket: a
    release cut here is published to S3, a fresh cache (another machine) trains and scores on it, fetching
    only what it reads (never the train and val ZIPs), and every output lands in the bucket."""
    from wildbench_assets.partitions import model_release_key
    from wildbench_assets.resources.artifacts import ArtifactStore

    from .helpers import UP_TO_SPLITS, cut_release, pipeline_defs, run_all

    local = tmp_path / "local"
    instance, outcome = run_all(demo_archive, local, selection=[*UP_TO_SPLITS, "detection_labels"],
                                detector="manifest")
    assert not outcome.get("failure") and cut_release(pipeline_defs(demo_archive, local, detector="manifest"),
                                                      instance, "s3rel").success
    bucket = "wildbench-models"
    client = open_archive(f"s3://{bucket}", seaweedfs, S3_KEY, S3_SECRET).client
    if bucket not in {b["Name"] for b in client.list_buckets()["Buckets"]}:
        client.create_bucket(Bucket=bucket)
    def store_with_cache(cache: str) -> ArtifactStore:
        return ArtifactStore(base_dir=f"s3://{bucket}/{tmp_path.name}", cache_dir=str(tmp_path / cache),
                             endpoint_url=seaweedfs, aws_access_key_id=S3_KEY, aws_secret_access_key=S3_SECRET)

    publisher, store = store_with_cache("publisher"), store_with_cache("cache")  # two machines
    release = local / "artifacts" / "releases" / "s3rel"
    for path in sorted(release.rglob("*"), key=lambda p: p.name == "manifest.csv"):  # the seal last
        if path.is_file():
            with publisher.writing(f"releases/s3rel/{path.relative_to(release).as_posix()}") as tmp:
                tmp.write_bytes(path.read_bytes())

    defs = pipeline_defs(demo_archive, tmp_path / "data", detector="manifest", artifacts=store)
    assert defs.resolve_job_def("training_datasets_job").execute_in_process(instance=instance,
                                                                            partition_key="s3rel").success
    assert defs.resolve_job_def("models_job").execute_in_process(
        instance=instance, partition_key=model_release_key("yolov8", "s3rel")).success
    keys = {o.key for o in store.list("")}
    for key in ("datasets/s3rel/train/coco.json", "datasets/s3rel/dataset.yaml", "models/s3rel/yolov8/weights.pt",
                "models/s3rel/yolov8/card.json", "models/s3rel/yolov8/test_predictions.coco.json"):
        assert key in keys, key
    cached = tmp_path / "cache"
    assert list(cached.rglob("test.zip")) and not list(cached.rglob("train.zip"))  # read only what it needs
    evaluation = pd.read_parquet(tmp_path / "data" / "model_evaluation")
    assert evaluation.release.tolist() == ["s3rel"] and evaluation.map_50.between(0, 1).all()
    assert not (tmp_path / "data" / "artifacts").exists()  # nothing beside the bucket
