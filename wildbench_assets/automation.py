"""When assets refresh by themselves: the automation conditions the daemon's automation sensor evaluates.

What "stale" means, the one meaning both the daemon and `wildbench run` use: a materialized partition is
stale when the data version of one of its (triggering) input partitions is not the one it was made from,
or its asset's code version is not the one it was made with. Every asset's data version is a content
hash, so a re-run that produced the same content changes nothing downstream. The conditions below say it
as automation conditions (`_stale`); `Staleness` says it for one partition from the provenance Dagster
records on each materialization, and `runner._plan` asks it.

- Per arrival (`on_new_data`): cheap per-partition work follows its inputs as soon as they change —
  `curated_images[park]` after a day of that park is ingested, `new_image_predictions[park, day]`
  after that day's metadata.
- Nightly (`nightly_when_inputs_changed`): the benchmark's root, `benchmark_splits`, is re-derived
  only at the cron tick (`WILDBENCH_REFRESH_CRON`, default 02:00 UTC) and only when it went stale
  since the splits were last requested (or the splits were never made).
- Downstream of it (`when_inputs_changed`): labels, datasets, archives, training, evaluation and the
  leaderboard run as soon as they are stale, so a re-run that produced the same content (same images,
  same boxes) stops the wave.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator

import dagster as dg

from wildbench_assets.settings import DEFAULT_REFRESH_CRON

AC = dg.AutomationCondition
DATA_VERSION_TAG = "dagster/data_version"


def _idle() -> dg.AutomationCondition:
    return ~AC.any_deps_in_progress() & ~AC.in_progress()


def _inputs_changed(ignore: dg.AssetSelection | None = None) -> dg.AutomationCondition:
    changed = AC.any_deps_match(AC.data_version_changed())
    return (changed if ignore is None else changed.ignore(ignore)).with_label("input_data_version_changed")


def _stale(ignore: dg.AssetSelection | None = None) -> dg.AutomationCondition:
    """The meaning of stale (module docstring) as a trigger: an input's data version or the code version changed."""
    return _inputs_changed(ignore) | AC.code_version_changed()


def on_new_data(ignore: dg.AssetSelection | None = None) -> dg.AutomationCondition:
    """Run as soon as it is stale (partitions never ingested stay untouched, unlike `eager()`, whose
    missing-dependency guard would block every park x day cross-product gap)."""
    in_progress = AC.any_deps_in_progress() if ignore is None else AC.any_deps_in_progress().ignore(ignore)
    return (_stale(ignore).since_last_handled() & ~in_progress & ~AC.in_progress()).with_label("on_new_data")


def when_inputs_changed(inputs_required: bool = False) -> dg.AutomationCondition:
    """Run when stale: an input's data version changed, or its code version did; never on a same-content re-run.
    `inputs_required`: never while an input partition is missing (a release registered but not cut yet
    has nothing to train on, even when a new code version asks every partition to re-run)."""
    condition = _stale().since_last_handled() & _idle()
    if inputs_required:
        condition = condition & ~AC.any_deps_missing()
    return condition.with_label("when_inputs_changed")


NIGHTLY = "nightly_when_inputs_changed"


def nightly_when_inputs_changed(cron: str = DEFAULT_REFRESH_CRON) -> dg.AutomationCondition:
    due = AC.cron_tick_passed(cron) & (_stale().since(AC.newly_requested()) | AC.missing())
    return (due.since_last_handled() & _idle()).with_label(f"{NIGHTLY}({cron})")


def with_refresh_cron(assets: list, cron: str) -> list:
    """The assets, the nightly ones re-timed to `cron` (WILDBENCH_REFRESH_CRON, read when definitions are
    built; the decorators cannot read it, as they run at import)."""
    def retime(spec: dg.AssetSpec) -> dg.AssetSpec:
        label = spec.automation_condition.get_label() if spec.automation_condition else None
        if not (label or "").startswith(NIGHTLY):
            return spec
        return spec.replace_attributes(automation_condition=nightly_when_inputs_changed(cron))

    return [a.map_asset_specs(retime) if isinstance(a, dg.AssetsDefinition) else a for a in assets]


