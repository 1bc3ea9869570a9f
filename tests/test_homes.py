"""One home per concept, pinned: the data folder's layout (`layout.py`), release state (`ReleaseStore`) and
the model registry (`training/registry.py`); and, with the data folder in S3, readers that fetch only the
release files they need."""

import ast
import json
import shutil
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from wildbench_assets import layout
from wildbench_assets.lib.releases import ReleaseFacts
from wildbench_assets.resources.artifacts import ArtifactStore
from wildbench_assets.resources.release_store import (
    ReleaseNameError,
    ReleaseStore,
    check_name,
    release_name_for,
)

PACKAGE = Path(layout.__file__).parent
DATA_FOLDERS = ("releases/", "models/", "datasets/", "hidden/", "requests/", "archives/", "predictions/",
                "snapshots/")
RELEASE_FILE_NAMES = ("release.json", "manifest.csv", "manifest.sha256", "truth.coco.json", "datasheet.json")


def _code_strings(tree: ast.AST):
    """Every string literal of a module but its docstrings (f-strings: their literal parts)."""
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.lineno, node.value


def layout_literals(source: str) -> list[tuple[int, str]]:
    return [(line, text) for line, text in _code_strings(ast.parse(source))
            if text.startswith(DATA_FOLDERS) or text in RELEASE_FILE_NAMES
            or any(f"/{name}" in text for name in RELEASE_FILE_NAMES)]


def test_no_module_but_the_layout_spells_a_path_of_the_data_folder():
    found = {f"{path.relative_to(PACKAGE)}:{line}": text for path in sorted(PACKAGE.rglob("*.py"))
             if path != PACKAGE / "layout.py" for line, text in layout_literals(path.read_text())}
    assert found == {}, "ask wildbench_assets/layout.py for these paths"


def test_the_layout_grep_finds_what_it_is_meant_to_find():
    code = 'def f(r):\n    """releases/<id>/release.json in a docstring is fine"""\n    return f"releases/{r}/x"\n'
    assert layout_literals(code) == [(3, "releases/")]
    assert layout_literals('x = "hidden/truth.coco.json"') == [(1, "hidden/truth.coco.json")]
    assert layout_literals('x = folder / "release.json"') == [(1, "release.json")]
    assert layout_literals('raise ValueError("not a complete release.json")') == []  # words, not a path
    assert layout_literals('x = "labels/train/a.txt"  # inside a ZIP, not the data folder') == []


def test_layout_paths():
    assert layout.release_file("2026.11", layout.TRUTH) == "releases/2026.11/hidden/truth.coco.json"
    assert layout.release_download("2026.11", "test.zip") == "releases/2026.11/downloads/test.zip"
    assert layout.model_file("yolov8", "2026.11", "weights.pt") == "models/2026.11/yolov8/weights.pt"
    assert layout.datasets_dir("2026.11") == "datasets/2026.11"
    assert layout.cut_record_dir("2026.11") == "hidden/releases/2026.11"
    assert layout.release_of("releases/2026.11/manifest.csv", layout.MANIFEST) == "2026.11"
    assert layout.release_of("hidden/releases/r/manifest.csv", layout.MANIFEST, layout.CUT_RECORDS) == "r"
    for key in ("releases/.staging-x/manifest.csv", "releases/r/downloads/manifest.csv", "releases/manifest.csv",
                "releases/r/manifest.csv.tmp"):
        assert layout.release_of(key, layout.MANIFEST) is None, key


# --- the release store ----------------------------------------------------------------------------------

def _facts(release: str, profile: str = "default", cut_at: str = "2026-11-28T00:00:00Z") -> ReleaseFacts:
    return ReleaseFacts(release=release, cut_at=cut_at, labels_fingerprint="", code_version="1", detector="d",
                        label_threshold=0.2, split_by="camera", split_seed=0, burst_rules={}, class_names=["sus"],
                        max_distance=2, profile=profile)


