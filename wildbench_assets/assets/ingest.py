"""Ingest: the raw listing of the archive and each image's EXIF/header metadata."""


import warnings
from datetime import datetime

import dagster as dg
import pandas as pd

from wildbench_assets.assets.checks import Check, check_results, check_specs, counts_table, publish_partitions, verdict
from wildbench_assets.config import ImageMetadataConfig
from wildbench_assets.lib import image_header as hdr
from wildbench_assets.lib.arrivals import partition_fingerprint
from wildbench_assets.lib.expectations import validate_checks
from wildbench_assets.lib.headers import inspect_objects, metadata_rules, metadata_table, not_a_file_row
from wildbench_assets.lib.inventory import (
    arrival_day,
    is_manifest,
    listing_rules,
    listing_table,
)
from wildbench_assets.lib.versions import table_version
from wildbench_assets.partitions import ARRIVAL_DAY, PARK, park_day_partitions
from wildbench_assets.resources.archive import ArchiveResource
from wildbench_assets.resources.day_keys import DAY_KEYS_TAG, DayKeyLists
from wildbench_assets.resources.manifests import load_manifests, manifest_etags
from wildbench_assets.resources.taxonomy import TaxonomyResource

INGEST_CODE_VERSION = "4"  # 4: manifests in the data version; manifest cameras without location

RAW_CHECKS = {
    "unique_paths": Check("No object path is listed twice."),
    "known_parks": Check("Every object's park is a park of the taxonomy (warns, names the unknown ones).",
                         blocking=False),
    "known_species": Check("Every object's species (folder or manifest) is a Table 3.1 code (warns, names the "
                           "unknown ones).", blocking=False),
    "listing_complete": Check("Every listed object of this park and day is in the table with its etag, size and "
                              "arrival day, under the park's folder."),
}
METADATA_CHECKS = {
    "one_row_per_raw_image": Check("One row per raw_images object, same paths, none twice."),
    "valid_statuses": Check("Every integrity status is a known one and every status but ok has a reason.",
                            blocking=False),
    "plausible_capture_dates": Check("Every readable image has a capture time between the earliest plausible "
                                     "date and tomorrow.", blocking=False),
    "readable_dimensions": Check("Every readable image has a width and height of at least 1 pixel.",
                                 blocking=False),
    "failed_share": Check("The share of unreadable objects stays within max_failed_share (warns).",
                          blocking=False),
}




# A backfill (UI, `wildbench run`) materializes this many park x day partitions per run: one run's fixed
# cost (~0.6 s) paid once per batch instead of once per day.
INGEST_BACKFILL = dg.BackfillPolicy.multi_run(max_partitions_per_run=100)


