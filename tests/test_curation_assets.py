"""curated_images and benchmark_splits materialized for real, after the ingest stages, on the demo archive."""

import dagster as dg
import pandas as pd
import pytest

from wildbench_assets.config import SplitConfig
from wildbench_assets.lib.bursts import burst_violations
from wildbench_assets.lib.splits import make_splits
from wildbench_assets.runner import plan_pipeline, run_plan
from wildbench_assets.summary import print_summary, read_table

from .helpers import UP_TO_SPLITS, latest_checks, pipeline_defs, run_all


def test_pipeline_curates_and_splits_the_demo_archive(demo_archive, tmp_path, capsys):
    instance, outcome = run_all(demo_archive, tmp_path)
    assert not outcome.get("failure"), outcome
    meta = read_table(tmp_path, "image_metadata")
    curated = read_table(tmp_path, "curated_images")
    splits = read_table(tmp_path, "benchmark_splits")
    assert set(curated.species) <= set(meta.species) - {"xyz"}  # the unknown code is filtered out
    assert not curated.path.isin(meta.path[meta.status.isin(["corrupt", "truncated", "empty file",
                                                               "not an image"])]).any()
    assert len(curated) < (meta.status == "ok").sum()  # bursts removed
    assert burst_violations(curated, 1.0) == 0
    assert set(splits.split) == {"train", "val", "test", "test_seen"} and splits.path.is_unique
    unseen = splits[splits.split != "test_seen"]
    assert (unseen.groupby("camera").split.nunique() == 1).all()  # leak-free by camera
    seen = splits[splits.split == "test_seen"]
    assert seen.camera.isin(splits[splits.split == "train"].camera).any()  # test_seen: training cameras...
    assert not seen.sequence.isin(unseen.sequence).any()  # ...never in a burst with a train/val frame
    assert splits.path.isin(curated.path).all()
    checks = latest_checks(instance, "curated_images")
    for name in ("known_species_only", "readable_only", "counts_add_up", "burst_rule_holds"):
        assert all(e.passed for e in checks[name]), name
    split_checks = latest_checks(instance, "benchmark_splits")
    for name in ("splits_disjoint", "cap_respected", "burst_rule_holds"):
        assert all(e.passed for e in split_checks[name]), name
    print_summary(tmp_path)  # `wildbench summary`: all four splits, and no leak where test_seen shares cameras
    shown = capsys.readouterr().out
    assert "leakage groups in more than one split: 0; test_seen images sharing a sequence with train/val: 0" in shown
    header = next(line for line in shown.splitlines() if line.startswith("split"))
    assert header.split()[1:] == ["train", "val", "test", "test_seen"]
    # the assignment is computed once, by the split that ran first, and read by the other three...
    records = instance.fetch_materializations(dg.AssetKey("benchmark_splits"), limit=10).records
    assert sorted(r.asset_materialization.metadata["assignment"].value for r in records) == [
        "computed", "reused", "reused", "reused"]
    # ...and the split tables are exactly those of one direct computation
    direct = make_splits(curated.sort_values("path", ignore_index=True), SplitConfig().plan())
    direct = direct[direct.selected].drop(columns="selected").sort_values("path", ignore_index=True)
    pd.testing.assert_frame_equal(splits.sort_values("path", ignore_index=True).astype(str), direct.astype(str))


def test_thesis_mode_and_image_split_reproduce_the_thesis(demo_archive, tmp_path):
    instance, outcome = run_all(demo_archive, tmp_path, config_by_asset={
        "curated_images": {"mode": "thesis"}, "benchmark_splits": {"by": "image", "cap_round_to": 10}})
    assert not outcome.get("failure"), outcome
    curated = read_table(tmp_path, "curated_images")
    assert set(curated.burst_mode) == {"thesis"}
    assert curated.captured_at.notna().all()  # the thesis rule drops undated images
    disjoint = latest_checks(instance, "benchmark_splits")["splits_disjoint"]
    assert all(e.passed for e in disjoint)  # by=image: groups are images, leak allowed and reported
    assert max(e.metadata["cameras_across_splits"].value for e in disjoint) > 0


def test_a_split_made_with_another_seed_is_caught_as_a_leak(demo_archive, tmp_path):
    instance, _ = run_all(demo_archive, tmp_path, config_by_asset={"benchmark_splits": {"by": "image", "seed": 1}})
    run_all(demo_archive, tmp_path, instance=instance, selection=["benchmark_splits"], force=True,
            config_by_asset={"benchmark_splits": {"by": "image", "seed": 2}})
    disjoint = latest_checks(instance, "benchmark_splits")["splits_disjoint"][4:]  # the seed-2 runs
    assert not disjoint[0].passed and disjoint[0].metadata["paths_in_other_splits"].value > 0


def test_rerun_gives_byte_identical_split_tables(demo_archive, tmp_path):
    run_all(demo_archive, tmp_path / "one")
    run_all(demo_archive, tmp_path / "two")
    for split in ("train", "val", "test"):
        one = (tmp_path / "one" / "benchmark_splits" / f"{split}.parquet").read_bytes()
        two = (tmp_path / "two" / "benchmark_splits" / f"{split}.parquet").read_bytes()
        assert one == two


def test_bad_config_fails_loudly(demo_archive, tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    with pytest.raises(ValueError, match="curated_images:config:mode .*fuzzy"):  # refused before anything runs
        run_all(demo_archive, tmp_path, instance=instance, config_by_asset={"curated_images": {"mode": "fuzzy"}})
    assert not instance.get_runs()
    # a run that fails at launch still fails alone, and what is downstream of it is skipped
    defs = pipeline_defs(demo_archive, tmp_path)
    plan = plan_pipeline(defs, instance, defs.resources["archive"].open(), set(UP_TO_SPLITS))
    outcome = run_plan(defs, instance, plan, {"curated_images": {"mode": "fuzzy"}})
    assert outcome.get("failure") and all(line.startswith("curated_images") for line in outcome["failure"])
    ran = pd.Series(outcome.get("success", []) + outcome["failure"])
    assert not ran.str.startswith("benchmark_splits").any()  # nothing after a failed stage runs
    assert outcome["skipped"] == ["benchmark_splits"]
