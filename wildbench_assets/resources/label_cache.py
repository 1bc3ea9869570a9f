"""Detections computed once per (detector, image content): a persistent, append-only Parquet cache.

Keyed by the detector's identity (backend, weights hash, thresholds) and the image's content sha256;
the object's etag is stored too, so a re-run finds an unchanged image without even reading it.
Runs append segment files (no read-modify-write, so concurrent partitions cannot lose entries); once
there are more than `COMPACT_AFTER` segments, a lookup folds the ones it listed into one file sorted by
path and deletes only those, so a segment appended meanwhile by another run survives.

A step asks only for what it needs: `lookup(identity, paths)` reads the `path` column of each segment
(exact ranged reads of the footer and column chunks, not whole files), then the other columns of only
the row groups holding a wanted path, and turns only the matching rows into Python; `contents(identity)`
is the content index (sha256 -> detections), read on first use, i.e. only when some image had to be read.
"""

from __future__ import annotations

import hashlib
import io
import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import NamedTuple

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from dagster_aws.s3.resources import ResourceWithS3Configuration
from pydantic import Field, PrivateAttr

from wildbench_assets.lib.annotations import Box
from wildbench_assets.lib.ranged import RangedFile
from wildbench_assets.resources.archive import Archive, open_store
from wildbench_assets.resources.detector import Detection
from wildbench_assets.resources.parquet_io import parquet_bytes

COLUMNS = ["path", "etag", "sha256", "width", "height", "detections"]
KEYS = ["path", "etag", "sha256"]
COMPACT_AFTER = 16
ROW_GROUP_ROWS = 32_768  # of the compacted file: a lookup of a few paths decodes the other columns of few groups


def detections_to_json(detections: tuple[Detection, ...]) -> str:
    return json.dumps([d.to_md() for d in detections])


def detections_from_json(text: str) -> tuple[Detection, ...]:
    return tuple(Detection(d["category"], float(d["conf"]), Box.from_md(d["bbox"])) for d in json.loads(text))


def _empty() -> pd.DataFrame:
    return pd.DataFrame(columns=COLUMNS)


class ContentIndex(Mapping):
    """sha256 -> cached detections (JSON text) of one detector: read from the cache on first use, so a
    step that reads no image never pays for it. New entries can be added as they are computed."""

    def __init__(self, read: callable):
        self._read = read
        self._texts: dict[str, str] | None = None

    def _loaded(self) -> dict[str, str]:
        if self._texts is None:
            self._texts = self._read()
        return self._texts

    def __getitem__(self, sha: str) -> str:
        return self._loaded()[sha]

    def __contains__(self, sha: object) -> bool:
        return sha in self._loaded()

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded())

    def __len__(self) -> int:
        return len(self._loaded())

    def __setitem__(self, sha: str, text: str) -> None:
        self._loaded()[sha] = text

    @property
    def loaded(self) -> bool:
        return self._texts is not None


def _deduplicated(table: pa.Table) -> pa.Table:
    """Sorted by path (so a lookup skips row groups on their statistics), one row per (path, etag,
    sha256): the one appended last (the sort is stable)."""
    table = table.select(COLUMNS)
    table = table.take(pc.sort_indices(table, sort_keys=[(k, "ascending") for k in KEYS]))
    if table.num_rows < 2:
        return table
    differs = None
    for key in KEYS:
        column = pc.fill_null(table.column(key).cast(pa.string()), "")
        step = pc.not_equal(column.slice(0, table.num_rows - 1), column.slice(1))
        differs = step if differs is None else pc.or_(differs, step)
    return table.filter(pa.concat_arrays([differs.combine_chunks(), pa.array([True])]))


