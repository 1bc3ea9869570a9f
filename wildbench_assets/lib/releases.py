"""Benchmark releases: the frozen membership of train / val / test (the manifest), its datasheet, the
public ids test images go by, and the hidden truth submissions are scored against.

A release is the manifest plus a few facts fixed at the cut (`ReleaseFacts`); every other file of it
(datasheet, downloads, Camtrap DP, leak audit) is derived from those two by pure functions, so a
re-materialization rebuilds them and compares bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import posixpath
import re
import secrets
from dataclasses import asdict, dataclass, fields

import pandas as pd

from wildbench_assets.lib.datasets import coco_document, usable
from wildbench_assets.lib.detectors import classified_by
from wildbench_assets.lib.image_header import IMAGE_SUFFIXES
from wildbench_assets.lib.scoring import ScoringError
from wildbench_assets.lib.splits import SplitPlan, leakage_groups
from wildbench_assets.lib.zips import ZipMember

RELEASE_NAME = re.compile(r"[0-9A-Za-z][0-9A-Za-z._-]{0,63}")  # a release id: a folder name, nothing more
RELEASE_SUFFIX = ".release"  # `<submission id>.release` beside a submission names the release it is scored on
RELEASE_SPLITS = ("train", "val", "test", "test_seen")
PUBLIC_SPLITS = ("train", "val")       # shipped with labels; test images ship without
HIDDEN_SPLITS = ("test", "test_seen")  # unseen cameras; training cameras, no shared sequence
MANIFEST_COLUMNS = ["public_id", "split", "path", "sha256", "park", "camera", "sequence", "captured_at", "species",
                    "width", "height", "label_status", "boxes"]


@dataclass(frozen=True)
class ReleaseFacts:
    """What a release records at its cut besides its membership; frozen with it."""

    release: str
    cut_at: str                 # ISO time of the cut (Camtrap DP `created`)
    labels_fingerprint: str     # data versions of the labelled splits it was cut from
    code_version: str
    detector: str               # identity of the detector that made the boxes
    label_threshold: float | None
    split_by: str
    split_seed: int
    burst_rules: dict           # park -> {"mode", "interval_s"}
    class_names: list[str]      # the class-index order of its labels
    max_distance: int           # the leak audit's threshold
    profile: str = "default"    # lib/profiles: default | thesis
    profile_rules: dict | None = None  # the rules a non-default profile used (burst, split, boxes, audit)
    cross_release: dict | None = None  # what was kept public or withheld so no other release's hidden labels leak
    licence: str | None = None  # the data's terms as the operator stated them at the cut (None: not stated)

    def to_json(self) -> str:
        facts = asdict(self)
        if self.profile == "default" and self.profile_rules is None:  # as before profiles existed
            del facts["profile"], facts["profile_rules"]
        if self.cross_release is None:
            del facts["cross_release"]
        if self.licence is None:
            del facts["licence"]
        return json.dumps(facts, indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ReleaseFacts:
        """The facts of a `release.json`; a ValueError naming what is missing if it is not one."""
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in json.loads(text).items() if k in known})
        except TypeError as err:  # a required fact missing (a release.json from before it was recorded)
            raise ValueError(f"not a complete release.json: {err}") from err


def named_release(data: bytes) -> str:
    """The release a submission names (`<id>.release`: the release id, one line); a ScoringError if that
    is not a release id."""
    try:
        name = data.decode("utf-8").strip()
    except UnicodeDecodeError as err:
        raise ScoringError("the .release file is not UTF-8 text") from err
    if not RELEASE_NAME.fullmatch(name):
        raise ScoringError(f"the .release file names {name[:80]!r}, not a release id (e.g. 2026.11)")
    return name


def new_id_key() -> bytes:
    """A release's secret for its public ids: random, kept only in the hidden record of its cut."""
    return secrets.token_bytes(32)


