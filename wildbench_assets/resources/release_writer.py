"""Writing a release's files (archive images into ZIPs, perceptual hashes, Camtrap DP) into a staging
folder (`atomic.staged_dir`) that becomes the release only when its checks pass."""

import io
import json
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import pandas as pd

from wildbench_assets import layout
from wildbench_assets.lib import camtrap_dp, leak_audit
from wildbench_assets.lib import releases as rel
from wildbench_assets.lib.dataset_requests import Withholding
from wildbench_assets.lib.datasets import download_members, dumps
from wildbench_assets.lib.image_header import strip_metadata
from wildbench_assets.lib.release_docs import release_docs
from wildbench_assets.lib.zips import ZipMember, write_zip
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
    (folder / layout.MANIFEST).write_bytes(manifest_data)
    (folder / layout.MANIFEST_SHA256).write_text(f"{rel.sha256_hex(manifest_data)}  {layout.MANIFEST}\n")
    (folder / layout.FACTS).write_text(facts.to_json())
    (folder / layout.DOWNLOADS).mkdir()
    (folder / layout.TRUTH).parent.mkdir()
    names, zipped = {}, {}  # zipped: archive path -> (public ZIP, path inside it), for Camtrap DP's filePath
    docs = release_docs(manifest, facts, rel.sha256_hex(manifest_data))  # the same bytes in every download
    shared = [ZipMember(name, text=docs[name]) for name in rel.TRAINING_DOCS]
    for split in rel.PUBLIC_SPLITS:
        members = download_members(rel.training_rows(manifest, split, class_names), class_names, split, shared,
                                   {"release": facts.release, "split": split})
        zipped.update({m.source: (f"{split}.zip", m.name) for m in members if m.source})
        names[split] = write_zip(str(folder / layout.download_name(split)), members, store.open_stream)
    for split in rel.HIDDEN_SPLITS:  # without EXIF: a camera's make or serial would tell its park
        names[split] = write_zip(str(folder / layout.download_name(split)),
                                 rel.public_test_members(manifest, split, docs), open_stripped(store))

    (folder / layout.TRUTH).write_text(dumps(rel.hidden_truth(
        manifest, class_names, by_public_id=rel.truth_keyed_by_public_id(facts.code_version))))

    hashes = [leak_audit.perceptual_hash(store.read(path)) for path in manifest.path]
    pairs = leak_audit.cross_split_pairs(manifest[["path", "split", "camera"]], hashes, max_distance)
    pairs.to_csv(folder / layout.LEAK_AUDIT, index=False, lineterminator="\n")
    audit = {"images_hashed": sum(h is not None for h in hashes), "max_distance": max_distance, "pairs": len(pairs),
             "straddling_train_and_test": leak_audit.straddling(pairs),
             "straddling_train_and_test_seen": leak_audit.straddling(pairs, ("test_seen",)),  # expected: same cameras
             "hash": "pHash (imagehash) of a Pillow draft decode (JPEG DCT at 1/8 scale or less)"}

    public = manifest[manifest.split.isin(rel.PUBLIC_SPLITS)]
    try:
        package = camtrap_dp.build_package(public, taxonomy, facts.release, facts.cut_at, zipped, facts.detector)
    except camtrap_dp.CamtrapDPUnavailable as err:
        camtrap = {"written": False, "problems": [str(err)]}
    else:
        (folder / layout.CAMTRAP_DP).mkdir()
        for name, data in package.items():
            (folder / layout.CAMTRAP_DP / name).write_bytes(data)
        camtrap = {"written": True, "problems": camtrap_dp.validate_package(folder / layout.CAMTRAP_DP),
                   "undated_left_out": int((public.captured_at == "").sum())}

    sheet = rel.datasheet(manifest, facts, rel.sha256_hex(manifest_data), audit)
    (folder / layout.DATASHEET).write_text(json.dumps(sheet, indent=1, sort_keys=True) + "\n")
    (folder / layout.DATASHEET_MD).write_text(rel.datasheet_markdown(sheet))
    return BuiltRelease(names, audit, pairs, camtrap, sheet)


def file_digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def test_zip_entries(folder: Path) -> dict[str, list[str]]:
    """split -> entry names of its public test download."""
    entries = {}
    for split in rel.HIDDEN_SPLITS:
        with zipfile.ZipFile(folder / layout.download_name(split)) as archive:
            entries[split] = archive.namelist()
    return entries




def open_stripped(store):
    """An `open_source` for ZIP writers that hands out images without their EXIF (public test sets)."""
    return lambda key: io.BytesIO(strip_metadata(store.read(key)))


@lru_cache(maxsize=256)
def _manifest_of(manifest: Path, _stamp: tuple[int, int]) -> pd.DataFrame:
    return rel.read_manifest(manifest.read_bytes())[["split", "path", "sha256", "camera", "captured_at", "sequence"]]


# --- the record of every cut, kept outside the release folder (never published) -----------------------



@dataclass(frozen=True)
class CutRecordFiles:
    manifest: bytes
    facts: str
    id_key: bytes | None  # None: a release recorded after the fact (cut before records were kept)


def read_cut_record(artifacts, release: str) -> CutRecordFiles | None:
    folder = artifacts.path(layout.cut_record_dir(release))  # what a lost release is rebuilt from
    if not (folder / layout.MANIFEST).is_file() or not (folder / layout.FACTS).is_file():
        return None
    key = folder / layout.ID_KEY
    return CutRecordFiles((folder / layout.MANIFEST).read_bytes(), (folder / layout.FACTS).read_text(),
                          bytes.fromhex(key.read_text().strip()) if key.is_file() else None)


