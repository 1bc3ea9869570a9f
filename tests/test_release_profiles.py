"""The thesis release profile: the thesis's construction cut beside the default release from the same
archive, and one model's predictions scored on both, so the protocol's optimism is measured."""

import json
import shutil
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from wildbench_assets.ingest_state import latest_release
from wildbench_assets.lib.bursts import thesis_exemption
from wildbench_assets.lib.curation import curate
from wildbench_assets.lib.profiles import one_box_per_image, thesis_curation
from wildbench_assets.lib.releases import read_manifest
from wildbench_assets.resources.artifacts import ArtifactStore
from wildbench_assets.summary import read_table

from .helpers import WORLD_RELEASE, WORLD_THESIS, cut_release, latest_checks, nearest_neighbour_predictions
from .test_scoring import disclosed_beyond_aggregates

DEFAULT, THESIS = WORLD_RELEASE, WORLD_THESIS
T0 = pd.Timestamp("2024-05-01 10:00:00")


# --- the pure functions ------------------------------------------------------------------------------

def _metadata(counts: dict[str, dict[str, int]]) -> pd.DataFrame:
    """park -> species -> images, every image of a species in a park taken in the same second."""
    rows = [{"path": f"{park}/{species}/c1/{i:05d}.jpg", "park": park, "species": species, "camera": f"{park}/c1",
             "status": "ok", "captured_at": T0, "width": 64, "height": 48}
            for park, per in counts.items() for species, n in per.items() for i in range(n)]
    return pd.DataFrame(rows)


def test_the_thesis_exemption_median_is_the_whole_dataset_s_not_a_park_s():
    """Park A's median is 2600 (threshold 3000: b and c exempt), park B's 400 (threshold 0: none); over
    both parks the median is 2000 (threshold 2000: d and e exempt) — the thesis's, since its script
    cleaned the whole dataset at once."""
    parks = {"A": {"a": 3000, "b": 2600, "c": 1400}, "B": {"c": 600, "d": 400, "e": 200}}
    metadata = _metadata(parks)
    species_codes = {"a", "b", "c", "d", "e"}

    whole = thesis_exemption(metadata.species.value_counts())
    assert whole == {"median_images_per_species": 2000.0, "threshold": 2000.0, "exempt_species": ["d", "e"]}
    per_park = {p: thesis_exemption(rows.species.value_counts()) for p, rows in metadata.groupby("park")}
    assert per_park["A"]["exempt_species"] == ["b", "c"] and per_park["A"]["median_images_per_species"] == 2600
    assert per_park["B"]["exempt_species"] == [] and per_park["B"]["median_images_per_species"] == 400

    curated, rule = thesis_curation(metadata, species_codes)
    assert rule["exemption"]["exempt_species"] == ["d", "e"] and rule["exemption"]["threshold"] == 2000
    # One burst group per species across both parks: c's frames in A and B share one kept frame.
    assert curated.species.value_counts().to_dict() == {"d": 400, "e": 200, "a": 1, "b": 1, "c": 1}
    assert curated.burst_exempt.groupby(curated.species).all().to_dict() == {
        "a": False, "b": False, "c": False, "d": True, "e": True}
    # What `mode: thesis` per park partition (today's curated_images) does instead:
    by_park = pd.concat([curate(rows, species_codes, 1.0, "thesis")[0] for _p, rows in metadata.groupby("park")])
    assert by_park.groupby(["park", "species"]).size().to_dict() == {
        ("A", "a"): 1, ("A", "b"): 2600, ("A", "c"): 1400, ("B", "c"): 1, ("B", "d"): 1, ("B", "e"): 1}


def test_one_box_per_image_keeps_the_most_confident():
    labels = pd.DataFrame({"path": ["x", "y", "z"], "n_boxes": [3, 0, 1],
                           "boxes": [json.dumps([[0.1, 0.1, 0.2, 0.2, 0.4], [0.5, 0.5, 0.1, 0.1, 0.9],
                                                 [0.3, 0.3, 0.1, 0.1, 0.9]]), "[]",
                                     json.dumps([[0.2, 0.2, 0.3, 0.3, 0.5]])]})
    out = one_box_per_image(labels)
    assert [json.loads(b) for b in out.boxes] == [[[0.5, 0.5, 0.1, 0.1, 0.9]], [], [[0.2, 0.2, 0.3, 0.3, 0.5]]]
    assert out.n_boxes.tolist() == [1, 0, 1] and labels.n_boxes.tolist() == [3, 0, 1]  # the input is untouched