def public_ids(sha256: pd.Series, key: bytes | None = None) -> pd.Series:
    """`wb` + 16 hex digits of HMAC-SHA256(`key`, the image's content hash): says nothing about park,
    species or camera, and no published digest (train ZIPs list theirs) leads to it without the
    release's secret key. `key` None: the bare digest prefix (the current splits' working ZIPs only).
    Byte-identical images share a digest; the second and later (in the given order) get `-2`, `-3`, ..."""
    digests = sha256.astype(str)
    if key is not None:
        digests = digests.map(lambda d: hmac.new(key, d.encode(), hashlib.sha256).hexdigest())
    base = "wb" + digests.str[:16]
    rank = base.groupby(base).cumcount()
    return base.where(rank == 0, base + "-" + (rank + 1).astype(str))


def with_digests(rows: pd.DataFrame, read_digest) -> pd.DataFrame:
    """`rows` with every `sha256` present: `read_digest(path)` for images the labeller never read
    (empties are not inferred on)."""
    rows = rows.copy()
    unread = rows.sha256.isna() | (rows.sha256.astype(str).str.len() != 64)
    rows.loc[unread, "sha256"] = [read_digest(path) for path in rows.loc[unread, "path"]]
    return rows


# The release's documents every download carries (same bytes in each); the test ZIPs only the label-free ones.
TEST_DOCS = ("README.md", "LICENSE", "classes.txt")
TRAINING_DOCS = ("dataset.yaml", *TEST_DOCS)


def label_leaks(names: list[str], species_codes) -> list[str]:
    """Entries of a public test ZIP that could give a label away: anything but `images/wb<id>.jpg`, the
    image list and the release's label-free documents (`TEST_DOCS`), or a folder named like a species."""
    species, listed = set(species_codes), {"images.csv", *TEST_DOCS}
    leaks = [n for n in names if n not in listed and not (
        n.startswith("images/wb") and is_image_name(n) and n.count("/") == 1)
        or any(part in species for part in n.split("/")[:-1])]
    images = [n for n in names if n not in listed]
    if images != sorted(images):  # any other order can group images by what they show
        leaks.append("entries are not in public-id order")
    return leaks


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def manifest_rows(labels: pd.DataFrame, splits: pd.DataFrame, read_digest) -> pd.DataFrame:
    """The release's candidate rows from the labelled splits (every usable image: labelled animals and
    empties), with capture times and sequences from the splits table. `read_digest(path)`: the sha256
    of an image the labeller never read (empties are not inferred on)."""
    rows = with_digests(usable(labels)[lambda f: f.split.isin(RELEASE_SPLITS)], read_digest)
    times = splits[["path", "captured_at", "sequence"]].drop_duplicates("path")
    return rows.drop(columns=["captured_at", "sequence"], errors="ignore").merge(times, on="path", how="left")


def build_manifest(rows: pd.DataFrame, id_key: bytes) -> pd.DataFrame:
    """The manifest of `manifest_rows` (as kept by `keep_hidden_labels_hidden`): sorted by split, then
    path, public ids keyed by the release's `id_key`."""
    rows = rows.copy()
    rows["split"] = pd.Categorical(rows["split"], categories=list(RELEASE_SPLITS), ordered=True)
    rows = rows.sort_values(["split", "path"], ignore_index=True)
    rows["split"] = rows["split"].astype(str)
    rows["public_id"] = public_ids(rows["sha256"], id_key) if len(rows) else pd.Series(dtype=object)
    captured = pd.to_datetime(rows["captured_at"])
    rows["captured_at"] = captured.dt.strftime("%Y-%m-%dT%H:%M:%S").fillna("")
    rows["width"], rows["height"] = rows["width"].astype(int), rows["height"].astype(int)
    return rows.reindex(columns=MANIFEST_COLUMNS).fillna({"boxes": "[]"})


def manifest_bytes(manifest: pd.DataFrame) -> bytes:
    buffer = io.StringIO()
    manifest.to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue().encode()


def read_manifest(data: bytes) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False).astype({"width": int, "height": int})


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _with_class_index(rows: pd.DataFrame, class_names: list[str]) -> list[dict]:
    index = {code: i for i, code in enumerate(class_names)}
    return [{**row, "class_index": index.get(row["species"], -1)} for row in rows.to_dict("records")]


TRUTH_BY_PUBLIC_ID_SINCE = 3  # the release code version whose hidden truth is keyed by public id