class LabelCache(ResourceWithS3Configuration):
    """Under `<base_dir>/label_cache/<identity hash>/`: a folder or an S3 prefix (dagster-aws's S3 settings)."""

    base_dir: str = Field(description="The data directory (WILDBENCH_DATA): a folder or s3://bucket/prefix")
    _rows_read: int = PrivateAttr(default=0)
    _bytes_read: int = PrivateAttr(default=0)

    @property
    def rows_read(self) -> int:
        """Cached rows turned into Python by this resource object so far (what lookups cost)."""
        return self._rows_read

    @property
    def bytes_read(self) -> int:
        """Bytes fetched from the cache's files by this resource object so far."""
        return self._bytes_read

    def _folder(self, identity: str) -> Archive:
        return open_store(f"{self.base_dir.rstrip('/')}/label_cache/"
                          f"{hashlib.sha256(identity.encode()).hexdigest()[:16]}", self)

    @staticmethod
    def _segments(folder: Archive) -> list:
        return [o for o in folder.list() if o.key.endswith(".parquet") and "/" not in o.key]

    def _each_segment(self, folder: Archive, segments, read: Callable[[pq.ParquetFile], list[pa.Table]]):
        """`read` applied to every segment through exact ranged reads (only the bytes Parquet asks for,
        counted); a segment folded into a compacted file by another run meanwhile is skipped."""
        for segment in segments:
            handle = RangedFile(lambda start, end, key=segment.key: folder.read_range(key, start, end),
                                segment.size, block_size=None)
            try:
                yield from read(pq.ParquetFile(handle))
            except OSError:
                if folder.describe(segment.key) is None:
                    continue
                raise
            finally:
                self._bytes_read += handle.bytes_fetched

    def _read_all(self, folder: Archive, segments, columns=None) -> pa.Table | None:
        tables = list(self._each_segment(folder, segments, lambda parquet: [parquet.read(columns=columns)]))
        return pa.concat_tables(tables, promote_options="permissive") if tables else None

    def load(self, identity: str) -> pd.DataFrame:
        """Every cached row of this detector, duplicates dropped (for tools and audits; steps use
        `lookup` and `contents`, which read only what they need)."""
        folder = self._folder(identity)
        segments = self._segments(folder)
        table = self._read_all(folder, segments)
        if table is None:
            return _empty()
        self._rows_read += table.num_rows
        table = _deduplicated(table)
        self._compact(folder, segments, table)
        return table.to_pandas()

    def _compact(self, folder: Archive, segments, table: pa.Table | None = None) -> None:
        if len(segments) <= COMPACT_AFTER:
            return
        if table is None:
            table = self._read_all(folder, segments)
            if table is None:
                return
            table = _deduplicated(table)
        buffer = io.BytesIO()
        pq.write_table(table, buffer, row_group_size=ROW_GROUP_ROWS)
        folder.write(f"{uuid.uuid4().hex}.parquet", buffer.getvalue())
        for segment in segments:
            folder.delete(segment.key)

    def lookup(self, identity: str, paths: Iterable[str]) -> pd.DataFrame:
        """The cached rows of these paths (any etag), duplicates dropped. Reads each segment's `path`
        column, then the rest of only the row groups that hold a wanted path."""
        folder = self._folder(identity)
        segments = self._segments(folder)
        self._compact(folder, segments)
        if len(segments) > COMPACT_AFTER:
            segments = self._segments(folder)
        wanted = pa.array(sorted(set(paths)), pa.string())
        if not len(wanted) or not segments:
            return _empty()
        first, last = wanted[0].as_py(), wanted[-1].as_py()
        found = list(self._each_segment(folder, segments,
                                        lambda parquet: self._matching_groups(parquet, wanted, first, last)))
        if not found:
            return _empty()
        table = pa.concat_tables(found, promote_options="permissive")
        self._rows_read += table.num_rows
        return _deduplicated(table).to_pandas()

    @staticmethod
    def _matching_groups(parquet: pq.ParquetFile, wanted: pa.Array, first: str, last: str) -> list[pa.Table]:
        meta, found = parquet.metadata, []
        path_column = parquet.schema_arrow.get_field_index("path")
        for group in range(meta.num_row_groups):
            stats = meta.row_group(group).column(path_column).statistics
            if stats is not None and stats.has_min_max and (stats.max < first or stats.min > last):
                continue  # the compacted file is sorted by path: most groups are skipped on their statistics
            paths = parquet.read_row_group(group, columns=["path"]).column("path")
            mask = pc.is_in(paths, value_set=wanted)
            if pc.any(mask).as_py():
                rest = parquet.read_row_group(group, columns=COLUMNS[1:]).filter(mask)
                found.append(rest.add_column(0, "path", paths.filter(mask)))
        return found

    def contents(self, identity: str) -> ContentIndex:
        """sha256 -> detections JSON of every cached image content of this detector, read on first use."""
        def read() -> dict[str, str]:
            folder = self._folder(identity)
            table = self._read_all(folder, self._segments(folder), columns=["sha256", "detections"])
            if table is None:
                return {}
            self._rows_read += table.num_rows
            return dict(zip(table.column("sha256").to_pylist(), table.column("detections").to_pylist()))
        return ContentIndex(read)

    def append(self, identity: str, rows: pd.DataFrame) -> None:
        if rows.empty:
            return
        folder = self._folder(identity)
        folder.write("identity.json", identity.encode())
        folder.write(f"{uuid.uuid4().hex}.parquet", parquet_bytes(rows[COLUMNS].reset_index(drop=True)))


