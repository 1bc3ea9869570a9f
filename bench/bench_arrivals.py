"""A living archive: 1 % more images arriving on a new day, incremental update vs full re-run.

An archive of N images (default 100,000: 2 parks x D arrival days x 6 cameras, every image a unique
32x24 JPEG with EXIF DateTimeOriginal, frames 13 s apart per camera, each file's mtime at noon UTC of
its arrival day) is built and taken through the stages
    raw_images -> image_metadata -> curated_images, new_image_predictions
on a persistent SQLite Dagster instance. Then:
  (a) one `archive_arrivals` sensor tick over the whole listing: on the local folder (fully ingested:
      a quiet tick, 0 run requests) and on SeaweedFS on loopback (fresh instance, everything new). A
      listing past the sensor's 20 s budget continues over more ticks; their count and total are shown.
  (b) N/100 new images land in park `snieves` on today's arrival day. INCREMENTAL is what the daemon
      does: a sensor tick with the previous cursor (it must request exactly the new partition), then
      plan + run of the stale partitions (the new day's ingest and predictions, the park's curation).
      FULL is `run_pipeline(..., force=True)` of the same stages over the whole archive (N + N/100).
      Both wall times and FULL / INCREMENTAL, in one run.

Predictions use the `manifest` detector backend: every image is read, hashed and fully decoded and
a prediction row is written, but no neural network runs (100,000 CPU inferences would take hours on a
2-core machine and would measure the model, not the pipeline). FULL finds those predictions in the
label cache by (path, etag), as `wildbench run --force` would; `--cold-full` empties the cache first.

    .venv/bin/python bench/bench_arrivals.py [--images 100000] [--days 25] [--skip-s3] [--cold-full]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import sys
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from multiprocessing import Pool
from pathlib import Path

import dagster as dg
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from _rss import peak_rss_mb  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.helpers import pipeline_defs  # noqa: E402
from tests.services import S3_KEY, S3_SECRET, seaweedfs  # noqa: E402
from wildbench_assets.lib.demo_archive import CAMERAS, exif_bytes, format_exif_date  # noqa: E402
from wildbench_assets.partitions import ARRIVAL_DAY, PARK, park_day_key  # noqa: E402
from wildbench_assets.resources.archive import ArchiveResource, LocalArchive, open_archive  # noqa: E402
from wildbench_assets.resources.day_keys import DayKeyLists  # noqa: E402
from wildbench_assets.runner import archive_partitions, plan_pipeline, run_pipeline, run_plan  # noqa: E402
from wildbench_assets.sensors import LISTING_BUDGET_S, MAX_INGEST_PARTITIONS_PER_TICK, arrivals_sensor  # noqa: E402
from wildbench_assets.settings import PROJECT_ROOT  # noqa: E402

STAGES = ["raw_images", "image_metadata", "curated_images", "new_image_predictions"]
# Table 3.1 codes (wildbench_assets/taxonomy.py) plus empties, weighted as an imbalanced archive is.
SPECIES = {"snieves": {"capi": 4, "ovar": 3, "vul": 2, "sus": 2, "emp": 3},
           "donana": {"cer": 4, "sus": 3, "vul": 2, "lyn": 1, "emp": 3}}
NEW_PARK = "snieves"
FRAME_GAP_S = 13  # per camera: far above the 1 s burst interval, so burst cleaning keeps every frame
BUCKET = "bench-arrivals"
TEMPLATE_DATE = datetime(2000, 1, 1)


# ------------------------------------------------------------------------------------------ the archive

def _camera_images(task: tuple) -> int:
    """Write one camera's images of one arrival day (a Pool worker); returns the count written."""
    root, park, camera, arrival, count, mtime = task
    make, model, style = CAMERAS[park][camera]
    template = exif_bytes(TEMPLATE_DATE, make, model, style)  # built once, re-dated per image by bytes
    old = format_exif_date(TEMPLATE_DATE, style)[:19].encode()
    rng = np.random.default_rng(zlib.crc32(f"{park}/{camera}/{arrival}".encode()))
    codes, weights = zip(*SPECIES[park].items())
    chosen = rng.choice(len(codes), size=count, p=np.array(weights) / sum(weights))
    first = datetime.combine(date.fromisoformat(arrival) - timedelta(days=2), clock(6)) \
        + timedelta(seconds=int(camera[1:]) * 3)
    folders = set()
    for k in range(count):
        taken = first + timedelta(seconds=k * FRAME_GAP_S)
        exif = template.replace(old, format_exif_date(taken, style)[:19].encode())
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(
            buffer, format="JPEG", quality=80, exif=exif)
        folder = Path(root, park, codes[chosen[k]], camera)
        if folder not in folders:
            folder.mkdir(parents=True, exist_ok=True)
            folders.add(folder)
        path = folder / f"{camera}_{taken:%Y%m%d_%H%M%S}_{k:05d}.jpg"
        path.write_bytes(buffer.getvalue())
        os.utime(path, (mtime, mtime))
    return count


