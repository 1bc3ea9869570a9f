"""The Dagster instance for real: the CLI against PostgreSQL, and the webserver + daemon through GraphQL."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from wildbench_assets.partitions import park_day_key
from wildbench_assets.resources.archive import LocalArchive, open_archive
from wildbench_assets.runner import archive_partitions

from .services import dagster_dev

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.services


def test_cli_run_on_postgres_instance(demo_archive, tmp_path, pg_database, s3_env, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    open_archive("s3://wildbench-logs", endpoint_url=s3_env).client.create_bucket(Bucket="wildbench-logs")
    env = {**os.environ, "DAGSTER_HOME": str(home), "WILDBENCH_DATA": str(tmp_path / "data"),
           "WILDBENCH_LOG_BUCKET": "wildbench-logs",
           "DAGSTER_PG_HOST": pg_database["host"], "DAGSTER_PG_PORT": str(pg_database["port"]),
           "DAGSTER_PG_USERNAME": pg_database["user"], "DAGSTER_PG_PASSWORD": "unused-trust-auth",
           "DAGSTER_PG_DB": pg_database["db"], "WILDBENCH_DETECTOR": "manifest"}
    done = subprocess.run([str(BIN / "wildbench"), "run", "--archive", str(demo_archive)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "image_metadata:" in done.stdout and "truncated" in done.stdout
    for key in ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USERNAME", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB",
                "WILDBENCH_LOG_BUCKET"):
        monkeypatch.setenv(key, env[key])
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        runs = instance.get_runs()
        pairs = archive_partitions(LocalArchive(demo_archive))
        ingest_runs = [r for r in runs if dg.AssetKey("image_metadata") in (r.asset_selection or ())]
        # ingest takes a range of days per run (its BackfillPolicy): every pair is covered, in fewer runs
        assert 0 < len(ingest_runs) <= len(pairs)
        assert all(r.status == dg.DagsterRunStatus.SUCCESS and r.tags["wildbench/trigger"] == "cli" for r in runs)
        assert set(instance.get_dynamic_partitions("parks")) == {"snieves", "donana"}
        assert len(instance.get_materialized_partitions(dg.AssetKey("image_metadata"))) == len(pairs)
        assert instance.get_materialized_partitions(dg.AssetKey("benchmark_splits")) == {"train", "val", "test",
                                                                                         "test_seen"}


def test_webserver_and_daemon_run_a_partitioned_materialization(demo_archive, tmp_path, monkeypatch):
    from dagster_graphql import DagsterGraphQLClient

    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "WILDBENCH_DATA": str(tmp_path / "data"),
           "WILDBENCH_ARCHIVE": str(demo_archive)}
    park, day = archive_partitions(LocalArchive(demo_archive))[0]
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("parks", [park])
        instance.add_dynamic_partitions("arrival_days", [day])
    with dagster_dev(env, tmp_path / "dagster-dev.log") as port:
        client = DagsterGraphQLClient("127.0.0.1", port_number=port)
        key = park_day_key(park, day)
        tags = {"dagster/partition": str(key), "dagster/partition/park": park, "dagster/partition/arrival_day": day}
        deadline = time.monotonic() + 60
        while True:  # the code location may still be loading
            try:
                run_id = client.submit_job_execution("ingest_job", tags=tags)
                break
            except Exception:  # noqa: BLE001
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        deadline = time.monotonic() + 180
        status = None
        while time.monotonic() < deadline:
            status = client.get_run_status(run_id)
            if status in (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED):
                break
            time.sleep(1)
        assert status == dg.DagsterRunStatus.SUCCESS, (tmp_path / "dagster-dev.log").read_text()[-3000:]
        assert (tmp_path / "data" / "image_metadata" / park / f"{day}.parquet").exists()
