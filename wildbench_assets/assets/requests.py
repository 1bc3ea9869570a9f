"""Custom dataset requests: a parameterised ZIP per request, from the launchpad, a file or the CLI."""

import json
from datetime import UTC, datetime

import dagster as dg
import pandas as pd

from wildbench_assets import layout
from wildbench_assets.assets.checks import Check, check_results, check_specs, publish, verdict
from wildbench_assets.config import ExportRequest
from wildbench_assets.lib import datasets as ds
from wildbench_assets.lib import releases as rel
from wildbench_assets.lib.dataset_requests import (
    COPY_OF_HIDDEN,
    ExportFindings,
    ExportSpec,
    RequestError,
    Withholding,
    check_request_id,
    export_findings,
    parse_json_document,
    parse_spec,
    select_images,
    withheld_by_reason,
)
from wildbench_assets.lib.labels import EMPTY, LABELLED
from wildbench_assets.lib.splits import TEST_SETS
from wildbench_assets.lib.zips import verify_zip
from wildbench_assets.partitions import request_partitions
from wildbench_assets.resources.archive import ArchiveResource, NotARegularFile
from wildbench_assets.resources.artifacts import ArtifactStore, download_link
from wildbench_assets.resources.detector import DetectorResource
from wildbench_assets.resources.inbox import RequestInbox
from wildbench_assets.resources.label_cache import LabelCache
from wildbench_assets.resources.labelling import label_images
from wildbench_assets.resources.release_writer import hidden_sets, record_handed_out
from wildbench_assets.resources.taxonomy import TaxonomyResource


def _request_spec(request_id: str, config: ExportRequest, inbox: RequestInbox, artifacts: ArtifactStore):
    """(raw spec, where it came from): run config, else the inbox file, else the spec stored by a past run."""
    given = {k: v for k, v in config.model_dump().items() if v is not None and k != "label_threshold"}
    if given:
        return given, "run config"
    try:  # a link in the inbox is refused, never followed
        raw = inbox.open().read_optional(f"{request_id}.json")
    except NotARegularFile as err:
        raise RequestError(f"{request_id}.json is not a regular file (a link, pipe or device is never read)") from err
    if raw is not None:
        return parse_json_document(raw, f"{request_id}.json"), "inbox"
    stored = artifacts.path(layout.request_spec(request_id))
    if stored.exists():
        return json.loads(stored.read_text()), "stored spec"
    raise RequestError(f"request {request_id!r} has no spec: give one in the run config or as {request_id}.json")


def _accept(request_id: str, config: ExportRequest, inbox: RequestInbox, artifacts: ArtifactStore, tax,
            curated: pd.DataFrame, splits: pd.DataFrame) -> tuple[ExportSpec, str, pd.DataFrame, Withholding]:
    """(spec, where it came from, the requested images, what is withheld), the spec stored so a re-execution
    needs no config. A request that is malformed or matches nothing is answered with its reason, and fails."""
    try:
        check_request_id(request_id)
        raw, source = _request_spec(request_id, config, inbox, artifacts)
        spec = parse_spec(raw, tax.species_codes, tax.park_codes)
        withholding = hidden_sets(artifacts, [splits])
        images = select_images(curated, spec, withholding)
    except RequestError as err:
        inbox.answer_error(request_id, str(err), request=request_id)
        raise dg.Failure(f"request {request_id}: {err}", metadata={"error": str(err)}) from err
    with artifacts.writing(layout.request_spec(request_id)) as tmp:
        tmp.write_text(json.dumps(spec.to_dict(), indent=1))
    return spec, source, images, withholding


def _copies_withheld(labels: pd.DataFrame, store, withholding: Withholding, label_cache: LabelCache, model,
                     splits: pd.DataFrame) -> pd.DataFrame:
    """`labels` with every digest read, and an image byte-identical to one the benchmark hides (a cut
    release's hidden image, or a current test image whose digest the label cache knows) marked
    COPY_OF_HIDDEN, so it is left out with its reason: a copy at another path is the same hidden image."""
    labels = labels.copy()
    packed = labels.label_status.isin([LABELLED, EMPTY]).to_numpy()  # only these are read again
    labels.loc[packed, "sha256"] = rel.with_digests(labels[packed], lambda p: rel.sha256_hex(store.read(p))).sha256
    current = set(splits.path[splits.split.isin(TEST_SETS)]) if len(splits) else set()
    digests = withholding.hidden_digests | set(label_cache.lookup(model.identity, current).sha256)
    labels.loc[labels.sha256.isin(digests).to_numpy(), "label_status"] = COPY_OF_HIDDEN
    return labels


