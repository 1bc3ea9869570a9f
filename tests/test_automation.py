"""The automation conditions on the project's real asset graph, tick by tick: what follows an arrival,
what waits for the night, and what a same-content re-run leaves alone."""

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from wildbench_assets.definitions import build_defs
from wildbench_assets.partitions import park_day_key

DAY = "2026-11-20"
NIGHT = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)  # the default refresh cron: 02:00 UTC


@pytest.fixture
def instance():
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("parks", ["snieves", "donana"])
    instance.add_dynamic_partitions("arrival_days", [DAY])
    return instance


class Ticks:
    """Successive evaluations of every automation condition, as the automation sensor makes them."""

    def __init__(self, instance):
        self.instance, self.defs, self.cursor = instance, build_defs("local"), None

    def __call__(self, when: datetime) -> set[tuple[str, str | None]]:
        result = dg.evaluate_automation_conditions(defs=self.defs, instance=self.instance, cursor=self.cursor,
                                                   evaluation_time=when)
        self.cursor = result.cursor
        requested = set()
        with dg.partition_loading_context(effective_dt=when, dynamic_partitions_store=self.instance):
            for entity in result.results:
                if entity.true_subset.size and isinstance(entity.key, dg.AssetKey):
                    keys = entity.true_subset.expensively_compute_partition_keys() \
                        if entity.true_subset.is_partitioned else [None]
                    requested |= {(entity.key.to_user_string(), None if k is None else str(k)) for k in keys}
        return requested


def materialize(instance, asset: str, partition: str | None, version: str):
    """A materialization as a run would record it, with its content data version."""
    instance.report_runless_asset_event(dg.AssetMaterialization(
        asset_key=asset, partition=partition, tags={"dagster/data_version": version}))


def test_an_arrival_updates_its_park_and_day_and_nothing_heavier(instance):
    tick = Ticks(instance)
    start = NIGHT - timedelta(hours=12)
    assert tick(start) == set()
    partition = str(park_day_key("snieves", DAY))
    materialize(instance, "raw_images", partition, "3-1-aa")
    materialize(instance, "image_metadata", partition, "m1")
    requested = tick(start + timedelta(minutes=1))
    assert requested == {("curated_images", "snieves"), ("new_image_predictions", partition)}
    assert tick(start + timedelta(minutes=2)) == set()  # handled: not requested again
    materialize(instance, "curated_images", "snieves", "c1")
    assert tick(start + timedelta(minutes=3)) == set()  # the splits wait for the night
    materialize(instance, "image_metadata", partition, "m1")  # re-run, same content: not stale
    assert tick(start + timedelta(minutes=4)) == set()
    materialize(instance, "image_metadata", partition, "m2")  # new content
    assert tick(start + timedelta(minutes=5)) == {("curated_images", "snieves"), ("new_image_predictions", partition)}


def test_splits_refresh_at_night_only_when_curated_content_changed(instance):
    tick = Ticks(instance)
    evening = NIGHT - timedelta(hours=3)
    tick(evening)
    materialize(instance, "curated_images", "snieves", "c1")
    assert ("benchmark_splits", "train") not in tick(evening + timedelta(minutes=1))
    night = tick(NIGHT + timedelta(minutes=1))
    assert {p for a, p in night if a == "benchmark_splits"} == {"train", "val", "test", "test_seen"}
    for split in ("train", "val", "test", "test_seen"):
        materialize(instance, "benchmark_splits", split, f"s-{split}")
    tick(NIGHT + timedelta(minutes=2))

    materialize(instance, "curated_images", "snieves", "c1")  # re-run, same content
    tick(NIGHT + timedelta(hours=1))
    assert not {a for a, _ in tick(NIGHT + timedelta(days=1, minutes=1))} & {"benchmark_splits"}

    materialize(instance, "curated_images", "snieves", "c2")  # new content
    tick(NIGHT + timedelta(days=1, hours=1))
    assert not {a for a, _ in tick(NIGHT + timedelta(days=1, hours=2))} & {"benchmark_splits"}  # not before night
    assert {p for a, p in tick(NIGHT + timedelta(days=2, minutes=1)) if a == "benchmark_splits"} == {
        "train", "val", "test", "test_seen"}


