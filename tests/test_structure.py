"""The shape the architecture asks of the code: assets stay thin declarations."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "wildbench_assets"
MAX_ASSET_BODY_LINES = 40


def _asset_bodies() -> dict[str, int]:
    """asset function -> lines its body spans, docstring left out (every function under a decorator
    whose name ends in `asset`: `dg.asset`, `dg.multi_asset`, ingest's `backfilled_asset`)."""
    spans = {}
    for path in sorted((PACKAGE / "assets").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef):
                continue
            names = [ast.unparse(d.func if isinstance(d, ast.Call) else d) for d in node.decorator_list]
            if not any(n.split(".")[-1].endswith("asset") for n in names):
                continue
            body = node.body
            if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                body = body[1:]
            spans[f"{path.name}:{node.name}"] = body[-1].end_lineno - body[0].lineno + 1
    return spans


def test_every_asset_body_is_at_most_40_lines():
    spans = _asset_bodies()
    assert len(spans) >= 14  # the test sees every asset
    assert {a: n for a, n in spans.items() if n > MAX_ASSET_BODY_LINES} == {}