def backfilled_asset(**kwargs):
    """`dg.asset` with INGEST_BACKFILL (`backfill_policy` is a Dagster beta parameter, used as documented;
    its warning would reach every CLI command's stderr)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        return dg.asset(backfill_policy=INGEST_BACKFILL, **kwargs)


PARK_LISTING = ("park listing: no key list for this run (a manual run, or none was written); the archive "
                "layout has no day prefix, so the whole park was listed and filtered by arrival day")


def day_objects(context: dg.AssetExecutionContext, store, day_keys: DayKeyLists, park: str, day: str):
    """(this day's objects, where they came from, how many objects were listed to find them)."""
    if context.run.tags.get(DAY_KEYS_TAG):
        found = day_keys.open().read(park, day)
        if found is not None:
            return found[0], "key list", len(found[0])
    listed = 0
    objects = []
    for o in store.list(f"{park}/"):
        listed += 1
        if arrival_day(o.last_modified) == day and not is_manifest(o.key):
            objects.append(o)
    return objects, PARK_LISTING, listed


@backfilled_asset(
    partitions_def=park_day_partitions,
    group_name="ingest",
    kinds={"pandas", "parquet"},
    io_manager_key="parquet_io_manager",
    code_version=INGEST_CODE_VERSION,
    check_specs=check_specs("raw_images", RAW_CHECKS, park_day_partitions),
)
def raw_images(context: dg.AssetExecutionContext, archive: ArchiveResource, taxonomy: TaxonomyResource,
               day_keys: DayKeyLists):
    """Every object that arrived in the archive for one park on one day: path, park, species, camera,
    size, etag and arrival time. Species/camera come from `<park>/<species>/…/<file>` or the archive's
    COCO Camera Traps manifest. The objects are the day's key list that the `archive_arrivals` sensor (or
    `wildbench run`) wrote before requesting the run; without one (a manual run) the park is listed. The
    listing's fingerprint (count, newest modification, hash of keys and etags, and the etags of the park's
    manifests) is the `fingerprint` metadata of each partition — what the sensor and `wildbench run`
    compare against — and the data version of a one-partition run. A backfill run takes many partitions."""
    store, tax = archive.open(), taxonomy.load()
    manifests: dict[str, tuple] = {}
    listings = {}
    for key in context.partition_keys:
        dims = park_day_partitions.get_partition_key_from_str(key).keys_by_dimension
        park, day = dims[PARK], dims[ARRIVAL_DAY]
        if park not in manifests:  # etags before reading them: a later edit is seen next time
            manifests[park] = (manifest_etags(store, park), load_manifests(store, park, tax))
        objects, source, listed = day_objects(context, store, day_keys, park, day)
        listings[key] = (park, day, objects, source, listed, listing_table([vars(o) for o in objects],
                                                                         manifests[park][1]))
    sources = pd.Series([v[3].split(":")[0] for v in listings.values()]).value_counts().to_dict()
    context.log.info(f"{store.uri}: {sum(len(v[5]) for v in listings.values())} objects in {len(listings)} "
                     f"park x day partition(s), from: {sources}")
    # One validation for a whole batch (Great Expectations costs ~0.5 s a call); each partition's own
    # rules only if the batch fails somewhere, so every verdict is the partition's own.
    batch_found = None
    if len(listings) > 1:
        whole = pd.concat([v[5].assign(partition_park=v[0], partition_day=v[1]) for v in listings.values()],
                          ignore_index=True)
        batch_found = validate_checks(whole, listing_rules(tax.park_codes, tax.species_codes, len(whole)),
                                      name="raw_images")
        if not all(r.success for rules in batch_found.values() for r in rules):
            batch_found = None
    results = {key: raw_images_partition(tax, park, day, objects, source, listed, frame, manifests[park][0],
                                         batch_found)
               for key, (park, day, objects, source, listed, frame) in listings.items()}
    yield from publish_partitions(context, results)


def raw_images_partition(tax, park: str, day: str, listed_objects, source: str, listed: int, frame: pd.DataFrame,
                         manifest_versions, batch_found=None) -> dg.MaterializeResult:
    unknown_parks = frame.loc[~frame.park.isin(tax.park_codes), "park"].value_counts().to_dict()
    unknown_species = frame.loc[~frame.species.isin(tax.species_codes), "species"].value_counts().to_dict()
    found = batch_found if batch_found is not None and len(frame) == len(listed_objects) else \
        validate_checks(frame, listing_rules(tax.park_codes, tax.species_codes, len(listed_objects), park, day),
                        name="raw_images")
    checks = check_results(RAW_CHECKS, found,
                           known_parks=verdict(True, unknown_parks=dg.MetadataValue.json(unknown_parks)),
                           known_species=verdict(True, unknown_species=dg.MetadataValue.json(unknown_species)))
    fingerprint = partition_fingerprint(listed_objects, park, manifest_versions)
    return dg.MaterializeResult(
        value=frame,
        data_version=dg.DataVersion(fingerprint),
        metadata={
            "objects": len(frame),
            "fingerprint": fingerprint,
            "listing": source,
            "objects_listed": listed,
            "bytes_total": int(frame.bytes.sum()),
            "cameras": int(frame.camera.nunique()),
            "from_manifest": int((frame.species_source == "manifest").sum()),
            "unknown_species": int(sum(unknown_species.values())),
            "species": counts_table(frame.species.value_counts().to_dict(), "species", "objects"),
            "checks_validated_with_batch": found is batch_found,
        },
        check_results=checks,
    )


@backfilled_asset(
    partitions_def=park_day_partitions,
    group_name="ingest",
    kinds={"pandas", "parquet"},
    io_manager_key="parquet_io_manager",
    code_version=INGEST_CODE_VERSION,
    check_specs=check_specs("image_metadata", METADATA_CHECKS, park_day_partitions),
)
def image_metadata(context: dg.AssetExecutionContext, config: ImageMetadataConfig, archive: ArchiveResource,
                   raw_images: pd.DataFrame):
    """EXIF capture time (DateTimeOriginal, else DateTime), width, height, camera make/model and an
    integrity status with its reason, read from each image's header bytes only (ranged reads on S3)."""
    store = archive.open()
    now = datetime.now()
    keys = context.partition_keys
    if len(keys) == 1:
        parts = {keys[0]: raw_images}
    else:  # a backfill run: the mapped partitions' tables arrive concatenated; each row names its partition
        of = raw_images.park.astype(str) + "|" + raw_images.arrival_day.astype(str)
        parts = {}
        for key in keys:
            dims = park_day_partitions.get_partition_key_from_str(key).keys_by_dimension
            parts[key] = raw_images[of == f"{dims[PARK]}|{dims[ARRIVAL_DAY]}"].reset_index(drop=True)
    yield from publish_partitions(context, {key: image_metadata_partition(context, config, store, now, raw)
                                            for key, raw in parts.items()})


def image_metadata_partition(context, config: ImageMetadataConfig, store, now: datetime, raw_images: pd.DataFrame):
    kinds = raw_images.get("object_kind", pd.Series("file", index=raw_images.index)).fillna("file")
    regular = raw_images[kinds == "file"]
    rows = inspect_objects(zip(regular.path, regular.bytes), store.read_range, store.read_tail, now,
                           max_workers=config.max_workers, block_size=config.header_block_bytes)
    rows += [not_a_file_row(path, kind) for path, kind in zip(raw_images.path[kinds != "file"], kinds[kinds != "file"])]
    frame = metadata_table(raw_images, rows)
    statuses = frame.status.value_counts().to_dict()
    failed = int(frame.status.isin(hdr.UNREADABLE).sum())
    failed_share = failed / len(frame) if len(frame) else 0.0
    for status, reason, path in frame.loc[frame.status != hdr.OK, ["status", "reason", "path"]].itertuples(index=False):
        context.log.warning(f"{path}: {status} ({reason})")

    found = validate_checks(frame, metadata_rules(len(raw_images), now), name="image_metadata")
    same_paths = set(frame.path) == set(raw_images.path)
    checks = check_results(
        METADATA_CHECKS, found,
        one_row_per_raw_image=verdict(same_paths, same_paths_as_raw_images=same_paths),
        failed_share=verdict(failed_share <= config.max_failed_share, failed_share=failed_share,
                             max_failed_share=config.max_failed_share, failed=failed),
    )
    return dg.MaterializeResult(
        value=frame,
        data_version=dg.DataVersion(table_version(frame)),
        metadata={
            "images": len(frame),
            "ok": int(statuses.get(hdr.OK, 0)),
            "failed": failed,
            "failed_share": failed_share,
            "bytes_read": int(frame.bytes_read.sum()),
            "bytes_in_archive": int(frame.bytes.sum()),
            "statuses": counts_table(statuses, "status", "images"),
        },
        check_results=checks,
    )