def truth_keyed_by_public_id(code_version: str) -> bool:
    """Whether a release cut by `code_version` has the public-id hidden truth (older cuts are rebuilt
    byte for byte as they were; their submissions are scored by public id all the same)."""
    return not code_version.isdigit() or int(code_version) >= TRUTH_BY_PUBLIC_ID_SINCE


def hidden_truth(manifest: pd.DataFrame, class_names: list[str], by_public_id: bool = True) -> dict:
    """The labelled test sets as one COCO file, images named by public id and marked with their
    `test_set` (and park, for the breakdown): what submissions are scored against. Never published.
    The COCO image id is the public id itself and images are listed in public-id order (keyed-random):
    an integer id in manifest order (split, archive path = park/species) would spell out the labels to
    anyone who learns which public id an integer stands for, and pycocotools breaks ties in that order.
    `by_public_id` False: the integer ids in manifest order of releases cut before (reproducibility)."""
    hidden = manifest[manifest.split.isin(HIDDEN_SPLITS)]
    rows = _with_class_index(hidden.sort_values("public_id", kind="stable") if by_public_id else hidden, class_names)
    document = coco_document(rows, class_names, "+".join(HIDDEN_SPLITS))
    for image, row in zip(document["images"], rows):
        image.update({"file_name": f"{row['public_id']}.jpg", "public_id": row["public_id"], "test_set": row["split"]})
        del image["source_path"]
    if by_public_id:
        numbers = {image["id"]: row["public_id"] for image, row in zip(document["images"], rows)}
        for image in document["images"]:
            image["id"] = numbers[image["id"]]
        for annotation in document["annotations"]:
            annotation["image_id"] = numbers[annotation["image_id"]]
    return document


def truth_groups(document: dict) -> dict[str, set[str]]:
    """Scoring groups of a hidden truth: each test set, and each park within the unseen-camera one."""
    groups: dict[str, set[str]] = {name: set() for name in HIDDEN_SPLITS}
    for image in document["images"]:
        groups[image["test_set"]].add(image["file_name"])
        if image["test_set"] == HIDDEN_SPLITS[0]:
            groups.setdefault(f"park:{image['park']}", set()).add(image["file_name"])
    return groups


def truth_sequences(manifest: pd.DataFrame) -> dict[str, str]:
    """The hidden truth's images (by file name) -> their sequence (burst), from the release's own manifest,
    which records it for every image: what confidence intervals resample (never published)."""
    hidden = manifest[manifest.split.isin(HIDDEN_SPLITS)]
    return {f"{p}.jpg": str(s) for p, s in zip(hidden.public_id, hidden.sequence)}


def public_file_name(public_id: str, path: str) -> str:
    """`images/<public id><the source's extension>` (.jpg, .png, ...)."""
    return f"images/{public_id}{posixpath.splitext(path)[1].lower() or '.jpg'}"


def public_test_members(manifest: pd.DataFrame, split: str, docs: dict[str, str] | None = None) -> list[ZipMember]:
    """The public download of a test set: images named by public id, an image list and the release's
    label-free documents (`docs`: README, LICENSE, class list; `TEST_DOCS` only); no label, no
    park, species, camera or archive path (the writer strips the images' EXIF) — and in public-id order
    (a content hash: random), since the manifest's path order would group the images by park and
    species and, with the datasheet's counts, give every label away."""
    rows = manifest[manifest.split == split].sort_values("public_id")
    names = [public_file_name(r.public_id, r.path) for r in rows.itertuples(index=False)]
    listing = "public_id,file,width,height\n" + "".join(
        f"{r.public_id},{name},{r.width},{r.height}\n" for r, name in zip(rows.itertuples(index=False), names))
    return [*(ZipMember(name, source=r.path) for r, name in zip(rows.itertuples(index=False), names)),
            ZipMember("images.csv", text=listing),
            *(ZipMember(name, text=(docs or {})[name]) for name in TEST_DOCS if name in (docs or {}))]


def training_rows(manifest: pd.DataFrame, split: str, class_names: list[str]) -> list[dict]:
    """A public split's rows as the ZIP and dataset writers of `lib.datasets` take them."""
    return [{**row, "n_boxes": len(json.loads(row["boxes"]))}
            for row in _with_class_index(manifest[manifest.split == split], class_names)]


