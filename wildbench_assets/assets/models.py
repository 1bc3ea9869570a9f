"""Models: weights per model and release, their evaluation on the release's hidden test sets, and the
leaderboard."""

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pandas as pd

from wildbench_assets import layout
from wildbench_assets.assets.checks import (
    Check,
    check_results,
    check_specs,
    frame_markdown,
    png_markdown,
    publish,
    verdict,
)
from wildbench_assets.automation import when_inputs_changed
from wildbench_assets.config import EvaluationConfig, TrainConfig
from wildbench_assets.execution import GPU_POOL, GPU_STEP
from wildbench_assets.ingest_state import cut_release_facts, latest_release
from wildbench_assets.lib import leaderboard as lb
from wildbench_assets.lib.leaderboard import LEADERBOARD_COLUMNS
from wildbench_assets.lib.plots import bar_chart_png, confusion_png
from wildbench_assets.lib.releases import RELEASE_SUFFIX, named_release, truth_sequences
from wildbench_assets.lib.scoring import ScoringError
from wildbench_assets.lib.submissions import SUBMITTER_SUFFIX, SubmitterError, named_submitter
from wildbench_assets.lib.versions import table_version
from wildbench_assets.lib.weights import WeightsFindings
from wildbench_assets.partitions import MODEL, RELEASE, model_release_partitions, submission_partitions
from wildbench_assets.resources import model_store
from wildbench_assets.resources.artifacts import ArtifactStore
from wildbench_assets.resources.inbox import RequestInbox
from wildbench_assets.resources.release_store import ReleaseStore
from wildbench_assets.resources.taxonomy import TaxonomyResource
from wildbench_assets.settings import submission_limit

TRAINING_CODE_VERSION = "1"
# A model partition (model x release) reads its release's datasets, and its release's hidden truth.
OF_ITS_RELEASE = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name=RELEASE)
WEIGHTS_CHECKS = {
    "weights_loadable": Check("The trained weights load back into the model."),
    "loss_finite": Check("Every recorded training loss is finite."),
}
EVALUATION_CHECKS = {
    "predictions_match_test_split": Check("The model predicted every image of each test set, and only those."),
    "metrics_in_range": Check("Every metric (mAP, precision, recall, accuracy) is between 0 and 1."),
}
LEADERBOARD_CHECKS = {"one_row_per_model": Check("One row per model and release.")}
SUBMISSION_CHECKS = {
    "metrics_in_range": Check("Every metric of the scored submission is between 0 and 1."),
}
THESIS_RESULTS = Path(__file__).resolve().parents[1] / "data" / "thesis_results.json.gz"


def _weights_checks(found: WeightsFindings | None) -> list[dg.AssetCheckResult]:
    if found is None:  # nothing trained: nothing to fail
        return check_results(WEIGHTS_CHECKS, **{name: verdict(True, note="nothing trained") for name in WEIGHTS_CHECKS})
    return check_results(WEIGHTS_CHECKS, weights_loadable=verdict(found.loadable),
                         loss_finite=verdict(found.loss_finite, losses=dg.MetadataValue.json(found.losses)))