EXPORT_CHECKS = {
    "zip_verified": Check("The export ZIP opens and every entry's CRC verifies."),
    "matches_request": Check("Every packed image is of a requested park and species (empties only if asked), "
                           "within the requested limit."),
    "counts_add_up": Check("One YOLO label file per labelled image packed, when YOLO was asked for."),
}


def _check_results(found: ExportFindings) -> list[dg.AssetCheckResult]:
    return check_results(
        EXPORT_CHECKS,
        zip_verified=verdict(found.zip_problem is None),
        matches_request=verdict(found.matches_request),
        counts_add_up=verdict(found.counts_add_up, selected=found.selected, images=found.images,
                              left_out=found.left_out),
    )


@dg.asset(
    partitions_def=request_partitions,
    ins={"curated_images": dg.AssetIn(partition_mapping=dg.AllPartitionMapping()),
         "benchmark_splits": dg.AssetIn(partition_mapping=dg.AllPartitionMapping())},
    group_name="exports",
    kinds={"zip"},
    check_specs=check_specs("custom_export", EXPORT_CHECKS, request_partitions),
)
def custom_export(context: dg.AssetExecutionContext, config: ExportRequest, inbox: RequestInbox,
                  archive: ArchiveResource, detector: DetectorResource, label_cache: LabelCache,
                  artifacts: ArtifactStore, taxonomy: TaxonomyResource, curated_images: pd.DataFrame,
                  benchmark_splits: pd.DataFrame):
    """A ZIP of the requested images (parks, species, capture dates, offset/limit, empties) in the
    thesis's layout with the requested label formats. Boxes come from the same cached labels as the
    benchmark; missing ones are computed. What the benchmark hides, in the current splits and in every
    cut release, is never included (`lib.dataset_requests.withheld_mask`): the test images, every image
    of an unseen test camera and every frame of a hidden sequence, nor a byte-identical copy of a hidden
    image; only images the current splits have put in train or val are handed out (a new camera's or burst's
    images wait for the nightly splits). What a request hands out is recorded in the hidden store as
    published with labels, so no later release hides it. The spec is stored, so a re-execution needs no
    config."""
    request_id, tax = context.partition_key, taxonomy.load()
    spec, source, images, withholding = _accept(request_id, config, inbox, artifacts, tax, curated_images,
                                                benchmark_splits)
    context.log.info(f"request {request_id} ({source}): {len(images)} images match {spec.to_dict()}")
    with inbox.answering(request_id):
        store = archive.open()
        inbox.report_progress(request_id, "labelling", 0, len(images))
        labels, model = label_images(images.assign(split="export"), store, detector, label_cache, tax,
                                     config.label_threshold, context.log, name=request_id,
                                     progress=inbox.progress(request_id, "labelling"))
        labels = _copies_withheld(labels, store, withholding, label_cache, model, benchmark_splits)
        inbox.report_progress(request_id, "packing", len(images), len(images))
        members = ds.archive_members(ds.usable(labels).to_dict("records"), tax.class_names, spec.formats,
                                     {"request": request_id, **spec.to_dict()})
        stored, names = artifacts.publish_zip(layout.request_zip(request_id), members, store.open_stream)
        found = export_findings(labels, len(images), spec, names, verify_zip(str(stored.path), names),
                                withheld_by_reason(curated_images, spec, withholding))
        context.log.info(f"request {request_id}: {found.outcome()['summary']}, {model.inferences} inferences")
    checks = _check_results(found)
    failed = [c.check_name for c in checks if not c.passed]
    if failed:  # the ZIP is withdrawn: nothing that failed its checks is handed out as done
        artifacts.delete(layout.request_zip(request_id))
        inbox.answer_error(request_id, f"the export failed its checks {failed}", request=request_id)
        raise dg.Failure(f"request {request_id}: the export failed its checks {failed}")
    record_handed_out(artifacts, request_id, ds.usable(labels).merge(
        images[["path", "camera", "captured_at"]], on="path", how="left", suffixes=("_label", "")))
    inbox.write_json(f"{request_id}.result.json", {
        "request": request_id, "status": "done", "zip": stored.uri, "sha256": stored.sha256, "bytes": stored.bytes,
        **download_link(artifacts, layout.request_zip(request_id)),
        **found.outcome(), "spec": spec.to_dict(),
        "at": datetime.now(UTC).isoformat()})
    return publish(context, dg.MaterializeResult(
        metadata={**stored.metadata(), "selected": found.selected, "images": found.images, "left_out": found.left_out,
                  "dropped": dg.MetadataValue.json(found.dropped), "summary": found.outcome()["summary"],
                  "source": source,
                  "spec": dg.MetadataValue.json(spec.to_dict()), "inferences": model.inferences},
        check_results=checks,
    ))
