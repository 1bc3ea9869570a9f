"""Custom dataset requests (the thesis's `/api/queries`): validation and image selection.

A request names parks, species, a capture-date range, offset/limit, whether to include empties and
the label formats. Anything wrong is a `RequestError` with a message a person can act on.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields
from datetime import date, timedelta

import pandas as pd

from wildbench_assets.lib.datasets import FORMATS, usable
from wildbench_assets.lib.labels import LABELLED
from wildbench_assets.taxonomy import EMPTY as EMPTY_SPECIES

REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
PROGRESS_SUFFIX = ".progress.json"  # how far a request's run is (written by the run, read by the portal)
SUFFIXES = (".error.json", ".result.json", PROGRESS_SUFFIX)


class RequestError(ValueError):
    """A malformed or impossible request."""


@dataclass(frozen=True)
class ExportSpec:
    parks: list[str] = field(default_factory=list)     # empty: every park
    species: list[str] = field(default_factory=list)   # empty: every species
    start_date: str | None = None                      # inclusive, YYYY-MM-DD
    end_date: str | None = None                        # inclusive
    offset: int = 0
    limit: int | None = None
    include_empties: bool = False
    formats: list[str] = field(default_factory=lambda: ["yolo"])

    def to_dict(self) -> dict:
        return asdict(self)


# The request schema's one home: the inbox file, the launchpad config (`config.ExportRequest`, checked
# against this by a test), the CLI and the portal all go through `parse_spec`.
FIELDS = frozenset(f.name for f in fields(ExportSpec))


def request_id_of(key: str) -> str | None:
    """`requests/abc.json` -> `abc`; None for result/error files and other objects."""
    name = key.rsplit("/", 1)[-1]
    if not name.endswith(".json") or name.endswith(SUFFIXES):
        return None
    return name[: -len(".json")]


def parse_json_document(raw: bytes, name: str) -> object:
    """The JSON in `raw`, or a RequestError naming why not: not UTF-8 (with the byte offset), not JSON,
    or nested too deeply for the parser (a request is one flat object)."""
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise RequestError(f"{name} is not UTF-8 text (byte {err.start}: {raw[err.start:err.start + 1]!r})") from None
    except json.JSONDecodeError as err:
        raise RequestError(f"{name} is not valid JSON: {err}") from None
    except RecursionError:
        raise RequestError(f"{name} is nested too deeply to parse (a request is one flat JSON object)") from None


def check_request_id(request_id: str) -> None:
    if not REQUEST_ID.match(request_id):
        raise RequestError(f"request id {request_id!r}: use 1-64 letters, digits, '.', '_' or '-'")


def _date(raw, name: str) -> str | None:
    if raw in (None, ""):
        return None
    try:
        return date.fromisoformat(str(raw)).isoformat()
    except ValueError:
        raise RequestError(f"{name} {raw!r} is not a date (YYYY-MM-DD)") from None


def _codes(raw, name: str) -> list[str]:
    if raw in (None, ""):
        return []
    if isinstance(raw, str):
        raw = [part for part in raw.split(",") if part.strip()]
    if not isinstance(raw, list) or not all(isinstance(c, str) for c in raw):
        raise RequestError(f"{name} must be a list of codes")
    return sorted({c.strip() for c in raw})


def parse_spec(raw: object, species_codes: frozenset[str], park_codes: frozenset[str]) -> ExportSpec:
    if not isinstance(raw, dict):
        raise RequestError("a request is a JSON object")
    unknown_fields = set(raw) - FIELDS
    if unknown_fields:
        raise RequestError(f"unknown fields {sorted(unknown_fields)}; allowed: {sorted(FIELDS)}")
    parks, species = _codes(raw.get("parks"), "parks"), _codes(raw.get("species"), "species")
    bad_parks, bad_species = sorted(set(parks) - park_codes), sorted(set(species) - species_codes)
    if bad_parks:
        raise RequestError(f"unknown parks {bad_parks}; known: {sorted(park_codes)}")
    if bad_species:
        raise RequestError(f"unknown species {bad_species}; known: {sorted(species_codes)}")
    start, end = _date(raw.get("start_date"), "start_date"), _date(raw.get("end_date"), "end_date")
    if start and end and start > end:
        raise RequestError(f"start_date {start} is after end_date {end}")
    offset, limit = raw.get("offset", 0) or 0, raw.get("limit")
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise RequestError(f"offset must be a non-negative integer, got {offset!r}")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise RequestError(f"limit must be a positive integer, got {limit!r}")
    formats = _codes(raw.get("formats"), "formats") or ["yolo"]
    if set(formats) - set(FORMATS):
        raise RequestError(f"unknown formats {sorted(set(formats) - set(FORMATS))}; choose from {list(FORMATS)}")
    include_empties = raw.get("include_empties", False)
    if not isinstance(include_empties, bool):
        raise RequestError("include_empties must be true or false")
    return ExportSpec(parks, species, start, end, offset, limit, include_empties, formats)


def select_images(curated: pd.DataFrame, spec: ExportSpec, withheld=frozenset()) -> pd.DataFrame:
    """The requested images in a stable order (capture time, then path), after offset and limit. Paths
    in `withheld` (the benchmark's hidden test images) are never handed out: with their labels in a
    request ZIP, anyone could score perfectly."""
    rows = curated[~curated.path.isin(withheld)] if len(withheld) else curated
    if spec.parks:
        rows = rows[rows.park.isin(spec.parks)]
    if spec.species:
        rows = rows[rows.species.isin(spec.species) | (rows.species == EMPTY_SPECIES)]
    if not spec.include_empties:
        rows = rows[rows.species != EMPTY_SPECIES]
    if spec.start_date:
        rows = rows[rows.captured_at >= pd.Timestamp(spec.start_date)]
    if spec.end_date:
        rows = rows[rows.captured_at < pd.Timestamp(spec.end_date) + pd.Timedelta(days=1)]
    rows = rows.sort_values(["captured_at", "path"], ignore_index=True, na_position="last")
    end = None if spec.limit is None else spec.offset + spec.limit
    rows = rows.iloc[spec.offset:end].reset_index(drop=True)
    if rows.empty:
        raise RequestError("no image matches the request (check parks, species, dates and offset)")
    return rows


@dataclass(frozen=True)
class ExportFindings:
    """What a request's checks are made of: the images packed against the spec, the ZIP's entries."""

    images: int                 # images packed: labelled animals and empties
    left_out: int               # selected but not packed: no box, or unreadable
    matches_request: bool       # every packed image of a requested park and species, empties only if asked
    label_files: int            # YOLO files in the ZIP
    expected_label_files: int   # one per labelled image, when YOLO was asked for
    zip_problem: str | None     # what verifying the ZIP found (None: every entry and CRC good)

    @property
    def counts_add_up(self) -> bool:
        return self.label_files == self.expected_label_files


def export_findings(labels: pd.DataFrame, selected: int, spec: ExportSpec, names: list[str],
                    zip_problem: str | None) -> ExportFindings:
    """Findings of a request's ZIP (entry `names`) packed from `labels` of the `selected` images."""
    chosen = usable(labels)
    in_request = (
        (not spec.parks or chosen.park.isin(spec.parks).all())
        and (not spec.species or chosen.species.isin([*spec.species, EMPTY_SPECIES]).all())
        and (spec.include_empties or (chosen.species != EMPTY_SPECIES).all())
        and (spec.limit is None or selected <= spec.limit)
    )
    return ExportFindings(
        images=len(chosen), left_out=len(labels) - len(chosen), matches_request=bool(in_request),
        label_files=sum(n.endswith(".txt") for n in names),
        expected_label_files=int((chosen.label_status == LABELLED).sum()) * ("yolo" in spec.formats),
        zip_problem=zip_problem)


def expired_request_zips(objects, now, days: int, folder: str = "requests/") -> list[str]:
    """Request ids whose published ZIP (`<folder><id>.zip` among `objects`: keys + last_modified) is older
    than `days` (the thesis's `delete-custom-datasets`)."""
    cutoff = now - timedelta(days=days)
    names = ((o.key.removeprefix(folder), o.last_modified) for o in objects if o.key.startswith(folder))
    return sorted(name[: -len(".zip")] for name, modified in names
                  if name.endswith(".zip") and "/" not in name and modified < cutoff)
