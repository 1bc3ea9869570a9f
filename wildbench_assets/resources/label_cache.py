"""Detections computed once per (detector, image content): a persistent, append-only Parquet cache.

Keyed by the detector's identity (backend, weights hash, thresholds) and the image's content sha256;
the object's etag is stored too, so a re-run finds an unchanged image without even reading it.
Runs append segment files (no read-modify-write, so concurrent partitions cannot lose entries); once
there are more than `COMPACT_AFTER` segments, a load folds the ones it read into one file and deletes
only those, so a segment appended meanwhile by another run survives and loading stays one read.
"""

from __future__ import annotations

import hashlib
import json
import uuid

import pandas as pd
from dagster_aws.s3.resources import ResourceWithS3Configuration
from pydantic import Field

from wildbench_assets.lib.annotations import Box
from wildbench_assets.resources.archive import Archive, open_store
from wildbench_assets.resources.detector import Detection
from wildbench_assets.resources.parquet_io import parquet_bytes, read_parquet_bytes

COLUMNS = ["path", "etag", "sha256", "width", "height", "detections"]
COMPACT_AFTER = 16


def detections_to_json(detections: tuple[Detection, ...]) -> str:
    return json.dumps([d.to_md() for d in detections])


def detections_from_json(text: str) -> tuple[Detection, ...]:
    return tuple(Detection(d["category"], float(d["conf"]), Box.from_md(d["bbox"])) for d in json.loads(text))


class LabelCache(ResourceWithS3Configuration):
    """Under `<base_dir>/label_cache/<identity hash>/`: a folder or an S3 prefix (dagster-aws's S3 settings)."""

    base_dir: str = Field(description="The data directory (WILDBENCH_DATA): a folder or s3://bucket/prefix")

    def _folder(self, identity: str) -> Archive:
        return open_store(f"{self.base_dir.rstrip('/')}/label_cache/"
                          f"{hashlib.sha256(identity.encode()).hexdigest()[:16]}", self)

    def load(self, identity: str) -> pd.DataFrame:
        folder = self._folder(identity)
        segments = [o.key for o in folder.list() if o.key.endswith(".parquet") and "/" not in o.key]
        frames = [frame for key in segments if (frame := read_parquet_bytes(folder.read_optional(key))) is not None]
        if not frames:
            return pd.DataFrame(columns=COLUMNS)
        table = pd.concat(frames, ignore_index=True).drop_duplicates(
            ["path", "etag", "sha256"], keep="last", ignore_index=True)
        if len(segments) > COMPACT_AFTER:
            folder.write(f"{uuid.uuid4().hex}.parquet", parquet_bytes(table[COLUMNS]))
            for key in segments:
                folder.delete(key)
        return table

    def append(self, identity: str, rows: pd.DataFrame) -> None:
        if rows.empty:
            return
        folder = self._folder(identity)
        folder.write("identity.json", identity.encode())
        folder.write(f"{uuid.uuid4().hex}.parquet", parquet_bytes(rows[COLUMNS].reset_index(drop=True)))
