"""Benchmark releases: frozen, versioned, with hidden test labels, a datasheet, a leak audit and Camtrap DP."""


from dataclasses import replace
from datetime import UTC, datetime

import dagster as dg
import pandas as pd

from wildbench_assets import layout, settings
from wildbench_assets.assets.checks import Check, Verdict, check_results, check_specs, publish, verdict
from wildbench_assets.config import LabelConfig, ReleaseConfig
from wildbench_assets.ingest_state import labels_fingerprint, recorded_manifest_sha256
from wildbench_assets.lib import releases as rel
from wildbench_assets.lib.headers import METADATA_COLUMNS
from wildbench_assets.lib.profiles import burst_leak, one_box_per_image, thesis_membership
from wildbench_assets.lib.splits import SPLITS
from wildbench_assets.partitions import park_day_partitions, release_partitions
from wildbench_assets.resources.archive import ArchiveResource
from wildbench_assets.resources.artifacts import ArtifactStore
from wildbench_assets.resources.detector import DetectorResource
from wildbench_assets.resources.label_cache import LabelCache
from wildbench_assets.resources.labelling import label_images
from wildbench_assets.resources.parquet_io import ParquetIOManager
from wildbench_assets.resources.release_store import ReleaseStore
from wildbench_assets.resources.release_writer import (
    cut_records,
    file_digests,
    read_cut_record,
    record_cut,
    test_zip_entries,
    write_release,
)
from wildbench_assets.resources.taxonomy import TaxonomyResource

CODE_VERSION = "4"  # 2: keyed public ids, other releases' hidden labels kept hidden; 3: plug-and-play
# downloads, truth ids = public ids; 4: a by-image release withholds them from its test set too; test images
# stripped of all metadata
RELEASE_CHECKS = {
    "manifest_sealed": Check("The manifest's sha256 is the one the release was sealed with at its cut."),
    "reproducible": Check("A rebuild from the frozen manifest reproduces every file byte for byte."),
    "counts_add_up": Check("Images per split agree between the manifest, the labelled inputs and the ZIPs."),
    "public_test_has_no_labels": Check("The public test ZIPs hold no label file and no species name."),
    "no_near_duplicates_across_splits": Check("No perceptual-hash near-duplicate pair straddles train and test "
                                              "(warns where the split rule allows it)."),
    "camtrap_dp_valid": Check("The Camtrap DP package validates against its profile (warns when none was "
                              "written)."),
    "hidden_labels_stay_hidden": Check("No label another release keeps hidden is published here, and none "
                                       "published elsewhere is hidden."),
}


def _facts(context: dg.AssetExecutionContext, splits: pd.DataFrame, class_names: list[str],
           max_distance: int) -> rel.ReleaseFacts:
    """What the release records about how its inputs were made, read from the instance and the tables."""
    records = context.instance.fetch_materializations(dg.AssetKey("detection_labels"), limit=len(SPLITS)).records
    metadata = [r.asset_materialization.metadata for r in records if r.asset_materialization]
    detectors = sorted({str(m["detector"].value) for m in metadata if "detector" in m})
    thresholds = sorted({float(m["label_threshold"].value) for m in metadata if "label_threshold" in m})
    rules = {park: {"mode": str(rows.burst_mode.iloc[0]), "interval_s": float(rows.burst_interval_s.iloc[0])}
             for park, rows in splits.groupby("park")} if len(splits) else {}
    return rel.ReleaseFacts(
        release=context.partition_key, cut_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        labels_fingerprint=labels_fingerprint(context.instance),
        code_version=CODE_VERSION, detector=" | ".join(detectors) or "none", label_threshold=(thresholds or [None])[-1],
        split_by=str(splits.split_by.iloc[0]) if len(splits) else "camera",
        split_seed=int(splits.split_seed.iloc[0]) if len(splits) else 0, burst_rules=rules,
        class_names=list(class_names), max_distance=max_distance)