# --- both profiles cut from one archive --------------------------------------------------------------

def _folder(data: Path, name: str) -> Path:
    return data / "artifacts" / "releases" / name


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def both(world_copy):
    """The demo world's copy: the archive labelled once, then the default release and the thesis release cut
    from it."""
    data = world_copy.data
    manifests = {name: read_manifest((_folder(data, name) / "manifest.csv").read_bytes()) for name in (DEFAULT, THESIS)}
    return world_copy.defs(), world_copy.instance(), data, manifests


def _straddling_sequences(manifest: pd.DataFrame) -> set[str]:
    trained = set(manifest.sequence[manifest.split.isin(["train", "val"])])
    return trained & set(manifest.sequence[manifest.split.isin(["test", "test_seen"])])


def test_the_thesis_split_groups_by_image_and_the_default_one_does_not(both):
    _defs, _instance, data, manifests = both
    default, thesis = manifests[DEFAULT], manifests[THESIS]
    assert not _straddling_sequences(default)  # camera grouping: no burst in train and test
    assert _straddling_sequences(thesis)       # the thesis's random split: bursts in both
    assert thesis.camera[thesis.split == "test"].isin(thesis.camera[thesis.split == "train"]).any()
    assert (thesis.split == "test_seen").sum() == 0  # the thesis had no seen-camera test set
    facts = json.loads((_folder(data, THESIS) / "release.json").read_text())
    assert facts["profile"] == "thesis" and facts["split_by"] == "image"
    assert facts["profile_rules"]["burst"]["grouped_by"].startswith("species, across every camera and park")
    assert {r["mode"] for r in facts["burst_rules"].values()} == {"thesis"}
    split = facts["profile_rules"]["split"]
    assert split["sequences_in_train_and_test"] == len(_straddling_sequences(thesis)) > 0
    sheet = json.loads((_folder(data, THESIS) / "datasheet.json").read_text())
    assert sheet["profile"] == "thesis" and sheet["leakage_grouping"]["by"] == "image"
    assert "## Profile: thesis" in (_folder(data, THESIS) / "datasheet.md").read_text()
    # The default release's record is as it was before profiles existed.
    assert "profile" not in json.loads((_folder(data, DEFAULT) / "release.json").read_text())
    assert "profile" not in json.loads((_folder(data, DEFAULT) / "datasheet.json").read_text())
    assert "Profile" not in (_folder(data, DEFAULT) / "datasheet.md").read_text()


def test_the_thesis_release_has_at_most_one_box_per_image(both):
    _defs, _instance, data, manifests = both
    boxes = {name: manifests[name].boxes.map(lambda text: len(json.loads(text))) for name in manifests}
    assert boxes[THESIS].max() == 1 and boxes[DEFAULT].max() >= 2  # the demo archive has two-animal frames
    animals = manifests[THESIS].species != "emp"
    assert (boxes[THESIS][animals] == 1).all() and (boxes[THESIS][~animals] == 0).all()
    truth = json.loads((_folder(data, THESIS) / "hidden" / "truth.coco.json").read_text())
    per_image = pd.Series([a["image_id"] for a in truth["annotations"]]).value_counts()
    assert per_image.max() == 1


def test_the_thesis_leak_audit_reports_but_does_not_block(both):
    _defs, instance, data, _manifests = both
    audit = latest_checks(instance, "benchmark_release")["no_near_duplicates_across_splits"]
    default, thesis = audit[0], audit[1]  # in cut order
    assert default.severity == dg.AssetCheckSeverity.ERROR and default.passed
    assert thesis.severity == dg.AssetCheckSeverity.WARN
    sheet = json.loads((_folder(data, THESIS) / "datasheet.json").read_text())["leak_audit"]
    assert {"pairs", "straddling_train_and_test"} <= set(sheet)
    assert thesis.metadata["straddling_train_and_test"].value == sheet["straddling_train_and_test"]
    assert thesis.passed == (sheet["straddling_train_and_test"] == 0)  # failed or not, the release was published


