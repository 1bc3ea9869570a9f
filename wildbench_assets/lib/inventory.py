"""Who is in an archive object: park, species and camera from its path or a COCO Camera Traps manifest.

Path convention (the thesis's exports): `<park>/<species>/…/<file>`; camera = every folder between
species and file, qualified by park. A manifest (LILA's COCO Camera Traps json) named `manifest.json` at the archive
root or at `<park>/` overrides species from its annotations and camera from each image's `location`;
its `file_name`s are relative to the manifest's folder. An image a manifest names without a location,
outside a folder named by its species, has its camera from every folder between park and file (so
`D01/100RECNX/` and `D02/100RECNX/` stay two cameras there too).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

from wildbench_assets.lib.expectations import Rule
from wildbench_assets.taxonomy import EMPTY as EMPTY_SPECIES

MANIFEST_NAME = "manifest.json"
UNKNOWN = "unknown"
_EMPTY_NAMES = {"empty", EMPTY_SPECIES, "blank", "none", "nothing"}


@dataclass(frozen=True)
class ManifestEntry:
    species: str
    camera: str | None
    seq_id: str | None
    datetime: str | None
    width: int | None = None
    height: int | None = None
    boxes: tuple[tuple[str, float, float, float, float], ...] = field(default_factory=tuple)  # (species, x, y, w, h) px


def is_manifest(key: str) -> bool:
    return posixpath.basename(key) == MANIFEST_NAME


def manifest_keys(park: str) -> tuple[str, str]:
    """The manifests that describe a park's objects: the archive's root one, then the park's own (it wins)."""
    return MANIFEST_NAME, f"{park}/{MANIFEST_NAME}"


def describe_path(key: str) -> dict[str, str]:
    """park, species and camera from `<park>/<species>/<camera folders…>/<file>`; `unknown` where the
    path is too short. The camera is every folder between species and file (SD-card layouts such as
    `D01/100RECNX/` must not merge cameras), or the species folder when there is none."""
    parts = key.split("/")
    park = parts[0] if len(parts) > 1 else UNKNOWN
    species = parts[1] if len(parts) > 2 else UNKNOWN
    folder = "/".join(parts[2:-1]) if len(parts) > 3 else parts[-2] if len(parts) > 1 else UNKNOWN
    return {"park": park, "species": species, "camera": f"{park}/{folder}"}


def _species_code(name: str, aliases: dict[str, str]) -> str:
    key = name.strip().lower()
    if key in _EMPTY_NAMES:
        return EMPTY_SPECIES
    return aliases.get(key, name.strip())


def parse_coco_camera_traps(
    manifest: dict, manifest_key: str, aliases: dict[str, str]
) -> dict[str, ManifestEntry]:
    """Archive key -> entry for every image of a COCO Camera Traps manifest.

    `aliases` maps lower-cased codes, common and scientific names to species codes, so LILA category
    names ("red fox") resolve to the taxonomy's codes; unresolved names are kept verbatim and reported
    downstream as unknown species. An image with no annotation is empty; with several species, the
    one with most boxes names it (ties: first seen).
    """
    if not isinstance(manifest, dict) or not isinstance(manifest.get("images"), list):
        raise ValueError(f"{manifest_key}: not a COCO Camera Traps file (no 'images' list)")
    base = posixpath.dirname(manifest_key)
    categories = {c["id"]: _species_code(str(c["name"]), aliases) for c in manifest.get("categories", [])}
    by_image: dict[object, list[dict]] = {}
    for annotation in manifest.get("annotations", []):
        by_image.setdefault(annotation["image_id"], []).append(annotation)
    entries: dict[str, ManifestEntry] = {}
    for image in manifest["images"]:
        annotations = by_image.get(image["id"], [])
        labelled = [categories.get(a.get("category_id"), UNKNOWN) for a in annotations]
        animals = [code for code in labelled if code != EMPTY_SPECIES]
        species = max(dict.fromkeys(animals), key=animals.count) if animals else EMPTY_SPECIES
        boxes = tuple(
            (categories.get(a.get("category_id"), UNKNOWN), *map(float, a["bbox"]))
            for a in annotations
            if a.get("bbox") and len(a["bbox"]) == 4
        )
        key = posixpath.normpath(posixpath.join(base, image["file_name"])).lstrip("/")
        entries[key] = ManifestEntry(
            species=species,
            camera=str(image["location"]) if image.get("location") is not None else None,
            seq_id=str(image["seq_id"]) if image.get("seq_id") is not None else None,
            datetime=image.get("datetime"),
            width=image.get("width"),
            height=image.get("height"),
            boxes=boxes,
        )
    return entries


