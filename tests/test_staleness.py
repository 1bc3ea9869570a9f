"""`wildbench run` plans by the meaning of stale the automation conditions use (automation.py): a changed
data version of an input or a changed code version, never a same-content re-run of an input."""

import dagster as dg

from wildbench_assets.runner import plan_pipeline, run_plan

from .helpers import UP_TO_SPLITS, pipeline_defs, run_all

CURATED, SPLITS = dg.AssetKey("curated_images"), dg.AssetKey("benchmark_splits")


def planned(defs, instance) -> dict[str, list]:
    plan = plan_pipeline(defs, instance, defs.resources["archive"].open(), set(UP_TO_SPLITS))
    return {key.to_user_string(): sorted(todo) for key, todo in plan.todo.items() if todo}


def with_code_version(defs: dg.Definitions, key: dg.AssetKey, version: str) -> dg.Definitions:
    """`defs` with the asset `key` at another code version, as after an edit that bumped it."""
    assets = [a.map_asset_specs(lambda spec: spec.replace_attributes(code_version=version))
              if isinstance(a, dg.AssetsDefinition) and key in a.keys else a for a in defs.assets]
    return dg.Definitions(assets=assets, resources=defs.resources)


def test_run_replans_only_changed_content_or_code(demo_archive, tmp_path):
    instance, outcome = run_all(demo_archive, tmp_path)
    assert not outcome.get("failure"), outcome
    defs = pipeline_defs(demo_archive, tmp_path)
    assert planned(defs, instance) == {}
    park = sorted(instance.get_dynamic_partitions("parks"))[0]
    before = instance.get_latest_materialization_event(SPLITS)

    # an input re-run with identical content: same data version, nothing downstream to do
    again = defs.resolve_implicit_job_def_def_for_assets([CURATED]).execute_in_process(
        instance=instance, asset_selection=[CURATED], partition_key=park)
    assert again.success
    assert planned(defs, instance) == {}
    assert instance.get_latest_materialization_event(SPLITS).run_id == before.run_id

    # a bumped code version: every partition of that asset (and nothing upstream of it)
    bumped = planned(with_code_version(defs, SPLITS, "bumped"), instance)
    assert list(bumped) == ["benchmark_splits"] and len(bumped["benchmark_splits"]) == 4

    # the input's content changed (a new data version): downstream is planned again
    instance.report_runless_asset_event(dg.AssetMaterialization(
        asset_key=CURATED, partition=park, tags={"dagster/data_version": "other content"}))
    assert planned(defs, instance) == {"benchmark_splits": bumped["benchmark_splits"]}


def test_run_skips_what_a_same_content_rerun_of_its_input_left_current(demo_archive, tmp_path):
    """An input planned in the run counts as changed at plan time; once it ran with the same content,
    what was planned only because of it does not run."""
    instance, _ = run_all(demo_archive, tmp_path)
    defs = pipeline_defs(demo_archive, tmp_path)
    park = sorted(instance.get_dynamic_partitions("parks"))[0]
    (tmp_path / "curated_images" / f"{park}.parquet").unlink()  # a lost table: re-made from its inputs
    plan = plan_pipeline(defs, instance, defs.resources["archive"].open(), set(UP_TO_SPLITS))
    assert {k.to_user_string(): sorted(v) for k, v in plan.todo.items() if v} == {
        "curated_images": [park], "benchmark_splits": ["test", "test_seen", "train", "val"]}
    outcome = run_plan(defs, instance, plan)
    assert [line.split(":")[0] for line in outcome["success"]] == [f"curated_images {park}"]
    assert sorted(outcome["unchanged"]) == [f"benchmark_splits {s}" for s in ("test", "test_seen", "train", "val")]
    assert (tmp_path / "curated_images" / f"{park}.parquet").exists()
    assert planned(defs, instance) == {}
