"""Turning data-quality findings into Dagster asset check results (the findings come from lib/)."""

from __future__ import annotations

import dagster as dg

from wildbench_assets.lib.expectations import RuleResult


def rules_check(name: str, results: list[RuleResult], severity=dg.AssetCheckSeverity.ERROR,
                metadata: dict | None = None, asset_key: str | None = None) -> dg.AssetCheckResult:
    """One check result from Great Expectations rule results: passes only if every rule passed."""
    passed = all(r.success for r in results)
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
