"""What arrived in the archive: objects grouped by (park, arrival day), each group with a fingerprint.

A fingerprint is `<count>-<newest mtime ns>-<xor of per-object hashes>`: order-independent and
mergeable, so a listing can be paged across sensor ticks and summed up, and any added, removed or
rewritten object (new etag) changes it. The manifests that describe a park (the root `manifest.json`
and `<park>/manifest.json`) are part of every non-empty partition of that park: a corrected manifest
relabels images without touching them. `raw_images` stores the same fingerprint (`partition_fingerprint`)
as its data version, which is how the sensor and `wildbench run` know what the last run of a partition saw.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from wildbench_assets.lib.inventory import arrival_day, is_manifest, manifest_keys

# Partition keys become file names and Dagster keys: no '|' (the multi-partition separator), no '/'.
SAFE_PARK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
EMPTY_FINGERPRINT = "0-0-0000000000000000"


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


@dataclass
class Fingerprint:
    count: int = 0
    newest_ns: int = 0
    digest: int = 0

    def add(self, key: str, etag: str, modified: datetime) -> None:
        self.count += 1
        self.newest_ns = max(self.newest_ns, int(modified.timestamp() * 1e9))
        self.digest ^= _hash(f"{key}\0{etag}")

    def with_manifests(self, park: str, manifests: Mapping[str, str]) -> Fingerprint:
        """This fingerprint with the etags of the park's manifests (key -> etag) mixed in; an empty
        partition stays empty (it holds nothing a manifest could describe)."""
        digest = self.digest
        for key in manifest_keys(park) if self.count else ():
            if key in manifests:
                digest ^= _hash(f"manifest\0{key}\0{manifests[key]}")
        return Fingerprint(self.count, self.newest_ns, digest)

    def merge(self, other: Fingerprint) -> None:
        self.count += other.count
        self.newest_ns = max(self.newest_ns, other.newest_ns)
        self.digest ^= other.digest

    def __str__(self) -> str:
        return f"{self.count}-{self.newest_ns}-{self.digest:016x}"

    @classmethod
    def parse(cls, text: str) -> Fingerprint:
        count, newest, digest = text.split("-")
        return cls(int(count), int(newest), int(digest, 16))


def fingerprint_of(objects: Iterable) -> str:
    """The fingerprint of objects with `.key`, `.etag`, `.last_modified` (one partition's listing)."""
    found = Fingerprint()
    for o in objects:
        found.add(o.key, o.etag, o.last_modified)
    return str(found)


def partition_fingerprint(objects: Iterable, park: str, manifests: Mapping[str, str]) -> str:
    """What raw_images stores and the sensor compares: the partition's objects plus the park's manifests
    (key -> etag of those that exist)."""
    return str(Fingerprint.parse(fingerprint_of(objects)).with_manifests(park, manifests))


def partition_of(key: str, modified: datetime) -> tuple[str, str] | None:
    """(park, arrival day) of an archive object that belongs to a partition; None for manifests, files at
    the root and folders that cannot be partition keys."""
    if is_manifest(key) or "/" not in key:
        return None
    park = key.split("/", 1)[0]
    return (park, arrival_day(modified)) if SAFE_PARK.match(park) else None


@dataclass
class ArchiveScan:
    """Fingerprints per (park, day) of the objects seen so far, plus keys that cannot be partitions."""

    partitions: dict[tuple[str, str], Fingerprint]
    rejected_parks: dict[str, int]
    manifests: dict[str, str] = field(default_factory=dict)  # root and park manifests: key -> etag

    @classmethod
    def empty(cls) -> ArchiveScan:
        return cls({}, {})

    def add(self, objects: Iterable) -> str | None:
        """Account for listed objects (archive order); returns the last key seen."""
        last = None
        for o in objects:
            last = o.key
            if is_manifest(o.key):
                if o.key.count("/") <= 1:  # the root's or a park's: the ones ingest reads
                    self.manifests[o.key] = o.etag
                continue
            part = partition_of(o.key, o.last_modified)
            if part is None:
                if "/" in o.key:
                    park = o.key.split("/", 1)[0]
                    self.rejected_parks[park] = self.rejected_parks.get(park, 0) + 1
                continue
            self.partitions.setdefault(part, Fingerprint()).add(o.key, o.etag, o.last_modified)
        return last

    def to_json(self) -> dict:
        return {"p": {f"{p}|{d}": str(f) for (p, d), f in self.partitions.items()}, "r": self.rejected_parks,
                "m": self.manifests}

    @classmethod
    def from_json(cls, doc: dict) -> ArchiveScan:
        parts = {tuple(k.split("|", 1)): Fingerprint.parse(v) for k, v in doc.get("p", {}).items()}
        return cls(parts, dict(doc.get("r", {})), dict(doc.get("m", {})))

    def fingerprints(self) -> dict[tuple[str, str], str]:
        return {(park, day): str(f.with_manifests(park, self.manifests)) for (park, day), f in self.partitions.items()}


@dataclass(frozen=True)
class IngestPlan:
    to_run: list[tuple[str, str, str]]        # (park, day, fingerprint), oldest day first, at most the cap
    deferred: int                             # changed partitions left for a later tick (over the cap)
    vanished: list[tuple[str, str]]           # ingested partitions whose objects are all gone
    unchanged: int


def plan_ingest(current: Mapping[tuple[str, str], str], stored: Mapping[tuple[str, str], str],
                pending: Mapping[tuple[str, str], str] | None = None, cap: int | None = None) -> IngestPlan:
    """Which (park, day) partitions to ingest. `current`: fingerprints of the archive now; `stored`:
    what the last successful ingest of each partition saw (raw_images' data version); `pending`:
    partitions already requested with that fingerprint and not finished yet (not requested again).
    A partition ingested before and now absent from the archive has vanished: it is re-run so its
    tables become empty (and reported), never silently kept."""
    pending = pending or {}
    changed, vanished, unchanged = [], [], 0
    for part in sorted(set(current) | set(stored), key=lambda p: (p[1], p[0])):
        now = current.get(part, EMPTY_FINGERPRINT)
        if stored.get(part) == now:
            unchanged += 1
            continue
        if part not in current:  # ingested before (else it would not be listed here), all gone now
            vanished.append(part)
        if pending.get(part) == now:
            continue
        changed.append((*part, now))
    taken = changed if cap is None else changed[:cap]
    return IngestPlan(taken, len(changed) - len(taken), vanished, unchanged)