def counts(manifest: pd.DataFrame) -> dict[str, dict[str, dict[str, int]]]:
    """split -> species -> park -> images."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    for (split, species, park), n in manifest.groupby(["split", "species", "park"]).size().items():
        out.setdefault(split, {}).setdefault(species, {})[park] = int(n)
    return out


SPLIT_MEANINGS = {"camera": "every image of a camera is in one split (test = unseen cameras)",
                  "sequence": "every sequence (burst) of a camera is in one split",
                  "image": "images split one by one (the thesis's random split: leaks bursts)"}


def datasheet(manifest: pd.DataFrame, facts: ReleaseFacts, manifest_sha256: str, leak_summary: dict) -> dict:
    """Everything a researcher needs to know about what the release holds and how it was made."""
    return {
        "release": facts.release,
        "cut_at": facts.cut_at,
        "code_version": facts.code_version,
        "manifest_sha256": manifest_sha256,
        "images": len(manifest),
        "images_per_split": {s: int((manifest.split == s).sum()) for s in RELEASE_SPLITS},
        "counts": counts(manifest),
        "leakage_grouping": {"by": facts.split_by, "seed": facts.split_seed,
                             "meaning": SPLIT_MEANINGS[facts.split_by]},
        "burst_rule": facts.burst_rules,
        "labels": {"detector": facts.detector, "detector_name": classified_by(facts.detector),
                   "label_threshold": facts.label_threshold,
                   "test_labels": "hidden: the public test download holds images, an image list and the "
                                  "release's README, LICENSE and class list only"},
        "leak_audit": leak_summary,
        **({} if facts.profile == "default" else {"profile": facts.profile, "profile_rules": facts.profile_rules}),
        **({} if facts.cross_release is None else {"other_releases": facts.cross_release}),
    }


def datasheet_markdown(sheet: dict) -> str:
    splits = list(RELEASE_SPLITS)
    species = sorted({s for per in sheet["counts"].values() for s in per})
    parks = sorted({p for per in sheet["counts"].values() for by_park in per.values() for p in by_park})
    header = "| species | " + " | ".join(f"{s} {p}" for s in splits for p in parks) + " |"
    rule = "|---|" + "---|" * (len(splits) * len(parks))
    body = [f"| {sp} | " + " | ".join(str(sheet["counts"].get(s, {}).get(sp, {}).get(p, 0)) for s in splits
                                      for p in parks) + " |" for sp in species]
    bursts = "\n".join(f"- {park}: {r['mode']} rule, frames closer than {r['interval_s']} s to the last kept one "
                       "are dropped" for park, r in sorted(sheet["burst_rule"].items()))
    audit = sheet["leak_audit"]
    lines = [
        f"# WildBench release {sheet['release']}",
        "",
        f"Cut {sheet['cut_at']} by code version `{sheet['code_version']}`. "
        f"Manifest sha256 `{sheet['manifest_sha256']}`.",
        "",
        "| split | images |", "|---|---|",
        *(f"| {s} | {n} |" for s, n in sheet["images_per_split"].items()),
        "",
        "## Images per species, park and split", "", header, rule, *body, "",
        "## How it was made", "",
        f"- Leakage grouping: `{sheet['leakage_grouping']['by']}` (seed {sheet['leakage_grouping']['seed']}): "
        f"{sheet['leakage_grouping']['meaning']}.",
        bursts or "- Burst rule: no park in this release",
        f"- Boxes: {sheet['labels'].get('detector_name', 'detector')} (`{sheet['labels']['detector']}`), "
        "kept at confidence >= "
        f"{sheet['labels']['label_threshold']}.",
        f"- Test labels: {sheet['labels']['test_labels']}.",
        f"- Leak audit: {audit.get('pairs', 0)} near-duplicate pairs across splits (perceptual hash distance <= "
        f"{audit.get('max_distance')}), {audit.get('straddling_train_and_test', 0)} of them between train/val "
        "and test.",
        *_other_release_lines(sheet),
        "",
        *_profile_lines(sheet),
        "## How to cite", "",
        "WildBench camera-trap benchmark, release " + sheet["release"] + ", built from the archive and method of "
        "the thesis it reproduces; cite the release id and the manifest sha256 above.",
        "",
    ]
    return "\n".join(lines)


def _other_release_lines(sheet: dict) -> list[str]:
    other = sheet.get("other_releases")
    if not other:
        return []
    return [f"- Other releases ({', '.join(other['compared_with']) or 'none before it'}): no image hidden in one is "
            f"published with a label in another: {other['withheld']['images']} images hidden in another release "
            f"(or of its unseen test cameras or hidden sequences) withheld, {other['kept_public']['images']} images "
            "whose label another release published kept in train instead of a test set."
            + (f" Its test labels are not secret: {other['test_labels_published_elsewhere']} of its test images are "
               "published with a label by another release (the thesis protocol is measured here, not a benchmark); "
               f"so {other.get('withheld_from_test', 0)} test images hidden in another release are withheld too."
               if "test_labels_published_elsewhere" in other else "")]


def _profile_lines(sheet: dict) -> list[str]:
    """The datasheet's profile section: nothing for the default profile (its datasheet is unchanged)."""
    rules = sheet.get("profile_rules")
    if not rules:
        return []
    burst, split = rules["burst"], rules["split"]
    exemption = burst["exemption"]
    return [
        f"## Profile: {sheet['profile']}", "",
        "This release reproduces the thesis's construction, beside the default release cut from the same "
        "archive, so that the optimism of the thesis's protocol is measured: score one model on both.", "",
        f"- Bursts: {burst['mode']} rule over the whole dataset, grouped by {burst['grouped_by']}; frames "
        f"{burst['interval_s']} s or less after the last kept one dropped ({burst['burst_dropped']} of "
        f"{burst['images_in']} images). Exempt: species with fewer images than the median per-species count "
        f"({exemption['median_images_per_species']:g}, {exemption['computed_over']}) rounded to thousands "
        f"({exemption['threshold']:g}): {', '.join(exemption['exempt_species']) or 'none'}.",
        f"- Split: by `{split['by']}` (seed {split['seed']}): {split['meaning']}: "
        f"{split['sequences_in_train_and_test']} of the {split['test_sequences']} sequences of `test` also have "
        "frames in train/val.",
        f"- Boxes: {rules['boxes']}.",
        f"- Leak audit: {rules['leak_audit']}.",
        "",
    ]