def test_a_cut_release_trains_every_model_on_it_and_only_new_content_retrains(instance):
    """Nothing for a release registered but not cut; its datasets, then every model, once it is cut."""
    tick = Ticks(instance)
    start = NIGHT + timedelta(hours=6)
    models = ("yolov8", "megadetector", "fasterrcnn")
    tick(start - timedelta(minutes=1))  # the daemon was already ticking before the cut
    instance.add_dynamic_partitions("releases", ["2026.11", "never-cut"])
    materialize(instance, "benchmark_release", "2026.11", "manifest-1")
    cut = tick(start)
    assert ("training_datasets", "2026.11") in cut and not {a for a, _ in cut} & {"model_weights", "model_evaluation"}
    materialize(instance, "training_datasets", "2026.11", "d-1")
    requested = tick(start + timedelta(minutes=1))
    trained = {p for a, p in requested if a == "model_weights"}
    assert trained == {f"{m}|2026.11" for m in models}
    assert {p for a, p in requested if a == "model_evaluation"} == trained  # in the same runs, after the weights
    for model in models:
        materialize(instance, "model_weights", f"{model}|2026.11", f"w-{model}")
    tick(start + timedelta(minutes=2))
    materialize(instance, "training_datasets", "2026.11", "d-1")  # same content again
    assert not any(a == "model_weights" for a, _ in tick(start + timedelta(minutes=3)))
    materialize(instance, "training_datasets", "2026.11", "d-2")  # new content
    assert {p for a, p in tick(start + timedelta(minutes=4)) if a == "model_weights"} == trained
    instance.add_dynamic_partitions("releases", ["2026.12"])  # the next release: its own models only
    materialize(instance, "benchmark_release", "2026.12", "manifest-2")
    materialize(instance, "training_datasets", "2026.12", "d-3")
    later = tick(start + timedelta(minutes=5))
    assert {p for a, p in later if a == "model_weights"} == {f"{m}|2026.12" for m in models}
    assert not any("never-cut" in str(p) for _a, p in later)


def test_a_scored_submission_refreshes_the_leaderboard_by_itself(instance):
    tick = Ticks(instance)
    start = NIGHT + timedelta(hours=6)
    instance.add_dynamic_partitions("submissions", ["oracle"])
    materialize(instance, "leaderboard", None, "board-0")
    tick(start)
    assert ("leaderboard", None) not in tick(start + timedelta(minutes=1))
    materialize(instance, "submission_scores", "oracle", "score-1")
    assert ("leaderboard", None) in tick(start + timedelta(minutes=2))


def test_the_monthly_release_is_cut_only_when_the_labels_changed(tmp_path):
    from .helpers import instance_at

    instance = instance_at(tmp_path)  # a schedule's context needs an instance it can reference
    defs = build_defs("local")
    monthly_release = defs.resolve_schedule_def("monthly_release")
    first = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)

    def evaluate(when):
        context = dg.build_schedule_context(instance=instance, scheduled_execution_time=when, repository_def=defs
                                            .get_repository_def())
        return monthly_release.evaluate_tick(context)

    assert evaluate(first).skip_message == "nothing is labelled yet: no release to cut"
    for split in ("train", "val", "test", "test_seen"):
        materialize(instance, "detection_labels", split, f"l-{split}")
    [request] = evaluate(first).run_requests
    assert request.partition_key == "2026.12" and instance.get_dynamic_partitions("releases") == ["2026.12"]
    from wildbench_assets.ingest_state import labels_fingerprint
    instance.report_runless_asset_event(dg.AssetMaterialization(
        asset_key="benchmark_release", partition="2026.12", metadata={"labels_fingerprint": labels_fingerprint(
            instance)}))
    assert "unchanged" in evaluate(first + timedelta(days=31)).skip_message
    materialize(instance, "detection_labels", "test", "l-test-2")
    [request] = evaluate(first + timedelta(days=31)).run_requests
    assert request.partition_key == "2027.01"
