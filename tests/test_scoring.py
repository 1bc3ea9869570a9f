"""`wildbench score`: the leaderboard's metrics from files, and clear rejections of bad files."""

import json
import posixpath
from collections import Counter

import pytest

from wildbench_assets.cli import main

TRUTH = {
    "images": [{"id": i, "file_name": f"donana/C1/img{i}.jpg", "width": 200, "height": 100} for i in range(1, 7)],
    "categories": [{"id": 0, "name": "empty"}, {"id": 1, "name": "sus"}, {"id": 2, "name": "Red Fox"}],
    "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 50, 40]},
        {"id": 2, "image_id": 2, "category_id": 1, "bbox": [100, 20, 60, 50]},
        {"id": 3, "image_id": 2, "category_id": 1, "bbox": [20, 20, 40, 40]},
        {"id": 4, "image_id": 3, "category_id": 2, "bbox": [50, 30, 30, 30]},
        {"id": 5, "image_id": 4, "category_id": 2, "bbox": [0, 0, 100, 80]},
        {"id": 6, "image_id": 5, "category_id": 0},
        {"id": 7, "image_id": 6, "category_id": 0},
    ],
}


def md_predictions(shift: float = 0.0) -> dict:
    images = []
    for image in TRUTH["images"]:
        detections = [{"category": "1" if a["category_id"] == 1 else "2", "conf": 0.9,
                       "bbox": [(a["bbox"][0] + shift) / 200, a["bbox"][1] / 100,
                                a["bbox"][2] / 200, a["bbox"][3] / 100]}
                      for a in TRUTH["annotations"] if a["image_id"] == image["id"] and a.get("bbox")]
        images.append({"file": image["file_name"], "detections": detections})
    return {"images": images, "detection_categories": {"1": "sus", "2": "vul"}, "info": {"format_version": "1.6"}}


def run_score(tmp_path, capsys, truth, predictions, name="pred.json"):
    (tmp_path / "truth.json").write_text(json.dumps(truth) if isinstance(truth, dict) else truth)
    (tmp_path / name).write_text(json.dumps(predictions) if not isinstance(predictions, str) else predictions)
    code = main(["score", "--truth", str(tmp_path / "truth.json"), "--predictions", str(tmp_path / name)])
    out = capsys.readouterr()
    return code, (json.loads(out.out) if code == 0 else out.err)


def test_perfect_megadetector_file_scores_one(tmp_path, capsys):
    code, result = run_score(tmp_path, capsys, TRUTH, md_predictions())
    assert code == 0
    assert result["detection"]["map_50_95"] == pytest.approx(1.0)
    assert result["image_level"]["accuracy"] == 1.0 and result["images"] == 6
    assert set(result["detection"]["per_class_ap"]) == {"sus", "vul"}


def test_shifted_boxes_lose_map_not_accuracy(tmp_path, capsys):
    code, result = run_score(tmp_path, capsys, TRUTH, md_predictions(shift=12))
    assert code == 0 and result["image_level"]["accuracy"] == 1.0
    assert 0 < result["detection"]["map_50_95"] < 0.8


def test_coco_results_and_csv_predictions(tmp_path, capsys):
    coco = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 0.8}
            for a in TRUTH["annotations"] if a.get("bbox")]
    code, result = run_score(tmp_path, capsys, TRUTH, coco)
    assert code == 0 and result["detection"]["map_50"] == pytest.approx(1.0)
    csv_text = "image_id,label\n" + "\n".join(
        f"donana/C1/img{i}.jpg,{label}" for i, label in enumerate(["sus", "sus", "vul", "sus", "emp", "emp"], 1))
    code, result = run_score(tmp_path, capsys, TRUTH, csv_text, name="pred.csv")
    assert code == 0 and result["image_level"]["accuracy"] == pytest.approx(5 / 6) and "detection" not in result