def _species_folder(folder: str, species: str) -> bool:
    name = folder.strip().lower()
    return name == species.lower() or (species == EMPTY_SPECIES and name in _EMPTY_NAMES)


def describe_object(key: str, manifest: dict[str, ManifestEntry]) -> dict[str, str | None]:
    """park/species/camera/seq_id of one object, the manifest winning over the path where it knows."""
    row: dict[str, str | None] = {**describe_path(key), "seq_id": None, "species_source": "path"}
    entry = manifest.get(key)
    if entry is not None:
        row["species"] = entry.species
        row["species_source"] = "manifest"
        row["seq_id"] = entry.seq_id
        if entry.camera:
            row["camera"] = f"{row['park']}/{entry.camera}"
        elif len(parts := key.split("/")) > 2 and not _species_folder(parts[1], entry.species):
            row["camera"] = f"{row['park']}/{'/'.join(parts[1:-1])}"  # <park>/<camera folders…>/<file>
    return row


def arrival_day(when: datetime) -> str:
    return when.strftime("%Y-%m-%d")


LISTING_COLUMNS = ["path", "park", "species", "camera", "seq_id", "species_source", "bytes", "etag",
                   "arrival_time", "arrival_day", "object_kind"]


def listing_table(objects: list[dict], manifest: dict[str, ManifestEntry]) -> pd.DataFrame:
    """One row per archive object (dicts with key, size, etag, last_modified), sorted by path."""
    rows = [
        {"path": o["key"], **describe_object(o["key"], manifest), "bytes": int(o["size"]), "etag": o["etag"],
         "arrival_time": o["last_modified"], "arrival_day": arrival_day(o["last_modified"]),
         "object_kind": o.get("kind", "file")}
        for o in objects
    ]
    frame = pd.DataFrame(rows, columns=LISTING_COLUMNS)
    frame["arrival_time"] = pd.to_datetime(frame["arrival_time"], utc=True)
    frame["bytes"] = frame["bytes"].astype("int64")
    return frame.sort_values("path", ignore_index=True)


def species_aliases(species: list[tuple[str, str, str]]) -> dict[str, str]:
    """Lower-cased code, common name and scientific name -> code, for resolving manifest categories."""
    aliases: dict[str, str] = {}
    for code, scientific, common in species:
        for name in (code, scientific, common):
            if name:
                aliases[name.strip().lower()] = code
    return aliases


def listing_rules(park_codes, species_codes, rows: int, park: str | None = None,
                  day: str | None = None) -> dict[str, list[Rule]]:
    """The Great Expectations rules of a listing table (raw_images), by check: paths unique, parks and
    species known, the listing complete (every object with its etag and size, `rows` of them, all of the
    park and arrival day). For one partition's table give its park and day; without them the table is a
    batch of partitions concatenated, each row naming its own in `partition_park` / `partition_day`."""
    where = ([Rule("expect_column_values_to_be_in_set", {"column": "arrival_day", "value_set": [day]}),
              Rule("expect_column_values_to_match_regex", {"column": "path", "regex": f"^{park}/"})]
             if park is not None else
             [Rule("expect_column_pair_values_to_be_equal", {"column_A": "arrival_day", "column_B": "partition_day"}),
              Rule("expect_column_pair_values_to_be_equal", {"column_A": "park", "column_B": "partition_park"})])
    return {
        "unique_paths": [Rule("expect_column_values_to_be_unique", {"column": "path"})],
        "known_parks": [Rule("expect_column_values_to_be_in_set", {"column": "park", "value_set": sorted(park_codes)})],
        "known_species": [Rule("expect_column_values_to_be_in_set",
                               {"column": "species", "value_set": sorted(species_codes)})],
        "listing_complete": [
            Rule("expect_column_values_to_not_be_null", {"column": "etag"}),
            Rule("expect_column_values_to_be_between", {"column": "bytes", "min_value": 0}),
            Rule("expect_table_row_count_to_equal", {"value": rows}),
            *where,
        ],
    }
