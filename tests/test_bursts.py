import numpy as np
import pandas as pd
import pytest

from wildbench_assets.lib.bursts import burst_violations, clean_bursts, keep_mask, thesis_exempt_species

from .thesis_reference import thesis_process_group

T0 = pd.Timestamp("2024-05-01 10:00:00")


def table(rows):
    """rows: (path, camera, species, seconds after T0 or None)."""
    return pd.DataFrame([{"path": p, "camera": c, "species": s,
                          "captured_at": (T0 + pd.Timedelta(seconds=t)) if t is not None else pd.NaT}
                         for p, c, s, t in rows])


def kept(frame, **kwargs):
    return sorted(frame.path[clean_bursts(frame, **kwargs)])


def test_a_frame_within_the_interval_of_the_last_kept_is_dropped():
    frame = table([("a", "c1", "sus", 0), ("b", "c1", "sus", 1), ("c", "c1", "sus", 2), ("d", "c1", "sus", 2.5),
                   ("e", "c1", "sus", 3.01)])
    # b is 1 s after a (not more than the interval): dropped; c is 2 s after a: kept; d 0.5 s after c;
    # e 1.01 s after c: kept. The rule measures from the last *kept* frame, not the previous one.
    assert kept(frame) == ["a", "c", "e"]
    assert kept(frame, interval_s=0.4) == ["a", "b", "c", "d", "e"]


def test_default_rule_is_per_camera_and_species():
    frame = table([("a", "c1", "sus", 0), ("b", "c2", "sus", 0), ("c", "c1", "vul", 0.5), ("d", "c1", "sus", 0.5)])
    assert kept(frame) == ["a", "b", "c"]
    assert kept(frame, mode="thesis") == ["a", "c"]  # the thesis mixes cameras: c2's frame is lost


def test_ties_break_by_row_order():
    frame = table([("a", "c1", "sus", 5), ("b", "c1", "sus", 5), ("c", "c1", "sus", 5)])
    assert kept(frame) == ["a"]
    assert kept(frame.iloc[::-1]) == ["c"]


def test_undated_images_are_kept_by_default_and_dropped_by_the_thesis_rule():
    frame = table([("a", "c1", "sus", 0), ("b", "c1", "sus", None), ("c", "c1", "sus", None),
                   ("d", "c1", "vul", None)])
    assert kept(frame) == ["a", "b", "c", "d"]
    # Thesis: NaT comparisons are False, so undated rows go, except a species with no date at all keeps
    # its first row (process_group starts from row 0).
    assert kept(frame, mode="thesis") == ["a", "d"]


def test_thesis_exempts_species_below_the_median_rounded_to_thousands():
    species = pd.Series(["a"] * 3000 + ["b"] * 1400 + ["c"] * 600)
    assert thesis_exempt_species(species) == {"c"}  # median 1400 -> 1000
    frame = pd.DataFrame({"path": [f"p{i}" for i in range(len(species))], "camera": "c1", "species": species,
                          "captured_at": T0})  # every frame in the same second
    result = frame.species[clean_bursts(frame, mode="thesis")].value_counts().to_dict()
    assert result == {"c": 600, "a": 1, "b": 1}


@pytest.mark.parametrize("interval", [1.0, 2.5, 60.0])
def test_thesis_mode_equals_the_thesis_loop(interval):
    rng = np.random.default_rng(int(interval * 10))
    n = 2500
    steps = rng.choice([0, 0.5, 1, 1, 2, 3, 30, 3600], n)
    frame = pd.DataFrame({
        "path": [f"img{i:05d}" for i in range(n)],
        "camera": rng.choice(["c1", "c2", "c3"], n),
        "species": rng.choice(["sus", "vul", "cer", "lyn"], n, p=[0.4, 0.3, 0.2, 0.1]),
        "captured_at": T0 + pd.to_timedelta(np.cumsum(steps), unit="s"),
    }).sample(frac=1, random_state=3).sort_values("path", ignore_index=True)
    expected = set()
    for _, group in frame.rename(columns={"captured_at": "date"}).groupby("species"):
        expected |= {row["path"] for row in thesis_process_group(group, interval)}
    mask = keep_mask(frame.captured_at, frame.species, interval)
    assert set(frame.path[mask]) == expected


def test_burst_violations_counts_pairs_too_close():
    frame = table([("a", "c1", "sus", 0), ("b", "c1", "sus", 1), ("c", "c1", "sus", 5), ("d", "c2", "sus", 0.2)])
    assert burst_violations(frame, 1.0) == 1
    assert burst_violations(frame, 1.0, mode="thesis") == 2
    cleaned = frame[clean_bursts(frame)]
    assert burst_violations(cleaned, 1.0) == 0
