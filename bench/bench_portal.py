"""The researcher portal on this machine (issue 11): requests per second of the leaderboard page and of
the inference endpoint, and the latency of a 1,000-image custom request from submit to download.

A demo archive large enough for 1,000 images of one request (`--events-per-camera`, default 60) is run
up to the curated images (manifest boxes), a release is cut and the leaderboard written. The portal is
served by uvicorn on loopback; one client (httpx) measures sequential requests over real HTTP. The
request is submitted through the API, the daemon's part (sensor tick + run) is played in-process as soon
as the file lands, and the client polls the status every 0.2 s until it downloads the ZIP: the wall time
from submit to the last byte. Under `make dev` the sensor's interval (30 s by default) adds to it.

    .venv/bin/python bench/bench_portal.py [--events-per-camera 60] [--page-requests 200] [--inferences 10]
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import dagster as dg
import httpx
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers import pipeline_defs, run_all  # noqa: E402
from wildbench_assets.cli import main as cli  # noqa: E402
from wildbench_assets.portal.app import create_app  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "samples" / "camera-traps" / "idaho-cougar.jpg"
TOKEN = "bench"


def serve(app) -> tuple[str, uvicorn.Server]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server


def rate(client: httpx.Client, n: int, call) -> float:
    started = time.perf_counter()
    for _ in range(n):
        response = call(client)
        response.raise_for_status()
    return n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events-per-camera", type=int, default=60)
    parser.add_argument("--page-requests", type=int, default=200)
    parser.add_argument("--inferences", type=int, default=10)
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        archive, data = Path(tmp) / "archive", Path(tmp) / "data"
        cli(["demo-archive", str(archive), "--events-per-camera", str(args.events_per_camera)])
        instance = dg.DagsterInstance.ephemeral()
        started = time.perf_counter()
        _, outcome = run_all(archive, data, instance=instance, detector="manifest",
                             selection=["raw_images", "image_metadata", "curated_images", "benchmark_splits",
                                        "detection_labels"])
        assert not outcome.get("failure"), outcome
        defs = pipeline_defs(archive, data, detector="manifest")
        instance.add_dynamic_partitions("releases", ["bench"])
        assert defs.resolve_job_def("release_job").execute_in_process(instance=instance, partition_key="bench").success
        assert defs.resolve_job_def("leaderboard_job").execute_in_process(instance=instance).success
        print(f"setup (archive up to labels, a release, the leaderboard): {time.perf_counter() - started:.0f} s")

        real = pipeline_defs(archive, data, detector="mdlite")  # inference by a real detector
        url, server = serve(create_app(real, token=TOKEN, instance=instance))
        auth = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=url, timeout=600) as client:
            pages = rate(client, args.page_requests, lambda c: c.get("/leaderboard"))
            print(f"leaderboard page: {pages:.1f} requests/s ({args.page_requests} sequential)")
            api = rate(client, args.page_requests, lambda c: c.get("/api/leaderboard"))
            print(f"/api/leaderboard: {api:.1f} requests/s")
            photo = SAMPLE.read_bytes()
            inference = rate(client, args.inferences, lambda c: c.post(
                "/api/inference", files={"files": ("cougar.jpg", photo, "image/jpeg")}, headers=auth))
            print(f"/api/inference (one {len(photo) // 1024} KiB photo, detector mdlite): {inference:.2f} requests/s")

            matching = client.get("/api/images", params={"include_empties": "true"}).json()["images"]
            print(f"curated images: {matching}")
            started = time.perf_counter()
            submitted = client.post("/api/queries", json={"limit": 1000, "include_empties": True, "formats":
                                                          ["yolo", "coco"]}, headers=auth).json()
            request_id = submitted["id"]
            sensor = defs.resolve_sensor_def("custom_export_requests")  # the daemon's part
            result = sensor(dg.build_sensor_context(instance=instance, resources=defs.resources))
            for request in result.dynamic_partitions_requests:
                instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
            run = threading.Thread(target=lambda: defs.resolve_job_def("custom_export_job").execute_in_process(
                instance=instance, partition_key=request_id, tags={"wildbench/request": request_id}))
            run.start()
            polls = 0
            while (status := client.get(f"/api/queries/{request_id}").json())["state"] not in ("done", "failed"):
                polls += 1
                time.sleep(0.2)
            run.join()
            download = client.get(status["download_url"]) if status["state"] == "done" else None
            elapsed = time.perf_counter() - started
            print(f"custom request of {status.get('images')} images: {status['state']}, submit to downloaded ZIP "
                  f"{elapsed:.1f} s ({len(download.content) / 1e6 if download else 0:.1f} MB, {polls} polls)")
        server.should_exit = True


if __name__ == "__main__":
    main()
