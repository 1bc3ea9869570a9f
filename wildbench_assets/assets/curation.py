"""Curation: the species of thesis Table 3.1, bursts removed, then leak-free balanced splits."""

import dataclasses
import hashlib
import inspect
import json
import warnings

import dagster as dg
import pandas as pd

from wildbench_assets import layout
from wildbench_assets.assets.checks import (
    Check,
    check_results,
    check_specs,
    frame_markdown,
    png_markdown,
    publish,
    verdict,
)
from wildbench_assets.automation import nightly_when_inputs_changed, on_new_data
from wildbench_assets.config import CurationConfig, SplitConfig
from wildbench_assets.lib import splits as splits_lib
from wildbench_assets.lib.bursts import burst_violations
from wildbench_assets.lib.curation import CURATED_COLUMNS, curate, curation_rules
from wildbench_assets.lib.expectations import validate_checks
from wildbench_assets.lib.headers import METADATA_COLUMNS
from wildbench_assets.lib.plots import bar_chart_png
from wildbench_assets.lib.splits import SPLITS, make_splits, split_findings, split_rules
from wildbench_assets.lib.versions import combined_version, frame_digest, table_version
from wildbench_assets.partitions import PARK, park_partitions, split_partitions
from wildbench_assets.resources.artifacts import ArtifactStore
from wildbench_assets.resources.input_snapshot import SNAPSHOT_INPUT, last_read
from wildbench_assets.resources.parquet_io import ParquetIOManager, parquet_bytes
from wildbench_assets.resources.taxonomy import TaxonomyResource

CURATION_CHECKS = {
    "known_species_only": Check("Every kept image is of a Table 3.1 species or empty."),
    "readable_only": Check("Every kept image passed the integrity check (status ok)."),
    "counts_add_up": Check("Every input image is kept or dropped for a recorded reason; per-species counts sum "
                           "to the table."),
    "burst_rule_holds": Check("No two kept frames of one camera and species are closer than burst_interval_s "
                              "(the thesis rule in thesis mode)."),
}
SPLIT_CHECKS = {
    "splits_disjoint": Check("No image, and no leakage group (camera by default), is in this split and another."),
    "split_shares": Check("The split's share of images is within share_tolerance of its target (64/16/20; warns).",
                          blocking=False),
    "species_in_every_split": Check("Every species with images is present in this split (warns, names the "
                                    "missing ones).", blocking=False),
    "cap_respected": Check("No species exceeds its per-split cap."),
    "burst_rule_holds": Check("No two frames of one camera and species in the split are closer than the burst "
                              "interval."),
}


# The mapping from park x day to park is stable in use; Dagster still labels the class beta.
warnings.filterwarnings("ignore", message="Class `MultiToSingleDimensionPartitionMapping`")


@dg.asset(
    partitions_def=park_partitions,
    # every day of the park, but only the days new or changed since the last run are read (the rest
    # comes from the input snapshot the IO manager keeps: resources/input_snapshot.py)
    ins={"image_metadata": dg.AssetIn(partition_mapping=dg.MultiToSingleDimensionPartitionMapping(PARK),
                                      metadata={SNAPSHOT_INPUT: True})},
    group_name="curation",
    kinds={"pandas", "parquet"},
    io_manager_key="parquet_io_manager",
    code_version="1",
    automation_condition=on_new_data(),
    check_specs=check_specs("curated_images", CURATION_CHECKS, park_partitions),
)
def curated_images(context: dg.AssetExecutionContext, config: CurationConfig, taxonomy: TaxonomyResource,
                   image_metadata: pd.DataFrame):
    """One park's readable images of the Table 3.1 species (and empties), burst near-duplicates removed:
    within one camera and species, a frame within `burst_interval_s` of the last kept frame is dropped.
    `mode="thesis"` reproduces the thesis's rule (per species across cameras, small species exempt)."""
    tax = taxonomy.load()
    if image_metadata.columns.empty:  # no day of this park ingested yet
        image_metadata = pd.DataFrame(columns=METADATA_COLUMNS)
    curated, report = curate(image_metadata, tax.species_codes, config.burst_interval_s, config.mode)
    per_species = report.per_species
    burst_dropped = int(per_species.burst_dropped.sum())
    context.log.info(f"{report.images_in} images -> {len(curated)} kept; bursts dropped {burst_dropped}, "
                     f"unreadable {report.unreadable_dropped}, other species {report.other_species_dropped}")

    found = validate_checks(curated, curation_rules(tax.species_codes), name="curated_images")
    violations = burst_violations(curated, config.burst_interval_s, config.mode)
    checks = check_results(
        CURATION_CHECKS, found,
        counts_add_up=verdict(report.accounted_for == report.images_in == len(image_metadata)
                              and int(per_species.kept.sum()) == len(curated),
                              input=len(image_metadata), accounted_for=report.accounted_for),
        burst_rule_holds=verdict(violations == 0, pairs_closer_than_interval=violations,
                                 burst_interval_s=config.burst_interval_s, mode=config.mode),
    )
    plot = bar_chart_png(per_species, f"{context.partition_key}: kept vs burst-dropped", stacked=True)
    loaded = last_read(context.run_id, "image_metadata", context.partition_key)
    read = {} if loaded is None else {  # what loading the input read (None: loaded by another IO manager)
        "input_files_read": loaded.files_read, "input_rows_read": loaded.rows_read,
        "input_bytes_read": loaded.bytes_read, "input_snapshot": loaded.snapshot}
    return publish(context, dg.MaterializeResult(
        value=curated,
        data_version=dg.DataVersion(table_version(curated)),
        metadata={
            "images_in": report.images_in,
            "kept": len(curated),
            "burst_dropped": burst_dropped,
            "undated_kept": int(curated.captured_at.isna().sum()),
            "unreadable_dropped": dg.MetadataValue.json(report.unreadable_dropped),
            "other_species_dropped": dg.MetadataValue.json(report.other_species_dropped),
            "per_species": frame_markdown(per_species),
            "plot": png_markdown(plot, "kept and dropped per species"),
            **read,
        },
        check_results=checks,
    ))


