import numpy as np
import pandas as pd
import pytest

from wildbench_assets.lib.splits import (
    SplitPlan,
    assign_splits,
    balance_split,
    even_parks,
    groups_across_splits,
    leakage_groups,
    make_splits,
    species_cap,
)

T0 = pd.Timestamp("2024-05-01")


def archive(n=6000, cameras=120, seed=0):
    rng = np.random.default_rng(seed)
    camera = rng.choice([f"cam{i:03d}" for i in range(cameras)], n)
    return pd.DataFrame({
        "path": [f"img{i:06d}.jpg" for i in range(n)],
        "camera": camera,
        "park": np.where(pd.Series(camera).str[-1].astype(int) % 3 == 0, "donana", "snieves"),
        "species": rng.choice(["sus", "vul", "cer", "lyn", "emp"], n, p=[0.45, 0.25, 0.15, 0.05, 0.1]),
        "captured_at": T0 + pd.to_timedelta(np.sort(rng.integers(0, 10**7, n)), unit="s"),
    })


@pytest.mark.parametrize("available, top, expected", [
    ({"snieves": 10, "donana": 100}, 50, {"snieves": 10, "donana": 40}),   # shortfall made up by the other park
    ({"snieves": 70, "donana": 100}, 50, {"snieves": 25, "donana": 25}),
    ({"snieves": 7}, 50, {"snieves": 7}),                                  # one-park species
    ({"a": 10, "b": 12, "c": 100}, 60, {"a": 10, "b": 12, "c": 38}),       # beyond the thesis's two parks
    ({"a": 3, "b": 3}, 5, {"a": 2, "b": 3}),
])
def test_even_parks(available, top, expected):
    assert even_parks(available, top) == expected


def test_species_cap_is_the_mean_rounded_up_unless_given():
    counts = pd.Series({"sus": 2500, "vul": 900, "emp": 99999})
    assert species_cap(counts, SplitPlan()) == 2000
    assert species_cap(counts, SplitPlan(cap_round_to=100)) == 1700
    assert species_cap(counts, SplitPlan(cap=50)) == 50


def test_balancing_caps_species_evenly_and_adds_empties():
    frame = pd.DataFrame({
        "path": [f"p{i}" for i in range(230)],
        "park": ["snieves"] * 100 + ["donana"] * 20 + ["snieves"] * 30 + ["donana"] * 30 + ["snieves"] * 50,
        "species": ["sus"] * 120 + ["lyn"] * 30 + ["vul"] * 30 + ["emp"] * 50,
    })
    keep, cap = balance_split(frame, SplitPlan(cap=40, empty_share=0.2, seed=1))
    chosen = frame[keep.to_numpy()]
    counts = chosen.groupby(["species", "park"]).size().to_dict()
    assert cap == 40
    assert counts[("sus", "donana")] == 20 and counts[("sus", "snieves")] == 20
    assert counts[("lyn", "snieves")] == 30  # fewer than the cap: all of them
    assert counts[("vul", "donana")] == 30
    assert counts[("emp", "snieves")] == round(100 * 0.2 / 0.8)


@pytest.mark.parametrize("by", ["camera", "sequence"])
def test_no_leakage_group_straddles_splits(by):
    out = make_splits(archive(), SplitPlan(by=by))
    assert groups_across_splits(out) == 0
    if by == "camera":
        assert groups_across_splits(out, "camera") == 0


def test_image_split_reproduces_the_thesis_leak():
    out = make_splits(archive(), SplitPlan(by="image"))
    assert groups_across_splits(out, "camera") > 100  # nearly every camera in train and test


def test_sequences_split_on_gaps_per_camera():
    frame = pd.DataFrame({
        "path": list("abcdef"), "camera": ["c1"] * 4 + ["c2"] * 2,
        "captured_at": [T0, T0 + pd.Timedelta(seconds=30), T0 + pd.Timedelta(seconds=400), pd.NaT,
                        T0 + pd.Timedelta(seconds=31), T0 + pd.Timedelta(seconds=35)],
    })
    groups = leakage_groups(frame, "sequence", sequence_gap_s=120)
    assert groups[0] == groups[1] != groups[2]
    assert groups[3] == "c1@undated" and groups[4] == groups[5] != groups[1]