@pytest.mark.parametrize("predictions, message", [
    ("image_id,label\ndonana/C1/img1.jpg,sus\n", "disagree"),
    ("image_id,label\n" + "\n".join(f"donana/C1/img{i}.jpg,unicorn" for i in range(1, 7)), "unknown class"),
    ("image_id,guess\nx,sus\n", "image_id,label"),
    ("{not json", "not valid JSON"),
    ({"images": [], "something": 1}, "MegaDetector batch output"),
])
def test_bad_files_are_rejected_with_a_reason(tmp_path, capsys, predictions, message):
    name = "pred.csv" if isinstance(predictions, str) and not predictions.startswith("{") else "pred.json"
    code, err = run_score(tmp_path, capsys, TRUTH, predictions, name=name)
    assert code == 2 and message in err


HIDDEN = {  # a release's hidden truth: images by public id, with their test set and park
    "images": [{"id": i, "file_name": f"wb{i}.jpg", "width": 200, "height": 100, "test_set": test_set, "park": park}
               for i, (test_set, park) in enumerate([("test", "p1"), ("test", "p2"), ("test_seen", "p1")], 1)],
    "annotations": [{"id": i, "image_id": i, "category_id": c, "bbox": [20, 10, 40, 30]}
                    for i, c in [(1, 1), (2, 2), (3, 1)]],
    "categories": [{"id": 1, "name": "sus"}, {"id": 2, "name": "vul"}],
}
SPECIES = [("sus", "Sus scrofa", "Wild boar"), ("vul", "Vulpes vulpes", "Red fox")]


def _submission(raw, release="r1"):
    from wildbench_assets.lib.leaderboard import submission_findings

    truth = json.dumps(HIDDEN) if release else None
    return submission_findings("s1", raw, release, "default", truth, ["sus", "vul"], SPECIES, 0.2)


def test_a_submission_row_splits_unseen_seen_and_parks():
    found = _submission(b"image_id,label\nwb1,sus\nwb2,vul\nwb3,vul\n")  # the seen-camera image is wrong
    row = found.row
    assert (row["model"], row["release"], row["images"], row["seen_images"]) == ("submission:s1", "r1", 2, 1)
    assert row["accuracy"] == 1.0 and row["seen_accuracy"] == 0.0 and row["gap_accuracy"] == -1.0
    assert row["map_50"] is None  # image-level labels: no detection metric
    assert "per_park" not in row and "per_class_ap" not in row  # breakdowns of hidden labels are not shown
    assert found.in_range and (found.public["test"]["images"], found.public["test_seen"]["images"]) == (2, 1)


@pytest.mark.parametrize("raw, release, message", [
    (None, "r1", "no s1.json or s1.csv"),
    (b"\xff\xfe\x00binary", "r1", "not UTF-8"),
    (b"image_id,label\nwb1,sus\n", None, "no benchmark release"),
    (b"image_id,label\nwb1,sus\n", "r1", "public ids have no prediction"),
])
def test_a_submission_that_cannot_be_scored_says_why(raw, release, message):
    from wildbench_assets.lib.scoring import ScoringError

    with pytest.raises(ScoringError, match=message):
        _submission(raw, release)


# --- an attacker decoding hidden labels from scores -----------------------------------------------------------

ANSWER_KEYS = {"id", "state", "submission", "submitter", "release", "at", "threshold", "decimals"}


def disclosed_beyond_aggregates(answer: dict) -> list[str]:
    """What an answer to a submission holds beyond a few headline numbers per test set: any other key,
    any list, any nested breakdown (per class, per park, per image, a confusion matrix)."""
    from wildbench_assets.lib.leaderboard import HEADLINE, UNCERTAINTY

    extra = [k for k in answer if k not in ANSWER_KEYS | {"test", "test_seen"}]
    for name in ("test", "test_seen"):
        part = answer.get(name, {})
        extra += [f"{name}.{k}" for k, v in part.items()  # interval bounds and counts are aggregates too
                  if k not in {"images", *HEADLINE, *UNCERTAINTY} or not (v is None or isinstance(v, int | float))]
    return extra


