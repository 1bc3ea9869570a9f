"""Writing a release's files (archive images into ZIPs, perceptual hashes, Camtrap DP) into a staging
folder (`atomic.staged_dir`) that becomes the release only when its checks pass."""

import io
import json
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd

from wildbench_assets.lib import camtrap_dp, leak_audit
from wildbench_assets.lib import releases as rel
from wildbench_assets.lib.datasets import archive_members, dumps
from wildbench_assets.lib.image_header import strip_jpeg_metadata
from wildbench_assets.lib.zips import write_zip
from wildbench_assets.resources.artifacts import sha256_file


@dataclass(frozen=True)
class BuiltRelease:
    """What writing a release produced, for its checks."""

    names: dict[str, list[str]]   # split -> entries of its download ZIP
    audit: dict                   # leak audit summary
    pairs: pd.DataFrame           # near-duplicate pairs across splits
    camtrap: dict                 # written, problems
    sheet: dict                   # the datasheet


def write_release(folder: Path, manifest: pd.DataFrame, facts: rel.ReleaseFacts, store, taxonomy) -> BuiltRelease:
    """Write every derived file of the release into `folder`; return what the checks need."""
    class_names, max_distance = facts.class_names, facts.max_distance  # as frozen at the cut
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
    for split in rel.HIDDEN_SPLITS:  # without EXIF: a camera's make or serial would tell its park
        names[split] = write_zip(str(downloads / f"{split}.zip"), rel.public_test_members(manifest, split),
                                 open_stripped(store))

    (hidden / "truth.coco.json").write_text(dumps(rel.hidden_truth(
        manifest, class_names, by_public_id=rel.truth_keyed_by_public_id(facts.code_version))))

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
    return BuiltRelease(names, audit, pairs, camtrap, sheet)


def file_digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def test_zip_entries(folder: Path) -> dict[str, list[str]]:
    """split -> entry names of its public test download."""
    entries = {}
    for split in rel.HIDDEN_SPLITS:
        with zipfile.ZipFile(folder / "downloads" / f"{split}.zip") as archive:
            entries[split] = archive.namelist()
    return entries




def open_stripped(store):
    """An `open_source` for ZIP writers that hands out images without their EXIF (public test sets)."""
    return lambda key: io.BytesIO(strip_jpeg_metadata(store.read(key)))


@lru_cache(maxsize=256)
def _manifest_of(manifest: Path, _stamp: tuple[int, int]) -> pd.DataFrame:
    return rel.read_manifest(manifest.read_bytes())[["split", "path", "camera", "captured_at", "sequence"]]


# --- the record of every cut, kept outside the release folder (never published) -----------------------

RECORDS = "hidden/releases"  # <id>/manifest.csv, release.json, id_key: what a lost release is rebuilt from


@dataclass(frozen=True)
class CutRecordFiles:
    manifest: bytes
    facts: str
    id_key: bytes | None  # None: a release recorded after the fact (cut before records were kept)


def read_cut_record(artifacts, release: str) -> CutRecordFiles | None:
    folder = artifacts.path(f"{RECORDS}/{release}")
    if not (folder / "manifest.csv").is_file() or not (folder / "release.json").is_file():
        return None
    key = folder / "id_key"
    return CutRecordFiles((folder / "manifest.csv").read_bytes(), (folder / "release.json").read_text(),
                          bytes.fromhex(key.read_text().strip()) if key.is_file() else None)


def record_cut(artifacts, release: str, manifest_data: bytes, facts_json: str, id_key: bytes | None) -> None:
    """Keep the cut's membership, facts and id key in the hidden store; once written, never replaced."""
    if read_cut_record(artifacts, release) is not None:
        return
    with artifacts.writing_dir(f"{RECORDS}/{release}") as folder:
        (folder / "release.json").write_text(facts_json)
        if id_key is not None:
            (folder / "id_key").write_text(id_key.hex() + "\n")
        (folder / "manifest.csv").write_bytes(manifest_data)


def cut_records(artifacts, exclude: str) -> list[rel.CutRecord]:
    """Every cut release but `exclude`: its hidden record, or (a release cut before records were kept)
    its folder; a release whose folder was lost still counts."""
    found: dict[str, tuple[bytes, str]] = {}
    for root in (RECORDS, "releases"):  # listed, then only the two small files fetched (not the ZIPs)
        names = sorted({o.key.split("/")[-2] for o in artifacts.list(f"{root}/")
                        if o.key.endswith("/manifest.csv") and o.key.count("/") == root.count("/") + 2})
        for name in names:
            manifest = artifacts.path(f"{root}/{name}/manifest.csv")
            facts = artifacts.path(f"{root}/{name}/release.json")
            if name != exclude and name not in found and not name.startswith(".") and facts.is_file():
                found[name] = (manifest.read_bytes(), facts.read_text())
    records = []
    for name, (data, text) in sorted(found.items()):
        facts = rel.ReleaseFacts.from_json(text)
        records.append(rel.CutRecord(name, rel.read_manifest(data), facts.split_by, facts.cut_at))
    return records


def hidden_sets(artifacts, current_splits) -> list[pd.DataFrame]:
    """What requests must withhold from (`lib.dataset_requests.withheld_mask`): the manifest of every cut
    release, from its hidden record (so a release whose folder was lost still counts) or its folder (read
    through the artifact store, once each, cached by mtime and size: the portal asks on every change of its
    form), and `current_splits`, the benchmark_splits tables (None: not made yet)."""
    manifests: dict[str, str] = {}
    for root in (RECORDS, "releases"):
        for obj in artifacts.list(f"{root}/"):
            parts = obj.key[len(root) + 1:].split("/")
            if len(parts) == 2 and parts[1] == "manifest.csv" and not parts[0].startswith("."):
                manifests.setdefault(parts[0], obj.key)  # the record first; a folder's manifest is its seal
    found = []
    for key in manifests.values():
        path = artifacts.path(key)
        if path.is_file():
            stat = path.stat()
            found.append(_manifest_of(path, (stat.st_mtime_ns, stat.st_size)))
    tables = [t for t in current_splits if t is not None and not t.empty]
    if tables:
        found.append(pd.concat(tables, ignore_index=True))
    return found
