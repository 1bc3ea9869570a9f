"""`wildbench run`: bring the instance up to date with the archive, doing only what is missing or stale.

The plan comes from the asset graph and the instance, never from a list kept here:
1. the archive is scanned and fingerprinted per (park, arrival day) exactly as the `archive_arrivals`
   sensor does; partitions whose fingerprint differs from what their last ingest stored are ingested;
   a materialized partition whose Parquet file is missing or not Parquet is re-made too;
2. every other asset partition, in the graph's topological order, runs when it is missing, when it is
   stale in the one meaning the automation conditions use (`automation.py`: an input's data version or
   its code version changed; `automation.Staleness`), or when an upstream partition is planned in this
   run: its new data version cannot be known before it runs, so it counts as changed, and the partition
   is re-checked once that input ran (`unchanged_after_inputs_ran`: skipped if it kept its content).
   Assets that re-derive only on a schedule in the daemon run here too, because running `wildbench run`
   is asking for an up-to-date benchmark now;
3. consecutive assets with the same partitions run together, one run per partition, in process on the
   instance, so every run shows in the UI. `force` replans everything.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import socket
import threading
import typing
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import pydantic

from wildbench_assets.assets.inference import MODEL_INPUT_KEYS
from wildbench_assets.automation import Staleness
from wildbench_assets.ingest_state import stored_fingerprints
from wildbench_assets.lib.arrivals import EMPTY_FINGERPRINT, ArchiveScan, plan_ingest
from wildbench_assets.partitions import (
    arrival_day_partitions,
    park_day_key,
    park_partitions,
    partition_chunks,
    range_tags,
)
from wildbench_assets.resources.atomic import process_alive
from wildbench_assets.resources.day_keys import DAY_KEYS_TAG
from wildbench_assets.sensors import scan_archive
from wildbench_assets.settings import PROJECT_ROOT, SettingsError, default_dagster_home, use_dagster_home

# Partitioned by request or submission id: driven by their inboxes (sensors), not by the archive.
INBOX_ASSETS = {dg.AssetKey("custom_export"), dg.AssetKey("submission_scores")}
# Cut on demand (`wildbench release`, the launchpad, the monthly schedule), never re-run by `wildbench run`.
ON_DEMAND_ASSETS = {dg.AssetKey("benchmark_release")}
# Dependencies that are read but do not trigger a re-run (a newly promoted model does not re-predict
# every old day); the same as the automation condition of new_image_predictions.
NON_TRIGGERING = {dg.AssetKey("new_image_predictions"): {dg.AssetKey(k) for k in MODEL_INPUT_KEYS}}


def prepare_dagster_home() -> Path:
    """`$DAGSTER_HOME` (default: `.dagster_home/` in the checkout) holding the repo's dagster.yaml."""
    home = Path(default_dagster_home())
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    use_dagster_home(home)
    return home


