"""The `wildbench` command: build a demo archive, run the pipeline, print what it produced."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

def cmd_demo_archive(args: argparse.Namespace) -> int:
    from wildbench_assets.lib.demo_archive import generate_demo_archive
    from wildbench_assets.resources.archive import LocalArchive, open_archive

    store = open_archive(args.dir, endpoint_url=args.endpoint_url)
    now = time.time()
    count = 0
    for obj in generate_demo_archive(events_per_camera=args.events_per_camera, seed=args.seed,
                                     size=(args.width, args.height)):
        store.write(obj.key, obj.data)
        if isinstance(store, LocalArchive) and obj.arrival_offset_days:
            stamp = now - obj.arrival_offset_days * 86400
            os.utime(store.root / obj.key, (stamp, stamp))
        count += 1
    print(f"wrote {count} objects to {store.uri}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    if args.archive:
        os.environ["WILDBENCH_ARCHIVE"] = args.archive
    if args.endpoint_url:
        os.environ["WILDBENCH_S3_ENDPOINT_URL"] = args.endpoint_url
    from wildbench_assets import runner
    from wildbench_assets.runner import ASSET_ORDER
    from wildbench_assets.summary import print_summary

    runner.prepare_dagster_home()
    import dagster as dg

    from wildbench_assets.definitions import build_defs

    defs = build_defs()
    archive = defs.resources["archive"]
    selection = [s.strip() for s in args.select.split(",")] if args.select else None
    unknown = set(selection or []) - set(ASSET_ORDER)
    if unknown:
        print(f"unknown assets in --select: {sorted(unknown)}; known: {ASSET_ORDER}", file=sys.stderr)
        return 2
    try:
        config_by_asset = json.loads(args.config) if args.config else None
        if config_by_asset is not None and not (isinstance(config_by_asset, dict) and all(
                isinstance(v, dict) for v in config_by_asset.values())):
            raise ValueError("expected an object of asset name -> config object")
    except ValueError as err:
        print(f"--config: {err}", file=sys.stderr)
        return 2
    unknown = set(config_by_asset or {}) - set(ASSET_ORDER)
    if unknown:
        print(f"unknown assets in --config: {sorted(unknown)}; known: {ASSET_ORDER}", file=sys.stderr)
        return 2
    store = archive.open()
    pairs = runner.archive_partitions(store)
    if not pairs:
        print(f"no objects under {store.uri}", file=sys.stderr)
        return 1
    with dg.DagsterInstance.get() as instance:
        runner.register_partitions(instance, pairs)
        print(f"archive {store.uri}: {len(pairs)} park x arrival-day partitions; DAGSTER_HOME={os.environ['DAGSTER_HOME']}")
        outcome = runner.run_pipeline(defs, instance, pairs, selection, config_by_asset=config_by_asset)
    for line in outcome.get("failure", []):
        print(f"FAILED run {line}", file=sys.stderr)
    print_summary(defs.resources["parquet_io_manager"].base_dir)
    return 1 if outcome.get("failure") else 0


def cmd_summary(args: argparse.Namespace) -> int:
    from wildbench_assets.settings import default_data_dir
    from wildbench_assets.summary import print_summary

    print_summary(default_data_dir())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wildbench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo-archive", help="write a synthetic camera-trap archive to DIR (folder or s3://)")
    demo.add_argument("dir")
    demo.add_argument("--events-per-camera", type=int, default=8)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--width", type=int, default=320)
    demo.add_argument("--height", type=int, default=240)
    demo.add_argument("--endpoint-url", default=os.environ.get("WILDBENCH_S3_ENDPOINT_URL"))
    demo.set_defaults(func=cmd_demo_archive)

    run = sub.add_parser("run", help="register the archive's partitions and materialize the pipeline")
    run.add_argument("--archive", help="local folder or s3://bucket/prefix (default: $WILDBENCH_ARCHIVE or the demo)")
    run.add_argument("--select", help="comma-separated assets (default: all): raw_images, image_metadata, "
                                      "curated_images, benchmark_splits")
    run.add_argument("--endpoint-url", help="S3-compatible endpoint (MinIO), default $WILDBENCH_S3_ENDPOINT_URL")
    run.add_argument("--config", help='run config of assets as JSON, e.g. \'{"benchmark_splits": {"by": "sequence"}}\'')
    run.set_defaults(func=cmd_run)

    summary = sub.add_parser("summary", help="print what the last runs produced")
    summary.set_defaults(func=cmd_summary)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
