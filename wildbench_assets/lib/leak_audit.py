"""Near-duplicate images across splits, found by perceptual hash.

Each image gets a 64-bit pHash (imagehash) of a reduced decode: Pillow's JPEG draft mode decodes the DCT
at 1/8 scale (or less), which is all a 32x32 pHash needs, several times faster than a full decode.
Pairs within `max_distance` bits are found without comparing every pair: split the 64 bits into
`max_distance + 1` bands; by the pigeonhole principle two hashes that close agree exactly on at least
one band, so only images sharing a band value are compared (multi-index hashing), and only across splits.
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


def near_pairs(hashes: np.ndarray, max_distance: int, groups=None) -> list[tuple[int, int, int]]:
    """(i, j, distance) for every i < j whose hashes differ in at most `max_distance` bits; with `groups`
    (a label per hash, e.g. its split), only pairs whose labels differ.

    Only hashes sharing a band value are compared, and within a band bucket only across labels, so a burst
    of near-identical frames inside one split costs nothing: the work grows with the candidate pairs the
    answer can contain, not with the square of the bucket. A pair is kept in the first band it agrees on,
    so it is found once."""
    hashes = np.asarray(hashes, dtype=np.uint64)
    labels = np.arange(len(hashes)) if groups is None else pd.factorize(np.asarray(groups))[0]
    edges = np.linspace(0, 64, max_distance + 2).astype(int)
    band_keys = [hashes & np.uint64(((1 << (high - low)) - 1) << low) for low, high in zip(edges[:-1], edges[1:])]
    found_i, found_j, found_d = [], [], []
    for band, keys in enumerate(band_keys):
        order = np.lexsort((labels, keys))  # by band value, then label: each bucket's labels in blocks
        bucket_starts = np.flatnonzero(np.r_[True, keys[order][1:] != keys[order][:-1]])
        bucket_stops = np.r_[bucket_starts[1:], len(order)]
        for start, stop in zip(bucket_starts, bucket_stops):
            members = order[start:stop]
            member_labels = labels[members]
            if len(members) < 2 or member_labels[0] == member_labels[-1]:
                continue
            block_starts = np.flatnonzero(np.r_[True, member_labels[1:] != member_labels[:-1]])
            for block_start, block_stop in zip(block_starts[:-1], block_starts[1:]):
                mine, later = members[block_start:block_stop], members[block_stop:]
                distances = np.bitwise_count(hashes[mine][:, None] ^ hashes[later][None, :])
                a, b = np.nonzero(distances <= max_distance)
                if not len(a):
                    continue
                i, j = mine[a], later[b]
                seen_before = np.zeros(len(i), dtype=bool)
                for earlier in band_keys[:band]:
                    seen_before |= earlier[i] == earlier[j]
                keep = ~seen_before
                found_i.append(np.minimum(i, j)[keep])
                found_j.append(np.maximum(i, j)[keep])
                found_d.append(distances[a, b][keep])
    if not found_i:
        return []
    i, j, d = np.concatenate(found_i), np.concatenate(found_j), np.concatenate(found_d)
    order = np.lexsort((j, i))
    return list(zip(i[order].tolist(), j[order].tolist(), d[order].tolist()))


def cross_split_pairs(images: pd.DataFrame, hashes: list[int | None], max_distance: int) -> pd.DataFrame:
    """Near-duplicate pairs whose images lie in different splits (`images`: path, split, camera)."""
    known = [k for k, h in enumerate(hashes) if h is not None]
    values = np.array([hashes[k] for k in known], dtype=np.uint64)
    pairs = near_pairs(values, max_distance, images.split.to_numpy()[known])
    if not pairs:
        return pd.DataFrame(columns=PAIR_COLUMNS)
    i, j, distance = (np.array(column) for column in zip(*pairs))
    known = np.array(known)
    a = images.iloc[known[i]][["path", "split", "camera"]].to_numpy()
    b = images.iloc[known[j]][["path", "split", "camera"]].to_numpy()
    return pd.DataFrame(np.c_[a, b, distance], columns=PAIR_COLUMNS).astype({"distance": int})


def straddling(pairs: pd.DataFrame, test_splits: tuple[str, ...] = ("test",)) -> int:
    """Pairs with one image in a training split (train/val) and the other in a test set."""
    train = ("train", "val")
    one_way = pairs.split_a.isin(train) & pairs.split_b.isin(test_splits)
    other_way = pairs.split_b.isin(train) & pairs.split_a.isin(test_splits)
    return int((one_way | other_way).sum())
