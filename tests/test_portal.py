"""The researcher portal over HTTP: every page and endpoint on a real published release, every rejection,
and a request followed from the form to its ZIP (the daemon's part played in-process)."""

import io
import json
import os
import posixpath
import shutil
import time
import zipfile

import dagster as dg
import pytest
from fastapi.testclient import TestClient

from wildbench_assets.portal import app as portal_app
from wildbench_assets.portal.app import create_app
from wildbench_assets.resources.loaded_models import LOADED

from .helpers import pipeline_defs, run_all
from .test_scoring import as_csv, disclosed_beyond_aggregates, distinct_class_attack, relabelled, truth_labels

TOKEN = "portal-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def published(world_copy):
    """The demo world's copy: the archive labelled, releases 2026.11 and 2026.11-thesis cut, a leaderboard
    written (the thesis's rows); the portal over it."""
    return world_copy.defs(), world_copy.instance(), world_copy.data


@pytest.fixture(scope="module")
def client(published):
    defs, instance, _data = published
    return TestClient(create_app(defs, token=TOKEN, instance=instance))


@pytest.mark.parametrize("path, text", [("/", "Current release: 2026.11"), ("/datasets", "Release 2026.11"),
                                        ("/datasets", "yolo train data=&lt;folder&gt;/dataset.yaml"),
                                        ("/leaderboard", "thesis"), ("/requests/new", "Custom dataset request"),
                                        ("/inference", "Which species"), ("/api", "/api/queries")])
def test_every_page_renders(client, path, text):
    response = client.get(path)
    assert response.status_code == 200 and text in response.text


@pytest.mark.parametrize("backend, name", [("mdlite", "MegadetectorLite (YOLOX-tiny, zamba)"),
                                           ("manifest", "the archive&#39;s own boxes"),
                                           ("megadetector", "MegaDetector (")])
def test_the_home_page_names_the_configured_detector(tmp_path, backend, name):
    defs = pipeline_defs(tmp_path / "archive", tmp_path / "data", detector=backend)
    page = TestClient(create_app(defs, token=None, instance=dg.DagsterInstance.ephemeral())).get("/")
    assert page.status_code == 200 and f"boxes from {name}" in page.text
    assert "boxes by MegaDetector" not in page.text


def test_release_endpoints_and_streamed_downloads(client, published):
    _defs, _instance, data = published
    sheets = client.get("/api/datasets").json()
    assert [s["release"] for s in sheets] == ["2026.11-thesis", "2026.11"]  # newest first
    assert client.get("/api/datasets/2026.11").json() == sheets[1]
    response = client.get("/api/datasets/2026.11/test.zip")
    assert response.status_code == 200
    assert response.content == (data / "artifacts" / "releases" / "2026.11" / "downloads" / "test.zip").read_bytes()
    package = client.get("/api/datasets/2026.11/camtrap-dp/datapackage.json")
    assert package.status_code == 200 and package.json()["profile"].endswith("camtrap-dp-profile.json")
    assert client.get("/api/datasets/2026.11/camtrap-dp/..%2Fmanifest.csv").status_code == 404
    assert {s["code"] for s in client.get("/api/species").json()} >= {"lyn", "sus"}
    assert {p["code"] for p in client.get("/api/parks").json()} == {"snieves", "donana"}
    assert client.get("/api/leaderboard").status_code == 200


