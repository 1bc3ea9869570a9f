"""The `wildbench` command: build a demo archive, run the pipeline, print what it produced."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

from wildbench_assets import layout, settings
from wildbench_assets.settings import SettingsError, check_environment
from wildbench_assets.training.registry import PREDICTOR_CHOICES


def resource(defs, name: str):
    """A resource of the definitions with its environment variables resolved (prod reads every location
    from the environment): an unset one is a clear error, never a path named after the variable."""
    import dagster as dg

    try:
        return defs.resources[name].process_config_and_initialize()
    except dg.DagsterInvalidConfigError as err:
        missing = sorted(set(re.findall(r'environment variable "(\w+)" which is not set', str(err))))
        error = SettingsError(f"the {name} resource needs {', '.join(missing) or 'a setting'} "
                              "to be set in the environment")
        error.missing = missing
        raise error from err


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


def _defs_for_archive(uri: str | None, endpoint_url: str | None):
    """The deployment's definitions with the archive of `--archive` (nothing global is changed)."""
    from wildbench_assets.definitions import build_defs
    from wildbench_assets.resources import build_resources
    from wildbench_assets.settings import deployment

    update = {k: v for k, v in {"uri": uri, "endpoint_url": endpoint_url}.items() if v}
    base = build_resources(deployment())["archive"]
    archive = type(base)(**{**{name: getattr(base, name) for name in type(base).model_fields}, **update})
    return build_defs(resources={"archive": archive})


def cmd_release(args: argparse.Namespace) -> int:
    """Cut a benchmark release (inputs brought up to date first), or --verify that one still reproduces."""
    from datetime import UTC, datetime

    import dagster as dg

    from wildbench_assets import runner
    from wildbench_assets.ingest_state import labels_fingerprint, recorded_manifest_sha256
    from wildbench_assets.resources.release_store import ReleaseNameError, ReleaseStore, check_name, release_name_for
    from wildbench_assets.resources.release_writer import read_cut_record
    from wildbench_assets.schedules import last_release_fingerprint

    runner.prepare_dagster_home()
    defs = _defs_for_archive(args.archive, args.endpoint_url)
    try:
        args.name and check_name(args.name)
    except ReleaseNameError as err:
        print(err, file=sys.stderr)
        return 2
    artifacts = resource(defs, "artifacts")
    releases = ReleaseStore(artifacts)
    graph = defs.resolve_asset_graph()
    needed = {k.to_user_string() for k in runner.ancestors(graph, dg.AssetKey("benchmark_release"))}
    with runner.open_instance() as instance:
        runner.reap_orphaned_runs(instance)
        existing = instance.get_dynamic_partitions("releases")
        name = args.name or release_name_for(existing, args.profile, datetime.now(UTC), args.verify)
        frozen = releases.is_cut(name)
        # A release the instance (or the hidden store) records as cut but whose folder is gone: rebuilt from
        # that record, byte for byte, or the run fails naming why; never cut again from today's images.
        lost = not frozen and (recorded_manifest_sha256(instance, name) is not None
                               or read_cut_record(artifacts, name) is not None)
        if args.verify != frozen and not lost:
            print(f"release {name} {'was never cut' if args.verify else 'exists: releases are immutable'}; "
                  f"{'cut it without --verify' if args.verify else '--verify rebuilds it and compares every byte'}",
                  file=sys.stderr)
            return 2
        if not args.verify and not lost:
            plan, outcome = runner.run_pipeline(defs, instance, resource(defs, "archive").open(), sorted(needed))
            if outcome.get("interrupted"):
                print(f"interrupted during {outcome['interrupted'][0]}: stopped, no release cut", file=sys.stderr)
                return 130
            if outcome.get("failure"):
                print(f"the release's inputs could not be brought up to date: {outcome}", file=sys.stderr)
                return 1
            if args.if_changed and existing and labels_fingerprint(instance) == last_release_fingerprint(instance):
                print(f"no release cut: the labelled splits are unchanged since release {existing[-1]}")
                return 0
        instance.add_dynamic_partitions("releases", [name])
        result, interrupted = runner.execute_interruptible(
            defs.resolve_job_def("release_job"), instance, partition_key=name, raise_on_error=False,
            tags=runner.cli_run_tags(),
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}},
                        "ops": {"benchmark_release": {"config": {"profile": args.profile,
                                                                 "licence": args.licence or ""}}}})
    if interrupted:
        print(f"release {name}: interrupted; nothing was published", file=sys.stderr)
        return 130
    failed = [e.event_specific_data.check_name for e in result.all_events
              if e.event_type_value == "ASSET_CHECK_EVALUATION" and not e.event_specific_data.passed]
    folder = artifacts.uri(layout.release_dir(name))  # printed: where the release lies (with S3: nothing fetched)
    if not result.success:
        why = [e.event_specific_data.error.message.strip() for e in result.all_events
               if e.event_type_value == "STEP_FAILURE" and e.event_specific_data.error]
        print(f"release {name}: FAILED ({', '.join(failed) or 'see the run log'}); nothing was published"
              + "".join(f"\n  {line}" for line in why), file=sys.stderr)
        return 1
    sheet = json.loads(releases.text(name, layout.DATASHEET))
    done = "rebuilt byte for byte from its recorded cut" if lost else \
        "reproduces byte for byte" if args.verify else "cut"
    print(f"release {name} {done}: {sheet['images']} images "
          f"{sheet['images_per_split']}, manifest sha256 {sheet['manifest_sha256']}")
    print(f"  {folder}/{layout.DATASHEET_MD}; downloads in {folder}/{layout.DOWNLOADS}; "
          f"warnings: {', '.join(failed) or 'none'}")
    if not args.verify and not lost:
        print("  models: `wildbench run` trains and scores every model on it (a running daemon does it by itself)")
    return 0


