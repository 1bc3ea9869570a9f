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
from pathlib import Path

import dagster as dg
import pandas as pd
from pydantic import Field

from wildbench_assets.lib.annotations import Box
from wildbench_assets.resources.atomic import is_temp
from wildbench_assets.resources.detector import Detection
from wildbench_assets.resources.parquet_io import write_parquet_atomic

COLUMNS = ["path", "etag", "sha256", "width", "height", "detections"]
COMPACT_AFTER = 16


def detections_to_json(detections: tuple[Detection, ...]) -> str:
    return json.dumps([d.to_md() for d in detections])


def detections_from_json(text: str) -> tuple[Detection, ...]:
    return tuple(Detection(d["category"], float(d["conf"]), Box.from_md(d["bbox"])) for d in json.loads(text))


class LabelCache(dg.ConfigurableResource):
    base_dir: str = Field(description="The data directory (WILDBENCH_DATA)")

    def _folder(self, identity: str) -> Path:
        return Path(self.base_dir, "label_cache", hashlib.sha256(identity.encode()).hexdigest()[:16])

    def load(self, identity: str) -> pd.DataFrame:
        folder = self._folder(identity)
        files = sorted(p for p in folder.glob("*.parquet") if not is_temp(p.name))
        if not files:
            return pd.DataFrame(columns=COLUMNS)
        table = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True).drop_duplicates(
            ["path", "etag", "sha256"], keep="last", ignore_index=True)
        if len(files) > COMPACT_AFTER:
            write_parquet_atomic(table[COLUMNS], folder / f"{uuid.uuid4().hex}.parquet")
            for f in files:
                f.unlink(missing_ok=True)
        return table

    def append(self, identity: str, rows: pd.DataFrame) -> None:
        if rows.empty:
            return
        folder = self._folder(identity)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "identity.json").write_text(identity)
        write_parquet_atomic(rows[COLUMNS].reset_index(drop=True), folder / f"{uuid.uuid4().hex}.parquet")