def write_images(root: Path, cells: list[tuple[str, str, float]], total: int) -> int:
    """`total` images spread evenly over (park, arrival day, mtime) cells and each park's cameras."""
    tasks = [(str(root), park, camera, day, 0, mtime) for park, day, mtime in cells for camera in CAMERAS[park]]
    share, extra = divmod(total, len(tasks))
    tasks = [(*t[:4], share + (i < extra), t[5]) for i, t in enumerate(tasks)]
    pool = Pool(os.cpu_count() or 2)
    try:
        return sum(pool.imap_unordered(_camera_images, tasks, chunksize=4))
    finally:  # close + join, not terminate: forked after Dagster's imports, a SIGTERM would traceback
        pool.close()
        pool.join()


def noon_utc(day: date) -> float:
    return datetime.combine(day, clock(12), tzinfo=UTC).timestamp()


# ------------------------------------------------------------------------------------------ sensor ticks

def tick(instance: dg.DagsterInstance, archive: ArchiveResource, cursor: str | None) -> dg.SensorResult:
    keys = DayKeyLists(uri=str(Path(archive.uri).parent / "day_keys")) if "://" not in archive.uri \
        else DayKeyLists(uri=f"{archive.uri}-day-keys", endpoint_url=archive.endpoint_url,
                         aws_access_key_id=archive.aws_access_key_id,
                         aws_secret_access_key=archive.aws_secret_access_key)
    context = dg.build_sensor_context(instance=instance, cursor=cursor,
                                      resources={"archive": archive, "day_keys": keys})
    return arrivals_sensor()(context)


def tick_through_listing(instance, archive: ArchiveResource, cursor: str | None):
    """Ticks until one finishes the listing: (final result, seconds of each tick)."""
    seconds = []
    while True:
        t0 = time.perf_counter()
        result = tick(instance, archive, cursor)
        seconds.append(time.perf_counter() - t0)
        cursor = result.cursor
        if '"scan"' not in (cursor or ""):
            return result, seconds


def requested(result: dg.SensorResult) -> set[tuple[str, str]]:
    return {(r.partition_key.keys_by_dimension[PARK], r.partition_key.keys_by_dimension[ARRIVAL_DAY])
            for r in result.run_requests}


def describe_ticks(seconds: list[float]) -> str:
    if len(seconds) == 1:
        return f"{seconds[0]:8.2f} s   (one tick)"
    return f"{sum(seconds):8.2f} s   ({len(seconds)} ticks: listing past the {LISTING_BUDGET_S:g} s budget " \
           f"continued; first tick {seconds[0]:.2f} s)"


def s3_tick(workdir: Path, archive_root: Path, n: int) -> None:
    """Upload the archive to SeaweedFS (not timed into the tick) and time a tick on a fresh instance."""
    folder = workdir / "seaweedfs"
    folder.mkdir()
    with seaweedfs(folder) as endpoint:
        store = open_archive(f"s3://{BUCKET}/archive", endpoint, S3_KEY, S3_SECRET)
        store.client.create_bucket(Bucket=BUCKET)
        keys = [o.key for o in LocalArchive(archive_root).list()]
        t0 = time.perf_counter()
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda key: store.write(key, (archive_root / key).read_bytes()), keys))
        upload_s = time.perf_counter() - t0
        print(f"  SeaweedFS upload of {len(keys):,} objects, 16 threads  {upload_s:8.2f} s   "
              f"({len(keys) / upload_s:,.0f} objects/s; setup, not counted)")
        archive = ArchiveResource(uri=f"s3://{BUCKET}/archive", endpoint_url=endpoint,
                                  aws_access_key_id=S3_KEY, aws_secret_access_key=S3_SECRET)
        result, seconds = tick_through_listing(dg.DagsterInstance.ephemeral(), archive, None)
        partitions = archive_partitions(store)  # S3 stamps LastModified at upload: all arrived today
    expected = min(len(partitions), MAX_INGEST_PARTITIONS_PER_TICK)
    covered = len(json.loads(result.cursor)["pending"])  # the partitions the requests cover
    assert covered == expected, (covered, expected)
    print(f"  tick, SeaweedFS, {n:,} objects, fresh instance       {describe_ticks(seconds)}; "
          f"{len(result.run_requests)} run requests over {covered} partitions (S3 arrival = upload time)")