def truth_labels(doc: dict) -> dict[str, str]:
    """Public id -> the hidden image-level label (majority species of its boxes, `emp` without)."""
    names = {c["id"]: c["name"] for c in doc["categories"]}
    boxes: dict[int, list[str]] = {}
    for a in doc["annotations"]:
        boxes.setdefault(a["image_id"], []).append(names[a["category_id"]])
    return {posixpath.splitext(i["file_name"])[0]: Counter(boxes[i["id"]]).most_common(1)[0][0]
            if i["id"] in boxes else "emp" for i in doc["images"]}


def distinct_class_attack(doc: dict) -> dict[str, str]:
    """The attack of issue 18: each public test id its own class, as far as classes go."""
    classes = [*sorted(c["name"] for c in doc["categories"]), "emp"]
    ids = sorted(posixpath.splitext(i["file_name"])[0] for i in doc["images"])
    return {image: classes[n % len(classes)] for n, image in enumerate(ids)}


def as_csv(guesses: dict[str, str]) -> str:
    return "image_id,label\n" + "".join(f"{k},{v}\n" for k, v in sorted(guesses.items()))


def relabelled(doc: dict, guesses: dict[str, str]) -> tuple[dict, int]:
    """Another hidden truth the attack cannot tell from `doc`: within each test set, the labels (boxes and
    all) of the images the attack got wrong are moved around, never onto an image guessed as that label,
    so every class's hits, guesses and support stay the same. (the new truth, how many labels changed)"""
    import numpy as np
    from scipy.optimize import linear_sum_assignment

    labels = truth_labels(doc)
    key = {i["id"]: posixpath.splitext(i["file_name"])[0] for i in doc["images"]}
    boxes: dict[int, list[dict]] = {}
    for a in doc["annotations"]:
        boxes.setdefault(a["image_id"], []).append(a)
    donor, changed = {}, 0
    for test_set in {i["test_set"] for i in doc["images"]}:
        missed = sorted((i["id"] for i in doc["images"] if i["test_set"] == test_set
                         and guesses[key[i["id"]]] != labels[key[i["id"]]]), key=lambda i: (labels[key[i]], i))
        # the most labels moved, none onto an image guessed as it: an assignment problem
        cost = np.array([[9999 if guesses[key[i]] == labels[key[d]] else -int(labels[key[i]] != labels[key[d]])
                          for d in missed] for i in missed]).reshape(len(missed), len(missed))
        rows, cols = linear_sum_assignment(cost)
        assert cost[rows, cols].max(initial=0) <= 0  # keeping every label is always allowed
        changed -= int(cost[rows, cols].sum())
        donor |= {missed[r]: missed[c] for r, c in zip(rows, cols)}
    annotations = [{**a, "image_id": i} for i in sorted(key) for a in boxes.get(donor.get(i, i), [])]
    return {**doc, "annotations": [{**a, "id": n} for n, a in enumerate(annotations, 1)]}, changed


ATTACKED = {  # a hidden truth of 24 images in two parks and both test sets, several species and empties
    "images": [{"id": i, "file_name": f"wb{i:02d}.jpg", "public_id": f"wb{i:02d}", "width": 200, "height": 100,
                "test_set": "test" if i <= 16 else "test_seen", "park": "p1" if i % 3 else "p2"}
               for i in range(1, 25)],
    "annotations": [{"id": i, "image_id": i, "category_id": 1 + i % 4, "bbox": [20 + i, 10, 40, 30]}
                    for i in range(1, 25) if i % 5],
    "categories": [{"id": 1, "name": "sus"}, {"id": 2, "name": "vul"}, {"id": 3, "name": "lyn"},
                   {"id": 4, "name": "cer"}],
}
ATTACK_SPECIES = [*SPECIES, ("lyn", "Lynx pardinus", "Iberian lynx"), ("cer", "Cervus elaphus", "Red deer")]


BURSTS = {f"wb{i:02d}.jpg": f"cam@{(i - 1) // 4}" for i in range(1, 25)}  # the hidden sequences: 4 frames each


