"""Every PartitionsDefinition, in one place. Partition by park, day, split, model, request — never by image."""

import dagster as dg

from wildbench_assets.training.registry import MODEL_NAMES

PARK = "park"
ARRIVAL_DAY = "arrival_day"

park_partitions = dg.DynamicPartitionsDefinition(name="parks")
arrival_day_partitions = dg.DynamicPartitionsDefinition(name="arrival_days")

# Arrival days are sparse (images land when someone empties a card), hence dynamic rather than daily.
park_day_partitions = dg.MultiPartitionsDefinition({PARK: park_partitions, ARRIVAL_DAY: arrival_day_partitions})


def park_day_key(park: str, day: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({PARK: park, ARRIVAL_DAY: day})

split_partitions = dg.StaticPartitionsDefinition(["train", "val", "test", "test_seen"])

request_partitions = dg.DynamicPartitionsDefinition(name="requests")

model_partitions = dg.StaticPartitionsDefinition(list(MODEL_NAMES))  # the model registry's

submission_partitions = dg.DynamicPartitionsDefinition(name="submissions")

# One per benchmark release (e.g. `2026.11`), added when a release is cut; never removed.
release_partitions = dg.DynamicPartitionsDefinition(name="releases")

MODEL, RELEASE = "model", "release"
# Every model is trained and scored on every release: two numbers on one release's board share a test set.
model_release_partitions = dg.MultiPartitionsDefinition({MODEL: model_partitions, RELEASE: release_partitions})


def model_release_key(model: str, release: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({MODEL: model, RELEASE: release})


class PartitionsAfterAdding:
    """A dynamic-partitions store as it will be once `added` keys are registered, each after the existing
    ones in the order given (the order the daemon adds them in): a sensor that registers days in the same
    tick as it requests their runs cuts its partition ranges against it. (Dagster's own
    `DynamicPartitionsStoreAfterRequests` forgets the order, which ranges depend on.)"""

    def __init__(self, store, added: dict[str, list[str]]):
        self.store, self.added = store, added

    def get_dynamic_partitions(self, partitions_def_name: str) -> list[str]:
        existing = list(self.store.get_dynamic_partitions(partitions_def_name))
        known = set(existing)
        return existing + [k for k in dict.fromkeys(self.added.get(partitions_def_name, ())) if k not in known]

    def get_paginated_dynamic_partitions(self, partitions_def_name: str, limit: int, ascending: bool,
                                         cursor: str | None = None):
        from dagster._core.types.pagination import PaginatedResults

        return PaginatedResults.create_from_sequence(seq=self.get_dynamic_partitions(partitions_def_name),
                                                     limit=limit, ascending=ascending, cursor=cursor)

    def has_dynamic_partition(self, partitions_def_name: str, partition_key: str) -> bool:
        return partition_key in self.added.get(partitions_def_name, ()) or \
            self.store.has_dynamic_partition(partitions_def_name, partition_key)

    def get_existing_dynamic_partitions(self, partitions_def_name: str, partition_keys) -> set[str]:
        known = set(self.get_dynamic_partitions(partitions_def_name))
        return {k for k in partition_keys if k in known}

    def get_dynamic_partitions_definition_id(self, partitions_def_name: str) -> str:
        from dagster._core.definitions.partitions.utils import generate_partition_key_based_definition_id

        return generate_partition_key_based_definition_id(self.get_dynamic_partitions(partitions_def_name))


def range_tags(chunk: list[str]) -> dict[str, str]:
    """The tags of a run over the partitions `chunk[0]`..`chunk[-1]` (Dagster reads them as its range)."""
    return {"dagster/asset_partition_range_start": chunk[0], "dagster/asset_partition_range_end": chunk[-1]}


def partition_chunks(definition: dg.PartitionsDefinition, keys, size: int, store) -> list[list[str]]:
    """`keys` cut into runs of at most `size` partitions, each a contiguous range of `definition` (with a park x
    day key, one dimension held and the other contiguous: the ranges Dagster's own backfills make), in the
    definition's order. One home for the sensor's ingest runs and `wildbench run`'s."""
    keys = [str(k) for k in keys]
    if size <= 1 or len(keys) <= 1:
        return [[k] for k in keys]
    with dg.partition_loading_context(dynamic_partitions_store=store):
        ranges = definition.subset_with_partition_keys(keys).get_partition_key_ranges(definition)
        in_ranges = [list(definition.get_partition_keys_in_range(r)) for r in ranges]
    return [keys[start:start + size] for keys in in_ranges for start in range(0, len(keys), size)]
