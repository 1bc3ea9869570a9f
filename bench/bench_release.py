"""Cutting a benchmark release at 100,000 images, and the leak audit's throughput (issue 9).

An archive of N unique JPEGs (default 100,000; 160x120, smooth random scenes so perceptual hashes
differ) with a synthetic release manifest (64/16/20 by camera, 10 % of train/val sequences as
test_seen, 2 parks x 12 cameras, one box per animal image) is cut with the release asset's own builder
(`resources/release_writer.write_release`: manifest + sha256, train/val ZIPs with labels, label-free test ZIPs, hidden
truth, leak audit, Camtrap DP written and validated by frictionless, datasheet). Its stages are then
timed one by one. Side by side, in the same run:
  (a) pHash of a draft decode (what the audit does) vs of a full decode, on the real camera-trap photos
      in ../shared/samples/camera-traps (full size, cycled) and on the synthetic images;
  (b) multi-index pair search vs all-pairs comparison of 20,000 hashes (all pairs of 100,000 would be
      5e9 comparisons), and the multi-index search alone on N.

    .venv/bin/python bench/bench_release.py [--images 100000]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sys
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wildbench_assets.lib import camtrap_dp, leak_audit  # noqa: E402
from wildbench_assets.lib import releases as rel  # noqa: E402
from wildbench_assets.lib.labels import image_id  # noqa: E402
from wildbench_assets.lib.zips import member_name  # noqa: E402
from wildbench_assets.resources.archive import LocalArchive  # noqa: E402
from wildbench_assets.resources.release_writer import write_release  # noqa: E402
from wildbench_assets.taxonomy import Taxonomy  # noqa: E402

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples" / "camera-traps"
SPECIES = ["sus", "cer", "dam", "lyn", "vul", "capi", "emp"]


def _image(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    small = (rng.random((6, 8, 3)) * 255).astype("uint8")  # a random coarse scene, upsampled smoothly
    image = Image.fromarray(small).resize((160, 120), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def _write(args) -> None:
    root, index = args
    path = Path(root) / f"{index:07d}.jpg"
    path.write_bytes(_image(index))


def build_archive(root: Path, n: int) -> pd.DataFrame:
    parks = np.where(np.arange(n) % 2 == 0, "snieves", "donana")
    cameras = [f"{p}/C{(i // 2) % 12:02d}" for i, p in enumerate(parks)]
    species = np.array(SPECIES)[np.arange(n) % len(SPECIES)]
    paths = [f"{p}/{s}/{c.split('/')[1]}/{i:07d}.jpg" for i, (p, s, c) in enumerate(zip(parks, species, cameras))]
    for path in {str(Path(p).parent) for p in paths}:
        (root / path).mkdir(parents=True, exist_ok=True)
    with Pool(os.cpu_count() or 1) as pool:
        pool.map(_write, [(str(root / Path(p).parent), i) for i, p in enumerate(paths)], chunksize=500)
    times = pd.Timestamp("2024-03-01") + pd.to_timedelta(np.arange(n) * 37, unit="s")
    unit = (np.arange(n, dtype=np.uint64) * np.uint64(2654435761) % np.uint64(2**32)) / 2**32  # Knuth's hash
    split = np.where(pd.Series(cameras).str.endswith(("00", "01", "02")), "test",
                     np.where(unit < 0.1, "test_seen", np.where(unit < 0.28, "val", "train")))
    return pd.DataFrame({"path": paths, "split": split, "park": parks, "camera": cameras,
                         "sequence": [f"{c}@{t // 5}" for t, c in enumerate(cameras)],
                         "captured_at": times.strftime("%Y-%m-%dT%H:%M:%S"), "species": species,
                         "width": 160, "height": 120,
                         "label_status": np.where(species == "emp", "empty", "labelled"),
                         "boxes": np.where(species == "emp", "[]", "[[0.25, 0.3, 0.4, 0.35, 0.9]]")})


def timed(label: str, fn, *args):
    started = time.perf_counter()
    result = fn(*args)
    elapsed = time.perf_counter() - started
    print(f"  {label:48s} {elapsed:8.1f} s")
    return result, elapsed


def hash_rate(blobs: list[bytes], draft: bool) -> float:
    started = time.perf_counter()
    for data in blobs:
        if draft:
            leak_audit.perceptual_hash(data)
        else:
            import imagehash
            with Image.open(io.BytesIO(data)) as image:
                imagehash.phash(image.convert("L"))
    return len(blobs) / (time.perf_counter() - started)


def threshold_study() -> None:
    """How far a re-encoded, resized copy moves (it must stay within the threshold) and how close
    different cameras' photos come (they must not): the two sides of `max_distance`."""
    import collections

    from wildbench_assets.lib.demo_archive import generate_demo_archive

    demo = [o for o in generate_demo_archive(events_per_camera=60) if o.key.endswith(".jpg") and o.key.count("/") == 3
            and "_" in o.key.rsplit("/", 1)[1][:4]]  # the scene frames, not the planted bad inputs
    originals = [o.data for o in demo[:40]] + ([p.read_bytes() for p in sorted(SAMPLES.glob("*.jpg"))]
                                               if SAMPLES.is_dir() else [])
    for scale, quality in ((0.8, 70), (0.5, 60), (0.33, 50)):
        moved = collections.Counter()
        for data in originals:
            image = Image.open(io.BytesIO(data)).convert("RGB")
            buffer = io.BytesIO()
            image.resize((int(image.width * scale), int(image.height * scale))).save(buffer, "JPEG", quality=quality)
            moved[bin(leak_audit.perceptual_hash(data) ^ leak_audit.perceptual_hash(buffer.getvalue())).count("1")] += 1
        print(f"  copy at {scale:.0%} size, JPEG q{quality}: distance -> photos {dict(sorted(moved.items()))}")
    hashes = np.array([leak_audit.perceptual_hash(o.data) for o in demo], dtype=np.uint64)
    cameras = [o.key.split("/")[0] + "/" + o.key.split("/")[2] for o in demo]
    for limit in (2, 4):
        cross = [d for i, j, d in leak_audit.near_pairs(hashes, limit) if cameras[i] != cameras[j]]
        print(f"  demo archive ({len(demo)} scene frames, 24 cameras): pairs of different cameras within {limit} bits: "
              f"{len(cross)}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=100_000)
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")

    print("(a) pHash throughput, draft decode (the audit) vs full decode")
    if SAMPLES.is_dir():
        real = [p.read_bytes() for p in sorted(SAMPLES.glob("*.jpg"))]
        sizes = sorted({Image.open(io.BytesIO(b)).size for b in real})
        blobs = (real * 20)[:200]
        draft, full = hash_rate(blobs, True), hash_rate(blobs, False)
        print(f"  real photos ({len(real)} files, {sizes[0]}..{sizes[-1]} px): draft {draft:.1f} img/s, "
              f"full {full:.1f} img/s, ratio {draft / full:.1f}x")
    synthetic = [_image(i) for i in range(2000)]
    draft, full = hash_rate(synthetic, True), hash_rate(synthetic, False)
    print(f"  synthetic 160x120: draft {draft:.0f} img/s, full {full:.0f} img/s, ratio {draft / full:.1f}x")

    print("(a2) the threshold: re-encoded copies vs different cameras")
    threshold_study()
    print("(b) near-pair search, multi-index vs all pairs")
    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 2**63, size=20_000, dtype=np.uint64)
    started = time.perf_counter()
    leak_audit.near_pairs(hashes, 2)
    multi = time.perf_counter() - started
    started = time.perf_counter()
    for start in range(0, len(hashes), 500):  # all pairs, vectorised in blocks
        block = hashes[start:start + 500, None] ^ hashes[None, :]
        np.unpackbits(block.view(np.uint8), axis=-1).reshape(block.shape[0], block.shape[1], -1).sum(-1)
    brute = time.perf_counter() - started
    print(f"  20,000 hashes: multi-index {multi:.2f} s, all pairs {brute:.2f} s, ratio {brute / multi:.0f}x")
    big = rng.integers(0, 2**63, size=args.images, dtype=np.uint64)
    started = time.perf_counter()
    leak_audit.near_pairs(big, 2)
    print(f"  {args.images:,} hashes: multi-index {time.perf_counter() - started:.2f} s")

    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        root = Path(tmp) / "archive"
        print(f"(c) release cut of {args.images:,} images")
        frame, _ = timed("write the archive (not part of the cut)", build_archive, root, args.images)
        store, taxonomy = LocalArchive(root), Taxonomy()
        manifest, _ = timed("content sha256 of every image (manifest)", lambda: frame.assign(
            sha256=[rel.sha256_hex(store.read(p)) for p in frame.path]))
        manifest = manifest.assign(public_id=rel.public_ids(manifest.sha256)).reindex(columns=rel.MANIFEST_COLUMNS)
        facts = rel.ReleaseFacts(release="bench", cut_at="2026-11-28T00:00:00Z", labels_fingerprint="",
                                 code_version="1", detector="manifest", label_threshold=0.2, split_by="camera",
                                 split_seed=0, burst_rules={}, class_names=taxonomy.class_names, max_distance=2)
        out = Path(tmp) / "release"
        out.mkdir()
        built, total = timed("whole cut (write_release: every file of it)", write_release, out, manifest, facts, store,
                             taxonomy)
        print(f"  -> {built.audit['images_hashed']:,} images hashed, {built.audit['pairs']} cross-split pairs, "
              f"Camtrap DP problems: {len(built.camtrap['problems'])}")
        hashes, audit_s = timed("of which: leak audit hashing (read + draft pHash)",
                                lambda: [leak_audit.perceptual_hash(store.read(p)) for p in manifest.path])
        print(f"  leak audit throughput: {len(hashes) / audit_s:.0f} images/s")
        public = manifest[manifest.split.isin(rel.PUBLIC_SPLITS)]
        zipped = {p: (f"{s}.zip", member_name(pk, sp, image_id(p)))
                  for p, s, pk, sp in zip(public.path, public.split, public.park, public.species)}
        package, _ = timed("of which: Camtrap DP build", camtrap_dp.build_package, public, taxonomy, "bench",
                           facts.cut_at, zipped, facts.detector)
        check = Path(tmp) / "ctdp"
        check.mkdir()
        for name, data in package.items():
            (check / name).write_bytes(data)
        timed("of which: Camtrap DP validation (frictionless)", camtrap_dp.validate_package, check)
        zips = sum(p.stat().st_size for p in (out / "downloads").iterdir())
        print(f"  downloads: {zips / 1e6:.0f} MB in {len(list((out / 'downloads').iterdir()))} ZIPs; "
              f"manifest {(out / 'manifest.csv').stat().st_size / 1e6:.1f} MB")
        print(json.dumps({"images": args.images, "cut_s": round(total, 1)}))


if __name__ == "__main__":
    main()