class Staleness:
    """The meaning of stale (module docstring) for one materialized partition, read from the instance.

    Each materialization records the code version it ran with and, per input, a pointer to the input's
    latest event when it ran (`dagster/code_version`, `dagster/input_event_pointer/<asset>`). An input
    partition materialized after that pointer changed only if its data version now differs from the one
    it had at the pointer: the comparison Dagster's own stale status makes, here for every input
    partition (Dagster skips inputs of 100 partitions or more) and with one query per asset for the
    partitions nothing touched. A materialization without provenance (reported by hand) is stale when an
    input was materialized after it."""

    def __init__(self, instance: dg.DagsterInstance, graph):
        self.instance, self.graph = instance, graph
        self._latest: dict[dg.AssetKey, dict] = {}
        self._provenance: dict[dg.AssetKey, dict] = {}
        self._versions: dict[tuple, str | None] = {}

    def latest(self, key: dg.AssetKey) -> dict:
        """partition (None: unpartitioned) -> storage id of its latest materialization."""
        if key not in self._latest:
            if self.graph.get(key).is_partitioned:
                self._latest[key] = dict(self.instance.event_log_storage.get_latest_storage_id_by_partition(
                    key, dg.DagsterEventType.ASSET_MATERIALIZATION))
            else:
                record = next(iter(self.instance.get_asset_records([key])), None)
                last = record.asset_entry.last_materialization_record if record else None
                self._latest[key] = {None: last.storage_id} if last else {}
        return self._latest[key]

    def inputs(self, key: dg.AssetKey, partition: str | None) -> Iterator[tuple[dg.AssetKey, str | None]]:
        """(input asset, input partition) pairs `partition` of `key` reads, by the declared mappings."""
        for parent in sorted(self.graph.get(key).parent_keys):
            if self.graph.get(parent).is_partitioned:
                mapped = self.graph.get_parent_partition_keys_for_child(partition, parent, key)
                yield from ((parent, str(up)) for up in mapped.partitions_subset.get_partition_keys())
            else:
                yield parent, None

    def is_stale(self, key: dg.AssetKey, partition: str | None, ignore: Collection[dg.AssetKey] = ()) -> bool:
        """Materialized, and made from another data version of an input (not in `ignore`) or by other code.
        A partition never materialized is missing, not stale (False)."""
        mine = self.latest(key).get(partition)
        if mine is None:
            return False
        provenance = self.provenance(key).get(partition)
        inputs = [(parent, up) for parent, up in self.inputs(key, partition) if parent not in ignore]
        if provenance is None:
            return any(self.latest(parent).get(up, -1) > mine for parent, up in inputs)
        code_version = self.graph.get(key).code_version
        if code_version is not None and code_version != provenance.code_version:
            return True
        for parent, up in inputs:
            if parent not in provenance.input_storage_ids:  # an input it did not have when it ran
                return True
            pointer, now = provenance.input_storage_ids[parent], self.latest(parent).get(up)
            if now is None or (pointer is not None and now <= pointer):
                continue  # no materialization of the input partition since it ran
            before = self._version(parent, up, before=pointer) if pointer is not None else None
            if before != self._version(parent, up, at=now):
                return True
        return False

    def provenance(self, key: dg.AssetKey) -> dict:
        """partition -> the DataProvenance its latest materialization recorded (None: none recorded)."""
        if key not in self._provenance:
            by_id = {storage_id: partition for partition, storage_id in self.latest(key).items()}
            records = self.instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key, storage_ids=list(by_id)), limit=len(by_id)).records \
                if by_id else []
            self._provenance[key] = {by_id[r.storage_id]: dg.DataProvenance.from_tags(r.asset_materialization.tags)
                                     for r in records}
        return self._provenance[key]

    def _version(self, key: dg.AssetKey, partition: str | None, at: int | None = None,
                 before: int | None = None) -> str | None:
        """The data version of `partition` recorded by the materialization `at` a storage id, or by its
        latest one at or `before` a storage id (None: it had none)."""
        if (key, partition, at, before) not in self._versions:
            found = self.instance.fetch_materializations(dg.AssetRecordsFilter(
                asset_key=key, asset_partitions=None if partition is None else [partition],
                storage_ids=None if at is None else [at],
                before_storage_id=None if before is None else before + 1), limit=1).records
            self._versions[key, partition, at, before] = \
                found[0].asset_materialization.tags.get(DATA_VERSION_TAG) if found else None
        return self._versions[key, partition, at, before]
