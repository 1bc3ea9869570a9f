"""Near-duplicate images across splits, found by perceptual hash.

Each image gets a 64-bit pHash (imagehash) of a reduced decode: Pillow's JPEG draft mode decodes the DCT
at 1/8 scale (or less), which is all a 32x32 pHash needs, several times faster than a full decode.
Pairs within `max_distance` bits are found without comparing every pair: split the 64 bits into
`max_distance + 1` bands; by the pigeonhole principle two hashes that close agree exactly on at least
one band, so only images sharing a band value are compared (multi-index hashing).
"""

from __future__ import annotations

import io

import imagehash
import numpy as np
import pandas as pd
from PIL import Image

PAIR_COLUMNS = ["path_a", "split_a", "camera_a", "path_b", "split_b", "camera_b", "distance"]


def perceptual_hash(data: bytes) -> int | None:
    """The image's 64-bit pHash, or None if it cannot be decoded."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.draft("L", (64, 64))  # JPEG: decode at the smallest DCT scale still >= 64 px
            bits = imagehash.phash(image.convert("L")).hash.flatten()
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    return int(np.packbits(bits).view(">u8")[0])


def _popcount(values: np.ndarray) -> np.ndarray:
    return np.unpackbits(values.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1)


def near_pairs(hashes: np.ndarray, max_distance: int) -> list[tuple[int, int, int]]:
    """(i, j, distance) for every i < j whose hashes differ in at most `max_distance` bits."""
    hashes = np.asarray(hashes, dtype=np.uint64)
    bands = max_distance + 1
    edges = np.linspace(0, 64, bands + 1).astype(int)
    found: dict[tuple[int, int], int] = {}
    for low, high in zip(edges[:-1], edges[1:]):
        mask = np.uint64(((1 << (high - low)) - 1) << low)
        keys = hashes & mask
        order = np.argsort(keys, kind="stable")
        starts = np.flatnonzero(np.r_[True, keys[order][1:] != keys[order][:-1]])
        for start, stop in zip(starts, np.r_[starts[1:], len(order)]):
            if stop - start < 2:
                continue
            members = np.sort(order[start:stop])
            for position, i in enumerate(members[:-1]):
                others = members[position + 1:]
                distances = _popcount(hashes[others] ^ hashes[i])
                for j, d in zip(others[distances <= max_distance], distances[distances <= max_distance]):
                    found[(int(i), int(j))] = int(d)
    return sorted((i, j, d) for (i, j), d in found.items())


def cross_split_pairs(images: pd.DataFrame, hashes: list[int | None], max_distance: int) -> pd.DataFrame:
    """Near-duplicate pairs whose images lie in different splits (`images`: path, split, camera)."""
    known = [k for k, h in enumerate(hashes) if h is not None]
    values = np.array([hashes[k] for k in known], dtype=np.uint64)
    rows = []
    for i, j, distance in near_pairs(values, max_distance):
        a, b = images.iloc[known[i]], images.iloc[known[j]]
        if a.split != b.split:
            rows.append([a.path, a.split, a.camera, b.path, b.split, b.camera, distance])
    return pd.DataFrame(rows, columns=PAIR_COLUMNS)


def straddling(pairs: pd.DataFrame, test_splits: tuple[str, ...] = ("test",)) -> int:
    """Pairs with one image in a training split (train/val) and the other in a test set."""
    train = ("train", "val")
    one_way = pairs.split_a.isin(train) & pairs.split_b.isin(test_splits)
    other_way = pairs.split_b.isin(train) & pairs.split_a.isin(test_splits)
    return int((one_way | other_way).sum())
