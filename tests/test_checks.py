"""Asset checks: declared once per asset, each result named by its declaration, one blocking flag."""

import ast
from collections import Counter
from pathlib import Path

import dagster as dg
import pytest

from wildbench_assets.assets.checks import Check, check_results, verdict
from wildbench_assets.lib.expectations import Rule, validate_checks

ASSETS = Path(__file__).resolve().parents[1] / "wildbench_assets" / "assets"
CHECKS = {"rows_unique": Check("No row twice."), "share_small": Check("Few failures (warns).", blocking=False)}


def _rules(frame_ok: bool) -> dict:
    import pandas as pd

    frame = pd.DataFrame({"path": ["a", "b"] if frame_ok else ["a", "a"]})
    return validate_checks(frame, {"rows_unique": [Rule("expect_column_values_to_be_unique", {"column": "path"})]})


def test_results_are_named_by_the_declaration_in_its_order():
    results = check_results(CHECKS, share_small=verdict(True, failed=0), rows_unique=verdict(True))
    assert [r.check_name for r in results] == ["rows_unique", "share_small"]
    assert results[1].metadata["failed"].value == 0


@pytest.mark.parametrize("judged", [{"rows_unique": verdict(True)},  # one declared check not judged
                                    {"rows_unique": verdict(True), "share_small": verdict(True),
                                     "typo": verdict(True)}])  # one judged but not declared
def test_a_check_not_judged_or_not_declared_is_an_error(judged):
    with pytest.raises(ValueError, match="not the checks declared"):
        check_results(CHECKS, **judged)


def test_rules_judge_a_check_alone_or_with_a_verdict():
    alone = check_results(CHECKS, _rules(frame_ok=False), share_small=verdict(True))
    assert not alone[0].passed and alone[0].metadata["unexpected"].value == 2
    both = check_results(CHECKS, _rules(frame_ok=True), rows_unique=verdict(False, why="other finding"),
                         share_small=verdict(True))
    assert not both[0].passed and "rules" in both[0].metadata and both[0].metadata["why"].value == "other finding"
    assert check_results(CHECKS, _rules(frame_ok=True), share_small=verdict(True))[0].passed
    with pytest.raises(ValueError):
        check_results({"share_small": CHECKS["share_small"]}, _rules(frame_ok=True), share_small=verdict(True))


def test_the_declaration_alone_says_whether_a_failure_blocks():
    results = check_results(CHECKS, rows_unique=verdict(False), share_small=verdict(False))
    assert [r.severity for r in results] == [dg.AssetCheckSeverity.ERROR, dg.AssetCheckSeverity.WARN]
    # a run may only soften a blocking check (a release profile whose split rule allows what it finds)
    softened = check_results(CHECKS, rows_unique=verdict(False, blocking=False), share_small=verdict(False))
    assert softened[0].severity == dg.AssetCheckSeverity.WARN


def _declarations(tree: ast.Module) -> list[list[str]]:
    """The check names of each `{name: Check(...)}` dict of a module."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict) and node.values and all(
                isinstance(v, ast.Call) and getattr(v.func, "id", None) == "Check" for v in node.values):
            found.append([k.value for k in node.keys])
    return found


def test_every_check_name_is_spelled_once_in_its_declaration():
    modules = {p.name: ast.parse(p.read_text()) for p in sorted(ASSETS.glob("*.py"))}
    declared = {name: _declarations(tree) for name, tree in modules.items()}
    names = {n for decls in declared.values() for d in decls for n in d}
    assert len(names) > 40  # the test sees the declarations
    for module, tree in modules.items():
        metadata_keys = {id(k) for n in ast.walk(tree) if isinstance(n, ast.keyword) and n.arg == "metadata"
                         and isinstance(n.value, ast.Dict) for k in n.value.keys}  # a value may share a check's name
        literals = Counter(n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and n.value in names
                           and id(n) not in metadata_keys)
        in_declarations = Counter(n for d in declared[module] for n in d)
        assert literals == in_declarations, f"{module} spells a check name outside its declaration"
        if module == "checks.py":
            continue
        calls = [ast.unparse(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)]
        keywords = {k.arg for n in ast.walk(tree) if isinstance(n, ast.Call) for k in n.keywords}
        assert not {"dg.AssetCheckResult", "dg.AssetCheckEvaluation"} & set(calls), module  # only check_results
        assert "check_name" not in keywords and "severity" not in keywords, module
        assert "AssetCheckSeverity" not in ast.unparse(tree), module  # `blocking` is the one flag