def record_cut(artifacts, release: str, manifest_data: bytes, facts_json: str, id_key: bytes | None) -> None:
    """Keep the cut's membership, facts and id key in the hidden store; once written, never replaced."""
    if read_cut_record(artifacts, release) is not None:
        return
    with artifacts.writing_dir(layout.cut_record_dir(release)) as folder:
        (folder / layout.FACTS).write_text(facts_json)
        if id_key is not None:
            (folder / layout.ID_KEY).write_text(id_key.hex() + "\n")
        (folder / layout.MANIFEST).write_bytes(manifest_data)


def cut_records(artifacts, exclude: str) -> list[rel.CutRecord]:
    """Every cut release but `exclude`: its hidden record, or (a release cut before records were kept)
    its folder; a release whose folder was lost still counts. Then what each custom request handed out
    (`handed_out_records`): public with labels, like a release's train set."""
    found: dict[str, tuple[bytes, str]] = {}
    for root in (layout.CUT_RECORDS, layout.RELEASES):  # listed, then only the two small files fetched (not the ZIPs)
        names = sorted(filter(None, (layout.release_of(o.key, layout.MANIFEST, root)
                                     for o in artifacts.list(f"{root}/"))))
        for name in names:
            manifest = artifacts.path(f"{root}/{name}/{layout.MANIFEST}")
            facts = artifacts.path(f"{root}/{name}/{layout.FACTS}")
            if name != exclude and name not in found and facts.is_file():
                found[name] = (manifest.read_bytes(), facts.read_text())
    records = []
    for name, (data, text) in sorted(found.items()):
        facts = rel.ReleaseFacts.from_json(text)
        records.append(rel.CutRecord(name, rel.read_manifest(data), facts.split_by, facts.cut_at))
    return records + handed_out_records(artifacts)


# --- what custom requests handed out with labels: public, like an earlier release's train set ------------

# layout.handed_out_file: path, split (train), sha256, camera, captured_at, at
_HANDED_OUT_COLUMNS = ["path", "split", "sha256", "camera", "captured_at", "at"]


def record_handed_out(artifacts, request_id: str, images: pd.DataFrame) -> None:
    """Record `images` (path, sha256, camera, captured_at), just handed out with labels by a request, in the
    hidden store; kept with what earlier runs of the request handed out (a ZIP once downloaded stays public)."""
    key = layout.handed_out_file(request_id)
    at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    rows = images.assign(split="train", at=at)
    rows["captured_at"] = pd.to_datetime(rows.captured_at, errors="coerce").dt.strftime("%Y-%m-%dT%H:%M:%S")
    rows = rows.reindex(columns=_HANDED_OUT_COLUMNS).fillna("")
    path = artifacts.path(key)
    if path.is_file():
        rows = pd.concat([pd.read_csv(path, dtype=str, keep_default_na=False), rows]).drop_duplicates("path")
    with artifacts.writing(key) as tmp:
        rows.to_csv(tmp, index=False, lineterminator="\n")


def handed_out_records(artifacts) -> list[rel.CutRecord]:
    """Each request's handed-out images as a record a release cut honours like an earlier release's public
    sets (`lib.releases.cross_release_conflicts`): never hidden later. Cut at: its first hand-out."""
    records = []
    for obj in artifacts.list(f"{layout.HANDED_OUT}/"):
        parts = obj.key[len(layout.HANDED_OUT) + 1:].split("/")
        if obj.key != layout.handed_out_file(parts[0]):
            continue
        path = artifacts.path(obj.key)
        if path.is_file():
            rows = pd.read_csv(path, dtype=str, keep_default_na=False)
            records.append(rel.CutRecord(f"request {parts[0]}", rows, "camera", min(rows["at"], default="")))
    return records


def hidden_sets(artifacts, current_splits) -> Withholding:
    """What requests must withhold (`lib.dataset_requests.Withholding`): what the manifest of every cut
    release hides, from its hidden record (so a release whose folder was lost still counts) or its folder (read
    through the artifact store, once each, cached by mtime and size: the portal asks on every change of its
    form), and `current_splits`, the benchmark_splits tables (None: not made yet), whose train and val
    images are the only ones a request may hand out (none before the splits are made)."""
    manifests: dict[str, str] = {}
    for root in (layout.CUT_RECORDS, layout.RELEASES):
        for obj in artifacts.list(f"{root}/"):
            name = layout.release_of(obj.key, layout.MANIFEST, root)
            if name:
                manifests.setdefault(name, obj.key)  # the record first; a folder's manifest is its seal
    found = []
    for key in manifests.values():
        path = artifacts.path(key)
        if path.is_file():
            stat = path.stat()
            found.append(_manifest_of(path, (stat.st_mtime_ns, stat.st_size)))
    digests = frozenset(d for t in found for d in t.sha256[t.split.isin(rel.HIDDEN_SPLITS)] if d)
    tables = [t for t in current_splits if t is not None and not t.empty]
    assigned: frozenset[str] = frozenset()
    if tables:
        current = pd.concat(tables, ignore_index=True)
        found.append(current)
        assigned = frozenset(current.path[current.split.isin(rel.PUBLIC_SPLITS)])
    return Withholding(found, assigned, digests)