def _thesis_cut(context: dg.AssetExecutionContext, facts: rel.ReleaseFacts, image_metadata: pd.DataFrame, store,
                tax, detector: DetectorResource, label_cache: LabelCache):
    """(labels, splits, facts) of the thesis profile: membership by `lib.profiles` over every park's
    images at once, boxes from the same detector and threshold as the benchmark's labels (its label
    cache: images the splits already labelled are not inferred on again), one box per image."""
    if image_metadata.columns.empty:  # nothing ingested yet
        image_metadata = pd.DataFrame(columns=METADATA_COLUMNS)
    chosen, rules = thesis_membership(image_metadata, tax.species_codes, facts.split_seed)
    threshold = facts.label_threshold if facts.label_threshold is not None else LabelConfig().label_threshold
    labels, model = label_images(chosen, store, detector, label_cache, tax, threshold, context.log,
                                 name=f"release {context.partition_key}")
    burst = {"mode": rules["burst"]["mode"], "interval_s": rules["burst"]["interval_s"]}
    facts = replace(facts, detector=model.identity, label_threshold=threshold, split_by=rules["split"]["by"],
                    split_seed=rules["split"]["seed"], profile="thesis", profile_rules=rules,
                    burst_rules={park: burst for park in sorted(chosen.park.unique())})
    return one_box_per_image(labels), chosen, facts


def _labelled_inputs(labels: pd.DataFrame) -> dict[str, int]:
    usable = labels[labels.label_status.isin(["labelled", "empty"])] if len(labels) else labels
    return {str(s): int(n) for s, n in usable.groupby("split").size().items()} if len(usable) else {}


def _check_results(found: rel.ReleaseFindings, built, cut: bool, hidden_labels: Verdict) -> list[dg.AssetCheckResult]:
    json_ = dg.MetadataValue.json
    return check_results(
        RELEASE_CHECKS,
        manifest_sealed=verdict(found.sealed, manifest_sha256=found.manifest_sha256,
                                sealed_as=found.sealed_as or found.manifest_sha256),
        reproducible=verdict(not found.files_that_differ, rebuilt=not cut,
                             files_that_differ=json_(found.files_that_differ)),
        counts_add_up=verdict(found.counts_add_up, manifest=json_(found.per_split),
                              labelled_inputs=json_(found.labelled_inputs), zipped_images=json_(found.zipped_images)),
        public_test_has_no_labels=verdict(not found.label_leaks, suspect_entries=json_(found.label_leaks[:20])),
        no_near_duplicates_across_splits=verdict(
            found.straddling_train_and_test == 0, blocking=found.leaks_block, **built.audit,
            pairs_sample=dg.MetadataValue.md(built.pairs.head(10).to_markdown())),
        camtrap_dp_valid=verdict(found.camtrap_written and not found.camtrap_problems, blocking=found.camtrap_written,
                                 written=found.camtrap_written, problems=json_(found.camtrap_problems[:20])),
        hidden_labels_stay_hidden=hidden_labels,
    )


