"""Input snapshots (`resources/input_snapshot.py`): `curated_images[park]` reads only the days of its park that
are new or changed since its last run, and its answer is the one a full read of every day gives — across an
arrival, a re-ingested day, a deleted day and a damaged snapshot, on a local folder and on S3."""

import io
import os
import time
import zlib

import dagster as dg
import numpy as np
import pandas as pd

from wildbench_assets import layout
from wildbench_assets.assets.curation import curated_images
from wildbench_assets.assets.ingest import image_metadata
from wildbench_assets.partitions import park_day_key
from wildbench_assets.resources import input_snapshot
from wildbench_assets.resources.archive import LocalArchive, open_archive
from wildbench_assets.resources.input_snapshot import load_partitions
from wildbench_assets.resources.parquet_io import ParquetIOManager, parquet_bytes, read_parquet_bytes
from wildbench_assets.resources.taxonomy import TaxonomyResource

PARK = "snieves"
SNAPSHOT = layout.input_snapshot("curated_images", "image_metadata", PARK)


def day_table(day: str, rows: int = 40, seed: int = 0, failures: bool = True) -> pd.DataFrame:
    """One arrival day of image_metadata as the asset writes it: bursts of a few frames a second apart,
    some empties and other species, and (if `failures`) a corrupt image (its width null: Int64 keeps its type;
    its bytes_read NaN: that day's column is float64, the others' int64)."""
    rng = np.random.default_rng(zlib.crc32(f"{day}/{seed}".encode()))
    start = pd.Timestamp(day) + pd.Timedelta(hours=8)
    camera = rng.integers(0, 4, rows)
    frame = pd.DataFrame({
        "path": [f"{PARK}/c{c}/{day}_{seed}_{i:04d}.jpg" for i, c in enumerate(camera)],
        "park": PARK,
        "species": rng.choice(["cpy", "emp", "lpa", "sus", "ave"], rows),
        "camera": [f"{PARK}/c{c}" for c in camera],
        "seq_id": (np.arange(rows) // 3).astype(str),
        "bytes": rng.integers(1_000, 9_000, rows),
        "etag": [f"e{seed}-{i}" for i in range(rows)],
        "status": "ok",
        "reason": None,
        "captured_at": start + pd.to_timedelta(np.arange(rows) // 3 * 60 + np.arange(rows) % 3, unit="s"),
        "date_source": "DateTimeOriginal",
        "exif_date_raw": None,
        "width": pd.array([1920] * rows, dtype="Int64"),
        "height": pd.array([1080] * rows, dtype="Int64"),
        "image_format": "JPEG",
        "camera_make": "Reconyx",
        "camera_model": "HC600",
        "bytes_read": 4096,
    })
    if failures:
        frame.loc[rows - 1, ["status", "reason", "captured_at", "width", "height"]] = [
            "corrupt", "bad header", pd.NaT, pd.NA, pd.NA]
        frame["bytes_read"] = frame.bytes_read.where(frame.status == "ok")  # float64 on such a day
    return frame


def _key(day: str) -> str:
    return f"image_metadata/{PARK}/{day}.parquet"


def _write_day(store, day: str, table: pd.DataFrame) -> None:
    store.write(_key(day), parquet_bytes(table))


def _load(store, days, materialized=()):
    return load_partitions(store, SNAPSHOT, [(f"{day}|{PARK}", _key(day)) for day in days], set(materialized),
                           lambda key, data: read_parquet_bytes(data, key), warnings_seen.append)


warnings_seen: list[str] = []


def _full(store, days) -> pd.DataFrame:
    frames = [read_parquet_bytes(data) for day in days if (data := store.read_optional(_key(day))) is not None]
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


DAYS = [f"2026-11-{d:02d}" for d in range(1, 7)]


def _same_as_full_read_through_every_change(store, touch):
    """Build, arrival, nothing new, re-ingest of a day, deletion of a day, damaged snapshots: each load
    equals the full read, and reads only the files that changed."""
    warnings_seen.clear()
    for i, day in enumerate(DAYS[:5]):
        _write_day(store, day, day_table(day, failures=i % 2 == 0))
    frame, read, lost = _load(store, DAYS[:5])
    assert not lost and read.files_read == 5 and read.snapshot == "built" and len(warnings_seen) == 1
    pd.testing.assert_frame_equal(frame, _full(store, DAYS[:5]))

    _write_day(store, DAYS[5], day_table(DAYS[5], failures=False))  # a new day arrives
    frame, read, _ = _load(store, DAYS)
    assert (read.files_read, read.rows_read, read.snapshot) == (1, 40, "used")
    assert read.bytes_read == len(store.read(_key(DAYS[5]))) + read.snapshot_bytes
    pd.testing.assert_frame_equal(frame, _full(store, DAYS))

    frame, read, _ = _load(store, DAYS)  # nothing changed: nothing read but the snapshot, nothing written
    assert (read.files_read, read.snapshot) == (0, "unchanged")
    pd.testing.assert_frame_equal(frame, _full(store, DAYS))

    touch()  # (a local file's etag is its size and mtime in ns)
    _write_day(store, DAYS[2], day_table(DAYS[2], rows=55, seed=1))  # day 3 re-ingested: other rows
    frame, read, _ = _load(store, DAYS)
    assert (read.files_read, read.rows_read) == (1, 55)
    pd.testing.assert_frame_equal(frame, _full(store, DAYS))

    deleted = (DAYS[0], DAYS[2], DAYS[4])  # every day with a corrupt image deleted: dropped
    for gone in deleted:
        store.delete(_key(gone))
    remaining = [d for d in DAYS if d not in deleted]
    frame, read, _ = _load(store, DAYS)
    assert read.files_read == 0 and len(frame) == sum(len(_full(store, [d])) for d in remaining)
    assert frame.bytes_read.dtype == "int64"  # as a full read of these days has it (the snapshot: float64)
    pd.testing.assert_frame_equal(frame, _full(store, remaining))

    _, read, lost = _load(store, DAYS, materialized={f"{DAYS[0]}|{PARK}"})  # recorded, yet its file is gone
    assert lost == [f"{DAYS[0]}|{PARK}"] and read.files_read == 0

    good = store.read(SNAPSHOT)
    damaged = {
        "garbage": b"not parquet at all",
        "truncated": good[: len(good) // 2],
        "no manifest": parquet_bytes(_full(store, remaining)),
        "rows do not add up": _with_rows_removed(good),
        "written under other library versions": _with_format(good, "1 pyarrow-0.1 pandas-0.1"),
    }
    for why, data in damaged.items():
        store.write(SNAPSHOT, data)
        warnings_seen.clear()
        frame, read, _ = _load(store, DAYS)
        assert read.snapshot.startswith("rebuilt") and read.files_read == len(remaining), why
        assert len(warnings_seen) == 1 and "damaged" in warnings_seen[0], why
        pd.testing.assert_frame_equal(frame, _full(store, remaining), obj=why)
        assert _load(store, DAYS)[1].snapshot == "unchanged", why  # and it was rewritten whole

    store.delete(SNAPSHOT)  # missing: built again from every file
    frame, read, _ = _load(store, DAYS)
    assert read.snapshot == "built" and read.files_read == len(remaining)
    for day in remaining:
        store.delete(_key(day))
    frame, read, _ = _load(store, DAYS)  # no day left: nothing, and no snapshot kept
    assert frame is None and store.read_optional(SNAPSHOT) is None


def _with_rows_removed(snapshot: bytes) -> bytes:
    """The snapshot's own footer (manifest) over a table one row shorter."""
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(snapshot))
    buffer = io.BytesIO()
    pq.write_table(table.slice(1), buffer)
    return buffer.getvalue()


def _with_format(snapshot: bytes, written_by: str) -> bytes:
    """The snapshot as another version of pyarrow and pandas would have written it (its manifest says so)."""
    import json

    import pyarrow.parquet as pq

    from wildbench_assets.resources.input_snapshot import MANIFEST_KEY

    table = pq.read_table(io.BytesIO(snapshot))
    manifest = {**json.loads(table.schema.metadata[MANIFEST_KEY]), "format": written_by}
    buffer = io.BytesIO()
    pq.write_table(table.replace_schema_metadata({**table.schema.metadata,
                                                  MANIFEST_KEY: json.dumps(manifest).encode()}), buffer)
    return buffer.getvalue()


def test_a_local_snapshot_reads_only_what_changed_and_answers_like_a_full_read(tmp_path):
    _same_as_full_read_through_every_change(LocalArchive(tmp_path), lambda: time.sleep(0.01))


def test_an_s3_snapshot_reads_only_what_changed_and_answers_like_a_full_read(tmp_path, s3_env):
    store = open_archive(f"s3://wildbench-snapshots/{tmp_path.name}", s3_env)
    if "wildbench-snapshots" not in {b["Name"] for b in store.client.list_buckets()["Buckets"]}:
        store.client.create_bucket(Bucket="wildbench-snapshots")
    _same_as_full_read_through_every_change(store, lambda: None)  # S3's ETag is the content's MD5


def test_a_rewrite_with_the_same_size_is_seen_by_its_mtime(tmp_path, monkeypatch):
    store = LocalArchive(tmp_path)
    table = day_table(DAYS[0])
    _write_day(store, DAYS[0], table)
    _write_day(store, DAYS[1], day_table(DAYS[1]))
    _load(store, DAYS[:2])

    def from_pandas(*_args):
        raise AssertionError("days of one schema: the snapshot is rewritten from its Arrow pieces")
    monkeypatch.setattr(input_snapshot, "snapshot_bytes", from_pandas)
    changed = table.assign(species=table.species.map({"cpy": "sus", "sus": "cpy"}).fillna(table.species))
    _write_day(store, DAYS[0], changed)
    path = tmp_path / _key(DAYS[0])
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))  # whatever the clock's granularity
    frame, read, _ = _load(store, DAYS[:2])
    assert read.files_read == 1
    pd.testing.assert_frame_equal(frame, _full(store, DAYS[:2]))


