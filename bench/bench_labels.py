"""Labelling throughput: batched inference with decoding prefetched in threads (ours, `Detector.run`)
vs one image at a time — read, decode, infer, next (the thesis's `process_image` loop) — with the same
MegadetectorLite model on the same images.

    .venv/bin/python bench/bench_labels.py [--images 96] [--batch 8]
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageOps

from wildbench_assets.resources.archive import LocalArchive
from wildbench_assets.resources.detector import DetectorResource

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples" / "camera-traps"


def archive_of(count: int, root: Path) -> list[str]:
    """`count` real camera-trap photos (the shared samples, cycled), else 1080p synthetic frames."""
    sources = sorted(SAMPLES.glob("*.jpg")) if SAMPLES.is_dir() else []
    keys = []
    for i in range(count):
        key = f"img_{i:04d}.jpg"
        if sources:
            (root / key).write_bytes(sources[i % len(sources)].read_bytes())
        else:
            Image.effect_noise((1920, 1080), 60).convert("RGB").save(root / key, quality=90)
        keys.append(key)
    return keys


def one_at_a_time(detector, store, keys) -> int:
    found = 0
    for key in keys:
        with Image.open(io.BytesIO(store.read(key))) as image:
            image = ImageOps.exif_transpose(image).convert("RGB")
        found += len(detector.model.predict([detector.model.preprocess(image)], [image.size])[0])
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--batch", type=int, default=None, help="default: the detector's (16 GPU / 1 CPU)")
    parser.add_argument("--workers", type=int, default=None, help="default: the detector's (4 GPU / 1 CPU)")
    args = parser.parse_args()
    import torch

    with tempfile.TemporaryDirectory(prefix="bench-labels-") as tmp:
        store = LocalArchive(tmp)
        keys = archive_of(args.images, Path(tmp))
        detector = DetectorResource(batch_size=args.batch, decode_workers=args.workers).load()
        device = detector.model.device
        one_at_a_time(detector, store, keys[:4])  # warm-up
        t0 = time.perf_counter()
        single = one_at_a_time(detector, store, keys)
        single_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        batched = sum(len(r.detections) for r in detector.run(keys, store.read))
        batched_s = time.perf_counter() - t0
    assert single == batched, (single, batched)
    print(f"MegadetectorLite (YOLOX-tiny, 640 px) on {device}; {platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads); {len(keys)} images, "
          f"{'real samples' if SAMPLES.is_dir() else 'synthetic'}")
    print(f"  {'one image at a time (thesis)':38s}{len(keys) / single_s:7.2f} images/s")
    label = f"batch {detector.batch_size}, {detector.decode_workers} decode thread(s) (ours)"
    print(f"  {label:38s}{len(keys) / batched_s:7.2f} images/s")
    print(f"  ratio: {single_s / batched_s:.2f}x; same detections: {batched}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
