"""The daemon's first ingest of an archive: one run per (park, day) partition vs partition-range runs.

A synthetic listing (bench/synthetic_listing.py) of N objects over 2 parks x D arrival days, thesis layout.
The real `archive_arrivals` sensor ticks on a persistent SQLite instance as the daemon would (it registers
the new parks and days itself); every run request is executed as the daemon launches it
(`raw_images` in process, with the request's partition key or partition-range tags, its run key and
tags), until a tick requests nothing. Same archive, a fresh instance per mode, side by side:

  OLD  the sensor before this change: a run per partition, at most 25 a tick (chunks of one);
  NEW  the sensor as it is: contiguous ranges of up to 100 partitions a run (raw_images' BackfillPolicy),
       up to 300 partitions in 25 runs a tick.

Reported: ticks, runs, seconds in ticks and in runs, and OLD / NEW. On the daemon each further tick also
waits WILDBENCH_ARRIVALS_INTERVAL_S (60 s by default), which is not counted here: OLD's extra ticks cost
that much more wall time again.

    .venv/bin/python bench/bench_sensor_ingest.py [--objects 60000] [--days 100]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_arrivals import machine, open_instance  # noqa: E402
from bench_ingest_scale import ARCHIVES, resources  # noqa: E402
from synthetic_listing import SyntheticArchive, synthetic_listing  # noqa: E402

from wildbench_assets import sensors  # noqa: E402
from wildbench_assets.assets.ingest import raw_images  # noqa: E402
from wildbench_assets.ingest_state import stored_fingerprints  # noqa: E402


def ingest_everything(instance, res: dict) -> dict:
    """Tick and run every request, until a tick requests nothing."""
    cursor, out = None, {"ticks": 0, "runs": 0, "tick_s": 0.0, "run_s": 0.0}
    while True:
        context = dg.build_sensor_context(instance=instance, cursor=cursor,
                                          resources={"archive": res["archive"], "day_keys": res["day_keys"]})
        t0 = time.perf_counter()
        result = sensors.arrivals_sensor()(context)
        out["tick_s"] += time.perf_counter() - t0
        out["ticks"] += 1
        cursor = result.cursor
        if not result.run_requests and '"scan"' not in (cursor or ""):
            return out
        t0 = time.perf_counter()
        for request in result.run_requests:
            done = dg.materialize([raw_images], partition_key=request.partition_key, instance=instance,
                                  resources=res, tags={**request.tags, "dagster/run_key": request.run_key})
            assert done.success
        out["run_s"] += time.perf_counter() - t0
        out["runs"] += len(result.run_requests)


def one_mode(name: str, uri: str, workdir: Path, partitions: int) -> dict:
    folder = workdir / name
    folder.mkdir()
    instance = open_instance(folder)
    if name == "OLD":
        sensors.INGEST_BACKFILL = dg.BackfillPolicy.multi_run(max_partitions_per_run=1)
        sensors.MAX_INGEST_PARTITIONS_PER_TICK = 25
    else:
        sensors.INGEST_BACKFILL, sensors.MAX_INGEST_PARTITIONS_PER_TICK = NEW_POLICY, NEW_PER_TICK
    out = ingest_everything(instance, resources(uri, folder / "data"))
    assert len(stored_fingerprints(instance)) == partitions, "every partition ingested once"
    out["total_s"] = out["tick_s"] + out["run_s"]
    print(f"  {name}: {out['ticks']} ticks ({out['tick_s']:.1f} s), {out['runs']} runs ({out['run_s']:.1f} s), "
          f"total {out['total_s']:.1f} s")
    return out


NEW_POLICY, NEW_PER_TICK = sensors.INGEST_BACKFILL, sensors.MAX_INGEST_PARTITIONS_PER_TICK


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=60_000)
    parser.add_argument("--days", type=int, default=100, help="arrival days per park (2 parks)")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    keys, mtimes = synthetic_listing(args.objects, args.days)
    uri = f"synthetic://{args.objects}"
    ARCHIVES[uri] = SyntheticArchive(keys, mtimes)
    partitions = 2 * args.days
    print(f"archive: {args.objects:,} objects, 2 parks x {args.days} days = {partitions} partitions")
    with tempfile.TemporaryDirectory() as tmp:
        old = one_mode("OLD", uri, Path(tmp), partitions)
        new = one_mode("NEW", uri, Path(tmp), partitions)
    print(f"OLD / NEW: {old['total_s'] / new['total_s']:.1f}x wall in ticks + runs; runs {old['runs']} -> "
          f"{new['runs']}; ticks {old['ticks']} -> {new['ticks']} (each further tick: + the 60 s interval "
          "on the daemon)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
