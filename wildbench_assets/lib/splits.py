"""Leak-free, stable, balanced train/val/test splits.

1. Leakage groups: every image of a camera (`by="camera"`), of a sequence (`by="sequence"`: consecutive
   images of one camera less than `sequence_gap_s` apart), or each image alone (`by="image"`, the
   thesis's random split). Near-duplicates share a group, so they never straddle train and test.
   `test_seen` then takes whole sequences (`seen_share` of them) out of train/val: images from cameras
   the models trained on, never in a burst with a training frame — the seen-camera test set.
2. Assignment: a keyed hash of the group key maps it to [0, 1): below `test_share` → test, below
   `test_share + (1 - test_share) * val_share` → val, else train (80/20 then 80/20: 64/16/20). The hash
   depends only on the key and the seed, so appending images never moves an image already assigned.
3. Balancing, per split: each species capped (default: mean images per non-empty species in the split,
   rounded up to thousands, thesis 4.1.3), taken evenly across parks with the smaller park's shortfall
   made up by the others (the thesis's `get_even_parks_for_species`, generalised past two parks);
   within a park, images are taken in keyed-hash order so the choice is stable and unbiased. Empties
   are then added at `empty_share` of the split.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from wildbench_assets.lib.expectations import Rule
from wildbench_assets.taxonomy import EMPTY as EMPTY_SPECIES

SPLITS = ("train", "val", "test", "test_seen")
TEST_SETS = ("test", "test_seen")
GROUPINGS = ("camera", "sequence", "image")
EMPTY = EMPTY_SPECIES


@dataclass(frozen=True)
class SplitPlan:
    by: str = "camera"
    sequence_gap_s: float = 120.0
    seed: int = 0
    test_share: float = 0.2
    val_share: float = 0.2  # of train+val
    cap: int | None = None
    cap_round_to: int = 1000
    empty_share: float = 0.1
    seen_share: float = 0.1  # of train+val sequences, held out as test_seen

    def __post_init__(self) -> None:
        if self.by not in GROUPINGS:
            raise ValueError(f"unknown grouping {self.by!r}; expected one of {GROUPINGS}")
        if not (0 < self.test_share < 1 and 0 <= self.val_share < 1 and 0 <= self.empty_share < 1
                and 0 <= self.seen_share < 1):
            raise ValueError("shares must lie in [0, 1) (test_share in (0, 1))")

    @property
    def targets(self) -> dict[str, float]:
        val = (1 - self.test_share) * self.val_share
        train = 1 - self.test_share - val
        return {"train": train * (1 - self.seen_share), "val": val * (1 - self.seen_share), "test": self.test_share,
                "test_seen": (train + val) * self.seen_share}


def stable_unit(keys: pd.Series, seed: int, salt: str = "split") -> np.ndarray:
    """A keyed 64-bit hash of each key scaled to [0, 1): same key and seed, same number, forever."""
    hash_key = hashlib.sha256(f"{salt}:{seed}".encode()).hexdigest()[:16]
    hashed = pd.util.hash_array(keys.astype(str).to_numpy(dtype=object), hash_key=hash_key, categorize=True)
    return (hashed >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def leakage_groups(frame: pd.DataFrame, by: str, sequence_gap_s: float = 120.0) -> pd.Series:
    """The group key of every row (index of `frame`)."""
    if by == "camera":
        return frame["camera"].astype(str)
    if by == "image":
        return frame["path"].astype(str)
    if by != "sequence":
        raise ValueError(f"unknown grouping {by!r}; expected one of {GROUPINGS}")
    captured = pd.to_datetime(frame["captured_at"], errors="coerce")  # an empty or all-undated column is object
    dated = captured.notna()
    ordered = frame.loc[dated, ["camera"]].assign(captured_at=captured[dated]).sort_values(
        ["camera", "captured_at"], kind="stable")
    gap = ordered.groupby("camera")["captured_at"].diff().dt.total_seconds()
    starts = gap.isna() | (gap >= sequence_gap_s)
    first_time = ordered["captured_at"].where(starts).ffill()  # a sequence is named by its first frame
    keys = pd.Series("", index=frame.index, dtype=object)
    keys.loc[ordered.index] = ordered["camera"].astype(str) + "@" + first_time.dt.strftime("%Y-%m-%dT%H:%M:%S")
    keys.loc[~dated] = frame.loc[~dated, "camera"].astype(str) + "@undated"  # undated: one group per camera
    return keys


def assign_splits(groups: pd.Series, plan: SplitPlan) -> pd.Series:
    """train/val/test for every row, from its group key alone (test_seen is carved out afterwards)."""
    unit = stable_unit(groups, plan.seed)
    test, val = plan.test_share, (1 - plan.test_share) * plan.val_share
    split = np.where(unit < test, "test", np.where(unit < test + val, "val", "train"))
    return pd.Series(split, index=groups.index)


def even_parks(available: dict[str, int], top: int) -> dict[str, int]:
    """How many images each park gives to reach `top`: the scarcest park first takes what it can of an
    even share, and every shortfall passes to the parks after it (thesis `get_even_parks_for_species`)."""
    taken: dict[str, int] = {}
    remaining = top
    parks = sorted(available, key=lambda park: (available[park], park))
    for position, park in enumerate(parks):
        share = remaining // (len(parks) - position)
        taken[park] = min(available[park], share)
        remaining -= taken[park]
    return taken


def species_cap(counts: pd.Series, plan: SplitPlan) -> int:
    """The per-species cap of one split: explicit, or the mean over non-empty species rounded up."""
    if plan.cap is not None:
        return plan.cap
    animals = counts.drop(EMPTY, errors="ignore")
    if animals.empty:
        return 0
    step = max(1, plan.cap_round_to)
    return int(math.ceil(animals.mean() / step) * step)


def _take_even(frame: pd.DataFrame, order: np.ndarray, per_park: dict[str, int]) -> np.ndarray:
    """Row positions of the first `per_park[park]` rows of each park in `order`."""
    ranked = frame.iloc[order]
    rank = ranked.groupby("park").cumcount().to_numpy()
    quota = ranked["park"].map(per_park).fillna(0).to_numpy()
    return order[rank < quota]


def balance_split(frame: pd.DataFrame, plan: SplitPlan) -> tuple[pd.Series, int]:
    """(mask of rows kept in this split, the cap used). `frame` holds one split's rows."""
    order_key = stable_unit(frame["path"], plan.seed, salt="order")
    counts = frame["species"].value_counts()
    cap = species_cap(counts, plan)
    keep = np.zeros(len(frame), dtype=bool)
    for species, rows in frame.groupby("species", sort=True).indices.items():
        if species == EMPTY:
            continue
        subset = frame.iloc[rows]
        per_park = even_parks(subset["park"].value_counts().to_dict(), cap)
        chosen = _take_even(subset, np.argsort(order_key[rows], kind="stable"), per_park)
        keep[rows[chosen]] = True
    empties = frame.groupby("species").indices.get(EMPTY)
    if empties is not None and plan.empty_share > 0:
        wanted = int(round(keep.sum() * plan.empty_share / (1 - plan.empty_share)))
        subset = frame.iloc[empties]
        per_park = even_parks(subset["park"].value_counts().to_dict(), wanted)
        chosen = _take_even(subset, np.argsort(order_key[empties], kind="stable"), per_park)
        keep[empties[chosen]] = True
    return pd.Series(keep, index=frame.index), cap


