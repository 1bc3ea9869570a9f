"""What the instance knows: the fingerprint each ingest stored, the labels' versions, the releases cut."""

from __future__ import annotations

import dagster as dg

from wildbench_assets.lib.releases import ReleaseFacts
from wildbench_assets.partitions import ARRIVAL_DAY, PARK, park_day_partitions, release_partitions
from wildbench_assets.resources.release_store import ReleaseStore

DATA_VERSION_TAG = "dagster/data_version"


def stored_fingerprints(instance: dg.DagsterInstance) -> dict[tuple[str, str], str]:
    """(park, day) -> the fingerprint of the objects raw_images' latest materialization of that partition
    listed: its `fingerprint` metadata (a backfill run over many partitions has one data version for all
    of them, so the per-partition truth is in metadata), else its data version (ingests from before).
    Two queries for every partition."""
    latest = instance.event_log_storage.get_latest_storage_id_by_partition(
        dg.AssetKey("raw_images"), dg.DagsterEventType.ASSET_MATERIALIZATION)
    if not latest:
        return {}
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("raw_images"), storage_ids=list(latest.values())),
        limit=len(latest)).records
    found = {}
    for record in records:
        event = record.asset_materialization
        if event is None or event.partition is None:
            continue
        value = event.metadata.get("fingerprint")
        fingerprint = str(value.value) if value is not None else (event.tags or {}).get(DATA_VERSION_TAG)
        if fingerprint is not None:
            dims = park_day_partitions.get_partition_key_from_str(event.partition).keys_by_dimension
            found[(dims[PARK], dims[ARRIVAL_DAY])] = fingerprint
    return found


def latest_ingest_ids(instance: dg.DagsterInstance) -> dict[tuple[str, str], int]:
    """(park, day) -> storage id of raw_images' latest materialization: moves on with every ingest."""
    ids = instance.event_log_storage.get_latest_storage_id_by_partition(
        dg.AssetKey("raw_images"), dg.DagsterEventType.ASSET_MATERIALIZATION)
    found = {}
    for key, storage_id in ids.items():
        dims = park_day_partitions.get_partition_key_from_str(key).keys_by_dimension
        found[(dims[PARK], dims[ARRIVAL_DAY])] = storage_id
    return found


def labels_fingerprint(instance: dg.DagsterInstance) -> str:
    """The data versions of every split's latest labels, as one string: what a release is cut from
    (equal strings, equal release). Empty when nothing was labelled yet."""
    tags = instance.event_log_storage.get_latest_tags_by_partition(
        dg.AssetKey("detection_labels"), dg.DagsterEventType.ASSET_MATERIALIZATION, [DATA_VERSION_TAG])
    return ",".join(f"{split}={values[DATA_VERSION_TAG]}" for split, values in sorted(tags.items())
                    if DATA_VERSION_TAG in values)


def cut_release_facts(artifacts, release: str) -> ReleaseFacts:
    """The facts of a release an asset works on; the step fails if the release was never cut."""
    facts = ReleaseStore(artifacts).facts(release)
    if facts is None:
        raise dg.Failure(f"release {release} was never cut (no sealed manifest): cut it with `wildbench release`")
    return facts


def latest_release(instance: dg.DagsterInstance, artifacts, profile: str = "default") -> str | None:
    """The most recently added release partition that was cut (its manifest exists) with `profile`, or
    None: a thesis-profile release, cut to measure the thesis's protocol, is never the benchmark's current one."""
    releases = ReleaseStore(artifacts)
    cut = set(releases.names())  # one listing; then release.json of those only
    keys = [k for k in instance.get_dynamic_partitions(release_partitions.name) if k in cut]
    mine = [k for k in keys if releases.profile(k) == profile]
    return mine[-1] if mine else None


def recorded_manifest_sha256(instance: dg.DagsterInstance, release: str) -> str | None:
    """The manifest sha256 the instance recorded when `release` was cut (its materializations carry
    it), or None if the instance never recorded a cut of it: the authority on what the release is."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("benchmark_release"), asset_partitions=[release]), limit=1).records
    for record in records:
        value = (record.asset_materialization.metadata if record.asset_materialization else {}).get("manifest_sha256")
        if value is not None:
            return str(value.value)
    return None
