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