def _answer(truth: dict, raw: str, sequences: dict | None = None) -> dict:
    from wildbench_assets.lib.leaderboard import submission_findings

    return submission_findings("attack", raw.encode(), "r1", "default", json.dumps(truth),
                               ["sus", "vul", "lyn", "cer"], ATTACK_SPECIES, 0.2, sequences).public


def test_a_row_carries_its_test_set_size_interval_resampling_sequences_and_event_accuracy():
    """16 unseen-camera images in 4 bursts of 4; the submission misses one whole burst. The interval
    resamples bursts (wider than resampling the 16 images alone) and event-level accuracy counts bursts."""
    from wildbench_assets.lib.leaderboard import submission_findings

    labels = truth_labels(ATTACKED)
    guesses = {k: ("emp" if v != "emp" else "sus") if k <= "wb04" else v for k, v in labels.items()}
    bursts = BURSTS
    def row(sequences):
        return submission_findings("s1", as_csv(guesses).encode(), "r1", "default", json.dumps(ATTACKED),
                                   ["sus", "vul", "lyn", "cer"], ATTACK_SPECIES, 0.2, sequences).row

    by_burst, by_image = row(bursts), row(None)
    assert (by_burst["images"], by_burst["sequences"], by_image["sequences"]) == (16, 4, 16)
    assert by_burst["accuracy"] == 0.75 and by_burst["event_accuracy"] == 0.75
    assert by_burst["accuracy_low"] < by_burst["accuracy"] <= by_burst["accuracy_high"]
    width = by_burst["accuracy_high"] - by_burst["accuracy_low"]
    assert width > by_image["accuracy_high"] - by_image["accuracy_low"]
    assert by_burst["map_50_low"] is None  # image-level labels: no box, no mAP interval


def _ranking_attack(doc: dict) -> dict:
    """MegaDetector 1.6 with every class on every image (a full-frame box), each class ranking the images
    in its own order: per-class AP would spell out which images hold that class."""
    classes = sorted(c["name"] for c in doc["categories"])
    images = [{"file": i["file_name"], "detections": [
        {"category": str(n + 1), "conf": round(0.05 + 0.9 * ((i["id"] * (n + 3)) % 24) / 24, 4),
         "bbox": [0, 0, 1, 1]} for n in range(len(classes))]} for i in doc["images"]]
    return {"images": images, "detection_categories": {str(n + 1): c for n, c in enumerate(classes)}}


@pytest.mark.parametrize("attack", ["distinct_csv", "distinct_coco", "ranking_md", "one_probe_csv"])
def test_a_submission_is_told_aggregates_only(attack):
    """Whatever the attacker submits, the answer is a few headline numbers per test set, rounded."""
    guesses = distinct_class_attack(ATTACKED)
    if attack == "distinct_csv":
        raw = as_csv(guesses)
    elif attack == "one_probe_csv":  # one image guessed as a species, all others empty
        raw = as_csv({k: ("sus" if k == "wb01" else "emp") for k in guesses})
    elif attack == "distinct_coco":
        ids = {c["name"]: c["id"] for c in ATTACKED["categories"]}
        raw = json.dumps([{"image_id": k, "category_id": ids[v], "bbox": [0, 0, 200, 100], "score": 0.9}
                          for k, v in guesses.items() if v != "emp"])
    else:
        raw = json.dumps(_ranking_attack(ATTACKED))
    answer = _answer(ATTACKED, raw)
    assert disclosed_beyond_aggregates(answer) == []
    numbers = [v for part in (answer["test"], answer["test_seen"]) for k, v in part.items()
               if k != "images" and v is not None]
    assert numbers and all(round(v, 3) == v for v in numbers)  # coarse: no macro average spells its terms
    assert (answer["test"]["images"], answer["test_seen"]["images"]) == (16, 8)


