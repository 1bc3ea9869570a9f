"""Benchmark releases: frozen, versioned, with hidden test labels, a datasheet, a leak audit and Camtrap DP."""


import json
import os
import shutil
import tempfile
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pandas as pd

from wildbench_assets.assets.checks import publish
from wildbench_assets.config import ReleaseConfig
from wildbench_assets.ingest_state import labels_fingerprint
from wildbench_assets.lib import camtrap_dp, leak_audit
from wildbench_assets.lib import releases as rel
from wildbench_assets.lib.datasets import archive_members, dumps
from wildbench_assets.lib.zips import write_zip
from wildbench_assets.partitions import release_partitions
from wildbench_assets.resources.archive import ArchiveResource
from wildbench_assets.resources.artifacts import ArtifactStore, sha256_file
from wildbench_assets.resources.atomic import TEMP_PREFIX, sweep_stale_temps
from wildbench_assets.resources.taxonomy import TaxonomyResource

CODE_VERSION = "1"
RELEASE_CHECKS = {  # name -> blocking
    "manifest_sealed": True, "reproducible": True, "counts_add_up": True, "public_test_has_no_labels": True,
    "no_near_duplicates_across_splits": True, "camtrap_dp_valid": True,
}
FROZEN = ("manifest.csv", "manifest.sha256", "release.json")  # written once, at the cut


def _facts(context: dg.AssetExecutionContext, splits: pd.DataFrame) -> rel.ReleaseFacts:
    """What the release records about how its inputs were made, read from the instance and the tables."""
    records = context.instance.fetch_materializations(dg.AssetKey("detection_labels"), limit=3).records
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
        split_seed=int(splits.split_seed.iloc[0]) if len(splits) else 0, burst_rules=rules)


def _build(folder: Path, manifest: pd.DataFrame, facts: rel.ReleaseFacts, store, taxonomy, max_distance: int) -> dict:
    """Write every derived file of the release into `folder`; return what the checks need."""
    class_names = taxonomy.class_names
    manifest_data = rel.manifest_bytes(manifest)
    (folder / "manifest.csv").write_bytes(manifest_data)
    (folder / "manifest.sha256").write_text(f"{rel.sha256_hex(manifest_data)}  manifest.csv\n")
    (folder / "release.json").write_text(facts.to_json())
    downloads, hidden = folder / "downloads", folder / "hidden"
    downloads.mkdir()
    hidden.mkdir()
    names = {}
    for split in rel.PUBLIC_SPLITS:
        members = archive_members(rel.training_rows(manifest, split, class_names), class_names, ("yolo", "voc"),
                                  {"release": facts.release, "split": split})
        names[split] = write_zip(str(downloads / f"{split}.zip"), members, store.open_stream)
    for split in rel.HIDDEN_SPLITS:
        names[split] = write_zip(str(downloads / f"{split}.zip"), rel.public_test_members(manifest, split),
                                 store.open_stream)

    (hidden / "truth.coco.json").write_text(dumps(rel.hidden_truth(manifest, class_names)))

    hashes = [leak_audit.perceptual_hash(store.read(path)) for path in manifest.path]
    pairs = leak_audit.cross_split_pairs(manifest[["path", "split", "camera"]], hashes, max_distance)
    pairs.to_csv(folder / "leak_audit.csv", index=False, lineterminator="\n")
    audit = {"images_hashed": sum(h is not None for h in hashes), "max_distance": max_distance, "pairs": len(pairs),
             "straddling_train_and_test": leak_audit.straddling(pairs),
             "straddling_train_and_test_seen": leak_audit.straddling(pairs, ("test_seen",)),  # expected: same cameras
             "hash": "pHash (imagehash) of a Pillow draft decode (JPEG DCT at 1/8 scale or less)"}

    public = manifest[manifest.split.isin(rel.PUBLIC_SPLITS)]
    try:
        package = camtrap_dp.build_package(public, taxonomy, facts.release, facts.cut_at)
    except camtrap_dp.CamtrapDPUnavailable as err:
        camtrap = {"written": False, "problems": [str(err)]}
    else:
        (folder / "camtrap-dp").mkdir()
        for name, data in package.items():
            (folder / "camtrap-dp" / name).write_bytes(data)
        camtrap = {"written": True, "problems": camtrap_dp.validate_package(folder / "camtrap-dp"),
                   "undated_left_out": int((public.captured_at == "").sum())}

    sheet = rel.datasheet(manifest, facts, rel.sha256_hex(manifest_data), audit)
    (folder / "datasheet.json").write_text(json.dumps(sheet, indent=1, sort_keys=True) + "\n")
    (folder / "datasheet.md").write_text(rel.datasheet_markdown(sheet))
    return {"names": names, "audit": audit, "pairs": pairs, "camtrap": camtrap, "sheet": sheet}