@dg.asset(
    partitions_def=release_partitions,
    ins={"detection_labels": dg.AssetIn(partition_mapping=dg.AllPartitionMapping()),
         "benchmark_splits": dg.AssetIn(partition_mapping=dg.AllPartitionMapping())},
    # the thesis profile's input, read only by a thesis cut (a default cut never loads the ingest tables)
    deps=[dg.AssetDep("image_metadata", partition_mapping=dg.AllPartitionMapping())],
    group_name="releases",
    kinds={"csv", "zip"},
    code_version=CODE_VERSION,
    check_specs=check_specs("benchmark_release", RELEASE_CHECKS, release_partitions),
)
def benchmark_release(context: dg.AssetExecutionContext, config: ReleaseConfig, archive: ArchiveResource,
                      artifacts: ArtifactStore, taxonomy: TaxonomyResource, detector: DetectorResource,
                      label_cache: LabelCache, parquet_io_manager: dg.ResourceParam[ParquetIOManager],
                      detection_labels: pd.DataFrame, benchmark_splits: pd.DataFrame):
    """One frozen release (`releases/<id>/`): the manifest of train/val/test membership (path, content
    sha256, species, park, camera, sequence, split, boxes) sealed by its sha256; a datasheet (md + json);
    downloads (train/val ZIPs with labels that `yolo train`, pycocotools and torchvision read after a plain
    unzip, a test ZIP of images named by public id with no label; each with a README, LICENSE and the
    class list); the
    hidden test truth submissions are scored against; a perceptual-hash leak audit; Camtrap DP 1.0.2.
    The first materialization cuts it; every later one rebuilds it from its own frozen manifest and
    must reproduce every byte, or fails naming what differs. Images arriving later change only the next.
    The cut is recorded in the hidden store (manifest, facts, the key of its public ids); a release the
    instance recorded whose folder is lost is rebuilt from that record, never cut again. No cut publishes
    a label another cut hides, or hides one another published (`hidden_labels_stay_hidden`).
    `profile: thesis` (read at the cut) builds the membership by the thesis's rules instead (lib/profiles)
    from every park's images, so the same model scored on both releases measures the thesis's optimism."""
    store, tax = archive.open(), taxonomy.load()
    name = context.partition_key
    releases = ReleaseStore(artifacts)
    target, sealed = releases.local_folder(name), releases.is_cut(name)  # rebuilt and compared file by file
    recorded, record = recorded_manifest_sha256(context.instance, name), read_cut_record(artifacts, name)
    cut = not sealed and recorded is None and record is None
    restore = not cut and not sealed  # cut once, folder lost: rebuilt, never re-cut
    if cut:
        labels, manifest, facts, id_key = _new_cut(context, config, store, tax, detector, label_cache, artifacts,
                                                   parquet_io_manager, detection_labels, benchmark_splits)
        sealed_as = None
    else:  # frozen: rebuilt from its own manifest and facts, never from today's splits
        manifest, facts, sealed_as = _frozen_cut(name, target, restore, recorded, record)
        labels, id_key = None, None
    if restore:
        _same_images(name, manifest, store)
    earlier = [r for r in cut_records(artifacts, name) if cut or r.cut_at <= facts.cut_at]
    conflicts = rel.cross_release_conflicts(manifest, facts.split_by, earlier)
    with artifacts.staged_dir(layout.release_dir(name), seal=layout.MANIFEST) as staged:
        staging = staged.path
        built = write_release(staging, manifest, facts, store, tax)
        found = rel.release_findings(
            manifest, built.sheet["manifest_sha256"], sealed_as, file_digests(staging),
            None if cut or restore else file_digests(target), _labelled_inputs(labels) if cut else None,
            built.names, test_zip_entries(staging), tax.species_codes, built.audit["straddling_train_and_test"],
            facts.split_by, built.camtrap)
        result = dg.MaterializeResult(
            data_version=dg.DataVersion(found.manifest_sha256),
            metadata={"path": dg.MetadataValue.path(str(target)), "manifest_sha256": found.manifest_sha256,
                      "images": len(manifest), **{f"{s}_images": found.per_split.get(s, 0) for s in rel.RELEASE_SPLITS},
                      "cut": cut, "restored": restore, "near_duplicate_pairs": built.audit["pairs"],
                      "labels_fingerprint": facts.labels_fingerprint, "profile": facts.profile,
                      "datasheet": dg.MetadataValue.md(rel.datasheet_markdown(built.sheet))},
            check_results=_check_results(found, built, cut, _hidden_labels_verdict(conflicts, earlier)))
        for event in publish(context, result):
            if isinstance(event, dg.MaterializeResult) and (cut or restore):  # checks passed: visible whole
                staged.publish()
            if isinstance(event, dg.MaterializeResult):  # what a lost folder is rebuilt from (kept once)
                record_cut(artifacts, name, rel.manifest_bytes(manifest), facts.to_json(), id_key)
            yield event