CHECKPOINT_EVERY = 64  # new rows appended to the cache this often: a killed run keeps what it computed


class Computed(NamedTuple):
    """One image the cache did not answer by (path, etag): `text` is the JSON to cache under its content
    (None: nothing to cache, e.g. a failure), `result` what the caller keeps."""

    path: str
    sha256: str | None
    width: int | None
    height: int | None
    text: str | None
    result: dict


def cached_inference(label_cache: LabelCache, identity: str, paths: Iterable[str], etags: Iterable[str],
                     compute: Callable[[list[str]], Iterable[Computed]], log, name: str,
                     progress: Callable[[int, int], None] | None = None) -> tuple[dict, dict[str, Computed]]:
    """The one cache-then-infer loop: (path -> cached row for an unchanged object, path -> Computed for the
    rest). Unchanged objects (same path and etag under `identity`) are not even read; `compute` gets the
    others (it may answer same content from `label_cache.contents(identity)`) and what it yields is
    appended to the cache every `CHECKPOINT_EVERY` rows, so the next run resumes where a killed one stopped.
    `progress(done, total)` is told how many of the images to compute are done, now and then."""
    paths, etags = list(paths), list(etags)
    cached = label_cache.lookup(identity, paths)  # only these images, not the whole cache
    by_etag = {(p, e): row for p, e, row in zip(cached.path, cached.etag, cached.itertuples(index=False))}
    hits = {p: by_etag[(p, e)] for p, e in zip(paths, etags) if (p, e) in by_etag}
    todo = [p for p in paths if p not in hits]
    log.info(f"{name}: {len(paths)} images, {len(hits)} from the label cache, {len(todo)} to read")
    etag_of, computed, rows = dict(zip(paths, etags)), {}, []
    for done, item in enumerate(compute(todo), start=1):
        computed[item.path] = item
        if item.text is not None:
            rows.append({"path": item.path, "etag": etag_of[item.path], "sha256": item.sha256, "width": item.width,
                         "height": item.height, "detections": item.text})
        if len(rows) >= CHECKPOINT_EVERY:
            label_cache.append(identity, pd.DataFrame(rows, columns=COLUMNS))
            rows = []
        if done % 100 == 0:
            log.info(f"{name}: {done}/{len(todo)} images read")
        if progress is not None and (done % 16 == 0 or done == len(todo)):
            progress(done, len(todo))
    label_cache.append(identity, pd.DataFrame(rows, columns=COLUMNS))
    return hits, computed
