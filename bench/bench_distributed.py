"""Distributed steps: labelling the same images with one Celery worker vs two, and the Celery executor's
per-step overhead vs in process. Real servers on loopback (SeaweedFS, PostgreSQL, Redis), the production
deployment (`deploy/dagster.yaml`, every output in the bucket), labels by MegadetectorLite (a real model).

  (a) Labelling: the demo archive is ingested, curated and split (in process), then the four split
      partitions of `detection_labels` are launched at once (`dagster asset materialize`, one run each)
      and executed by 1 or 2 workers on the `gpu` queue. Each worker gets one torch thread (a worker per
      core, as one per GPU in production); a third line gives one worker both cores. The label cache and
      the local copies are emptied before each trial, so every trial runs the detector on every image.
      Time: first STEP_START to last STEP_SUCCESS of the four runs, from the event records (the CLI's own
      start-up is not counted).
  (b) Overhead: the same two-step ingest run (raw_images + image_metadata of one park x day) in process
      and through Celery (a worker already running), R times each; run wall time from the run records.

    .venv/bin/python bench/bench_distributed.py [--events-per-camera 8] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import dagster as dg  # noqa: E402

from tests.services import (  # noqa: E402
    S3_KEY,
    S3_SECRET,
    celery_worker,
    postgres_server,
    production_env,
    publish_archive,
    redis_server,
    seaweedfs,
)
from wildbench_assets.partitions import park_day_key  # noqa: E402
from wildbench_assets.resources.archive import open_archive  # noqa: E402

BIN = Path(sys.executable).parent
BUCKET = "wildbench-bench"
SPLITS = ("train", "val", "test", "test_seen")


def materialize(env: dict, select: str, partition: str) -> None:
    done = subprocess.run([str(BIN / "dagster"), "asset", "materialize", "-m", "wildbench_assets.definitions",
                           "--select", select, "--partition", partition], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError((done.stdout + done.stderr)[-4000:])


def step_span(instance: dg.DagsterInstance, run_ids: list[str]) -> tuple[float, int]:
    """(seconds from the first step start to the last step success, rows labelled) over the runs."""
    starts, ends = [], []
    for run_id in run_ids:
        for record in instance.all_logs(run_id):
            if record.dagster_event_type == dg.DagsterEventType.STEP_START:
                starts.append(record.timestamp)
            elif record.dagster_event_type == dg.DagsterEventType.STEP_SUCCESS:
                ends.append(record.timestamp)
    return max(ends) - min(starts), len(starts)


def empty_label_cache(env: dict, store, prefix: str, cache: Path) -> None:
    client = store.client
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"{prefix}/data/label_cache/"):
        for obj in page.get("Contents", []):
            client.delete_object(Bucket=BUCKET, Key=obj["Key"])
    subprocess.run(["rm", "-rf", str(cache)], check=True)


def queued_steps(instance: dg.DagsterInstance, run_ids: set[str]) -> int:
    return sum(1 for run_id in run_ids for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
               if "Submitting celery task" in (record.user_message or ""))


def label_trial(env: dict, workers: int, threads: int, work: Path, store, prefix: str, cache: Path) -> tuple:
    """The four runs are launched and as many steps queued as the `gpu` pool admits (one per worker); the
    workers start after, so the launching CLIs' own start-up does not compete with the steps for the cores."""
    empty_label_cache(env, store, prefix, cache)
    worker_env = {**env, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    # one slot of the `gpu` pool per GPU worker, as the operator sets it (README: Production)
    subprocess.run([str(BIN / "dagster"), "instance", "concurrency", "set", "gpu", str(workers)], env=env,
                   check=True, capture_output=True)
    with dg.DagsterInstance.get() as instance:
        before = {r.run_id for r in instance.get_runs()}
    with ThreadPoolExecutor(len(SPLITS)) as pool:
        launched = [pool.submit(materialize, env, "detection_labels", split) for split in SPLITS]
        waiting = time.monotonic()
        while True:
            with dg.DagsterInstance.get() as instance:
                runs = {r.run_id for r in instance.get_runs()} - before
                queued = queued_steps(instance, runs)
                if len(runs) == len(SPLITS) and queued == workers:  # the rest wait for a pool slot
                    break
            if time.monotonic() - waiting > 120:
                raise RuntimeError(f"{len(runs)} runs, {queued} steps queued after 120 s")
            time.sleep(1)
        with ExitStack() as stack:
            for n in range(workers):
                stack.enter_context(celery_worker(worker_env, "gpu", f"gpu{n}-{workers}x{threads}",
                                                  work / f"gpu{n}-{workers}x{threads}.log"))
            for future in launched:
                future.result()
    with dg.DagsterInstance.get() as instance:
        span, steps = step_span(instance, list(runs))
    return span, steps


def labelled_images(store, prefix: str) -> int:
    import io

    import pandas as pd

    total = 0
    for split in SPLITS:
        body = store.client.get_object(Bucket=BUCKET, Key=f"{prefix}/data/detection_labels/{split}.parquet")["Body"]
        total += len(pd.read_parquet(io.BytesIO(body.read())))
    return total


def run_seconds(instance: dg.DagsterInstance, run_id: str) -> float:
    record = instance.get_run_records(dg.RunsFilter(run_ids=[run_id]))[0]
    return record.end_time - record.start_time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events-per-camera", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from wildbench_assets.cli import main as wildbench

    work = Path(tempfile.mkdtemp(prefix="wildbench-bench-dist-"))
    (work / "s3").mkdir()
    with seaweedfs(work / "s3") as endpoint, postgres_server() as postgres, redis_server(work) as redis:
        prefix, cache = "bench", work / "cache"
        env = production_env(work / "home", endpoint, redis, postgres, BUCKET, prefix, cache)
        env["WILDBENCH_DETECTOR"] = "mdlite"
        os.environ.update({k: v for k, v in env.items() if k.startswith(("DAGSTER_", "WILDBENCH_", "AWS_"))})
        store = open_archive(f"s3://{BUCKET}/{prefix}/archive", endpoint, S3_KEY, S3_SECRET)
        store.client.create_bucket(Bucket=BUCKET)
        assert wildbench(["demo-archive", str(work / "archive"), "--events-per-camera",
                          str(args.events_per_camera)]) == 0
        pairs = publish_archive(work / "archive", store)
        in_process = {k: v for k, v in env.items() if k != "WILDBENCH_CELERY_BROKER"}
        print(f"archive: {sum(1 for _ in store.list())} objects, {len(pairs)} park x day partitions")
        for park, day in pairs:
            materialize(in_process, "raw_images,image_metadata", str(park_day_key(park, day)))
        for park in sorted({p for p, _ in pairs}):
            materialize(in_process, "curated_images", park)
        for split in SPLITS:
            materialize(in_process, "benchmark_splits", split)

        # (a) labelling: 1 worker vs 2 (one torch thread each), and 1 worker with both cores
        results = {}
        for workers, threads in ((1, 1), (2, 1), (1, 2)):
            span, steps = label_trial(env, workers, threads, work, store, prefix, cache)
            results[(workers, threads)] = span
            print(f"labelling, {workers} worker(s) x {threads} thread(s): {span:.1f} s ({steps} steps)")
        images = labelled_images(store, prefix)

        # (b) per-step overhead: the same 2-step ingest run in process vs through Celery
        park, day = pairs[0]
        key = str(park_day_key(park, day))
        times: dict[str, list[float]] = {"in process": [], "celery": []}
        events: dict[str, int] = {}
        with celery_worker(env, "cpu", "cpu-overhead", work / "cpu-overhead.log"):
            for _ in range(args.repeats):
                for way, way_env in (("in process", in_process), ("celery", env)):
                    with dg.DagsterInstance.get() as instance:
                        before = {r.run_id for r in instance.get_runs()}
                    materialize(way_env, "raw_images,image_metadata", key)
                    with dg.DagsterInstance.get() as instance:
                        (run_id,) = [r.run_id for r in instance.get_runs() if r.run_id not in before]
                        times[way].append(run_seconds(instance, run_id))
                        events[way] = len(instance.all_logs(run_id))

    one, two, both = results[(1, 1)], results[(2, 1)], results[(1, 2)]
    inproc, celery = statistics.median(times["in process"]), statistics.median(times["celery"])
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"images labelled per trial: {images} (MegadetectorLite, CPU)")
    print("| workers x torch threads | seconds | images/s | vs 1 x 1 |")
    print("|---|---:|---:|---:|")
    for (w, t), span in results.items():
        print(f"| {w} x {t} | {span:.1f} | {images / span:.2f} | {one / span:.2f}x |")
    print(f"\ntwo workers vs one (one thread each): {one / two:.2f}x; one worker with both cores: {one / both:.2f}x")
    print(f"ingest run (2 steps) in process: {inproc:.2f} s, Celery: {celery:.2f} s (median of {args.repeats}); "
          f"overhead {(celery - inproc) / 2:.2f} s per step")
    print(f"event records per ingest run: in process {events['in process']}, Celery {events['celery']}")


if __name__ == "__main__":
    main()
