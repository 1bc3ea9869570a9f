"""Curation at thesis scale.

A. Thesis-mode burst cleaning of 1,250,000 images of the target species (thesis: 1,247,182), ours
   (`lib.bursts.clean_bursts(mode="thesis")`, vectorised) vs a faithful re-implementation of the
   thesis's `clean_bursts.py`: median exemption, then `process_group` (section 4.1.2) per species in a
   process pool. Same input; the same kept set is asserted.
B. The full listing -> splits path on 1,300,000 rows (image_metadata as the asset writes it, species
   outside Table 3.1 included): species filter + burst cleaning per camera + leak-free balanced splits,
   in a fresh process reading the Parquet table: wall time and peak RSS.
C. The four `benchmark_splits` partitions on 1,300,000 listing rows, side by side: before issue 20 each
   split step ran `make_splits` on the whole curated table (4x); now the first stores the assignment and
   the other three read it (`assets.curation._assignment`, its content key included in every step).

    .venv/bin/python bench/bench_curation.py [--rows 1250000] [--full-rows 1300000] [--parts ABC]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _rss import peak_rss_mb  # noqa: E402
from synthetic_listing import synthetic_metadata  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.thesis_reference import thesis_process_group as process_group  # noqa: E402
from wildbench_assets.lib.bursts import clean_bursts  # noqa: E402


def thesis_clean_bursts(frame: pd.DataFrame, workers: int) -> set:
    """The thesis's clean_bursts.py: small species exempt, the rest per species in a process pool."""
    data = frame.rename(columns={"captured_at": "date"})
    counts = data["species"].value_counts()
    low = counts[counts < round(counts.median(), -3)].index
    kept = set(data.loc[data["species"].isin(low), "path"])
    groups = [group for _, group in data[~data["species"].isin(low)].groupby("species")]
    with ProcessPoolExecutor(workers) as pool:
        for filtered in pool.map(process_group, groups):
            kept.update(row["path"] for row in filtered)
    return kept


def full_path_child(parquet: str) -> None:
    """Part B, in its own process so its peak RSS is its own."""
    from wildbench_assets.lib.curation import curate
    from wildbench_assets.lib.splits import SplitPlan, make_splits
    from wildbench_assets.taxonomy import Taxonomy

    t0 = time.perf_counter()
    metadata = pd.read_parquet(parquet)
    t_read = time.perf_counter()
    curated, _report = curate(metadata, Taxonomy().species_codes, 1.0, "camera")
    t_curate = time.perf_counter()
    splits = make_splits(curated, SplitPlan())
    t_split = time.perf_counter()
    selected = splits[splits.selected]
    print(json.dumps({
        "rows": len(metadata), "curated": len(curated), "selected": len(selected),
        "per_split": selected.split.value_counts().to_dict(),
        "read_s": t_read - t0, "curate_s": t_curate - t_read, "split_s": t_split - t_curate,
        "total_s": t_split - t0, "peak_rss_mb": peak_rss_mb(),
    }))


def split_steps(rows: int) -> None:
    from wildbench_assets.assets.curation import _assignment
    from wildbench_assets.lib.curation import curate
    from wildbench_assets.lib.splits import SPLITS, SplitPlan, make_splits
    from wildbench_assets.resources.artifacts import ArtifactStore
    from wildbench_assets.taxonomy import Taxonomy

    curated, _report = curate(synthetic_metadata(rows, seed=3), Taxonomy().species_codes, 1.0, "camera")
    curated = curated.sort_values("path", ignore_index=True)
    print(f"\n[C] the four split steps, {rows:,} listing rows -> {len(curated):,} curated")
    t0 = time.perf_counter()
    before = [make_splits(curated, SplitPlan()) for _split in SPLITS]
    old_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        artifacts, steps = ArtifactStore(base_dir=tmp), []
        t0 = time.perf_counter()
        for _split in SPLITS:
            assigned, reused = _assignment(curated, SplitPlan(), artifacts)
            steps.append(time.perf_counter() - t0)
        new_s = time.perf_counter() - t0
    pd.testing.assert_frame_equal(assigned.astype(str), before[0].astype(str))
    first, rest = steps[0], (steps[-1] - steps[0]) / 3
    print(f"  before: make_splits per step           {old_s:8.2f} s  ({old_s / 4:.2f} s a step)")
    print(f"  now: computed once, read by the others {new_s:8.2f} s  (first {first:.2f} s, then {rest:.2f} s a step)")
    print(f"  ratio {old_s / new_s:.2f}x; same assignment: yes")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_250_000)
    parser.add_argument("--full-rows", type=int, default=1_300_000)
    parser.add_argument("--parts", default="ABC", help="which parts to run: any of A, B, C")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        full_path_child(args.child)
        return 0

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python {sys.version.split()[0]}, "
          f"pandas {pd.__version__}")
    if "A" in args.parts:
        frame = synthetic_metadata(int(args.rows * 1.01), seed=1, other_share=0.0)
        frame = frame[frame.status == "ok"].head(args.rows).sort_values("path", ignore_index=True)  # as curated
        print(f"\n[A] thesis-mode burst cleaning, {len(frame):,} images, {frame.species.nunique()} classes")
        t0 = time.perf_counter()
        ours = set(frame.path[clean_bursts(frame, 1.0, "thesis").to_numpy()])
        ours_s = time.perf_counter() - t0
        print(f"  ours (vectorised)                    {ours_s:8.2f} s   kept {len(ours):,}")
        t0 = time.perf_counter()
        theirs = thesis_clean_bursts(frame, args.workers)
        theirs_s = time.perf_counter() - t0
        print(f"  thesis loop, {args.workers}-process pool           {theirs_s:8.2f} s   kept {len(theirs):,}")
        assert ours == theirs, f"kept sets differ: {len(ours ^ theirs)} paths"
        print(f"  same kept set: yes; speed-up {theirs_s / ours_s:.0f}x (goal >= 100x)")

    if "C" in args.parts:
        split_steps(args.full_rows)
    if "B" in args.parts:
        print(f"\n[B] listing -> splits, {args.full_rows:,} rows (image_metadata incl. other species)")
        with tempfile.TemporaryDirectory() as tmp:
            parquet = str(Path(tmp) / "image_metadata.parquet")
            synthetic_metadata(args.full_rows, seed=3).to_parquet(parquet, index=False)
            t0 = time.perf_counter()
            done = subprocess.run([sys.executable, __file__, "--child", parquet], capture_output=True, text=True,
                                  check=True)
            wall = time.perf_counter() - t0
        result = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"  read {result['read_s']:.1f} s, curate {result['curate_s']:.1f} s, split {result['split_s']:.1f} s; "
              f"process wall {wall:.1f} s (with interpreter start and imports)")
        print(f"  {result['rows']:,} rows -> {result['curated']:,} curated -> {result['selected']:,} in splits "
              f"{result['per_split']}")
        print(f"  peak RSS {result['peak_rss_mb']:.0f} MB (goal < 4096 MB); wall {wall:.1f} s (goal < 60 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