def cmd_portal(args: argparse.Namespace) -> int:
    """Serve the researcher portal over the deployment's published outputs and Dagster instance."""
    import uvicorn

    from wildbench_assets import runner
    from wildbench_assets.definitions import build_defs
    from wildbench_assets.lib.submissions import SubmitterError
    from wildbench_assets.portal.app import create_app
    from wildbench_assets.settings import portal_token, submission_limit, submitter_tokens

    try:  # a broken token file or limit is named now, not at the first submission
        tokens, _limit = submitter_tokens(), submission_limit()
    except SubmitterError as err:
        print(f"cannot serve the portal: {err}", file=sys.stderr)
        return 2
    runner.prepare_dagster_home()
    defs = build_defs()
    missing: set[str] = set()  # prod without its environment: refused here, naming all of it, not a 500 later
    for name in ("artifacts", "parquet_io_manager", "taxonomy", "inbox", "submissions", "detector"):
        try:
            resource(defs, name)
        except SettingsError as err:
            missing |= set(getattr(err, "missing", None) or [str(err)])
    if missing:
        raise SettingsError(f"the portal needs {', '.join(sorted(missing))} to be set in the environment")
    if portal_token() is None and not tokens:
        print("warning: neither WILDBENCH_PORTAL_TOKEN nor WILDBENCH_PORTAL_TOKENS_FILE is set: the portal shows "
              "everything but accepts no work (requests, submissions, inference)", file=sys.stderr)
    with runner.open_instance() as instance:
        uvicorn.run(create_app(defs, instance=instance), host=args.host, port=args.port, log_level="warning")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Bring the instance up to date with the archive: only what is missing or stale runs."""
    from wildbench_assets import runner
    from wildbench_assets.resources.parquet_io import UnreadableTable
    from wildbench_assets.summary import print_summary

    runner.prepare_dagster_home()


    defs = _defs_for_archive(args.archive, args.endpoint_url)
    known = [k.to_user_string() for k in defs.resolve_asset_graph().toposorted_asset_keys]
    selection = [s.strip() for s in args.select.split(",")] if args.select else None
    try:
        config_by_asset = json.loads(args.config) if args.config else None
        if config_by_asset is not None and not (isinstance(config_by_asset, dict) and all(
                isinstance(v, dict) for v in config_by_asset.values())):
            raise ValueError("expected an object of asset name -> config object")
    except ValueError as err:
        print(f"--config: {err}", file=sys.stderr)
        return 2
    unknown = (set(selection or []) | set(config_by_asset or {})) - set(known)
    if unknown:
        print(f"unknown assets {sorted(unknown)}; known: {known}", file=sys.stderr)
        return 2
    store = resource(defs, "archive").open()
    with runner.open_instance() as instance:
        for run_id in runner.reap_orphaned_runs(instance):
            print(f"run {run_id} was left STARTED by a killed wildbench process: marked failed", file=sys.stderr)
        try:
            plan = runner.plan_pipeline(defs, instance, store, set(selection) if selection else None, args.force,
                                        config_by_asset)
        except ValueError as err:  # an invalid --config: refused before anything runs, up to date or not
            print(f"--config: {err}", file=sys.stderr)
            return 2
        if not any(True for _ in store.list()):
            print(f"no objects under {store.uri}", file=sys.stderr)
            return 1
        print(f"archive {store.uri}; DAGSTER_HOME={settings.default_dagster_home()}")
        for park, count in plan.rejected_parks.items():
            print(f"warning: {count} objects under {park!r}/ skipped: a park folder name must match "
                  "[A-Za-z0-9][A-Za-z0-9_.-]* (it becomes a partition key)", file=sys.stderr)
        for park, day in plan.vanished:
            print(f"warning: every object of park={park} day={day} vanished: re-ingesting it as empty", file=sys.stderr)
        for line in plan.damaged:
            print(f"warning: {line}", file=sys.stderr)
        for line in plan.config_notes:
            print(f"--config: {line}", file=sys.stderr)
        for key in plan.order:
            todo, fresh = len(plan.todo.get(key, [])), plan.up_to_date.get(key, 0)
            if key in plan.unselected:
                print(f"  {key.to_user_string():24s} not selected")
            else:
                print(f"  {key.to_user_string():24s} {todo:4d} to run, {fresh:4d} up to date")
        if plan.empty:
            print("nothing to do: every asset is up to date with the archive (--force redoes everything)")
            return 0
        outcome = runner.run_plan(defs, instance, plan, config_by_asset)
    for line in outcome.get("failure", []):
        print(f"FAILED run {line}", file=sys.stderr)
    if outcome.get("interrupted"):
        print(f"interrupted during {outcome['interrupted'][0]}: stopped, nothing after it ran", file=sys.stderr)
        return 130
    if outcome.get("skipped"):
        print(f"not run after the failure: {', '.join(outcome['skipped'])}", file=sys.stderr)
    if outcome.get("unchanged"):
        same = outcome["unchanged"]
        print(f"{len(same)} partitions not run, their inputs ran again with the same content: "
              f"{', '.join(same[:5])}{' …' if len(same) > 5 else ''}")
    print(f"{len(outcome.get('success', []))} runs succeeded, {len(outcome.get('failure', []))} failed")
    try:
        print_summary(resource(defs, "parquet_io_manager").base_dir)
    except UnreadableTable as err:  # the runs' outcome above stands; the summary only reports
        print(f"no summary: {err}", file=sys.stderr)
    return 1 if outcome.get("failure") else 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Species and boxes for photos on disk, by the promoted model (the same code as new_image_predictions)."""
    from wildbench_assets.runner import prepare_dagster_home

    prepare_dagster_home()
    from wildbench_assets.definitions import build_defs
    from wildbench_assets.lib import predictions as pred
    from wildbench_assets.resources import model_store

    files = _image_files([Path(p) for p in args.paths])
    if not files:
        print("no image files found in the given paths", file=sys.stderr)
        return 2
    defs = build_defs()
    artifacts, tax = resource(defs, "artifacts"), resource(defs, "taxonomy").load()
    try:
        predictor = model_store.load_chosen_predictor(
            artifacts, resource(defs, "parquet_io_manager").load_partition("leaderboard"), tax.class_names,
            resource(defs, "detector"), args.min_confidence, args.model,
            weights=Path(args.weights) if args.weights else None)
    except (ValueError, FileNotFoundError) as err:
        print(f"cannot load the model: {err}", file=sys.stderr)
        return 2
    names = _display_names(files)
    items = list(zip(names, predictor.predict_files(files)))
    table = pred.predictions_table(items, predictor.class_names, predictor.name)
    print(table.drop(columns=["model"]).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    warnings = pred.answer_warnings(items, predictor.answer)
    document = pred.md_batch_document(items, predictor.class_names, predictor.identity, predictor.answer, warnings,
                                      predictor.min_confidence)
    if args.out:
        Path(args.out).write_text(json.dumps(document, indent=1))
        print(f"MegaDetector 1.6 batch file: {args.out}")
    if args.annotate:
        from PIL import Image

        out_dir = Path(args.annotate)
        for (name_, prediction), path in zip(items, files):
            if prediction["failure"]:
                continue
            target = out_dir / Path(name_).with_suffix(".jpg")
            target.parent.mkdir(parents=True, exist_ok=True)
            with Image.open(path) as image:
                pred.annotate(image, prediction, predictor.class_names).save(target, quality=90)
        print(f"annotated images under {out_dir}")
    failed = int((table.drop_duplicates("path").status == pred.FAILED).sum())
    print(f"{len(files)} images, {int((table.status == pred.PREDICTED).sum())} detections, {failed} failed "
          f"(model: {predictor.name})")
    print("\n".join(pred.answer_lines(predictor.answer, warnings)))
    return 0


def _image_files(paths: list[Path]) -> list[Path]:
    """Files given directly (whatever their suffix: a bad one becomes a failure row) and image files
    found recursively in given folders, sorted."""
    from wildbench_assets.lib.image_header import IMAGE_SUFFIXES

    found = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.exists():
            found.append(path)
        else:
            print(f"warning: {path} does not exist", file=sys.stderr)
    return found


def _display_names(files: list[Path]) -> list[str]:
    """Paths relative to the deepest common folder: same file names in different folders stay apart."""
    if len(files) == 1:
        return [files[0].name]
    root = Path(os.path.commonpath([str(f.resolve().parent) for f in files]))
    return [f.resolve().relative_to(root).as_posix() for f in files]


def _inbox_and_defs():
    from wildbench_assets import runner

    runner.prepare_dagster_home()
    from wildbench_assets.definitions import build_defs

    defs = build_defs()
    return resource(defs, "inbox"), defs


def cmd_request(args: argparse.Namespace) -> int:
    """Submit a request (a `<id>.json` in the inbox), follow it, fetch its ZIP."""
    import shutil
    import uuid

    from wildbench_assets.lib.dataset_requests import RequestError, check_request_id, parse_spec
    from wildbench_assets.settings import taxonomy_file
    from wildbench_assets.taxonomy import load_taxonomy

    inbox, defs = _inbox_and_defs()
    store = inbox.open()
    if args.action == "submit":
        request_id = args.id or f"req-{uuid.uuid4().hex[:8]}"
        raw = {k: v for k, v in {
            "parks": args.parks.split(",") if args.parks else None,
            "species": args.species.split(",") if args.species else None,
            "start_date": args.start_date, "end_date": args.end_date, "offset": args.offset,
            "limit": args.limit, "include_empties": args.include_empties or None,
            "formats": args.formats.split(",") if args.formats else None}.items() if v is not None}
        tax = load_taxonomy(taxonomy_file())
        try:  # the same validation the run applies, so a typo is caught before anything is queued
            check_request_id(request_id)
            parse_spec(raw, tax.species_codes, tax.park_codes)
        except RequestError as err:
            print(f"request rejected: {err}", file=sys.stderr)
            return 2
        store.write(f"{request_id}.json", json.dumps(raw, indent=1).encode())
        print(f"request {request_id} written to {store.uri}/{request_id}.json")
        if args.run:
            return _run_request(defs, request_id, args.timeout)
        if not args.wait:
            print("the custom_export_requests sensor starts it (make dev runs the daemon); "
                  f"follow with: wildbench request status --id {request_id}")
            return 0
        args.id = request_id
    request_id = args.id
    try:  # the id names files in the inbox: nothing but a plain id may reach the file system
        check_request_id(request_id or "")
    except RequestError as err:
        print(f"request rejected: {err}", file=sys.stderr)
        return 2
    if args.action in ("submit", "status"):
        deadline = time.monotonic() + (args.timeout if args.action == "submit" else 0)
        while True:
            for suffix, code in ((".result.json", 0), (".error.json", 1)):
                raw = store.read_optional(f"{request_id}{suffix}")
                if raw is not None:
                    _print_outcome(raw)
                    return code
            if time.monotonic() >= deadline:
                print(f"request {request_id}: no result yet", file=sys.stderr)
                return 3
            time.sleep(2)
    if args.action == "fetch":
        raw = store.read_optional(f"{request_id}.result.json")
        if raw is None:
            print(f"request {request_id} has no result yet", file=sys.stderr)
            return 3
        result = json.loads(raw)
        if result.get("status") == "expired":
            print(f"request {request_id}: its ZIP was deleted after the retention period; submit it again",
                  file=sys.stderr)
            return 1
        target = Path(args.dest) / f"{request_id}.zip" if Path(args.dest).is_dir() else Path(args.dest)
        if result.get("url"):  # presigned: works from any machine, no credentials needed
            if not resource(defs, "artifacts").is_download_url(result["url"], layout.request_zip(request_id)):
                print(f"request {request_id}: its result's url is not this request's ZIP on the configured S3 "
                      "endpoint (WILDBENCH_S3_PUBLIC_ENDPOINT_URL, else WILDBENCH_S3_ENDPOINT_URL, over "
                      "http(s)); refusing to follow it", file=sys.stderr)
                return 2
            return _download(result["url"], result.get("sha256"), target)
        published = resource(defs, "artifacts").path(layout.REQUESTS).resolve()
        zip_path = Path(result.get("zip", "")).resolve()
        if zip_path.parent != published or zip_path.name != f"{request_id}.zip" or not zip_path.is_file():
            print(f"request {request_id}: its result names {zip_path}, not this request's ZIP under {published}; "
                  "refusing to copy it", file=sys.stderr)
            return 2
        shutil.copyfile(zip_path, target)
        print(target)
        return 0
    return 2


def _download(url: str, sha256: str | None, target: Path) -> int:
    """GET a presigned URL into `target` (atomically), checking the sha256 the result promised."""
    import hashlib
    import urllib.error
    import urllib.request

    from wildbench_assets.resources.atomic import atomic_file

    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as response, atomic_file(target) as tmp, open(tmp, "wb") as out:
            while block := response.read(1 << 20):
                digest.update(block)
                out.write(block)
            if sha256 and digest.hexdigest() != sha256:
                raise ValueError(f"the download's sha256 {digest.hexdigest()[:12]}… is not the promised "
                                 f"{sha256[:12]}…")
    except urllib.error.HTTPError as err:
        hint = " (the link may have expired)" if err.code == 403 else ""
        print(f"download failed: HTTP {err.code}{hint}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError, ValueError) as err:
        print(f"download failed: {err}", file=sys.stderr)
        return 1
    print(target)
    return 0


def _run_request(defs, request_id: str, timeout: float) -> int:
    """Run the request now, in this process, through the Dagster instance (no daemon needed)."""
    from wildbench_assets.runner import cli_run_tags, open_instance, reap_orphaned_runs

    with open_instance() as instance:
        reap_orphaned_runs(instance)
        instance.add_dynamic_partitions("requests", [request_id])
        result = defs.resolve_job_def("custom_export_job").execute_in_process(
            instance=instance, partition_key=request_id, raise_on_error=False,
            tags={"wildbench/request": request_id, **cli_run_tags()},
            run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}})
    store = resource(defs, "inbox").open()
    suffix = ".result.json" if result.success else ".error.json"
    raw = store.read_optional(f"{request_id}{suffix}")
    if raw:
        _print_outcome(raw)
    else:
        print(f"run {result.run_id} {'succeeded' if result.success else 'failed'}")
    return 0 if result.success else 1