def _publish(artifacts: ArtifactStore, release: str, profile: str = "default", sealed: bool = True,
             zips: tuple[str, ...] = ("train.zip", "test.zip")) -> None:
    """A small release folder through the artifact store (with S3: uploaded, the seal last)."""
    with artifacts.writing_dir(layout.release_dir(release)) as folder:
        (folder / layout.FACTS).write_text(_facts(release, profile).to_json())
        (folder / layout.DATASHEET).write_text(json.dumps({"release": release, "cut_at": f"2026-11-{len(release)}",
                                                           "profile": profile}))
        (folder / layout.TRUTH).parent.mkdir()
        (folder / layout.TRUTH).write_text('{"images": []}')
        (folder / layout.DOWNLOADS).mkdir()
        for name in zips:
            with zipfile.ZipFile(folder / layout.DOWNLOADS / name, "w") as zf:
                zf.writestr("wb1.jpg", b"not really a jpeg" * 100)
        (folder / layout.CAMTRAP_DP).mkdir()
        (folder / layout.CAMTRAP_DP / "datapackage.json").write_text('{"profile": "x"}')
        if sealed:
            (folder / layout.MANIFEST).write_text("public_id,split,path\n")


def test_the_release_store_answers_cut_facts_names_and_files(tmp_path):
    artifacts = ArtifactStore(base_dir=str(tmp_path))
    releases = ReleaseStore(artifacts)
    assert releases.names() == [] and not releases.is_cut("2026.11") and releases.facts("2026.11") is None
    _publish(artifacts, "2026.11")
    _publish(artifacts, "2026.11-thesis", profile="thesis")
    _publish(artifacts, "2026.12", sealed=False)  # its seal never written: not cut
    (tmp_path / "artifacts" / "releases" / ".staging-2027.01").mkdir()
    assert releases.names() == ["2026.11", "2026.11-thesis"]
    assert releases.is_cut("2026.11") and not releases.is_cut("2026.12") and not releases.is_cut("nope")
    assert releases.facts("2026.11") == _facts("2026.11") and releases.facts("2026.12") is None
    assert releases.profile("2026.11-thesis") == "thesis" and releases.profile("2026.12") is None
    assert releases.truth("2026.11") == '{"images": []}'
    assert {s["release"] for s in releases.datasheets()} == {"2026.11", "2026.11-thesis", "2026.12"}
    with zipfile.ZipFile(releases.open("2026.11", layout.download_name("test"))) as zf:
        assert zf.namelist() == ["wb1.jpg"]


def test_a_release_json_that_is_not_one_is_named_with_its_release(tmp_path):
    artifacts = ArtifactStore(base_dir=str(tmp_path))
    _publish(artifacts, "r1")
    (tmp_path / "artifacts" / layout.release_file("r1", layout.FACTS)).write_text('{"release": "r1"}')
    with pytest.raises(ValueError, match="release r1: not a complete release.json"):
        ReleaseStore(artifacts).facts("r1")


@pytest.mark.parametrize("name, ok", [("2026.11", True), ("2026.11-thesis", True), ("r_1", True),
                                      ("../x", False), (".hidden", False), ("a/b", False), ("", False),
                                      ("x" * 65, False)])
def test_release_names_are_folder_names(name, ok):
    if ok:
        assert check_name(name) == name
    else:
        with pytest.raises(ReleaseNameError, match="use letters, digits"):
            check_name(name)


def test_release_naming_rules():
    nov = datetime(2026, 11, 28, tzinfo=UTC)
    assert release_name_for([], "default", nov) == "2026.11"
    assert release_name_for(["2026.11"], "default", nov) == "2026.11.2"
    assert release_name_for(["2026.11", "2026.11.2"], "default", nov) == "2026.11.3"
    assert release_name_for(["2026.11"], "thesis", nov) == "2026.11-thesis"
    assert release_name_for(["2026.11", "2026.11-thesis"], "thesis", nov) == "2026.11.2-thesis"
    assert release_name_for(["2026.10", "2026.11", "2026.11-thesis"], "default", nov, verify=True) == "2026.11"
    assert release_name_for(["2026.11", "2026.11-thesis"], "thesis", nov, verify=True) == "2026.11-thesis"


