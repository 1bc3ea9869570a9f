"""A release as a Camtrap DP 1.0 data package (https://camtrap-dp.tdwg.org), the exchange standard of
GBIF and AddaxAI, validated offline with frictionless against the standard's own table schemas and
profile (shipped in `wildbench_assets/data/camtrap-dp-1.0/`, MIT).

Deployments are cameras (placed at their park's centre with the park's radius as uncertainty: the
archive holds no camera positions); media are images; observations are one row per box (species from
the archive's folders, i.e. classified by people; boxes from the detector) and one `blank` row per empty
image. Undated images cannot be media (a timestamp is required) and are left out, counted.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd

from wildbench_assets.lib.labels import image_id
from wildbench_assets.lib.zips import member_name
from wildbench_assets.taxonomy import EMPTY, Taxonomy

VERSION = "1.0"
SCHEMAS = Path(__file__).resolve().parents[1] / "data" / "camtrap-dp-1.0"
BASE_URL = f"https://raw.githubusercontent.com/tdwg/camtrap-dp/{VERSION}"
TABLES = ("deployments", "media", "observations")


class CamtrapDPUnavailable(ValueError):
    """The release cannot be written as Camtrap DP (e.g. a park without coordinates)."""


def _fields(table: str) -> list[str]:
    return [f["name"] for f in json.loads((SCHEMAS / f"{table}-table-schema.json").read_text())["fields"]]


def _csv(frame: pd.DataFrame, table: str) -> bytes:
    """The table with every field of its schema, in the schema's order (Camtrap DP requires both)."""
    buffer = io.StringIO()
    frame.reindex(columns=_fields(table)).to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue().encode()


def _stamp(local: pd.Series, offsets: pd.Series) -> pd.Series:
    return local.str.slice(0, 19) + offsets


def build_package(manifest: pd.DataFrame, taxonomy: Taxonomy, release: str, created: str) -> dict[str, bytes]:
    """file name -> bytes of the package (datapackage.json and the three tables)."""
    parks = {p.code: p for p in taxonomy.parks}
    unplaced = sorted(set(manifest.park) - {code for code, p in parks.items() if p.latitude is not None})
    if unplaced:
        raise CamtrapDPUnavailable(f"parks without coordinates in the taxonomy: {unplaced}")
    dated = manifest[manifest.captured_at != ""].copy()
    if dated.empty:  # e.g. real photos whose EXIF was stripped: Camtrap DP requires a timestamp per media file
        raise CamtrapDPUnavailable(f"none of the {len(manifest)} public images has a capture time (EXIF date); "
                                   "Camtrap DP needs one per media file and a temporal coverage")
    offsets = dated.park.map(lambda code: parks[code].utc_offset)
    dated["timestamp"] = _stamp(dated.captured_at, offsets)
    dated["deploymentID"] = dated.camera  # already park-qualified (`donana/D03`)

    spans = dated.groupby("deploymentID").agg(park=("park", "first"), camera=("camera", "first"),
                                              start=("timestamp", "min"), end=("timestamp", "max"))
    deployments = pd.DataFrame({
        "deploymentID": spans.index, "locationID": spans.index,
        "locationName": [parks[p].name for p in spans.park],
        "latitude": [parks[p].latitude for p in spans.park], "longitude": [parks[p].longitude for p in spans.park],
        "coordinateUncertainty": [parks[p].uncertainty_m for p in spans.park],
        "deploymentStart": spans.start.to_numpy(), "deploymentEnd": spans.end.to_numpy(),
        "captureMethod": "activityDetection", "deploymentTags": "park:" + spans.park.to_numpy(),
    })
    media = pd.DataFrame({
        "mediaID": dated.public_id, "deploymentID": dated.deploymentID, "captureMethod": "activityDetection",
        "timestamp": dated.timestamp, "filePublic": True,
        # where the image is once `<split>.zip` of the release is unpacked into a folder named after the split
        "filePath": [f"{s}/{member_name(p, sp, image_id(path))}" for s, p, sp, path
                     in zip(dated.split, dated.park, dated.species, dated.path)],
        "fileName": [image_id(path) for path in dated.path],
        "fileMediatype": ["image/png" if path.lower().endswith(".png") else "image/jpeg" for path in dated.path],
        "mediaComments": "split:" + dated.split,
    })
    scientific = {s.code: s.scientific_name for s in taxonomy.species}
    observations = []
    for row in dated.itertuples(index=False):
        common = {"deploymentID": row.deploymentID, "mediaID": row.public_id, "eventStart": row.timestamp,
                  "eventEnd": row.timestamp, "observationLevel": "media"}
        if row.species == EMPTY:
            observations.append({**common, "observationID": f"{row.public_id}-blank", "observationType": "blank"})
            continue
        for number, box in enumerate(json.loads(row.boxes), start=1):
            x, y, w, h = (min(1.0, max(0.0, round(float(v), 6))) for v in box[:4])
            observations.append({**common, "observationID": f"{row.public_id}-{number}", "observationType": "animal",
                                 "scientificName": scientific.get(row.species, row.species), "count": 1,
                                 "bboxX": x, "bboxY": y, "bboxWidth": max(w, 1e-6), "bboxHeight": max(h, 1e-6),
                                 "classificationMethod": "human", "classifiedBy": "archive folder (park staff)"})
    observations = pd.DataFrame(observations, columns=_fields("observations")).astype({"count": "Int64"})
    present = sorted({scientific.get(s, s) for s in dated.species if s != EMPTY})
    located = [parks[p] for p in sorted(set(manifest.park))]  # where the package's images are, dated or not
    lats, lons = [p.latitude for p in located], [p.longitude for p in located]
    descriptor = {
        "profile": f"{BASE_URL}/camtrap-dp-profile.json",
        "name": f"wildbench-{release}".lower().replace(".", "-"),
        "id": f"wildbench/{release}",
        "title": f"WildBench camera-trap benchmark, release {release} (train and val; test labels are hidden)",
        "created": created,
        "contributors": [{"title": "WildBench", "role": "publisher"}],
        "project": {"title": "WildBench", "samplingDesign": "opportunistic", "captureMethod": ["activityDetection"],
                    "individualAnimals": False, "observationLevel": ["media"]},
        "spatial": {"type": "Polygon", "coordinates": [[[min(lons), min(lats)], [max(lons), min(lats)],
                                                         [max(lons), max(lats)], [min(lons), max(lats)],
                                                         [min(lons), min(lats)]]]} if located else {},
        "temporal": {"start": str(dated.captured_at.min())[:10], "end": str(dated.captured_at.max())[:10]}
        if len(dated) else {},
        "taxonomic": [{"scientificName": name} for name in present],
        "resources": [{"name": name, "path": f"{name}.csv", "profile": "tabular-data-resource",
                       "format": "csv", "mediatype": "text/csv", "encoding": "utf-8",
                       "schema": f"{BASE_URL}/{name}-table-schema.json"} for name in TABLES],
    }
    return {"datapackage.json": (json.dumps(descriptor, indent=1, ensure_ascii=False) + "\n").encode(),
            "deployments.csv": _csv(deployments, "deployments"), "media.csv": _csv(media, "media"),
            "observations.csv": _csv(observations, "observations")}


