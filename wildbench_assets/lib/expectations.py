"""Column rules validated by Great Expectations 1.x (ephemeral context), returned as plain results.

Great Expectations takes seconds to import, so it is imported on first use only.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import lru_cache

import pandas as pd


@dataclass(frozen=True)
class Rule:
    """One expectation: the GX class name in snake case and its keyword arguments."""

    expectation: str
    kwargs: dict


@dataclass(frozen=True)
class RuleResult:
    rule: Rule
    success: bool
    unexpected_count: int
    sample: list

    def describe(self) -> str:
        column = self.rule.kwargs.get("column", "")
        verdict = "passed" if self.success else f"failed: {self.unexpected_count} unexpected, e.g. {self.sample[:5]}"
        return f"{self.rule.expectation}({column}) {verdict}"


@lru_cache(maxsize=1)
def _context():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return gx, context


def _class_name(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


def validate(frame: pd.DataFrame, rules: list[Rule], name: str = "table") -> list[RuleResult]:
    """Validate `frame` against `rules`; one result per rule, in order."""
    gx, context = _context()
    source = context.data_sources.add_or_update_pandas(f"wildbench_{name}")
    asset = source.add_dataframe_asset(f"{name}_{id(frame)}")
    batch = asset.add_batch_definition_whole_dataframe("whole").get_batch(batch_parameters={"dataframe": frame})
    suite = gx.ExpectationSuite(name=f"{name}_suite")
    for index, rule in enumerate(rules):  # meta carries the index: GX does not keep the suite's order
        suite.add_expectation(getattr(gx.expectations, _class_name(rule.expectation))(**rule.kwargs,
                                                                                      meta={"rule": index}))
    by_index = {result.expectation_config.meta["rule"]: result for result in batch.validate(suite).results}
    results = []
    for index, rule in enumerate(rules):
        result = by_index[index]
        details = result.result or {}
        results.append(RuleResult(
            rule=rule,
            success=bool(result.success),
            unexpected_count=int(details.get("unexpected_count") or (0 if result.success else 1)),
            sample=list(details.get("partial_unexpected_list") or [])[:10],
        ))
    return results


def validate_checks(frame: pd.DataFrame, checks: dict[str, list[Rule]],
                    name: str = "table") -> dict[str, list[RuleResult]]:
    """One validation of `frame` for several checks: check name -> the results of its rules."""
    flat = [(check, rule) for check, rules in checks.items() for rule in rules]
    results = validate(frame, [rule for _check, rule in flat], name) if flat else []
    grouped: dict[str, list[RuleResult]] = {check: [] for check in checks}
    for (check, _rule), result in zip(flat, results):
        grouped[check].append(result)
    return grouped