def test_the_decoding_attack_recovers_nothing_better_than_chance():
    """One submission giving each test image its own class is answered identically for the true hidden
    labels and for a relabelling that changes the label of every image it got wrong: any decoder is a
    function of the answer, so on those images it is right under at most one of the two truths — a coin."""
    guesses = distinct_class_attack(ATTACKED)
    other, changed = relabelled(ATTACKED, guesses)
    labels, moved = truth_labels(ATTACKED), truth_labels(other)
    assert changed == sum(labels[k] != moved[k] for k in labels) >= len(labels) // 2
    assert Counter(labels.values()) == Counter(moved.values())  # the datasheet's counts cannot tell them apart
    assert _answer(ATTACKED, as_csv(guesses)) == _answer(other, as_csv(guesses))
    # event-level accuracy and every interval, resampling the hidden bursts, tell the two truths apart no better
    assert _answer(ATTACKED, as_csv(guesses), BURSTS) == _answer(other, as_csv(guesses), BURSTS)


def _cut_truth(by_public_id: bool = True) -> tuple[dict, dict[str, str]]:
    """A release's hidden truth as the cut writes it, from a manifest in archive-path order (park, species
    folder, camera): 2 parks x 3 species x 4 images in each test set. (truth, public id -> species)"""
    import hashlib

    import pandas as pd

    from wildbench_assets.lib.releases import build_manifest, hidden_truth

    rows = [{"split": split, "path": f"{park}/{sp}/C{n % 2}/img{split}{n}.jpg", "park": park, "camera": f"C{n % 2}",
             "sequence": "", "captured_at": "2026-01-01T00:00:00", "species": sp, "width": 200, "height": 100,
             "label_status": "labelled", "boxes": json.dumps([[0.1, 0.1, 0.3, 0.3, 0.9]]),
             "sha256": hashlib.sha256(f"{split}{park}{sp}{n}".encode()).hexdigest()}
            for split in ("test", "test_seen") for park in ("p1", "p2") for sp in ("cer", "lyn", "sus")
            for n in range(4)]
    manifest = build_manifest(pd.DataFrame(rows), b"k" * 32)
    return (hidden_truth(manifest, ["sus", "vul", "lyn", "cer"], by_public_id),
            dict(zip(manifest.public_id, manifest.species)))


def _md_file(names) -> bytes:
    return json.dumps({"detection_categories": {"1": "sus"},
                       "images": [{"file": str(f), "detections": []} for f in names]}).encode()


def test_the_hidden_truths_integer_ids_lead_to_no_label():
    """Issue 18 (attack review): the hidden truth's COCO ids were 1..N in manifest order (split, then
    archive path = park/species), and the scorer took them in place of public ids; a file leaving out
    integer k failed (for free) naming k's public id, so path order plus the datasheet's counts gave every
    label. Now the truth's ids are the public ids, in public-id order; anything else is refused with an
    error drawn from the public listing only, and the attack's decoder learns nothing."""
    from wildbench_assets.lib.leaderboard import submission_findings
    from wildbench_assets.lib.scoring import ScoringError

    truth, species = _cut_truth()
    text, names = json.dumps(truth), ["sus", "vul", "lyn", "cer"]
    ids = [i["id"] for i in truth["images"]]
    assert ids == sorted(species) and ids == [i["public_id"] for i in truth["images"]]  # no archive order
    assert {a["image_id"] for a in truth["annotations"]} == set(ids)
    assert truth_labels(truth) == species  # what the scorer reads is unchanged

    def error(raw: bytes) -> str:
        with pytest.raises(ScoringError) as raised:
            submission_findings("x", raw, "r1", "default", text, names, ATTACK_SPECIES, 0.2)
        return str(raised.value)

    n = len(ids)
    every_int = [str(i) for i in range(1, n + 1)]
    assert "public ids" in error(_md_file(every_int))  # integers are refused, not scored
    coco = [{"image_id": i, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9} for i in range(1, n + 1)]
    assert "public ids" in error(json.dumps(coco).encode())
    assert "public ids" in error(b"image_id,label\np1/sus/C0/imgtest0,sus\n")  # an archive path
    # the attack script: leave out integer k, read the public id the error names
    named = {k: {i for i in ids if i in error(_md_file([x for x in every_int if x != str(k)]))}
             for k in range(1, n + 1)}
    assert all(found == named[1] for found in named.values())  # the same for every k: no mapping
    assert named[1] <= set(ids[:3])  # ... and drawn from the public listing's order
    # an incomplete file of public ids names only the ids it left out (which its sender knows)
    left_out = error(_md_file(ids[1:]))
    assert ids[0] in left_out and not {i for i in ids[1:] if i in left_out}
    # images/<id>.jpg (the public ZIP's member name) is a public id too
    assert submission_findings("x", _md_file([f"images/{i}.jpg" for i in ids]), "r1", "default", text, names,
                               ATTACK_SPECIES, 0.2).public["test"]["images"] == n // 2
    # a release cut before keeps its integer ids (rebuilt byte for byte), yet is scored by public id only,
    # ties broken in public-id order: the same answers, and integers refused all the same
    legacy, _ = _cut_truth(by_public_id=False)
    assert [i["id"] for i in legacy["images"]] == list(range(1, n + 1))
    tied = json.dumps({"detection_categories": {"1": "sus", "2": "cer"}, "images": [
        {"file": i, "detections": [{"category": str(1 + k % 2), "conf": 0.5, "bbox": [0.1, 0.1, 0.3, 0.3]}]}
        for k, i in enumerate(ids)]}).encode()
    answers = [submission_findings("x", tied, "r1", "default", json.dumps(doc), names, ATTACK_SPECIES, 0.2).public
               for doc in (truth, legacy)]
    assert answers[0] == answers[1]
    with pytest.raises(ScoringError, match="public ids"):
        submission_findings("x", _md_file(every_int), "r1", "default", json.dumps(legacy), names, ATTACK_SPECIES, 0.2)