# --- the model registry -----------------------------------------------------------------------------------

def test_partitions_config_cli_and_dispatch_derive_from_the_model_registry(capsys):
    import re
    import typing

    from wildbench_assets.cli import main
    from wildbench_assets.config import PredictionConfig
    from wildbench_assets.partitions import model_partitions
    from wildbench_assets.training.registry import DETECTOR, MODEL_NAMES, MODEL_REGISTRY, model_spec

    assert model_partitions.get_partition_keys() == list(MODEL_NAMES) == list(MODEL_REGISTRY)
    assert typing.get_args(PredictionConfig.model_fields["model"].annotation) == ("auto", DETECTOR, *MODEL_NAMES)
    with pytest.raises(SystemExit):
        main(["predict", "photo.jpg", "--model", "resnet"])
    offered = re.search(r"invalid choice: 'resnet' \(choose from (.*)\)", capsys.readouterr().err).group(1)
    assert tuple(re.findall(r"'([^']+)'", offered)) == ("auto", DETECTOR, *MODEL_NAMES)
    for spec in MODEL_REGISTRY.values():  # every preset's architecture is named
        assert set(spec.architectures) == {"full", "tiny"} and callable(spec.train) and callable(spec.predict)
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        model_spec("resnet")


def test_the_promotion_threshold_is_defined_once():
    import inspect

    from wildbench_assets.config import PredictionConfig
    from wildbench_assets.resources import model_store
    from wildbench_assets.training import predict
    from wildbench_assets.training.registry import PROMOTION_MIN_MAP_50

    assert PredictionConfig().min_map_50 == PROMOTION_MIN_MAP_50
    for function in (predict.promoted_model, predict.promotion_refusal, model_store.load_chosen_predictor):
        assert inspect.signature(function).parameters["min_map_50"].default == PROMOTION_MIN_MAP_50
    written = [f"{p.relative_to(PACKAGE)}:{n}" for p in PACKAGE.rglob("*.py")
               for n, line in enumerate(p.read_text().splitlines(), 1) if "min_map_50" in line and "0.1" in line]
    assert written == []  # the number itself appears only in the registry


# --- with the data folder in S3: only what is needed is fetched --------------------------------------------

def _bucket(endpoint: str, name: str) -> None:
    from wildbench_assets.resources.archive import open_archive

    client = open_archive(f"s3://{name}", endpoint).client
    if name not in {b["Name"] for b in client.list_buckets()["Buckets"]}:
        client.create_bucket(Bucket=name)


def _cached_zips(cache: Path) -> list[str]:
    return sorted(p.relative_to(cache).as_posix() for p in cache.rglob("*.zip"))


def test_the_release_store_on_s3_fetches_no_zip_it_does_not_open(tmp_path, s3_env):
    _bucket(s3_env, "wildbench-homes")
    base = f"s3://wildbench-homes/{tmp_path.name}"
    _publish(ArtifactStore(base_dir=base, cache_dir=str(tmp_path / "publisher"), endpoint_url=s3_env), "2026.11")
    cache = tmp_path / "cache"  # another machine: an empty cache
    releases = ReleaseStore(ArtifactStore(base_dir=base, cache_dir=str(cache), endpoint_url=s3_env))
    assert releases.names() == ["2026.11"] and releases.is_cut("2026.11") and not releases.is_cut("2026.12")
    assert releases.facts("2026.11") == _facts("2026.11") and releases.truth("2026.11") == '{"images": []}'
    assert [s["release"] for s in releases.datasheets()] == ["2026.11"]
    with zipfile.ZipFile(releases.open("2026.11", layout.download_name("test"))) as zf:
        assert zf.read("wb1.jpg") == b"not really a jpeg" * 100  # streamed by ranged reads
    assert (cache / "artifacts").is_dir() and _cached_zips(cache / "artifacts") == []


