"""Label-step overhead at 1.3 M cached rows (issue 20): what a labelling step (`label_images`,
`predict_images`, an export's `_copies_withheld`) pays before its first image, old vs new, side by side
on the same cache in one run.

  old: the whole cache loaded (every segment read and concatenated, duplicates dropped), then every row
       put in the (path, etag) dict and every row's detections parsed into the content dict — the code
       before issue 20, copied here as the baseline;
  new: `LabelCache.lookup(identity, step paths)` (the path column, then only the row groups holding a
       wanted path) and the (path, etag) dict of what it returned; the content index is not read.

Measured on 16 appended segments (not yet compacted) and on the compacted file, for a step of
1,000 scattered images (an export) and of 26,466 (the test split at 1.3 M, BENCHMARKS "Curation" B).
Also timed: the compaction itself (once per 16 appends) and the content index's first use (paid only
by a step that must read an image).

    .venv/bin/python bench/bench_label_cache.py [--rows 1300000]
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _rss import peak_rss_mb  # noqa: E402

from wildbench_assets.resources.label_cache import (  # noqa: E402
    COLUMNS,
    COMPACT_AFTER,
    LabelCache,
    detections_from_json,  # noqa: E402
)

IDENTITY = '{"backend": "mdlite", "bench": true}'


def synthetic_cache(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    parks, days, cams = rng.integers(0, 2, rows), rng.integers(0, 900, rows), rng.integers(0, 150, rows)
    conf = rng.uniform(0.1, 1.0, rows).round(4)
    paths = [f"park{p}/2024-{d:04d}/cam{c:03d}/IMG_{i:08d}.JPG" for i, (p, d, c) in enumerate(zip(parks, days, cams))]
    return pd.DataFrame({
        "path": paths, "etag": [f"{i:032x}" for i in range(rows)],
        "sha256": [f"{i:064x}" for i in rng.permutation(rows)],
        "width": 1920, "height": 1080,
        "detections": [f'[{{"category": "1", "conf": {c}, "bbox": [0.1, 0.2, 0.3, 0.4]}}]' for c in conf]})


def old_step_overhead(cache: LabelCache) -> tuple[pd.DataFrame, dict, dict]:
    """The code before issue 20: `LabelCache.load` + `label_images`' two dicts (compaction left out)."""
    folder = cache._folder(IDENTITY)
    segments = [o.key for o in folder.list() if o.key.endswith(".parquet") and "/" not in o.key]
    frames = [pd.read_parquet(io.BytesIO(folder.read(key))) for key in segments]
    cached = pd.concat(frames, ignore_index=True).drop_duplicates(["path", "etag", "sha256"], keep="last",
                                                                  ignore_index=True)
    by_etag = {(p, e): row for p, e, row in zip(cached.path, cached.etag, cached.itertuples(index=False))}
    known_sha = {row.sha256: detections_from_json(row.detections) for row in cached.itertuples(index=False)}
    return cached, by_etag, known_sha


def new_step_overhead(cache: LabelCache, paths) -> tuple[pd.DataFrame, dict]:
    cached = cache.lookup(IDENTITY, paths)
    by_etag = {(p, e): row for p, e, row in zip(cached.path, cached.etag, cached.itertuples(index=False))}
    return cached, by_etag


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_300_000)
    args = parser.parse_args()
    table = synthetic_cache(args.rows)
    rng = np.random.default_rng(1)
    steps = {"export, 1,000 images": table.path.iloc[rng.choice(args.rows, 1000, replace=False)].tolist(),
             "test split, 26,466 images": table.path.iloc[rng.choice(args.rows, 26_466, replace=False)].tolist()}
    print(f"{args.rows:,} cached rows; {platform.machine()}, {os.cpu_count()} cores, pandas {pd.__version__}")
    with tempfile.TemporaryDirectory(prefix="bench-label-cache-") as tmp:
        cache = LabelCache(base_dir=tmp)
        for part in np.array_split(np.arange(args.rows), COMPACT_AFTER):
            cache.append(IDENTITY, table.iloc[part])
        folder = next((Path(tmp) / "label_cache").iterdir())
        for state in ("16 segments", "compacted"):
            size = sum(f.stat().st_size for f in folder.glob("*.parquet"))
            print(f"\n{state}: {len(list(folder.glob('*.parquet')))} file(s), {size / 1e6:.0f} MB")
            old_s, (old, _, known) = timed(old_step_overhead, cache)
            assert len(old) == args.rows and len(known) == args.rows
            print(f"  {'old: load everything + both dicts':44s}{old_s:7.2f} s (any step)")
            for name, paths in steps.items():
                probe = LabelCache(base_dir=tmp)
                new_s, (found, by_etag) = timed(new_step_overhead, probe, paths)
                want = old[old.path.isin(paths)]
                assert sorted(map(tuple, found[COLUMNS].astype(str).values)) == sorted(
                    map(tuple, want[COLUMNS].astype(str).values)), name
                assert len(by_etag) == len(paths)
                print(f"  {'new: ' + name:44s}{new_s:7.2f} s  ({old_s / new_s:5.1f}x; {probe.rows_read:,} rows, "
                      f"{probe.bytes_read / 1e6:.1f} MB read)")
            if state == "16 segments":
                cache.append(IDENTITY, table.iloc[:1])  # the 17th segment: the next lookup compacts
                compact_s, _ = timed(cache.lookup, IDENTITY, steps["export, 1,000 images"][:1])
                print(f"  {'compaction (once per 16 appends)':44s}{compact_s:7.2f} s")
        probe = LabelCache(base_dir=tmp)
        index_s, index = timed(lambda: probe.contents(IDENTITY)[table.sha256.iloc[7]])
        print(f"\n  content index, first use (a step that reads an image): {index_s:.2f} s")
    print(f"peak RSS {peak_rss_mb():,.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