# --- the asset: curated_images with its snapshot, against a full read --------------------------------------

def _curate(data_dir, instance, snapshots: bool) -> tuple[pd.DataFrame, dict]:
    result = dg.materialize(
        [image_metadata.to_source_assets()[0], curated_images], partition_key=PARK, instance=instance,
        resources={"taxonomy": TaxonomyResource(),
                   "parquet_io_manager": ParquetIOManager(base_dir=str(data_dir), input_snapshots=snapshots)})
    assert result.success
    event = result.get_asset_materialization_events()[0]
    metadata = {k: v.value for k, v in event.materialization.metadata.items() if k.startswith("input_")}
    return pd.read_parquet(data_dir / "curated_images" / f"{PARK}.parquet"), metadata


def test_curated_images_with_its_snapshot_equals_a_full_read(tmp_path):
    data = tmp_path / "data"
    store = LocalArchive(data)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("parks", [PARK])

    def arrive(day: str, table: pd.DataFrame) -> None:
        instance.add_dynamic_partitions("arrival_days", [day])
        _write_day(store, day, table)
        instance.report_runless_asset_event(dg.AssetMaterialization("image_metadata",
                                                                    partition=park_day_key(PARK, day)))

    def both() -> dict:
        full, full_read = _curate(data, instance, snapshots=False)
        curated, read = _curate(data, instance, snapshots=True)
        pd.testing.assert_frame_equal(curated, full)
        assert full_read["input_snapshot"] == "off" and full_read["input_files_read"] == len(store_days())
        return read

    def store_days() -> list:
        return [day for day in instance.get_dynamic_partitions("arrival_days") if store.describe(_key(day))]

    for day in DAYS[:4]:
        arrive(day, day_table(day))
    assert both()["input_snapshot"] == "built"
    arrive(DAYS[4], day_table(DAYS[4], rows=30))  # an arrival: one day file read, and the snapshot
    read = both()
    assert (read["input_files_read"], read["input_rows_read"], read["input_snapshot"]) == (1, 30, "used")
    time.sleep(0.01)
    arrive(DAYS[1], day_table(DAYS[1], rows=50, seed=3))  # a re-ingested day
    assert both()["input_files_read"] == 1
    instance.delete_dynamic_partition("arrival_days", DAYS[2])  # a day gone (its file left behind: not mapped)
    read = both()
    assert (read["input_files_read"], read["input_snapshot"]) == (0, "used")
    store.write(SNAPSHOT, b"PAR1 damaged")  # a damaged snapshot: rebuilt from every day
    read = both()
    assert read["input_snapshot"].startswith("rebuilt") and read["input_files_read"] == 4