def open_instance() -> dg.DagsterInstance:
    """The instance of `$DAGSTER_HOME`, its storage created under a file lock: two commands starting at
    once on a fresh SQLite instance would otherwise race to create the same tables."""
    import fcntl

    from sqlalchemy.exc import DatabaseError

    home = prepare_dagster_home()
    with open(home / ".wildbench-open.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            instance = dg.DagsterInstance.get()
            instance.get_runs(limit=1)  # creates the run, event-log and schedule storages now, under the lock
            instance.get_dynamic_partitions("parks")
            instance.event_log_storage.get_latest_storage_id_by_partition(
                dg.AssetKey("raw_images"), dg.DagsterEventType.ASSET_MATERIALIZATION)
        except DatabaseError as err:
            damaged = unreadable_sqlite(home) or err.orig
            raise SettingsError(f"the Dagster instance in {home} cannot be read: {damaged}; restore it "
                                "from a backup, or move it away to start a new instance "
                                "(which forgets past runs and cut releases)") from None
    return instance


def unreadable_sqlite(home: Path) -> str:
    """Which SQLite files of a Dagster home are damaged, and how (empty when none is, e.g. Postgres)."""
    import sqlite3

    found = []
    for path in sorted(home.rglob("*.db")):
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
                db.execute("PRAGMA quick_check").fetchall()
        except sqlite3.DatabaseError as err:
            found.append(f"{path} ({err})")
    return ", ".join(found)


def scan(store) -> ArchiveScan:
    found = ArchiveScan.empty()
    found.add(store.list())
    return found


def archive_partitions(store) -> list[tuple[str, str]]:
    """Sorted (park, arrival day) pairs that hold at least one object."""
    return sorted(scan(store).partitions)


def register_partitions(instance: dg.DagsterInstance, pairs) -> None:
    for definition, values in ((park_partitions, {p for p, _ in pairs}),
                               (arrival_day_partitions, {d for _, d in pairs})):
        new = sorted(values - set(instance.get_dynamic_partitions(definition.name)))
        if new:
            instance.add_dynamic_partitions(definition.name, new)


@dataclass
class Plan:
    """Asset partitions to materialize, in the graph's order, and what was found up to date."""

    order: list[dg.AssetKey]
    todo: dict[dg.AssetKey, list] = field(default_factory=dict)  # partition keys (None: unpartitioned)
    up_to_date: dict[dg.AssetKey, int] = field(default_factory=dict)
    vanished: list[tuple[str, str]] = field(default_factory=list)
    rejected_parks: dict[str, int] = field(default_factory=dict)  # folders that cannot be partition keys
    unselected: set[dg.AssetKey] = field(default_factory=set)
    damaged: list[str] = field(default_factory=list)  # stored tables found missing or unreadable: re-made
    config_notes: list[str] = field(default_factory=list)  # what --config changed, or why it changed nothing
    # planned only because an input is planned: re-checked once the inputs ran, skipped if they did not change
    if_inputs_change: dict[dg.AssetKey, set] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not any(self.todo.values())


def validated_config(defs: dg.Definitions, config_by_asset: dict | None) -> dict[str, dict]:
    """asset name -> its config with every default filled in, as a run would get it; ValueError naming
    each asset whose config is invalid or that takes none."""
    if not config_by_asset:
        return {}
    job = defs.resolve_implicit_job_def_def_for_assets([dg.AssetKey(n) for n in config_by_asset])
    try:
        ops = dg.validate_run_config(job, {"ops": {n: {"config": c} for n, c in config_by_asset.items()}})["ops"]
    except dg.DagsterInvalidConfigError as err:
        raise ValueError("; ".join(e.message for e in err.errors) or str(err)) from err
    defaults = dg.validate_run_config(job, {})["ops"]  # an asset without a config class has none (not {})
    takes_none = sorted(n for n in config_by_asset if defaults.get(n, {}).get("config") is None)
    if takes_none:
        raise ValueError(f"{', '.join(takes_none)} take no config")
    for name in config_by_asset:  # the config class's own rules (bounds; SplitConfig's plan), as the step applies them
        cls = typing.get_type_hints(defs.get_assets_def(dg.AssetKey(name)).op.compute_fn.decorated_fn).get("config")
        try:
            made = cls(**ops[name]["config"])
            if hasattr(made, "plan"):
                made.plan()
        except (pydantic.ValidationError, ValueError) as err:
            raise ValueError(f"{name}: {err}") from err
    return {n: ops[n]["config"] for n in config_by_asset}


def _config_of_run(job, name: str, run, cache: dict) -> dict | None:
    """The full config `name` ran with in `run` (defaults filled in); None if it no longer validates."""
    if run.run_id not in cache:
        given = (run.run_config or {}).get("ops", {}).get(name, {})
        try:
            ops = dg.validate_run_config(job, {"ops": {name: given}} if given else {})["ops"]
            cache[run.run_id] = ops[name]["config"]
        except dg.DagsterInvalidConfigError:
            cache[run.run_id] = None
    return cache[run.run_id]


def reconfigured_partitions(defs, instance, key: dg.AssetKey, wanted: dict, latest: dict) -> set:
    """Partitions of `key` whose latest materialization ran with a config other than `wanted`."""
    job, name, runs = defs.resolve_implicit_job_def_def_for_assets([key]), key.to_user_string(), {}
    by_id = {storage_id: partition for partition, storage_id in latest.items()}
    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key, storage_ids=list(by_id)),
                                              limit=max(1, len(by_id))).records if by_id else []
    changed = set()
    for record in records:
        run = instance.get_run_by_id(record.run_id)
        if run is None or _config_of_run(job, name, run, runs) != wanted:
            changed.add(by_id[record.storage_id])
    return changed


