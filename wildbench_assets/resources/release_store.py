"""The one home of release state: which releases are cut, what each froze (`release.json`), its manifest,
datasheet and hidden truth, its files, and the rules a release's name follows.

Over the artifact store, so the same answers come from a local folder and from S3. A release is cut when
its seal (`manifest.csv`, uploaded last) is there. Reading a release fetches only the files asked for:
with S3 a question ("is it cut?", "which releases?") is a listing, a small file is fetched alone, and a
ZIP is streamed by ranged reads (`open`), never copied whole into the cache by a reader that needs none
of it.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import pandas as pd

from wildbench_assets import layout
from wildbench_assets.lib.releases import RELEASE_NAME, ReleaseFacts, read_manifest
from wildbench_assets.resources.artifacts import ArtifactStore

THESIS_SUFFIX = "-thesis"  # a thesis-profile release is named after the default one of its month: 2026.11-thesis


class ReleaseNameError(ValueError):
    """A release name that is not a release id (a folder name: letters, digits, '.', '_', '-')."""


def check_name(name: str) -> str:
    """`name` if it is a release id, else ReleaseNameError saying the rule."""
    if not RELEASE_NAME.fullmatch(name):
        raise ReleaseNameError(f"release name {name!r}: use letters, digits, '.', '_' and '-' (e.g. 2026.11)")
    return name


def monthly_name(when: datetime) -> str:
    """`YYYY.MM`: one release a month; a second cut in the same month gets `YYYY.MM.2`, ..."""
    return when.strftime("%Y.%m")


def next_release_name(existing: list[str], when: datetime) -> str:
    base = monthly_name(when)
    taken = set(existing)
    if base not in taken:
        return base
    return next(f"{base}.{n}" for n in range(2, 10_000) if f"{base}.{n}" not in taken)


def release_name_for(existing: list[str], profile: str, when: datetime, verify: bool = False) -> str:
    """The name `wildbench release` gives a cut of `profile` (`default`, `thesis`) when none is given: the
    month's next free name, with `-thesis` for a thesis-profile release; with `verify`, the newest existing
    release of that profile (if any) is the one checked."""
    suffix = "" if profile == "default" else f"-{profile}"
    mine = [e for e in existing if e.endswith(THESIS_SUFFIX) == (profile == "thesis")]
    if verify and mine:
        return mine[-1]
    return next_release_name([e.removesuffix(suffix) for e in mine], when) + suffix


class ReleaseStore:
    """The releases in an artifact store (local folder or S3)."""

    def __init__(self, artifacts: ArtifactStore):
        self.artifacts = artifacts

    # --- state -------------------------------------------------------------------------------------
    def is_cut(self, release: str) -> bool:
        """Whether `release` was cut and its folder is whole (its seal is present); with S3 nothing is fetched."""
        return self.artifacts.exists(layout.release_file(release, layout.MANIFEST))

    def names(self) -> list[str]:
        """Every cut release (its seal present), sorted by name; one listing."""
        found = (layout.release_of(o.key, layout.MANIFEST) for o in self.artifacts.list(f"{layout.RELEASES}/"))
        return sorted(name for name in found if name)

    def facts(self, release: str) -> ReleaseFacts | None:
        """What a release froze at its cut (classes, profile, cut time), or None if it was never cut."""
        if not self.is_cut(release):
            return None
        text = self.text(release, layout.FACTS)
        if text is None:
            return None
        try:
            return ReleaseFacts.from_json(text)
        except ValueError as err:
            raise ValueError(f"release {release}: {err}") from err

    def profile(self, release: str) -> str | None:
        """The profile a release was cut with (`default`, `thesis`), or None if it was never cut."""
        facts = self.facts(release)
        return None if facts is None else facts.profile

    # --- its files -----------------------------------------------------------------------------------
    def local_file(self, release: str, name: str) -> Path:
        """A local copy of one file of the release (with S3: that file alone is fetched); it may not exist."""
        return self.artifacts.path(layout.release_file(release, name))

    def local_folder(self, release: str) -> Path:
        """The whole release folder on this machine (with S3: every file fetched); for the asset that
        rebuilds and compares it, not for readers."""
        return self.artifacts.path(layout.release_dir(release))

    def text(self, release: str, name: str) -> str | None:
        path = self.local_file(release, name)
        return path.read_text() if path.is_file() else None

    def manifest_bytes(self, release: str) -> bytes:
        return self.local_file(release, layout.MANIFEST).read_bytes()

    def manifest(self, release: str) -> pd.DataFrame:
        return read_manifest(self.manifest_bytes(release))

    def truth(self, release: str) -> str:
        """The hidden test truth (COCO json) that submissions and models are scored against."""
        return self.local_file(release, layout.TRUTH).read_text()

    def datasheets(self) -> list[dict]:
        """Every published datasheet (one listing, then only the datasheets fetched: never a ZIP)."""
        found = (layout.release_of(o.key, layout.DATASHEET) for o in self.artifacts.list(f"{layout.RELEASES}/"))
        return [json.loads(self.local_file(name, layout.DATASHEET).read_text()) for name in found if name]

    def has_file(self, release: str, name: str) -> bool:
        return self.artifacts.exists(layout.release_file(release, name))

    def open(self, release: str, name: str) -> BinaryIO:
        """A seekable stream of one release file (a ZIP opens on it): with S3, ranged reads, nothing cached."""
        return self.artifacts.open(layout.release_file(release, name))