# --- who submits, and how often -------------------------------------------------------------------------------

def test_the_submission_limit_counts_per_submitter_release_and_window():
    from datetime import UTC, datetime, timedelta

    from wildbench_assets.lib.submissions import Limit, history

    t0 = datetime(2026, 12, 1, 9, tzinfo=UTC)
    files = {  # name -> (bytes, last modified): the inbox as listed
        "a1.csv": (b"x", t0), "a1.submitter": (b"ann\n", t0),
        "a1.score.json": (b'{"release": "r1"}', t0 + timedelta(minutes=1)),
        "a2.csv": (b"x", t0 + timedelta(hours=1)), "a2.submitter": (b"ann\n", t0),  # pending
        "a3.csv": (b"x", t0 + timedelta(hours=2)), "a3.submitter": (b"ann\n", t0),
        "a3.error.json": (b"{}", t0 + timedelta(hours=2, minutes=1)),  # failed: no score, costs nothing
        "b1.csv": (b"x", t0 + timedelta(hours=1)), "b1.submitter": (b"bob\n", t0),
        "a4.csv": (b"x", t0 + timedelta(hours=1)), "a4.submitter": (b"ann\n", t0), "a4.release": (b"r2\n", t0),
        "x.json": (b"{}", t0), "x.submitter": (b"no way/..\n", t0),  # a bad name counts for no one
    }
    seen = history([(k, v[1]) for k, v in files.items()], lambda k: files[k][0] if k in files else None, "r1",
                   t0 - timedelta(days=1))
    assert {s.id: (s.submitter, s.release, s.state) for s in seen} == {
        "a1": ("ann", "r1", "scored"), "a2": ("ann", "r1", "pending"), "a3": ("ann", "r1", "failed"),
        "b1": ("bob", "r1", "pending"), "a4": ("ann", "r2", "pending")}
    limit = Limit(2, timedelta(days=1))
    later = t0 + timedelta(hours=3)
    assert "submission limit reached: 'ann' already has 2" in limit.refusal(seen, "new", "ann", "r1", later)
    assert limit.refusal(seen, "new", "ann", "r2", later) is None          # per release
    assert limit.refusal(seen, "new", "bob", "r1", later) is None          # per submitter
    assert limit.refusal(seen, "a2", "ann", "r1", t0 + timedelta(hours=1)) is None  # only earlier ones count
    assert limit.refusal(seen, "new", "ann", "r1", t0 + timedelta(days=1, minutes=30)) is None  # a1 left the window
    assert Limit(0).refusal([], "new", "ann", "r1", later)                 # 0: submissions closed
    rescored = history([("a1.csv", t0 + timedelta(hours=5)), ("a1.score.json", t0)], lambda k: None, "r1", t0)
    assert "already scored" in Limit(5).refusal(rescored, "a1", "inbox", "r1", t0 + timedelta(hours=5))