def plan_pipeline(defs: dg.Definitions, instance: dg.DagsterInstance, store, selection: set[str] | None = None,
                  force: bool = False, config_by_asset: dict | None = None) -> Plan:
    """The plan; `config_by_asset` (validated: ValueError) re-runs the partitions last made with another
    config, and the plan's `config_notes` say what it changed or why it changed nothing."""
    wanted = validated_config(defs, config_by_asset)
    with dg.partition_loading_context(dynamic_partitions_store=instance):
        return _plan(defs, instance, store, selection, force, wanted)


def _plan(defs, instance, store, selection, force, wanted=None) -> Plan:
    graph = defs.resolve_asset_graph()
    keys_resource = defs.resources.get("day_keys")
    spill = keys_resource.process_config_and_initialize().open().spill() if keys_resource is not None else None
    archive, _ = scan_archive(store, {}, budget_s=math.inf, spill=spill)
    register_partitions(instance, archive.partitions)
    stored = stored_fingerprints(instance)
    ingest = plan_ingest(archive.fingerprints(), {} if force else stored)
    to_ingest = {(p, d) for p, d, _fp in ingest.to_run}
    known_pairs = sorted(to_ingest | set(archive.partitions) | set(stored))
    order = [k for k in graph.toposorted_asset_keys if k not in INBOX_ASSETS | ON_DEMAND_ASSETS]
    plan = Plan(order, vanished=ingest.vanished, rejected_parks=archive.rejected_parks)
    for name in sorted(set(wanted or {}) - {k.to_user_string() for k in order}):
        plan.config_notes.append(f"{name}: not applied, `wildbench run` never runs it (cut releases with "
                                 "`wildbench release`; requests and submissions run from their inboxes)")
    planned: dict[dg.AssetKey, set] = defaultdict(set)
    staleness = Staleness(instance, graph)
    latest_of = staleness.latest

    park_day_def = graph.get(dg.AssetKey("raw_images")).partitions_def
    tables = defs.resources.get("parquet_io_manager")
    tables = tables.process_config_and_initialize() if tables is not None else None  # EnvVar fields resolved
    for key in order:
        node = graph.get(key)
        if node.partitions_def is None:
            candidates = [None]
        elif node.partitions_def == park_day_def:  # only (park, day) pairs that ever held objects
            candidates = [str(park_day_key(p, d)) for p, d in known_pairs]
        else:
            candidates = list(node.partitions_def.get_partition_keys(dynamic_partitions_store=instance))
        # a materialized partition whose Parquet file is gone or garbage is re-made (its readers with it)
        broken = (tables.damaged(key, [c for c in candidates if c in latest_of(key)], node.partitions_def)
                  if tables is not None and node.assets_def.get_io_manager_key_for_asset_key(key)
                  == "parquet_io_manager" else {})
        name = key.to_user_string()
        selected = selection is None or name in selection
        then = "materializing it again" if selected else "not selected, left as it is"
        plan.damaged += [f"{name} {reason}: {then}" for reason in broken.values()]
        again = set(broken)
        if name in (wanted or {}):  # made with another config: made again with this one
            redo = reconfigured_partitions(defs, instance, key, wanted[name], latest_of(key)) & set(candidates)
            again |= redo
            plan.config_notes.append(
                f"{name}: --config differs from what {len(redo)} of its {len(candidates)} partitions were made "
                "with: re-running them" if redo else
                f"{name}: every partition was already made with this --config: nothing to re-run for it")
        if key == dg.AssetKey("raw_images"):
            chosen = [c for c in candidates if c not in latest_of(key) or c in again
                      or tuple(reversed(c.split("|"))) in to_ingest]
        else:
            reasons = {c: "again" if c in again else _needs_run(staleness, key, c, planned, force) for c in candidates}
            chosen = [c for c in candidates if reasons[c]]
            plan.if_inputs_change[key] = {c for c in chosen if reasons[c] == INPUT_PLANNED}
        if not selected:
            chosen = []
            plan.unselected.add(key)
            if name in (wanted or {}):
                plan.config_notes[-1] = f"{name}: not selected (--select): its --config was not applied"
        planned[key] = set(chosen)
        plan.todo[key] = chosen
        plan.up_to_date[key] = len(candidates) - len(chosen)
    if spill is not None:  # the key list of every day to ingest, as the sensor writes them
        current = archive.fingerprints()
        days = [tuple(reversed(c.split("|"))) for c in plan.todo.get(dg.AssetKey("raw_images"), [])]
        spill.publish({day: current.get(day, EMPTY_FINGERPRINT) for day in days})
    return plan


