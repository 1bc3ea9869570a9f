"""The release leak audit's pair search on a burst of k near-identical frames (issue 20), before vs now,
side by side in one run.

Baseline: the audit as it was before issue 20 (kept here verbatim): every band bucket compared all its members
pairwise and every pair found became a row before the cross-split filter, so a burst of k frames cost ~k^2
work even inside one split, where no pair can be in the audit's answer. Now: buckets are compared only across
splits, rows built at once. Both must give the same table.

    .venv/bin/python bench/bench_leak_audit.py [--k 2000] [--others 20000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from wildbench_assets.lib.leak_audit import PAIR_COLUMNS, cross_split_pairs


def baseline_near_pairs(hashes: np.ndarray, max_distance: int) -> list[tuple[int, int, int]]:
    hashes = np.asarray(hashes, dtype=np.uint64)
    popcount = lambda v: np.unpackbits(v.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1)  # noqa: E731
    edges = np.linspace(0, 64, max_distance + 2).astype(int)
    found: dict[tuple[int, int], int] = {}
    for low, high in zip(edges[:-1], edges[1:]):
        keys = hashes & np.uint64(((1 << (high - low)) - 1) << low)
        order = np.argsort(keys, kind="stable")
        starts = np.flatnonzero(np.r_[True, keys[order][1:] != keys[order][:-1]])
        for start, stop in zip(starts, np.r_[starts[1:], len(order)]):
            if stop - start < 2:
                continue
            members = np.sort(order[start:stop])
            for position, i in enumerate(members[:-1]):
                others = members[position + 1:]
                distances = popcount(hashes[others] ^ hashes[i])
                for j, d in zip(others[distances <= max_distance], distances[distances <= max_distance]):
                    found[(int(i), int(j))] = int(d)
    return sorted((i, j, d) for (i, j), d in found.items())


def baseline_cross_split_pairs(images: pd.DataFrame, hashes: list, max_distance: int) -> pd.DataFrame:
    known = [k for k, h in enumerate(hashes) if h is not None]
    values = np.array([hashes[k] for k in known], dtype=np.uint64)
    rows = []
    for i, j, distance in baseline_near_pairs(values, max_distance):
        a, b = images.iloc[known[i]], images.iloc[known[j]]
        if a.split != b.split:
            rows.append([a.path, a.split, a.camera, b.path, b.split, b.camera, distance])
    return pd.DataFrame(rows, columns=PAIR_COLUMNS)


def archive_hashes(k: int, others: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`others` unrelated frames over four splits, plus one burst of `k` frames within 0-2 bits of each other
    (a night burst of one scene) in train, three of them (wrongly) in test: the leak the audit must find."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 2**63, dtype=np.uint64)
    flips = [rng.choice(64, size=rng.integers(0, 2), replace=False) for _ in range(k)]
    burst = np.array([base ^ np.uint64(sum(1 << int(f) for f in fl)) for fl in flips], dtype=np.uint64)
    hashes = np.r_[burst, rng.integers(0, 2**63, size=others, dtype=np.uint64)]
    splits = np.r_[np.array(["train"] * k), rng.choice(["train", "val", "test", "test_seen"], size=others)]
    splits[[1, k // 2, k - 1]] = "test"
    return hashes, splits


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--k", type=int, nargs="+", default=[500, 1000, 2000])
    parser.add_argument("--others", type=int, default=20_000)
    parser.add_argument("--max-distance", type=int, default=2)
    args = parser.parse_args()
    print(f"near-pair search, max distance {args.max_distance}, one burst of k frames + {args.others:,} others")
    print(f"{'k':>6} {'before s':>9} {'now s':>8} {'ratio':>8} {'cross-split pairs':>18}")
    for k in args.k:
        hashes, splits = archive_hashes(k, args.others)
        images = pd.DataFrame({"path": [f"img{n}.jpg" for n in range(len(hashes))], "split": splits,
                               "camera": [f"c{n % 24}" for n in range(len(hashes))]})
        values = [int(h) for h in hashes]
        started = time.perf_counter()
        before = baseline_cross_split_pairs(images, values, args.max_distance)
        before_s = time.perf_counter() - started
        started = time.perf_counter()
        now = cross_split_pairs(images, values, args.max_distance)
        now_s = time.perf_counter() - started
        pd.testing.assert_frame_equal(now, before, check_dtype=False)  # the same pairs, in the same order
        print(f"{k:>6} {before_s:>9.2f} {now_s:>8.3f} {before_s / now_s:>7.0f}x {len(now):>18,}")

if __name__ == "__main__":
    main()