@dataclass(frozen=True)
class ReleaseFindings:
    """What a release's checks are made of, from its files as written."""

    manifest_sha256: str
    sealed_as: str | None                 # the sha256 sealed at the cut (None: this is the cut)
    files_that_differ: list[str]          # rebuilt vs stored, by content digest
    per_split: dict[str, int]             # manifest rows
    labelled_inputs: dict[str, int]       # usable labelled images the cut was made from
    zipped_images: dict[str, int]         # images in each download
    label_leaks: list[str]                # test download entries that could give a label away
    straddling_train_and_test: int        # near-duplicate pairs between train/val and test
    leaks_block: bool                     # False for the thesis's by-image split (it leaks by design)
    camtrap_written: bool
    camtrap_problems: list[str]

    @property
    def sealed(self) -> bool:
        return self.sealed_as in (None, self.manifest_sha256)

    @property
    def counts_add_up(self) -> bool:
        return all(self.per_split.get(s, 0) == self.labelled_inputs.get(s, 0) == self.zipped_images.get(s, 0)
                   for s in RELEASE_SPLITS)


def release_findings(manifest: pd.DataFrame, manifest_sha256: str, sealed_as: str | None,
                     rebuilt: dict[str, str], stored: dict[str, str] | None, labelled_inputs: dict[str, int] | None,
                     download_entries: dict[str, list[str]], test_entries: dict[str, list[str]],
                     species_codes, straddling: int, split_by: str, camtrap: dict) -> ReleaseFindings:
    """`stored`/`labelled_inputs` None: this is the cut (nothing to compare with; inputs = the manifest's)."""
    per_split = {s: int(n) for s, n in manifest.split.value_counts().items()}
    differs = [] if stored is None else sorted(n for n in set(rebuilt) | set(stored) if rebuilt.get(n) != stored.get(n))
    return ReleaseFindings(
        manifest_sha256=manifest_sha256, sealed_as=sealed_as, files_that_differ=differs, per_split=per_split,
        labelled_inputs=per_split if labelled_inputs is None else labelled_inputs,
        zipped_images={s: sum(is_image_name(n) for n in names) for s, names in download_entries.items()},
        label_leaks=[f"{s}.zip: {n}" for s, names in test_entries.items() for n in label_leaks(names, species_codes)],
        straddling_train_and_test=straddling, leaks_block=split_by != "image",
        camtrap_written=bool(camtrap["written"]), camtrap_problems=list(camtrap["problems"]))


