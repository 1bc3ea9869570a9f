"""Rankings one can trust: bootstrap intervals that resample sequences, event-level accuracy, ties."""

import numpy as np
import pytest

from wildbench_assets.lib import bootstrap as bs

from .test_metrics import fixture, pycocotools_map


@pytest.mark.parametrize("seed", [0, 1])
def test_the_unweighted_resample_is_pycocotools(seed):
    images, gts, dts = fixture(seed)
    ids = [i["id"] for i in images]
    at50, at_all = bs.match_detections(gts, dts, ids).ap(np.ones((1, len(ids))))
    map_50_95, map_50, _per_class = pycocotools_map(images, gts, dts)
    assert at50[0] == pytest.approx(map_50, abs=1e-9) and at_all[0] == pytest.approx(map_50_95, abs=1e-9)


def test_doubling_every_image_leaves_ap_unchanged_and_dropping_one_changes_it():
    images, gts, dts = fixture(3)
    ids = [i["id"] for i in images]
    matches = bs.match_detections(gts, dts, ids)
    ones, twos = np.ones((1, len(ids))), np.full((1, len(ids)), 2.0)
    assert matches.ap(twos)[0][0] == pytest.approx(matches.ap(ones)[0][0])
    fewer = ones.copy()
    fewer[0, :10] = 0
    sub = [g for g in gts if g["image_id"] not in ids[:10]], [d for d in dts if d["image_id"] not in ids[:10]]
    assert matches.ap(fewer)[0][0] == pytest.approx(pycocotools_map(images[10:], *sub)[1], abs=1e-9)


def _width(interval):
    return interval[1] - interval[0]


def test_one_huge_sequence_gives_a_wider_interval_than_images_resampled_alone():
    # 60 images: one burst of 30 frames the model gets all wrong, 30 single frames it gets right
    truth = [0] * 60
    predicted = [1] * 30 + [0] * 30
    by_sequence = ["burst"] * 30 + [f"single{i}" for i in range(30)]
    by_image = [f"image{i}" for i in range(60)]
    sequences = bs.uncertainty(by_sequence, truth, predicted, None)
    images = bs.uncertainty(by_image, truth, predicted, None)
    assert _width(sequences.intervals["accuracy"]) > 2 * _width(images.intervals["accuracy"])
    assert (sequences.sequences, images.sequences) == (31, 60)
    assert sequences.event_accuracy == pytest.approx(30 / 31)  # per event: one wrong burst of 31 events


def test_intervals_are_reproducible_with_the_seed_and_contain_the_point_estimate():
    images, gts, dts = fixture(1)
    ids = [i["id"] for i in images]
    matches = bs.match_detections(gts, dts, ids)
    sequences = [f"s{k // 4}" for k in range(len(ids))]  # bursts of four frames
    truth = [k % 3 for k in range(len(ids))]
    predicted = [(t + 1) % 3 if k % 5 == 0 or k % 7 == 0 else t for k, t in enumerate(truth)]  # some bursts wrong
    first = bs.uncertainty(sequences, truth, predicted, matches)
    again = bs.uncertainty(sequences, truth, predicted, matches)
    other = bs.uncertainty(sequences, truth, predicted, matches, seed=bs.SEED + 1)
    assert first == again and first.intervals != other.intervals
    map_50_95, map_50, _per_class = pycocotools_map(images, gts, dts)
    points = {"map_50": map_50, "map_50_95": map_50_95, "accuracy": np.mean(np.equal(truth, predicted)),
              "event_accuracy": first.event_accuracy}
    for metric, point in points.items():
        low, high = first.intervals[metric]
        assert low < point < high, metric


def test_an_event_is_right_when_most_frames_naming_an_animal_are_right():
    sequences = ["a", "a", "a", "b", "b", "c", "c", "d", "d"]
    classes = [2, 2, -1, 1, 3, -1, -1, -1, -1]
    correct = [True, True, False, True, False, True, True, False, True]
    # a: both frames naming an animal are right (the empty frame does not vote); b: one of two is not a
    # majority; c: an empty burst called empty; d: half its (all empty) frames right is not a majority
    assert bs.event_outcomes(sequences, classes, correct) == {"a": True, "b": False, "c": True, "d": False}


def test_rows_whose_intervals_overlap_are_ties_within_a_release():
    rows = [{"model": "a", "release": "r1", "map_50_95_low": 0.5, "map_50_95_high": 0.7},
            {"model": "b", "release": "r1", "map_50_95_low": 0.6, "map_50_95_high": 0.8},
            {"model": "c", "release": "r1", "map_50_95_low": 0.1, "map_50_95_high": 0.2},
            {"model": "d", "release": "r2", "map_50_95_low": 0.5, "map_50_95_high": 0.7},
            # image-level only: compared on accuracy with rows that have it
            {"model": "e", "release": "r1", "map_50_95_low": None, "accuracy_low": 0.1, "accuracy_high": 0.3},
            {"model": "f", "release": "r1", "map_50_95_low": 0.15, "map_50_95_high": 0.3, "accuracy_low": 0.25,
             "accuracy_high": 0.4}]
    assert bs.ties(rows) == [[1], [0], [5], [], [5], [2, 4]]