INPUT_PLANNED = "input planned"


def _needs_run(staleness: Staleness, key, partition, planned, force) -> str:
    """Why `partition` of `key` runs ('' if it does not): missing, stale, or INPUT_PLANNED (a triggering
    input is planned in this run); and only if some input has data."""
    optional = NON_TRIGGERING.get(key, set())
    inputs = list(staleness.inputs(key, partition))
    if not any(up in planned[parent] or up in staleness.latest(parent) for parent, up in inputs):
        return ""
    if force:
        return "forced"
    if partition not in staleness.latest(key):
        return "missing"
    if staleness.is_stale(key, partition, ignore=optional):
        return "stale"
    return INPUT_PLANNED if any(up in planned[p] for p, up in inputs if p not in optional) else ""


def unchanged_after_inputs_ran(graph, instance, plan: Plan, batch: list[dg.AssetKey]) -> dict[dg.AssetKey, list]:
    """Partitions of `batch` planned only because an input was planned, whose inputs have all run (in
    earlier batches) and did not change their content: not stale, so not run."""
    staleness, skip = Staleness(instance, graph), {}
    with dg.partition_loading_context(dynamic_partitions_store=instance):
        for key in batch:
            optional = NON_TRIGGERING.get(key, set())
            skip[key] = [p for p in plan.if_inputs_change.get(key, ())
                         if not any(parent in batch and up in plan.todo.get(parent, ())
                                    for parent, up in staleness.inputs(key, p) if parent not in optional)
                         and not staleness.is_stale(key, p, ignore=optional)]
    return {k: v for k, v in skip.items() if v}


