"""Turning data-quality findings into Dagster asset check results (the findings come from lib/)."""

from __future__ import annotations

import dagster as dg

from wildbench_assets.lib.expectations import RuleResult


def rules_check(name: str, results: list[RuleResult], severity=dg.AssetCheckSeverity.ERROR,
                metadata: dict | None = None, asset_key: str | None = None, holds: bool = True) -> dg.AssetCheckResult:
    """One check result from Great Expectations rule results: passes only if every rule passed (and
    `holds`, a finding the rules cannot express)."""
    passed = holds and all(r.success for r in results)
    return dg.AssetCheckResult(
        check_name=name,
        asset_key=asset_key,
        passed=passed,
        severity=severity,
        metadata={
            "rules": dg.MetadataValue.md("\n".join(f"- {r.describe()}" for r in results)),
            "unexpected": sum(r.unexpected_count for r in results if not r.success),
            **(metadata or {}),
        },
    )


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
    """Record the step's check results first, then its output, unless a blocking check failed: then the
    step fails with the failed checks named and nothing is written (the last good table or file stays
    current; a blocking check that failed never leaves its output looking current)."""
    blocking = {spec.name for spec in context.assets_def.check_specs if spec.blocking}
    checks = list(result.check_results or [])
    yield from checks
    failed = [c.check_name for c in checks if not c.passed and c.check_name in blocking
              and c.severity == dg.AssetCheckSeverity.ERROR]
    if failed:
        raise dg.Failure(f"{context.asset_key.to_user_string()}: blocking checks failed: {', '.join(failed)}; "
                         "nothing was written", metadata={"failed_checks": dg.MetadataValue.json(failed)})
    yield dg.MaterializeResult(value=result.value, metadata=result.metadata, data_version=result.data_version)
