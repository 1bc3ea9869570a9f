"""The docs state what the definitions declare: docs/pipeline.md's asset graph table is checked against the
real asset graph (every asset, its partitions, upstreams with their mappings, automation and checks)."""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg
import pytest

from wildbench_assets.definitions import build_defs

ROOT = Path(__file__).resolve().parent.parent
PIPELINE = (ROOT / "docs" / "pipeline.md").read_text()
DEFS = build_defs("local")
GRAPH = DEFS.resolve_asset_graph()
ASSETS = sorted(k.to_user_string() for k in GRAPH.get_all_asset_keys())

MAPPING_WORDS = {  # how the table names each partition mapping
    "AllPartitionMapping": "all",
    "MultiToSingleDimensionPartitionMapping": ("all of its park", "its release"),
    "LastPartitionMapping": "latest",
}


def graph_table() -> dict[str, list[str]]:
    """The rows of the "## The asset graph" table, by asset: its cells."""
    section = PIPELINE.split("## The asset graph", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) == 6:
            rows[cells[0].strip("`")] = cells
    return rows


def test_the_table_has_a_row_for_every_asset_and_no_other():
    assert sorted(graph_table()) == ASSETS


@pytest.mark.parametrize("asset", ASSETS)
def test_a_row_states_the_assets_group_partitions_upstreams_automation_and_checks(asset):
    _, group, partitions, upstreams, automation, checks = graph_table()[asset]
    key = dg.AssetKey(asset)
    node, assets_def = GRAPH.get(key), GRAPH.assets_def_for_key(key)
    assert group == node.group_name

    pdef = node.partitions_def
    if pdef is None:
        assert partitions == "—"
    elif isinstance(pdef, dg.StaticPartitionsDefinition):
        assert re.findall(r"`(\w+)`", partitions) == pdef.get_partition_keys()
    else:
        assert partitions != "—"

    named = dict(re.findall(r"`(\w+)` \(([^)]*)\)", upstreams))
    assert sorted(named) == sorted(k.to_user_string() for k in node.parent_keys)
    for parent in node.parent_keys:
        mapping = assets_def.get_partition_mapping_for_dep(parent)
        said = named[parent.to_user_string()]
        if GRAPH.get(parent).partitions_def is None:
            assert said == "unpartitioned"
        elif mapping is None or type(mapping).__name__ == "IdentityPartitionMapping":
            assert said == "same partition"
        else:
            expected = MAPPING_WORDS[type(mapping).__name__]
            assert said in (expected if isinstance(expected, tuple) else (expected,))

    condition = node.automation_condition
    assert automation == ("—" if condition is None else f"`{condition.get_label().split('(')[0]}`")

    stated = dict(re.findall(r"`(\w+)`( \(warn\))?", checks))
    assert sorted(stated) == sorted(spec.name for spec in assets_def.check_specs)
    for spec in assets_def.check_specs:
        assert bool(stated[spec.name]) == (not spec.blocking), spec.name


def test_every_check_is_described_in_its_assets_section_too():
    sections = {m.group(1): m.start() for m in re.finditer(r"^### `(\w+)`", PIPELINE, re.M)}
    bounds = sorted(sections.values()) + [len(PIPELINE)]
    for asset in ASSETS:
        assert asset in sections, f"docs/pipeline.md has no section for {asset}"
        start = sections[asset]
        text = PIPELINE[start:bounds[bounds.index(start) + 1]]
        for spec in GRAPH.assets_def_for_key(dg.AssetKey(asset)).check_specs:
            assert f"`{spec.name}`" in text, f"{asset}'s section does not name its check {spec.name}"


def test_every_sensor_and_schedule_is_in_the_docs():
    for name in [s.name for s in DEFS.sensors] + [s.name for s in DEFS.schedules]:
        assert f"`{name}`" in PIPELINE, name
