"""COCO Camera Traps manifests in the archive (`manifest.json` at the root or in a park's folder)."""

import json

import dagster as dg

from wildbench_assets.lib.inventory import manifest_keys, parse_coco_camera_traps, species_aliases
from wildbench_assets.resources.archive import Archive
from wildbench_assets.taxonomy import Taxonomy


def load_manifests(store: Archive, park: str, taxonomy: Taxonomy) -> dict:
    aliases = species_aliases([(s.code, s.scientific_name, s.common_name) for s in taxonomy.species])
    entries: dict = {}
    for key in manifest_keys(park):
        raw = store.read_optional(key)
        if raw is None:
            continue
        try:
            entries.update(parse_coco_camera_traps(json.loads(raw), key, aliases))
        except (ValueError, KeyError, TypeError) as err:  # a wrong manifest would mislabel everything: stop
            raise dg.Failure(f"manifest {store.uri}/{key} is malformed: {err}") from err
    return entries


def manifest_etags(store: Archive, park: str) -> dict[str, str]:
    """key -> etag of the manifests describing `park` that exist: part of each partition's fingerprint, so a
    corrected manifest (relabelled species, moved locations) is ingested again. Read before the manifests."""
    found = {}
    for key in manifest_keys(park):
        obj = store.describe(key)
        if obj is not None:
            found[key] = obj.etag
    return found
