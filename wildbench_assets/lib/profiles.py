"""Release profiles: which rules turn the curated archive into a release's membership.

`default`: the benchmark's own rules — bursts cleaned per park partition (`curated_images`), splits by
leakage group (camera by default) with a seen-camera test set, every detection above the label
threshold as a box (`benchmark_splits` + `detection_labels`).

`thesis`: the thesis's construction, exactly, so its optimism can be measured rather than asserted —
one burst rule over the whole dataset (per species across every camera and both parks, species below
the median count of the whole dataset exempt: thesis 4.1.2), a random split image by image (4.1.3,
the same 64/16/20 shares, species cap and park balancing, no seen-camera set), and one box per image
(the thesis's labels held a single box). Its random split leaks bursts between train and test by
design; that leak is what a release cut this way beside the default one measures.
"""

from __future__ import annotations

import json

import pandas as pd

from wildbench_assets.lib.bursts import thesis_exemption
from wildbench_assets.lib.curation import curate
from wildbench_assets.lib.splits import SplitPlan, make_splits

PROFILES = ("default", "thesis")
THESIS_INTERVAL_S = 1.0  # "images taken less than a second apart"


def thesis_plan(seed: int = 0) -> SplitPlan:
    """The thesis's split: image by image, 80/20 then 80/20, the thesis's cap and park balance, no
    seen-camera test set (it had none)."""
    return SplitPlan(by="image", seed=seed, seen_share=0.0)


def thesis_curation(metadata: pd.DataFrame, species_codes, interval_s: float = THESIS_INTERVAL_S
                    ) -> tuple[pd.DataFrame, dict]:
    """(curated images, the burst rule as applied) over every park's images at once: readable images of
    known species, bursts cleaned per species across all cameras and parks, the median exemption
    computed over the whole dataset. `metadata`: `image_metadata` rows of every park."""
    curated, report = curate(metadata, species_codes, interval_s, "thesis")
    exemption = thesis_exemption(report.per_species.sum(axis=1))
    rule = {"mode": "thesis", "interval_s": float(interval_s),
            "grouped_by": "species, across every camera and park",
            "exemption": {**exemption, "computed_over": "every park's images together"},
            "images_in": int(report.per_species.to_numpy().sum()),
            "burst_dropped": int(report.per_species.burst_dropped.sum())}
    return curated, rule


def thesis_membership(metadata: pd.DataFrame, species_codes, seed: int = 0,
                      interval_s: float = THESIS_INTERVAL_S) -> tuple[pd.DataFrame, dict]:
    """(the images of the thesis release with their `split`, `group` and `sequence`, sorted by path;
    the rules used, for the release's record)."""
    curated, burst = thesis_curation(metadata, species_codes, interval_s)
    plan = thesis_plan(seed)
    assigned = make_splits(curated.sort_values("path", ignore_index=True), plan)
    chosen = assigned[assigned.selected].drop(columns="selected").sort_values("path", ignore_index=True)
    rules = {
        "profile": "thesis",
        "burst": burst,
        "split": {"by": plan.by, "seed": plan.seed, "test_share": plan.test_share, "val_share": plan.val_share,
                  "seen_share": plan.seen_share, "cap": "mean images per species of the split, rounded up to "
                  f"{plan.cap_round_to}", "empty_share": plan.empty_share,
                  "meaning": "images assigned one by one (the thesis's random split): frames of one burst "
                             "land in train and test", **burst_leak(chosen)},
        "boxes": "one per image: the most confident animal detection at or above the label threshold "
                 "(the thesis's labels held one box per image)",
        "leak_audit": "reported, not blocking: the random split leaks bursts by design, which is what this "
                      "profile measures",
    }
    return chosen, rules


def burst_leak(rows: pd.DataFrame) -> dict[str, int]:
    """How many of the test sequences of a membership (split, sequence) also have frames in train/val."""
    trained = set(rows.sequence[rows.split.isin(["train", "val"])])
    tested = set(rows.sequence[rows.split == "test"])
    return {"sequences_in_train_and_test": len(trained & tested), "test_sequences": len(tested)}


def one_box_per_image(labels: pd.DataFrame) -> pd.DataFrame:
    """`labels` with each image's boxes reduced to its most confident one (the first of equals)."""
    out = labels.copy()
    boxes = [json.loads(text) for text in out["boxes"]]
    kept = [[max(found, key=lambda box: box[4])] if found else [] for found in boxes]
    out["boxes"] = [json.dumps(box) for box in kept]
    if "n_boxes" in out:
        out["n_boxes"] = [len(box) for box in kept]
    return out
