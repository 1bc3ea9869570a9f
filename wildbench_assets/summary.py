"""A readable summary of the tables under the data directory."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from wildbench_assets import layout
from wildbench_assets.lib.splits import SPLITS, groups_across_splits, shared_units
from wildbench_assets.resources.atomic import is_temp
from wildbench_assets.resources.parquet_io import read_parquet_bytes


def read_table(data_dir: str | Path, asset: str) -> pd.DataFrame | None:
    files = sorted(Path(data_dir, asset).rglob("*.parquet"))
    files = [f for f in files if not is_temp(f.name)]
    return pd.concat([read_parquet_bytes(f.read_bytes(), str(f)) for f in files], ignore_index=True) if files else None


def print_summary(data_dir: str | Path) -> None:
    print(f"\n== WildBench tables under {data_dir} ==")
    raw = read_table(data_dir, "raw_images")
    if raw is None:
        print("no raw_images yet")
        return
    print(f"raw_images: {len(raw)} objects, {raw.bytes.sum() / 1e6:.1f} MB, {raw.park.nunique()} parks, "
          f"{raw.camera.nunique()} cameras, {raw.arrival_day.nunique()} arrival days")
    meta = read_table(data_dir, "image_metadata")
    if meta is not None:
        print(f"image_metadata: {len(meta)} images; header reads fetched {meta.bytes_read.sum() / 1e6:.2f} MB "
              f"of {meta.bytes.sum() / 1e6:.1f} MB stored")
        print(meta.status.value_counts().rename_axis("status").to_frame("images").to_string())
        bad = meta[meta.status != "ok"][["path", "status", "reason"]]
        if len(bad):
            print("\nimages needing attention:")
            print(bad.to_string(index=False, max_colwidth=70))
    by_park = raw.pivot_table(index="species", columns="park", values="path", aggfunc="count", fill_value=0)
    print("\nobjects per species and park:")
    print(by_park.to_string())

    curated = read_table(data_dir, "curated_images")
    if curated is not None:
        print(f"\ncurated_images: {len(curated)} images kept of {len(meta) if meta is not None else '?'} "
              f"(species of Table 3.1 + empties, readable, bursts removed)")
    splits = read_table(data_dir, "benchmark_splits")
    if splits is not None:
        train_val = splits[splits.split.isin(["train", "val"])]
        seen = splits[splits.split == "test_seen"]
        print(f"\nbenchmark_splits ({splits.camera.nunique()} cameras; leakage groups in more than one split: "
              f"{groups_across_splits(splits)}; test_seen images sharing a sequence with train/val: "
              f"{shared_units(seen, 'test_seen', train_val, 'train')}):")
        table = splits.pivot_table(index="species", columns="split", values="path", aggfunc="count", fill_value=0)
        table = table.reindex(columns=[c for c in SPLITS if c in table.columns])
        table.loc["total"] = table.sum()
        print(table.to_string())
    labels = read_table(data_dir, "detection_labels")
    if labels is not None:
        table = labels.pivot_table(index="label_status", columns="split", values="path", aggfunc="count",
                                   fill_value=0)
        print(f"\ndetection_labels: {int(labels.n_boxes.sum())} boxes on {len(labels)} images")
        print(table.to_string())
    archives = sorted(Path(data_dir, "artifacts", layout.ARCHIVES).glob("*.zip"))
    if archives:
        print("\nsplit archives: " + ", ".join(f"{p} ({p.stat().st_size / 1e6:.1f} MB)" for p in archives))
    datasets = sorted(Path(data_dir, "artifacts", layout.DATASETS).glob("*/dataset.yaml"))
    if datasets:
        print("training datasets (per release): " + ", ".join(str(p) for p in datasets))
    board = read_table(data_dir, "leaderboard")
    if board is not None:
        print("\nleaderboard (mAP: COCO, on each release's hidden unseen-camera test set; thesis rows: image level "
              "only, on the thesis's own split):")
        columns = ["model", "release", "profile", "map_50_95", "map_50", "seen_map_50", "f1_weighted", "accuracy",
                   "seen_accuracy"]
        print(board.reindex(columns=columns).round(4).to_string(index=False))
    predictions = read_table(data_dir, "new_image_predictions")
    if predictions is not None:
        per_image = predictions.drop_duplicates("path")
        print(f"\nnew_image_predictions ({predictions.model.iloc[0] if len(predictions) else '-'}): "
              f"{len(per_image)} images, {int((predictions.status == 'predicted').sum())} detections, "
              f"{int((per_image.status == 'failed').sum())} failed; "
              f"MegaDetector 1.6 files under {Path(data_dir, 'artifacts', 'predictions')}")
        found = predictions[predictions.status == "predicted"].pivot_table(
            index="species", columns="park", values="path", aggfunc="count", fill_value=0)
        if len(found):
            print(found.to_string())