@dg.asset(
    partitions_def=model_release_partitions,
    deps=[dg.AssetDep("training_datasets", partition_mapping=OF_ITS_RELEASE)],
    group_name="models",
    kinds={"pytorch"},
    op_tags=GPU_STEP,
    pool=GPU_POOL,
    code_version=TRAINING_CODE_VERSION,
    automation_condition=when_inputs_changed(inputs_required=True),
    check_specs=check_specs("model_weights", WEIGHTS_CHECKS, model_release_partitions),
)
def model_weights(context: dg.AssetExecutionContext, config: TrainConfig, artifacts: ArtifactStore):
    """Trained weights of one model on one release's train split (validated on its val split): `yolov8`
    (ultralytics; yolov8s from a configured pretrained file, else from its yaml), `megadetector` (the
    `yolov5` package's trainer: fine-tuned from a configured MD v5 weights file with the first 20 layers
    frozen, else yolov5x6 from its yaml) or `fasterrcnn` (torchvision resnet50_fpn_v2; the tiny preset
    uses the 320-px MobileNetV3 FPN). Stored atomically with sha256, code version and config under
    `models/<release>/<model>/`. Not retrained when the training data, settings and trainer are
    unchanged: the stored weights are re-published as they are."""
    keys, settings = context.partition_key.keys_by_dimension, config.settings()
    model, release = keys[MODEL], keys[RELEASE]
    facts = cut_release_facts(artifacts, release)
    if not artifacts.path(f"{layout.datasets_dir(release)}/dataset.yaml").exists():
        raise dg.Failure(f"no training datasets of release {release}: materialize training_datasets first")
    training_input = model_store.training_input(artifacts, release, settings, TRAINING_CODE_VERSION)
    card = model_store.stored_card(artifacts, model, release)
    retrained = card.get("training_input") != training_input
    if not retrained:
        context.log.info(f"{model}: training data, settings and trainer unchanged: not retrained")
    elif not model_store.image_count(artifacts.path(f"{layout.datasets_dir(release)}/train")):
        context.log.warning(f"{model}: the train split has no images; no weights are trained")
        return publish(context, dg.MaterializeResult(
            data_version=dg.DataVersion("untrained"), metadata={"trained": False, "reason": "empty train split"},
            check_results=_weights_checks(None)))
    else:
        card = model_store.train_and_store(artifacts, model, release, settings,
                                           facts.class_names,  # frozen with the release, not today's
                                           context.run_id, training_input)
    stored = artifacts.describe(layout.model_file(model, release, model_store.WEIGHTS))
    found = WeightsFindings(load_error=model_store.weights_load_error(stored.path), losses=card["losses"])
    if not found.loadable:
        context.log.error(f"weights do not load: {found.load_error}")
    return publish(context, dg.MaterializeResult(
        data_version=dg.DataVersion(stored.sha256[:16]),
        metadata={**stored.metadata(), "retrained": retrained, "train_seconds": card["train_seconds"],
                  "epochs": settings.epochs, "imgsz": settings.imgsz, "device": settings.device,
                  "code_version": card["code_version"], "settings": dg.MetadataValue.json(settings.to_dict()),
                  "loss_curve": png_markdown(bar_chart_png(found.curve, f"{model}: training loss per epoch", "loss"),
                                             "loss")},
        check_results=_weights_checks(found),
    ))


def _evaluation_metadata(found: lb.EvaluationFindings, class_names: list[str]) -> dict:
    """The row's numbers; with an unseen-camera score, per-species AP and F1, per park, and the confusion."""
    metadata = lb.numeric_metadata(found.detail) | {"release": found.row["release"]}  # unrounded: operators
    model, unseen = f"{found.row['model']} on {found.row['release']}", found.unseen
    if unseen:
        per_class = lb.per_class_frame(unseen)
        metadata |= {
            "per_class": frame_markdown(per_class),
            "per_park": dg.MetadataValue.json(json.loads(found.detail["per_park"])),
            "per_class_plot": png_markdown(bar_chart_png(per_class, f"{model}: per-species AP and F1", "score"),
                                           "per-species AP and F1"),
            "confusion_matrix": png_markdown(confusion_png(
                unseen["image_level"]["confusion"], lb.confusion_labels(unseen, class_names),
                f"{model}: image-level confusion (row share)"), "confusion matrix")}
    return metadata


@dg.asset(
    partitions_def=model_release_partitions,
    deps=["model_weights", dg.AssetDep("benchmark_release", partition_mapping=OF_ITS_RELEASE)],
    group_name="models",
    kinds={"pandas", "parquet"},
    io_manager_key="parquet_io_manager",
    code_version="6",  # 5: the public (rounded) row, detail in metadata only; 6: intervals, event accuracy
    op_tags=GPU_STEP,
    pool=GPU_POOL,
    automation_condition=when_inputs_changed(inputs_required=True),
    check_specs=check_specs("model_evaluation", EVALUATION_CHECKS, model_release_partitions),
)
def model_evaluation(context: dg.AssetExecutionContext, config: EvaluationConfig, artifacts: ArtifactStore,
                     taxonomy: TaxonomyResource):
    """One model trained on a release, scored exactly as a researcher's submission is: it predicts the
    images of the release's public test ZIPs (public ids, no EXIF) and its COCO results are scored against
    the release's hidden truth — unseen cameras (`test`, the headline) and seen cameras (`test_seen`:
    training cameras, no shared burst) with the gap, COCO mAP@.5 and mAP@[.5:.95] with per-class AP
    (every prediction kept and ranked), the thesis's image-level metrics, a per-park breakdown, and
    inference images/s on this machine."""
    keys, tax = context.partition_key.keys_by_dimension, taxonomy.load()
    model, release = keys[MODEL], keys[RELEASE]
    facts = cut_release_facts(artifacts, release)
    card = model_store.stored_card(artifacts, model, release)
    species = [(s.code, s.scientific_name, s.common_name) for s in tax.species]
    predicted, seconds = (model_store.predict_public_test_sets(artifacts, model, release, card,
                                                               len(facts.class_names)) if card else ({}, 0.0))
    truth = ReleaseStore(artifacts).truth(release)
    try:
        found = lb.evaluation_findings(model, facts, card, truth, predicted, seconds, species, config.image_threshold,
                                       _sequences(artifacts, release))
    except ScoringError as err:
        raise dg.Failure(f"{model} on {release}: predictions and the hidden truth disagree: {err}") from err
    if card:
        model_store.write_predictions(artifacts, model, release, lb.coco_results(predicted))
    if found.note:  # a small archive can leave the test set empty, or nothing trained: said so
        context.log.warning(f"{model} on {release}: {found.note}; no unseen-camera metric can be computed")
    table = pd.DataFrame([found.row])
    return publish(context, dg.MaterializeResult(
        value=table,
        data_version=dg.DataVersion(table_version(table.drop(columns=["images_per_s"]))),
        metadata=_evaluation_metadata(found, facts.class_names),
        check_results=check_results(
            EVALUATION_CHECKS,
            predictions_match_test_split=verdict(found.predictions_match, images=dg.MetadataValue.json(found.images),
                                                 predicted=dg.MetadataValue.json(found.predicted)),
            metrics_in_range=verdict(found.in_range, metrics_checked=found.metrics_checked),
        ),
    ))