ACTIVE = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def reap_orphaned_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed the runs a killed `wildbench` process on this host left `STARTED` (they would hold
    the run queue forever) and free the `gpu` pool slots their steps held; returns their ids."""
    reaped = []
    host = socket.gethostname()
    for run in instance.get_runs(dg.RunsFilter(statuses=ACTIVE, tags={"wildbench/host": host})):
        pid = run.tags.get("wildbench/pid", "")
        if pid.isdigit() and int(pid) != os.getpid() and not process_alive(int(pid)):
            instance.report_run_failed(run, message=f"the wildbench process {pid} that ran it is gone (killed)")
            if instance.event_log_storage.supports_global_concurrency_limits:
                instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
            reaped.append(run.run_id)
    return reaped


def cli_run_tags() -> dict[str, str]:
    """Who runs in-process runs: lets a later command tell a killed run from a running one."""
    return {"wildbench/trigger": "cli", "wildbench/pid": str(os.getpid()), "wildbench/host": socket.gethostname()}


def run_plan(defs: dg.Definitions, instance: dg.DagsterInstance, plan: Plan, config_by_asset: dict | None = None,
             log_level: str = "INFO", tags: dict | None = None) -> dict[str, list[str]]:
    """Execute the plan: consecutive assets with one partitions definition share a run per partition.
    An asset that failed in any partition blocks everything downstream of it (it would read incomplete
    inputs); the rest goes on. Ctrl-C stops the whole plan, inside a run or between runs."""
    graph = defs.resolve_asset_graph()
    batches: list[list[dg.AssetKey]] = []
    for key in plan.order:
        if not plan.todo.get(key):
            continue
        if batches and graph.get(batches[-1][-1]).partitions_def == graph.get(key).partitions_def \
                and partitions_per_run(graph, batches[-1][-1]) == partitions_per_run(graph, key):
            batches[-1].append(key)
        else:
            batches.append([key])
    outcome: dict[str, list[str]] = defaultdict(list)
    failed: set[dg.AssetKey] = set()
    label = "before the first run"
    with _stop_on_interrupt() as interrupted:
        try:
            for batch in batches:
                blocked = [k for k in batch if ancestors(graph, k) & failed]
                if blocked:
                    outcome.setdefault("skipped", []).extend(k.to_user_string() for k in blocked)
                    batch = [k for k in batch if k not in blocked]
                todo = dict(plan.todo)
                for key, same in unchanged_after_inputs_ran(graph, instance, plan, batch).items():
                    todo[key] = [p for p in todo[key] if p not in same]
                    outcome["unchanged"].extend(f"{key.to_user_string()} {p or ''}".strip() for p in same)
                batch = [k for k in batch if todo[k]]
                for keys, partition, chunk in run_chunks(graph, instance, batch, todo) if batch else ():
                    names = {k.to_user_string() for k in keys}
                    label = f"{'+'.join(sorted(names))} {partition or ''}".strip()
                    ops = {a: {"config": cfg} for a, cfg in (config_by_asset or {}).items() if a in names}
                    selected = {"partition_key": partition} if chunk is None else {}
                    try:
                        result = defs.resolve_implicit_job_def_def_for_assets(keys).execute_in_process(
                            instance=instance, asset_selection=keys, raise_on_error=False, **selected,
                            tags={**cli_run_tags(), DAY_KEYS_TAG: "1", **(chunk or {}), **(tags or {})},
                            run_config={"loggers": {"console": {"config": {"log_level": log_level}}}, "ops": ops},
                        )
                    except dg.DagsterInvalidConfigError as err:  # rejected at launch: nothing ran
                        outcome["failure"].append(f"{label}: invalid run config: {err}")
                        failed |= set(keys)
                        continue
                    if interrupted.is_set() or _was_interrupted(result):  # Ctrl-C stops the whole plan
                        raise KeyboardInterrupt
                    reason = "" if result.success else _failure_reason(result)
                    outcome["success" if result.success else "failure"].append(f"{label}: {result.run_id}{reason}")
                    if not result.success:  # what did not materialize blocks everything downstream of it
                        done = {e.asset_key for e in result.get_asset_materialization_events()}
                        failed |= set(keys) - done
        except KeyboardInterrupt:  # inside a run (Dagster turns it into a failed run) or between runs
            _cancel_own_runs(instance)
            outcome["interrupted"] = [label]
    return dict(outcome)


def partitions_per_run(graph, key: dg.AssetKey) -> int:
    """How many partitions one run of `key` may take: its BackfillPolicy's (1 without one)."""
    policy = graph.get(key).backfill_policy
    if policy is None:
        return 1
    return policy.max_partitions_per_run or 1_000_000


def run_chunks(graph, instance, batch: list[dg.AssetKey], todo: dict):
    """(assets, partition, None) per partition, or for assets that take many partitions a run
    (assets, 'first..last', range tags) per contiguous range of at most their BackfillPolicy's size, the
    ranges Dagster's own backfills make (one dimension of a park x day key held, the other contiguous)."""
    if not batch:  # every asset of the batch was blocked by a failure upstream
        return
    partitions = list(dict.fromkeys(p for key in batch for p in todo[key]))
    by_assets: dict[tuple, list] = defaultdict(list)
    for partition in partitions:
        by_assets[tuple(k for k in batch if partition in todo[k])].append(partition)
    size = partitions_per_run(graph, batch[0])
    definition = graph.get(batch[0]).partitions_def
    for keys, group in by_assets.items():
        if definition is None:
            yield from ((list(keys), p, None) for p in group)
            continue
        for chunk in partition_chunks(definition, group, size, instance):
            if len(chunk) == 1:
                yield list(keys), chunk[0], None
            else:
                yield list(keys), f"{chunk[0]}..{chunk[-1]}", range_tags(chunk)


