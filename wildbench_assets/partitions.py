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


def range_tags(chunk: list[str]) -> dict[str, str]:
    """The tags of a run over the partitions `chunk[0]`..`chunk[-1]` (Dagster reads them as its range)."""
    return {"dagster/asset_partition_range_start": chunk[0], "dagster/asset_partition_range_end": chunk[-1]}


def partition_chunks(definition: dg.PartitionsDefinition, keys, size: int, instance) -> list[list[str]]:
    """`keys` cut into runs of at most `size` partitions, each a contiguous range of `definition` (with a park x
    day key, one dimension held and the other contiguous: the ranges Dagster's own backfills make), in the
    definition's order. Every key must be registered: a range is resolved again when its run starts, and
    only registered partitions keep their place (nothing is ever deleted). One home for the sensor's ingest
    runs and `wildbench run`'s."""
    from dagster._core.instance.types import CachingDynamicPartitionsLoader

    keys = [str(k) for k in keys]
    if size <= 1 or len(keys) <= 1:
        return [[k] for k in keys]
    with dg.partition_loading_context(dynamic_partitions_store=CachingDynamicPartitionsLoader(instance)):
        ranges = definition.subset_with_partition_keys(keys).get_partition_key_ranges(definition)
        in_ranges = [list(definition.get_partition_keys_in_range(r)) for r in ranges]
    chunks = [[str(k) for k in run[start:start + size]] for run in in_ranges for start in range(0, len(run), size)]
    covered = [k for chunk in chunks for k in chunk]
    if sorted(covered) != sorted(set(keys)):  # a key not registered, or a range wider than asked
        missing, extra = sorted(set(keys) - set(covered))[:5], sorted(set(covered) - set(keys))[:5]
        raise ValueError(f"partition ranges cover {len(covered)} keys for {len(set(keys))} asked: "
                         f"missing {missing}, extra {extra}")
    return chunks