# ------------------------------------------------------------------------------------------ the pipeline

def open_instance(workdir: Path) -> dg.DagsterInstance:
    """A persistent SQLite instance configured by the repo's dagster.yaml, in the work folder."""
    home = workdir / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    return dg.DagsterInstance.from_config(str(home))


def check_outcome(outcome: dict, what: str) -> int:
    assert not outcome.get("failure") and not outcome.get("skipped"), f"{what}: {outcome}"
    return len(outcome.get("success", []))


def by_stage(instance: dg.DagsterInstance, outcome: dict) -> str:
    """Runs and in-run seconds per batch of stages (run_plan's labels are '<assets> <partition>: <id>')."""
    found: dict[str, list] = {}
    for entry in outcome.get("success", []):
        label, run_id = entry.rsplit(": ", 1)
        stats = instance.get_run_stats(run_id)
        runs_s = found.setdefault(label.split(" ")[0], [0, 0.0])
        runs_s[0] += 1
        runs_s[1] += (stats.end_time or 0) - (stats.start_time or 0)
    return "; ".join(f"{stage} {n} run{'s' * (n > 1)} {s:.1f} s" for stage, (n, s) in found.items())


def assert_incremental_plan(plan, new_parts: set[tuple[str, str]]) -> None:
    """Only the new day's partitions for the park x day stages, only its park for curation."""
    park_days = sorted(str(park_day_key(p, d)) for p, d in new_parts)
    for asset in ("raw_images", "image_metadata", "new_image_predictions"):
        got = sorted(plan.todo[dg.AssetKey(asset)])
        assert got == park_days, f"{asset}: planned {got}, expected {park_days}"
    parks = sorted({p for p, _ in new_parts})
    got = sorted(plan.todo[dg.AssetKey("curated_images")])
    assert got == parks, f"curated_images: planned {got}, expected {parks}"


def incremental(defs, instance, store, archive: ArchiveResource, cursor: str, new_parts) -> dict:
    """The daemon's work for one arrival: tick, register partitions, plan, run. Seconds per step."""
    t0 = time.perf_counter()
    result, ticks = tick_through_listing(instance, archive, cursor)
    t1 = time.perf_counter()
    assert requested(result) == new_parts, f"tick requested {requested(result)}, expected {new_parts}"
    plan = plan_pipeline(defs, instance, store, set(STAGES))
    t2 = time.perf_counter()
    assert_incremental_plan(plan, new_parts)
    outcome = run_plan(defs, instance, plan, log_level="WARNING")
    t3 = time.perf_counter()
    return {"tick": t1 - t0, "ticks": len(ticks), "plan": t2 - t1, "run": t3 - t2, "total": t3 - t0,
            "runs": check_outcome(outcome, "incremental"), "stages": by_stage(instance, outcome)}


# ------------------------------------------------------------------------------------------ reporting

def machine() -> str:
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    cpu = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")),
               platform.processor() or platform.machine())
    mem = Path("/proc/meminfo").read_text().split()[1] if Path("/proc/meminfo").exists() else "0"
    return (f"{cpu}, {os.cpu_count()} cores, {int(mem) / 2**20:.0f} GiB RAM; python {sys.version.split()[0]}, "
            f"dagster {dg.__version__}")


