"""The leak audit's near-pair search: the same pairs as comparing every pair, at a cost that follows the pairs
that can be in the answer (bursts of near-identical frames inside one split cost nothing)."""

import numpy as np
import pandas as pd

from wildbench_assets.lib import leak_audit


def _brute(hashes, max_distance, groups=None):
    n = len(hashes)
    distance = np.bitwise_count(hashes[:, None] ^ hashes[None, :])
    return [(i, j, int(distance[i, j])) for i in range(n) for j in range(i + 1, n)
            if distance[i, j] <= max_distance and (groups is None or groups[i] != groups[j])]


def _bursts(rng, bursts: int, frames: int) -> np.ndarray:
    """`bursts` groups of `frames` hashes each within a few bits of the burst's first frame."""
    hashes = []
    for base in rng.integers(0, 2**63, size=bursts, dtype=np.uint64):
        for _ in range(frames):
            flips = rng.choice(64, size=rng.integers(0, 4), replace=False)
            hashes.append(base ^ np.uint64(sum(1 << int(f) for f in flips)))
    return np.array(hashes, dtype=np.uint64)


def test_cross_split_pairs_equal_every_pair_compared():
    rng = np.random.default_rng(1)
    hashes = np.r_[_bursts(rng, 12, 25), rng.integers(0, 2**63, size=200, dtype=np.uint64)]
    splits = rng.choice(["train", "val", "test", "test_seen"], size=len(hashes), p=[0.7, 0.1, 0.15, 0.05])
    for max_distance in (0, 2, 4):
        assert leak_audit.near_pairs(hashes, max_distance, splits) == _brute(hashes, max_distance, splits)
    assert leak_audit.near_pairs(hashes, 3) == _brute(hashes, 3)


def test_a_burst_inside_one_split_is_never_compared_and_a_straddling_frame_is_found():
    rng = np.random.default_rng(2)
    burst = _bursts(rng, 1, 400)
    splits = np.array(["train"] * 400)
    assert leak_audit.near_pairs(burst, 2, splits) == []
    splits[17] = "test"
    expected = _brute(burst, 2, splits)
    assert expected and leak_audit.near_pairs(burst, 2, splits) == expected
    assert all(17 in (i, j) for i, j, _d in expected)


def test_the_audit_table_lists_only_pairs_across_splits():
    images = pd.DataFrame({"path": ["a", "b", "c", "d"], "split": ["train", "train", "test", "val"],
                           "camera": ["c1", "c1", "c2", "c3"]})
    base = 0x0F0F_0F0F_0F0F_0F0F
    pairs = leak_audit.cross_split_pairs(images, [base, base ^ 1, base ^ 2, None], 2)
    assert pairs[["path_a", "path_b", "distance"]].values.tolist() == [["a", "c", 1], ["b", "c", 2]]
    assert leak_audit.straddling(pairs) == 2