def test_with_s3_data_the_portal_counts_and_serves_and_a_custom_export_fetches_no_release_zip(
        demo_archive, tmp_path, s3_env):
    """Before: with WILDBENCH_DATA=s3://… the portal's live count read curated_images from a local folder
    named after the URI (always 0 images). Now it reads them through the IO manager; the portal's pages,
    downloads (redirects) and Camtrap DP files, and a custom export, leave no release ZIP in the cache."""
    from fastapi.testclient import TestClient

    from wildbench_assets.definitions import build_defs
    from wildbench_assets.portal.app import create_app
    from wildbench_assets.resources.archive import ArchiveResource, open_archive
    from wildbench_assets.resources.detector import DetectorResource
    from wildbench_assets.resources.inbox import RequestInbox
    from wildbench_assets.resources.label_cache import LabelCache
    from wildbench_assets.resources.parquet_io import ParquetIOManager
    from wildbench_assets.resources.taxonomy import TaxonomyResource

    from .helpers import UP_TO_SPLITS, cut_release, pipeline_defs, run_all

    local = tmp_path / "local"
    instance, outcome = run_all(demo_archive, local, selection=[*UP_TO_SPLITS, "detection_labels"],
                                detector="manifest")
    assert not outcome.get("failure")
    assert cut_release(pipeline_defs(demo_archive, local, detector="manifest"), instance, "2026.11").success
    query = "/api/images?parks=snieves&species=sus"
    local_count = TestClient(create_app(pipeline_defs(demo_archive, local, detector="manifest"), token="t",
                                        instance=instance)).get(query).json()["images"]
    assert local_count > 0

    _bucket(s3_env, "wildbench-homes")
    data = f"s3://wildbench-homes/{tmp_path.name}"
    cache = tmp_path / "cache"
    tables = ParquetIOManager(base_dir=data, endpoint_url=s3_env)
    artifacts = ArtifactStore(base_dir=data, cache_dir=str(cache), endpoint_url=s3_env)
    bucket = open_archive(data, s3_env)
    for path in sorted(local.rglob("*")):  # the local data folder, published as it is (the seals last)
        relative = path.relative_to(local).as_posix()
        if path.is_file() and not relative.startswith("label_cache") and path.name != layout.MANIFEST:
            bucket.upload_file(path, relative)
    for path in sorted(local.rglob(layout.MANIFEST)):
        bucket.upload_file(path, path.relative_to(local).as_posix())
    shutil.rmtree(cache, ignore_errors=True)

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    defs = build_defs("local", resources={
        "inbox": RequestInbox(uri=str(inbox)), "submissions": RequestInbox(uri=str(tmp_path / "submissions")),
        "archive": ArchiveResource(uri=str(demo_archive)), "taxonomy": TaxonomyResource(),
        "parquet_io_manager": tables, "artifacts": artifacts,
        "label_cache": LabelCache(base_dir=str(tmp_path / "labels")), "detector": DetectorResource(backend="manifest"),
    })
    client = TestClient(create_app(defs, token="t", instance=instance))
    assert client.get(query).json()["images"] == local_count  # was 0 with S3 data
    for page in ("/", "/datasets", "/api/datasets", "/api/datasets/2026.11"):
        assert client.get(page).status_code == 200, page
    package = client.get("/api/datasets/2026.11/camtrap-dp/datapackage.json")
    assert package.status_code == 200 and package.json()["profile"].endswith("camtrap-dp-profile.json")
    download = client.get("/api/datasets/2026.11/test.zip", follow_redirects=False)
    assert download.status_code == 307 and "test.zip" in download.headers["location"]
    assert client.get("/api/datasets/2026.11/val.zip", follow_redirects=False).status_code in (307, 404)

    (inbox / "boar.json").write_text(json.dumps({"parks": ["snieves"], "species": ["sus"]}))
    instance.add_dynamic_partitions("requests", ["boar"])
    result = defs.resolve_job_def("custom_export_job").execute_in_process(instance=instance, partition_key="boar",
                                                                          raise_on_error=False)
    assert result.success
    assert json.loads((inbox / "boar.result.json").read_text())["images"] > 0
    assert _cached_zips(cache / "artifacts") == ["requests/boar.zip"]  # its own ZIP; no release's