def _files(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def _test_zip_problems(folder: Path, taxonomy) -> list[str]:
    problems = []
    for split in rel.HIDDEN_SPLITS:
        with zipfile.ZipFile(folder / "downloads" / f"{split}.zip") as archive:
            problems += [f"{split}.zip: {n}" for n in rel.label_leaks(archive.namelist(), taxonomy.species_codes)]
    return problems


@dg.asset(
    partitions_def=release_partitions,
    ins={"detection_labels": dg.AssetIn(partition_mapping=dg.AllPartitionMapping()),
         "benchmark_splits": dg.AssetIn(partition_mapping=dg.AllPartitionMapping())},
    group_name="releases",
    kinds={"csv", "zip"},
    code_version=CODE_VERSION,
    check_specs=[dg.AssetCheckSpec(name, asset="benchmark_release", blocking=blocking)
                 for name, blocking in RELEASE_CHECKS.items()],
)
def benchmark_release(context: dg.AssetExecutionContext, config: ReleaseConfig, archive: ArchiveResource,
                      artifacts: ArtifactStore, taxonomy: TaxonomyResource, detection_labels: pd.DataFrame,
                      benchmark_splits: pd.DataFrame):
    """One frozen release (`releases/<id>/`): the manifest of train/val/test membership (path, content
    sha256, species, park, camera, sequence, split, boxes) sealed by its sha256; a datasheet (md + json);
    downloads (train/val ZIPs with labels, a test ZIP of images named by public id with no label); the
    hidden test truth submissions are scored against; a perceptual-hash leak audit; Camtrap DP 1.0.
    The first materialization cuts it; every later one rebuilds it from its own frozen manifest and
    must reproduce every byte, or fails naming what differs. Images arriving later change only the next."""
    store, tax = archive.open(), taxonomy.load()
    target = artifacts.path(f"releases/{context.partition_key}")
    cut = not (target / "manifest.csv").exists()
    if cut:
        manifest = rel.build_manifest(detection_labels, benchmark_splits,
                                      lambda path: rel.sha256_hex(store.read(path)))
        facts = _facts(context, benchmark_splits)
        sealed_as = None
    else:
        data = (target / "manifest.csv").read_bytes()
        manifest, facts = rel.read_manifest(data), rel.ReleaseFacts.from_json((target / "release.json").read_text())
        sealed_as = (target / "manifest.sha256").read_text().split()[0]

    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_temps(target.parent)
    staging = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-", dir=target.parent))
    try:
        built = _build(staging, manifest, facts, store, tax, config.max_distance)
        manifest_sha = built["sheet"]["manifest_sha256"]
        rebuilt, stored = _files(staging), ({} if cut else _files(target))
        differs = [] if cut else sorted(n for n in set(rebuilt) | set(stored) if rebuilt.get(n) != stored.get(n))
        per_split = manifest.split.value_counts().to_dict()
        expected = ({s: int((rows.label_status.isin(["labelled", "empty"])).sum())
                     for s, rows in detection_labels.groupby("split")} if cut and len(detection_labels) else per_split)
        zipped = {s: sum(n.lower().endswith(".jpg") for n in names) for s, names in built["names"].items()}
        leak_blocks = facts.split_by != "image"  # the thesis's random split leaks by design: reported, not blocked
        camtrap = built["camtrap"]
        checks = [
            dg.AssetCheckResult(check_name="manifest_sealed", passed=sealed_as in (None, manifest_sha),
                                metadata={"manifest_sha256": manifest_sha, "sealed_as": sealed_as or manifest_sha}),
            dg.AssetCheckResult(check_name="reproducible", passed=not differs,
                                metadata={"rebuilt": not cut, "files_that_differ": dg.MetadataValue.json(differs)}),
            dg.AssetCheckResult(check_name="counts_add_up",
                                passed=all(per_split.get(s, 0) == expected.get(s, 0) == zipped.get(s, 0)
                                           for s in rel.RELEASE_SPLITS),
                                metadata={"manifest": dg.MetadataValue.json(per_split),
                                          "labelled_inputs": dg.MetadataValue.json(expected),
                                          "zipped_images": dg.MetadataValue.json(zipped)}),
            dg.AssetCheckResult(check_name="public_test_has_no_labels",
                                passed=not _test_zip_problems(staging, tax),
                                metadata={"suspect_entries": dg.MetadataValue.json(
                                    _test_zip_problems(staging, tax)[:20])}),
            dg.AssetCheckResult(check_name="no_near_duplicates_across_splits",
                                passed=built["audit"]["straddling_train_and_test"] == 0,
                                severity=dg.AssetCheckSeverity.ERROR if leak_blocks else dg.AssetCheckSeverity.WARN,
                                metadata={**built["audit"], "grouping": facts.split_by,
                                          "pairs_sample": dg.MetadataValue.md(built["pairs"].head(10).to_markdown())}),
            dg.AssetCheckResult(check_name="camtrap_dp_valid", passed=camtrap["written"] and not camtrap["problems"],
                                severity=dg.AssetCheckSeverity.ERROR if camtrap["written"]
                                else dg.AssetCheckSeverity.WARN,
                                metadata={"written": camtrap["written"],
                                          "problems": dg.MetadataValue.json(camtrap["problems"][:20])}),
        ]
        result = dg.MaterializeResult(
            data_version=dg.DataVersion(manifest_sha),
            metadata={"path": dg.MetadataValue.path(str(target)), "manifest_sha256": manifest_sha,
                      "images": len(manifest), **{f"{s}_images": per_split.get(s, 0) for s in rel.RELEASE_SPLITS},
                      "cut": cut, "near_duplicate_pairs": built["audit"]["pairs"],
                      "labels_fingerprint": facts.labels_fingerprint,
                      "datasheet": dg.MetadataValue.md(rel.datasheet_markdown(built["sheet"]))},
            check_results=checks)
        for event in publish(context, result):
            if isinstance(event, dg.MaterializeResult) and cut:  # checks passed: the cut becomes visible whole
                os.chmod(staging, 0o755)
                staging.rename(target)
            yield event
    finally:
        shutil.rmtree(staging, ignore_errors=True)