def make_splits(frame: pd.DataFrame, plan: SplitPlan) -> pd.DataFrame:
    """Every curated image with its `group`, assigned `split` and whether balancing `selected` it."""
    out = frame.copy()
    out["group"] = leakage_groups(out, plan.by, plan.sequence_gap_s)
    out["sequence"] = leakage_groups(out, "sequence", plan.sequence_gap_s)
    out["split"] = assign_splits(out["group"], plan)
    # test_seen: whole sequences of training cameras held out, so it shares cameras with train but no burst.
    held_out = stable_unit(out["sequence"], plan.seed, salt="seen") < plan.seen_share
    seen = out["split"].isin(["train", "val"]) & held_out
    out.loc[seen, "split"] = "test_seen"
    out["selected"] = False
    out["species_cap"] = 0
    out["split_by"], out["split_seed"] = plan.by, plan.seed  # a release's datasheet says how it was split
    for split in SPLITS:
        rows = out.index[out["split"] == split]
        if len(rows):
            mask, cap = balance_split(out.loc[rows], plan)
            out.loc[rows, "selected"] = mask.to_numpy()
            out.loc[rows, "species_cap"] = cap
    return out


def groups_across_splits(assigned: pd.DataFrame, key: str = "group") -> int:
    """How many groups (or cameras, with key="camera") have images in more than one split. test_seen
    shares cameras with train by design: its leakage unit is the sequence, counted by `shared_units`."""
    mine = assigned[assigned.split != "test_seen"]
    return int((mine.groupby(key)["split"].nunique() > 1).sum())