def _new_cut(context: dg.AssetExecutionContext, config: ReleaseConfig, store, tax, detector: DetectorResource,
             label_cache: LabelCache, artifacts: ArtifactStore, parquet_io_manager: ParquetIOManager,
             detection_labels: pd.DataFrame, benchmark_splits: pd.DataFrame):
    """(labels as kept, manifest, facts, id key) of a first cut: today's splits and labels (or the thesis
    profile's membership), less any label another cut keeps hidden, under a new key for public ids."""
    name = context.partition_key
    labels, splits = detection_labels, benchmark_splits
    facts = _facts(context, benchmark_splits, tax.class_names, config.max_distance)
    facts = replace(facts, licence=config.licence.strip() or settings.data_licence() or None)
    if config.profile == "thesis":
        image_metadata = parquet_io_manager.load_materialized("image_metadata", context.instance, park_day_partitions)
        labels, splits, facts = _thesis_cut(context, facts, image_metadata, store, tax, detector, label_cache)
    rows = rel.manifest_rows(labels, splits, lambda p: rel.sha256_hex(store.read(p)))
    binding = cut_records(artifacts, name)
    if config.profile != "default":  # today's test sets too: the default release cut after it will hide them
        binding.append(rel.current_splits_record(benchmark_splits))
    rows, kept = rel.keep_hidden_labels_hidden(rows, facts.split_by, binding)
    facts, id_key = replace(facts, cross_release=kept), rel.new_id_key()
    if facts.profile_rules:  # the thesis split's burst leak as published, after what was withheld
        split = {**facts.profile_rules["split"], **burst_leak(rows)}
        facts = replace(facts, profile_rules={**facts.profile_rules, "split": split})
    return _as_kept(labels, rows), rel.build_manifest(rows, id_key), facts, id_key


def _frozen_cut(name: str, target, restore: bool, recorded: str | None, record):
    """(manifest, facts, the manifest sha256 it was sealed as) of a release cut before: from its folder, or
    from its hidden record when the folder is lost."""
    manifest_data, facts_text = ((target / layout.MANIFEST).read_bytes(), (target / layout.FACTS).read_text()) \
        if not restore else _recorded_cut(name, recorded, record)
    # The instance's record of the cut is the truth; the folder's own seal only for a release it never recorded.
    sealed_as = recorded or (record and rel.sha256_hex(record.manifest)) or \
        (target / layout.MANIFEST_SHA256).read_text().split()[0]
    return rel.read_manifest(manifest_data), rel.ReleaseFacts.from_json(facts_text), sealed_as


def _as_kept(labels: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """`labels` as `keep_hidden_labels_hidden` kept the rows (withheld images out, moved ones re-split):
    the labelled inputs the cut's counts are checked against."""
    split = dict(zip(rows.path, rows.split))
    kept = labels[labels.path.isin(split) | ~labels.split.isin(rel.RELEASE_SPLITS)].copy()
    kept["split"] = [split.get(p, s) for p, s in zip(kept.path, kept.split)]
    return kept


def _recorded_cut(name: str, recorded: str | None, record) -> tuple[bytes, str]:
    """(manifest, release.json) of a cut whose folder is lost, from its hidden record; a Failure naming why
    when that record is gone or is not the cut the instance recorded."""
    if record is None:
        raise dg.Failure(f"release {name} was cut (the instance records manifest sha256 {recorded}) but its folder "
                         "and its hidden record are gone: it cannot be rebuilt, and is never cut again with other "
                         "content; restore the folder from a backup")
    if recorded is not None and rel.sha256_hex(record.manifest) != recorded:
        raise dg.Failure(f"release {name}: its hidden record (manifest sha256 {rel.sha256_hex(record.manifest)}) is "
                         f"not the cut the instance recorded ({recorded}); nothing rebuilt")
    return record.manifest, record.facts


def _same_images(name: str, manifest: pd.DataFrame, store) -> None:
    """A lost release is rebuilt only from the very images it was cut from (nothing else compares them)."""
    def digest(path: str) -> str | None:
        data = store.read_optional(path)
        return None if data is None else rel.sha256_hex(data)
    differ = [p for p, sha in zip(manifest.path, manifest.sha256) if digest(p) != sha]
    if differ:
        raise dg.Failure(f"release {name} was cut before and its folder is lost, but {len(differ)} of its images are "
                         f"gone or changed in the archive (e.g. {differ[0]}): it cannot be rebuilt byte for byte, "
                         "and is never cut again with other content; restore the folder or those images")


def _hidden_labels_verdict(conflicts: pd.DataFrame, earlier: list) -> Verdict:
    """No label hidden in an earlier cut is published here, and none hidden here was published there
    (a by-image split's test images, whose labels are not secret, are only counted)."""
    binding = conflicts[conflicts.binding]
    return verdict(binding.empty, compared_with=dg.MetadataValue.json(sorted(r.release for r in earlier)),
                   conflicts=len(binding), test_labels_published_elsewhere=int((~conflicts.binding).sum()),
                   sample=dg.MetadataValue.md(binding.head(10).to_markdown() if len(binding) else "none"))