def test_shares_follow_64_16_20_by_image():
    shares = assign_splits(pd.Series([f"k{i}" for i in range(50000)]), SplitPlan()).value_counts(normalize=True)
    assert shares["train"] == pytest.approx(0.64, abs=0.01)
    assert shares["val"] == pytest.approx(0.16, abs=0.01)
    assert shares["test"] == pytest.approx(0.20, abs=0.01)


def test_appending_images_never_moves_an_assigned_image():
    full = archive(n=8000)
    first_days = full[full.captured_at < full.captured_at.quantile(0.7)]
    for by in ("camera", "sequence", "image"):
        before = make_splits(first_days, SplitPlan(by=by)).set_index("path").split
        after = make_splits(full, SplitPlan(by=by)).set_index("path").split
        assert (after.loc[before.index] == before).all(), by


def test_same_input_same_bytes_and_seed_changes_the_draw(tmp_path):
    frame = archive()
    a, b = make_splits(frame, SplitPlan(seed=3)), make_splits(frame.copy(), SplitPlan(seed=3))
    a.to_parquet(tmp_path / "a.parquet")
    b.to_parquet(tmp_path / "b.parquet")
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    other = make_splits(frame, SplitPlan(seed=4))
    assert (other.split != a.split).any()


def test_invalid_plans_are_rejected():
    with pytest.raises(ValueError, match="grouping"):
        SplitPlan(by="park")
    with pytest.raises(ValueError, match="shares"):
        SplitPlan(test_share=1.5)


def test_split_findings_see_leaks_against_stored_splits_and_missing_species():
    from wildbench_assets.lib.splits import split_findings

    frame = archive(3000, cameras=60).assign(burst_mode="camera", burst_interval_s=1.0)
    plan = SplitPlan()
    assigned = make_splits(frame, plan)
    clean = split_findings(assigned, "test", [], plan, share_tolerance=0.2)
    assert clean.paths_in_other_splits == 0 and clean.groups_across_splits == 0 and clean.burst_violations == 0
    assert clean.cap > 0 and not clean.over_cap and set(clean.shares) == {"train", "val", "test", "test_seen"}

    reseeded = make_splits(frame, SplitPlan(seed=9))  # the train split as stored came from another seed
    stored_train = reseeded[(reseeded.split == "train") & reseeded.selected]
    leaking = split_findings(assigned, "test", [stored_train], plan, share_tolerance=0.2)
    assert leaking.paths_in_other_splits > 0 and leaking.groups_across_splits > 0

    no_lynx = assigned[~((assigned.species == "lyn") & (assigned.split == "val"))]
    assert split_findings(no_lynx, "val", [], plan, 0.2).missing_species == {"val": ["lyn"]}
    assert split_findings(assigned, "test", [], plan, share_tolerance=0.0).off_target  # never exactly 64/16/20


def test_empty_and_undated_inputs_split_without_error():
    from wildbench_assets.lib.curation import CURATED_COLUMNS

    empty = make_splits(pd.DataFrame(columns=CURATED_COLUMNS), SplitPlan())
    assert empty.empty and {"group", "sequence", "split"} <= set(empty.columns)
    undated = archive(40, cameras=4).assign(captured_at=None)
    assigned = make_splits(undated, SplitPlan())
    assert (assigned.sequence == assigned.camera.astype(str) + "@undated").all()


def test_the_launchpad_config_is_the_plan_with_descriptions():
    from wildbench_assets.config import SplitConfig

    assert SplitConfig().plan() == SplitPlan()  # one set of defaults
    assert set(SplitPlan.__dataclass_fields__) <= set(SplitConfig.model_fields)
    assert SplitConfig(by="image", seed=3).plan() == SplitPlan(by="image", seed=3)
