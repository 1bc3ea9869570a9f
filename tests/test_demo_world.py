"""The demo world that the asset tests share (built once per session, copied per module): what it holds,
and that a copy is a world of its own."""

import json

import dagster as dg

from wildbench_assets.summary import read_table

from .helpers import UP_TO_LABELS, WORLD_RELEASE, WORLD_THESIS, latest_checks, run_all


def test_the_world_holds_both_releases_cut_with_their_checks_passed(world_copy):
    instance = world_copy.instance()
    assert instance.get_dynamic_partitions("releases") == [WORLD_RELEASE, WORLD_THESIS]
    for name, profile in ((WORLD_RELEASE, "default"), (WORLD_THESIS, "thesis")):
        facts = json.loads((world_copy.release_dir(name) / "release.json").read_text())
        assert facts["release"] == name and facts.get("profile", "default") == profile
        assert (world_copy.release_dir(name) / "downloads" / "test.zip").is_file()
    assert set(instance.get_materialized_partitions(dg.AssetKey("benchmark_release"))) == {WORLD_RELEASE, WORLD_THESIS}
    checks = latest_checks(instance, "benchmark_release")
    assert checks and all(len(evaluations) == 2 for evaluations in checks.values())  # one per cut
    blocking = [e for evaluations in checks.values() for e in evaluations if e.severity == dg.AssetCheckSeverity.ERROR]
    assert blocking and all(e.passed for e in blocking)


def test_the_world_holds_labels_split_zips_datasets_and_the_leaderboard(world_copy):
    data = world_copy.data
    labels = read_table(data, "detection_labels")
    assert set(labels.split) == {"train", "val", "test", "test_seen"} and (labels.label_status == "labelled").any()
    for split in ("train", "val", "test", "test_seen"):
        assert (data / "artifacts" / "archives" / f"{split}.zip").is_file()
    for name in (WORLD_RELEASE, WORLD_THESIS):
        assert (data / "artifacts" / "datasets" / name / "dataset.yaml").is_file()
    assert "YOLOv8s (thesis)" in set(read_table(data, "leaderboard").model)


def test_a_copy_is_up_to_date_and_its_own(demo_world, fresh_world):
    """The copy's instance opens at its new place and finds nothing stale (the archive kept its times); what
    is done in the copy (a run, a new release, a new file) leaves the shared world as it was."""
    before = demo_world.fingerprint()
    instance = fresh_world.instance()
    assert str(fresh_world.home) in instance.root_directory
    _plan_instance, outcome = run_all(fresh_world.archive, fresh_world.data, instance=instance,
                                      selection=UP_TO_LABELS, detector="manifest")
    assert not outcome.get("success") and not outcome.get("failure"), outcome  # nothing to do
    assert fresh_world.cli("release", "--name", "2026.12") == 0
    assert fresh_world.release_dir("2026.12").is_dir() and not demo_world.release_dir("2026.12").exists()
    (fresh_world.archive / "snieves" / "note.txt").write_text("only in the copy\n")
    assert demo_world.changes_since(before) == []  # its instance, data and archive: not a file touched
