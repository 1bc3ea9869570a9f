"""Turning data-quality findings into Dagster asset check results (the findings come from lib/)."""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from wildbench_assets.lib.expectations import RuleResult


@dataclass(frozen=True)
class Check:
    """One asset check, declared once: what it judges (shown in the Dagster UI) and whether its failure
    stops the step (blocking: nothing is written, downstream steps do not run)."""

    description: str
    blocking: bool = True


def check_specs(asset: str, checks: Mapping[str, Check],
                partitions_def: dg.PartitionsDefinition | None = None) -> list[dg.AssetCheckSpec]:
    """The asset's check specs. `partitions_def` is the asset's: a partitioned check's evaluation names the
    partition it judged (Dagster records no partition for an unpartitioned check on a partitioned asset)."""
    with warnings.catch_warnings():  # partitioned checks are a Dagster preview; used as documented
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return [dg.AssetCheckSpec(name, asset=asset, blocking=c.blocking, description=c.description,
                                  partitions_def=partitions_def) for name, c in checks.items()]


@dataclass(frozen=True)
class Verdict:
    """What one check found, without its name: the name is the key it is passed under to `check_results`,
    checked against the asset's declaration. `blocking=False` lets this run's failure only warn where the
    declaration blocks (a release profile whose split rule allows what the check looks for)."""

    passed: bool
    metadata: Mapping[str, Any] = field(default_factory=dict)
    blocking: bool = True


def verdict(passed: bool, *, blocking: bool = True, **metadata) -> Verdict:
    return Verdict(bool(passed), metadata, blocking)


def rules_verdict(results: list[RuleResult], *, holds: bool = True, blocking: bool = True, **metadata) -> Verdict:
    """A verdict from Great Expectations rule results: passes only if every rule passed (and `holds`, a
    finding the rules cannot express)."""
    return verdict(holds and all(r.success for r in results), blocking=blocking,
                   rules=dg.MetadataValue.md("\n".join(f"- {r.describe()}" for r in results)),
                   unexpected=sum(r.unexpected_count for r in results if not r.success), **metadata)


def check_results(checks: Mapping[str, Check], rules: Mapping[str, list[RuleResult]] | None = None,
                  **verdicts: Verdict) -> list[dg.AssetCheckResult]:
    """The asset's check results in declaration order, each named by its declaration. A check is judged
    by its verdict, its Great Expectations rules (`rules`, check name -> results, as
    `lib.expectations.validate_checks` groups them) or both (then it passes only if both do); a check
    declared but not judged, or judged but not declared, is an error. A failure is an error where the check
    (and this run's verdict) blocks, a warning otherwise: `Check.blocking` is the one flag."""
    rules = rules or {}
    if set(verdicts) | set(rules) != set(checks) or not set(rules) <= set(checks):
        raise ValueError(f"checks judged {sorted({*verdicts, *rules})} are not the checks declared {sorted(checks)}")
    results = []
    for name, check in checks.items():
        v = verdicts.get(name)
        if name in rules:
            by_rules = rules_verdict(rules[name])
            v = by_rules if v is None else Verdict(v.passed and by_rules.passed, {**by_rules.metadata, **v.metadata},
                                                   v.blocking)
        results.append(dg.AssetCheckResult(
            check_name=name, passed=v.passed, metadata=dict(v.metadata),
            severity=dg.AssetCheckSeverity.ERROR if check.blocking and v.blocking else dg.AssetCheckSeverity.WARN))
    return results


def counts_table(counts: dict[str, int], key: str = "value", value: str = "count") -> dg.MetadataValue:
    rows = "\n".join(f"| {k} | {v} |" for k, v in counts.items())
    return dg.MetadataValue.md(f"| {key} | {value} |\n|---|---|\n{rows}")


def png_markdown(png: bytes, alt: str) -> dg.MetadataValue:
    """A small PNG inline in markdown metadata (a few KiB; the UI renders it on the asset page)."""
    import base64

    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})")


