"""Ingest at thesis scale: per-day key lists and batched backfills vs listing the park in every run.

A synthetic archive listing (bench/synthetic_listing.py: `SyntheticArchive`) of N objects over 2 parks x
1,100 arrival days (2,200 park x day partitions), thesis layout `<park>/<species>/<camera>/<file>` (no day
in the path). The listing is generated in memory in S3 key order, so what is measured is our code's
per-object work (sensor scan, fingerprints, key-list pages, the run's filtering and tables) with zero
storage I/O; a real listing adds its own cost per object listed (local folder or S3) on top, which only
widens the gap, because the new run lists nothing. Everything else is real: the `archive_arrivals`
sensor, `raw_images` (with its checks), the Parquet IO manager, `wildbench run`'s planner and runner, and a
persistent SQLite Dagster instance.

For each N (default 100,000 / 400,000 / 1,300,000):
  [tick]    one `archive_arrivals` evaluation on a fresh instance, through the whole listing (ticks summed
            when it passes the 20 s budget), 25 run requests and their key lists written;
  [day]     600 images land in `snieves` on a new day; its key list is written as a tick writes it, then
            raw_images of that day runs OLD (no key list: lists the park, filters the day: the code before
            this change) and NEW (reads the day's key list), interleaved, median of --repeats runs each.
At the largest N only:
  [backfill] every partition (2,200 + the new day). OLD: one run per partition listing its park; a
            sample of runs (--old-sample) is measured and multiplied out (the full old way takes hours).
            NEW: `wildbench run`: its plan in full (one listing, 2,201 key lists), then runs of 100
            partitions (the BackfillPolicy) over the first --new-sample partitions, their time per
            partition multiplied out (0: run them all).
  [daily]   after the backfill, another new day: a tick (requests exactly it) and its run.

    .venv/bin/python bench/bench_ingest_scale.py [--objects 100000,400000,1300000] [--old-sample 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from pathlib import Path

import dagster as dg

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _rss import peak_rss_mb  # noqa: E402
from bench_arrivals import machine, open_instance  # noqa: E402
from synthetic_listing import SyntheticArchive, synthetic_listing  # noqa: E402

from wildbench_assets.assets.ingest import raw_images  # noqa: E402
from wildbench_assets.definitions import build_defs  # noqa: E402
from wildbench_assets.ingest_state import stored_fingerprints  # noqa: E402
from wildbench_assets.partitions import ARRIVAL_DAY, PARK, park_day_key  # noqa: E402
from wildbench_assets.resources.archive import ArchiveResource  # noqa: E402
from wildbench_assets.resources.day_keys import DAY_KEYS_TAG, DayKeyLists  # noqa: E402
from wildbench_assets.resources.parquet_io import ParquetIOManager  # noqa: E402
from wildbench_assets.resources.taxonomy import TaxonomyResource  # noqa: E402
from wildbench_assets.runner import plan_pipeline, register_partitions, run_plan  # noqa: E402
from wildbench_assets.sensors import arrivals_sensor, scan_archive  # noqa: E402

ARCHIVES: dict[str, SyntheticArchive] = {}
DAYS_PER_PARK, NEW_DAY_OBJECTS, NEW_PARK, REPEATS = 1100, 600, "snieves", 3


class SyntheticArchiveResource(ArchiveResource):
    """The archive resource over a `SyntheticArchive` (by its uri): the assets and sensor take it as is."""

    def open(self):
        return ARCHIVES[self.uri]


def resources(uri: str, data: Path) -> dict:
    return {"archive": SyntheticArchiveResource(uri=uri), "taxonomy": TaxonomyResource(),
            "parquet_io_manager": ParquetIOManager(base_dir=str(data)),
            "day_keys": DayKeyLists(uri=str(data / "day_keys"))}


def day_after(days: int) -> tuple[str, int]:
    """(the arrival day `days` after 2019-01-01, noon UTC of it in ns)."""
    import pandas as pd

    when = pd.Timestamp("2019-01-01", tz="UTC") + pd.Timedelta(days=days, hours=12)
    return when.strftime("%Y-%m-%d"), when.value


def land_day(archive: SyntheticArchive, days: int, tag: str) -> str:
    day, ns = day_after(days)
    archive.add([f"{NEW_PARK}/vul/C900/{tag}_{i:05d}.JPG" for i in range(NEW_DAY_OBJECTS)], ns)
    return day


def tick_through(instance, res: dict, cursor=None):
    """(last result, seconds per tick): evaluations until one finishes the listing."""
    seconds = []
    while True:
        context = dg.build_sensor_context(instance=instance, cursor=cursor,
                                          resources={"archive": res["archive"], "day_keys": res["day_keys"]})
        t0 = time.perf_counter()
        result = arrivals_sensor()(context)
        seconds.append(time.perf_counter() - t0)
        cursor = result.cursor
        if '"scan"' not in (cursor or ""):
            return result, seconds


def run_day(instance, res: dict, park: str, day: str, with_key_list: bool) -> tuple[float, dict]:
    tags = {DAY_KEYS_TAG: "1"} if with_key_list else {}
    t0 = time.perf_counter()
    result = dg.materialize([raw_images], partition_key=park_day_key(park, day), instance=instance,
                            resources=res, tags=tags)
    seconds = time.perf_counter() - t0
    assert result.success
    event = result.get_asset_materialization_events()[0].event_specific_data.materialization
    return seconds, {k: v.value for k, v in event.metadata.items()}


def write_day_key_list(store, res: dict, park: str, day: str) -> float:
    """What a tick does for one changed day: the listing with its pages kept, then the day's key list."""
    t0 = time.perf_counter()
    spill = res["day_keys"].open().spill()
    scan, _ = scan_archive(store, {}, budget_s=1e9, spill=spill)
    spill.publish({(park, day): scan.fingerprints()[(park, day)]})
    return time.perf_counter() - t0