def test_a_failure_after_the_hidden_truth_was_read_is_charged():
    """A file refused against the public listing learned nothing and costs nothing; one that failed once
    the hidden truth was read might have learned something from failing, so the limit charges it."""
    from datetime import UTC, datetime, timedelta

    from wildbench_assets.lib.leaderboard import submission_findings
    from wildbench_assets.lib.scoring import ScoringError
    from wildbench_assets.lib.submissions import Limit, history

    truth, _species = _cut_truth()
    ids = [i["id"] for i in truth["images"]]
    sizeless = {**truth, "images": [{**i, "width": 0} for i in truth["images"]]}  # fails only past the truth
    detections = [{"category": "1", "conf": 0.9, "bbox": [0.1, 0.1, 0.2, 0.2]}]
    raw = json.dumps({"detection_categories": {"1": "sus"},
                      "images": [{"file": i, "detections": detections} for i in ids]}).encode()
    failures = {}
    for name, doc, sent in (("listing", truth, _md_file(ids[1:])), ("truth", sizeless, raw)):
        with pytest.raises(ScoringError) as raised:
            submission_findings("x", sent, "r1", "default", json.dumps(doc), ["sus", "vul", "lyn", "cer"],
                                ATTACK_SPECIES, 0.2)
        failures[name] = raised.value.reached_truth
    assert failures == {"listing": False, "truth": True}

    t0 = datetime(2026, 12, 1, 9, tzinfo=UTC)
    files = {"a1.csv": (b"x", t0), "a1.error.json": (b'{"error": "e", "counted": true}', t0 + timedelta(minutes=1)),
             "a2.csv": (b"x", t0), "a2.error.json": (b'{"error": "e", "counted": false}', t0 + timedelta(minutes=1))}
    seen = history([(k, v[1]) for k, v in files.items()], lambda k: files[k][0] if k in files else None, "r1",
                   t0 - timedelta(days=1))
    later = t0 + timedelta(hours=1)
    assert "submission limit reached" in Limit(1).refusal(seen, "new", "inbox", "r1", later)  # a1 counted
    assert Limit(2).refusal(seen, "new", "inbox", "r1", later) is None  # a2 did not
    assert "already scored" in Limit(5).refusal(
        history([("a1.csv", later), ("a1.error.json", t0)], lambda k: files[k][0] if k in files else None, "r1",
                t0), "a1", "inbox", "r1", later)  # and its id is spent


@pytest.mark.parametrize("text, message", [
    ("{not json", "not JSON"),
    ('{"ann": "short"}', "at least 16"),
    ('{"ann": "0123456789abcdef", "bob": "0123456789abcdef"}', "share a token"),
    ('{"operator": "0123456789abcdef"}', "reserved"),
    ('{"a b": "0123456789abcdef"}', "letters, digits"),
])
def test_a_bad_token_file_is_refused_with_the_reason(tmp_path, monkeypatch, capsys, text, message):
    from wildbench_assets.lib.submissions import SubmitterError, parse_tokens

    with pytest.raises(SubmitterError, match=message):
        parse_tokens(text)
    (tmp_path / "tokens.json").write_text(text)
    monkeypatch.setenv("WILDBENCH_PORTAL_TOKENS_FILE", str(tmp_path / "tokens.json"))
    assert main(["portal"]) == 2 and message in capsys.readouterr().err


def test_a_bad_submission_limit_is_refused_with_the_reason(monkeypatch, capsys):
    monkeypatch.setenv("WILDBENCH_SUBMISSION_LIMIT", "lots")
    assert main(["portal"]) == 2 and "WILDBENCH_SUBMISSION_LIMIT='lots'" in capsys.readouterr().err
