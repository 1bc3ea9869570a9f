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