# --- across releases: a label hidden once is never published, anywhere --------------------------------

@dataclass(frozen=True)
class CutRecord:
    """A cut release as its record holds it: what a later cut is compared with."""

    release: str
    manifest: pd.DataFrame
    split_by: str
    cut_at: str


CONFLICT_COLUMNS = ["path", "split", "release", "reason", "binding"]


def keeps_tests_secret(split_by: str) -> bool:
    """Whether a release's test labels are secret: not for a by-image split (the thesis protocol), whose
    test images share bursts with train by design and are mostly published with labels by the default
    release cut from the same archive; its hidden sets bind no other release (it measures a protocol)."""
    return split_by != "image"


def hidden_unit(split: str, split_by: str) -> str:
    """What of a hidden image may never be public with a label elsewhere: its camera (a test set of unseen
    cameras), the image alone (the thesis's by-image split), else its sequence (test_seen, or a test set
    split by sequence)."""
    return split_by if split == "test" and split_by in ("camera", "image") else "sequence"


def _times(column: pd.Series) -> pd.Series:
    return pd.to_datetime(column.replace("", None), errors="coerce")


def cross_release_conflicts(new: pd.DataFrame, split_by: str, earlier: list[CutRecord],
                            gap_s: float = SplitPlan.sequence_gap_s) -> pd.DataFrame:
    """Rows of `new` (a membership: path, split, sha256, camera, captured_at) that would publish a hidden
    label of an `earlier` release, or hide a label one of them published: a train/val image that is an
    image hidden there (same path or bytes), a frame of its unseen test cameras or of its hidden
    sequences; a test image whose image, camera (unseen cameras) or sequence (test_seen) had a frame
    published with a label there. Sequences are rebuilt over both releases' frames together (camera,
    capture time), so a burst that gained an earlier frame is still the same burst. Columns:
    CONFLICT_COLUMNS, one row per path (its first reason); `binding` False: a test image of a release
    whose test labels are not secret (`keeps_tests_secret`), published elsewhere: reported, not a conflict.
    A release whose test labels are not secret hides nothing, so binds no other; its every image counts as
    published, test images too (its datasheet's per-species test counts, less the images other releases
    label, give their labels away), so none of them may be an image another release hides."""
    found = []
    # A release whose test labels are not secret publishes its test images as good as labelled (its
    # datasheet counts them per species and park): they may no more be hidden elsewhere than its train.
    new_public = (new.split.isin(PUBLIC_SPLITS) | (not keeps_tests_secret(split_by))).to_numpy()
    new_hidden = new.split.isin(HIDDEN_SPLITS).to_numpy()
    new_units = pd.Series([hidden_unit(s, split_by) for s in new.split], index=new.index, dtype=object)
    for record in earlier:
        old = record.manifest
        both = pd.concat([new[["camera"]].assign(captured_at=_times(new.captured_at)),
                          old[["camera"]].assign(captured_at=_times(old.captured_at))], ignore_index=True)
        sequences = leakage_groups(both, "sequence", gap_s)
        new_seq = pd.Series(sequences.iloc[:len(new)].to_numpy(), index=new.index)
        old_seq = pd.Series(sequences.iloc[len(new):].to_numpy(), index=old.index)
        hidden, public = old.split.isin(HIDDEN_SPLITS), old.split.isin(PUBLIC_SPLITS)
        units = pd.Series([hidden_unit(s, record.split_by) for s in old.split], index=old.index, dtype=object)
        if not keeps_tests_secret(record.split_by):  # hides nothing; its test images count as published
            hidden, public = pd.Series(False, index=old.index), old.split.isin(RELEASE_SPLITS)
        same_image = new.path.isin(old.path[hidden]) | new.sha256.isin(old.sha256[hidden])
        tests = [(same_image, "an image hidden"),
                 (new.camera.isin(old.camera[hidden & (units == "camera")]), "a frame of an unseen test camera"),
                 (new_seq.isin(old_seq[hidden & (units == "sequence")]), "a frame of a hidden sequence")]
        for mask, what in tests:
            hit = new[new_public & mask.to_numpy()]
            found += [(p, s, record.release, f"published here, {what} in {record.release}", True)
                      for p, s in zip(hit.path, hit.split)]
        was_public = new.path.isin(old.path[public]) | new.sha256.isin(old.sha256[public])
        was_public |= (new_units == "camera") & new.camera.isin(old.camera[public])
        was_public |= (new_units == "sequence") & new_seq.isin(old_seq[public])
        hit = new[new_hidden & was_public.to_numpy()]
        found += [(p, s, record.release, f"hidden here, published with a label in {record.release}",
                   keeps_tests_secret(split_by)) for p, s in zip(hit.path, hit.split)]
    found = pd.DataFrame(found, columns=CONFLICT_COLUMNS).astype({"binding": bool})
    return found.sort_values("binding", ascending=False, kind="stable").drop_duplicates("path", ignore_index=True)


