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
from wildbench_assets.lib.labels import FAILED, LABELLED, NO_DETECTION
from wildbench_assets.lib.splits import TEST_SETS, SplitPlan, leakage_groups
from wildbench_assets.taxonomy import EMPTY as EMPTY_SPECIES

REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
PROGRESS_SUFFIX = ".progress.json"  # how far a request's run is (written by the run, read by the portal)
SUFFIXES = (".error.json", ".result.json", PROGRESS_SUFFIX)
COPY_OF_HIDDEN = "copy of a hidden image"  # a label status of a request's image only: never packed
# Why a selected image is not packed (label status -> reason); every other status is packed.
DROP_REASONS = {NO_DETECTION: "no animal box from the detector", FAILED: "unreadable image",
                COPY_OF_HIDDEN: "byte-identical to an image the benchmark hides"}
# Why an image that matches a request's filters is not requestable at all (never selected).
NOT_ASSIGNED = "not yet assigned to train or val by the current splits (requestable once they cover it)"
HIDDEN = "hidden by the benchmark (a test image, an unseen test camera or a hidden sequence)"
LEFT_OUT_NOTE = ("Images in which the detector finds no animal box, and unreadable images, are left out of the "
                 "ZIP; the result says how many, and why.")


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


def _times(values: pd.Series) -> pd.Series:
    """Capture times as naive datetimes (NaT: undated), whatever form a table holds them in."""
    times = pd.to_datetime(values, errors="coerce")  # "" (a manifest's undated image): NaT
    return times.dt.tz_localize(None) if getattr(times.dt, "tz", None) is not None else times


def withheld_mask(images: pd.DataFrame, hidden_sets, sequence_gap_s: float = SplitPlan.sequence_gap_s) -> pd.Series:
    """Which of `images` (path, camera, captured_at) no request may hand out, labelled, empty or otherwise,
    given `hidden_sets`: tables with split, path, camera, captured_at — the current splits and each cut
    release's manifest, each judged on its own. Withheld: every hidden test image; every image of an
    unseen-camera test camera (a `test` camera with no image in that set's other splits): its empties
    match its hidden images pixel for pixel; and every image in a sequence (same camera, frames less than
    `sequence_gap_s` apart, as `lib.splits` groups them) with a hidden frame: a `test_seen` burst, or a
    test burst of a set not split by camera, recomputed over the images at hand so a frame added since
    (an earlier one opening the burst) is caught too."""
    paths, cameras, seeds = set(), set(), []
    for table in hidden_sets:
        if table is None or table.empty or not {"split", "path", "camera"} <= set(table.columns):
            continue
        hidden = table[table.split.isin(TEST_SETS)]
        paths |= set(hidden.path)
        cameras |= set(hidden.camera[hidden.split == "test"]) - set(table.camera[table.split != "test"])
        if "captured_at" in table:
            seeds.append(pd.DataFrame({"camera": hidden.camera.astype(str), "captured_at": _times(hidden.captured_at)}))
        if "sequence" in table:  # `<camera>@<first frame>`: where each hidden burst began, selected or not
            first = hidden.sequence.astype(str).str.rsplit("@", n=1).str[-1]
            seeds.append(pd.DataFrame({"camera": hidden.camera.astype(str), "captured_at": _times(first)}))
    mask = images.path.isin(paths) | images.camera.isin(cameras)
    if seeds and len(images):
        mine = pd.DataFrame({"camera": images.camera.astype(str), "captured_at": _times(images.captured_at)})
        both = pd.concat([mine, *seeds], ignore_index=True)
        groups = leakage_groups(both, "sequence", sequence_gap_s)
        held = set(groups.iloc[len(mine):])
        mask |= groups.iloc[: len(mine)].isin(held).to_numpy()
    return mask