def execute_interruptible(job, instance: dg.DagsterInstance, **kwargs):
    """(the result or None, interrupted): `job` run in process; Ctrl-C during it is told apart from a failure
    (Dagster turns it into a failed run), so a command can exit 130 as a stopped command should."""
    with _stop_on_interrupt() as interrupted:
        try:
            result = job.execute_in_process(instance=instance, **kwargs)
        except KeyboardInterrupt:
            result = None
        stopped = result is None or interrupted.is_set() or _was_interrupted(result)
    if stopped:
        _cancel_own_runs(instance)
    return result, stopped


def _failure_reason(result) -> str:
    """` (step: first line of its error)` of the run's first failed step, so a failure names its cause."""
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE" and event.step_failure_data.error is not None:
            error = event.step_failure_data.error
            while error.cause is not None:  # Dagster's wrappers first, the cause a person can act on last
                error = error.cause
            first = (error.message or "").strip().splitlines()
            return f" ({event.step_key}: {first[0][:300] if first else error.cls_name})"
    return ""


def _was_interrupted(result) -> bool:
    """Dagster captures Ctrl-C inside a run and fails the run with DagsterExecutionInterruptedError."""
    for event in result.all_events:
        error = getattr(event.event_specific_data, "error", None)
        while error is not None:
            if error.cls_name in ("DagsterExecutionInterruptedError", "KeyboardInterrupt"):
                return True
            error = error.cause
    return False


class _InterruptFlag:
    """Set by our SIGINT handler, or found in the signal wakeup pipe: Dagster swaps in its own handler while
    a run executes and forgets an interrupt that lands after its last check, but the C-level handler
    still writes the signal's number to the wakeup fd."""

    def __init__(self, read_fd: int | None):
        self.event, self.read_fd = threading.Event(), read_fd

    def set(self) -> None:
        self.event.set()

    def is_set(self) -> bool:
        if self.read_fd is not None:
            try:
                if signal.SIGINT in os.read(self.read_fd, 4096):
                    self.event.set()
            except BlockingIOError:
                pass
        return self.event.is_set()


class _stop_on_interrupt:
    """SIGINT sets a flag (and interrupts as usual) so the plan stops after the current run."""

    def __enter__(self) -> _InterruptFlag:
        self.previous, self.previous_fd, self.pipe = None, None, None
        if threading.current_thread() is not threading.main_thread():
            self.flag = _InterruptFlag(None)
            return self.flag
        self.pipe = os.pipe()
        for fd in self.pipe:
            os.set_blocking(fd, False)
        self.previous_fd = signal.set_wakeup_fd(self.pipe[1], warn_on_full_buffer=False)
        self.flag = _InterruptFlag(self.pipe[0])
        self.previous = signal.getsignal(signal.SIGINT)

        def handler(signum, frame):
            self.flag.set()
            raise KeyboardInterrupt

        signal.signal(signal.SIGINT, handler)
        return self.flag

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        if self.pipe is not None:
            signal.set_wakeup_fd(self.previous_fd if self.previous_fd is not None else -1)
            for fd in self.pipe:
                os.close(fd)


def _cancel_own_runs(instance: dg.DagsterInstance) -> None:
    for run in instance.get_runs(dg.RunsFilter(statuses=ACTIVE, tags={"wildbench/pid": str(os.getpid())})):
        instance.report_run_canceled(run, message="interrupted (Ctrl-C)")


def ancestors(graph, key: dg.AssetKey) -> set[dg.AssetKey]:
    """What `key` needs; optional inputs (NON_TRIGGERING: the promoted model of predictions) excluded."""
    seen: set[dg.AssetKey] = set()
    stack = list(graph.get(key).parent_keys - NON_TRIGGERING.get(key, set()))
    while stack:
        parent = stack.pop()
        if parent not in seen:
            seen.add(parent)
            stack.extend(graph.get(parent).parent_keys)
    return seen


def run_pipeline(defs: dg.Definitions, instance: dg.DagsterInstance, store, selection: list[str] | None = None,
                 config_by_asset: dict | None = None, force: bool = False, log_level: str = "INFO"):
    """(plan, outcome): plan what is missing or stale and run it."""
    plan = plan_pipeline(defs, instance, store, set(selection) if selection else None, force, config_by_asset)
    return plan, run_plan(defs, instance, plan, config_by_asset, log_level)
