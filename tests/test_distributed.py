"""Production for real, on loopback: PostgreSQL run storage, SeaweedFS for every output and the step logs,
Celery workers on Redis running the steps. Runs are launched through the instance with Dagster's own CLI."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from wildbench_assets.partitions import park_day_key
from wildbench_assets.resources.archive import LocalArchive, open_archive
from wildbench_assets.runner import archive_partitions

from .services import S3_KEY, S3_SECRET, celery_worker

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
BUCKET = "wildbench-prod"

pytestmark = pytest.mark.services


@pytest.fixture
def prod_env(demo_archive, tmp_path, postgres, seaweedfs, redis, monkeypatch):
    """The production deployment's environment (as deploy/env.example names it) over real servers, the demo
    archive uploaded to the bucket, and the park x day partitions registered."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    store = open_archive(f"s3://{BUCKET}/archive", seaweedfs, S3_KEY, S3_SECRET)
    if BUCKET not in {b["Name"] for b in store.client.list_buckets()["Buckets"]}:
        store.client.create_bucket(Bucket=BUCKET)
    prefix = tmp_path.name  # one prefix per test: the bucket is shared by the session's server
    store = open_archive(f"s3://{BUCKET}/{prefix}/archive", seaweedfs, S3_KEY, S3_SECRET)
    local = LocalArchive(demo_archive)
    for obj in local.list():
        store.write(obj.key, local.read(obj.key))
    env = {**os.environ, "WILDBENCH_DEPLOYMENT": "prod", "DAGSTER_HOME": str(home),
           "WILDBENCH_ARCHIVE": f"s3://{BUCKET}/{prefix}/archive", "WILDBENCH_DATA": f"s3://{BUCKET}/{prefix}/data",
           "WILDBENCH_REQUESTS": f"s3://{BUCKET}/{prefix}/requests",
           "WILDBENCH_SUBMISSIONS": f"s3://{BUCKET}/{prefix}/submissions",
           "WILDBENCH_S3_ENDPOINT_URL": seaweedfs, "AWS_ACCESS_KEY_ID": S3_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET,
           "WILDBENCH_LOG_BUCKET": BUCKET, "WILDBENCH_CELERY_BROKER": redis,
           "WILDBENCH_CACHE": str(tmp_path / "cache"), "WILDBENCH_DETECTOR": "manifest",
           "DAGSTER_PG_HOST": postgres["host"], "DAGSTER_PG_PORT": str(postgres["port"]),
           "DAGSTER_PG_USERNAME": postgres["user"], "DAGSTER_PG_PASSWORD": "unused-trust-auth",
           "DAGSTER_PG_DB": postgres["db"]}
    for key, value in env.items():
        if key.startswith(("DAGSTER_", "WILDBENCH_", "AWS_")):
            monkeypatch.setenv(key, value)
    pairs = archive_partitions(store)
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("parks", sorted({p for p, _ in pairs}))
        instance.add_dynamic_partitions("arrival_days", sorted({d for _, d in pairs}))
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


def run_through_labels(env: dict, pairs, cwd: Path) -> None:
    for park, day in pairs:
        materialize(env, "raw_images,image_metadata", str(park_day_key(park, day)), cwd)
    for park in sorted({p for p, _ in pairs}):
        materialize(env, "curated_images", park, cwd)
    for split in ("train", "val", "test", "test_seen"):
        materialize(env, "benchmark_splits", split, cwd)
    materialize(env, "detection_labels,training_datasets,split_archives", "test", cwd)


def test_partitioned_runs_execute_on_celery_workers_and_write_only_to_the_bucket(prod_env):
    env, tmp = prod_env["env"], prod_env["tmp"]
    with celery_worker(env, "cpu", "cpu1", tmp / "cpu1.log"), celery_worker(env, "gpu", "gpu1", tmp / "gpu1.log"):
        run_through_labels(env, prod_env["pairs"], tmp)
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        runs = instance.get_runs()
        assert runs and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
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
    assert "artifacts/archives/test.zip" in keys and "artifacts/datasets/test/coco.json" in keys
    assert not any(".wb-tmp-" in k for k in keys)  # nothing half-written under any key
    labels = pd.read_parquet(io.BytesIO(client.get_object(Bucket=BUCKET, Key=f"{data}/detection_labels/test.parquet")
                                        ["Body"].read()))
    assert len(labels) > 0
    logs = client.list_objects_v2(Bucket=BUCKET, Prefix="compute-logs/").get("KeyCount", 0)
    assert logs > 0  # the steps' stdout/stderr went to the bucket too
    # nothing of the pipeline's on local disk but the cache of S3 copies and the instance's home
    assert sorted(p.name for p in tmp.iterdir() if p.is_dir()) <= ["cache", "home"]
    assert not (ROOT / "s3:").exists()