def _sequences(artifacts: ArtifactStore, release: str) -> dict[str, str]:
    """The hidden test images' sequences, from the release's manifest (what its intervals resample)."""
    return truth_sequences(ReleaseStore(artifacts).manifest(release))


def thesis_rows(results_file: Path = THESIS_RESULTS) -> list[dict]:
    """The thesis's three published rows, recomputed from its per-image results, which ship inside the
    package (`data/thesis_results.json.gz`, with the sha256 of each original file): always present."""
    return lb.thesis_rows(json.loads(gzip.decompress(results_file.read_bytes()))["models"])


@dg.asset(
    ins={"model_evaluation": dg.AssetIn(partition_mapping=dg.AllPartitionMapping()),
         "submission_scores": dg.AssetIn(partition_mapping=dg.AllPartitionMapping())},
    group_name="models",
    kinds={"pandas", "parquet"},
    io_manager_key="parquet_io_manager",
    code_version="4",  # intervals and ties
    automation_condition=when_inputs_changed(),
    check_specs=check_specs("leaderboard", LEADERBOARD_CHECKS),
)
def leaderboard(context: dg.AssetExecutionContext, model_evaluation: pd.DataFrame, submission_scores: pd.DataFrame):
    """Every model trained on a release and every scored submission, per release (two rows of one release
    were measured on the same hidden test set), next to the thesis's published rows recomputed from its
    per-image results: unseen-camera metrics (the headline), seen-camera ones and the gap (the per-class
    and per-park breakdowns stay in `model_evaluation`: the portal serves this table); `profile` says how
    the release was cut (`thesis`: the thesis's protocol); each row's test-set size, event-level accuracy,
    95 % bootstrap intervals (resampling sequences) and `tied_with`: the rows of its release whose interval
    overlaps its own. Sorted by release, then mAP@[.5:.95], then weighted F1.
    Refreshed by automation whenever an evaluation or a submission score lands."""
    parts = [f for f in (model_evaluation, submission_scores, pd.DataFrame(thesis_rows())) if not f.empty]
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=LEADERBOARD_COLUMNS)
    table = table.drop(columns=list(lb.BREAKDOWN_COLUMNS), errors="ignore")  # public: no per-class/park drill-down
    table = table.reindex(columns=list(dict.fromkeys([*LEADERBOARD_COLUMNS, *table.columns])))
    table = table.sort_values(["release", "map_50_95", "f1_weighted"], ascending=[True, False, False],
                              na_position="last", ignore_index=True)
    table["tied_with"] = lb.tied_with(table.astype(object).where(table.notna(), None).to_dict("records"))
    shown = table[["model", "release", "images", "map_50_95", "map_50", "map_50_low", "map_50_high", "seen_map_50",
                   "gap_map_50", "accuracy", "event_accuracy", "seen_accuracy", "gap_accuracy", "f1_weighted",
                   "tied_with"]]
    views = {f"leaderboard {release}": dg.MetadataValue.md(rows.drop(columns="release").astype(object).round(4)
                                                           .to_markdown(index=False))
             for release, rows in shown.groupby("release", sort=True)}
    labelled = shown.assign(row=shown.model + " @ " + shown.release.astype(str)).set_index("row")
    plot = bar_chart_png(labelled[["map_50", "seen_map_50", "f1_weighted"]].astype(float).fillna(0),
                         "leaderboard: mAP@.5 unseen vs seen cameras, image-level F1", "score")
    return publish(context, dg.MaterializeResult(
        value=table,
        data_version=dg.DataVersion(table_version(table.drop(columns=["images_per_s"], errors="ignore"))),
        metadata={"rows": len(table), "releases": dg.MetadataValue.json(sorted(table.release.dropna().unique())),
                  **views, "plot": png_markdown(plot, "leaderboard")},
        check_results=check_results(LEADERBOARD_CHECKS, one_row_per_model=verdict(
            not table.duplicated(["model", "release"]).any(), rows=len(table))),
    ))