def goal(met: bool) -> str:
    return "met" if met else "NOT met"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=100_000, help="archive size before the arrival")
    parser.add_argument("--days", type=int, default=25, help="arrival days before today, per park")
    parser.add_argument("--workdir", default=".bench/arrivals", help="rebuilt on every run")
    parser.add_argument("--skip-s3", action="store_true", help="leave the SeaweedFS tick out")
    parser.add_argument("--cold-full", action="store_true",
                        help="empty the label cache before FULL, so it re-reads and decodes every image")
    args = parser.parse_args()
    workdir = Path(args.workdir).resolve()
    shutil.rmtree(workdir, ignore_errors=True)
    archive_root, data_dir = workdir / "archive", workdir / "data"
    archive_root.mkdir(parents=True)
    n, n_new = args.images, max(1, args.images // 100)
    today = datetime.now(UTC).date()

    print(f"machine: {machine()}")
    print("detector: `manifest` backend: each image read, hashed, decoded, one prediction row written; "
          "no neural-network inference")
    t0 = time.perf_counter()
    days = [today - timedelta(days=d) for d in range(args.days, 0, -1)]
    written = write_images(archive_root, [(p, d.isoformat(), noon_utc(d)) for p in CAMERAS for d in days], n)
    print(f"\narchive: {written:,} images, {len(CAMERAS)} parks x {args.days} arrival days "
          f"({days[0]} .. {days[-1]}), {sum(map(len, CAMERAS.values()))} cameras; "
          f"written in {time.perf_counter() - t0:.1f} s")

    defs = pipeline_defs(archive_root, data_dir, detector="manifest")
    store = defs.resources["archive"].open()
    instance = open_instance(workdir)
    t0 = time.perf_counter()
    plan, outcome = run_pipeline(defs, instance, store, selection=STAGES, log_level="WARNING")
    runs = check_outcome(outcome, "initial build")
    build_s = time.perf_counter() - t0
    print(f"initial build of {', '.join(STAGES)}: {build_s:.1f} s, {runs} runs "
          f"({len(plan.todo[dg.AssetKey('raw_images')])} park x day partitions)")
    print(f"  in-run time by stage: {by_stage(instance, outcome)}")

    print(f"\n[a] one archive_arrivals tick over the whole listing ({n:,} objects)")
    local = ArchiveResource(uri=str(archive_root))
    quiet, seconds = tick_through_listing(instance, local, None)
    assert not quiet.run_requests, f"quiet tick requested {requested(quiet)}"
    local_tick_s = sum(seconds)
    print(f"  tick, local folder, fully ingested (0 requests)     {describe_ticks(seconds)}")
    if args.skip_s3:
        print("  SeaweedFS: skipped (--skip-s3)")
    else:
        s3_tick(workdir, archive_root, n)

    print(f"\n[b] {n_new:,} new images in park {NEW_PARK} on a new arrival day ({today})")
    write_images(archive_root, [(NEW_PARK, today.isoformat(), time.time())], n_new)
    new_parts = {(NEW_PARK, today.isoformat())}
    inc = incremental(defs, instance, store, local, quiet.cursor, new_parts)
    ticks = "tick" if inc["ticks"] == 1 else f"{inc['ticks']} ticks"
    print(f"  INCREMENTAL  {inc['total']:8.2f} s   ({ticks} {inc['tick']:.2f} s, plan {inc['plan']:.2f} s, "
          f"{inc['runs']} runs {inc['run']:.2f} s: the new day's ingest + predictions, {NEW_PARK}'s curation)")
    print(f"               in-run time by stage: {inc['stages']}")
    if args.cold_full:
        shutil.rmtree(data_dir / "label_cache", ignore_errors=True)
    t0 = time.perf_counter()
    plan, outcome = run_pipeline(defs, instance, store, selection=STAGES, force=True, log_level="WARNING")
    runs = check_outcome(outcome, "full re-run")
    full_s = time.perf_counter() - t0
    cache = "label cache emptied first" if args.cold_full else "predictions found in the label cache"
    print(f"  FULL         {full_s:8.2f} s   (run_pipeline force=True, {n + n_new:,} images, {runs} runs; {cache})")
    print(f"               in-run time by stage: {by_stage(instance, outcome)}")
    ratio = full_s / inc["total"]
    print(f"  FULL / INCREMENTAL = {ratio:.1f}x")

    print("\ngoals")
    print(f"  ratio >= 20x: {ratio:.1f}x, {goal(ratio >= 20)}")
    scale = "" if n >= 100_000 else f" (the goal is stated at 100,000 objects; this run has {n:,})"
    print(f"  local tick < 10 s at 100,000 objects: {local_tick_s:.2f} s, {goal(local_tick_s < 10)}{scale}")
    print(f"\npeak RSS {peak_rss_mb():.0f} MB (this process; SeaweedFS not included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