@dataclass(frozen=True)
class Withholding:
    """What no request may hand out. `hidden_sets`: every cut release's manifest and the current splits
    (`withheld_mask`); `assigned`: the paths the current splits put in train or val, the only ones a
    request may hand out: an image the nightly splits have not placed yet (a new camera, a new burst) may
    become an unseen-test or test_seen image tonight; `hidden_digests`: the sha256 of every image a cut
    release hides (or the label cache knows for a current test image), so a copy at another path is
    withheld too."""

    hidden_sets: list
    assigned: frozenset[str]
    hidden_digests: frozenset[str] = frozenset()

    def reasons(self, images: pd.DataFrame) -> pd.Series:
        """Per image: why it is withheld (HIDDEN, NOT_ASSIGNED), or None."""
        hidden = withheld_mask(images, self.hidden_sets).to_numpy()
        if "sha256" in images:
            hidden |= images.sha256.isin(self.hidden_digests).to_numpy()
        unassigned = ~images.path.isin(self.assigned).to_numpy()
        return pd.Series([HIDDEN if h else NOT_ASSIGNED if u else None for h, u in zip(hidden, unassigned)],
                         index=images.index, dtype=object)


def _matching(rows: pd.DataFrame, spec: ExportSpec) -> pd.DataFrame:
    """`rows` of the request's parks, species, empties and dates (before order and paging)."""
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
    return rows


def withheld_by_reason(curated: pd.DataFrame, spec: ExportSpec, withholding: Withholding) -> dict[str, int]:
    """Reason -> images that match the request's filters but no request may hand out (every reason listed)."""
    why = withholding.reasons(_matching(curated, spec)).value_counts()
    return {reason: int(why.get(reason, 0)) for reason in (HIDDEN, NOT_ASSIGNED)}


def select_images(curated: pd.DataFrame, spec: ExportSpec, hidden_sets: Withholding | list = ()) -> pd.DataFrame:
    """The requested images in a stable order (capture time, then path), after offset and limit. What the
    benchmark hides (`withheld_mask` of the hidden sets: the current splits and every cut release) is never
    handed out: with its labels, or its empties, in a request ZIP, anyone could score perfectly; given a
    `Withholding` (what the pipeline and the portal pass), neither is an image the current splits have not
    put in train or val yet. The portal's live count and `custom_export` both select with this function."""
    if isinstance(hidden_sets, Withholding):
        rows = curated[hidden_sets.reasons(curated).isna().to_numpy()]
    else:
        rows = curated[~withheld_mask(curated, hidden_sets).to_numpy()] if len(hidden_sets) else curated
    rows = _matching(rows, spec).sort_values(["captured_at", "path"], ignore_index=True, na_position="last")
    end = None if spec.limit is None else spec.offset + spec.limit
    rows = rows.iloc[spec.offset:end].reset_index(drop=True)
    if rows.empty:
        unassigned = withheld_by_reason(curated, spec, hidden_sets)[NOT_ASSIGNED] \
            if isinstance(hidden_sets, Withholding) else 0
        raise RequestError("no image matches the request (check parks, species, dates and offset)" + (
            f"; {unassigned} matching images are not yet assigned to train or val by the current splits and are "
            "withheld until the splits cover them" if unassigned else ""))
    return rows


@dataclass(frozen=True)
class ExportFindings:
    """What a request's checks are made of: the images packed against the spec, the ZIP's entries."""

    images: int                 # images packed: labelled animals and empties
    left_out: int               # selected but not packed: no box, or unreadable
    selected: int               # images the request selected (what the live count promised)
    dropped: dict[str, int]     # reason (DROP_REASONS) -> images left out for it
    matches_request: bool       # every packed image of a requested park and species, empties only if asked
    label_files: int            # YOLO files in the ZIP
    expected_label_files: int   # one per labelled image, when YOLO was asked for
    zip_problem: str | None     # what verifying the ZIP found (None: every entry and CRC good)
    withheld: dict[str, int] = field(default_factory=dict)  # reason -> matching images never selectable

    @property
    def counts_add_up(self) -> bool:
        """One label file per labelled image, and every selected image either packed or left out."""
        return self.label_files == self.expected_label_files and self.images + self.left_out == self.selected

    def outcome(self) -> dict:
        """What a request's result says about its counts: selected, packed, left out with each reason,
        and a sentence for people."""
        return {"selected": self.selected, "images": self.images, "left_out": self.left_out, "dropped": self.dropped,
                "withheld": self.withheld,
                "summary": counts_sentence(self.selected, self.images, self.dropped, self.withheld)}


