"""A thesis-scale image_metadata table (same columns as the asset), generated vectorised.

Two parks, ~300 cameras, the 24 species of Table 3.1 with a long-tailed distribution (thesis Figure
3.3), more than half empties (Figure 3.1), bursts of 3-5 frames one second apart, a few undated and
unreadable rows, and some species outside Table 3.1.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from wildbench_assets.taxonomy import THESIS_SPECIES

OTHER_SPECIES = ["ave", "rod", "hom"]  # birds, rodents, people: not in Table 3.1


def synthetic_metadata(rows: int, seed: int = 0, empty_share: float = 0.52, other_share: float = 0.06) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    codes = [s.code for s in THESIS_SPECIES]
    weights = 1.0 / np.arange(1, len(codes) + 1) ** 1.6  # long tail: hundreds of thousands down to hundreds
    weights = np.random.default_rng(99).permutation(weights / weights.sum())
    # Events (bursts) first, then frames.
    mean_frames = 3.6
    events = int(rows / mean_frames) + 1
    frames = rng.integers(3, 6, events)
    frames[rng.random(events) < 0.2] = 1  # some single triggers
    total = int(frames.sum())
    while total < rows:
        frames[rng.integers(0, events)] += 1
        total += 1
    kind = rng.random(events)
    species = np.where(kind < empty_share, "emp",
                       np.where(kind < empty_share + other_share, rng.choice(OTHER_SPECIES, events),
                                rng.choice(codes, events, p=weights)))
    park = np.where(rng.random(events) < 0.58, "snieves", "donana")
    camera_number = rng.integers(0, 150, events)
    camera = np.char.add(np.char.add(park.astype(str), "/C"), camera_number.astype(str))
    start = pd.Timestamp("2019-01-01").value // 10**9
    event_time = start + rng.integers(0, 3 * 365 * 86400, events)

    event_of_frame = np.repeat(np.arange(events), frames)[:rows]
    frame_number = (np.arange(len(event_of_frame)) - np.repeat(np.cumsum(frames) - frames, frames)[:rows])
    seconds = event_time[event_of_frame] + frame_number
    captured = pd.to_datetime(seconds, unit="s")
    frame = pd.DataFrame({
        "path": np.char.add(np.char.add(camera[event_of_frame], "/IMG_"), np.arange(rows).astype(str)),
        "park": park[event_of_frame],
        "species": species[event_of_frame],
        "camera": camera[event_of_frame],
        "seq_id": event_of_frame.astype(str),
        "bytes": rng.integers(300_000, 2_000_000, rows),
        "status": "ok",
        "reason": None,
        "captured_at": captured,
        "width": 1920,
        "height": 1080,
    })
    undated = rng.random(rows) < 0.004
    frame.loc[undated, "captured_at"] = pd.NaT
    frame.loc[undated, "status"] = "no exif date"
    broken = rng.random(rows) < 0.001
    frame.loc[broken, "status"] = "corrupt"
    frame.loc[broken, "captured_at"] = pd.NaT
    return frame


# ------------------------------------------------------------------------- a synthetic archive listing

def synthetic_listing(objects: int, days_per_park: int = 1100, parks=("donana", "snieves"), cameras: int = 60,
                      first_day: str = "2019-01-01", seed: int = 0):
    """(sorted keys, mtimes in ns): `objects` images under `<park>/<species>/<camera>/<file>`, each camera's
    files spread over its park's arrival days (the thesis layout: no day in the path), noon UTC + seconds."""
    rng = np.random.default_rng(seed)
    codes = [s.code for s in THESIS_SPECIES]
    park = rng.integers(0, len(parks), objects)
    day = rng.integers(0, days_per_park, objects)
    camera = rng.integers(0, cameras, objects)
    species = rng.integers(0, len(codes), objects)
    start = pd.Timestamp(first_day, tz="UTC").value + 12 * 3600 * 10**9
    mtime = start + day.astype(np.int64) * 86400 * 10**9 + rng.integers(0, 3600, objects).astype(np.int64) * 10**9
    keys = [f"{parks[p]}/{codes[s]}/C{c:03d}/IMG_{i:07d}.JPG" for i, (p, s, c) in enumerate(zip(park, species, camera))]
    order = sorted(range(objects), key=keys.__getitem__)  # ASCII keys: str order is S3's byte order
    return [keys[i] for i in order], mtime[order]


class SyntheticArchive:
    """An `Archive` whose listing is generated in memory (S3 key order, prefix, start_after): it costs our
    code its per-object work and nothing for I/O. Objects can be added (a new day arriving); there are no
    bytes to read (no manifests)."""

    def __init__(self, keys: list[str], mtime_ns):
        self.keys, self.mtime_ns, self.uri = keys, list(map(int, mtime_ns)), "synthetic://archive"

    def add(self, keys: list[str], mtime_ns: int) -> None:
        import bisect

        for key in keys:
            i = bisect.bisect_left(self.keys, key)
            self.keys.insert(i, key)
            self.mtime_ns.insert(i, mtime_ns)

    def list(self, prefix: str = "", start_after: str | None = None):
        import bisect
        from datetime import UTC, datetime

        from wildbench_assets.resources.archive import ArchiveObject

        i = bisect.bisect_left(self.keys, prefix)
        if start_after is not None:
            i = max(i, bisect.bisect_right(self.keys, start_after))
        keys, mtimes = self.keys, self.mtime_ns
        while i < len(keys) and keys[i].startswith(prefix):
            ns = mtimes[i]
            yield ArchiveObject(key=keys[i], size=1_000_000, etag=f"{len(keys[i]):x}-{ns:x}",
                                last_modified=datetime.fromtimestamp(ns / 1e9, tz=UTC))
            i += 1

    def describe(self, key: str):
        return next((o for o in self.list(key) if o.key == key), None)

    def read_optional(self, key: str) -> bytes | None:
        return None