def one_size(n: int, workdir: Path, old_sample: int, new_sample: int, backfill: bool) -> dict:
    folder = workdir / f"n{n}"
    folder.mkdir(parents=True)
    t0 = time.perf_counter()
    keys, mtimes = synthetic_listing(n, DAYS_PER_PARK)
    uri = f"synthetic://{n}"
    ARCHIVES[uri] = archive = SyntheticArchive(keys, mtimes)
    res = resources(uri, folder / "data")
    print(f"\n== {n:,} objects, 2 parks x {DAYS_PER_PARK} days (generated in {time.perf_counter() - t0:.1f} s)")
    out: dict = {"n": n}

    instance = open_instance(folder)
    result, seconds = tick_through(instance, res)
    out["tick"], out["ticks"] = sum(seconds), len(seconds)
    print(f"  [tick] fresh instance: {sum(seconds):7.2f} s in {len(seconds)} tick(s), "
          f"{len(result.run_requests)} run requests (their key lists written)")

    day = land_day(archive, DAYS_PER_PARK, "NEW")
    register_partitions(instance, [(NEW_PARK, day)])
    write_day_key_list(archive, res, NEW_PARK, day)
    old, new = [], []
    for _ in range(REPEATS):  # interleaved, so both see the same machine load
        s_old, meta_old = run_day(instance, res, NEW_PARK, day, with_key_list=False)
        s_new, meta_new = run_day(instance, res, NEW_PARK, day, with_key_list=True)
        old.append(s_old)
        new.append(s_new)
    assert meta_old["fingerprint"] == meta_new["fingerprint"] and meta_new["objects"] == NEW_DAY_OBJECTS
    out["day_old"], out["day_new"] = statistics.median(old), statistics.median(new)
    print(f"  [day] new day's raw_images run ({NEW_DAY_OBJECTS} objects): OLD (park listing, "
          f"{meta_old['objects_listed']:,} objects listed) {out['day_old']:.2f} s | NEW (key list, "
          f"{meta_new['objects_listed']} objects read) {out['day_new']:.2f} s | "
          f"OLD / NEW = {out['day_old'] / out['day_new']:.1f}x (median of {REPEATS}; "
          f"NEW runs {min(new):.2f}-{max(new):.2f} s)")

    if backfill:
        out.update(backfill_both(archive, res, folder, old_sample, new_sample))
    return out


