"""Split archives as the thesis shipped them (`<park>/<species>/<id>.jpg` + `<id>.txt`), streamed.

Each image is copied from its source stream straight into the ZIP in chunks — no temp copy of the
images, memory bounded by the chunk size whatever the archive's size. JPEG/PNG are stored (they are
already compressed; deflating them again costs CPU for ~1 % size); text entries are deflated.
"""

from __future__ import annotations

import json
import posixpath
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import BinaryIO

CHUNK = 1 << 20
STORED_SUFFIXES = (".jpg", ".jpeg", ".png")
# Every entry carries this time (the ZIP epoch), so the same members give byte-identical archives.
ENTRY_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class ZipMember:
    name: str                      # path inside the ZIP
    source: str | None = None      # archive key to stream from (images)
    text: str | None = None        # or literal text (labels, manifest)


def member_name(park: str, species: str, path: str) -> str:
    """`<park>/<species>/<id>.<ext>` with the image's base name as id (thesis layout)."""
    return f"{park}/{species}/{posixpath.basename(path)}"


def write_zip(target: str, members: Iterable[ZipMember], open_source: Callable[[str], BinaryIO]) -> list[str]:
    """Write members to `target` (a temp path: the caller renames); return the names written."""
    names = []
    with zipfile.ZipFile(target, "w", allowZip64=True) as archive:
        for member in members:
            info = zipfile.ZipInfo(member.name, date_time=ENTRY_TIME)
            info.external_attr = 0o644 << 16
            if member.text is not None:
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, member.text)
            else:
                stored = member.name.lower().endswith(STORED_SUFFIXES)
                info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
                with open_source(member.source) as src, archive.open(info, "w", force_zip64=True) as dst:
                    while block := src.read(CHUNK):
                        dst.write(block)
            names.append(member.name)
    return names


def verify_zip(path: str, expected_names: list[str]) -> str | None:
    """None if the ZIP reads back whole (every CRC) with exactly the expected entries, else why not."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
            if bad is not None:
                return f"CRC mismatch in {bad}"
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError) as err:
        return f"unreadable ZIP: {err}"
    if sorted(names) != sorted(expected_names):
        missing, extra = set(expected_names) - set(names), set(names) - set(expected_names)
        return f"entries differ: {len(missing)} missing, {len(extra)} unexpected"
    if len(names) != len(set(names)):
        return "duplicate entries"
    return None


def manifest_json(rows: list[dict], extra: dict) -> str:
    return json.dumps({**extra, "images": rows}, indent=1, default=str)
