"""Species and park reference tables (thesis Table 3.1) and the class-index order of its labels.

Archives with other species or parks extend these from a YAML file (see `load_taxonomy`), never by
editing this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

EMPTY = "emp"


@dataclass(frozen=True)
class Species:
    code: str
    scientific_name: str
    common_name: str


@dataclass(frozen=True)
class Park:
    code: str
    name: str
    # Where the park is, for Camtrap DP deployments: its centre and a radius covering it (camera positions
    # are not in the archive), and the UTC offset camera clocks keep (standard time: traps ignore DST).
    latitude: float | None = None
    longitude: float | None = None
    uncertainty_m: int | None = None
    utc_offset: str = "+00:00"


# Table 3.1 of the thesis, in the order of its annotation list (the list index is the YOLO class id).
THESIS_SPECIES: tuple[Species, ...] = (
    Species("bos", "Bos primigenius", "aurochs / cattle"),
    Species("caae", "Capra aegagrus hircus", "domestic goat"),
    Species("caca", "Capreolus capreolus", "roe deer"),
    Species("can", "Canis lupus familiaris", "dog"),
    Species("capi", "Capra pyrenaica", "Iberian ibex"),
    Species("cer", "Cervus elaphus", "red deer"),
    Species("dam", "Dama dama", "fallow deer"),
    Species("equ", "Equus ferus", "horse"),
    Species("fel", "Felis catus", "domestic cat"),
    Species("fsi", "Felis silvestris", "wildcat"),
    Species("gen", "Genetta genetta", "common genet"),
    Species("her", "Herpestes ichneumon", "Egyptian mongoose"),
    Species("lep", "Lepus granatensis", "Iberian hare"),
    Species("lut", "Lutra lutra", "otter"),
    Species("lyn", "Lynx pardinus", "Iberian lynx"),
    Species("mafo", "Martes foina", "beech marten"),
    Species("mel", "Meles meles", "badger"),
    Species("mus", "Mus or Apodemus", "mouse"),
    Species("ory", "Oryctolagus cuniculus", "rabbit"),
    Species("ovar", "Ovis orientalis aries", "sheep"),
    Species("ovor", "Ovis orientalis musimon", "mouflon"),
    Species("rara", "Rattus rattus", "black rat"),
    Species("sus", "Sus scrofa", "wild boar"),
    Species("vul", "Vulpes vulpes", "red fox"),
)

THESIS_PARKS: tuple[Park, ...] = (
    Park("snieves", "Sierra de las Nieves", 36.69, -5.02, 15000, "+01:00"),
    Park("donana", "Doñana", 37.00, -6.44, 30000, "+01:00"),
)


@dataclass(frozen=True)
class Taxonomy:
    """The species (in class-index order) and parks an archive may contain. `emp` is never a class."""

    species: tuple[Species, ...] = THESIS_SPECIES
    parks: tuple[Park, ...] = THESIS_PARKS
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        codes = [s.code for s in self.species]
        duplicated = sorted({c for c in codes if codes.count(c) > 1})
        if duplicated or EMPTY in codes:
            raise ValueError(f"species codes must be unique and not '{EMPTY}': {duplicated or [EMPTY]}")
        object.__setattr__(self, "_index", {code: i for i, code in enumerate(codes)})

    @property
    def class_names(self) -> list[str]:
        """Species codes in class-index order (the thesis's annotation list)."""
        return [s.code for s in self.species]

    @property
    def species_codes(self) -> frozenset[str]:
        """Every code an image may carry: the classes plus `emp`."""
        return frozenset(self._index) | {EMPTY}

    @property
    def park_codes(self) -> frozenset[str]:
        return frozenset(p.code for p in self.parks)

    def class_index(self, code: str) -> int:
        """The YOLO class id of a species code; KeyError for `emp` or an unknown code."""
        return self._index[code]


def load_taxonomy(extension_file: str | Path | None = None) -> Taxonomy:
    """The thesis taxonomy, extended by an optional YAML file.

    The file may hold `species: [{code, scientific_name, common_name}]` (appended after the thesis's
    classes, so existing class ids never change) and
    `parks: [{code, name, latitude, longitude, uncertainty_m, utc_offset}]`.
    """
    if not extension_file:
        return Taxonomy()
    raw = yaml.safe_load(Path(extension_file).read_text()) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{extension_file}: expected a mapping with 'species' and/or 'parks'")
    try:
        extra_species = tuple(
            Species(str(s["code"]), str(s.get("scientific_name", "")), str(s.get("common_name", "")))
            for s in raw.get("species") or []
        )
        extra_parks = tuple(Park(str(p["code"]), str(p.get("name", p["code"])), p.get("latitude"), p.get("longitude"),
                                 p.get("uncertainty_m"), str(p.get("utc_offset", "+00:00")))
                            for p in raw.get("parks") or [])
    except (KeyError, TypeError) as err:
        raise ValueError(f"{extension_file}: every species and park needs a 'code' ({err})") from err
    known_parks = {p.code for p in THESIS_PARKS}
    return Taxonomy(
        species=THESIS_SPECIES + extra_species,
        parks=THESIS_PARKS + tuple(p for p in extra_parks if p.code not in known_parks),
    )