_SPLITTING_CODE = hashlib.sha256(inspect.getsource(splits_lib).encode()).hexdigest()[:16]


def _assignment(curated: pd.DataFrame, plan, artifacts: ArtifactStore) -> tuple[pd.DataFrame, bool]:
    """`make_splits` once per (curated content, plan, splitting code), not once per split partition:
    the first partition stores the whole assignment, the other three read it. (whether it was reused)"""
    key = combined_version(frame_digest(curated), json.dumps(dataclasses.asdict(plan), sort_keys=True),
                           _SPLITTING_CODE)
    relative = layout.split_assignment(key)
    stored = artifacts.path(relative)
    if stored.is_file():
        return pd.read_parquet(stored), True
    assigned = make_splits(curated, plan)
    with artifacts.writing(relative) as tmp:
        tmp.write_bytes(parquet_bytes(assigned))
    for old in list(artifacts.list(f"{layout.SPLIT_ASSIGNMENTS}/")):  # only the newest content matters
        if old.key != relative:
            artifacts.delete(old.key)
    return pd.read_parquet(artifacts.path(relative)), False  # as the other partitions will read it


def _split_checks(table: pd.DataFrame, split: str, species_codes, findings: splits_lib.SplitFindings,
                  plan) -> list[dg.AssetCheckResult]:
    found = validate_checks(table, split_rules(split, species_codes), name="benchmark_splits")
    leak_free = findings.paths_in_other_splits == 0 and (findings.groups_across_splits == 0 or plan.by == "image")
    return check_results(
        SPLIT_CHECKS, found,
        splits_disjoint=verdict(leak_free, paths_in_other_splits=findings.paths_in_other_splits,
                                groups_across_splits=findings.groups_across_splits,
                                cameras_across_splits=findings.cameras_across_splits, by=plan.by),
        split_shares=verdict(not findings.off_target, shares=dg.MetadataValue.json(findings.shares),
                             off_target=dg.MetadataValue.json(findings.off_target)),
        species_in_every_split=verdict(not findings.missing_species,
                                       missing=dg.MetadataValue.json(findings.missing_species)),
        cap_respected=verdict(not findings.over_cap, cap=findings.cap,
                              over_cap=dg.MetadataValue.json(findings.over_cap)),
        burst_rule_holds=verdict(findings.burst_violations == 0,
                                 pairs_closer_than_interval=findings.burst_violations),
    )


@dg.asset(
    partitions_def=split_partitions,
    ins={"curated_images": dg.AssetIn(partition_mapping=dg.AllPartitionMapping())},
    group_name="curation",
    kinds={"pandas", "parquet"},
    io_manager_key="parquet_io_manager",
    code_version="1",
    automation_condition=nightly_when_inputs_changed(),
    check_specs=check_specs("benchmark_splits", SPLIT_CHECKS, split_partitions),
)
def benchmark_splits(context: dg.AssetExecutionContext, config: SplitConfig, taxonomy: TaxonomyResource,
                     artifacts: ArtifactStore, parquet_io_manager: dg.ResourceParam[ParquetIOManager],
                     curated_images: pd.DataFrame):
    """One split (train/val/test) of the benchmark: leakage groups (camera by default) assigned by a
    keyed hash, 64/16/20, then each species capped and balanced across parks, plus a share of empties."""
    try:
        plan = config.plan()
    except ValueError as err:
        raise dg.Failure(f"invalid split config: {err}") from err
    split = context.partition_key
    if curated_images.columns.empty:  # no park curated yet: every split is empty, and valid
        curated_images = pd.DataFrame(columns=CURATED_COLUMNS)
    curated = curated_images.sort_values("path", ignore_index=True)
    assigned, reused = _assignment(curated, plan, artifacts)
    context.log.info(f"split assignment of {len(curated)} images {'reused' if reused else 'computed'}")
    table = assigned[(assigned.split == split) & assigned.selected].drop(columns="selected").reset_index(drop=True)
    stored = [parquet_io_manager.load_partition("benchmark_splits", other) for other in SPLITS if other != split]
    findings = split_findings(assigned, split, [s for s in stored if s is not None], plan, config.share_tolerance)
    checks = _split_checks(table, split, taxonomy.load().species_codes, findings, plan)
    counts = table.pivot_table(index="species", columns="park", values="path", aggfunc="count", fill_value=0)
    plot = bar_chart_png(counts, f"{split}: images per species and park (thesis Fig. 3.7)")
    return publish(context, dg.MaterializeResult(
        value=table,
        data_version=dg.DataVersion(table_version(table)),
        metadata={
            "images": len(table),
            "species": int(table.species.nunique()),
            "cap": findings.cap,
            "groups": int(table.group.nunique()),
            "assigned_before_balancing": int((assigned.split == split).sum()),
            "assignment": "reused" if reused else "computed",
            "share_of_assigned": findings.shares[split],
            "counts": frame_markdown(counts),
            "plot": png_markdown(plot, f"{split} per species and park"),
        },
        check_results=checks,
    ))
