"""A release as a Camtrap DP 1.0.2 data package (https://camtrap-dp.tdwg.org), the exchange standard of
GBIF and AddaxAI, validated offline by frictionless against the standard's own profile and table schemas,
as published (shipped in `wildbench_assets/data/camtrap-dp-1.0.2/`, MIT).

Deployments are cameras, placed at their park's centre with the park's radius as uncertainty (the archive
holds no camera positions; every deployment and the package say so). Media are the images of the release's
public ZIPs (`filePath`: the image's path inside the ZIP named in `mediaComments`); hidden test images are
never media, so no label of theirs is published. Observations are one row per box (species from the
archive's folders; the box's `classificationMethod` and `classifiedBy` name who drew it: the detector and
its version, or people for a human-labelled manifest) and one `blank` row per empty image, each with its
sequence as `eventID`. Undated images cannot be media (a timestamp is required) and are left out, counted.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd

from wildbench_assets.lib import detectors
from wildbench_assets.lib.labels import image_id
from wildbench_assets.taxonomy import EMPTY, Taxonomy

VERSION = "1.0.2"
SCHEMAS = Path(__file__).resolve().parents[1] / "data" / f"camtrap-dp-{VERSION}"
BASE_URL = f"https://raw.githubusercontent.com/tdwg/camtrap-dp/{VERSION}"
TABLES = ("deployments", "media", "observations")
CENTROIDS = ("coordinates are the park's centre, not the camera's (the archive holds no camera positions); "
             "coordinateUncertainty is the park's radius")


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


def build_package(manifest: pd.DataFrame, taxonomy: Taxonomy, release: str, created: str,
                  zipped: dict[str, tuple[str, str]], detector: str) -> dict[str, bytes]:
    """file name -> bytes of the package (datapackage.json and the three tables). `zipped`: archive path ->
    (public ZIP, path inside it) of every image the release publishes; only those become media.
    `detector`: the identity of the detector that drew the boxes (the release's facts)."""
    parks = {p.code: p for p in taxonomy.parks}
    manifest = manifest[manifest.path.isin(zipped)]  # never an image of the hidden test ZIPs
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
        "deploymentComments": CENTROIDS,
    })
    media = pd.DataFrame({
        "mediaID": dated.public_id, "deploymentID": dated.deploymentID, "captureMethod": "activityDetection",
        "timestamp": dated.timestamp, "filePublic": True,
        "filePath": [zipped[path][1] for path in dated.path],  # inside the ZIP that mediaComments names
        "fileName": [image_id(path) for path in dated.path],
        "fileMediatype": ["image/png" if path.lower().endswith(".png") else "image/jpeg" for path in dated.path],
        "mediaComments": [f"split:{split}; in {zipped[path][0]}" for split, path in zip(dated.split, dated.path)],
    })
    scientific = {s.code: s.scientific_name for s in taxonomy.species}
    # Who drew the boxes: a detector (machine) or people (a human-labelled COCO Camera Traps manifest).
    method = "machine" if detectors.is_machine(detector) else "human"
    drawn_by = detectors.classified_by(detector)
    observations = []
    for row in dated.itertuples(index=False):
        event = row.sequence if isinstance(row.sequence, str) and row.sequence else f"image:{row.public_id}"
        common = {"deploymentID": row.deploymentID, "mediaID": row.public_id, "eventID": event,
                  "eventStart": row.timestamp, "eventEnd": row.timestamp, "observationLevel": "media"}
        if row.species == EMPTY:
            observations.append({**common, "observationID": f"{row.public_id}-blank", "observationType": "blank",
                                 "classificationMethod": "human", "classifiedBy": "archive folder (park staff)"})
            continue
        for number, box in enumerate(json.loads(row.boxes), start=1):
            x, y, w, h = (min(1.0, max(0.0, round(float(v), 6))) for v in box[:4])
            observations.append({**common, "observationID": f"{row.public_id}-{number}", "observationType": "animal",
                                 "scientificName": scientific.get(row.species, row.species), "count": 1,
                                 "bboxX": x, "bboxY": y, "bboxWidth": max(w, 1e-6), "bboxHeight": max(h, 1e-6),
                                 "classificationMethod": method, "classifiedBy": drawn_by,
                                 "observationComments": "species from the archive's folders (park staff); "
                                                        f"box by {drawn_by}"})
    observations = pd.DataFrame(observations, columns=_fields("observations")).astype({"count": "Int64"})
    present = sorted({scientific.get(s, s) for s in dated.species if s != EMPTY})
    located = [parks[p] for p in sorted(set(manifest.park))]  # where the package's images are, dated or not
    lats, lons = [p.latitude for p in located], [p.longitude for p in located]
    descriptor = {
        "profile": f"{BASE_URL}/camtrap-dp-profile.json",
        "name": f"wildbench-{release}".lower().replace(".", "-"),
        "id": f"wildbench/{release}",
        "title": f"WildBench camera-trap benchmark, release {release} (train and val; test labels are hidden)",
        "description": f"The train and val images of WildBench release {release}; media.filePath is the image's "
                       "path inside the release's ZIP named in media.mediaComments. Hidden test images are not "
                       f"in the package. Boxes by {drawn_by}. Deployment {CENTROIDS}.",
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


def _shipped_documents() -> dict[str, bytes]:
    """URL -> bytes of every schema the package's descriptor names, answered from local copies: the
    Camtrap DP 1.0.2 profile and table schemas as published, GeoJSON from frictionless's own copy, and
    the generic Data Package profile as frictionless itself encodes it (it checks that part anyway)."""
    import frictionless
    from frictionless import settings

    documents = {f"{BASE_URL}/{path.name}": path.read_bytes() for path in SCHEMAS.glob("*.json")}
    geojson = json.dumps(settings.GEOJSON_PROFILE).encode()
    documents["http://json.schemastore.org/geojson.json"] = geojson
    documents[settings.GEOJSON_PROFILE["id"].rstrip("#")] = geojson
    documents["https://specs.frictionlessdata.io/schemas/data-package.json"] = \
        json.dumps({"$schema": "http://json-schema.org/draft-04/schema#",
                    **frictionless.Package.metadata_profile}).encode()
    return documents


def _offline_session():
    """A requests session that answers only the shipped documents: nothing is ever fetched."""
    import requests

    documents = _shipped_documents()

    class Shipped(requests.adapters.BaseAdapter):
        def send(self, request, **_kwargs):
            response = requests.Response()
            response.url, response.request = request.url, request
            body = documents.get(request.url)
            response.status_code, response.reason = (200, "OK") if body is not None else \
                (404, "not shipped with WildBench (schemas are never fetched)")
            response.raw = io.BytesIO(body or b"")
            return response

        def close(self):
            pass

    session = requests.Session()
    for prefix in ("http://", "https://"):
        session.mount(prefix, Shipped())
    return session


def validate_package(folder: Path) -> list[str]:
    """Every problem frictionless finds in the package as written: its descriptor against the Camtrap DP
    1.0.2 profile it names, its tables against the table schemas they name (rows, foreign keys). Those
    URLs are answered from the shipped copies, offline; a descriptor naming any other version fails."""
    import frictionless

    with frictionless.system.use_context(http_session=_offline_session()):
        try:
            report = frictionless.Package(str(folder / "datapackage.json")).validate()
        except frictionless.FrictionlessException as err:
            return [f"datapackage.json: {e.message}" for e in (err.reasons or [err.error])]
    problems = [f"datapackage.json: {error.message}" for error in report.errors]
    return problems + [f"{task.name}: {error.message}" for task in report.tasks for error in task.errors]