def current_splits_record(splits: pd.DataFrame) -> CutRecord:
    """The benchmark's current splits (`benchmark_splits`) as a record: a profile release cut before the
    default release that will hide their test sets withholds them too, so the order of cuts never matters."""
    columns = ["path", "split", "camera", "captured_at"]
    rows = splits[columns] if len(splits) else pd.DataFrame(columns=columns)
    rows = rows[rows.split.isin(HIDDEN_SPLITS)].assign(sha256="")  # only what they hide: they publish nothing
    split_by = str(splits.split_by.iloc[0]) if len(splits) and "split_by" in splits else "camera"
    return CutRecord("current splits", rows.reset_index(drop=True), split_by, "")


def keep_hidden_labels_hidden(rows: pd.DataFrame, split_by: str, earlier: list[CutRecord],
                              gap_s: float = SplitPlan.sequence_gap_s) -> tuple[pd.DataFrame, dict]:
    """(`rows`, a cut's candidate membership, made to pass `cross_release_conflicts`; what was done, for
    the release's facts). A test image whose image, camera or sequence an earlier release published
    with a label is kept public (train: its label is public already) — e.g. a train burst that gained
    an earlier frame and so a new sequence key; a train/val image hidden in an earlier release (or of
    its unseen test cameras or hidden sequences) is withheld — from every split, test too, where this
    release's test labels are not secret (the thesis profile). Each round strictly shrinks the hidden
    rows or the rows, so it ends."""
    rows, kept_public, withheld, withheld_splits = rows.copy(), {}, {}, {}
    while True:
        reported = cross_release_conflicts(rows, split_by, earlier, gap_s)
        found = reported[reported.binding]
        if found.empty:
            break
        hidden = found[found.split.isin(HIDDEN_SPLITS) & keeps_tests_secret(split_by)]
        if len(hidden):  # first: a moved image may be hidden in yet another release, and is then withheld
            rows.loc[rows.path.isin(hidden.path), "split"] = "train"
            kept_public.update(zip(hidden.path, hidden.reason))
            continue
        withheld.update(zip(found.path, found.reason))
        withheld_splits.update(zip(found.path, found.split))
        kept_public = {p: r for p, r in kept_public.items() if p not in withheld}
        rows = rows[~rows.path.isin(found.path)]

    def tally(reasons: dict) -> dict:
        return {"images": len(reasons), "why": {k: int(v) for k, v in sorted(pd.Series(
            list(reasons.values()), dtype=object).value_counts().items())}}

    summary = {"compared_with": sorted(r.release for r in earlier), "kept_public": tally(kept_public),
               "withheld": tally(withheld)}
    if not keeps_tests_secret(split_by):
        summary["test_labels_published_elsewhere"] = int((~reported.binding).sum())
        summary["withheld_from_test"] = int(sum(s in HIDDEN_SPLITS for s in withheld_splits.values()))
    return rows, summary
