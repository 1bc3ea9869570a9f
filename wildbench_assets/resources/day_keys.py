"""Per-(park, arrival day) key lists: what the `archive_arrivals` sensor (and `wildbench run`) saw of each
day it requests, so an ingest run reads its day's objects instead of listing the whole park again.

Layout under one folder or `s3://` prefix (`WILDBENCH_DAY_KEYS`, default `<data>/day_keys`):
    <park>/<day>.parquet        the day's objects (key, size, etag, mtime, kind), its fingerprint in the
                                file's metadata; replaced atomically, never visible half-written
    scans/<scan id>/<n>.parquet one listing's pages, spilled while it runs (it may span sensor ticks);
                                read back once the listing ends, then deleted
"""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
from dagster_aws.s3.resources import ResourceWithS3Configuration
from pydantic import Field

from wildbench_assets.lib.arrivals import partition_of
from wildbench_assets.resources.archive import Archive, ArchiveObject, open_store

# Runs whose requester wrote key lists for their partitions carry this tag; any other run (a manual
# materialization in the UI) lists the park, because a key list may be older than the archive.
DAY_KEYS_TAG = "wildbench/day_keys"
FINGERPRINT_META = b"wildbench.fingerprint"
STALE_SCAN_S = 24 * 3600  # a listing abandoned this long ago (cursor reset, daemon moved) is swept

_COLUMNS = ("key", "size", "etag", "mtime_ns", "kind")


def _rows(objects: Iterable[ArchiveObject], with_partition: bool) -> pa.Table:
    cols: dict[str, list] = {c: [] for c in (*_COLUMNS, "partition")}
    for o in objects:
        part = partition_of(o.key, o.last_modified)
        if with_partition:
            if part is None:
                continue
            cols["partition"].append(f"{part[0]}|{part[1]}")
        cols["key"].append(o.key)
        cols["size"].append(o.size)
        cols["etag"].append(o.etag)
        cols["mtime_ns"].append(int(o.last_modified.timestamp() * 1e9))
        cols["kind"].append(o.kind)
    if not with_partition:
        del cols["partition"]
    schema = pa.schema([("key", pa.string()), ("size", pa.int64()), ("etag", pa.string()),
                        ("mtime_ns", pa.int64()), ("kind", pa.string()),
                        *([("partition", pa.string())] if with_partition else [])])
    return pa.table(cols, schema=schema)


def _objects(table: pa.Table) -> list[ArchiveObject]:
    d = table.to_pydict()
    return [ArchiveObject(key=k, size=s, etag=e, last_modified=datetime.fromtimestamp(m / 1e9, tz=UTC), kind=kind)
            for k, s, e, m, kind in zip(d["key"], d["size"], d["etag"], d["mtime_ns"], d["kind"])]


def _parquet(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


class DayKeyStore:
    """The key lists in one store (local folder or S3), all writes atomic."""

    def __init__(self, store: Archive):
        self.store = store

    @staticmethod
    def _name(park: str, day: str) -> str:
        return f"{park}/{day}.parquet"

    def write(self, park: str, day: str, fingerprint: str, objects: Iterable[ArchiveObject]) -> None:
        self.write_table(park, day, fingerprint, _rows(objects, with_partition=False))

    def write_table(self, park: str, day: str, fingerprint: str, table: pa.Table) -> None:
        table = table.replace_schema_metadata({FINGERPRINT_META: fingerprint.encode()})
        self.store.write(self._name(park, day), _parquet(table))

    def read(self, park: str, day: str) -> tuple[list[ArchiveObject], str] | None:
        """(the day's objects in key order, the fingerprint the lister saw), or None if none was written."""
        data = self.store.read_optional(self._name(park, day))
        if data is None:
            return None
        table = pq.read_table(io.BytesIO(data))
        return _objects(table), (table.schema.metadata or {}).get(FINGERPRINT_META, b"").decode()

    def spill(self, state: Mapping | None = None) -> ListingSpill:
        """A listing's spill area: a new one, or the one a cursor carried (`ListingSpill.to_json`)."""
        state = state or {}
        return ListingSpill(self, state.get("id") or uuid.uuid4().hex[:16], int(state.get("pages", 0)))


class ListingSpill:
    """The pages of one listing, kept aside until the listing ends and it is known which days changed."""

    def __init__(self, keys: DayKeyStore, scan_id: str, pages: int = 0):
        self.keys, self.scan_id, self.pages = keys, scan_id, pages

    def _page(self, n: int) -> str:
        return f"scans/{self.scan_id}/{n:06d}.parquet"

    def add(self, objects: list[ArchiveObject]) -> None:
        table = _rows(objects, with_partition=True)
        if table.num_rows:
            self.keys.store.write(self._page(self.pages), _parquet(table))
            self.pages += 1

    def to_json(self) -> dict:
        return {"id": self.scan_id, "pages": self.pages}

    def publish(self, fingerprints: Mapping[tuple[str, str], str]) -> int:
        """Write the key list of every (park, day) in `fingerprints` (a day with no object gets an empty
        list), each before the run that reads it is requested; then drop the pages. Returns lists written."""
        wanted = pa.array(sorted({f"{p}|{d}" for p, d in fingerprints}), pa.string())
        pages = [pq.read_table(io.BytesIO(self.keys.store.read(self._page(n)))) for n in range(self.pages)] \
            if len(wanted) else []
        rows = pa.concat_tables([t.filter(pa.compute.is_in(t["partition"], wanted)) for t in pages]) \
            if pages else _rows([], with_partition=True)
        rows = rows.take(pa.compute.sort_indices(rows, [("partition", "ascending"), ("key", "ascending")]))
        parts = rows["partition"].to_pylist()
        bounds: dict[str, tuple[int, int]] = {}
        for i, part in enumerate(parts):  # sorted: each partition is one contiguous slice
            start = bounds.get(part, (i, i))[0]
            bounds[part] = (start, i + 1)
        rows = rows.drop_columns(["partition"])
        for (park, day), fingerprint in fingerprints.items():
            start, end = bounds.get(f"{park}|{day}", (0, 0))
            self.keys.write_table(park, day, fingerprint, rows.slice(start, end - start))
        self.drop()
        return len(fingerprints)

    def drop(self) -> None:
        """Delete this listing's pages, and any other listing's left more than a day ago."""
        now = time.time()
        for o in list(self.keys.store.list("scans/")):
            mine = o.key.startswith(f"scans/{self.scan_id}/")
            if mine or now - o.last_modified.timestamp() > STALE_SCAN_S:
                self.keys.store.delete(o.key)


class DayKeyLists(ResourceWithS3Configuration):
    """Where per-day key lists are written by the lister and read by ingest runs: a folder or
    s3://bucket/prefix (the S3 settings are dagster-aws's)."""

    uri: str = Field(description="Folder or s3://bucket/prefix for per-(park, day) key lists")

    def open(self) -> DayKeyStore:
        return DayKeyStore(open_store(self.uri, self))