def _print_outcome(raw: bytes) -> None:
    """A request's result or error file as it is (JSON on stdout), and in words on stderr: how many
    images were selected, packed and left out, and why."""
    print(raw.decode())
    try:
        summary = json.loads(raw).get("summary")
    except (ValueError, AttributeError):
        summary = None
    if summary:
        print(summary, file=sys.stderr)


def cmd_score(args: argparse.Namespace) -> int:
    """Score a predictions file against a truth file with the leaderboard's metrics; JSON on stdout."""
    from wildbench_assets.lib.scoring import ScoringError, score
    from wildbench_assets.settings import taxonomy_file
    from wildbench_assets.taxonomy import load_taxonomy

    tax = load_taxonomy(taxonomy_file())
    if (args.truth is None) == (args.release is None) or (args.submit and not args.release):
        print("score against --truth FILE or --release NAME (--submit needs --release)", file=sys.stderr)
        return 2
    if args.release:
        return _score_on_release(args, tax)
    try:
        result = score(_text(args.truth), _text(args.predictions), tax.class_names,
                       [(s.code, s.scientific_name, s.common_name) for s in tax.species], args.threshold)
    except (ScoringError, OSError) as err:
        print(f"cannot score: {err}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=1))
    return 0


def _score_on_release(args: argparse.Namespace, tax) -> int:
    """Score against a named release's hidden truth (the same groups as `submission_scores`), or with
    --submit drop the file into the submissions inbox naming that release, score it in process and
    refresh the leaderboard: one model's predictions for the default and the thesis release, side by side."""
    from wildbench_assets.lib.dataset_requests import RequestError, check_request_id
    from wildbench_assets.lib.leaderboard import public_score, release_score
    from wildbench_assets.lib.releases import RELEASE_SUFFIX, truth_sequences
    from wildbench_assets.lib.scoring import ScoringError
    from wildbench_assets.lib.submissions import SUBMITTER_SUFFIX, SubmitterError, check_submitter
    from wildbench_assets.resources.release_store import ReleaseNameError, ReleaseStore, check_name
    from wildbench_assets.runner import cli_run_tags, open_instance, reap_orphaned_runs

    try:
        check_name(args.release)
    except ReleaseNameError as err:
        print(err, file=sys.stderr)
        return 2
    _inbox, defs = _inbox_and_defs()
    releases = ReleaseStore(resource(defs, "artifacts"))
    if not releases.is_cut(args.release):
        print(f"no release {args.release!r} has been cut (`wildbench release`)", file=sys.stderr)
        return 2
    if not args.submit:  # hidden labels: headline metrics per test set only, as a submission is told
        sequences = truth_sequences(releases.manifest(args.release))  # the test images' sequences, for intervals
        try:
            result = public_score(release_score(releases.truth(args.release), _text(args.predictions), tax.class_names,
                                                [(s.code, s.scientific_name, s.common_name) for s in tax.species],
                                                args.threshold, sequences))
        except (ScoringError, OSError) as err:
            print(f"cannot score: {err}", file=sys.stderr)
            return 2
        print(json.dumps({"release": args.release, **result}, indent=1))
        return 0
    predictions = Path(args.predictions)
    try:
        check_request_id(args.submit)
        if args.submitter is not None:
            check_submitter(args.submitter)
        if predictions.suffix.lower() not in (".json", ".csv"):
            raise RequestError("a submission is a MegaDetector/COCO .json or an image_id,label .csv")
        data = predictions.read_bytes()
    except (RequestError, SubmitterError, OSError) as err:
        print(f"cannot submit: {err}", file=sys.stderr)
        return 2
    store = resource(defs, "submissions").open()
    if args.submitter is not None:  # whose submission limit it counts against
        store.write(f"{args.submit}{SUBMITTER_SUFFIX}", f"{args.submitter}\n".encode())
    store.write(f"{args.submit}{RELEASE_SUFFIX}", f"{args.release}\n".encode())  # before the file the sensor sees
    store.write(f"{args.submit}{predictions.suffix.lower()}", data)
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    with open_instance() as instance:
        reap_orphaned_runs(instance)
        instance.add_dynamic_partitions("submissions", [args.submit])
        result = defs.resolve_job_def("submission_job").execute_in_process(
            instance=instance, partition_key=args.submit, raise_on_error=False, tags=cli_run_tags(),
            run_config={**quiet, "ops": {"submission_scores": {"config": {"image_threshold": args.threshold}}}})
        if result.success:
            defs.resolve_job_def("leaderboard_job").execute_in_process(
                instance=instance, raise_on_error=False, tags=cli_run_tags(), run_config=quiet)
    raw = store.read_optional(f"{args.submit}{'.score.json' if result.success else '.error.json'}")
    print(raw.decode() if raw else f"run {result.run_id} {'succeeded' if result.success else 'failed'}")
    return 0 if result.success else 1


def _text(path: str) -> str:
    from wildbench_assets.lib.scoring import ScoringError

    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ScoringError(f"{path} is not UTF-8 text (binary data?)") from err


def cmd_buckets(args: argparse.Namespace) -> int:
    """Create the buckets the environment names (s3:// locations and WILDBENCH_LOG_BUCKET), if missing."""
    from wildbench_assets.resources.archive import s3_client

    names = {uri[len("s3://"):].split("/", 1)[0] for uri in settings.bucket_uris() if uri.startswith("s3://")}
    names |= {settings.log_bucket()} - {None}
    client = s3_client(settings.s3_endpoint_url())
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    for name in sorted(names - existing):
        client.create_bucket(Bucket=name)
    print(f"buckets: {len(names - existing)} created, {len(names & existing)} already there")
    return 0


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
    demo.add_argument("--endpoint-url", default=settings.optional("WILDBENCH_S3_ENDPOINT_URL"))
    demo.set_defaults(func=cmd_demo_archive)

    run = sub.add_parser("run", help="bring the pipeline up to date with the archive (only what is missing or stale)")
    run.add_argument("--archive", help="local folder or s3://bucket/prefix (default: $WILDBENCH_ARCHIVE or the demo)")
    run.add_argument("--select", help="comma-separated assets (default: all), e.g. raw_images,image_metadata")
    run.add_argument("--force", action="store_true", help="redo every partition, stale or not")
    run.add_argument("--endpoint-url", help="S3-compatible endpoint (MinIO), default $WILDBENCH_S3_ENDPOINT_URL")
    run.add_argument("--config", help='run config of assets as JSON, e.g. \'{"benchmark_splits": {"by": "sequence"}}\'')
    run.set_defaults(func=cmd_run)

    release = sub.add_parser("release", help="cut a frozen benchmark release (default name YYYY.MM), or --verify one")
    release.add_argument("--name", help="release id, e.g. 2026.11 (default: this month's, or the latest with --verify)")
    release.add_argument("--verify", action="store_true", help="rebuild an existing release and compare every byte")
    release.add_argument("--profile", choices=["default", "thesis"], default="default",
                         help="thesis: the thesis's construction (bursts per species over both parks, random image "
                              "split, one box per image), named YYYY.MM-thesis, to score beside the default one")
    release.add_argument("--licence", help="the terms under which the archive's owner lets its images and labels "
                                           "be used, written into every download's LICENSE (frozen at the cut)")
    release.add_argument("--if-changed", action="store_true",
                         help="cut only if the labelled splits changed since the last release (as the schedule)")
    release.add_argument("--archive", help="local folder or s3://bucket/prefix (default: $WILDBENCH_ARCHIVE)")
    release.add_argument("--endpoint-url", help="S3-compatible endpoint (MinIO), default $WILDBENCH_S3_ENDPOINT_URL")
    release.set_defaults(func=cmd_release)

    portal = sub.add_parser("portal", help="serve the researcher portal (pages + JSON API)")
    portal.add_argument("--host", default="127.0.0.1")
    portal.add_argument("--port", type=int, default=8080)
    portal.set_defaults(func=cmd_portal)

    request = sub.add_parser("request", help="custom dataset requests: submit, status, fetch")
    request.add_argument("action", choices=["submit", "status", "fetch"])
    request.add_argument("--id", help="request id (submit: default a random one)")
    request.add_argument("--parks", help="comma-separated park codes")
    request.add_argument("--species", help="comma-separated species codes")
    request.add_argument("--start-date", help="first capture date, YYYY-MM-DD")
    request.add_argument("--end-date", help="last capture date, YYYY-MM-DD")
    request.add_argument("--offset", type=int)
    request.add_argument("--limit", type=int)
    request.add_argument("--include-empties", action="store_true")
    request.add_argument("--formats", help="comma-separated: yolo,voc,coco (default yolo)")
    request.add_argument("--run", action="store_true", help="submit: run it now in this process (no daemon)")
    request.add_argument("--wait", action="store_true", help="submit: wait for the sensor's run to finish")
    request.add_argument("--timeout", type=float, default=600)
    request.add_argument("--dest", default=".", help="fetch: where to copy the ZIP")
    request.set_defaults(func=cmd_request)

    scoring = sub.add_parser("score", help="score predictions against ground truth (metrics as JSON)")
    scoring.add_argument("--truth", help="COCO Camera Traps json or image_id,label CSV")
    scoring.add_argument("--release", help="instead of --truth: a cut release's hidden test labels (e.g. 2026.11 or "
                                           "2026.11-thesis), scored per test set like a submission")
    scoring.add_argument("--submit", metavar="ID",
                         help="with --release: submit as <ID> naming that release; scored in process and put on "
                              "the leaderboard under that release")
    scoring.add_argument("--submitter", metavar="NAME",
                         help="with --submit: who submits (the submission limit counts per submitter and release; "
                              "default: the inbox's shared submitter `inbox`)")
    scoring.add_argument("--predictions", required=True,
                         help="MegaDetector batch output 1.6, COCO results json, or image_id,label CSV")
    scoring.add_argument("--threshold", type=float, default=0.2,
                         help="image level: an image's class is its most confident detection at or above this")
    scoring.set_defaults(func=cmd_score)

    predict = sub.add_parser("predict", help="species and boxes for photos, by the promoted model")
    predict.add_argument("paths", nargs="+", help="image files or folders (searched recursively)")
    predict.add_argument("--model", default="auto", choices=PREDICTOR_CHOICES,
                         help="auto: the best promotable model of the most recently cut release that has one, "
                              "else the detector alone; a model name: that model on the most recent release "
                              "it was trained on")
    predict.add_argument("--weights", help="a weights file of --model (default: the one trained on a release)")
    predict.add_argument("--min-confidence", type=float, default=0.1)
    predict.add_argument("--out", help="write the MegaDetector 1.6 batch file here")
    predict.add_argument("--annotate", help="write annotated JPEGs (boxes, species, score) into this folder")
    predict.set_defaults(func=cmd_predict)

    buckets = sub.add_parser("buckets", help="create the S3 buckets the production environment names")
    buckets.set_defaults(func=cmd_buckets)

    summary = sub.add_parser("summary", help="print what the last runs produced")
    summary.set_defaults(func=cmd_summary)

    args = parser.parse_args(argv)
    try:
        check_environment()
        return args.func(args)
    except SettingsError as err:
        print(f"wildbench {args.command}: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C between steps: the shell's convention for a stopped command
        print(f"wildbench {args.command}: interrupted", file=sys.stderr)
        return 130
    except ValueError as err:
        from wildbench_assets.resources.parquet_io import UnreadableTable

        if not isinstance(err, UnreadableTable):
            raise
        print(f"wildbench {args.command}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