def _admitted(submissions: RequestInbox, submission: str, release: str) -> str:
    """The submission's submitter, once the submission limit (`lib.submissions.Limit`, the portal's rule
    too) admits it; a SubmitterError with the reason if not."""
    submitter = named_submitter(submissions.read_item(submission, (SUBMITTER_SUFFIX,)))
    limit, arrived = submission_limit(), submissions.arrival(submission) or datetime.now(UTC)
    refusal = limit.refusal(submissions.submission_history(release, arrived - limit.window), submission,
                            submitter, release, arrived)
    if refusal:
        raise SubmitterError(refusal)
    return submitter


@dg.asset(
    partitions_def=submission_partitions,
    deps=[dg.AssetDep("benchmark_release", partition_mapping=dg.LastPartitionMapping())],
    group_name="models",
    kinds={"pandas", "parquet"},
    io_manager_key="parquet_io_manager",
    code_version="3",  # aggregates only, submitter and limit; intervals
    check_specs=check_specs("submission_scores", SUBMISSION_CHECKS, submission_partitions),
)
def submission_scores(context: dg.AssetExecutionContext, config: EvaluationConfig, artifacts: ArtifactStore,
                      taxonomy: TaxonomyResource, submissions: RequestInbox):
    """A researcher's predictions for the latest release's test set (or the release named by a
    `<id>.release` file beside it, e.g. a thesis-profile one) — MegaDetector batch output 1.6, COCO
    results json or an image-level CSV (`image_id,label`), images named by their public id (`wb...`, as
    in the public test ZIP) — scored against the release's hidden labels by exactly the code that scores
    our models. The answer (`<id>.score.json`) and the row hold headline metrics per test set only
    (`lib.leaderboard.public_score`). A file that cannot be scored, or one over its submitter's limit
    (`<id>.submitter`; `lib.submissions`), is rejected with its reason (`<id>.error.json`)."""
    submission, tax = context.partition_key, taxonomy.load()
    species = [(s.code, s.scientific_name, s.common_name) for s in tax.species]
    with submissions.answering(submission):  # any failure is answered with <id>.error.json
        try:
            raw = submissions.read_item(submission, (".json", ".csv"))
            named = submissions.read_item(submission, (RELEASE_SUFFIX,))  # the submission may name its release
            release = named_release(named) if named is not None else latest_release(context.instance, artifacts)
            facts = ReleaseStore(artifacts).facts(release) if release else None
            if named is not None and facts is None:
                raise ScoringError(f"no release {release!r} has been cut (named by {submission}{RELEASE_SUFFIX})")
            submitter = _admitted(submissions, submission, release) if raw is not None and facts else None
            truth = ReleaseStore(artifacts).truth(release) if facts else None
            found = lb.submission_findings(submission, raw, release, facts and facts.profile, truth,
                                           facts.class_names if facts else tax.class_names, species,
                                           config.image_threshold,  # the release's frozen classes, as models
                                           _sequences(artifacts, release) if facts else None)
        except (ScoringError, SubmitterError) as err:
            # a failure once the hidden truth was read counts against the limit like a score
            submissions.answer_error(submission, str(err), submission=submission,
                                     counted=getattr(err, "reached_truth", False))
            raise dg.Failure(f"submission {submission} rejected: {err}") from err
        if not found.in_range:  # never a NaN on the leaderboard
            submissions.answer_error(submission, found.range_error, submission=submission, counted=True)
            raise dg.Failure(f"submission {submission}: {found.range_error}")
        # aggregates only: this file is the researcher's answer (and the portal's)
        submissions.write_json(f"{submission}.score.json", {"submission": submission, "submitter": submitter,
                                                            "release": release, **found.public,
                                                            "at": datetime.now(UTC).isoformat()})
    return publish(context, dg.MaterializeResult(
        value=pd.DataFrame([found.row]),
        metadata=lb.numeric_metadata(found.row),
        check_results=check_results(SUBMISSION_CHECKS, metrics_in_range=verdict(found.in_range)),
    ))