def _no_retrieval(uri: str):
    raise LookupError(f"{uri}: schemas are never fetched at run time")


def _offline_registry():
    """The profile's one remote $ref (GeoJSON) answered locally: `spatial` must be a GeoJSON object with a
    known geometry type; nothing is ever fetched."""
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    geojson = {"type": "object", "required": ["type"],
               "properties": {"type": {"enum": ["Point", "MultiPoint", "LineString", "MultiLineString", "Polygon",
                                                "MultiPolygon", "GeometryCollection", "Feature",
                                                "FeatureCollection"]}}}
    return Registry(retrieve=_no_retrieval).with_resource(
        "http://json.schemastore.org/geojson.json", Resource.from_contents(geojson, default_specification=DRAFT4))


def validate_package(folder: Path) -> list[str]:
    """Every problem frictionless finds in the package (rows against the Camtrap DP table schemas,
    foreign keys between tables) and every Camtrap DP profile requirement the descriptor misses."""
    import frictionless
    import jsonschema

    descriptor = json.loads((folder / "datapackage.json").read_text())
    # The 1.0 profile writes its one internal pointer as `#$defs/...`; JSON Schema wants `#/$defs/...`.
    profile = json.loads((SCHEMAS / "camtrap-dp-profile.json").read_text().replace('"#$defs/', '"#/$defs/'))
    # allOf[0] is the generic Data Package profile (a remote $ref): frictionless checks that part.
    camtrap_rules = {**profile["allOf"][1], "$defs": profile["$defs"]}
    offline = _offline_registry()
    problems = [f"datapackage.json: {e.message}"
                for e in jsonschema.Draft4Validator(camtrap_rules, registry=offline).iter_errors(descriptor)]
    resources = []
    for entry in descriptor["resources"]:
        schema = json.loads((SCHEMAS / f"{entry['name']}-table-schema.json").read_text())
        if entry["schema"] != f"{BASE_URL}/{entry['name']}-table-schema.json":
            problems.append(f"{entry['name']}: schema {entry['schema']} is not Camtrap DP {VERSION}'s")
        resources.append(frictionless.Resource(path=entry["path"], basepath=str(folder), name=entry["name"],
                                               schema=frictionless.Schema.from_descriptor(schema)))
    report = frictionless.Package(resources=resources).validate()
    problems += [f"{task.name}: {error.message}" for task in report.tasks for error in task.errors]
    return problems