def counts_sentence(selected: int, packed: int, dropped: dict[str, int], withheld: dict[str, int] | None = None) -> str:
    """`45 images selected, 23 packed, 22 left out (22 no animal box from the detector)`, and `; 7 matching
    images withheld (7 not yet assigned ...)` when some were never selectable."""
    left_out = sum(dropped.values())
    why = ", ".join(f"{n} {reason}" for reason, n in dropped.items() if n)
    held = ", ".join(f"{n} {reason}" for reason, n in (withheld or {}).items() if n)
    return (f"{selected} images selected, {packed} packed, {left_out} left out" + (f" ({why})" if why else "")
            + (f"; {sum((withheld or {}).values())} matching images withheld ({held})" if held else ""))


def dropped_by_reason(labels: pd.DataFrame) -> dict[str, int]:
    """Reason -> images of `labels` (label rows) that a request leaves out, every reason listed."""
    counts = labels.label_status.value_counts() if len(labels) else pd.Series(dtype="int64")
    return {reason: int(counts.get(status, 0)) for status, reason in DROP_REASONS.items()}


def left_out_estimate(selected: pd.DataFrame, known_labels: pd.DataFrame) -> dict:
    """Before a request runs: of the `selected` images, how many already have labels (`known_labels`:
    path, label_status, e.g. the benchmark's `detection_labels`) and how many of those would be left out,
    by reason; with a sentence for the live count."""
    known = known_labels[known_labels.path.isin(selected.path)].drop_duplicates("path") if len(known_labels) \
        else pd.DataFrame(columns=["path", "label_status"])
    dropped = dropped_by_reason(known)
    would = sum(dropped.values())
    if known.empty:
        note = f"No labels computed yet for these images. {LEFT_OUT_NOTE}"
    else:
        why = ", ".join(f"{n} {reason}" for reason, n in dropped.items() if n)
        note = (f"Of the {len(known)} of these images already labelled, {would} would be left out"
                + (f" ({why})" if why else "") + f". {LEFT_OUT_NOTE}")
    return {"labels_known": len(known), "would_be_left_out": would, "dropped": dropped, "note": note}


def export_findings(labels: pd.DataFrame, selected: int, spec: ExportSpec, names: list[str],
                    zip_problem: str | None, withheld: dict[str, int] | None = None) -> ExportFindings:
    """Findings of a request's ZIP (entry `names`) packed from `labels` of the `selected` images."""
    chosen = usable(labels)
    in_request = (
        (not spec.parks or chosen.park.isin(spec.parks).all())
        and (not spec.species or chosen.species.isin([*spec.species, EMPTY_SPECIES]).all())
        and (spec.include_empties or (chosen.species != EMPTY_SPECIES).all())
        and (spec.limit is None or selected <= spec.limit)
    )
    return ExportFindings(
        images=len(chosen), left_out=len(labels) - len(chosen), selected=selected, dropped=dropped_by_reason(labels),
        matches_request=bool(in_request),
        label_files=sum(n.endswith(".txt") for n in names),
        expected_label_files=int((chosen.label_status == LABELLED).sum()) * ("yolo" in spec.formats),
        zip_problem=zip_problem, withheld=dict(withheld or {}))


def expired_request_zips(objects, now, days: int, folder: str) -> list[str]:
    """Request ids whose published ZIP (`<folder><id>.zip` among `objects`: keys + last_modified) is older
    than `days` (the thesis's `delete-custom-datasets`)."""
    cutoff = now - timedelta(days=days)
    names = ((o.key.removeprefix(folder), o.last_modified) for o in objects if o.key.startswith(folder))
    return sorted(name[: -len(".zip")] for name, modified in names
                  if name.endswith(".zip") and "/" not in name and modified < cutoff)