def test_in_prod_the_portal_reads_the_locations_the_environment_names(published, monkeypatch, tmp_path):
    """Prod configures every location as an EnvVar: the portal resolves them (unresolved, one is a str naming
    the variable, and the portal listed the empty folder `WILDBENCH_DATA/` instead of the published release)."""
    from wildbench_assets.definitions import build_defs

    _defs, instance, data = published
    env = {"WILDBENCH_DATA": str(data), "WILDBENCH_ARCHIVE": str(tmp_path / "archive"),
           "WILDBENCH_REQUESTS": str(tmp_path / "requests"), "WILDBENCH_SUBMISSIONS": str(tmp_path / "submissions"),
           "WILDBENCH_S3_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "unused",
           "AWS_SECRET_ACCESS_KEY": "unused", "WILDBENCH_DETECTOR": "manifest"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    prod = TestClient(create_app(build_defs("prod"), token=TOKEN, instance=instance))
    assert [sheet["release"] for sheet in prod.get("/api/datasets").json()] == ["2026.11-thesis", "2026.11"]
    assert prod.get("/api/datasets/2026.11/test.zip").content == (
        data / "artifacts" / "releases" / "2026.11" / "downloads" / "test.zip").read_bytes()


@pytest.mark.parametrize("path", ["/api/datasets/2099.01", "/api/datasets/2026.11/manifest.csv",
                                  "/api/datasets/2026.11/..%2F..%2Fhidden%2Ftruth.coco.json",
                                  "/api/datasets/..%2F..%2F..%2Fetc/passwd", "/api/queries/..%2Fsecret",
                                  "/api/submissions/x%2F..%2F..%2Fy"])
def test_nothing_outside_what_was_published_is_served(client, path):
    response = client.get(path)
    assert response.status_code == 404 and "error" in response.json()


def test_the_live_count_uses_the_pipelines_selection(client, published):
    from wildbench_assets.lib.dataset_requests import parse_spec, select_images
    from wildbench_assets.summary import read_table

    defs, _instance, data = published
    from wildbench_assets.resources.release_writer import hidden_sets

    spec = parse_spec({"parks": ["donana"], "species": ["sus"]}, frozenset({"sus", "emp"}), frozenset({"donana"}))
    hidden = hidden_sets(defs.resources["artifacts"], [read_table(data, "benchmark_splits")])
    expected = len(select_images(read_table(data, "curated_images"), spec, hidden))
    assert client.get("/api/images", params={"parks": "donana", "species": "sus"}).json()["images"] == expected
    assert client.get("/api/images", params={"species": "unicorn"}).status_code == 422
    bad = client.get("/api/images", params={"start_date": "2024-13-40"})
    assert bad.status_code == 422 and "date" in bad.json()["error"]
    not_a_number = client.get("/api/images", params={"offset": "x"})
    assert not_a_number.status_code == 422 and "offset" in not_a_number.json()["error"]

    # before submitting, the count says what the ZIP may leave out, from the labels already computed
    labels = read_table(data, "detection_labels")
    selected = select_images(read_table(data, "curated_images"), spec, hidden)
    known = labels[labels.path.isin(selected.path)]
    counted = client.get("/api/images", params={"parks": "donana", "species": "sus"}).json()
    assert counted["labels_known"] == known.path.nunique() > 0
    assert counted["would_be_left_out"] == int(known.label_status.isin(["no detection", "failed"]).sum())
    assert "left out of the ZIP" in counted["note"] and "left out of the ZIP" in client.get("/requests/new").text


def test_work_needs_the_operators_token(client, published):
    defs, instance, _data = published
    spec = {"species": ["sus"], "limit": 3}
    assert client.post("/api/queries", json=spec).status_code == 401
    assert client.post("/api/queries", json=spec, headers={"Authorization": "Bearer wrong"}).status_code == 401
    closed = TestClient(create_app(defs, token=None, instance=instance))
    refused = closed.post("/api/queries", json=spec, headers=AUTH)
    assert refused.status_code == 503 and "no API token" in refused.json()["error"]
    photo = {"files": ("a.jpg", b"\xff\xd8 not a photo", "image/jpeg")}
    assert client.post("/api/inference", files=photo).status_code == 401
    page = client.post("/requests", data={"species": "sus"})  # a browser form without the token
    assert page.status_code == 401 and "token" in page.text and "<html" in page.text
    bad_number = client.post("/requests", data={"species": "sus", "limit": "many", "token": TOKEN})
    assert bad_number.status_code == 422 and "whole numbers" in bad_number.text


def test_malformed_requests_and_uploads_are_refused_with_the_reason(client, monkeypatch):
    unknown = client.post("/api/queries", json={"species": ["unicorn"]}, headers=AUTH)
    assert unknown.status_code == 422 and "unicorn" in unknown.json()["error"]
    reversed_dates = client.post("/api/queries", json={"start_date": "2024-05-01", "end_date": "2024-01-01"},
                                 headers=AUTH)
    assert reversed_dates.status_code == 422
    not_image = client.post("/api/inference", files={"files": ("x.jpg", b"GIF89a nothing", "image/jpeg")},
                            headers=AUTH)
    assert not_image.status_code == 415 and "not a readable image" in not_image.json()["error"]
    many = [("files", (f"{i}.jpg", b"x", "image/jpeg")) for i in range(6)]
    assert client.post("/api/inference", files=many, headers=AUTH).status_code == 422
    assert client.post("/api/submissions", files={"file": ("p.txt", b"a,b", "text/plain")},
                       headers=AUTH).status_code == 415
    binary = client.post("/api/submissions", files={"file": ("p.csv", bytes(range(256)), "text/csv")}, headers=AUTH)
    assert binary.status_code == 415
    monkeypatch.setattr(portal_app, "MAX_UPLOAD_BYTES", 1000)
    big = client.post("/api/submissions", files={"file": ("p.csv", b"image_id,label\n" * 200, "text/csv")},
                      headers=AUTH)
    assert big.status_code == 413


def test_a_request_goes_from_queued_to_a_download(client, published, tmp_path):
    defs, instance, data = published
    submitted = client.post("/api/queries", json={"parks": ["donana"], "species": ["sus"], "limit": 5}, headers=AUTH)
    assert submitted.status_code == 202
    request_id = submitted.json()["id"]
    assert client.get(f"/api/queries/{request_id}").json()["state"] == "queued"
    assert client.get(f"/api/queries/{request_id}/download").status_code == 409

    sensor = defs.resolve_sensor_def("custom_export_requests")  # what the daemon does
    result = sensor(dg.build_sensor_context(instance=instance, resources=defs.resources))
    for request in result.dynamic_partitions_requests:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    assert [r.partition_key for r in result.run_requests] == [request_id]
    assert defs.resolve_job_def("custom_export_job").execute_in_process(
        instance=instance, partition_key=request_id, tags={"wildbench/request": request_id}).success

    status = client.get(f"/api/queries/{request_id}").json()
    assert status["state"] == "done" and status["images"] + status["left_out"] == 5 and "zip" not in status
    # the count promised and the result agree, or the result says what was dropped and why
    promised = client.get("/api/images", params={"parks": "donana", "species": "sus", "limit": 5}).json()["images"]
    assert status["selected"] == promised == 5 and sum(status["dropped"].values()) == status["left_out"]
    assert status["summary"].startswith(f"5 images selected, {status['images']} packed, {status['left_out']} left out")
    assert status["run"] == "SUCCESS"
    download = client.get(status["download_url"])
    with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
        assert len([n for n in archive.namelist() if n.endswith(".jpg")]) == status["images"]
        sources = {image["source"] for image in json.loads(archive.read("manifest.json"))["images"]}
    from wildbench_assets.summary import read_table

    splits = read_table(data, "benchmark_splits")
    assert not sources & set(splits.path[splits.split.isin(["test", "test_seen"])])  # hidden labels stay hidden
    page = client.get(f"/requests/{request_id}").text
    assert "Download the ZIP" in page and status["summary"] in page


def _pixels(data: bytes) -> str:
    """A hash of the decoded pixels: the same picture whatever its EXIF or file name."""
    import hashlib

    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return hashlib.sha256(image.convert("RGB").tobytes()).hexdigest()


@pytest.fixture(scope="module")
def grown(demo_world, tmp_path_factory):
    """Release 2026.11 cut, then new empties arrive and are curated (the nightly splits have not run yet):
    one more of an unseen test camera, and one 30 s before a test_seen frame (it opens that burst)."""
    import pandas as pd
    from PIL import Image

    from wildbench_assets.lib.demo_archive import encode_jpeg, exif_bytes

    world = demo_world.copy_to(tmp_path_factory.mktemp("portal-grown"))
    root, defs, instance, data = world.root, world.defs(), world.instance(), world.data
    manifest = pd.read_csv(data / "artifacts" / "releases" / "2026.11" / "manifest.csv", dtype=str,
                           keep_default_na=False)
    unseen = set(manifest.camera[manifest.split == "test"]) - set(manifest.camera[manifest.split != "test"])
    test = manifest[manifest.camera.isin(unseen) & (manifest.captured_at != "")].iloc[0]
    seen = manifest[(manifest.split == "test_seen") & (manifest.captured_at != "")].iloc[0]
    for row, shift, name in ((test, pd.Timedelta(hours=5), "later.jpg"),
                             (seen, pd.Timedelta(seconds=-30), "before.jpg")):
        park, camera = row.camera.split("/", 1)
        with Image.open(root / "archive" / row.path) as image:  # the same picture, taken at another time
            data_bytes = encode_jpeg(image.convert("RGB"), exif_bytes(
                pd.Timestamp(row.captured_at) + shift, "RECONYX", "HC600", "colon"))
        (root / "archive" / park / "emp" / camera).mkdir(parents=True, exist_ok=True)
        (root / "archive" / park / "emp" / camera / name).write_bytes(data_bytes)
    _, outcome = run_all(root / "archive", data, instance=instance, detector="manifest",
                         selection=["raw_images", "image_metadata", "curated_images"])
    assert not outcome.get("failure"), outcome
    yield defs, instance, data
    world.close()


def test_a_request_never_hands_out_a_test_camera_or_a_hidden_sequence(grown):
    """Everything requestable, empties included: the ZIP holds no image of an unseen test camera and no
    frame of a hidden sequence of the cut release (by camera and time, and by pixels against the hidden
    images themselves), also among images that arrived after the cut, and the portal's live count is
    exactly what the export selects: what it packs plus what it reports left out (no animal box: the
    detector decides that only when it runs)."""
    import pandas as pd

    from wildbench_assets.lib.leak_audit import perceptual_hash
    from wildbench_assets.lib.splits import SplitPlan
    from wildbench_assets.summary import read_table

    defs, instance, data = grown
    client = TestClient(create_app(defs, token=TOKEN, instance=instance))
    arrived = [p for p in read_table(data, "curated_images").path if p.endswith(("/later.jpg", "/before.jpg"))]
    assert len(arrived) == 2  # curated, so requestable unless withheld
    count = client.get("/api/images", params={"include_empties": "true"}).json()["images"]
    submitted = client.post("/api/queries", json={"include_empties": True}, headers=AUTH)
    request_id = submitted.json()["id"]
    result = defs.resolve_sensor_def("custom_export_requests")(
        dg.build_sensor_context(instance=instance, resources=defs.resources))
    for request in result.dynamic_partitions_requests:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    assert defs.resolve_job_def("custom_export_job").execute_in_process(
        instance=instance, partition_key=request_id, tags={"wildbench/request": request_id}).success
    status = client.get(f"/api/queries/{request_id}").json()
    assert status["state"] == "done" and status["images"] + status["left_out"] == count > 0
    with zipfile.ZipFile(io.BytesIO(client.get(status["download_url"]).content)) as archive:
        sources = {image["source"]: archive.read(image["file"])
                   for image in json.loads(archive.read("manifest.json"))["images"]}
    assert len(sources) == status["images"]

    release = data / "artifacts" / "releases" / "2026.11"
    manifest = pd.read_csv(release / "manifest.csv", dtype=str, keep_default_na=False)
    unseen = set(manifest.camera[manifest.split == "test"]) - set(manifest.camera[manifest.split != "test"])
    curated = read_table(data, "curated_images").set_index("path")
    given = curated.loc[sorted(sources)]
    assert unseen and not set(given.camera) & unseen  # no image of a test camera, labelled or empty
    hidden = manifest[manifest.split.isin(["test", "test_seen"])]
    gap = pd.Timedelta(seconds=SplitPlan.sequence_gap_s)
    for camera, frames in hidden.groupby("camera"):  # no frame within a burst gap of a hidden frame
        times = pd.to_datetime(frames.captured_at.replace("", None)).dropna()
        mine = pd.to_datetime(given.captured_at[given.camera == camera]).dropna()
        assert not any((abs(times - t) < gap).any() for t in mine), camera

    hidden_pixels, unseen_hashes = set(), set()
    for split in ("test", "test_seen"):
        with zipfile.ZipFile(release / "downloads" / f"{split}.zip") as archive:
            for name in archive.namelist():
                if name.lower().endswith(".jpg"):
                    hidden_pixels.add(_pixels(archive.read(name)))
                    if split == "test":
                        unseen_hashes.add(perceptual_hash(archive.read(name)))
    assert not {_pixels(image) for image in sources.values()} & hidden_pixels
    assert not {perceptual_hash(image) for image in sources.values()} & unseen_hashes  # pHash distance 0


def test_a_submission_is_dropped_into_the_inbox(client, published):
    _defs, _instance, data = published
    truth = json.loads((data / "artifacts" / "releases" / "2026.11" / "hidden" / "truth.coco.json").read_text())
    rows = "image_id,label\n" + "".join(f"{i['public_id']},emp\n" for i in truth["images"])
    response = client.post("/api/submissions", files={"file": ("mine.csv", rows.encode(), "text/csv")}, headers=AUTH)
    assert response.status_code == 202
    submission_id = response.json()["id"]
    assert (data / "submissions" / f"{submission_id}.csv").read_text() == rows
    assert client.get(f"/api/submissions/{submission_id}", headers=AUTH).json()["state"] == "queued"


SUBMITTERS = {name: f"{name}-token-0123456789abcdef" for name in ("alice", "bob", "carol", "dave", "frank", "grace")}


def bearer(name: str) -> dict:
    return {"Authorization": f"Bearer {SUBMITTERS[name]}"}


@pytest.fixture()
def researchers(published):
    """The portal with per-submitter tokens (as from WILDBENCH_PORTAL_TOKENS_FILE) beside the operator's."""
    defs, instance, _data = published
    return TestClient(create_app(defs, token=TOKEN, instance=instance, tokens=SUBMITTERS))


def score_inbox(defs, instance) -> dict[str, bool]:
    """The daemon's part: the submissions sensor's runs, each executed in process (id -> success)."""
    sensor, job, cursor, outcome = defs.resolve_sensor_def("submissions_sensor"), defs.resolve_job_def(
        "submission_job"), None, {}
    while True:
        result = sensor(dg.build_sensor_context(instance=instance, resources=defs.resources, cursor=cursor))
        cursor = result.cursor
        if not result.run_requests:
            return outcome
        for request in result.dynamic_partitions_requests:
            instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        for run in result.run_requests:
            outcome[run.partition_key] = job.execute_in_process(instance=instance, partition_key=run.partition_key,
                                                                tags=run.tags, raise_on_error=False).success


def test_a_decoding_submission_learns_nothing_and_only_its_sender_sees_it(researchers, published):
    """Issue 18: a submission giving each public test id its own class used to get back a confusion matrix
    and per-park groups (every hidden label). Now its answer is a few rounded headline numbers per test
    set, shown only to its sender — and identical under a relabelled hidden truth, so no decoder of it
    does better than a coin on the labels that moved."""
    defs, instance, data = published
    truth_file = data / "artifacts" / "releases" / "2026.11" / "hidden" / "truth.coco.json"
    truth = json.loads(truth_file.read_text())
    guesses = distinct_class_attack(truth)
    sent = researchers.post("/api/submissions", files={"file": ("attack.csv", as_csv(guesses).encode(), "text/csv")},
                            headers=bearer("alice"))
    assert sent.status_code == 202 and sent.json()["release"] == "2026.11"
    attack = sent.json()["id"]
    assert score_inbox(defs, instance)[attack]

    answer = researchers.get(f"/api/submissions/{attack}", headers=bearer("alice")).json()
    assert answer["state"] == "done" and answer["test"]["images"] + answer["test_seen"]["images"] == len(guesses)
    assert disclosed_beyond_aggregates(answer) == []
    stored = json.loads((data / "submissions" / f"{attack}.score.json").read_text())  # the inbox's answer
    assert disclosed_beyond_aggregates(stored) == [] and stored["submitter"] == "alice"

    # nobody else sees it: no token, another submitter's, the operator's; the page asks for the token
    assert researchers.get(f"/api/submissions/{attack}").status_code == 401
    for other in (bearer("bob"), AUTH):
        refused = researchers.get(f"/api/submissions/{attack}", headers=other)
        assert refused.status_code == 404 and set(refused.json()) == {"error"}
    page = researchers.get(f"/submissions/{attack}")
    assert page.status_code == 200 and 'name="token"' in page.text and "accuracy" not in page.text
    assert researchers.post(f"/submissions/{attack}", data={"token": SUBMITTERS["bob"]}).status_code == 404
    login = researchers.post(f"/submissions/{attack}", data={"token": SUBMITTERS["alice"]}, follow_redirects=False)
    assert login.status_code == 303
    shown = researchers.get(f"/submissions/{attack}", cookies=login.cookies)
    assert shown.status_code == 200 and "test_seen" in shown.text and "accuracy" in shown.text

    # the same attack against a relabelled truth (same counts, every missed image's label moved) is
    # answered identically
    other, changed = relabelled(truth, guesses)
    assert changed >= len(guesses) // 3 and truth_labels(other) != truth_labels(truth)
    try:
        truth_file.write_text(json.dumps(other))
        again = researchers.post("/api/submissions", headers=bearer("bob"),
                                 files={"file": ("attack.csv", as_csv(guesses).encode(), "text/csv")}).json()["id"]
        assert score_inbox(defs, instance)[again]
    finally:
        truth_file.write_text(json.dumps(truth))
    second = researchers.get(f"/api/submissions/{again}", headers=bearer("bob")).json()
    assert {k: second[k] for k in ("test", "test_seen")} == {k: answer[k] for k in ("test", "test_seen")}

    # the public leaderboard holds the submission's headline numbers, no drill-down of anyone's row
    assert defs.resolve_job_def("leaderboard_job").execute_in_process(instance=instance).success
    rows = researchers.get("/api/leaderboard").json()
    mine = next(r for r in rows if r["model"] == f"submission:{attack}")
    assert mine["accuracy"] == answer["test"]["accuracy"]
    assert not {"per_park", "per_class_ap", "groups", "confusion"} & {k for r in rows for k in r}


def test_the_hidden_truths_integer_ids_are_refused_and_map_to_nothing(researchers, published):
    """Issue 18 (attack review): a file naming images 1..N (the hidden truth's COCO ids, in archive-path
    order) was scored; one leaving out integer k failed, for free, naming k's public id. Now the truth's
    ids are the public ids in public-id order, integer names are refused, and the refusal names the same
    public ids whichever integer was left out: no integer or path leads to a public id."""
    from wildbench_assets.lib.leaderboard import release_score
    from wildbench_assets.taxonomy import load_taxonomy

    defs, instance, data = published
    truth = json.loads((data / "artifacts" / "releases" / "2026.11" / "hidden" / "truth.coco.json").read_text())
    ids = [i["public_id"] for i in truth["images"]]
    assert [i["id"] for i in truth["images"]] == ids == sorted(ids)  # pycocotools' tie order: public-id order
    assert not any(isinstance(a["image_id"], int) for a in truth["annotations"])
    every = [str(n) for n in range(1, len(ids) + 1)]
    errors = []
    for left_out in ("1", "2"):  # the attack script's first two probes, through the portal and the inbox
        raw = json.dumps({"detection_categories": {"1": "sus"},
                          "images": [{"file": f, "detections": []} for f in every if f != left_out]}).encode()
        sent = researchers.post("/api/submissions", files={"file": ("ints.json", raw, "application/json")},
                                headers=bearer("alice"))
        assert sent.status_code == 202
        assert score_inbox(defs, instance) == {sent.json()["id"]: False}
        answer = researchers.get(f"/api/submissions/{sent.json()['id']}", headers=bearer("alice")).json()
        assert answer["state"] == "failed" and "public ids" in answer["error"] and answer["counted"] is False
        errors.append({i for i in ids if i in answer["error"]})
    assert errors[0] == errors[1] and errors[0] <= set(ids[:3])  # the listing's first ids, whatever was left out
    # public ids (as the public test ZIP names its images) still score, as the models' COCO results do
    names = json.loads((data / "artifacts" / "releases" / "2026.11" / "release.json").read_text())["class_names"]
    species = [(s.code, s.scientific_name, s.common_name) for s in load_taxonomy().species]
    scored = release_score(json.dumps(truth), json.dumps({"detection_categories": {"1": names[0]}, "images": [
        {"file": f"images/{i}.jpg", "detections": []} for i in ids]}), names, species, 0.2)
    assert scored["images"] == len(ids)


def test_the_leaderboard_page_shows_test_set_size_intervals_and_ties(researchers, published):
    """Two submissions one image apart: the page gives each row its images and sequences, a 95 % interval
    resampling sequences, event-level accuracy, and marks the two as tied (their intervals overlap)."""
    defs, instance, data = published
    truth = json.loads((data / "artifacts" / "releases" / "2026.11" / "hidden" / "truth.coco.json").read_text())
    labels = truth_labels(truth)
    unseen = sorted(posixpath.splitext(i["file_name"])[0] for i in truth["images"] if i["test_set"] == "test")
    near = {**labels, unseen[0]: "emp" if labels[unseen[0]] != "emp" else "sus"}
    sent = {}
    for name, guesses in (("frank", labels), ("grace", near)):  # submitters no other test uses
        reply = researchers.post("/api/submissions", headers=bearer(name),
                                 files={"file": ("p.csv", as_csv(guesses).encode(), "text/csv")})
        assert reply.status_code == 202
        sent[name] = reply.json()["id"]
    scored = score_inbox(defs, instance)
    assert all(scored[s] for s in sent.values())
    assert defs.resolve_job_def("leaderboard_job").execute_in_process(instance=instance).success
    rows = {r["model"]: r for r in researchers.get("/api/leaderboard").json()}
    oracle, other = rows[f"submission:{sent['frank']}"], rows[f"submission:{sent['grace']}"]
    assert oracle["images"] == len(unseen) and 0 < oracle["sequences"] <= len(unseen)
    assert oracle["accuracy"] == oracle["accuracy_low"] == oracle["accuracy_high"] == oracle["event_accuracy"] == 1.0
    assert other["accuracy_low"] < other["accuracy"] < 1.0 and other["accuracy_high"] == 1.0
    assert other["model"] in oracle["tied_with"].split("; ") and oracle["model"] in other["tied_with"].split("; ")
    page = researchers.get("/leaderboard").text
    assert "accuracy [95% CI]" in page and "1.000 [1.000, 1.000]" in page and f"≈ submission:{sent['frank']}" in page
    assert f"<td>{len(unseen)}</td>" in page and "event accuracy" in page


def test_the_submission_limit_refuses_one_too_many_in_the_portal_and_the_inbox(researchers, published,
                                                                                monkeypatch):
    defs, instance, data = published
    monkeypatch.setenv("WILDBENCH_SUBMISSION_LIMIT", "2")
    truth = json.loads((data / "artifacts" / "releases" / "2026.11" / "hidden" / "truth.coco.json").read_text())
    rows = as_csv({i["public_id"]: "emp" for i in truth["images"]}).encode()

    def send(name):
        return researchers.post("/api/submissions", files={"file": ("p.csv", rows, "text/csv")}, headers=bearer(name))

    assert [send("carol").status_code for _ in range(2)] == [202, 202]
    refused = send("carol")
    assert refused.status_code == 429 and "submission limit" in refused.json()["error"]
    assert "2026.11" in refused.json()["error"] and send("dave").status_code == 202  # per submitter
    page = researchers.post("/submissions", files={"file": ("p.csv", rows, "text/csv")},
                            data={"token": SUBMITTERS["carol"]})
    assert page.status_code == 429 and "submission limit" in page.text

    inbox = data / "submissions"
    for n in range(1, 4):  # three drops by one submitter, one after the other
        (inbox / f"erin-{n}.submitter").write_text("erin\n")
        (inbox / f"erin-{n}.csv").write_bytes(rows)
        os.utime(inbox / f"erin-{n}.csv", (time.time() - 60 + n, time.time() - 60 + n))
    outcome = score_inbox(defs, instance)
    assert (outcome["erin-1"], outcome["erin-2"], outcome["erin-3"]) == (True, True, False)
    error = json.loads((inbox / "erin-3.error.json").read_text())["error"]
    assert "submission limit" in error and "'erin'" in error and not (inbox / "erin-3.score.json").exists()
    # an id already scored is not scored again with new content (else one id would probe forever)
    (inbox / "erin-1.csv").write_bytes(rows.replace(b",emp\n", b",sus\n", 1))
    assert score_inbox(defs, instance) == {"erin-1": False}
    assert "already scored" in json.loads((inbox / "erin-1.error.json").read_text())["error"]
    # an inbox drop is nobody's in the portal, not even the operator's
    assert researchers.get("/api/submissions/erin-2", headers=AUTH).status_code == 404


def test_inference_on_a_real_photo_returns_boxes_and_an_annotated_image(published, samples):
    defs, instance, data = published
    real = pipeline_defs(defs.resources["archive"].uri, data, detector="mdlite")  # a real detector
    client = TestClient(create_app(real, token=TOKEN, instance=instance))
    photo = (samples / "idaho-cougar.jpg").read_bytes()
    LOADED.clear()
    loads = LOADED.loads["mdlite"]
    response = client.post("/api/inference", files={"files": ("idaho-cougar.jpg", photo, "image/jpeg")},
                           headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    boxes = [p for p in body["predictions"] if p["status"] == "predicted"]
    assert boxes and body["annotated"][0]["jpeg_base64"]
    assert body["megadetector_1_6"]["images"][0]["detections"]
    # which model answered, and why no species model did (none trained here), on the page and in the file
    assert body["answer"]["answered_by"].startswith("detector only: mdlite")
    assert "no species model has been trained yet" in body["answer"]["why_no_species_model"]
    assert body["megadetector_1_6"]["info"]["wildbench_answer"] == body["answer"] and body["warnings"] == []
    page = client.post("/inference", files={"files": ("idaho-cougar.jpg", photo, "image/jpeg")}, headers=AUTH)
    assert page.status_code == 200 and "answered by: detector only: mdlite" in page.text
    assert "no species model has been trained yet" in page.text and "other animal" in page.text
    assert LOADED.loads["mdlite"] == loads + 1  # one load in this process, reused by the second request


# --- in a real browser: Debian's Chromium driven by Selenium (nothing downloaded) ---------------------------

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture(scope="module")
def served(published):
    """The portal on a loopback port (a real uvicorn server), with a real detector for inference."""
    import socket
    import threading
    import time

    import uvicorn

    defs, instance, data = published
    real = pipeline_defs(defs.resources["archive"].uri, data, detector="mdlite")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(real, token=TOKEN, instance=instance), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("Debian's chromium and chromium-driver are not installed (make test installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path_factory.mktemp("downloads")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.downloads = downloads
    yield driver
    driver.quit()


def _screenshot(driver, name: str, tmp_path):
    """Every page is captured; WILDBENCH_SCREENSHOTS=docs/screenshots refreshes the README's pictures."""
    import os
    from pathlib import Path

    folder = Path(os.environ.get("WILDBENCH_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(folder / f"{name}.png"))


def _wait(driver, condition, timeout=60):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(condition)


def test_browser_request_form_to_progress_bar_to_zip(browser, served, published, tmp_path):
    from selenium.webdriver.common.by import By

    defs, instance, _data = published
    browser.get(f"{served}/")
    _screenshot(browser, "home", tmp_path)
    browser.get(f"{served}/datasets")
    _screenshot(browser, "datasets", tmp_path)
    browser.get(f"{served}/requests/new")
    browser.find_element(By.CSS_SELECTOR, "input[name=species][value=sus]").click()
    _wait(browser, lambda d: "Matching images: " in d.find_element(By.ID, "count").text
          and d.find_element(By.ID, "count").text.split(": ")[1].isdigit())
    browser.find_element(By.CSS_SELECTOR, "input[name=limit]").send_keys("4")
    browser.find_element(By.CSS_SELECTOR, "input[name=token]").send_keys(TOKEN)
    _screenshot(browser, "request-form", tmp_path)
    browser.find_element(By.CSS_SELECTOR, "#request-form button").click()
    _wait(browser, lambda d: "/requests/web-" in d.current_url)
    request_id = browser.current_url.rsplit("/", 1)[1]
    _wait(browser, lambda d: d.find_element(By.ID, "state").text.startswith("queued"))

    sensor = defs.resolve_sensor_def("custom_export_requests")  # the daemon's part, while the page polls
    result = sensor(dg.build_sensor_context(instance=instance, resources=defs.resources))
    for request in result.dynamic_partitions_requests:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    assert request_id in [r.partition_key for r in result.run_requests]
    assert defs.resolve_job_def("custom_export_job").execute_in_process(
        instance=instance, partition_key=request_id, tags={"wildbench/request": request_id}).success

    _wait(browser, lambda d: d.find_element(By.ID, "download").is_displayed())
    assert browser.find_element(By.ID, "progress").get_attribute("value") == "100"
    _screenshot(browser, "request-done", tmp_path)
    browser.find_element(By.ID, "download-link").click()
    target = browser.downloads / f"wildbench-{request_id}.zip"
    _wait(browser, lambda d: target.exists() and target.stat().st_size > 0)
    with zipfile.ZipFile(target) as archive:
        assert len([n for n in archive.namelist() if n.endswith(".jpg")]) == 4


def test_browser_uploads_the_cougar_and_sees_its_box(browser, served, tmp_path, samples):
    from selenium.webdriver.common.by import By

    browser.get(f"{served}/inference")
    browser.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(str(samples / "idaho-cougar.jpg"))
    browser.find_element(By.CSS_SELECTOR, "input[name=token]").send_keys(TOKEN)
    browser.find_element(By.CSS_SELECTOR, "#inference-form button").click()
    image = _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "img.annotated"), timeout=120)[0]
    assert browser.execute_script("return arguments[0].naturalWidth", image) > 0
    assert "predicted" in browser.find_element(By.TAG_NAME, "table").text
    _screenshot(browser, "inference", tmp_path)


def test_browser_opens_the_leaderboard(browser, served, tmp_path):
    from selenium.webdriver.common.by import By

    browser.get(f"{served}/leaderboard")
    boards = browser.find_elements(By.CSS_SELECTOR, "table.board")  # one per release; submissions may come first
    assert any("YOLOv8s (thesis)" in board.text for board in boards)
    assert browser.find_element(By.ID, "submission-form")
    _screenshot(browser, "leaderboard", tmp_path)