def shared_units(rows: pd.DataFrame, split: str, others: pd.DataFrame, other_split: str) -> int:
    """Rows of `split` whose leakage unit also appears in `other_split`'s rows: the sequence when either
    is test_seen, else the group."""
    key = "sequence" if "test_seen" in (split, other_split) else "group"
    if key not in rows or key not in others:
        return 0
    return int(rows[key].isin(others[key]).sum())


@dataclass(frozen=True)
class SplitFindings:
    """What the checks of one split are built from."""

    paths_in_other_splits: int      # this split's images found in the other splits as stored
    groups_across_splits: int       # leakage groups in more than one split (assigned now, or as stored)
    cameras_across_splits: int
    shares: dict[str, float]        # share of the assigned images per split
    off_target: dict[str, float]    # shares further than the tolerance from 64/16/20
    missing_species: dict[str, list[str]]  # split -> animal species it lacks
    cap: int
    over_cap: dict[str, int]        # species with more images than the cap
    burst_violations: int           # kept frames closer than their park's burst rule allows


def split_findings(assigned: pd.DataFrame, split: str, stored_others: list[pd.DataFrame], plan: SplitPlan,
                   share_tolerance: float) -> SplitFindings:
    """The findings for `split` of `make_splits`'s output, against the other splits as they are stored
    (a leak appears when those were made with another seed or grouping)."""
    from wildbench_assets.lib.bursts import burst_violations

    table = assigned[(assigned.split == split) & assigned.selected]
    shares = assigned.split.value_counts(normalize=True).reindex(list(SPLITS), fill_value=0.0)
    animal_species = set(assigned.species) - {EMPTY_SPECIES}
    missing = {s: sorted(animal_species - set(assigned[(assigned.split == s) & assigned.selected].species))
               for s in SPLITS}
    cap = int(table.species_cap.max()) if len(table) else 0
    counts = table[table.species != EMPTY_SPECIES].species.value_counts()
    return SplitFindings(
        paths_in_other_splits=sum(int(s.path.isin(table.path).sum()) for s in stored_others),
        groups_across_splits=groups_across_splits(assigned)
        + sum(shared_units(assigned[assigned.split == "test_seen"], "test_seen", assigned[assigned.split == o], o)
              for o in SPLITS if o != "test_seen")
        + sum(shared_units(table, split, s, str(s.split.iloc[0])) for s in stored_others if len(s)),
        cameras_across_splits=groups_across_splits(assigned, "camera"),
        shares={s: round(float(shares[s]), 3) for s in SPLITS},
        off_target={s: round(float(shares[s]), 3) for s in SPLITS
                    if abs(shares[s] - plan.targets[s]) > share_tolerance},
        missing_species={s: m for s, m in missing.items() if m},
        cap=cap,
        over_cap={k: int(v) for k, v in counts[counts > cap].items()},
        burst_violations=sum(burst_violations(rows, interval, mode)  # each park keeps the rule it was cleaned by
                             for (mode, interval), rows in table.groupby(["burst_mode", "burst_interval_s"])),
    )


def split_rules(split: str, species_codes) -> dict[str, list[Rule]]:
    """The Great Expectations rules of one split's table, by check."""
    return {
        "splits_disjoint": [Rule("expect_column_values_to_be_unique", {"column": "path"}),
                            Rule("expect_column_values_to_be_in_set", {"column": "split", "value_set": [split]})],
        "cap_respected": [Rule("expect_column_values_to_be_in_set",
                               {"column": "species", "value_set": sorted(species_codes)})],
    }
