"""Burst cleaning: drop near-duplicate frames taken within an interval of the last frame kept.

Vectorised: rows are ordered by (group, time) on one int64 key; `next_kept[i]` is the first row more
than `interval` after row i (one `searchsorted` for all rows); runs separated by gaps wider than the
interval are independent, so every run advances its own chain in lock-step. Cost: one sort plus as
many small vectorised steps as the longest chain, instead of a Python loop over every row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MODES = ("camera", "thesis")


def group_codes(columns: list[pd.Series]) -> np.ndarray:
    """One dense int64 code per distinct combination of the columns' values."""
    codes = np.zeros(len(columns[0]), dtype=np.int64)
    for column in columns:
        column_codes, uniques = pd.factorize(column, use_na_sentinel=False)
        codes = codes * (len(uniques) + 1) + column_codes
    return codes if len(columns) == 1 else pd.factorize(codes)[0].astype(np.int64)


def keep_mask(times: pd.Series, groups: pd.Series | list[pd.Series] | np.ndarray, interval_s: float) -> np.ndarray:
    """Boolean mask over rows: True where the row survives the 'last kept + interval' rule.

    Within each group, in time order, the first row is kept and each later row is kept only when it is
    more than `interval_s` after the last kept row. Rows with no time (NaT) are not judged: False here.
    Rows taken in the same millisecond are ordered as given (a stable sort), so callers that want a
    deterministic choice pass rows in a fixed order (curated_images: by path).
    `groups`: a column, a list of columns, or precomputed integer codes.
    """
    n = len(times)
    keep = np.zeros(n, dtype=bool)
    dated = times.notna().to_numpy()
    if not dated.any():
        return keep
    if isinstance(groups, np.ndarray):
        codes = groups.astype(np.int64, copy=False)
    else:
        codes = group_codes(groups if isinstance(groups, list) else [groups])
    ms = times.to_numpy(dtype="datetime64[ms]").astype(np.int64)
    rows = np.flatnonzero(dated)
    ms, codes = ms[rows], codes[rows]
    span = int(ms.max() - ms.min()) + int(interval_s * 1000) + 1
    key = codes * span + (ms - ms.min())  # groups never overlap on the key axis
    order = np.argsort(key, kind="stable")
    key = key[order]
    step = int(round(interval_s * 1000))
    next_row = np.searchsorted(key, key + step, side="right")  # first row more than interval later
    new_run = np.empty(len(key), dtype=bool)
    new_run[0] = True
    new_run[1:] = (key[1:] - key[:-1]) > step  # wider gap or another group: nothing before can reach
    run_starts = np.flatnonzero(new_run)
    ends = np.append(run_starts[1:], len(key))  # exclusive end of each run
    kept_sorted = np.zeros(len(key), dtype=bool)
    current = run_starts
    kept_sorted[current] = True
    while len(current):
        nxt = next_row[current]
        active = nxt < ends
        current, ends = nxt[active], ends[active]
        kept_sorted[current] = True
    keep[rows[order[kept_sorted]]] = True
    return keep


def exemption_threshold(counts: np.ndarray) -> tuple[float, float]:
    """(median per-species count, that median rounded to thousands): species below the second are exempt."""
    median = float(np.median(counts)) if len(counts) else 0.0
    return median, (round(median, -3) if len(counts) else 0)


def _exempt_codes(counts: np.ndarray) -> np.ndarray:
    return counts < exemption_threshold(counts)[1]


def thesis_exempt_species(species: pd.Series) -> set:
    """Species with fewer images than the median per-species count rounded to thousands (thesis 4.1.2)."""
    codes, uniques = pd.factorize(species)
    exempt = _exempt_codes(np.bincount(codes, minlength=len(uniques)))
    return set(np.asarray(uniques)[exempt])


def thesis_exemption(counts: pd.Series) -> dict:
    """The thesis's exemption from images per species (index: species) over exactly the images counted
    (count every park's to get the thesis's: one median over the whole dataset): the median, the
    threshold and the exempt species."""
    median, threshold = exemption_threshold(counts.to_numpy())
    return {"median_images_per_species": median, "threshold": float(threshold),
            "exempt_species": sorted(str(s) for s in counts.index[counts.to_numpy() < threshold])}


def clean_bursts(frame: pd.DataFrame, interval_s: float = 1.0, mode: str = "camera") -> pd.Series:
    """A boolean Series (index of `frame`): which rows to keep.

    `camera` (default): per camera and species; undated rows are kept (no time, no burst to judge).
    `thesis`: per species across all cameras, species below the median count exempt, and undated rows
    dropped unless a species has no dated row at all (then its first row stays), as the thesis's
    `process_group` did with NaT dates.
    """
    if mode not in MODES:
        raise ValueError(f"unknown burst mode {mode!r}; expected one of {MODES}")
    times = frame["captured_at"]
    if mode == "camera":
        keep = keep_mask(times, [frame["camera"], frame["species"]], interval_s) | times.isna().to_numpy()
        return pd.Series(keep, index=frame.index)
    codes, uniques = pd.factorize(frame["species"])
    codes = codes.astype(np.int64)
    keep = keep_mask(times, codes, interval_s)
    dated_per_species = np.bincount(codes, weights=times.notna().to_numpy(), minlength=len(uniques))
    first_rows = np.unique(codes, return_index=True)[1]
    undated_species_first = np.zeros(len(frame), dtype=bool)
    undated_species_first[first_rows] = dated_per_species[codes[first_rows]] == 0
    exempt = _exempt_codes(np.bincount(codes, minlength=len(uniques)))[codes]
    return pd.Series(keep | undated_species_first | exempt, index=frame.index)


def burst_violations(frame: pd.DataFrame, interval_s: float, mode: str = "camera") -> int:
    """Pairs of consecutive kept images in one burst group no more than `interval_s` apart (must be 0).

    Rows with `burst_exempt` set (thesis mode's small species) are not judged.
    """
    judged = frame[frame["captured_at"].notna()]
    if "burst_exempt" in judged:
        judged = judged[~judged["burst_exempt"].astype(bool)]
    keys = ["species"] if mode == "thesis" else ["camera", "species"]
    ordered = judged.sort_values([*keys, "captured_at"], kind="stable")
    gaps = ordered.groupby(keys)["captured_at"].diff().dt.total_seconds()
    return int((gaps <= interval_s).sum())
