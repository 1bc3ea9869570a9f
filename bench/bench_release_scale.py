"""A release cut at thesis scale (issue 20): goal < 10 min and < 8 GB.

A 1,300,000-row listing (bench/synthetic_listing.py: two parks, ~300 cameras, Table 3.1's long tail,
52 % empties, bursts) goes through the pipeline's own species filter, burst cleaning and split
assignment (`lib.curation.curate`, `lib.splits.make_splits`); every image the splits keep is written as
a unique 160x120 JPEG, and its label row is made by `lib.labels.label_row` (one machine box per animal).
The split and label tables are stored where the pipeline's IO manager keeps them, and then the real
`release_job` materializes `benchmark_release` on a SQLite instance in a child process: load the eight
tables, digest every image, keyed public ids, train/val ZIPs with labels, EXIF-stripped test ZIPs,
hidden truth, the leak audit over every image, Camtrap DP written and validated, every release check,
staged and published. Printed: the cut's wall time and the child's peak RSS, against the goals.

    .venv/bin/python bench/bench_release_scale.py [--listing 1300000] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _rss import peak_rss_mb  # noqa: E402
from bench_release import _image  # noqa: E402
from synthetic_listing import synthetic_metadata  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GOAL_S, GOAL_MB = 600, 8 * 1024
BOX = [{"category": "1", "conf": 0.9, "bbox": [0.25, 0.3, 0.4, 0.35]}]


def _write(job: tuple[str, int]) -> str:
    path, seed = job
    data = _image(seed)
    Path(path).write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def build_inputs(workdir: Path, listing: int) -> dict:
    """The archive and the eight tables a cut reads, as the pipeline would have left them."""
    from wildbench_assets.lib.curation import curate
    from wildbench_assets.lib.labels import LABEL_COLUMNS, label_row
    from wildbench_assets.lib.splits import SPLITS, SplitPlan, make_splits
    from wildbench_assets.resources.parquet_io import parquet_bytes, partition_file_name
    from wildbench_assets.taxonomy import Taxonomy

    tax = Taxonomy()
    started = time.perf_counter()
    curated, _ = curate(synthetic_metadata(listing, seed=3), tax.species_codes, 1.0, "camera")
    assigned = make_splits(curated.sort_values("path", ignore_index=True), SplitPlan())
    kept = assigned[assigned.selected].drop(columns="selected").reset_index(drop=True)
    kept["path"] = kept.path + ".jpg"
    print(f"  listing {listing:,} -> curated {len(curated):,} -> in the splits {len(kept):,} "
          f"({time.perf_counter() - started:.0f} s)")

    archive = workdir / "archive"
    for folder in {str(Path(p).parent) for p in kept.path}:
        (archive / folder).mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with Pool(os.cpu_count() or 1) as pool:
        digests = pool.map(_write, [(str(archive / p), i) for i, p in enumerate(kept.path)], chunksize=2000)
    print(f"  {len(kept):,} JPEGs written ({time.perf_counter() - started:.0f} s, not part of the cut)")

    data = workdir / "data"
    for asset in ("benchmark_splits", "detection_labels"):
        (data / asset).mkdir(parents=True, exist_ok=True)
    kept["sha256"] = digests
    for split in SPLITS:
        table = kept[kept.split == split].drop(columns="sha256").reset_index(drop=True)
        (data / "benchmark_splits" / partition_file_name(split)).write_bytes(parquet_bytes(table))
        rows = [label_row({"path": r.path, "park": r.park, "species": r.species, "camera": r.camera, "split": split,
                           "class_index": tax.class_index(r.species) if r.species != "emp" else -1,
                           "sha256": r.sha256, "width": 160, "height": 120},
                          None if r.species == "emp" else BOX, None, 0.2)
                for r in kept[kept.split == split].itertuples(index=False)]
        labels = pd.DataFrame(rows, columns=LABEL_COLUMNS).astype({"width": "Int64", "height": "Int64"})
        (data / "detection_labels" / partition_file_name(split)).write_bytes(parquet_bytes(labels))
    return {"listing": listing, "curated": len(curated), "images": len(kept),
            "per_split": {str(k): int(v) for k, v in kept.split.value_counts().items()}}


def cut(workdir: Path) -> None:
    """Child process: `release_job` for release `bench`, as `wildbench release` runs it."""
    from tests.helpers import cut_release, instance_at, pipeline_defs

    defs = pipeline_defs(workdir / "archive", workdir / "data", detector="manifest")
    with instance_at(workdir / "home") as instance:
        started = time.perf_counter()
        result = cut_release(defs, instance, "bench")
        elapsed = time.perf_counter() - started
        checks = {e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data.passed
                  for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}
    print(json.dumps({"success": result.success, "seconds": elapsed, "peak_rss_mb": peak_rss_mb(), "checks": checks}))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listing", type=int, default=1_300_000)
    parser.add_argument("--workdir", help="keep the archive and tables here (default: a temp folder)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        cut(Path(args.child))
        return 0
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(dir=args.workdir or os.environ.get("BENCH_TMP")) as tmp:
        workdir = Path(tmp)
        print("inputs (not part of the cut)")
        sizes = build_inputs(workdir, args.listing)
        print(f"  per split: {sizes['per_split']}")
        print("the cut: release_job in a fresh process")
        child = subprocess.run([sys.executable, __file__, "--child", str(workdir)], capture_output=True, text=True,
                               env={**os.environ, "DAGSTER_HOME": str(workdir / "home")})
        if child.returncode != 0:
            print(child.stdout[-3000:], child.stderr[-5000:])
            return 1
        outcome = json.loads(child.stdout.strip().splitlines()[-1])
        size = sum(p.stat().st_size for p in (workdir / "data").rglob("bench/downloads/*.zip"))
        print(f"  success {outcome['success']}; checks {outcome['checks']}")
        print(f"  {sizes['images']:,} images: {outcome['seconds']:.0f} s (goal < {GOAL_S} s, "
              f"{outcome['seconds'] / GOAL_S:.2f} of it); peak RSS {outcome['peak_rss_mb']:,.0f} MB "
              f"(goal < {GOAL_MB:,} MB, {outcome['peak_rss_mb'] / GOAL_MB:.2f} of it); downloads {size / 1e6:,.0f} MB; "
              f"load average now {os.getloadavg()[0]:.1f}")
    return 0 if outcome["success"] else 1


if __name__ == "__main__":
    sys.exit(main())
