"""The curation step as one pure function: readable images of known species, bursts removed."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from wildbench_assets.lib.bursts import clean_bursts, thesis_exempt_species
from wildbench_assets.lib.expectations import Rule
from wildbench_assets.lib.image_header import UNREADABLE

CURATED_COLUMNS = ["path", "park", "species", "camera", "seq_id", "captured_at", "status", "width", "height",
                   "bytes", "etag", "burst_mode", "burst_interval_s", "burst_exempt"]


@dataclass(frozen=True)
class CurationReport:
    images_in: int
    per_species: pd.DataFrame  # index species; columns kept, burst_dropped
    unreadable_dropped: dict[str, int]
    other_species_dropped: dict[str, int]

    @property
    def accounted_for(self) -> int:
        return int(self.per_species.to_numpy().sum() + sum(self.unreadable_dropped.values())
                   + sum(self.other_species_dropped.values()))


def curate(metadata: pd.DataFrame, species_codes: frozenset[str] | set[str], interval_s: float = 1.0,
           mode: str = "camera") -> tuple[pd.DataFrame, CurationReport]:
    """Keep readable images whose species is known, then drop burst near-duplicates.

    Rows are ordered by path first, so which frame of a same-second tie survives is deterministic.
    """
    frame = metadata.sort_values("path", ignore_index=True)
    readable = ~frame["status"].isin(UNREADABLE)
    known = frame["species"].isin(species_codes)
    candidates = frame[readable & known].reset_index(drop=True)
    keep = clean_bursts(candidates, interval_s, mode).to_numpy()
    candidates["burst_mode"] = mode
    candidates["burst_interval_s"] = float(interval_s)
    exempt = thesis_exempt_species(candidates["species"]) if mode == "thesis" else set()
    candidates["burst_exempt"] = candidates["species"].isin(exempt)
    curated = candidates.loc[keep, [c for c in CURATED_COLUMNS if c in candidates]].reset_index(drop=True)
    per_species = pd.DataFrame({
        "kept": curated["species"].value_counts(),
        "burst_dropped": candidates.loc[~keep, "species"].value_counts(),
    }).fillna(0).astype(int).sort_index()
    report = CurationReport(
        images_in=len(frame),
        per_species=per_species,
        unreadable_dropped=frame.loc[~readable, "status"].value_counts().to_dict(),
        other_species_dropped=frame.loc[readable & ~known, "species"].value_counts().to_dict(),
    )
    return curated, report


def curation_rules(species_codes) -> dict[str, list[Rule]]:
    """The Great Expectations rules of a curated table, by check: known species, one row per image,
    no unreadable image."""
    return {
        "known_species_only": [
            Rule("expect_column_values_to_be_in_set", {"column": "species", "value_set": sorted(species_codes)}),
            Rule("expect_column_values_to_be_unique", {"column": "path"})],
        "readable_only": [
            Rule("expect_column_values_to_not_be_in_set", {"column": "status", "value_set": sorted(UNREADABLE)})],
    }
