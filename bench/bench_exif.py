"""EXIF/header extraction from S3: header-only ranged reads vs whole-object reads (the thesis's way).

The thesis downloaded every image whole to read its date (section 4.1.2). Every row here reads the same
images from the same SeaweedFS server on loopback; the header-only rows fetch ~16 KiB + the last 64
bytes per image, the whole-object rows fetch everything. Rows:
  loopback       the server reached directly (bytes are almost free; request overhead dominates)
  1 Gbit/s link  the same server behind a bandwidth-capped loopback proxy, as a MinIO across a LAN

    .venv/bin/python bench/bench_exif.py [--images 2000] [--workers 16] [--link-mbit 1000]
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import struct
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

from PIL import Image, ImageFilter

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from throttle import throttled  # noqa: E402

from tests.services import S3_KEY, S3_SECRET, seaweedfs  # noqa: E402
from wildbench_assets.lib.demo_archive import exif_bytes  # noqa: E402
from wildbench_assets.lib.headers import inspect_objects  # noqa: E402
from wildbench_assets.resources.archive import open_archive  # noqa: E402

BUCKET = "bench-exif"


def camera_like_jpeg(seed: int, size=(1920, 1080)) -> bytes:
    """A 1080p JPEG with photo-like entropy, about the size of the thesis's own 1080p photo (1.7 MB)."""
    import random

    random.seed(seed)
    image = Image.effect_noise(size, 70).convert("RGB").filter(ImageFilter.GaussianBlur(0.6))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def with_exif(jpeg: bytes, exif: bytes) -> bytes:
    """Splice an APP1 EXIF segment in after SOI: unique EXIF per object without re-encoding."""
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif + jpeg[2:]


def thesis_date(store, key: str):
    """The thesis's get_datetime_for_image: download whole, PIL-open, tag 306 or 36867."""
    with Image.open(io.BytesIO(store.read(key))) as image:
        exif = image.getexif()
        return exif.get(306) or exif.get_ifd(0x8769).get(36867)


def timed(label: str, n: int, fn) -> tuple[str, float, object]:
    t0 = time.perf_counter()
    out = fn()
    rate = n / (time.perf_counter() - t0)
    return label, rate, out


def run_modes(store, objects, workers: int, sequential: bool) -> list[tuple[str, float, float]]:
    n = len(objects)
    total_mb = sum(size for _, size in objects) / 1e6
    rows = []
    label, rate, headers = timed(f"header-only, {workers} threads", n, lambda: inspect_objects(
        objects, store.read_range, store.read_tail, datetime.now(), max_workers=workers))
    assert all(r["status"] == "ok" for r in headers), {r["status"] for r in headers}
    rows.append((label, rate, sum(r["bytes_read"] for r in headers) / 1e6))
    with ThreadPoolExecutor(workers) as pool:
        label, rate, dates = timed(f"whole-object, {workers} threads", n,
                                   lambda: list(pool.map(lambda o: thesis_date(store, o[0]), objects)))
    assert [r["exif_date_raw"] for r in headers] == [d.strip("\x00 ") for d in dates]  # same answers
    rows.append((label, rate, total_mb))
    if sequential:
        label, rate, _ = timed("whole-object, sequential (thesis script)", n,
                               lambda: [thesis_date(store, o[0]) for o in objects])
        rows.append((label, rate, total_mb))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--link-mbit", type=float, default=1000, help="capped link speed; 0 skips those rows")
    args = parser.parse_args()

    bases = [camera_like_jpeg(i) for i in range(4)]
    with tempfile.TemporaryDirectory(prefix="bench-exif-") as workdir, seaweedfs(workdir) as endpoint:
        store = open_archive(f"s3://{BUCKET}/archive", endpoint, S3_KEY, S3_SECRET)
        store.client.create_bucket(Bucket=BUCKET)

        def upload(i: int) -> tuple[str, int]:
            when = datetime(2023, 5, 1) + timedelta(seconds=37 * i)
            data = with_exif(bases[i % len(bases)], exif_bytes(when, "RECONYX", "HC600 HYPERFIRE", "colon"))
            key = f"snieves/sus/C{i % 20:02d}/IMG_{i:05d}.JPG"
            store.write(key, data)
            return key, len(data)

        with ThreadPoolExecutor(args.workers) as pool:
            objects = list(pool.map(upload, range(args.images)))
        mean_mb = sum(s for _, s in objects) / len(objects) / 1e6
        print(f"{len(objects)} images of 1920x1080, mean {mean_mb:.2f} MB, on SeaweedFS {endpoint}")
        results = {"loopback": run_modes(store, objects, args.workers, sequential=True)}
        if args.link_mbit:
            port = urlparse(endpoint).port
            with throttled(port, args.link_mbit) as proxy_port:
                slow = open_archive(f"s3://{BUCKET}/archive", f"http://127.0.0.1:{proxy_port}", S3_KEY, S3_SECRET)
                results[f"{args.link_mbit:g} Mbit/s link"] = run_modes(slow, objects, args.workers, sequential=True)

    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, python {sys.version.split()[0]}; "
          "client and server share the cores")
    for where, rows in results.items():
        header_rate = rows[0][1]
        print(f"\n[{where}]")
        for label, rate, mb in rows:
            ratio = "" if label.startswith("header") else f"   header-only is {header_rate / rate:5.1f}x faster"
            print(f"  {label:42s} {rate:8.1f} images/s  {mb:8.1f} MB fetched{ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
