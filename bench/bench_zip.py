"""Split ZIPs: streamed into the archive (ours) vs copy to a temp folder + deflate `shutil.make_archive`
(the thesis's way), on the same 1,000 camera-trap-sized JPEGs. Each way runs in its own process so its
peak RSS (VmHWM) is its own, and its time ends when the ZIP's bytes are on disk (fsync), not when they reach
the page cache.

    .venv/bin/python bench/bench_zip.py [--images 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _rss import peak_rss_mb  # noqa: E402


def make_images(root: Path, count: int) -> list[str]:
    from bench_exif import camera_like_jpeg, with_exif

    from wildbench_assets.lib.demo_archive import exif_bytes

    bases = [camera_like_jpeg(i) for i in range(4)]
    keys = []
    for i in range(count):
        key = f"snieves/sus/C{i % 10:02d}/IMG_{i:05d}.JPG"
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(with_exif(bases[i % 4], exif_bytes(None, "RECONYX", "HC600", "colon")))
        keys.append(key)
    return keys


def run_way(way: str, root: str, out: str) -> dict:
    from wildbench_assets.lib.zips import ZipMember, member_name, verify_zip, write_zip

    keys = sorted(str(p.relative_to(root)) for p in Path(root).rglob("*.JPG"))
    t0 = time.perf_counter()
    if way == "streamed":
        members = []
        for key in keys:
            park, species = key.split("/")[:2]
            name = member_name(park, species, key)
            members.append(ZipMember(name, source=key))
            members.append(ZipMember(name[:-4] + ".txt", text="22 0.5 0.5 0.2 0.2\n"))
        names = write_zip(out, members, lambda k: open(Path(root, k), "rb"))
        assert verify_zip(out, names) is None
    else:  # thesis: download every image into a folder tree, write label files, zip the folder
        with tempfile.TemporaryDirectory(dir=Path(out).parent) as staging:
            for key in keys:
                park, species = key.split("/")[:2]
                target = Path(staging, park, species, Path(key).name)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(Path(root, key), target)
                target.with_suffix(".txt").write_text("22 0.5 0.5 0.2 0.2\n")
            shutil.make_archive(out[:-4], "zip", staging)
    with open(out, "rb") as written:  # the bytes on disk, not in the page cache
        os.fsync(written.fileno())
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "zip_mb": os.path.getsize(out) / 1e6}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--way", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.way:
        print(json.dumps(run_way(args.way, args.root, args.out)))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-zip-") as tmp:
        root = Path(tmp, "archive")
        keys = make_images(root, args.images)
        total_mb = sum((root / k).stat().st_size for k in keys) / 1e6
        print(f"{len(keys)} JPEGs, {total_mb:.0f} MB; {platform.machine()}, {os.cpu_count()} cores, local disk, "
              "timed to fsync")
        results = {}
        for way in ("streamed", "thesis"):
            out = str(Path(tmp, f"{way}.zip"))
            done = subprocess.run([sys.executable, __file__, "--way", way, "--root", str(root), "--out", out],
                                  capture_output=True, text=True, check=True)
            results[way] = json.loads(done.stdout.strip().splitlines()[-1])
            Path(out).unlink()
    for way, label in (("streamed", "streamed, stored (ours)"), ("thesis", "temp copy + make_archive deflate")):
        r = results[way]
        print(f"  {label:34s} {total_mb / r['seconds']:8.1f} MB/s  {r['seconds']:6.2f} s  "
              f"zip {r['zip_mb']:7.0f} MB  peak RSS {r['peak_rss_mb']:6.0f} MB")
    print(f"  ratio: {results['thesis']['seconds'] / results['streamed']['seconds']:.1f}x (goal >= 5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