def test_the_thesis_release_reproduces_and_a_second_cut_has_the_same_membership(both):
    defs, instance, data, _manifests = both
    before = _files(_folder(data, THESIS))
    assert defs.resolve_job_def("release_job").execute_in_process(instance=instance, partition_key=THESIS).success
    assert _files(_folder(data, THESIS)) == before
    assert latest_checks(instance, "benchmark_release")["reproducible"][-1].passed
    again = "2026.11-thesis.2"
    assert cut_release(defs, instance, again, "thesis").success
    second = _files(_folder(data, again))
    first_rows, second_rows = (read_manifest(files["manifest.csv"]) for files in (before, second))
    # The same membership (it hides and publishes what the first does), under ids keyed for this release.
    assert second_rows.drop(columns="public_id").equals(first_rows.drop(columns="public_id"))
    assert not set(second_rows.public_id) & set(first_rows.public_id)
    assert second["leak_audit.csv"] == before["leak_audit.csv"] and set(second) == set(before)
    shutil.rmtree(_folder(data, again))
    instance.delete_dynamic_partition("releases", again)


# --- one model, both releases ------------------------------------------------------------------------

def test_one_model_scored_on_both_releases_shows_the_difference_on_the_leaderboard(both):
    defs, instance, data, manifests = both
    archive = Path(defs.resources["archive"].uri)
    inbox = data / "submissions"
    inbox.mkdir(exist_ok=True)
    for name, suffix in ((DEFAULT, "default"), (THESIS, "thesis")):
        (inbox / f"nn-{suffix}.release").write_text(name + "\n")
        (inbox / f"nn-{suffix}.csv").write_text(nearest_neighbour_predictions(archive, manifests[name]))
    (inbox / "nowhere.release").write_text("2030.01\n")
    (inbox / "nowhere.csv").write_text("image_id,label\nwb0,emp\n")
    instance.add_dynamic_partitions("submissions", ["nn-default", "nn-thesis", "nowhere"])
    job = defs.resolve_job_def("submission_job")
    for submission in ("nn-default", "nn-thesis"):
        assert job.execute_in_process(instance=instance, partition_key=submission).success
    missing = job.execute_in_process(instance=instance, partition_key="nowhere", raise_on_error=False)
    assert not missing.success and "2030.01" in json.loads((inbox / "nowhere.error.json").read_text())["error"]
    assert json.loads((inbox / "nn-thesis.score.json").read_text())["release"] == THESIS
    assert defs.resolve_job_def("leaderboard_job").execute_in_process(instance=instance).success

    board = read_table(data, "leaderboard").set_index("model")
    default, thesis = board.loc["submission:nn-default"], board.loc["submission:nn-thesis"]
    assert default.release == DEFAULT and thesis.release == THESIS
    print(f"\nnearest-neighbour memoriser, accuracy: default {default.accuracy:.3f} ({default.images} test images), "
          f"thesis {thesis.accuracy:.3f} ({thesis.images}); weighted F1 {default.f1_weighted:.3f} vs "
          f"{thesis.f1_weighted:.3f}")
    assert thesis.accuracy > default.accuracy  # the random split rewards memorising bursts
    # Submissions that name no release still go to the benchmark's current one, never the thesis profile's.
    assert latest_release(instance, ArtifactStore(base_dir=str(data))) == DEFAULT


def test_wildbench_score_against_a_named_release(both, tmp_path, monkeypatch, capsys):
    """`wildbench score --release NAME` scores a file on that release's hidden labels; with --submit it
    becomes a submission naming the release, scored and put on the leaderboard under it."""
    from wildbench_assets.cli import main

    _defs, _instance, data, _manifests = both
    monkeypatch.setenv("WILDBENCH_DATA", str(data))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    predictions = data / "submissions" / "nn-thesis.csv"  # written by the test above
    assert main(["score", "--release", THESIS, "--predictions", str(predictions)]) == 0
    printed = json.loads(capsys.readouterr().out)
    stored = json.loads((data / "submissions" / "nn-thesis.score.json").read_text())
    assert printed["release"] == THESIS and (printed["test"], printed["test_seen"]) == (stored["test"],
                                                                                       stored["test_seen"])
    assert disclosed_beyond_aggregates(printed) == []  # hidden labels: headline numbers only
    assert main(["score", "--release", DEFAULT, "--truth", "x.json", "--predictions", str(predictions)]) == 2
    assert main(["score", "--release", "2030.01", "--predictions", str(predictions)]) == 2

    assert main(["score", "--release", THESIS, "--predictions", str(predictions), "--submit", "cli-thesis",
                 "--submitter", "me@lab"]) == 0
    assert (data / "submissions" / "cli-thesis.release").read_text() == f"{THESIS}\n"
    assert (data / "submissions" / "cli-thesis.submitter").read_text() == "me@lab\n"
    board = read_table(data, "leaderboard").set_index("model")
    assert board.loc["submission:cli-thesis", "release"] == THESIS
    assert board.loc["submission:cli-thesis", "accuracy"] == stored["test"]["accuracy"]