def frame_markdown(frame, max_rows: int = 40) -> dg.MetadataValue:
    return dg.MetadataValue.md(frame.head(max_rows).to_markdown())


def publish(context: dg.AssetExecutionContext, result: dg.MaterializeResult):
    """The step's output with its check results, unless a blocking check failed: then the step fails with
    the failed checks named and nothing is written (the last good table or file stays current; a blocking
    check that failed never leaves its output looking current).

    Passed: one MaterializeResult carrying the check results, so Dagster records the materialization first
    and each evaluation then targets it (its run, its partition). Failed: the evaluations are recorded with
    no target materialization (what they judged was never written, so they do not mark the previous,
    still current one), naming their partition, and the step fails before the output is yielded."""
    specs = {spec.name: spec for spec in context.assets_def.check_specs}
    checks = list(result.check_results or [])
    failed = [c.check_name for c in checks if not c.passed and specs[c.check_name].blocking
              and c.severity == dg.AssetCheckSeverity.ERROR]
    if failed:
        partition = context.partition_key if context.has_partition_key else None
        for c in checks:
            spec = specs[c.check_name]
            yield dg.AssetCheckEvaluation(
                asset_key=c.asset_key or spec.asset_key, check_name=c.check_name, passed=c.passed,
                metadata={**c.metadata, "written": False}, severity=c.severity, blocking=spec.blocking,
                description=c.description, partition=partition if spec.partitions_def else None)
        raise dg.Failure(f"{context.asset_key.to_user_string()}: blocking checks failed: {', '.join(failed)}; "
                         "nothing was written", metadata={"failed_checks": dg.MetadataValue.json(failed)})
    yield dg.MaterializeResult(value=result.value, metadata=result.metadata, data_version=result.data_version,
                               check_results=checks)


def publish_partitions(context: dg.AssetExecutionContext, results: Mapping[str, dg.MaterializeResult]):
    """`publish` for a step over several partitions (a backfill run under the asset's BackfillPolicy):
    one result per partition key. Each partition gets its own metadata and its own check evaluations
    (naming the partition); the table is one output, a dict partition key -> table. Dagster keeps one
    data version per step, so the step's is a hash of every partition's; what a partition's data is
    stays in its own metadata. A blocking failure in any partition fails the step and writes nothing."""
    if len(results) == 1:
        yield from publish(context, next(iter(results.values())))
        return
    specs = {spec.name: spec for spec in context.assets_def.check_specs}
    failed = sorted({f"{c.check_name} ({key})" for key, r in results.items() for c in r.check_results or []
                     if not c.passed and specs[c.check_name].blocking and c.severity == dg.AssetCheckSeverity.ERROR})
    evaluations = [
        dg.AssetCheckEvaluation(
            asset_key=c.asset_key or specs[c.check_name].asset_key, check_name=c.check_name, passed=c.passed,
            metadata={**c.metadata, **({"written": False} if failed else {})}, severity=c.severity,
            blocking=specs[c.check_name].blocking, description=c.description, partition=key)
        for key, r in results.items() for c in r.check_results or []]
    if failed:
        yield from evaluations
        raise dg.Failure(f"{context.asset_key.to_user_string()}: blocking checks failed: {', '.join(failed)}; "
                         "nothing was written", metadata={"failed_checks": dg.MetadataValue.json(failed)})
    for key, r in results.items():
        context.add_asset_metadata(dict(r.metadata or {}), partition_key=key)
    digest = hashlib.sha256("\n".join(f"{k}={r.data_version.value if r.data_version else ''}"
                                      for k, r in sorted(results.items())).encode()).hexdigest()
    yield dg.MaterializeResult(value={k: r.value for k, r in results.items()}, data_version=dg.DataVersion(digest))
    yield from evaluations
    for spec in specs.values():  # each check's output, once per step (its evaluations were recorded above)
        yield dg.Output(None, output_name=context.assets_def.get_output_name_for_asset_check_key(spec.key))
