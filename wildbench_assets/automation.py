"""When assets refresh by themselves: the automation conditions the daemon's automation sensor evaluates.

- Per arrival (`on_new_data`): cheap per-partition work follows its inputs as soon as they update —
  `curated_images[park]` after a day of that park is ingested, `new_image_predictions[park, day]`
  after that day's metadata.
- Nightly (`nightly_when_inputs_changed`): the benchmark's root, `benchmark_splits`, is re-derived
  only at the cron tick (`WILDBENCH_REFRESH_CRON`, default 02:00 UTC) and only when the data version
  of a curated park changed since the splits were last requested (or the splits were never made).
- Downstream of it (`when_inputs_changed`): labels, datasets, archives, training, evaluation and the
  leaderboard run when the data version of an input changed, so a re-run that produced the same
  content (same images, same boxes) stops the wave. Every asset's data version is a content hash.
"""

from __future__ import annotations

import dagster as dg

from wildbench_assets.settings import refresh_cron

AC = dg.AutomationCondition


def _idle() -> dg.AutomationCondition:
    return ~AC.any_deps_in_progress() & ~AC.in_progress()


def on_new_data(ignore: dg.AssetSelection | None = None) -> dg.AutomationCondition:
    """Run after any input partition is newly materialized (partitions never ingested stay untouched,
    unlike `eager()`, whose missing-dependency guard would block every park x day cross-product gap)."""
    updated = AC.any_deps_updated() if ignore is None else AC.any_deps_updated().ignore(ignore)
    in_progress = AC.any_deps_in_progress() if ignore is None else AC.any_deps_in_progress().ignore(ignore)
    return (updated.since_last_handled() & ~in_progress & ~AC.in_progress()).with_label("on_new_data")


def _inputs_changed() -> dg.AutomationCondition:
    return AC.any_deps_match(AC.data_version_changed()).with_label("input_data_version_changed")


def when_inputs_changed(inputs_required: bool = False) -> dg.AutomationCondition:
    """Run when an input's data version changed, or its code version did; never on a same-content re-run.
    `inputs_required`: never while an input partition is missing (a release registered but not cut yet
    has nothing to train on, even when a new code version asks every partition to re-run)."""
    trigger = _inputs_changed() | AC.code_version_changed()
    condition = trigger.since_last_handled() & _idle()
    if inputs_required:
        condition = condition & ~AC.any_deps_missing()
    return condition.with_label("when_inputs_changed")


def nightly_when_inputs_changed(cron: str | None = None) -> dg.AutomationCondition:
    cron = cron or refresh_cron()
    changed_since_request = (_inputs_changed() | AC.code_version_changed()).since(AC.newly_requested())
    due = AC.cron_tick_passed(cron) & (changed_since_request | AC.missing())
    return (due.since_last_handled() & _idle()).with_label(f"nightly_when_inputs_changed({cron})")