def backfill_both(archive: SyntheticArchive, res: dict, folder: Path, old_sample: int, new_sample: int) -> dict:
    out = {}
    defs = build_defs("local", resources=res)
    # OLD: one run per partition, each listing its park (a sample, multiplied out)
    (folder / "old").mkdir()
    (folder / "new").mkdir()
    instance = open_instance(folder / "old")
    scan, _ = scan_archive(archive, {}, budget_s=1e9)
    parts = sorted(scan.partitions, key=lambda p: (p[1], p[0]))
    register_partitions(instance, parts)
    step = max(1, len(parts) // old_sample)
    sample = parts[::step][:old_sample]
    seconds = [run_day(instance, res, park, day, with_key_list=False)[0] for park, day in sample]
    per_run = statistics.mean(seconds)
    out["old_per_run"], out["old_total"], out["partitions"] = per_run, per_run * len(parts), len(parts)
    print(f"  [backfill] OLD: {len(sample)} sampled runs, {per_run:.2f} s each (range {min(seconds):.2f}-"
          f"{max(seconds):.2f}) x {len(parts):,} partitions = {out['old_total']:,.0f} s "
          f"({out['old_total'] / 3600:.1f} h, extrapolated)")

    # NEW: wildbench run: one listing, every day's key list, runs of BackfillPolicy size
    instance = open_instance(folder / "new")
    t0 = time.perf_counter()
    plan = plan_pipeline(defs, instance, archive, {"raw_images"})
    t1 = time.perf_counter()
    todo = plan.todo[dg.AssetKey("raw_images")]
    assert len(todo) == len(parts)
    if new_sample and new_sample < len(todo):  # the first days of both parks: runs of the policy's size
        plan.todo[dg.AssetKey("raw_images")] = todo[:new_sample]
    outcome = run_plan(defs, instance, plan, log_level="WARNING")
    t2 = time.perf_counter()
    assert not outcome.get("failure"), outcome.get("failure")[:3]
    runs, ran = len(outcome["success"]), len(plan.todo[dg.AssetKey("raw_images")])
    done = instance.get_materialized_partitions(dg.AssetKey("raw_images"))
    assert len(done) == ran, (len(done), ran)
    fingerprints = scan.fingerprints()
    assert stored_fingerprints(instance) == {p: fingerprints[p] for p in stored_fingerprints(instance)}
    per_partition = (t2 - t1) / ran
    out["new_total"] = (t1 - t0) + per_partition * len(parts)
    out["new_plan"], out["new_runs"] = t1 - t0, runs * len(parts) / ran
    scope = "all partitions" if ran == len(parts) else f"{ran} partitions measured in {runs} runs, multiplied out"
    print(f"  [backfill] NEW: wildbench run = plan (one listing + {len(parts):,} key lists) {t1 - t0:.1f} s + runs "
          f"{per_partition:.3f} s a partition ({scope}) = {out['new_total']:,.1f} s; each partition materialized "
          f"with its own fingerprint and check evaluations")
    print(f"  [backfill] OLD / NEW = {out['old_total'] / out['new_total']:.1f}x")
    if ran < len(parts):
        return out

    # the daily case after the backfill: a quiet tick, then a new day's tick and run
    quiet, seconds = tick_through(instance, res)
    assert not quiet.run_requests, len(quiet.run_requests)
    out["quiet_tick"] = sum(seconds)
    day = land_day(archive, DAYS_PER_PARK + 1, "NEXT")
    t0 = time.perf_counter()
    result, seconds = tick_through(instance, res, quiet.cursor)
    t1 = time.perf_counter()
    got = [(r.partition_key.keys_by_dimension[PARK], r.partition_key.keys_by_dimension[ARRIVAL_DAY])
           for r in result.run_requests]
    assert got == [(NEW_PARK, day)], got
    request = result.run_requests[0]
    run = dg.materialize([raw_images], partition_key=request.partition_key, instance=instance, resources=res,
                         tags=request.tags)
    t2 = time.perf_counter()
    assert run.success
    out["daily_tick"], out["daily_run"] = t1 - t0, t2 - t1
    print(f"  [daily] quiet tick {out['quiet_tick']:.2f} s; a new day: tick {t1 - t0:.2f} s (requests exactly "
          f"it) + its run {t2 - t1:.2f} s")
    return out


def main() -> int:
    global DAYS_PER_PARK, REPEATS
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", default="100000,400000,1300000", help="archive sizes, comma-separated")
    parser.add_argument("--old-sample", type=int, default=5, help="old-way backfill runs measured")
    parser.add_argument("--new-sample", type=int, default=200,
                        help="backfill partitions run the new way, then multiplied out (0: all of them)")
    parser.add_argument("--skip-backfill", action="store_true")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each way for one day, median shown")
    parser.add_argument("--days-per-park", type=int, default=DAYS_PER_PARK, help="arrival days of each park")
    parser.add_argument("--workdir", default=".bench/ingest_scale", help="rebuilt on every run")
    args = parser.parse_args()
    DAYS_PER_PARK, REPEATS = args.days_per_park, args.repeats
    workdir = Path(args.workdir).resolve()
    shutil.rmtree(workdir, ignore_errors=True)
    sizes = [int(x) for x in args.objects.split(",")]
    print(f"machine: {machine()}")
    print("archive: synthetic listing in memory (S3 key order), no storage I/O; everything else real")
    results = [one_size(n, workdir, args.old_sample, args.new_sample, not args.skip_backfill and n == max(sizes))
               for n in sizes]

    print("\nsummary")
    print("  objects     tick s (ticks)   day OLD s   day NEW s   OLD/NEW")
    for r in results:
        print(f"  {r['n']:>9,}   {r['tick']:7.2f} ({r['ticks']})   {r['day_old']:9.2f}   {r['day_new']:9.2f}   "
              f"{r['day_old'] / r['day_new']:6.1f}x")
    flat = max(r["day_new"] for r in results) / min(r["day_new"] for r in results)
    print(f"  NEW day run, largest / smallest archive: {flat:.2f}x (flat means ~1)")
    big = results[-1]
    if "new_total" in big:
        ratio = big["old_total"] / big["new_total"]
        print(f"  backfill of {big['partitions']:,} partitions: OLD {big['old_total']:,.0f} s vs "
              f"NEW {big['new_total']:,.1f} s in {big['new_runs']:.0f} runs: {ratio:.1f}x "
              f"(goal >= 10x: {'met' if ratio >= 10 else 'NOT met'})")
    print(f"\npeak RSS {peak_rss_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
