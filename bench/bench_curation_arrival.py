"""One new day in a park: `curated_images[park]` with a full read of every day file vs its input snapshot.

A synthetic park (`bench/synthetic_listing.synthetic_metadata`, all of it moved to one park) of N arrival
days of `image_metadata`, ~590 rows a day (the thesis's 1.3 M images over 2 parks x 1,100 days), written as
the IO manager writes them; an ephemeral instance with every (park, day) recorded as materialized. After a
first run builds the snapshot, each repeat lands one new day and runs the real `curated_images` step
(species filter, burst cleaning, Great Expectations checks, the output written) twice, side by side and in
alternating order: with `input_snapshots=False` (every day file read, the code before this change) and with
the snapshot (the new day's file and the snapshot read). The full read leaves the snapshot alone, so the
snapshot run always sees exactly one new day. Same curated table asserted every time.

Reported per size: the input load (timed inside the step, around `ParquetIOManager.load_input`), the whole
`dg.materialize` call, day files read and bytes read; medians of the repeats.

    .venv/bin/python bench/bench_curation_arrival.py [--days 440 2200] [--rows-per-day 590] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _rss import peak_rss_mb  # noqa: E402
from synthetic_listing import synthetic_metadata  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import dagster as dg  # noqa: E402

from wildbench_assets.assets.curation import curated_images  # noqa: E402
from wildbench_assets.assets.ingest import image_metadata  # noqa: E402
from wildbench_assets.partitions import park_day_key  # noqa: E402
from wildbench_assets.resources.input_snapshot import last_read  # noqa: E402
from wildbench_assets.resources.parquet_io import ParquetIOManager, parquet_bytes  # noqa: E402
from wildbench_assets.resources.taxonomy import TaxonomyResource  # noqa: E402

PARK = "snieves"
LOADS: list[float] = []


class TimedParquetIOManager(ParquetIOManager):
    """The project's IO manager, its input load timed."""

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        t0 = time.perf_counter()
        frame = super().load_input(context)
        LOADS.append(time.perf_counter() - t0)
        return frame


def days_of(count: int) -> list[str]:
    return [str(d.date()) for d in pd.date_range("2019-01-01", periods=count, freq="D")]


def day_tables(days: int, rows_per_day: int, seed: int) -> list[pd.DataFrame]:
    frame = synthetic_metadata(days * rows_per_day, seed=seed)
    frame["park"] = PARK
    frame["camera"] = frame.camera.str.replace("donana/", f"{PARK}/", regex=False)
    frame["path"] = frame.path.str.replace("donana/", f"{PARK}/", regex=False)
    day = np.random.default_rng(seed).integers(0, days, len(frame))
    return [part.reset_index(drop=True) for _, part in frame.groupby(day)]


def curate_once(data: Path, instance, snapshots: bool) -> tuple[float, float, dict, pd.DataFrame]:
    LOADS.clear()
    t0 = time.perf_counter()
    result = dg.materialize(
        [image_metadata.to_source_assets()[0], curated_images], partition_key=PARK, instance=instance,
        resources={"taxonomy": TaxonomyResource(),
                   "parquet_io_manager": TimedParquetIOManager(base_dir=str(data), input_snapshots=snapshots)})
    step = time.perf_counter() - t0
    assert result.success
    read = last_read(result.run_id, "image_metadata", PARK)
    return LOADS[0], step, {"files": read.files_read, "mapped": read.files_mapped, "bytes": read.bytes_read,
                            "rows": read.rows, "snapshot": read.snapshot}, \
        pd.read_parquet(data / "curated_images" / f"{PARK}.parquet")


def one_size(days: int, rows_per_day: int, repeats: int) -> dict:
    tables = day_tables(days + repeats, rows_per_day, seed=days)
    names = days_of(days + repeats)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        instance = dg.DagsterInstance.ephemeral()
        instance.add_dynamic_partitions("parks", [PARK])

        def arrive(index: int) -> None:
            path = data / "image_metadata" / PARK / f"{names[index]}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(parquet_bytes(tables[index]))
            instance.report_runless_asset_event(dg.AssetMaterialization(
                "image_metadata", partition=park_day_key(PARK, names[index])))

        t0 = time.perf_counter()
        instance.add_dynamic_partitions("arrival_days", names[:days])
        for index in range(days):
            arrive(index)
        print(f"\n{days:,} days, {sum(len(t) for t in tables[:days]):,} rows written and recorded in "
              f"{time.perf_counter() - t0:.1f} s")
        load, step, read, _ = curate_once(data, instance, snapshots=True)
        size = sum(f.stat().st_size for f in (data / "snapshots").rglob("*.parquet"))
        print(f"  first run, snapshot built: load {load:.2f} s, step {step:.2f} s, snapshot {size / 1e6:.1f} MB")
        rows = {"full": [], "snapshot": []}
        for repeat in range(repeats):
            instance.add_dynamic_partitions("arrival_days", [names[days + repeat]])
            arrive(days + repeat)
            order = ["full", "snapshot"] if repeat % 2 == 0 else ["snapshot", "full"]
            tables_out = {}
            for way in order:
                load, step, read, curated = curate_once(data, instance, snapshots=way == "snapshot")
                rows[way].append((load, step, read))
                tables_out[way] = curated
                print(f"  day +{repeat + 1} {way:>8}: load {load:6.2f} s, step {step:6.2f} s, "
                      f"{read['files']:,} of {read['mapped']:,} day files read, {read['bytes'] / 1e6:.1f} MB "
                      f"read, {read['rows']:,} rows in, snapshot {read['snapshot']}")
            pd.testing.assert_frame_equal(tables_out["full"], tables_out["snapshot"])
        result = {way: {"load": statistics.median(r[0] for r in runs), "step": statistics.median(r[1] for r in runs),
                        "files": runs[-1][2]["files"], "mapped": runs[-1][2]["mapped"],
                        "mb": runs[-1][2]["bytes"] / 1e6, "rows": runs[-1][2]["rows"]}
                  for way, runs in rows.items()}
    full, snap = result["full"], result["snapshot"]
    print(f"  median of {repeats}: input load {full['load']:.2f} -> {snap['load']:.2f} s "
          f"({full['load'] / snap['load']:.2f}x); whole step {full['step']:.2f} -> {snap['step']:.2f} s "
          f"({full['step'] / snap['step']:.2f}x); day files read {full['files']:,} -> {snap['files']:,}; "
          f"MB read {full['mb']:.1f} -> {snap['mb']:.1f}; same curated table: yes")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, nargs="+", default=[440, 2200])
    parser.add_argument("--rows-per-day", type=int, default=590)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python {sys.version.split()[0]}, "
          f"pandas {pd.__version__}, dagster {dg.__version__}, load average {os.getloadavg()}")
    results = {days: one_size(days, args.rows_per_day, args.repeats) for days in args.days}
    print("\n| park days (rows) | day files read | input load full / snapshot | whole step full / snapshot |")
    for days, r in results.items():
        full, snap = r["full"], r["snapshot"]
        print(f"| {days:,} ({full['rows']:,}) | {full['files']:,} -> {snap['files']} | "
              f"{full['load']:.2f} / {snap['load']:.2f} s ({full['load'] / snap['load']:.2f}x) | "
              f"{full['step']:.2f} / {snap['step']:.2f} s ({full['step'] / snap['step']:.2f}x) |")
    print(f"peak RSS {peak_rss_mb():,.0f} MB; load average now {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
